"""Gaia's Nominal Scanning Law (NSL): attitude and the transits of fixed stars.

docs/facts.md section 1. The spin axis z keeps the solar aspect angle xi to the nominal Sun and precesses
around it (angle nu) at a speed |dz/dt| = S dlambda_sun/dt chosen so that it makes K loops per year;
the spacecraft spins about z (phase Omega) at the inertial scan rate. The attitude is

    R = Rx(eps) Rz(lambda_sun) Rx(nu - pi/2) Ry(pi/2 - xi) Rz(Omega),   u_icrs = R u_srs,

with (nu, Omega) from the NSL ODE, integrated by RK4 on a fixed grid of nodes counted from the
reference epoch and interpolated between nodes by cubic Hermite polynomials with the ODE rates.
The kernels are in :mod:`gaiasim.sim.kernels_scanlaw`; this module checks arguments and allocates.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import math
import time

import numpy as np

from gaiasim.sim import kernels_scanlaw as _k
from gaiasim.sim.instrument.focal_plane import ARCSEC_RAD, BASIC_ANGLE_RAD, ZETA_MIN_RAD
from gaiasim.sim.timescale import (
    NS_PER_DAY,
    TCB_ORIGIN_DAYS_SINCE_J2000,
    obmt_ns_from_date,
    obmt_ns_from_tcb_days,
)

#: Tropical-ish year used for "loops per year" and mission spans (Julian year).
DAYS_PER_YEAR = 365.25
#: NSL start after the 4 weeks of EPSL (docs/facts.md section 1: EPSL from 2014-07-25, then NSL).
NSL_START_DATE = datetime.date(2014, 8, 22)


@dataclasses.dataclass(frozen=True)
class ScanLawParams:
    """Parameters of the nominal scanning law (all docs/facts.md section 1)."""

    # Inertial scan rate, commanded_scan_law (GEDR3 doc 13.4.1), GaiaParams Satellite.SCANRATE [C].
    spin_rate_arcsec_s: float = 59.9641857803
    # Solar aspect angle xi, GaiaParams SOLARASPECTANGLE_NOMINAL (MRD SCI-010) [C].
    solar_aspect_angle_deg: float = 45.0
    # Precession K, spin-axis loops around the Sun per year, GaiaParams SPINAXIS_NUMBEROFLOOPSPERYEAR [C].
    precession_loops_per_year: float = 5.8
    # Obliquity of the ecliptic eps = 23 deg 26' 21.448" (rzinkstok AttitudeCalculator) [C].
    obliquity_deg: float = 23.0 + 26.0 / 60.0 + 21.448 / 3600.0
    # Reference epoch, TCB days since JD 2455197.5: 0 = J2010.0, the Nsl37 (FM-037-2) reference [C].
    ref_epoch_tcb_days: float = 0.0
    # Precession phase nu at the reference epoch: placeholder 0 as in Gaia Sky Nsl37
    # [C as a placeholder; Gaia's operational value U].
    nu0_rad: float = 0.0
    # Spin phase Omega at the reference epoch: placeholder 0 as in Gaia Sky Nsl37
    # [C as a placeholder; Gaia's operational value U].
    omega0_rad: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.solar_aspect_angle_deg < 90.0:
            raise ValueError(f"solar_aspect_angle_deg must be in (0, 90), got {self.solar_aspect_angle_deg}")
        if not self.precession_loops_per_year > 0.0:
            raise ValueError("precession_loops_per_year must be > 0 (the EPSL, K = 0, is not modelled)")
        if not self.spin_rate_arcsec_s > 0.0:
            raise ValueError(f"spin_rate_arcsec_s must be > 0, got {self.spin_rate_arcsec_s}")

    @property
    def spin_rate_rad_s(self) -> float:
        return self.spin_rate_arcsec_s * ARCSEC_RAD

    @property
    def xi_rad(self) -> float:
        return math.radians(self.solar_aspect_angle_deg)

    @property
    def eps_rad(self) -> float:
        return math.radians(self.obliquity_deg)

    @property
    def spin_period_s(self) -> float:
        """Inertial spin period, 21 612.9 s for the nominal rate [D]."""
        return 2.0 * math.pi / self.spin_rate_rad_s


def _precession_integral(s_const: float, xi_rad: float) -> float:
    """Integral over nu of dlambda/dnu = sin(xi) / (sqrt(S^2 - cos^2 nu) + cos(xi) sin(nu)), one loop.

    The integrand is smooth and periodic, so the trapezoid rule converges geometrically.
    """
    nu = np.linspace(0.0, 2.0 * np.pi, 512, endpoint=False)
    f = math.sin(xi_rad) / (np.sqrt(s_const**2 - np.cos(nu) ** 2) + math.cos(xi_rad) * np.sin(nu))
    return float(np.mean(f) * 2.0 * np.pi)


@functools.lru_cache(maxsize=32)
def speed_constant(xi_rad: float, loops_per_year: float) -> float:
    """NSL speed constant S = |dz/dlambda_sun| giving ``loops_per_year`` loops of nu per 2 pi of lambda_sun.

    From the ODE, one loop of nu takes lambda_sun = integral sin(xi) dnu / (sqrt(S^2 - cos^2 nu) +
    cos(xi) sin nu) = 2 pi / K; solved for S by bisection (FM-037 Eq. 26, ``NslUtil.calcSNom``;
    gives 4.223 for xi = 45 deg, K = 5.8, docs/facts.md section 1).
    """
    if not (0.0 < xi_rad < 0.5 * math.pi and loops_per_year > 0.0):
        raise ValueError("speed_constant needs 0 < xi_rad < pi/2 and loops_per_year > 0")
    target = 2.0 * math.pi / loops_per_year
    lo, hi = 1.0 + 1e-12, 1e6
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        # The integral falls as S grows.
        if _precession_integral(mid, xi_rad) > target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def sun_longitude_rad(days_since_j2000: np.ndarray | float) -> np.ndarray:
    """Nominal solar ecliptic longitude (rad) at days since J2000.0 (docs/facts.md section 1)."""
    t = np.asarray(days_since_j2000, dtype=np.float64)
    e = 0.016709
    g = np.deg2rad(357.528 + 0.98560028 * t)
    return np.deg2rad(280.458 + 0.98560911 * t) + 2.0 * e * np.sin(g) + 1.25 * e * e * np.sin(2.0 * g)


def sun_longitude_rate_rad_s(days_since_j2000: np.ndarray | float) -> np.ndarray:
    """Time derivative of :func:`sun_longitude_rad`, rad/s."""
    t = np.asarray(days_since_j2000, dtype=np.float64)
    e = 0.016709
    g = np.deg2rad(357.528 + 0.98560028 * t)
    g_dot = np.deg2rad(0.98560028) / 86400.0
    return np.deg2rad(0.98560911) / 86400.0 + (2.0 * e * np.cos(g) + 2.5 * e * e * np.cos(2.0 * g)) * g_dot


def _max_sun_rate_rad_s() -> float:
    e = 0.016709
    return (np.deg2rad(0.98560911) + (2.0 * e + 2.5 * e * e) * np.deg2rad(0.98560028)) / 86400.0


def _as_obmt_array(obmt_ns: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(obmt_ns)
    if arr.dtype.kind not in "iu":
        raise ValueError(
            f"{name} must be integer nanoseconds (int64), got dtype {arr.dtype}; use .astype(np.int64)"
        )
    return np.ascontiguousarray(arr.reshape(-1), dtype=np.int64)


class ScanLaw:
    """The NSL tabulated over [t0_ns, t1_ns] (OBMT ns) plus a margin; queries must stay inside that span.

    ``step_s`` is the RK4 step and node spacing. 600 s keeps the integration and Hermite errors far below
    1 micro-arcsecond (the slow angles change on a ~10-day scale) while 5 years take ~0.3 M nodes.
    """

    #: Coarse pre-filter interval of the transit finder, in table steps (1 h at 600 s).
    PREFILTER_STEPS = 6

    def __init__(
        self, t0_ns: int, t1_ns: int, params: ScanLawParams | None = None, step_s: int = 600
    ) -> None:
        t0_ns, t1_ns = int(t0_ns), int(t1_ns)
        if t1_ns <= t0_ns:
            raise ValueError(f"ScanLaw needs t0_ns < t1_ns, got {t0_ns} >= {t1_ns}")
        if not (isinstance(step_s, int) and 1 <= step_s <= 3600):
            raise ValueError(f"step_s must be an int number of seconds in [1, 3600], got {step_s!r}")
        self.params = params if params is not None else ScanLawParams()
        p = self.params
        self.step_ns = step_s * 1_000_000_000
        self.s_const = speed_constant(p.xi_rad, p.precession_loops_per_year)
        self.ref_ns = int(obmt_ns_from_tcb_days(p.ref_epoch_tcb_days))
        # Margin: two pre-filter intervals plus a node, so every lookup near t0/t1 stays in the table.
        coarse_ns = self.PREFILTER_STEPS * self.step_ns
        margin_ns = 2 * coarse_ns + self.step_ns
        # The table starts on a pre-filter node of the global grid so spans line up with it.
        k_first = ((t0_ns - margin_ns - self.ref_ns) // coarse_ns) * self.PREFILTER_STEPS
        k_last = -((self.ref_ns - (t1_ns + margin_ns)) // self.step_ns)
        n_nodes = k_last - k_first + 1
        self.t0_ns, self.t1_ns = t0_ns, t1_ns
        self.table_t0_ns = self.ref_ns + k_first * self.step_ns
        ref_days_j2000 = p.ref_epoch_tcb_days + TCB_ORIGIN_DAYS_SINCE_J2000
        self._tab = _k.nsl_table(
            ref_days_j2000,
            p.nu0_rad,
            p.omega0_rad,
            float(step_s),
            k_first,
            n_nodes,
            self.s_const,
            p.xi_rad,
            p.spin_rate_rad_s,
        )
        # The table starts on a pre-filter node: every PREFILTER_STEPS-th row is one.
        self._zc = np.ascontiguousarray(self._tab[:: self.PREFILTER_STEPS, _k.ZX : _k.ZZ + 1])

    # --- attitude -----------------------------------------------------------------------------------

    def _rel_ns(self, obmt_ns: np.ndarray, name: str = "obmt_ns") -> np.ndarray:
        t = _as_obmt_array(obmt_ns, name)
        lo, hi = self.t0_ns - self.step_ns, self.t1_ns + self.step_ns
        if t.size and (t.min() < lo or t.max() > hi):
            raise ValueError(
                f"{name} outside this ScanLaw's span [{self.t0_ns}, {self.t1_ns}] ns (+-1 step); "
                "build a ScanLaw covering the times you query"
            )
        return t - self.table_t0_ns

    def heliotropic_angles(self, obmt_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(nu, Omega, lambda_sun) in rad at ``obmt_ns``; Omega is the spin phase mod 2 pi."""
        rel = self._rel_ns(obmt_ns)
        node = rel // self.step_ns
        local = (rel - node * self.step_ns) * 1e-9
        out = np.empty((3, rel.size))
        step_s = self.step_ns * 1e-9
        for j in range(rel.size):
            out[:, j] = _k.angles_at(self._tab, step_s, int(node[j]), float(local[j]))
        return out[0], out[1], out[2]

    def attitude(self, obmt_ns: np.ndarray) -> np.ndarray:
        """Unit quaternions (n, 4), scalar last, w >= 0, rotating SRS vectors into ICRS at ``obmt_ns``."""
        rel = self._rel_ns(obmt_ns)
        p = self.params
        return _k.attitude_quats(self._tab, self.step_ns, rel, p.eps_rad, p.xi_rad)

    def spin_axis(self, obmt_ns: np.ndarray) -> np.ndarray:
        """Spin axis (SRS +z) as ICRS unit vectors (n, 3) at ``obmt_ns``."""
        q = self.attitude(obmt_ns)
        x, y, z, w = q.T
        # Third column of the rotation matrix of q.
        return np.stack([2.0 * (x * z + w * y), 2.0 * (y * z - w * x), 1.0 - 2.0 * (x * x + y * y)], axis=-1)

    # --- transits ------------------------------------------------------------------------------------

    def find_transits(self, u_icrs: np.ndarray, t0_ns: int | None = None, t1_ns: int | None = None) -> dict:
        """FoV transits of fixed stars with t0_ns <= obmt_ns < t1_ns (default: this law's span).

        ``u_icrs``: float64 (n, 3) unit vectors. A transit is the time the star is on a FoV's line of
        sight along scan (phi = +basic/2 for FoV 1, -basic/2 for FoV 2, i.e. eta = 0) with
        ZETA_MIN_RAD <= zeta < -ZETA_MIN_RAD. Returns a dict of arrays sorted by (obmt_ns, source_index):
        ``source_index`` int64 (row of u_icrs), ``obmt_ns`` int64, ``fov`` int8 (1, 2), ``zeta_rad`` float64.
        """
        t0_ns = self.t0_ns if t0_ns is None else int(t0_ns)
        t1_ns = self.t1_ns if t1_ns is None else int(t1_ns)
        if not self.t0_ns <= t0_ns < t1_ns <= self.t1_ns:
            raise ValueError(
                f"need {self.t0_ns} <= t0_ns < t1_ns <= {self.t1_ns} (this ScanLaw's span), "
                f"got [{t0_ns}, {t1_ns})"
            )
        u = np.asarray(u_icrs)
        if u.ndim != 2 or u.shape[1] != 3:
            raise ValueError(f"u_icrs must have shape (n, 3), got {u.shape}")
        if u.dtype != np.float64:
            raise ValueError(f"u_icrs must be float64, got {u.dtype}; use .astype(np.float64)")
        u = np.ascontiguousarray(u)
        if u.size and not np.allclose(np.einsum("ij,ij->i", u, u), 1.0, atol=1e-9):
            raise ValueError(
                "u_icrs rows must be unit vectors; divide by np.linalg.norm(u, axis=1, keepdims=True)"
            )
        args = self._finder_args(t0_ns, t1_ns)
        bounds = _k.transit_bounds(u, self._tab, self._zc, *args)
        sources = np.flatnonzero(bounds).astype(np.int64)
        caps = bounds[sources]
        offsets = np.zeros(sources.size, dtype=np.int64)
        np.cumsum(caps[:-1], out=offsets[1:])
        total = int(caps.sum())
        out_ns = np.empty(total, dtype=np.int64)
        out_fov = np.empty(total, dtype=np.int8)
        out_zeta = np.empty(total, dtype=np.float64)
        counts = _k.transit_fill(
            u, sources, offsets, caps, self._tab, self._zc, *args, out_ns, out_fov, out_zeta
        )
        keep = np.zeros(total, dtype=bool)
        # Slots offsets[c] .. offsets[c] + counts[c] - 1 were written.
        starts = np.repeat(offsets, counts)
        ranks = np.arange(starts.size) - np.repeat(np.cumsum(counts) - counts, counts)
        keep[starts + ranks] = True
        src = np.repeat(sources, counts)
        t_ns = out_ns[keep] + self.table_t0_ns
        order = np.argsort(t_ns, kind="stable")  # src ascends: equal times stay in source order
        return {
            "source_index": src[order],
            "obmt_ns": t_ns[order],
            "fov": out_fov[keep][order],
            "zeta_rad": out_zeta[keep][order],
        }

    def _finder_args(self, t0_ns: int, t1_ns: int) -> tuple:
        p = self.params
        coarse_ns = self.PREFILTER_STEPS * self.step_ns
        rel0, rel1 = t0_ns - self.table_t0_ns, t1_ns - self.table_t0_ns
        j_lo, j_hi = rel0 // coarse_ns, -(-rel1 // coarse_ns)
        # |d(u.z)/dt| <= |dz/dt| = S dlambda/dt; 5 % margin for interpolation and rounding.
        lip = 1.05 * self.s_const * _max_sun_rate_rad_s()
        return (
            self.step_ns,
            self.PREFILTER_STEPS,
            j_lo,
            j_hi,
            rel0,
            rel1,
            math.sin(-ZETA_MIN_RAD),
            lip,
            p.eps_rad,
            p.xi_rad,
            p.spin_rate_rad_s,
            0.5 * BASIC_ANGLE_RAD,
            ZETA_MIN_RAD,
            -ZETA_MIN_RAD,
        )


