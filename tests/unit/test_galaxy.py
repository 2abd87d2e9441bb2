"""The population sky (gaiasim.sim.galaxy, docs/sky.md): its published constants equal their literal values,
and its outputs land on the published numbers within the stated tolerances. Sample pixels, never the sky."""

from __future__ import annotations

import numpy as np
import pytest

from gaiasim.sim import galaxy as g
from gaiasim.sim import kernels_galaxy as kg
from gaiasim.sim import sky
from gaiasim.spec import SKY_MODELS, SpecError, make_spec

#: Published values in the units of their sources (docs/sky-sources.md; status in docs/sky.md).
PUBLISHED = {
    "sun": (8.5, 0.015),  # Robin+2003 via SynthPop [C-impl]
    "thin_rho0": (4.0, 7.9, 6.2, 4.0, 5.8, 4.9, 6.6),  # Robin+2003 Table 3 [C-impl]
    "thin_eps": (0.0140, 0.0268, 0.0375, 0.0551, 0.0696, 0.0785, 0.0791),
    "thin_hr": ((5.0, 3.0), (2.53, 1.32)),
    "thick_xl": 0.4,  # Robin+2003 [C-impl]; h_R and h_z are the calibration's choices among published values
    "halo": (2.44, 0.76, 0.5),
    # bulge/bar laws: N0 (pc^-3), x0, y0, z0 (kpc), angle (deg), c_perp, c_para, bone dz, x_bone, R_c, sigma (kpc)
    "robin2003": (13.7, 1.59, 0.424, 0.424, 11.1, 2.0, 4.0, 0.0, 1.0, 2.54, 0.5, "gauss"),  # [C-impl] SynthPop
    "gums_dr3": (4.508e10 * 1e-9, 1.076, 0.49, 0.30, np.degrees(0.509), 3.329, 3.007, 0.534, 0.870, 4.19555, 4e-6,
                 "sech2"),  # GUMS DR3 bar [C-impl] SynthPop: 4.508e10 kpc^-3, angle 0.509 rad
    "robin2012b": (4.07, 0.76, 0.41, 11.10, 3.797, 1.434, 5.99, 0.5),  # Robin+2012 Model B [C-impl] ch_vars
    "juric": 0.12,  # Juric+2008 abstract [C]; f_H is the calibration's choice of its two implementations
    "dust": (3.192, 0.103, 0.023),  # Li+2018 abstract [C]
    # Amores & Lepine 2005 Model A, two public transcriptions of EXTIN.PRO [C-impl]: r0; HI; H2; centre; z_H2;
    # z_HI / z_H2; mid-plane shift; metallicity; gammas; A_V per gas column (3.086 x 0.57); the l 120-200 tuning
    "al05": (7.5, (0.7, 7.0, 1.9), (58.0, 1.2, 3.5), (240.0, 0.095), (0.036, 0.08), 1.8, 0.02,
             (1.2, 9.6, 9.0, 0.5, 0.1), (1.0, 2.0), 3.086 * 0.57, (120.0, 200.0, 2.0)),
    "a0_scatter": 0.10,  # EDR3 documentation 2.2.6 [C]
    "k_g": (0.995970, -0.159726, 0.0122381, 0.000907266, -0.0377160, 0.00151347, -2.52365e-5, 0.0114523,
            -0.000936915, -0.000260297),  # EDR3 extinction law, main sequence [C-impl]
    "cantat_gaudin": ((0.98488, -0.0039354, 0.0061441), (0.64732, 0.22305, 0.036817),
                      (0.69291, -0.093319, 0.35141), 20.5194),  # gaiaunlimited surveyTCG.py [C-impl]
    "red_clump_mg": 0.495,  # Ruiz-Dern+2018 [C]
    "kroupa": (0.5, 1.3, 2.3),  # Kroupa 2001 via SynthPop [C-impl]
    "multiplicity": ((0.26, 0.44, 0.50), 4.56, 2.4),  # Duchene & Kraus 2013 [C-sec]; Tokovinin 2014 [C]
    "g2v": ("G2V", 0.823, 4.65, 1.02),  # Mamajek v2019.3.22 [C-impl]
    "b5v": ("B5V", -0.9, -0.156, 4.6),  # the same table: M_V, B-V, mass
    # MIST v1.2 [Fe/H] -0.50, 10 Gyr, Gaia EDR3 bands (SynthPop c3d3d54, pop4.cmd) [C-impl]: EEP 428, initial mass,
    # G, BP - RP from the file's G_EDR3 3.9886, BP_EDR3 4.2413, RP_EDR3 3.5731 (rounded)
    "mist_turnoff": (428, 0.8802, 3.989, 0.668),
}

