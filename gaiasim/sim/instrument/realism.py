"""The imperfect instrument: how the simulated spacecraft departs from its nominal description
(docs/instrument.md, section 4).

Every effect is switchable (:class:`Effects`; a day spec's ``instrument`` names a set: ``realistic``, the
default, or ``ideal``, the nominal instrument of :mod:`gaiasim.sim.instrument.electronics` with none of
them) and recorded in the truth: the per-CCD state in ``truth/instrument``, and per window the background,
the image centre, the charge-transfer displacement and the crossing time in ``truth/ccd``.

The effects, their sources and the amplitudes used ([U]: not published; chosen at the size the cited
paper shows, or smaller where Gaia calibrates the effect before IDT sees it):

- **Straylight**: the background is dominated by scattered sunlight in CCD rows 1-4 and by zodiacal
  light and the Milky Way in rows 5-7, repeats with the 6-h spin and varies over orders of magnitude
  around an average sky of 0.2 e-/px/s (GDR2 documentation section 3.3.6; GDR3 documentation section
  5.3.1: up to 27 e-/px/s in the worst CCD). Per row: a mean straylight level [U] modulated by the spin
  phase with a phase of its own per FoV and row.
- **CCD-to-CCD spread** of gain, bias, read noise and throughput about the nominal table (Hambly+2018,
  A&A 616, A15, Table 1 gives the nominal values; the spread left by the calibration IDT starts from is
  [U]); bias offsets jump by a few ADU a few times a year per CCD (GEDR3 documentation section 3.3.2).
- **LSF width** per CCD and telescope, growing with the source's colour (diffraction: lambda / D), and
  drifting slowly with the focus over the day (Mora+2014, SPIE 9143, "on-board metrology: basic angle and
  best focus") [U amplitudes].
- **Charge-transfer inefficiency** (Crowley+2016, A&A 595, A6): faint images lose a fraction of their
  charge to radiation-induced traps, and their centroid moves towards the trailing side; both shrink with
  the image's signal and with the background (which fills traps), grow since the last charge injection
  (which fills them: a sawtooth of :attr:`Effects.ci_period_s`) and with the mission's radiation dose.
- **Basic-angle variation**: about 1 mas with the 6-h period, phased with the spin (GDR3 documentation
  section 4.2.4): each FoV's line of sight moves by half of it, in opposite directions.
- **Geometric calibration errors**: each AF and SM CCD sits a little off its nominal along-scan position
  and is a little rotated (an AL offset growing across the CCD), drifting slowly [U amplitudes; Gaia
  calibrates them daily, Lindegren+2012, A&A 538, A78, section 3.4].
- **Contamination**: throughput decays slowly (water ice on the optics; Gaia Collaboration 2016, A&A 595,
  A1, section 5.2) [U rate].

None of these is known to the system under test: it sees only the packets.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, fields, replace

import numpy as np
import pyarrow as pa

from gaiasim.sim.instrument import focal_plane as fp
from gaiasim.sim.instrument.drift import NONE as NO_DRIFT
from gaiasim.sim.instrument.drift import DriftPlan
from gaiasim.sim.instrument.electronics import TRUE, Electronics
from pipeline import schemas

#: CCD columns of the per-CCD tables: the sky mappers (SM1 sees FoV 1 only, SM2 FoV 2) and AF1..AF9.
CCD_STRIPS = ("SM1", "SM2", *fp.AF_STRIPS)
#: Spin period, ns: a full turn at the nominal scan rate (21 612.9 s).
SPIN_PERIOD_NS = round(360.0 * 3600.0 / fp.SCAN_RATE_ARCSEC_S * 1e9)
_DAY_NS = 86_400_000_000_000
#: A micrometeoroid hit's kick has settled this many recovery times after it: -expm1(-x) is 1.0 exactly in
#: float64 beyond ~38.8 (exp(-x) < 2^-56), so the windows of a whole chunk that late add the settled offset
#: without an exponential each (3 hits a day over every window: ~20 s of a full day's CPU). Same values.
HIT_SETTLED_TAU = 40.0
#: AC pixels binned into one sample of a 1D window (and the AC extent of a 2D one), for the background.
AC_BINNING_PX = 12
_SHAPE = (2, fp.N_ROWS, len(CCD_STRIPS))


@dataclass(frozen=True)
class Effects:
    """Switches and amplitudes of the imperfections; :data:`REALISTIC` and :data:`IDEAL` are the named sets."""

    straylight: bool = True
    attitude: bool = True
    ccd_spread: bool = True
    lsf: bool = True
    cti: bool = True
    basic_angle: bool = True
    geometry: bool = True
    contamination: bool = True
    #: The on-board video processing (gaiasim.sim.vpu; docs/crowding-and-alerts-sources.md section 1.2): window
    #: class and gate from the on-board G estimate, spurious detections around bright stars, window conflicts,
    #: blends below the resolution limit (one window for two images) and truncated windows (samples facing a
    #: brighter window not read out; docs/crowding-and-alerts-sources.md section 1.4).
    onboard_mag: bool = True
    spurious: bool = True
    window_conflicts: bool = True
    blends: bool = True
    truncated_windows: bool = True
    #: Average sky background, e-/px/s (GDR3 documentation section 5.3.1).
    sky_bg_e_px_s: float = 0.2
    #: Mean straylight of each CCD row 1..7, e-/px/s [U]: sunlight dominates rows 1-4, the zodiacal light
    #: and the Milky Way rows 5-7 (GDR2 documentation section 3.3.6).
    straylight_e_px_s: tuple[float, ...] = (27.0, 23.0, 19.0, 15.0, 5.0, 2.8, 1.9)
    #: Relative amplitude of the spin-phase modulation of the straylight [U] (< 1: never negative).
    straylight_modulation: float = 0.8
    #: Relative spread (1 sigma) of the true gains, throughputs and read noises about the nominal [U].
    gain_spread: float = 0.01
    throughput_spread: float = 0.01
    read_noise_spread: float = 0.05
    #: Spread of the bias offsets about the nominal, ADU [U], and the jumps: size (ADU) and rate per CCD.
    bias_spread_adu: float = 5.0
    bias_jump_adu: float = 2.0
    bias_jumps_per_ccd_day: float = 0.02
    #: Relative spread of the LSF width per CCD and telescope [U], its growth per magnitude of BP-RP
    #: redder than 1.0 [U], and the peak relative change of the focus over a day [U].
    lsf_width_spread: float = 0.002
    lsf_width_per_colour: float = 0.002
    focus_drift: float = 0.002
    #: LSF wings: the fraction of the flux outside the Gaussian core, in a Gaussian this many core widths
    #: wide [U: Gaia's empirical LSFs (Rowell+2021, A&A 649, A11) have extended wings, as diffraction by a
    #: rectangular aperture gives; the calibration product's throughput absorbs what a core-only fit misses].
    #: Kept small while the pipeline's LSF table has no wings: at 0.5 % its cosmic-ray rejection flags 15 %
    #: of G 13 windows (REQ-IPD-005 fails); at 0.25 %, 1-1.5 % of G 12-13 windows.
    lsf_wing_fraction: float = 0.0025
    lsf_wing_scale: float = 4.0
    #: Spread per CCD and telescope of the LSF's colour-dependent centroid shift, mas per magnitude of
    #: BP-RP from 1.0 (the chromaticity Lindegren+2021, section 3.3, calibrates; IDT does not) [U].
    lsf_chromatic_mas_per_mag: float = 0.3
    #: CTI [U amplitudes, Crowley+2016 for the shape]: fraction of the charge lost by an image of 1000 e-
    #: on a background of :attr:`cti_bg_e` per sample, its power law in the signal, the centroid shift per
    #: lost fraction (px, towards the trailing side), the charge-injection period and the growth per day.
    cti_loss_at_1ke: float = 0.004
    cti_signal_power: float = 0.8
    cti_bg_e: float = 50.0
    cti_shift_px_per_loss: float = 2.0
    cti_spread: float = 0.3  # log-normal spread of the trap density from CCD to CCD [U]
    ci_period_s: float = 1.0
    cti_growth_per_day: float = 0.001
    #: Peak-to-peak basic-angle variation over the spin, mas (GDR3 documentation section 4.2.4: ~1 mas).
    basic_angle_mas: float = 1.0
    #: Spread of the CCDs' AL position and of their rotation (AL offset at the CCD's AC edge), mas, and their
    #: drift per day, mas [U].
    geometry_offset_mas: float = 20.0
    geometry_rotation_mas: float = 10.0
    geometry_drift_mas_day: float = 0.5
    #: Throughput loss per day by contamination, mag [U].
    contamination_mag_day: float = 0.002
    #: The on-board attitude estimate in the attitude packets: white noise per sample and a slow wander
    #: (sinusoids of 1-30 min), RMS per axis, mas [U]; the truth keeps the real attitude.
    onboard_noise_mas: float = 20.0
    onboard_wander_mas: float = 50.0
    #: Micro-clanks: sudden along-scan attitude steps (Lindegren+2016, A&A 595, A4, Appendix D, Fig. D.4:
    #: several in 500 s): rate per second and RMS step, mas [U].
    clanks_per_s: float = 0.01
    clank_mas: float = 1.0
    #: Micrometeoroid hits: an along-scan rate kick the attitude control damps away [U]: hits per day, the
    #: kick (mas/s, RMS) and the damping time (s).
    hits_per_day: float = 4.0
    hit_rate_mas_s: float = 1.0
    hit_recovery_s: float = 30.0

    #: Errors (1 sigma) of the calibration a previous cycle measured (the dataset's calibration/ccd.parquet)
    #: [U]: relative for gains, throughputs and read noises, ADU for offsets, mas for the CCD geometry.
    cal_gain_error: float = 0.0015
    cal_throughput_error: float = 0.002
    cal_read_noise_error: float = 0.02
    cal_bias_error_adu: float = 0.3
    cal_geometry_error_mas: float = 1.0


REALISTIC = Effects()
#: The nominal instrument: no effect on (the simulator of the earlier releases).
IDEAL = Effects(straylight=False, attitude=False, ccd_spread=False, lsf=False, cti=False, basic_angle=False,
                geometry=False, contamination=False, onboard_mag=False, spurious=False, window_conflicts=False,
                blends=False, truncated_windows=False, sky_bg_e_px_s=0.5)
NAMED = {"realistic": REALISTIC, "ideal": IDEAL}
SWITCHES = tuple(f.name for f in fields(Effects) if f.type == "bool")


def effects_named(name: str) -> Effects:
    """The effects a day spec's ``instrument`` names: ``realistic``, ``ideal``, ``only:<effect>`` (one
    effect on) or ``without:<effect>[,<effect>...]`` (realistic but those), effects of :data:`SWITCHES`."""
    if name in NAMED:
        return NAMED[name]
    kind, _, listed = name.partition(":")
    effects = [e.strip() for e in listed.split(",") if e.strip()]
    unknown = [e for e in effects if e not in SWITCHES]
    if kind in ("only", "without") and effects and not unknown and (kind == "without" or len(effects) == 1):
        return only(effects[0]) if kind == "only" else replace(REALISTIC, **{e: False for e in effects})
    raise ValueError(f"instrument = {name!r}: must be one of {', '.join(NAMED)}, only:<effect> or "
                     f"without:<effect>[,<effect>...], effects: {', '.join(SWITCHES)}")


def only(effect: str) -> Effects:
    """:data:`REALISTIC` with every effect but ``effect`` switched off (to study one at a time)."""
    if effect not in SWITCHES:
        raise ValueError(f"unknown effect {effect!r}: one of {', '.join(SWITCHES)}")
    return replace(REALISTIC, **{s: s == effect for s in SWITCHES})


TRUTH_INSTRUMENT = pa.schema(
    [
        pa.field("fov", pa.int8(), nullable=False),
        pa.field("ccd_row", pa.int8(), nullable=False),
        pa.field("strip", pa.string(), nullable=False),
        pa.field("gain_adu_per_e", pa.float64(), nullable=False),
        pa.field("bias_adu", pa.float64(), nullable=False, metadata={"doc": "before any jump"}),
        pa.field("bias_jump_adu", pa.float64(), nullable=False),
        pa.field("bias_jump_obmt_ns", pa.int64(), nullable=False, metadata={"doc": "max int64: no jump"}),
        pa.field("read_noise_e", pa.float64(), nullable=False),
        pa.field("throughput", pa.float64(), nullable=False, metadata={"doc": "relative to nominal"}),
        pa.field("lsf_sigma_px", pa.float64(), nullable=False, metadata={"doc": "at BP-RP 1, nominal focus"}),
        pa.field("chromatic_mas_per_mag", pa.float64(), nullable=False,
                 metadata={"doc": "centroid shift of the LSF per magnitude of BP-RP from 1"}),
        pa.field("geometry_al_mas", pa.float64(), nullable=False),
        pa.field("geometry_rotation_mas", pa.float64(), nullable=False, metadata={"doc": "AL offset at AC edge"}),
        pa.field("geometry_drift_mas_day", pa.float64(), nullable=False),
        pa.field("cti_traps", pa.float64(), nullable=False, metadata={"doc": "relative trap density"}),
        pa.field("gain_jump_factor", pa.float64(), nullable=False, metadata={"doc": "drift plan: 1 without a jump"}),
        pa.field("gain_jump_obmt_ns", pa.int64(), nullable=False, metadata={"doc": "max int64: no jump"}),
        pa.field("focus_drift_per_day", pa.float64(), nullable=False, metadata={"doc": "drift plan, LSF width"}),
        pa.field("contamination_mag_per_day", pa.float64(), nullable=False, metadata={"doc": "drift plan"}),
        pa.field("decontamination_obmt_ns", pa.int64(), nullable=False, metadata={"doc": "max int64: none"}),
    ]
)


TRUTH_ATTITUDE_EVENTS = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False, metadata={"doc": "clank or micrometeoroid"}),
        pa.field("obmt_ns", pa.int64(), nullable=False, metadata={"unit": "ns"}),
        pa.field("al_step_mas", pa.float64(), nullable=False,
                 metadata={"unit": "mas", "doc": "along-scan attitude change it leaves (a hit: kick x damping time)"}),
        pa.field("al_rate_mas_s", pa.float64(), nullable=False, metadata={"unit": "mas/s", "doc": "a hit's kick"}),
    ]
)


@dataclass(frozen=True, eq=False)
class InstrumentState:
    """The true instrument of one dataset: per-CCD tables of shape (FoV 2, row 7, strip 11) over
    :data:`CCD_STRIPS` (the detector quantities are equal for both FoVs: one CCD sees both telescopes),
    and the time-dependent effects."""

    effects: Effects
    nominal: Electronics
    t0_ns: int
    gain_adu_per_e: np.ndarray
    bias_adu: np.ndarray
    bias_jump_adu: np.ndarray
    bias_jump_ns: np.ndarray
    read_noise_e: np.ndarray
    throughput: np.ndarray
    lsf_sigma_px: np.ndarray
    chromatic_mas_per_mag: np.ndarray
    geometry_al_mas: np.ndarray
    geometry_rotation_mas: np.ndarray
    geometry_drift_mas_day: np.ndarray
    cti_traps: np.ndarray
    straylight_phase_rad: np.ndarray  # (2, 7)
    ba_phase_rad: float
    focus_phase_rad: float
    drift: DriftPlan = NO_DRIFT
    #: Along-scan attitude events (micro-clanks and micrometeoroid hits): times (ns, sorted), steps (mas),
    #: and the hits' times, rate kicks (mas/s) and damping time.
    clank_ns: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    clank_mas: np.ndarray = field(default_factory=lambda: np.empty(0))
    hit_ns: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    hit_rate_mas_s: np.ndarray = field(default_factory=lambda: np.empty(0))
    gain_jump_factor: np.ndarray = field(default_factory=lambda: np.ones(_SHAPE))
    gain_jump_ns: np.ndarray = field(default_factory=lambda: np.full(_SHAPE, np.iinfo(np.int64).max))

    def table(self) -> pa.Table:
        """One row per CCD and FoV that sees it (SM1 FoV 1, SM2 FoV 2; none for the wavefront sensor in
        place of AF1 in row 4): the truth's ``instrument`` table, 138 rows."""
        fov, row, strip = np.meshgrid(np.arange(2), np.arange(7), np.arange(len(CCD_STRIPS)), indexing="ij")
        seen = ~(((strip == 0) & (fov == 1)) | ((strip == 1) & (fov == 0)))
        seen &= ~((row == fp.WFS_ROW - 1) & (strip == CCD_STRIPS.index(fp.WFS_STRIP)))  # the wavefront sensor
        f, r, s = fov[seen], row[seen], strip[seen]
        cols = {"fov": (f + 1).astype(np.int8), "ccd_row": (r + 1).astype(np.int8),
                "strip": np.array(CCD_STRIPS)[s]}
        decon = self.drift.decontamination_h
        scalars = {"focus_drift_per_day": self.drift.focus_drift_per_day,
                   "contamination_mag_per_day": self.drift.contamination_mag_per_day,
                   "decontamination_obmt_ns": np.iinfo(np.int64).max if decon < 0
                   else self.t0_ns + round(decon * 3_600_000_000_000)}
        for name in TRUTH_INSTRUMENT.names[3:]:
            if name in scalars:
                cols[name] = np.full(len(f), scalars[name], dtype=TRUTH_INSTRUMENT.field(name).type.to_pandas_dtype())
                continue
            attr = name.replace("_obmt_ns", "_ns")
            cols[name] = getattr(self, attr)[f, r, s]
        return pa.table(cols, schema=TRUTH_INSTRUMENT)

    def calibration_product(self, seed: int) -> pa.Table:
        """What a previous calibration cycle measured of this instrument at the start of the day, with the
        errors of :class:`Effects` (``cal_*``), as the corrections to the nominal instrument the system under
        test reads (``calibration/ccd.parquet``, :data:`pipeline.schemas.CCD_CALIBRATION`). Bias jumps,
        drifts and contamination during the day are not in it: they happen after the measurement."""
        fx = self.effects
        rng = np.random.default_rng([seed, 24])
        true = self.table()
        m = true.num_rows

        def measured(name: str, error: float, relative: bool) -> np.ndarray:
            value = true[name].to_numpy()
            noise = rng.normal(0.0, 1.0, m)  # drawn whatever the error, so errors never move one another
            return value * (1.0 + error * noise) if relative else value + error * noise

        nominal_rn = dict(zip(CCD_STRIPS, _nominal_read_noise(self.nominal), strict=True))
        strips = true["strip"].to_pylist()
        return pa.table({
            "fov": true["fov"], "ccd_row": true["ccd_row"], "strip": true["strip"],
            "gain_factor": measured("gain_adu_per_e", fx.cal_gain_error, True) / self.nominal.gain_adu_per_e,
            "bias_offset_adu": measured("bias_adu", fx.cal_bias_error_adu, False) - self.nominal.bias_adu,
            "read_noise_factor": measured("read_noise_e", fx.cal_read_noise_error, True)
            / np.array([nominal_rn[s] for s in strips]),
            # Measured with a core-only LSF, the throughput absorbs the flux such a fit misses in the wings.
            "throughput": measured("throughput", fx.cal_throughput_error, True) * core_fit_recovery(fx),
            "al_offset_mas": measured("geometry_al_mas", fx.cal_geometry_error_mas, False),
            "al_rotation_mas": measured("geometry_rotation_mas", fx.cal_geometry_error_mas, False),
        }, schema=schemas.CCD_CALIBRATION)

    def attitude_events(self) -> pa.Table:
        """The truth's ``attitude_events``: each micro-clank and micrometeoroid hit of the real attitude."""
        n_c, n_h = len(self.clank_ns), len(self.hit_ns)
        return pa.table({
            "kind": ["clank"] * n_c + ["micrometeoroid"] * n_h,
            "obmt_ns": np.concatenate([self.clank_ns, self.hit_ns]),
            "al_step_mas": np.concatenate([self.clank_mas, self.hit_rate_mas_s * self.effects.hit_recovery_s]),
            "al_rate_mas_s": np.concatenate([np.zeros(n_c), self.hit_rate_mas_s]),
        }, schema=TRUTH_ATTITUDE_EVENTS)

    def attitude_al_mas(self, t_ns: np.ndarray) -> np.ndarray:
        """Along-scan attitude offset from the events up to ``t_ns``, mas: the sum of the micro-clanks'
        steps, and for each hit ``kick x tau x (1 - exp(-(t - t_hit) / tau))`` (the rate kick damped away)."""
        t = np.asarray(t_ns, dtype=np.int64)
        out = np.zeros(t.shape)
        if len(self.clank_ns):
            steps = np.concatenate([[0.0], np.cumsum(self.clank_mas)])
            out += steps[np.searchsorted(self.clank_ns, t, side="right")]
        tau = self.effects.hit_recovery_s
        t_min, t_max = (int(t.min()), int(t.max())) if t.size else (0, 0)
        for when, kick in zip(self.hit_ns, self.hit_rate_mas_s, strict=True):
            if t_max <= when:  # all before the hit: its term is 0
                continue
            if max(t_min - when, 0) * 1e-9 / tau > HIT_SETTLED_TAU:  # all settled: -expm1 is 1.0 exactly
                out += kick * tau
                continue
            dt = np.maximum(t - when, 0) * 1e-9
            out += kick * tau * -np.expm1(-dt / tau)
        return out

    def spin_phase_rad(self, t_ns: np.ndarray) -> np.ndarray:
        return 2.0 * math.pi * ((np.asarray(t_ns) - self.t0_ns) % SPIN_PERIOD_NS) / SPIN_PERIOD_NS

    def background_e_px_s(self, fov: np.ndarray, row: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
        """Background rate, e-/px/s, of transits in ``fov`` (1, 2) and CCD ``row`` (1..7) at ``t_ns``."""
        fx = self.effects
        rate = np.full(len(fov), fx.sky_bg_e_px_s)
        if fx.straylight:
            level = np.asarray(fx.straylight_e_px_s)[np.asarray(row) - 1]
            phase = self.straylight_phase_rad[np.asarray(fov) - 1, np.asarray(row) - 1]
            rate = rate + level * (1.0 + fx.straylight_modulation * np.cos(self.spin_phase_rad(t_ns) - phase))
        return rate

    def basic_angle_mas(self, t_ns: np.ndarray) -> np.ndarray:
        """Variation of the basic angle from nominal, mas (each FoV's line of sight moves by half)."""
        if not self.effects.basic_angle:
            return np.zeros(len(np.atleast_1d(t_ns)))
        omega = self.spin_phase_rad(t_ns) - self.ba_phase_rad
        # The fundamental and a weaker second harmonic (GDR3 documentation eq. 4.82), peak to peak ~1 mas.
        return 0.5 * self.effects.basic_angle_mas * (0.9 * np.cos(omega) + 0.1 * np.cos(2.0 * omega))

    def windows(self, fov: np.ndarray, row: np.ndarray, ac_px: np.ndarray, t_ns: np.ndarray, bp_rp: np.ndarray,
                flux_e: np.ndarray, t_int_s: np.ndarray) -> dict[str, np.ndarray]:
        """Per window (transit x SM, AF1..AF9: shape (m, 10)) the true detector and image: ``gain``,
        ``bias`` (ADU), ``read_noise`` (e-), ``sigma_px`` (LSF width), ``flux_e`` (image flux before CTI),
        ``shift_px`` (true AL image displacement in the window: basic angle and CCD geometry),
        ``geometry_px`` (the CCD's own AL offset), ``cti_loss`` (fraction of the charge lost) and
        ``cti_px`` (displacement of the recorded image from the optical centre that the IPD does not
        model: CTI and the LSF's chromatic shift); and per transit ``bg_e_px`` (e- per pixel)."""
        fx = self.effects
        m = len(fov)
        f = np.asarray(fov, dtype=np.int64) - 1
        r = np.asarray(row, dtype=np.int64) - 1
        cols = np.empty((m, 10), dtype=np.int64)
        cols[:, 0] = f  # SM1 for FoV 1, SM2 for FoV 2
        cols[:, 1:] = np.arange(2, 11)
        # One flat index into the (2, 7, 11) tables, computed once: a third of the cost of 3-array indexing.
        idx = ((f * 7 + r) * len(CCD_STRIPS))[:, None] + cols

        def per_window(table: np.ndarray) -> np.ndarray:
            return np.take(table, idx)

        t = np.asarray(t_ns, dtype=np.int64)
        days = (t - self.t0_ns) / _DAY_NS
        colour = np.asarray(bp_rp) - 1.0
        bias = per_window(self.bias_adu)
        if fx.ccd_spread:
            bias += np.where(t[:, None] >= per_window(self.bias_jump_ns), per_window(self.bias_jump_adu), 0.0)
        sigma = per_window(self.lsf_sigma_px)
        if self.drift.focus_drift_per_day:
            sigma *= (1.0 + self.drift.focus_drift_per_day * days)[:, None]
        shift_extra_px = np.zeros((m, 10))
        if fx.lsf:
            focus = 1.0 + fx.focus_drift * np.sin(2.0 * math.pi * days + self.focus_phase_rad)
            sigma *= (focus * (1.0 + fx.lsf_width_per_colour * colour))[:, None]
            shift_extra_px = per_window(self.chromatic_mas_per_mag) * (colour / fp.PIXEL_AL_MAS)[:, None]
        flux = per_window(self.throughput)
        scale = np.asarray(flux_e, dtype=np.float64)
        if fx.contamination or self.drift.contamination_mag_per_day:
            mag_day = fx.contamination_mag_day * fx.contamination + self.drift.contamination_mag_per_day
            # Ice builds up from the start, or from the last decontamination, which recovers it all.
            since = days
            if self.drift.decontamination_h >= 0:
                decon_days = self.drift.decontamination_h / 24.0
                since = np.where(days >= decon_days, days - decon_days, days)
            scale = scale * 10.0 ** (-0.4 * mag_day * since)
        flux *= scale[:, None]
        geometry_px = np.zeros((m, 10))
        if fx.geometry:
            ac_norm = (np.asarray(ac_px) - fp.AC_PRESCAN_PX - 0.5 * fp.CCD_COLUMNS) / (0.5 * fp.CCD_COLUMNS)
            geometry_px = (per_window(self.geometry_al_mas) + per_window(self.geometry_rotation_mas) * ac_norm[:, None]
                           + per_window(self.geometry_drift_mas_day) * days[:, None]) * (1.0 / fp.PIXEL_AL_MAS)
        # A CCD displaced along scan by +x sees the image x earlier in its window; a line of sight turned by
        # +b sees it b later.
        ba_px = np.where(f == 0, 0.5, -0.5) * self.basic_angle_mas(t) / fp.PIXEL_AL_MAS
        shift_px = ba_px[:, None] - geometry_px
        if len(self.clank_ns) or len(self.hit_ns):
            # The windows follow the images from their sky-mapper detection at the on-board rate: an attitude
            # that turned further between the SM and a window's time sees the image that much earlier in it.
            strip_ns = np.array([[fp.STRIP_OFFSET_NS["SM1" if k == 0 else "SM2"],
                                  *(fp.STRIP_OFFSET_NS[a] for a in fp.AF_STRIPS)] for k in (0, 1)])
            t_window = t[:, None] + strip_ns[f]
            moved = self.attitude_al_mas(t_window)
            shift_px = shift_px - (moved - moved[:, :1]) / fp.PIXEL_AL_MAS
        bg_e_px = self.background_e_px_s(fov, row, t) * t_int_s
        loss = np.zeros((m, 10))
        if fx.cti:
            bg_sample = bg_e_px * AC_BINNING_PX
            since_ci = ((t % round(fx.ci_period_s * 1e9)) / (fx.ci_period_s * 1e9) + 0.5)  # mean 1
            per_transit = (fx.cti_loss_at_1ke * since_ci * (1.0 + fx.cti_growth_per_day * days)
                           / np.sqrt(1.0 + bg_sample / fx.cti_bg_e))
            loss = per_window(self.cti_traps) * (np.maximum(flux, 1.0) * 1e-3) ** -fx.cti_signal_power
            loss *= per_transit[:, None]
            np.minimum(loss, 0.5, out=loss)
            shift_extra_px = shift_extra_px + fx.cti_shift_px_per_loss * loss
        gain = per_window(self.gain_adu_per_e)
        if self.drift.gain_jumps:
            gain *= np.where(t[:, None] >= per_window(self.gain_jump_ns), per_window(self.gain_jump_factor), 1.0)
        return {"gain": gain, "bias": bias, "read_noise": per_window(self.read_noise_e),
                "sigma_px": sigma, "flux_e": flux, "shift_px": shift_px, "geometry_px": geometry_px,
                "cti_loss": loss, "cti_px": shift_extra_px, "bg_e_px": bg_e_px,
                "wing_fraction": fx.lsf_wing_fraction if fx.lsf else 0.0, "wing_scale": fx.lsf_wing_scale}


def _nominal_read_noise(nominal: Electronics) -> np.ndarray:
    return np.array([nominal.read_noise_e[s] for s in CCD_STRIPS])


@functools.lru_cache(maxsize=8)
def draw(seed: int, effects: Effects, t0_ns: int, drift: DriftPlan = NO_DRIFT, t1_ns: int | None = None
         ) -> InstrumentState:
    """The true instrument of the dataset of ``seed`` starting at ``t0_ns``: the nominal detection chain
    (:data:`~gaiasim.sim.instrument.electronics.TRUE`) with ``effects`` and a fault plan's calibration
    ``drift`` (deterministic; random streams of their own, so the sky and the noise do not move when an
    effect is switched)."""
    nominal = TRUE
    rng = np.random.default_rng([seed, 23])
    shape = (2, 7, len(CCD_STRIPS))

    def detector(spread: float) -> np.ndarray:
        # One value per physical CCD, seen by both FoVs; normalised to the nominal on average.
        x = rng.normal(0.0, spread, shape[1:])
        return np.broadcast_to(x - x.mean(), shape).copy()

    def optical(spread: float) -> np.ndarray:
        x = rng.normal(0.0, spread, shape)
        return x - x.mean()

    # Draw every array whatever the switches, so that switching one effect never moves another's values.
    d_gain, d_thr, d_rn = detector(1.0), optical(1.0), detector(1.0)
    d_bias, jump_sign, jump_u = detector(1.0), rng.choice([-1.0, 1.0], shape[1:]), rng.random(shape[1:])
    d_lsf, d_geo, d_rot, d_drift = optical(1.0), detector(1.0), detector(1.0), detector(1.0)
    d_chromatic = optical(1.0)
    traps = np.exp(effects.cti_spread * rng.normal(0.0, 1.0, shape[1:]))
    stray_phase = rng.uniform(0.0, 2.0 * math.pi, (2, 7))
    ba_phase, focus_phase = rng.uniform(0.0, 2.0 * math.pi, 2)
    fx = effects
    spread = fx.ccd_spread
    gain = nominal.gain_adu_per_e * (1.0 + (fx.gain_spread * d_gain if spread else 0.0))
    throughput = 1.0 + (fx.throughput_spread * d_thr if spread else 0.0) * np.ones(shape)
    read_noise = _nominal_read_noise(nominal) * (1.0 + (fx.read_noise_spread * d_rn if spread else 0.0))
    bias = nominal.bias_adu + (fx.bias_spread_adu * d_bias if spread else 0.0) * np.ones(shape)
    # A jump on a CCD in a day with probability bias_jumps_per_ccd_day, at a uniform time of the day.
    jumps = spread & (jump_u < fx.bias_jumps_per_ccd_day)
    jump_ns = np.where(jumps, t0_ns + (jump_u / max(fx.bias_jumps_per_ccd_day, 1e-300) * _DAY_NS).astype(np.int64),
                       np.iinfo(np.int64).max)
    lsf = nominal.lsf_sigma_px * (1.0 + (fx.lsf_width_spread * d_lsf if fx.lsf else 0.0)) * np.ones(shape)
    geo = fx.geometry
    return InstrumentState(
        effects=fx, nominal=nominal, t0_ns=int(t0_ns),
        gain_adu_per_e=gain * np.ones(shape), bias_adu=bias,
        bias_jump_adu=np.broadcast_to(np.where(jumps, fx.bias_jump_adu * jump_sign, 0.0), shape).copy(),
        bias_jump_ns=np.broadcast_to(jump_ns, shape).copy(),
        read_noise_e=read_noise * np.ones(shape), throughput=throughput, lsf_sigma_px=lsf,
        chromatic_mas_per_mag=fx.lsf_chromatic_mas_per_mag * d_chromatic if fx.lsf else np.zeros(shape),
        geometry_al_mas=(fx.geometry_offset_mas * d_geo if geo else np.zeros(shape)),
        geometry_rotation_mas=(fx.geometry_rotation_mas * d_rot if geo else np.zeros(shape)),
        geometry_drift_mas_day=(fx.geometry_drift_mas_day * d_drift if geo else np.zeros(shape)),
        cti_traps=np.broadcast_to(traps / traps.mean(), shape).copy() if fx.cti else np.zeros(shape),
        straylight_phase_rad=stray_phase, ba_phase_rad=float(ba_phase), focus_phase_rad=float(focus_phase),
        drift=drift, **_gain_jumps(seed, drift, t0_ns),
        **(_attitude_events(seed, fx, t0_ns, t0_ns + _DAY_NS if t1_ns is None else t1_ns) if fx.attitude else {}),
    )


def core_fit_recovery(fx: Effects, n_samples: int = 12) -> float:
    """The fraction of an image's flux that a least-squares fit of the LSF core alone (plus a flat
    background) recovers from a centred, noiseless window of ``n_samples`` with
    :attr:`Effects.lsf_wing_fraction` of the flux in the wings (0.9956 for 0.5 % in wings 4 times wider,
    0.9978 for 0.25 %; 1 without wings): what a calibration measured with a core-only model puts into the
    throughput."""
    if not fx.lsf or fx.lsf_wing_fraction == 0.0:
        return 1.0
    centre = 0.5 * (n_samples - 1)

    def pixels(sigma: float) -> np.ndarray:
        cdf = [0.5 * math.erf((k - 0.5 - centre) / (sigma * math.sqrt(2.0))) for k in range(n_samples + 1)]
        return np.diff(cdf)

    core = pixels(1.0)
    image = (1.0 - fx.lsf_wing_fraction) * core + fx.lsf_wing_fraction * pixels(fx.lsf_wing_scale)
    design = np.stack([core, np.ones(n_samples)], axis=1)
    return float(np.linalg.lstsq(design, image, rcond=None)[0][0])


def _attitude_events(seed: int, fx: Effects, t0_ns: int, t1_ns: int) -> dict[str, np.ndarray]:
    """Micro-clanks and micrometeoroid hits in [t0, t1] (Poisson in time; a stream of their own), from a
    minute before the start, so the first windows already see some."""
    rng = np.random.default_rng([seed, 27])
    lo, span_s = t0_ns - 60_000_000_000, (t1_ns - t0_ns) * 1e-9 + 60.0
    n_c = rng.poisson(fx.clanks_per_s * span_s)
    n_h = rng.poisson(fx.hits_per_day * span_s / 86_400.0)
    clank_ns = np.sort(lo + (rng.random(n_c) * span_s * 1e9).astype(np.int64))
    hit_ns = np.sort(lo + (rng.random(n_h) * span_s * 1e9).astype(np.int64))
    return {"clank_ns": clank_ns, "clank_mas": rng.normal(0.0, fx.clank_mas, n_c),
            "hit_ns": hit_ns, "hit_rate_mas_s": rng.normal(0.0, fx.hit_rate_mas_s, n_h)}


def onboard_attitude(seed: int, fx: Effects, t_ns: np.ndarray, q_real: np.ndarray) -> np.ndarray:
    """The on-board estimate of the attitude ``q_real`` at ``t_ns``, as the attitude packets carry it: a
    small rotation ``exp(e / 2)`` of white noise plus a slow wander (4 sinusoids of 1-30 min per axis), of
    :attr:`Effects.onboard_noise_mas` and :attr:`Effects.onboard_wander_mas` RMS per axis."""
    if not fx.attitude:
        return q_real
    rng = np.random.default_rng([seed, 26])
    t = (np.asarray(t_ns, dtype=np.int64) - (int(t_ns[0]) if len(t_ns) else 0)) * 1e-9
    period_s = np.exp(rng.uniform(np.log(60.0), np.log(1800.0), (3, 4)))
    phase = rng.uniform(0.0, 2.0 * math.pi, (3, 4))
    wander = (np.sin(2.0 * math.pi * t[:, None, None] / period_s + phase) * math.sqrt(2.0 / 4)).sum(axis=2)
    e_mas = fx.onboard_wander_mas * wander + rng.normal(0.0, fx.onboard_noise_mas, (len(t), 3))
    half = 0.5 * e_mas * fp.MAS_RAD
    angle = np.linalg.norm(half, axis=1, keepdims=True)
    dq = np.concatenate([half * np.sinc(angle / math.pi), np.cos(angle)], axis=1)
    return fp.quat_multiply(q_real, dq)


def _gain_jumps(seed: int, drift: DriftPlan, t0_ns: int) -> dict[str, np.ndarray]:
    """The drift plan's gain jumps: ``gain_jumps`` distinct AF CCDs (AF2..AF9 of any row, and AF1 of rows
    other than 4, the wavefront sensor's place), each at a uniform time in the first half of the first day
    (so that most of the day sees it)."""
    rng = np.random.default_rng([seed, 25])
    factor = np.ones(_SHAPE)
    when = np.full(_SHAPE, np.iinfo(np.int64).max)
    af = [(r, s) for r in range(_SHAPE[1]) for s in range(2, _SHAPE[2]) if not (r == 3 and s == 2)]
    for k in rng.permutation(len(af))[:drift.gain_jumps]:
        r, s = af[k]
        factor[:, r, s] = 1.0 + drift.gain_jump
        when[:, r, s] = t0_ns + int(rng.uniform(0.0, 0.5) * _DAY_NS)
    return {"gain_jump_factor": factor, "gain_jump_ns": when}
