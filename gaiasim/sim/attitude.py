"""The realised attitude: the nominal scanning law plus the small errors of the real attitude control.

Gaia's realised attitude differs from the commanded one by up to ~30 arcsec (docs/facts.md section 1,
commanded_scan_law doc). Here the error is a small rotation vector ``r(t)`` in the SRS, a sum of
sinusoids with periods of 20 min to 6 h and random phases (a smooth limit-cycle-like wander [U]), so
that ``q_real(t) = q_nsl(t) * exp(r(t) / 2)``. Stars transit where the realised attitude puts them;
the attitude packets carry the realised attitude, and the pipeline only ever sees that.
"""

from __future__ import annotations

import numpy as np

from gaiasim.sim import kernels_scanlaw as _kernels
from gaiasim.sim.instrument import focal_plane as geometry

#: RMS of each component of the attitude error, rad (~8 arcsec, peaks of ~25 arcsec) [U].
ERROR_RMS_RAD = 8.0 * geometry.ARCSEC_RAD
#: Sinusoids per axis and their period range, s [U].
N_TERMS = 6
PERIOD_RANGE_S = (1200.0, 21600.0)
#: Node spacing of the interpolated error (:meth:`AttitudeError.near`). Cubic Hermite interpolation errs
#: by at most step^4 / 384 max |d4r/dt4|: with the shortest period (20 min), 1e-16 rad (2e-11 arcsec).
NODE_STEP_NS = 1_000_000_000


class AttitudeError:
    """Smooth attitude error of a dataset: deterministic in the seed, defined at any OBMT."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng([seed, 7])
        self.period_ns = np.exp(rng.uniform(*np.log(PERIOD_RANGE_S), (3, N_TERMS))) * 1e9
        self.phase = rng.uniform(0.0, 2.0 * np.pi, (3, N_TERMS))
        # Each term carries an equal share of the variance: amplitude sqrt(2 / N) x RMS.
        self.amplitude = ERROR_RMS_RAD * np.sqrt(2.0 / N_TERMS)

    def error_quats(self, obmt_ns: np.ndarray) -> np.ndarray:
        """(n, 4) quaternions ``exp(r/2)`` of the error rotation vectors ``r`` (SRS, rad) at ``obmt_ns``."""
        t = np.ascontiguousarray(obmt_ns, dtype=np.int64)
        return _kernels.attitude_error_quats(t, self.period_ns, self.phase, self.amplitude)

    def near(self, t_lo_ns: int, t_hi_ns: int):
        """A function of ``obmt_ns`` in [``t_lo_ns``, ``t_hi_ns``] giving :meth:`error_quats` from nodes
        every :data:`NODE_STEP_NS` (value and slope of the error, interpolated by cubic Hermite polynomials):
        18 sines per node instead of per time, for the many transits of a slice."""
        t0 = int(t_lo_ns) - int(t_lo_ns) % NODE_STEP_NS
        n = max(2, -(-(int(t_hi_ns) - t0) // NODE_STEP_NS) + 1)
        r, dr = _kernels.attitude_error_nodes(t0, NODE_STEP_NS, n, self.period_ns, self.phase, self.amplitude)

        def quats(obmt_ns: np.ndarray) -> np.ndarray:
            t = np.ascontiguousarray(obmt_ns, dtype=np.int64)
            if len(t) and (t.min() < t0 or t.max() > t0 + (n - 1) * NODE_STEP_NS):
                raise ValueError(f"times outside [{t_lo_ns}, {t_hi_ns}] ns, the span of these error nodes")
            return _kernels.attitude_error_quats_hermite(t, t0, NODE_STEP_NS, r, dr)

        return quats

    def apply(self, q_nsl: np.ndarray, obmt_ns: np.ndarray) -> np.ndarray:
        """The realised attitude from the nominal one at the same times."""
        return geometry.quat_multiply(q_nsl, self.error_quats(obmt_ns))


def realised_transits(attitude_nsl, error: AttitudeError, u_icrs: np.ndarray, fov: np.ndarray,
                      obmt_ns: np.ndarray, iterations: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Transit times and AC field angles under the realised attitude, from the nominal ones.

    Newton steps on the along-scan field angle: eta changes at minus the scan rate, so a residual
    eta at time t moves the crossing by eta / rate. Two steps reach the nanosecond for errors of tens
    of arcsec.
    """
    t = np.asarray(obmt_ns, dtype=np.int64)
    u = np.ascontiguousarray(u_icrs, dtype=np.float64).reshape(-1, 3)
    phi_fov = geometry.fov_phi_rad(fov)
    error_quats = error.error_quats
    if len(t):
        # Each step moves a time by at most the error over the scan rate (< 1 s): nodes 2 s beyond.
        lo, hi = int(t.min()) - 2_000_000_000, int(t.max()) + 2_000_000_000
        if (hi - lo) // NODE_STEP_NS < len(t):
            error_quats = error.near(lo, hi)
    for _ in range(iterations):
        phi, _ = _kernels.realised_field_angles(attitude_nsl(t), error_quats(t), u)
        eta = (phi - phi_fov + np.pi) % (2.0 * np.pi) - np.pi
        t = t + np.rint(eta / geometry.SCAN_RATE_RAD_S * 1e9).astype(np.int64)
    return t, _kernels.realised_field_angles(attitude_nsl(t), error_quats(t), u)[1]