#: The numbers the model is checked against, with their tolerances (docs/sky.md section 8).
SOURCES_WITH_G = 1_806_254_432  # Gaia EDR3 [C]; +-5 %
SGR_I_DENSITY = 4.6e6  # deg^-2, ESA Sgr-I image [C-sec]; within x2 (docs/sky.md 8b; x2.5 before the AL05 dust)
LOCAL_DENSITY = (0.072, 0.079)  # pc^-3, GCNS [D]; +-15 %


def test_the_constants_have_their_published_values():
    p = PUBLISHED
    assert (g.R_SUN_KPC, g.Z_SUN_KPC) == p["sun"]
    assert g.THIN_RHO0 == p["thin_rho0"] and g.THIN_EPS == p["thin_eps"]
    assert (g.THIN_HR_YOUNG_KPC, g.THIN_HR_OLD_KPC) == p["thin_hr"]
    assert g.THICK_XL_KPC == p["thick_xl"]
    assert (g.HALO_POWER, g.HALO_EPS, g.HALO_CORE_KPC) == p["halo"]
    assert tuple(g.BULGE_MODELS["robin2003"]) == p["robin2003"]
    assert tuple(g.BULGE_MODELS["gums_dr3"])[:-1] == pytest.approx(p["gums_dr3"][:-1], rel=2e-4)
    assert g.BULGE_MODELS["gums_dr3"].profile == p["gums_dr3"][-1]
    b = g.BULGE_MODELS["robin2012b"]
    assert (b.x0, b.y0, b.z0, b.angle_deg, b.c_perp, b.c_para, b.r_cut, b.sigma_cut) == p["robin2012b"]
    assert g.THICK_TO_THIN == p["juric"]
    assert (g.DUST_SCALE_LENGTH_KPC, g.DUST_SCALE_HEIGHT_KPC, g.DUST_SUN_ABOVE_KPC) == p["dust"]
    assert (g.AL05_R0_KPC, g.AL05_HI, g.AL05_H2, g.AL05_GC, g.AL05_Z_H2, g.AL05_Z_HI_RATIO, g.AL05_Z_SHIFT_KPC,
            g.AL05_METALS, g.AL05_GAMMA, g.AL05_AV_PER_GAS, g.AL05_TUNE) == p["al05"]
    assert g.A0_SCATTER == p["a0_scatter"] and g.K_G == p["k_g"]
    assert (g.CG_A, g.CG_B, g.CG_C, g.CG_L) == p["cantat_gaudin"]
    assert g.RED_CLUMP_MG == p["red_clump_mg"]
    assert (g.KROUPA_BREAK_MSUN, g.KROUPA_LOW, g.KROUPA_HIGH) == p["kroupa"]
    assert ((g.MF_FRACTION[1], g.MF_FRACTION[2], g.MF_FRACTION[4]), g.LOG_P_DAYS_MEDIAN,
            g.LOG_P_DAYS_SIGMA) == p["multiplicity"]
    assert p["g2v"] in g.MAMAJEK_DWARFS and p["b5v"] in g.MAMAJEK_EARLY_B_DWARFS
    assert p["mist_turnoff"] in g.MIST_FEH_M050_10GYR


