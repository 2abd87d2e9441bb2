"""Population sky (``sky = "galaxy"``): thin and thick disc, halo and bulge, dust, completeness, binaries.

The opt-in replacement of the toy sky's N(<G) table (:mod:`gaiasim.sim.sky`), built as docs/sky-sources.md
section 8 recommends and described, with every parameter, source and status tag, in docs/sky.md. Same
pixelisation, same source table (``sky.TRUTH_SOURCES``), same contract: a pixel's sources are a function
of (seed, pixel) alone, drawn from the pixel's own counter-based stream, so a day materialises only the
pixels its scans cross, in bounded chunks.

Per pixel, a line-of-sight table (:mod:`gaiasim.sim.kernels_galaxy`): on a log-spaced distance grid, the
number density of each population times the volume of the bin times the fraction of its luminosity
function that is detected at that distance and extinction (the Cantat-Gaudin+2023 completeness), summed:
the pixel's Poisson mean, deterministic. Each star then picks (population, distance bin) from that table,
its absolute magnitude from the population's luminosity function, its colour from the population's
sequence, its extinction from the dust model (Amores & Lepine 2005's gas discs with their central
holes; Li+2018's exponential disc the alternative) with a 10 % star-to-star scatter, and a companion at the
observed multiplicity rates: merged into one source when closer than Gaia resolves, a second source when
resolved.

Status tags as in docs/facts.md: [C] read in the source, [C-impl] read in a public implementation of it,
[C-sec] quoted by a secondary page, [D] derived here, [U] unconfirmed placeholder (configurable).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from gaiasim.sim import kernels_galaxy as _kg
from gaiasim.sim import sky
from gaiasim.sim.instrument.focal_plane import radec_from_unit, unit_from_radec
from gaiasim.sim.source_physics import TRUTH_SKY_PIXELS, TRUTH_SOURCE_PHYSICS

# --- Galactic geometry ----------------------------------------------------------------------------------

#: Sun's Galactocentric radius and height above the plane, kpc (Robin+2003 as coded in SynthPop
#: besancon_Robin2003; docs/sky-sources.md section 2.1) [C-impl].
R_SUN_KPC = 8.5
Z_SUN_KPC = 0.015
#: Discs truncated beyond this Galactocentric radius, kpc (SynthPop default; section 2.1) [C-impl].
R_DISC_MAX_KPC = 14.0

# --- Density laws (Robin+2003 Table 3 via SynthPop, docs/sky-sources.md section 2.1) [C-impl] ----------

#: Thin disc age bins (Gyr), their local mass densities (1e-3 Msun pc^-3) and axis ratios epsilon. Each bin is a
#: density group of its own (GROUPS), with its own luminosity function (the stars of its ages still on the main
#: sequence); its share of the thin disc's stars is its mass density over its stars' mean mass
#: (:func:`thin_number_weights` [D]; [U]: whether Robin's densities count remnants is not transcribed).
THIN_AGE_BINS_GYR = ((0.0, 0.15), (0.15, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 5.0), (5.0, 7.0), (7.0, 10.0))
THIN_RHO0 = (4.0, 7.9, 6.2, 4.0, 5.8, 4.9, 6.6)
THIN_EPS = (0.0140, 0.0268, 0.0375, 0.0551, 0.0696, 0.0785, 0.0791)
#: Scale lengths h_R+ and h_R-, kpc: the youngest bin, then the older ones.
THIN_HR_YOUNG_KPC = (5.0, 3.0)
THIN_HR_OLD_KPC = (2.53, 1.32)
#: Thick disc: h_R, h_z, x_l (kpc). h_z = 0.9 kpc is Juric+2008's bias-corrected H2 (abstract [C], sky-sources
#: 2.2), chosen over Robin+2003's 0.8 [C-impl] by the calibration [D-fit]; h_R = 3.6 kpc is Juric+2008's L2 (the
#: same abstract [C]), chosen over GUMS DR3's 2.919 [C-impl] (the third calibration's) and Robin+2003's 2.5 by the
#: fourth, with the age-resolved thin disc and the Tycho-2 rows [D-fit]; x_l Robin+2003 [C-impl] (see CALIBRATION).
THICK_HR_KPC, THICK_HZ_KPC, THICK_XL_KPC = 3.6, 0.9, 0.4
#: Halo: power law index, flattening, core radius (kpc).
HALO_POWER, HALO_EPS, HALO_CORE_KPC = 2.44, 0.76, 0.5


#: CALIBRATION: the [D-fit] values of this module were chosen on 2026-12-07 by gaiasim/sim/sky_calibration.py
#: (results and rule in docs/sky-calibration.md) among the [U] parameters and their published
#: alternatives, against the confirmed rows of docs/sky.md section 8b, chosen again the same day with the
#: dust model among the alternatives (Amores & Lepine 2005 beside Li+2018), and a third time when the thick disc
#: and halo got a metal-poor main sequence (MIST_FEH_M050_10GYR), keeping Gaia's own counts, and a fourth time on
#: 2026-12-08 when the thin disc was resolved into its age bins, with the giants' share among the parameters and
#: Tycho-2's densities among the rows; frozen until DR3 counts per (|b|, G) (docs/sky-sources.md 9 Q1-Q2) allow the
#: per-population fit of sky-sources 8 item 6.
CALIBRATION = "docs/sky-calibration.md, 2026-12-08 (fourth run, age-resolved thin disc, Tycho-2)"


class BulgeLaw(NamedTuple):
    """A bulge/bar law in the generalised form of ``kernels_galaxy._bulge_law``: N0 (stars pc^-3 at the
    centre), x0, y0, z0 (kpc), bar angle from the Sun-GC line (deg, near end at l > 0), c_perp, c_para, the
    GUMS "bone" (z0 x (1 + dz sin(|x| / x_bone))), cut-off radius R_c and width sigma (kpc), profile
    ("gauss": exp(-r_s^2/2), "sech2": sech^2(r_s))."""

    n0_pc3: float
    x0: float
    y0: float
    z0: float
    angle_deg: float
    c_perp: float
    c_para: float
    bone_dz: float
    bone_x: float
    r_cut: float
    sigma_cut: float
    profile: str


#: The three bulge/bar laws transcribed in docs/sky-sources.md 2.1.
BULGE_MODELS = {
    # Robin+2003 (SynthPop besancon2003_bulge.py) [C-impl]: r_s^2 = sqrt(((x/x0)^2 + (y/y0)^2)^2 + (z/z0)^4) is
    # c_perp 2, c_para 4; its cut-off exp(-2 (r_xy - R_c)^2) is sigma 0.5 kpc.
    "robin2003": BulgeLaw(13.7, 1.59, 0.424, 0.424, 11.1, 2.0, 4.0, 0.0, 1.0, 2.54, 0.5, "gauss"),
    # GUMS DR3 bar (GDR3 documentation 2.2.2 via SynthPop models/GUMS_dr3/bar.popjson and gums_bar.py: cosh^-2,
    # bone in |x|, 4.508e10 kpc^-3, angle 0.509 rad, cut at 4.196 kpc with sigma 4e-6 kpc) [C-impl].
    "gums_dr3": BulgeLaw(45.08, 1.076, 0.49, 0.30, 29.16, 3.329, 3.007, 0.534, 0.870, 4.19555, 4e-6, "sech2"),
    # Robin+2012 "Model B" (ch_vars) [C-impl]; its normalisation is not transcribed [U]: robin2003's N0.
    "robin2012b": BulgeLaw(13.7, 4.07, 0.76, 0.41, 11.10, 3.797, 1.434, 0.0, 1.0, 5.99, 0.5, "sech2"),
}

#: Local number ratios thick/thin and halo/thin (Juric+2008: 12 % [C] abstract; f_H 0.0051 in ch_vars's Table
#: 10, 0.001 in LSST rubin_sim's star counts [C-impl]: which is [U]). 0.001 [D-fit, third calibration]: with the
#: halo's metal-poor turn-off, 0.0051 puts 46 % more sources in DR2's sparse field at b = -60 than it holds.
THICK_TO_THIN = 0.12
HALO_TO_THIN = 0.001
#: Local number density of the thin disc's stars in the luminosity functions below (pc^-3) [D-fit]: solved
#: so that the sky holds 1.806e9 detected sources with G (EDR3, docs/sky-sources.md 1.2 [C]) with the other
#: [D-fit] values (CALIBRATION); the local density of all populations that follows, 0.0674 pc^-3, lies within
#: 15 % of GCNS's 0.072-0.079 (1.16 [D]), see tests.
THIN_LOCAL_PC3 = 0.0601
#: The bulge/bar law in use (one of BULGE_MODELS) [D-fit]: Robin+2003; GUMS DR3's bar fits worse and
#: Robin+2012 B keeps no guard (CALIBRATION).
BULGE_MODEL = "robin2003"
#: Scale of the bulge's N0 as a number density of stars in our luminosity function [D-fit] (N0's mass range is
#: not transcribed [U]): 0.225 (CALIBRATION, fourth run; 0.2 in the third, 0.3 in the second, with the Amores &
#: Lepine dust; 0.9 behind Li+2018's, where Sgr-I's 4.6e6 deg^-2 [C-sec] was reached at x0.43 only).
BULGE_NUMBER_SCALE = 0.225

# --- Dust, the alternative "li2018" (Li+2018 abstract, docs/sky-sources.md 3.2) [C] ---------------------

DUST_SCALE_LENGTH_KPC = 3.192
DUST_SCALE_HEIGHT_KPC = 0.103
#: The Sun lies this far above the dust mid-plane, kpc.
DUST_SUN_ABOVE_KPC = 0.023
#: Mid-plane extinction A0 per kpc at R_sun [D-fit]: 0.95, chosen in 0.7-1.0 (docs/sky-sources.md 3.2: "about
#: A(V) ~ 1 mag/kpc", Caltech Ay124 notes [C-sec]; 0.7 [U]) by the first calibration (CALIBRATION). Used only
#: with DUST_MODEL = "li2018" (the alternative the calibration compares; below).
DUST_A0_PER_KPC = 0.95
#: Star-to-star dispersion of A0, whichever the dust model: 10 % of the mean (GUMS, EDR3 documentation 2.2.6) [C].
A0_SCATTER = 0.10

# --- Dust towards the inner Galaxy: Amores & Lepine 2005 (AJ 130, 679) axisymmetric Model A, as coded in two
# independent public transcriptions of the authors' EXTIN.PRO (docs/sky-sources.md 3.5, 3.17) [C-impl]. -----

#: The dust model in use (one of DUST_MODELS) [D-fit]: "al05", whose HI and H2 discs have central holes, so the
#: bulge windows lie behind A_V 1.2-1.9 to 8 kpc (Baade's window A_V 1.26-2.79, Stanek 1996 [C]), where the
#: Li+2018 disc, fitted outside R ~ 5 kpc and extrapolated inwards, puts 3.1-6.0 (CALIBRATION).
DUST_MODELS = ("li2018", "al05")
DUST_MODEL = "al05"
#: Their distance of the Galactic centre (kpc): 7.5 in the transcription that keeps the IDL's comments, 8.0 in
#: the other [C-impl]; the dust is placed about it, from the Sun (A_V to Baade's window 1.18 / 1.05 mag).
AL05_R0_KPC = 7.5
#: n_HI(R) = 0.7 exp(-R/7.0 - (1.9/R)^2); n_H2(R) = 58 exp(-R/1.2 - (3.5/R)^2) + 240 exp(-R^2/0.095), R in kpc
#: (the last term the Galactic centre's) [C-impl].
AL05_HI = (0.7, 7.0, 1.9)
AL05_H2 = (58.0, 1.2, 3.5)
AL05_GC = (240.0, 0.095)
#: Scale heights (Gaussian sigmas): z_H2 = 0.036 exp(0.08 R) kpc, z_HI = 1.8 z_H2 (Guilbert 1978); the gas
#: mid-plane at z = +0.02 kpc from the Sun [C-impl].
AL05_Z_H2 = (0.036, 0.08)
AL05_Z_HI_RATIO = 1.8
AL05_Z_SHIFT_KPC = 0.02
#: Metallicity factor of the HI term: 9.6 within 1.2 kpc, (r0/R)^0.5 to 9 kpc, (r0/R)^0.1 beyond [C-impl].
AL05_METALS = (1.2, 9.6, 9.0, 0.5, 0.1)
#: Weights of the HI and H2 terms, and A_V per kpc per unit of gas: 3.086 (kpc in 1e21 cm) x 0.57 (1e-21 mag
#: cm^2, the code's value) [C-impl].
AL05_GAMMA = (1.0, 2.0)
AL05_AV_PER_GAS = 3.086 * 0.57
#: Their final tuning (section 4.1): the extinction doubled for 120 <= l <= 200 deg [C-impl].
AL05_TUNE = (120.0, 200.0, 2.0)

# --- Extinction coefficients: EDR3 main-sequence law (Riello+2021 / DPAC Fitz19 file via dustapprox,
# docs/sky-sources.md 3.10) [C-impl]; k = a1 + a2 X + a3 X^2 + a4 X^3 + a5 A + a6 A^2 + a7 A^3 + a8 X A
# + a9 A X^2 + a10 X A^2, X = intrinsic BP-RP, A = A0. ------------------------------------------------

K_G = (0.995970, -0.159726, 0.0122381, 0.000907266, -0.0377160, 0.00151347, -2.52365e-5, 0.0114523,
       -0.000936915, -0.000260297)
K_BP = (1.153632, -0.0814013, -0.0360130, 0.0192144, -0.0223975, 0.000840563, -1.31018e-5, 0.00660124,
        -0.000882248, -0.000111216)
K_RP = (0.663208, -0.0179847, 0.000493769, -0.00267994, -0.00651422, 3.30180e-5, 1.57894e-6, -7.98009e-5,
        0.000255680, 1.10477e-5)
#: The law's calibrated range 3500-10000 K, 0.01 < A0 < 20 (section 3.10 [C-impl]); in BP-RP, from the
#: Mamajek rows A0V (9700 K, -0.037) and M2V (3550 K, 2.25) [D]. Inputs are clamped to it.
K_X_RANGE = (-0.037, 2.25)
K_A0_MAX = 20.0

# --- Luminosity functions --------------------------------------------------------------------------------

#: Mean dwarf sequence (Pecaut & Mamajek 2013, v2019.3.22; docs/sky-sources.md 4.1) [C-impl]:
#: (SpT, BP-RP, M_G, mass Msun), B9V to M8V.
MAMAJEK_DWARFS = (
    ("B9V", -0.120, 0.72, 2.8), ("A0V", -0.037, 1.09, 2.3), ("A5V", 0.194, 1.81, 1.85),
    ("F0V", 0.377, 2.46, 1.59), ("F5V", 0.587, 3.32, 1.33), ("G0V", 0.782, 4.32, 1.08),
    ("G2V", 0.823, 4.65, 1.02), ("G5V", 0.850, 4.83, 0.98), ("K0V", 0.98, 5.53, 0.87),
    ("K3V", 1.21, 6.26, 0.75), ("K5V", 1.45, 6.95, 0.68), ("K7V", 1.71, 7.58, 0.63),
    ("M0V", 1.84, 8.26, 0.55), ("M2V", 2.25, 9.38, 0.44), ("M3V", 2.49, 10.05, 0.36),
    ("M4V", 2.95, 11.39, 0.22), ("M5V", 3.36, 12.56, 0.16), ("M6V", 3.95, 14.48, 0.10),
    ("M8V", 4.80, 15.73, 0.082),
)
#: The early B dwarfs of the same table, which gives no Gaia colours above B9V: (SpT, M_V, B-V, mass Msun) as published
#: [C-impl]. :func:`_mamajek` puts them on the sequence with BP-RP linear in B-V through the table's B9V and A0V rows
#: and G - V held at B9V's 0.017 [D; U: B stars' G - V is within ~0.05 of it in Riello+2021's cubic, section 1.2].
#: Without them the thin disc stopped at B9V (M_G 0.72) and the sky lacked its bright stars in the plane against
#: Tycho-2 (docs/sky.md section 10).
MAMAJEK_EARLY_B_DWARFS = (
    ("B0V", -4.0, -0.307, 17.5), ("B0.5V", -3.6, -0.295, 15.0), ("B1V", -3.1, -0.278, 11.0),
    ("B1.5V", -2.8, -0.252, 10.0), ("B2V", -1.7, -0.210, 7.3), ("B2.5V", -1.4, -0.198, 6.1),
    ("B3V", -1.1, -0.178, 5.4), ("B4V", -1.0, -0.165, 5.0), ("B5V", -0.9, -0.156, 4.6), ("B6V", -0.5, -0.140, 4.0),
    ("B7V", -0.4, -0.128, 3.9), ("B8V", -0.2, -0.109, 3.4),
)
#: Mamajek's B9V and A0V: (B-V, BP-RP) and B9V's G - V (the early B dwarfs' colour and magnitude anchors).
MAMAJEK_B9V_A0V_BV_BPRP = ((-0.070, -0.120), (0.000, -0.037))
MAMAJEK_B9V_G_MINUS_V = 0.017
#: The old metal-poor main sequence: MIST v1.2 ([Fe/H] = -0.50, [a/Fe] = 0, v/vcrit = 0.4, 10 Gyr; Gaia EDR3 bands,
#: Vega) as shipped by SynthPop (github.com/synthpop-galaxy/synthpop, commit c3d3d54,
#: ``synthpop/demo/mist_web_interpolator/pop4.cmd``) [C-impl]: (EEP, initial mass Msun, M_G, BP-RP), main-sequence
#: rows (phase 0) from 0.1 Msun to the end of the main sequence; the turn-off (bluest point, BP-RP 0.668) at EEP
#: 428-433, M_G 3.9-4.0. At a mass a metal-poor dwarf is brighter and bluer than a solar one, and an old population
#: ends at its turn-off: the Mamajek sequence cut at the turn-off mass put the thick disc's and halo's turn-offs at
#: M_G ~ 5.5 (docs/sky.md 8c).
MIST_FEH_M050_10GYR = (
    (243, 0.1000, 12.982, 2.638), (255, 0.1505, 11.481, 2.097), (267, 0.2439, 10.258, 1.888),
    (279, 0.3106, 9.746, 1.843), (291, 0.3304, 9.618, 1.831), (303, 0.3552, 9.448, 1.810),
    (315, 0.4526, 8.639, 1.677), (327, 0.5470, 7.648, 1.428), (339, 0.6299, 6.689, 1.136),
    (351, 0.7182, 5.806, 0.925), (363, 0.7590, 5.405, 0.843), (375, 0.7874, 5.112, 0.789),
    (387, 0.8127, 4.834, 0.744), (399, 0.8348, 4.567, 0.707), (411, 0.8550, 4.312, 0.682),
    (423, 0.8737, 4.081, 0.670), (428, 0.8802, 3.989, 0.668), (433, 0.8860, 3.901, 0.668),
    (438, 0.8912, 3.817, 0.671), (443, 0.8958, 3.738, 0.677), (448, 0.8997, 3.667, 0.685),
    (453, 0.9028, 3.605, 0.697),
)
#: The main sequence of each population: the thin disc and the bulge (near-solar metallicity) on Mamajek's dwarfs
#: with their lifetimes; the thick disc (Robin+2003: [Fe/H] -0.78 +- 0.30, 11 Gyr; GUMS DR3: -0.5 and -0.8, 10-12
#: Gyr, SynthPop's model files [C-impl]) on the MIST isochrone above; the halo (Robin+2003 -1.78, GUMS -1.5, 14
#: Gyr [C-impl]) on the same isochrone [U]: no old isochrone of [Fe/H] ~ -1.5 in Gaia's bands was found. Its
#: turn-off, M_G 3.9-4.0, agrees with the halo globular clusters' turn-offs in SDSS g, centred at 4.18 (Newby+
#: 2011 [C-sec]; g - G ~ 0.2-0.3 at BP-RP 0.67 [U]).
METAL_POOR_POPULATIONS = ("thick", "halo")
#: Kroupa 2001 IMF slopes xi(m) ~ m^-alpha: 1.3 below 0.5 Msun, 2.3 above (SynthPop; section 2.3) [C-impl].
KROUPA_BREAK_MSUN, KROUPA_LOW, KROUPA_HIGH = 0.5, 1.3, 2.3
#: Main-sequence lifetime 10 Gyr (m / Msun)^-2.5 [U, textbook scaling]: the thin disc (constant star
#: formation over 10 Gyr) keeps the fraction min(1, tau/10 Gyr) of each mass; the bulge (10 Gyr, Robin+2003 via
#: SynthPop [C-impl]) stops at its turn-off mass, tau(m) = age. The thick disc and halo end at their isochrone's
#: own turn-off (METAL_POOR_POPULATIONS).
LIFETIME_SUN_GYR, LIFETIME_POWER = 10.0, 2.5
THIN_DISC_AGE_GYR = 10.0
AGES_GYR = {"bulge": 10.0}
#: Main-sequence colour scatter about the sequence (mag) [U, 0.03-0.05 in section 4.2].
MS_COLOUR_SIGMA = 0.04
#: Giants per star (none in the youngest thin-disc bin: :func:`giant_fraction`) [D-fit]: 0.7 %, chosen in 0.3-1.2 %
#: by the fourth calibration against Tycho-2's densities (0.4 % [U] before); 40 % of them in the red clump [U]; red
#: clump M_G = 0.495 (Ruiz-Dern+2018 [C]) with a width [U]; RGB luminosity function ~ 10^(0.35 M_G) on [-2.5, 3.5]
#: [U]; giant colour ridge through BP-RP 1.2 at the clump (section 4.3 placeholder [U]), slope -0.1 mag/mag [U].
GIANT_FRACTION = 0.007
RED_CLUMP_SHARE = 0.4
RED_CLUMP_MG, RED_CLUMP_SIGMA = 0.495, 0.15
RGB_MG_RANGE, RGB_SLOPE = (-2.5, 3.5), 0.35
GIANT_COLOUR_AT_CLUMP, GIANT_COLOUR_SLOPE, GIANT_COLOUR_SIGMA = 1.2, -0.1, 0.08
GIANT_MASS_MSUN = 1.0  # [U] for the companion of a giant

# --- Completeness: Cantat-Gaudin+2023 C(G; M10) (gaiaunlimited surveyTCG.py; section 5.2) [C-impl] -------

CG_A = (0.98488, -0.0039354, 0.0061441)  # a_x, a_y, a_z
CG_B = (0.64732, 0.22305, 0.036817)  # b_x, b_y, b_z
CG_C = (0.69291, -0.093319, 0.35141)  # c_x, c_y, c_z (slopes above L)
CG_L = 20.5194
#: M10 of the sky, one value for now [U] (sparse fields ~21, section 5.4; crowding not modelled yet).
M10_MAG = 21.0
#: Generation limit: no star fainter than this is drawn (section 1.2, G_gen = 21.5).
G_GEN_MAG = 21.5

# --- Binaries (docs/sky-sources.md section 6) --------------------------------------------------------------

#: Multiplicity frequency by primary mass (Duchene & Kraus 2013 as tabulated: 0.1-0.5 Msun 26 %, 0.7-1.3
#: Msun 44 %, 1.5-5 Msun >= 50 % [C-sec]); linear between the bands [D], 26 % below 0.1 Msun [U].
MF_MASS_MSUN = (0.1, 0.5, 0.7, 1.3, 1.5, 5.0)
MF_FRACTION = (0.26, 0.26, 0.44, 0.44, 0.50, 0.50)
#: Mass ratio uniform (Tokovinin 2014 "nearly uniform" [C]) on [0.1, 1] [U lower bound]; log10(P/d) normal,
#: median 100 yr = 4.56, dispersion 2.4 (Tokovinin 2014 [C]; 4.56 [D]).
Q_MIN = 0.1
LOG_P_DAYS_MEDIAN, LOG_P_DAYS_SIGMA = 4.56, 2.4
#: Projected separation a x U(0.5, 1) [U]. Merged below 0.4 arcsec (single-number v1 of de Bruijne+2015's
#: 0.23" AL / 0.70" AC [C], section 6.2); companions beyond 10 arcsec are field stars of the Poisson
#: background, not drawn as pairs [U].
MERGE_ARCSEC = 0.4
WIDE_ARCSEC = 10.0
#: Lightest star in the sequence (M8V): lighter companions add no light.
MIN_STAR_MSUN = 0.082

# --- Grids --------------------------------------------------------------------------------------------------

#: Distance bin edges (pc): 64 log-spaced bins, 5 pc to 60 kpc (section 2.4).
DIST_EDGES_PC = np.geomspace(5.0, 60_000.0, 65)
#: Absolute magnitude grid of the luminosity functions (bin centres) and A0 grid of the detected fractions.
MG_STEP = 0.05
MG_GRID = np.arange(-4.5 + MG_STEP / 2, 16.0, MG_STEP)
A0_STEP = 0.1
A0_GRID = np.arange(0.0, 40.0 + A0_STEP / 2, A0_STEP)

#: Populations, in the order of the truth's population codes (gaiasim.sim.source_physics).
POPULATIONS = ("thin", "thick", "halo", "bulge")
#: Density groups: the thin disc's age bins one by one ("thin0" the youngest), then the other populations; each
#: has its own density law, luminosity functions and local density (:func:`local_densities`).
GROUPS = (*(f"thin{i}" for i in range(len(THIN_AGE_BINS_GYR))), *POPULATIONS[1:])
#: Components: (group, kind) with kind 0 main sequence, 1 giants.
COMPONENTS = tuple((grp, kind) for grp in GROUPS for kind in (0, 1))


def population_of(group: str) -> str:
    """The population of a density group ("thin3" -> "thin"); a population is its own."""
    return "thin" if group.startswith("thin") else group


#: The population code (an index of POPULATIONS) of each group, as the truth records it.
GROUP_POPULATION = np.array([POPULATIONS.index(population_of(grp)) for grp in GROUPS], dtype=np.int8)

_NGP_RA_DEG, _NGP_DEC_DEG, _GC_RA_DEG, _GC_DEC_DEG = 192.85948, 27.12825, 266.40510, -28.93617
#: Separates the galaxy sky's random streams from the toy sky's and the seed's other users.
_GALAXY_STREAM = 0x6A1A5E5D


def galactic_matrix() -> np.ndarray:
    """Rows: Galactic x (to the centre), y (l = 90 deg), z (north pole) as ICRS unit vectors."""
    z = unit_from_radec(_NGP_RA_DEG, _NGP_DEC_DEG)
    x = unit_from_radec(_GC_RA_DEG, _GC_DEC_DEG)
    x = x - (x @ z) * z
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def lb_of_unit(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Galactic longitude and latitude (rad) of ICRS unit vectors (n, 3)."""
    g = np.asarray(u, dtype=np.float64) @ galactic_matrix().T
    return np.arctan2(g[..., 1], g[..., 0]) % (2 * np.pi), np.arcsin(np.clip(g[..., 2], -1.0, 1.0))