def find_transits(u_icrs: np.ndarray, t0_ns: int, t1_ns: int, params: ScanLawParams | None = None) -> dict:
    """FoV transits of fixed stars in [t0_ns, t1_ns) under the NSL; see :meth:`ScanLaw.find_transits`."""
    return ScanLaw(t0_ns, t1_ns, params).find_transits(u_icrs, t0_ns, t1_ns)


# --- 5-year statistics ---------------------------------------------------------------------------------

#: PyGaia ``pygaia/data/errorFactorVariationBeta.txt`` (agabrown/PyGaia): end-of-mission (5 yr) number of
#: focal-plane passages N_obs, both FoVs, in 20 bins of |sin(ecliptic latitude)| of width 0.05, "based on an
#: assumed 6.2% dead time / data loss" (file header); mean 81. docs/facts.md section 1 condenses this table.
PYGAIA_N_OBS_BY_SIN_BETA = (61, 61, 62, 62, 63, 65, 66, 68, 71, 75, 80, 87, 98, 122, 144, 106, 93, 85, 80, 75)
PYGAIA_DEAD_TIME = 0.062


def isotropic_unit_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` isotropic ICRS unit vectors (n, 3) drawn from ``rng``."""
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def ecliptic_latitude_rad(u_icrs: np.ndarray, params: ScanLawParams | None = None) -> np.ndarray:
    """Ecliptic latitude (rad) of ICRS unit vectors, with the obliquity of ``params``."""
    eps = (params if params is not None else ScanLawParams()).eps_rad
    u = np.asarray(u_icrs, dtype=np.float64)
    return np.arcsin(np.clip(np.cos(eps) * u[:, 2] - np.sin(eps) * u[:, 1], -1.0, 1.0))


def transit_statistics(
    n_sources: int = 10_000,
    years: float = 5.0,
    seed: int = 0,
    start: datetime.date = NSL_START_DATE,
    params: ScanLawParams | None = None,
) -> dict:
    """Numbers of FoV transits of isotropic sources under the NSL (no dead time), by ecliptic latitude.

    Returns ``n_transits`` (int64 per source), ``beta_rad``, ``mean_transits``, the geometric expectation
    ``expected_mean`` = 2 FoVs x spins x sin(zeta_max) (the fraction of the sky within one FoV's AC band),
    ``bin_mean_transits`` per |sin beta| bin of PyGaia's table, ``pygaia_n_obs`` and timings in seconds.
    """
    if n_sources < 1 or years <= 0:
        raise ValueError("transit_statistics needs n_sources >= 1 and years > 0")
    rng = np.random.default_rng(seed)
    u = isotropic_unit_vectors(n_sources, rng)
    t0 = obmt_ns_from_date(start)
    t1 = t0 + round(years * DAYS_PER_YEAR * NS_PER_DAY)
    tic = time.perf_counter()
    law = ScanLaw(t0, t1, params)
    toc = time.perf_counter()
    tr = law.find_transits(u)
    tac = time.perf_counter()
    n_tr = np.bincount(tr["source_index"], minlength=n_sources).astype(np.int64)
    beta = ecliptic_latitude_rad(u, law.params)
    n_bins = len(PYGAIA_N_OBS_BY_SIN_BETA)
    b = np.minimum((np.abs(np.sin(beta)) * n_bins).astype(np.int64), n_bins - 1)
    bin_sum = np.bincount(b, weights=n_tr, minlength=n_bins)
    bin_n = np.bincount(b, minlength=n_bins)
    spins = (t1 - t0) * 1e-9 / law.params.spin_period_s
    return {
        "n_transits": n_tr,
        "beta_rad": beta,
        "mean_transits": float(n_tr.mean()),
        "expected_mean": 2.0 * spins * math.sin(-ZETA_MIN_RAD),
        "bin_mean_transits": bin_sum / np.maximum(bin_n, 1),
        "bin_sources": bin_n,
        "pygaia_n_obs": np.asarray(PYGAIA_N_OBS_BY_SIN_BETA, dtype=np.float64),
        "table_s": toc - tic,
        "find_s": tac - toc,
    }