def test_the_old_metal_poor_populations_end_at_a_metal_poor_turn_off():
    """The thick disc's and halo's main sequences end near M_G 3.6 (MIST, [Fe/H] -0.5, 10 Gyr) with the bluest
    dwarfs at BP-RP ~0.67, not at the Mamajek sequence's M_G ~5.5 of a solar 11-14 Gyr turn-off; at a mass a
    metal-poor dwarf is brighter than a solar one; the thin disc keeps its young, bright stars."""
    for population in g.METAL_POOR_POPULATIONS:
        lf = g.luminosity_function(population, 0)
        brightest = g.MG_GRID[np.flatnonzero(lf > 0)[0]]
        assert 3.55 < brightest < 3.7
        ridge, _ = g.component_colour(population, 0)
        assert ridge[lf > 0].min() == pytest.approx(0.668, abs=0.002)
        assert np.all(g.ms_mass(np.array([5.0, 8.0]), population) < g.ms_mass(np.array([5.0, 8.0]), "thin"))
    assert g.MG_GRID[np.flatnonzero(g.luminosity_function("thin", 0) > 0)[0]] < 1.0
    log_m, mg = g.sequence_arrays()
    assert np.all(np.diff(mg, axis=1) <= 0)  # heavier, brighter: one magnitude per mass for the companions
    thick = g.POPULATIONS.index("thick")
    assert np.interp(np.log10(0.1), log_m, mg[thick]) == pytest.approx(12.982, abs=0.02)


def test_the_calibrated_values_lie_in_their_published_ranges():
    """The [D-fit] values frozen by gaiasim.sim.sky_calibration (galaxy.CALIBRATION): each among the published
    alternatives the calibration scanned (docs/sky-sources.md 2.1, 2.2, 3.2), and the thin disc's density the
    one that gives the sky EDR3's total (test_the_sky_holds_the_sources_of_dr3)."""
    assert 0.7 <= g.DUST_A0_PER_KPC <= 1.0  # "0.7-1.0 mag/kpc", sky-sources 3.2
    assert g.DUST_MODEL in g.DUST_MODELS
    assert g.THICK_HZ_KPC in (0.8, 0.795, 0.9) and g.THICK_HR_KPC in (2.5, 2.919, 3.6)
    assert g.THIN_HR_OLD_KPC in ((2.53, 1.32), (2.011, 1.310)) and g.HALO_TO_THIN in (0.0051, 0.001)
    assert g.BULGE_MODEL in g.BULGE_MODELS and 0.2 <= g.BULGE_NUMBER_SCALE <= 2.0
    assert 0.003 <= g.GIANT_FRACTION <= 0.012  # the fourth run's scan (sky_calibration.GIANT_FRACTIONS)
    assert g.CALIBRATION.startswith("docs/sky-calibration.md")


def test_the_bulge_laws_take_their_central_density_at_the_centre_and_fall_off():
    """Each law (one generalised kernel form) is 1 at the Galactic centre, falls along every axis, and the bar's
    near end lies at l > 0: more bulge stars at l = +6 than at l = -6 (b = -4)."""
    for name in g.BULGE_MODELS:
        p = g.model_params(bulge=name)
        local = np.zeros(len(g.GROUPS))
        local[-1] = 1.0
        out = np.empty(len(g.GROUPS))
        eps = np.array(g.THIN_EPS)
        kg.densities(g.R_SUN_KPC, 0.0, -g.Z_SUN_KPC, p, local, eps, out)
        assert out[-1] == pytest.approx(1.0)
        for dx, dy, dz in ((0.5, 0, 0), (0, 0.5, 0), (0, 0, 0.5)):
            kg.densities(g.R_SUN_KPC - dx, dy, dz - g.Z_SUN_KPC, p, local, eps, out)
            assert 0.0 < out[-1] < 1.0
        pixels = sky.pixel_of_unit(np.array([g.unit_of_lb(6.0, -4.0), g.unit_of_lb(-6.0, -4.0)]))
        counts, _ = g.line_of_sight(*g.pixel_lb(pixels), p, g.local_densities(bulge=name))
        near, far = counts[:, -2:].sum(axis=(1, 2))
        assert near > far, name


@pytest.mark.parametrize(("x", "a0", "k_g", "e_over_a0"), [
    (1.0, 0.1, 0.847, 0.411), (1.0, 1.0, 0.823, 0.403), (1.0, 3.0, 0.778, 0.387),  # docs/sky-sources.md 3.12
    (0.0, 1.0, 0.960, 0.475), (0.5, 1.0, 0.888, 0.440), (2.0, 1.0, 0.715, 0.386),  # 3.13
])
def test_the_extinction_law_gives_the_documented_coefficients(x, a0, k_g, e_over_a0):
    assert g.k_coefficient(g.K_G, x, a0) == pytest.approx(k_g, abs=1.5e-3)
    assert g.k_coefficient(g.K_BP, x, a0) - g.k_coefficient(g.K_RP, x, a0) == pytest.approx(e_over_a0, abs=1.5e-3)


