"""Slow, obvious references for ``gaiasim.sim.scanlaw`` (tests only).

- :func:`integrate_nsl` solves the NSL ODE of docs/facts.md section 1 with scipy's DOP853 (an independent
  adaptive method), integrating Omega - spin_rate * t so the fast linear part costs no precision.
- :func:`attitude_from_angles` builds the rotation matrix product of docs/facts.md section 1 with numpy and
  converts it with ``pipeline.geometry.quat_from_matrix``.
- :func:`find_transits` brute-forces transits: eta = phi -+ basic/2 on a dense time grid from
  ``ScanLaw.attitude`` and ``pipeline.geometry.field_angles``, every downward zero bracketed and
  bisected to 1 ns.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from gaiasim.sim.scanlaw import ScanLaw, ScanLawParams, speed_constant
from gaiasim.sim.timescale import days_since_j2000_from_obmt_ns, obmt_ns_from_tcb_days
from pipeline.geometry import BASIC_ANGLE_RAD, ZETA_MIN_RAD, field_angles, quat_from_matrix


def sun_longitude(days_j2000: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """docs/facts.md section 1 nominal Sun: (lambda in rad, dlambda/dt in rad/s)."""
    t = np.asarray(days_j2000, dtype=np.float64)
    e = 0.016709
    g = np.radians(357.528 + 0.98560028 * t)
    lam = np.radians(280.458 + 0.98560911 * t) + 2 * e * np.sin(g) + 1.25 * e**2 * np.sin(2 * g)
    dg = np.radians(0.98560028) / 86400.0
    lam_dot = np.radians(0.98560911) / 86400.0 + (2 * e * np.cos(g) + 2.5 * e**2 * np.cos(2 * g)) * dg
    return lam, lam_dot


def integrate_nsl(params: ScanLawParams, obmt_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nu, Omega) in rad at sorted ``obmt_ns`` (all after the reference epoch), by DOP853."""
    xi = params.xi_rad
    s_const = speed_constant(xi, params.precession_loops_per_year)
    w = params.spin_rate_rad_s
    ref_ns = int(obmt_ns_from_tcb_days(params.ref_epoch_tcb_days))
    ref_days = float(days_since_j2000_from_obmt_ns(ref_ns))
    t_eval = (np.asarray(obmt_ns, dtype=np.int64) - ref_ns) * 1e-9

    def rates(t, y):
        nu = y[0]
        _, lam_dot = sun_longitude(ref_days + t / 86400.0)
        nu_dot = lam_dot * (np.sqrt(s_const**2 - np.cos(nu) ** 2) + np.cos(xi) * np.sin(nu)) / np.sin(xi)
        # d(Omega - w t)/dt
        return [nu_dot, -nu_dot * np.cos(xi) - lam_dot * np.sin(xi) * np.sin(nu)]

    sol = solve_ivp(
        rates,
        (0.0, float(t_eval[-1])),
        [params.nu0_rad, params.omega0_rad],
        method="DOP853",
        t_eval=t_eval,
        rtol=1e-13,
        atol=1e-13,
    )
    return sol.y[0], sol.y[1] + w * t_eval


def _rot(axis: int, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    m = np.zeros((*np.shape(angle), 3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m[..., axis, axis] = 1.0
    m[..., i, i] = c
    m[..., j, j] = c
    m[..., i, j] = -s
    m[..., j, i] = s
    return m


def attitude_from_angles(
    params: ScanLawParams, nu: np.ndarray, omega: np.ndarray, lam: np.ndarray
) -> np.ndarray:
    """q of R = Rx(eps) Rz(lambda) Rx(nu - pi/2) Ry(pi/2 - xi) Rz(Omega) (active matrices), w >= 0."""
    nu = np.asarray(nu, dtype=np.float64)
    m = (
        _rot(0, np.full_like(nu, params.eps_rad))
        @ _rot(2, np.asarray(lam))
        @ _rot(0, nu - np.pi / 2)
        @ _rot(1, np.full_like(nu, np.pi / 2 - params.xi_rad))
        @ _rot(2, np.asarray(omega))
    )
    return quat_from_matrix(m)


def find_transits(law: ScanLaw, u_icrs: np.ndarray, t0_ns: int, t1_ns: int, grid_s: int = 60) -> dict:
    """Brute-force transits in [t0_ns, t1_ns), same conventions and output as ``ScanLaw.find_transits``.

    eta = wrap(phi - phi_fov) on a ``grid_s`` grid; every > 0 to <= 0 step (phi decreases; the -pi -> +pi
    wrap goes the other way) near the AC band is bisected in integer ns, all brackets at once.
    """
    u_icrs = np.asarray(u_icrs, dtype=np.float64)
    grid_ns = np.append(np.arange(t0_ns, t1_ns, grid_s * 10**9, dtype=np.int64), t1_ns)
    q_grid = law.attitude(grid_ns)
    src, fovs, lo, hi = [], [], [], []
    for s, u in enumerate(u_icrs):
        phi, zeta = field_angles(q_grid, np.broadcast_to(u, (grid_ns.size, 3)))
        for fov, phi_fov in ((1, 0.5 * BASIC_ANGLE_RAD), (2, -0.5 * BASIC_ANGLE_RAD)):
            eta = np.angle(np.exp(1j * (phi - phi_fov)))
            ks = np.flatnonzero((eta[:-1] > 0) & (eta[1:] <= 0) & (eta[:-1] < 1.0))
            ks = ks[np.minimum(np.abs(zeta[ks]), np.abs(zeta[ks + 1])) < -ZETA_MIN_RAD + 1e-3]
            src += [s] * ks.size
            fovs += [fov] * ks.size
            lo.append(grid_ns[ks])
            hi.append(grid_ns[ks + 1])
    src_a = np.array(src, dtype=np.int64)
    fov_a = np.array(fovs, dtype=np.int8)
    phi_fov = np.where(fov_a == 1, 0.5 * BASIC_ANGLE_RAD, -0.5 * BASIC_ANGLE_RAD)
    lo_a = np.concatenate(lo) if lo else np.zeros(0, dtype=np.int64)
    hi_a = np.concatenate(hi) if hi else np.zeros(0, dtype=np.int64)

    def eta_zeta(t_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        phi, zeta = field_angles(law.attitude(t_ns), u_icrs[src_a])
        return np.angle(np.exp(1j * (phi - phi_fov))), zeta

    # Invariant: eta(lo) > 0 >= eta(hi); stop at 1 ns.
    while np.any(hi_a - lo_a > 1):
        mid = lo_a + (hi_a - lo_a) // 2
        pos = eta_zeta(mid)[0] > 0
        lo_a = np.where(pos, mid, lo_a)
        hi_a = np.where(pos, hi_a, mid)
    eta_lo, _ = eta_zeta(lo_a)
    eta_hi, _ = eta_zeta(hi_a)
    # The end of the last 1-ns bracket with the smaller |eta|.
    t_ns = np.where(eta_lo < -eta_hi, lo_a, hi_a)
    _, zeta = eta_zeta(t_ns)
    ok = (zeta >= ZETA_MIN_RAD) & (zeta < -ZETA_MIN_RAD) & (t_ns >= t0_ns) & (t_ns < t1_ns)
    order = np.lexsort((src_a[ok], t_ns[ok]))
    return {
        "source_index": src_a[ok][order],
        "obmt_ns": t_ns[ok][order],
        "fov": fov_a[ok][order],
        "zeta_rad": zeta[ok][order],
    }