def unit_of_lb(l_deg: float, b_deg: float) -> np.ndarray:
    lon, b = np.radians(l_deg), np.radians(b_deg)
    return np.array([np.cos(b) * np.cos(lon), np.cos(b) * np.sin(lon), np.sin(b)]) @ galactic_matrix()


def pixel_lb(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    band, cell = np.divmod(np.asarray(pixels, dtype=np.int64), sky.N_RA)
    z = -1.0 + (2.0 * band + 1.0) / sky.N_Z
    ra = 2.0 * np.pi * (cell + 0.5) / sky.N_RA
    r = np.sqrt(1.0 - z * z)
    return lb_of_unit(np.stack([r * np.cos(ra), r * np.sin(ra), z], axis=-1))


# --- Photometric laws (numpy; the kernels carry the same formulas) ------------------------------------------


def k_coefficient(coef: tuple, x: np.ndarray, a0: np.ndarray) -> np.ndarray:
    """A_X / A0 of the EDR3 law at intrinsic BP-RP ``x`` and ``a0``, both clamped to the calibrated range."""
    x = np.clip(x, *K_X_RANGE)
    a = np.clip(a0, 0.0, K_A0_MAX)
    c = coef
    return (c[0] + c[1] * x + c[2] * x**2 + c[3] * x**3 + c[4] * a + c[5] * a**2 + c[6] * a**3 + c[7] * x * a
            + c[8] * a * x**2 + c[9] * x * a**2)


def completeness_params(m10: float = M10_MAG) -> tuple[float, float, float]:
    """(G0, w, s) of Cantat-Gaudin+2023 at ``m10`` (continuous at L)."""
    lo = min(m10, CG_L)
    return tuple(a * lo + b + c * max(m10 - CG_L, 0.0) for a, b, c in zip(CG_A, CG_B, CG_C, strict=True))


def completeness(g: np.ndarray, m10: float = M10_MAG) -> np.ndarray:
    """Fraction of stars of magnitude ``g`` that are detected: 1 - [(tanh((G - G0)/w) + 1)/2]^s."""
    g0, w, s = completeness_params(m10)
    g = np.asarray(g, dtype=np.float64)
    # tanh(x) is exactly -1 in float64 below x = -19.06, where the formula gives exactly 1: only the band
    # above is evaluated (7 % of the model tables' grid, so tables() takes a tenth of the time), same bits.
    inside = g < G_GEN_MAG
    band = (g > g0 - _TANH_SATURATED * w) & inside
    c = inside.astype(np.float64)
    c[band] = 1.0 - (0.5 * (np.tanh((g[band] - g0) / w) + 1.0)) ** s
    return c


#: |x| beyond which float64 tanh(x) is exactly +-1 (19.06), with a margin.
_TANH_SATURATED = 20.0


# --- Luminosity functions -----------------------------------------------------------------------------------


def early_b_dwarfs() -> tuple[tuple[str, float, float, float], ...]:
    """MAMAJEK_EARLY_B_DWARFS as (SpT, BP-RP, M_G, mass) rows like MAMAJEK_DWARFS' [D]."""
    (bv0, x0), (bv1, x1) = MAMAJEK_B9V_A0V_BV_BPRP
    slope = (x1 - x0) / (bv1 - bv0)
    return tuple((spt, x0 + slope * (bv - bv0), mv + MAMAJEK_B9V_G_MINUS_V, m)
                 for spt, mv, bv, m in MAMAJEK_EARLY_B_DWARFS)


def _mamajek() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    _, x, mg, m = zip(*early_b_dwarfs(), *MAMAJEK_DWARFS, strict=True)
    return np.array(mg), np.array(x), np.array(m)


def main_sequence(population: str = "thin") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(M_G, BP-RP, mass Msun) of the population's main sequence, brightest first."""
    if population in METAL_POOR_POPULATIONS:
        _, m, mg, x = zip(*MIST_FEH_M050_10GYR[::-1], strict=True)
        return np.array(mg), np.array(x), np.array(m)
    return _mamajek()


def ms_mass(mg: np.ndarray, population: str = "thin") -> np.ndarray:
    """Main-sequence mass (Msun) at absolute magnitude ``mg`` (log-linear in the sequence's rows)."""
    g, _, m = main_sequence(population)
    return 10 ** np.interp(mg, g, np.log10(m))


def ms_colour(mg: np.ndarray, population: str = "thin") -> np.ndarray:
    g, x, _ = main_sequence(population)
    return np.interp(mg, g, x)


def giant_colour(mg: np.ndarray) -> np.ndarray:
    return GIANT_COLOUR_AT_CLUMP + GIANT_COLOUR_SLOPE * (np.asarray(mg) - RED_CLUMP_MG)


def _main_sequence_lf(group: str) -> np.ndarray:
    """The group's main-sequence stars per MG_STEP bin of MG_GRID, normalised to 1: Kroupa's IMF on the
    population's sequence, times the fraction of each mass still on the main sequence (the thin disc's bins:
    formed at a constant rate within the bin's ages; "thin": over the whole disc's age)."""
    population = population_of(group)
    g = main_sequence(population)[0]
    inside = (MG_GRID >= g.min()) & (MG_GRID <= g.max())
    m = ms_mass(MG_GRID, population)
    ratio = m / KROUPA_BREAK_MSUN
    xi = np.where(m < KROUPA_BREAK_MSUN, ratio**-KROUPA_LOW, ratio**-KROUPA_HIGH)  # continuous at the break
    dm_dmg = np.abs(np.gradient(m, MG_GRID))
    tau = LIFETIME_SUN_GYR * m**-LIFETIME_POWER
    if group == "thin":
        alive = np.minimum(1.0, tau / THIN_DISC_AGE_GYR)
    elif population == "thin":
        young, old = THIN_AGE_BINS_GYR[int(group[4:])]
        alive = np.clip((tau - young) / (old - young), 0.0, 1.0)
    elif population in METAL_POOR_POPULATIONS:
        alive = np.ones_like(m)  # the isochrone ends at its own turn-off
    else:
        alive = (tau >= AGES_GYR[population]).astype(float)
    ms = np.where(inside, xi * dm_dmg * alive, 0.0)
    return ms / ms.sum()


def giant_fraction(group: str, giants: float = GIANT_FRACTION) -> float:
    """Giants per star of the group: ``giants``, none in the youngest thin-disc bin [D]: by the lifetime law its
    stars that have left the main sequence weighed over 5 Msun (10 Gyr (m/Msun)^-2.5 < 0.15 Gyr), supergiants,
    not the red clump and giant branch of the giants' luminosity function."""
    return 0.0 if group == "thin0" else giants


def luminosity_function(group: str, kind: int, giants: float = GIANT_FRACTION) -> np.ndarray:
    """Stars per MG_STEP bin of MG_GRID, per star of the group (the sum over both kinds is 1; a population's
    name: the population as one group). ``giants``: giants per star (the calibration tries others)."""
    share = giant_fraction(group, giants)
    if kind == 0:
        return _main_sequence_lf(group) * (1.0 - share)
    clump = np.exp(-0.5 * ((MG_GRID - RED_CLUMP_MG) / RED_CLUMP_SIGMA) ** 2)
    rgb = np.where((MG_GRID >= RGB_MG_RANGE[0]) & (MG_GRID <= RGB_MG_RANGE[1]), 10 ** (RGB_SLOPE * MG_GRID), 0.0)
    return (RED_CLUMP_SHARE * clump / clump.sum() + (1 - RED_CLUMP_SHARE) * rgb / rgb.sum()) * share


@functools.cache
def thin_number_weights() -> np.ndarray:
    """Each thin-disc age bin's share of the disc's stars: its local mass density (THIN_RHO0) over the mean mass
    of its main-sequence stars [D], normalised (once per process)."""
    mass = ms_mass(MG_GRID, "thin")
    n = np.array([rho / (mass @ lf) for rho, lf in
                  zip(THIN_RHO0, (_main_sequence_lf(f"thin{i}") for i in range(len(THIN_RHO0))), strict=True)])
    return n / n.sum()


def component_colour(group: str, kind: int) -> tuple[np.ndarray, float]:
    """Intrinsic BP-RP ridge on MG_GRID and the scatter about it (a group's or a population's)."""
    if kind == 0:
        return ms_colour(MG_GRID, population_of(group)), MS_COLOUR_SIGMA
    return giant_colour(MG_GRID), GIANT_COLOUR_SIGMA


def distance_modulus_centres() -> np.ndarray:
    centre = np.sqrt(DIST_EDGES_PC[:-1] * DIST_EDGES_PC[1:])
    return 5.0 * np.log10(centre / 10.0)


@functools.cache
def tables() -> dict[str, np.ndarray]:
    """The model's tables, once per process: per component the luminosity function, its cumulative, the
    colour ridge and the detected fraction of the function per (distance bin, A0)."""
    n_c = len(COMPONENTS)
    lf = component_lfs()
    ridge = np.array([component_colour(p, k)[0] for p, k in COMPONENTS])
    sigma = np.array([component_colour(p, k)[1] for p, k in COMPONENTS])
    cum = np.concatenate([np.zeros((n_c, 1)), np.cumsum(lf, axis=1)], axis=1)
    return {"lf": lf, "cum": cum, "ridge": ridge, "sigma": sigma, "detected": detected_tables(lf, ridge),
            "k_g_min": np.array(_k_g_min())}


def component_lfs(giants: float = GIANT_FRACTION) -> np.ndarray:
    """(components, MG_GRID) luminosity functions of COMPONENTS with ``giants`` giants per star."""
    return np.array([luminosity_function(p, k, giants) for p, k in COMPONENTS])


def detected_tables(lf: np.ndarray, ridge: np.ndarray, weight=None) -> np.ndarray:
    """(components, distance bins, A0) detected fraction of each component's luminosity function ``lf`` (on its
    colour ridge), each star also weighted by ``weight(g, bp_rp)`` of its G and observed BP-RP where given (a
    magnitude limit of the calibration or of a published count, gaiasim.validate.sky_fidelity)."""
    mu = distance_modulus_centres()
    a = A0_GRID[:, None]
    detected = np.empty((len(lf), len(mu), len(A0_GRID)))
    for c in range(len(lf)):
        x = ridge[c][None, :]
        g = MG_GRID[None, None, :] + mu[:, None, None] + (k_coefficient(K_G, x, a) * a)[None]  # (D, A, M)
        w = completeness(g)
        if weight is not None:
            w = w * weight(g, (x + (k_coefficient(K_BP, x, a) - k_coefficient(K_RP, x, a)) * a)[None])
        detected[c] = (w * lf[c]).sum(axis=2)
    return detected


def _k_g_min() -> float:
    """Lower bound of k_G over the clamped law's range, minus a margin [D]: lets a star's magnitude be
    drawn below the faintest that can still be detected without missing any."""
    x, a = np.meshgrid(np.linspace(*K_X_RANGE, 200), np.linspace(0.0, K_A0_MAX, 400))
    return float(k_coefficient(K_G, x, a).min()) - 0.01


def local_densities(thin: float = THIN_LOCAL_PC3, thick_to_thin: float = THICK_TO_THIN,
                    halo_to_thin: float = HALO_TO_THIN, bulge: str = BULGE_MODEL,
                    bulge_scale: float = BULGE_NUMBER_SCALE) -> np.ndarray:
    """Number density (pc^-3) of each group's stars (GROUPS): at the Sun for the thin disc's age bins (``thin`` split
    by :func:`thin_number_weights`), the thick disc and the halo, at its centre for the bulge; ``[:-1].sum()`` is
    the local density. The arguments (defaults: the frozen values) let gaiasim/sim/sky_calibration.py try others."""
    return np.array([*thin * thin_number_weights(), thin * thick_to_thin, thin * halo_to_thin,
                     BULGE_MODELS[bulge].n0_pc3 * bulge_scale])


def model_params(dust_a0: float = DUST_A0_PER_KPC, thin_hr_old: tuple = THIN_HR_OLD_KPC,
                 thick_hr: float = THICK_HR_KPC, thick_hz: float = THICK_HZ_KPC,
                 bulge: str = BULGE_MODEL, dust: str = DUST_MODEL) -> np.ndarray:
    """The scalar parameters of the kernels, in the order kernels_galaxy.P_* names them (defaults: the frozen
    values; the arguments let gaiasim/sim/sky_calibration.py try the published alternatives). ``dust_a0`` is
    Li+2018's normalisation, unused by ``dust = "al05"``."""
    b = BULGE_MODELS[bulge]
    bar = np.radians(b.angle_deg)
    if dust not in DUST_MODELS:
        raise ValueError(f"dust model {dust!r} unknown; use one of {', '.join(DUST_MODELS)}")
    return np.array([
        R_SUN_KPC, Z_SUN_KPC, R_DISC_MAX_KPC, *THIN_HR_YOUNG_KPC, *thin_hr_old, thick_hr, thick_hz,
        THICK_XL_KPC, HALO_POWER, HALO_EPS, HALO_CORE_KPC, b.x0, b.y0, b.z0, b.r_cut, np.cos(bar), np.sin(bar),
        DUST_SCALE_LENGTH_KPC, DUST_SCALE_HEIGHT_KPC, DUST_SUN_ABOVE_KPC,
        AL05_AV_PER_GAS if dust == "al05" else dust_a0, PIXEL_SR, b.c_perp, b.c_para,
        b.bone_dz, b.bone_x, b.sigma_cut, float(b.profile == "sech2"),
        float(DUST_MODELS.index(dust)), AL05_R0_KPC, *AL05_HI, *AL05_H2, *AL05_GC, *AL05_Z_H2, AL05_Z_HI_RATIO,
        AL05_Z_SHIFT_KPC, *AL05_METALS, *AL05_GAMMA, *AL05_TUNE,
    ])


PIXEL_SR = sky.PIXEL_DEG2 * (np.pi / 180.0) ** 2


def line_of_sight(l_rad: np.ndarray, b_rad: np.ndarray, params: np.ndarray | None = None,
                  local: np.ndarray | None = None, detected: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Expected detected stars per (component, distance bin) and A0 at the distance edges, per direction:
    arrays (n, components, bins) and (n, bins + 1). ``params``, ``local``, ``detected``: other
    :func:`model_params`, :func:`local_densities` or detected-fraction tables (the calibration's)."""
    l_rad, b_rad = np.atleast_1d(l_rad).astype(np.float64), np.atleast_1d(b_rad).astype(np.float64)
    counts = np.empty((len(l_rad), len(COMPONENTS), len(DIST_EDGES_PC) - 1))
    a0 = np.empty((len(l_rad), len(DIST_EDGES_PC)))
    _kg.line_of_sight(l_rad, b_rad, DIST_EDGES_PC, model_params() if params is None else params,
                      local_densities() if local is None else local, np.array(THIN_EPS),
                      tables()["detected"] if detected is None else detected, A0_STEP, counts, a0)
    return counts, a0


def expected_sources(pixels: np.ndarray, scale: float) -> np.ndarray:
    """Poisson mean of the detected sources of each pixel at ``scale`` (companions not included)."""
    lon, lat = pixel_lb(pixels)
    t = tables()
    out = np.empty(len(lon))
    _kg.expected_totals(lon, lat, DIST_EDGES_PC, model_params(), local_densities(), np.array(THIN_EPS), t["detected"],
                        A0_STEP, out)
    return out * scale


@functools.cache
def mean_sources_per_pixel_cached(scale: float) -> np.ndarray:
    """:func:`expected_sources` of every pixel, once per process and scale (~ seconds)."""
    return expected_sources(np.arange(sky.N_PIXELS), scale)


#: log10 mass grid of the companions' magnitudes (M8V to B0V, 0.01 dex).
LOG_MASS_GRID = np.arange(math.log10(0.082), math.log10(17.5) + 0.005, 0.01)


def sequence_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(log10 mass ascending, M_G per population on it, (populations, masses)) for the companions'
    magnitudes and the primaries' masses. Above a sequence's heaviest row its end value (an old population has
    no heavier dwarfs); below its lightest, Mamajek's sequence shifted to meet it there [U]."""
    g_sun, _, m_sun = _mamajek()
    solar = np.interp(LOG_MASS_GRID, np.log10(m_sun[::-1]), g_sun[::-1])
    mg = np.empty((len(POPULATIONS), len(LOG_MASS_GRID)))
    for i, population in enumerate(POPULATIONS):
        g, _, m = main_sequence(population)
        mg[i] = np.interp(LOG_MASS_GRID, np.log10(m[::-1]), g[::-1])
        light = LOG_MASS_GRID < math.log10(m.min())
        offset = g.max() - np.interp(math.log10(m.min()), np.log10(m_sun[::-1]), g_sun[::-1])
        mg[i, light] = solar[light] + offset
    return LOG_MASS_GRID.copy(), mg


def materialise(seed: int, pixels: np.ndarray, scale: float,
                physics: bool = False) -> pa.Table | tuple[pa.Table, pa.Table, pa.Table]:
    """All detected sources of ``pixels`` at ``scale``: deterministic in (seed, pixel), independent of the
    other pixels. Rows as ``sky.TRUTH_SOURCES``; a pixel's resolved companions follow their primaries.
    ``physics``: (sources, their per-star truth row for row (``source_physics.TRUTH_SOURCE_PHYSICS``), the
    pixels with their expected primaries (``TRUTH_SKY_PIXELS``)); the sources are the same either way."""
    pixels = np.unique(np.asarray(pixels, dtype=np.int64))
    key = int(seed) ^ _GALAXY_STREAM
    counts, a0 = line_of_sight(*pixel_lb(pixels))
    n_primary = np.empty(len(pixels), dtype=np.int64)
    mean = counts.sum(axis=(1, 2)) * scale
    _kg.count_sources(key, pixels, mean, n_primary)
    slots = np.zeros(len(pixels) + 1, dtype=np.int64)
    np.cumsum(2 * n_primary, out=slots[1:])
    n_slots = int(slots[-1])
    z, ra, g, bp_rp, dist, a0_star, mg, x0, sep = (np.empty(n_slots) for _ in range(9))
    pop, giant, comp = (np.empty(n_slots, dtype=np.int8) for _ in range(3))
    used = np.empty(len(pixels), dtype=np.int64)
    t = tables()
    log_m, mg_of_m = sequence_arrays()
    _kg.fill_sources(key, pixels, n_primary, slots, sky.N_Z, sky.N_RA, counts, a0, DIST_EDGES_PC, MG_GRID, MG_STEP,
                     t["cum"], t["ridge"], t["sigma"], np.array(K_G), np.array(K_BP), np.array(K_RP),
                     np.array(K_X_RANGE), K_A0_MAX, float(t["k_g_min"]), np.array(completeness_params()),
                     G_GEN_MAG, A0_SCATTER, np.array([k for _, k in COMPONENTS]), np.array(MF_MASS_MSUN),
                     np.array(MF_FRACTION), log_m, mg_of_m[GROUP_POPULATION], GROUP_POPULATION, binary_params(),
                     z, ra, g, bp_rp, used, pop, giant, comp, dist, a0_star, mg, x0, sep)
    keep = np.concatenate([np.arange(s, s + u) for s, u in zip(slots[:-1], used, strict=True)]) if len(pixels) \
        else np.empty(0, np.int64)
    z, ra, g, bp_rp = z[keep], ra[keep], g[keep], bp_rp[keep]
    r = np.sqrt(1.0 - z * z)
    ra_deg, dec_deg = radec_from_unit(np.stack([r * np.cos(ra), r * np.sin(ra), z], axis=-1))
    pixel_of = np.repeat(pixels, used)
    starts = np.repeat(np.cumsum(used) - used, used)
    source_id = (pixel_of << sky.SOURCE_ID_SHIFT) + (np.arange(len(keep)) - starts)
    sources = pa.table(
        {
            "source_id": source_id,
            "pixel": pixel_of.astype(np.int32),
            "ra_deg": ra_deg,
            "dec_deg": dec_deg,
            "g_mag": g.astype(np.float32),
            "bp_rp": bp_rp.astype(np.float32),
        },
        schema=sky.TRUTH_SOURCES,
    )
    if not physics:
        return sources
    sep = sep[keep].astype(np.float32)
    sky_pixels = pa.table({"pixel": pixels.astype(np.int32), "expected_primaries": mean}, schema=TRUTH_SKY_PIXELS)
    return sources, pa.table(
        {
            "source_id": source_id,
            "population": pop[keep],
            "giant": giant[keep].astype(bool),
            "companion": comp[keep],
            "distance_pc": dist[keep].astype(np.float32),
            "a0_mag": a0_star[keep].astype(np.float32),
            "abs_g_mag": mg[keep].astype(np.float32),
            "bp_rp0": x0[keep].astype(np.float32),
            "pair_sep_arcsec": pa.array(sep, mask=np.isnan(sep)),
        },
        schema=TRUTH_SOURCE_PHYSICS,
    ), sky_pixels


def binary_params() -> np.ndarray:
    return np.array([Q_MIN, LOG_P_DAYS_MEDIAN, LOG_P_DAYS_SIGMA, MERGE_ARCSEC, WIDE_ARCSEC, MIN_STAR_MSUN,
                     GIANT_MASS_MSUN])