def test_the_extinction_law_is_clamped_to_its_calibrated_colours():
    assert g.k_coefficient(g.K_G, 3.5, 1.0) == g.k_coefficient(g.K_G, g.K_X_RANGE[1], 1.0)
    assert g.k_coefficient(g.K_G, -0.5, 1.0) == g.k_coefficient(g.K_G, g.K_X_RANGE[0], 1.0)


@pytest.mark.parametrize(("m10", "g50", "g90", "g99"), [(21.0, 21.09, 20.85, 20.51), (20.0, 20.03, 19.30, 18.26),
                                                          (18.0, 18.02, 17.19, 16.00)])  # docs 5.3 [D]
def test_completeness_falls_off_as_cantat_gaudin_2023(m10, g50, g90, g99):
    assert g.completeness(np.array([g50, g90, g99]), m10) == pytest.approx([0.50, 0.90, 0.99], abs=0.02)


def test_completeness_evaluates_the_formula_only_where_it_is_not_exactly_one_with_the_same_bits():
    mags = np.linspace(-5.0, 25.0, 300_001)
    g0, w, s = g.completeness_params()
    formula = np.where(mags < g.G_GEN_MAG, 1.0 - (0.5 * (np.tanh((mags - g0) / w) + 1.0)) ** s, 0.0)
    assert np.array_equal(g.completeness(mags), formula)


def test_completeness_at_the_faint_end_of_the_default_sky():
    c205, c211, c_gen = g.completeness(np.array([20.5, 21.1, g.G_GEN_MAG]))
    assert c205 == pytest.approx(0.99, abs=0.01) and c211 == pytest.approx(0.48, abs=0.05) and c_gen == 0.0


def test_the_dust_column_follows_the_cosecant_law_out_of_the_plane():
    """A0 = a0 h / sin b exp(-(z_d + d0 sin b) / h) from the grid's first edge d0 on
    (docs/sky-sources.md 3.8; R ~ R_sun along this line of sight)."""
    _, a0 = g.line_of_sight(np.radians([90.0]), np.radians([60.0]), g.model_params(dust="li2018"))
    h, sin_b, d0 = g.DUST_SCALE_HEIGHT_KPC, np.sin(np.radians(60.0)), g.DIST_EDGES_PC[0] * 1e-3
    z = g.DUST_SUN_ABOVE_KPC
    want = g.DUST_A0_PER_KPC * h / sin_b * np.exp(-(z + d0 * sin_b) / h)
    assert a0[0, -1] == pytest.approx(want, rel=0.01)


#: A_V to Baade's window, (l, b) = (1.001, -3.885): 1.26 to 2.79 mag over its 40' x 40' (Stanek 1996, ApJ 460
#: L37, abstract [C]; docs/sky-sources.md 3.18). A0 (550 nm) is read as A_V [D].
BAADE_AV = (1.26, 2.79)


def test_the_bulge_windows_lie_behind_the_published_extinction():
    """The dust in use puts Baade's window within Stanek 1996's range, widened by 10 % (a smooth model, and a
    window whose extinction varies by x2 across it); Li+2018's disc, extrapolated into the inner Galaxy, puts it
    above the range's top and Sgr-I behind 6 mag (docs/sky.md section 4)."""
    lb = np.radians([[1.001, -3.885], [1.25, -2.65]])

    def a0_to_8_kpc(params):
        _, a0 = g.line_of_sight(lb[:, 0], lb[:, 1], params)
        return [np.interp(8000.0, g.DIST_EDGES_PC, row) for row in a0]

    baade, sgr_i = a0_to_8_kpc(None)
    assert BAADE_AV[0] / 1.1 < baade < BAADE_AV[1] and sgr_i < BAADE_AV[1]
    li_baade, li_sgr_i = a0_to_8_kpc(g.model_params(dust="li2018"))
    assert li_baade > BAADE_AV[1] and li_sgr_i > 5.0
    with pytest.raises(ValueError, match=r"^dust model 'x' unknown; use one of li2018, al05$"):
        g.model_params(dust="x")


def test_a_distant_disc_star_is_dimmed_and_reddened():
    """A G2V star 3 kpc away at (l, b) = (90, 0): A0 ~ 0.8 mag/kpc x 3 kpc, E(BP-RP)/A0 in 0.38-0.48 (docs
    sky-sources 7), G dimmed by k_G A0."""
    _, a0 = g.line_of_sight(np.radians([90.0]), np.radians([0.0]))
    a = np.interp(3000.0, g.DIST_EDGES_PC, a0[0])
    assert 1.5 < a < 3.5
    x = 0.823
    e = (g.k_coefficient(g.K_BP, x, a) - g.k_coefficient(g.K_RP, x, a)) * a
    assert 0.38 < e / a < 0.48 and g.k_coefficient(g.K_G, x, a) * a > 0.7 * a


def _density(l_deg: float, b_deg: float) -> float:
    pixel = sky.pixel_of_unit(g.unit_of_lb(l_deg, b_deg)[None])
    return float(g.expected_sources(pixel, 1.0)[0] / sky.PIXEL_DEG2)


def test_bulge_windows_reach_the_published_density_and_dwarf_high_latitudes():
    sgr_i, baade, ngp = _density(1.25, -2.65), _density(1.02, -3.92), _density(0.0, 90.0)
    assert SGR_I_DENSITY / 2 < sgr_i < SGR_I_DENSITY * 2 and SGR_I_DENSITY / 2 < baade < SGR_I_DENSITY * 2
    assert sgr_i / ngp > 300
    peak = max(_density(lon, b) for lon in (-2.0, 0.0, 2.0) for b in (-6.0, -4.0, -2.5, 2.5, 4.0, 6.0))
    assert peak > SGR_I_DENSITY / 2


def test_the_local_density_is_gcns_s():
    lo, hi = LOCAL_DENSITY
    assert 0.85 * lo < g.local_densities()[:-1].sum() < 1.15 * hi


def test_the_sky_holds_the_sources_of_dr3():
    """Every 97th pixel's expected primaries, scaled to the sky, plus the resolved companions measured on a
    sparser sample: 1.806e9 within 5 %."""
    primaries = g.expected_sources(np.arange(5, sky.N_PIXELS, 97), 1.0).mean() * sky.N_PIXELS
    sample = np.arange(11, sky.N_PIXELS, 1999)
    companions = g.materialise(1, sample, 0.05).num_rows / g.expected_sources(sample, 0.05).sum()
    assert 1.0 < companions < 1.1
    assert primaries * companions == pytest.approx(SOURCES_WITH_G, rel=0.05)


def test_the_plane_is_redder_and_fainter_than_the_pole():
    plane = g.materialise(7, sky.pixel_of_unit(g.unit_of_lb(30.0, 1.0)[None]), 0.05)
    ring = np.array([g.unit_of_lb(lon, 88.0) for lon in range(0, 360, 5)])
    pole = g.materialise(7, np.unique(sky.pixel_of_unit(ring)), 1.0)
    assert np.median(plane["bp_rp"]) > np.median(pole["bp_rp"]) + 0.3
    assert plane["g_mag"].to_numpy().max() < g.G_GEN_MAG


def test_the_sky_is_deterministic_in_seed_and_pixel():
    pixels = np.arange(300_000, 300_030)
    a, b, c = g.materialise(5, pixels, 0.1), g.materialise(5, pixels[::-1], 0.1), g.materialise(6, pixels, 0.1)
    assert a.equals(b) and not a.equals(c)
    assert sky.materialise(5, pixels, 0.1, "galaxy").equals(a)
    ids = a["source_id"].to_numpy()
    assert len(np.unique(ids)) == len(ids) and np.all(ids >> sky.SOURCE_ID_SHIFT == a["pixel"].to_numpy())


def test_the_spec_names_the_sky_model():
    assert "sky" not in make_spec().to_json()  # the default stays out: digests of older specs are unchanged
    assert make_spec(sky="galaxy").to_json()["sky"] == "galaxy"
    assert make_spec(**make_spec(sky="galaxy").to_json()).sky == "galaxy"
    with pytest.raises(SpecError, match=r"^sky = 'besancon': unknown sky model; use one of toy, galaxy") as e:
        make_spec(sky="besancon")
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="unknown sky model"):
        sky.materialise(1, np.arange(3), 0.1, "besancon")
    assert sky.MODELS == SKY_MODELS


def test_the_thin_disc_reaches_b0v_on_mamajek_s_early_b_rows():
    """B0V-B8V carry Mamajek's M_V and mass; BP-RP continues his B9V-A0V colours linearly in B-V and G - V is
    B9V's: the derived rows meet B9V's own, the sequence runs monotonically from B0V (M_G -3.98, 17.5 Msun), and
    the thin disc's luminosity function starts there, inside the grid."""
    rows = g.early_b_dwarfs()
    b9v = g.MAMAJEK_DWARFS[0]
    assert rows[0][0] == "B0V" and rows[0][2] == pytest.approx(-3.983) and rows[0][3] == 17.5
    assert rows[-1][1] < b9v[1] and rows[-1][2] < b9v[2]
    mg, x, m = g.main_sequence("thin")
    assert np.all(np.diff(mg) > 0) and np.all(np.diff(x) > 0) and np.all(np.diff(m) < 0)
    lf = g.luminosity_function("thin", 0)
    assert g.MG_GRID[0] < -3.98 < g.MG_GRID[np.flatnonzero(lf > 0)[0]] < -3.9
    assert 10 ** g.LOG_MASS_GRID[-1] == pytest.approx(17.5, rel=0.02)


def test_the_thin_disc_s_age_bins_hold_the_stars_their_ages_leave_on_the_main_sequence():
    """Each of Robin+2003's seven age bins is a density group with its own luminosity function: the youngest holds
    the B0V stars, the 7-10 Gyr bin nothing heavier than the lifetime law's turn-off (10 (m/Msun)^-2.5 Gyr = 7 Gyr:
    1.153 Msun), and no giants in the youngest; each bin's share of the disc's stars is its mass density over its
    stars' mean mass, so the heavy young bin holds fewer stars than its mass share."""
    assert g.GROUPS[:len(g.THIN_AGE_BINS_GYR)] == tuple(f"thin{i}" for i in range(7))
    assert [g.POPULATIONS[i] for i in g.GROUP_POPULATION] == ["thin"] * 7 + ["thick", "halo", "bulge"]
    brightest = [g.MG_GRID[np.flatnonzero(g.luminosity_function(f"thin{i}", 0) > 0)[0]] for i in range(7)]
    assert brightest[0] < -3.9 and np.all(np.diff(brightest) > 0)
    turn_off = g.ms_mass(np.array([brightest[-1]]), "thin")[0]
    assert turn_off == pytest.approx((10.0 / 7.0) ** 0.4, rel=0.03)
    assert g.giant_fraction("thin0") == 0.0 and g.luminosity_function("thin0", 1).sum() == 0.0
    for grp in g.GROUPS[1:]:
        assert g.luminosity_function(grp, 0).sum() + g.luminosity_function(grp, 1).sum() == pytest.approx(1.0)
    w = g.thin_number_weights()
    mass_share = np.array(g.THIN_RHO0) / np.sum(g.THIN_RHO0)
    assert w.sum() == pytest.approx(1.0) and w[0] < 0.8 * mass_share[0] and w[-1] > mass_share[-1]
    local = g.local_densities()
    assert local[:7].sum() == pytest.approx(g.THIN_LOCAL_PC3) and local[7] == pytest.approx(0.12 * g.THIN_LOCAL_PC3)


def test_the_young_bins_crowd_the_plane_and_the_truth_keeps_four_population_codes():
    """Away from the plane the youngest bin (axis ratio 0.014) thins out far faster than the oldest (0.079); a plane
    pixel's stars come from every group, and its truth names the four populations only."""
    counts, _ = g.line_of_sight(np.radians([90.0, 90.0]), np.radians([0.5, 60.0]))
    per_group = counts.sum(axis=2).reshape(2, len(g.GROUPS), 2).sum(axis=2)
    share = per_group / per_group.sum(axis=1, keepdims=True)
    assert share[1, 0] / share[1, 6] < 0.1 * share[0, 0] / share[0, 6]
    _, physics, _ = g.materialise(3, sky.pixel_of_unit(g.unit_of_lb(30.0, 1.0)[None]), 0.05, physics=True)
    codes = set(physics["population"].to_numpy().tolist())
    assert 0 in codes and codes <= {0, 1, 2, 3}
