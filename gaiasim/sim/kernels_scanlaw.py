"""Private numba kernels of the nominal scanning law (array-only; see ``gaiasim.sim.scanlaw``).

Time inside the kernels is float seconds, always relative to a table node (never the absolute
OBMT), so that float64 keeps picosecond resolution even five years from the table start.

Heliotropic angles (docs/facts.md section 1, Lindegren SAG-LL-035 / FM-037):
    R(t) = Rx(eps) Rz(lambda_sun) Rx(nu - pi/2) Ry(pi/2 - xi) Rz(Omega),  u_icrs = R u_srs.
A table row holds, at one node: nu, dnu/dt, Omega (wrapped to [0, 2 pi)), dOmega/dt, lambda_sun,
dlambda_sun/dt (rad, rad/s), the spin axis in ecliptic coordinates (3 columns, for the transit
pre-filter) and the unwrapped increment of Omega to the next node. Omega grows by ~1e5 rad over a
mission, where float64 resolves only ~1e-11 rad (30 ns of spin); wrapped nodes plus increments keep
the interpolated phase at ~1e-15 rad.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from gaiasim.sim.jit import jit, jit_parallel

# Table columns.
NU, NU_DOT, OM, OM_DOT, LAM, LAM_DOT, ZX, ZY, ZZ, OM_STEP = range(10)
N_COLS = 10

DEG = math.pi / 180.0
SECONDS_PER_DAY = 86400.0
TWO_PI = 2.0 * math.pi


@jit
def sun_longitude(days_j2000):
    """Nominal solar longitude (rad) and its rate (rad/s) at ``days_j2000`` days since J2000.0.

    docs/facts.md section 1 (rzinkstok ``Sun.java`` after GAIA-LL-35):
    L = 280.458 + 0.98560911 t, g = 357.528 + 0.98560028 t (deg), lambda = L + 2e sin g + 1.25 e^2 sin 2g.
    """
    e = 0.016709
    l_deg = 280.458 + 0.98560911 * days_j2000
    g = (357.528 + 0.98560028 * days_j2000) * DEG
    lam = l_deg * DEG + 2.0 * e * math.sin(g) + 1.25 * e * e * math.sin(2.0 * g)
    g_dot = 0.98560028 * DEG / SECONDS_PER_DAY
    lam_dot = (
        0.98560911 * DEG / SECONDS_PER_DAY + (2.0 * e * math.cos(g) + 2.5 * e * e * math.cos(2.0 * g)) * g_dot
    )
    return lam, lam_dot


@jit
def _nsl_rates(nu, lam_dot, s_const, sin_xi, cos_xi, spin_rate_rad_s):
    """(dnu/dt, dOmega/dt) of the NSL ODE, docs/facts.md section 1 (rzinkstok ``NSLIntegrator.java``)."""
    cos_nu = math.cos(nu)
    sin_nu = math.sin(nu)
    nu_dot = lam_dot * (math.sqrt(s_const * s_const - cos_nu * cos_nu) + cos_xi * sin_nu) / sin_xi
    om_dot = spin_rate_rad_s - nu_dot * cos_xi - lam_dot * sin_xi * sin_nu
    return nu_dot, om_dot


@jit
def _fill_row(tab, row, days_j2000, nu, om, s_const, sin_xi, cos_xi, spin_rate_rad_s):
    lam, lam_dot = sun_longitude(days_j2000)
    nu_dot, om_dot = _nsl_rates(nu, lam_dot, s_const, sin_xi, cos_xi, spin_rate_rad_s)
    tab[row, NU] = nu
    tab[row, NU_DOT] = nu_dot
    tab[row, OM] = om
    tab[row, OM_DOT] = om_dot
    tab[row, LAM] = lam
    tab[row, LAM_DOT] = lam_dot
    # Spin axis in ecliptic coordinates: Rz(lam) Rx(nu - pi/2) Ry(pi/2 - xi) e_z.
    cl, sl = math.cos(lam), math.sin(lam)
    a = sin_xi * math.cos(nu)
    tab[row, ZX] = cl * cos_xi - sl * a
    tab[row, ZY] = sl * cos_xi + cl * a
    tab[row, ZZ] = sin_xi * math.sin(nu)


@jit
def _rk4_step(nu, om, t_days, h, s_const, sin_xi, cos_xi, spin_rate_rad_s):
    """One classical RK4 step of length ``h`` seconds (may be negative) from ``t_days`` (days since J2000)."""
    hd = h / SECONDS_PER_DAY
    _, ld1 = sun_longitude(t_days)
    _, ld2 = sun_longitude(t_days + 0.5 * hd)
    _, ld4 = sun_longitude(t_days + hd)
    a1, b1 = _nsl_rates(nu, ld1, s_const, sin_xi, cos_xi, spin_rate_rad_s)
    a2, b2 = _nsl_rates(nu + 0.5 * h * a1, ld2, s_const, sin_xi, cos_xi, spin_rate_rad_s)
    a3, b3 = _nsl_rates(nu + 0.5 * h * a2, ld2, s_const, sin_xi, cos_xi, spin_rate_rad_s)
    a4, b4 = _nsl_rates(nu + h * a3, ld4, s_const, sin_xi, cos_xi, spin_rate_rad_s)
    # The Omega rates (b) do not depend on Omega, only on nu: one RK4 for the pair.
    return nu + h * (a1 + 2.0 * a2 + 2.0 * a3 + a4) / 6.0, om + h * (b1 + 2.0 * b2 + 2.0 * b3 + b4) / 6.0


@jit
def nsl_table(ref_days_j2000, nu0, om0, step_s, k_first, n_nodes, s_const, xi_rad, spin_rate_rad_s):
    """Integrate the NSL ODE with fixed-step RK4 and tabulate nodes ``k_first .. k_first + n_nodes - 1``.

    Node k is at ``ref + k * step_s`` seconds; (nu, Omega) = (nu0, om0) at node 0 (the reference
    epoch). Nodes sit on this fixed grid whatever span is asked for, and for spans after the reference
    epoch a node's values are bit-identical whichever span was asked for (same steps from node 0).
    """
    sin_xi, cos_xi = math.sin(xi_rad), math.cos(xi_rad)
    nu, om = nu0, om0
    k = 0
    # March (without storing) from the reference node to the first tabulated one.
    while k < k_first:
        nu, om = _rk4_step(
            nu,
            om,
            ref_days_j2000 + k * step_s / SECONDS_PER_DAY,
            step_s,
            s_const,
            sin_xi,
            cos_xi,
            spin_rate_rad_s,
        )
        k += 1
    while k > k_first:
        nu, om = _rk4_step(
            nu,
            om,
            ref_days_j2000 + k * step_s / SECONDS_PER_DAY,
            -step_s,
            s_const,
            sin_xi,
            cos_xi,
            spin_rate_rad_s,
        )
        k -= 1
    tab = np.empty((n_nodes, N_COLS))
    for row in range(n_nodes):
        t_days = ref_days_j2000 + k * step_s / SECONDS_PER_DAY
        _fill_row(tab, row, t_days, nu, om, s_const, sin_xi, cos_xi, spin_rate_rad_s)
        if row < n_nodes - 1:
            nu, om = _rk4_step(nu, om, t_days, step_s, s_const, sin_xi, cos_xi, spin_rate_rad_s)
            k += 1
    for row in range(n_nodes - 1):
        tab[row, OM_STEP] = tab[row + 1, OM] - tab[row, OM]
    tab[n_nodes - 1, OM_STEP] = 0.0
    for row in range(n_nodes):
        tab[row, OM] -= TWO_PI * math.floor(tab[row, OM] / TWO_PI)
    return tab


@jit
def _hermite(p0, dp, m0, m1, f):
    """Cubic Hermite between values p0 and p0 + dp with end slopes m0, m1 (per interval) at fraction f."""
    f2 = f * f
    f3 = f2 * f
    # p0 + (p1 - p0) h01 + m0 h10 + m1 h11 (h00 = 1 - h01), written around p0.
    return p0 + dp * (3.0 * f2 - 2.0 * f3) + m0 * (f3 - 2.0 * f2 + f) + m1 * (f3 - f2)


@jit
def _hermite_col(tab, i, f, step_s, col, dcol):
    return _hermite(
        tab[i, col], tab[i + 1, col] - tab[i, col], tab[i, dcol] * step_s, tab[i + 1, dcol] * step_s, f
    )


@jit
def angles_at(tab, step_s, node, local_s):
    """(nu, Omega, lambda_sun) in rad at ``local_s`` seconds after table node ``node``; Omega ~ in [0, 2 pi].

    Outside the table the end interval is extrapolated (the public wrappers keep queries inside).
    """
    k = math.floor(local_s / step_s)
    i = node + int(k)
    f = local_s / step_s - k
    n = tab.shape[0]
    if i < 0:
        f += i
        i = 0
    elif i > n - 2:
        f += i - (n - 2)
        i = n - 2
    om = _hermite(tab[i, OM], tab[i, OM_STEP], tab[i, OM_DOT] * step_s, tab[i + 1, OM_DOT] * step_s, f)
    return _hermite_col(tab, i, f, step_s, NU, NU_DOT), om, _hermite_col(tab, i, f, step_s, LAM, LAM_DOT)


@jit
def _quat_mul(ax, ay, az, aw, bx, by, bz, bw):
    """Hamilton product of scalar-last quaternions (as ``pipeline.geometry.quat_multiply``)."""
    return (
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    )


@jit_parallel
def attitude_quats(tab, step_ns, rel_ns, eps_rad, xi_rad):
    """Unit quaternions (n, 4), scalar last, w >= 0, SRS -> ICRS at ``rel_ns`` ns after the table start.

    q = qx(eps) qz(lambda) qx(nu - pi/2) qy(pi/2 - xi) qz(Omega): the quaternion form of the rotation
    product of docs/facts.md section 1 (composition of active rotations = Hamilton product).
    """
    n = rel_ns.shape[0]
    out = np.empty((n, 4))
    step_s = step_ns * 1e-9
    se, ce = math.sin(0.5 * eps_rad), math.cos(0.5 * eps_rad)
    b = 0.5 * (0.5 * math.pi - xi_rad)
    sb, cb = math.sin(b), math.cos(b)
    for j in prange(n):
        node = rel_ns[j] // step_ns
        local_s = (rel_ns[j] - node * step_ns) * 1e-9
        nu, om, lam = angles_at(tab, step_s, node, local_s)
        # qx(eps) qz(lam)
        x, y, z, w = _quat_mul(se, 0.0, 0.0, ce, 0.0, 0.0, math.sin(0.5 * lam), math.cos(0.5 * lam))
        a = 0.5 * (nu - 0.5 * math.pi)
        x, y, z, w = _quat_mul(x, y, z, w, math.sin(a), 0.0, 0.0, math.cos(a))
        x, y, z, w = _quat_mul(x, y, z, w, 0.0, sb, 0.0, cb)
        x, y, z, w = _quat_mul(x, y, z, w, 0.0, 0.0, math.sin(0.5 * om), math.cos(0.5 * om))
        sign = -1.0 if w < 0.0 else 1.0
        norm = sign / math.sqrt(x * x + y * y + z * z + w * w)
        out[j, 0] = x * norm
        out[j, 1] = y * norm
        out[j, 2] = z * norm
        out[j, 3] = w * norm
    return out


@jit
def _src_angles(tab, step_s, node, local_s, ex, ey, ez, sin_xi, cos_xi):
    """(phi + 2 pi m, sin zeta) of the ecliptic unit vector (ex, ey, ez) in SRS; phi not wrapped.

    u_srs = Rz(-Omega) Ry(xi - pi/2) Rx(pi/2 - nu) Rz(-lambda) u_ecl: the inverse of the NSL rotation.
    """
    nu, om, lam = angles_at(tab, step_s, node, local_s)
    cl, sl = math.cos(lam), math.sin(lam)
    w1x = cl * ex + sl * ey
    w1y = cl * ey - sl * ex
    cn, sn = math.cos(nu), math.sin(nu)
    w2y = sn * w1y - cn * ez
    w2z = cn * w1y + sn * ez
    w3x = sin_xi * w1x - cos_xi * w2z
    w3z = cos_xi * w1x + sin_xi * w2z
    return math.atan2(w2y, w3x) - om, w3z


@jit
def _wrap_pi(x):
    """x mod 2 pi into [-pi, pi]."""
    return x - TWO_PI * math.floor(x / TWO_PI + 0.5)


@jit
def _source_transits(
    u,
    tab,
    zc,
    step_ns,
    n_sub,
    j_lo,
    j_hi,
    t0_rel_ns,
    t1_rel_ns,
    sin_band,
    lip_rad_s,
    sin_eps,
    cos_eps,
    sin_xi,
    cos_xi,
    spin_rate_rad_s,
    phi_fov,
    zeta_lo,
    zeta_hi,
    write,
    cap,
    out_ns,
    out_fov,
    out_zeta,
    offset,
):
    """Transits of one source (ICRS unit vector ``u``) between ``t0_rel_ns`` and ``t1_rel_ns``.

    With ``write`` False, returns an upper bound on their number (cheap: dot products only); with
    ``write`` True, writes at most ``cap`` of them from ``offset`` and returns how many.

    ``zc`` (m, 3) is the spin axis (ecliptic) at every ``n_sub``-th table node, contiguous for the cache.
    Pre-filter: a transit needs |u . z| <= sin_band at its time. On each coarse interval of length T
    between nodes, |d(u . z)/dt| <= lip, so its minimum |u . z| >= (|d0| + |d1| - lip T) / 2: intervals
    with |d0| + |d1| > 2 sin_band + lip T are skipped, the others merged into spans.
    Refinement: eta = phi - phi_fov decreases at the inertial spin rate (to ~1e-4 relative near the scan
    circle), so each crossing is predicted from the spin phase and refined by Newton with that slope.
    """
    ex = u[0]
    ey = cos_eps * u[1] + sin_eps * u[2]
    ez = cos_eps * u[2] - sin_eps * u[1]
    step_s = step_ns * 1e-9
    coarse_ns = n_sub * step_ns
    coarse_s = coarse_ns * 1e-9
    thr = 2.0 * sin_band + lip_rad_s * coarse_s
    period_s = TWO_PI / spin_rate_rad_s
    slack_s = 60.0
    # zeta moves by at most lip * slack while a prediction converges.
    zeta_margin = lip_rad_s * slack_s
    count = 0
    j = j_lo
    d0 = ex * zc[j, 0] + ey * zc[j, 1] + ez * zc[j, 2]
    while j < j_hi:
        d1 = ex * zc[j + 1, 0] + ey * zc[j + 1, 1] + ez * zc[j + 1, 2]
        if abs(d0) + abs(d1) > thr:
            j += 1
            d0 = d1
            continue
        js = j
        while True:
            j += 1
            d0 = d1
            if j >= j_hi:
                break
            d1 = ex * zc[j + 1, 0] + ey * zc[j + 1, 1] + ez * zc[j + 1, 2]
            if abs(d0) + abs(d1) > thr:
                break
        # Span of candidate coarse intervals [js, j), clipped to the window.
        node = js * n_sub
        base_ns = js * coarse_ns
        lo = max(0.0, (t0_rel_ns - base_ns) * 1e-9)
        hi = min((j - js) * coarse_s, (t1_rel_ns - base_ns) * 1e-9)
        if hi <= lo:
            continue
        if not write:
            # Crossings of one FoV are ~one spin period apart (slope within 1e-3 of the spin rate).
            count += 2 * (int((hi - lo) / (0.999 * period_s)) + 2)
            continue
        phi_lo, _ = _src_angles(tab, step_s, node, lo, ex, ey, ez, sin_xi, cos_xi)
        for fov in range(1, 3):
            phi_f = phi_fov if fov == 1 else -phi_fov
            x = phi_lo - phi_f
            t = lo + (x - TWO_PI * math.floor(x / TWO_PI)) / spin_rate_rad_s
            while t < hi + slack_s:
                # Approach: Newton with the spin rate as slope, to ~1 ms.
                tt = t
                ok = True
                for it in range(6):
                    phi, sz = _src_angles(tab, step_s, node, tt, ex, ey, ez, sin_xi, cos_xi)
                    if it == 0 and abs(sz) > sin_band + zeta_margin:
                        ok = False
                        break
                    dt = _wrap_pi(phi - phi_f) / spin_rate_rad_s
                    tt += dt
                    if abs(dt) < 1e-3:
                        break
                if not ok:
                    t += period_s
                    continue
                # Polish from the table node before the root, so the result depends on that node only
                # (not on where the window or span began): bit-identical across windows.
                k = math.floor(tt / step_s)
                row = node + int(k)
                x = 0.0
                sz = 0.0
                for _ in range(12):
                    phi, sz = _src_angles(tab, step_s, row, x, ex, ey, ez, sin_xi, cos_xi)
                    dx = _wrap_pi(phi - phi_f) / spin_rate_rad_s
                    x += dx
                    if abs(dx) < 1e-10:
                        break
                zeta = math.asin(min(1.0, max(-1.0, sz)))
                t_ns = row * step_ns + np.int64(round(x * 1e9))
                if zeta_lo <= zeta < zeta_hi and t0_rel_ns <= t_ns < t1_rel_ns and count < cap:
                    out_ns[offset + count] = t_ns
                    out_fov[offset + count] = fov
                    out_zeta[offset + count] = zeta
                    count += 1
                t = tt + period_s
    return count


@jit_parallel
def transit_bounds(
    u_icrs,
    tab,
    zc,
    step_ns,
    n_sub,
    j_lo,
    j_hi,
    t0_rel_ns,
    t1_rel_ns,
    sin_band,
    lip_rad_s,
    eps_rad,
    xi_rad,
    spin_rate_rad_s,
    phi_fov,
    zeta_lo,
    zeta_hi,
):
    """Pass 1: per-source upper bound on the number of transits (int64, n)."""
    n = u_icrs.shape[0]
    out = np.zeros(n, dtype=np.int64)
    dummy_i = np.zeros(0, dtype=np.int64)
    dummy_b = np.zeros(0, dtype=np.int8)
    dummy_f = np.zeros(0)
    se, ce, sx, cx = math.sin(eps_rad), math.cos(eps_rad), math.sin(xi_rad), math.cos(xi_rad)
    for s in prange(n):
        out[s] = _source_transits(
            u_icrs[s],
            tab,
            zc,
            step_ns,
            n_sub,
            j_lo,
            j_hi,
            t0_rel_ns,
            t1_rel_ns,
            sin_band,
            lip_rad_s,
            se,
            ce,
            sx,
            cx,
            spin_rate_rad_s,
            phi_fov,
            zeta_lo,
            zeta_hi,
            False,
            0,
            dummy_i,
            dummy_b,
            dummy_f,
            0,
        )
    return out


@jit_parallel
def transit_fill(
    u_icrs,
    sources,
    offsets,
    caps,
    tab,
    zc,
    step_ns,
    n_sub,
    j_lo,
    j_hi,
    t0_rel_ns,
    t1_rel_ns,
    sin_band,
    lip_rad_s,
    eps_rad,
    xi_rad,
    spin_rate_rad_s,
    phi_fov,
    zeta_lo,
    zeta_hi,
    out_ns,
    out_fov,
    out_zeta,
):
    """Pass 2: transits of ``sources`` written from ``offsets`` (at most ``caps``); returns counts."""
    m = sources.shape[0]
    counts = np.zeros(m, dtype=np.int64)
    se, ce, sx, cx = math.sin(eps_rad), math.cos(eps_rad), math.sin(xi_rad), math.cos(xi_rad)
    for c in prange(m):
        counts[c] = _source_transits(
            u_icrs[sources[c]],
            tab,
            zc,
            step_ns,
            n_sub,
            j_lo,
            j_hi,
            t0_rel_ns,
            t1_rel_ns,
            sin_band,
            lip_rad_s,
            se,
            ce,
            sx,
            cx,
            spin_rate_rad_s,
            phi_fov,
            zeta_lo,
            zeta_hi,
            True,
            caps[c],
            out_ns,
            out_fov,
            out_zeta,
            offsets[c],
        )
    return counts


@jit
def _error_vector(t, period_ns, phase_rad, amplitude_rad, derivative):
    """Rotation vector ``r(t)`` of the attitude error at ``t`` (float ns; rad), or its time derivative
    ``dr/dt`` (rad/ns) when ``derivative``: ``r_i = amplitude * sum_j sin(2 pi (t mod P_ij) / P_ij +
    phase_ij)``."""
    r0 = 0.0
    r1 = 0.0
    r2 = 0.0
    for j in range(period_ns.shape[1]):
        # Cycles t / P, reduced to [0, 1): as t mod P but without fmod's long division (~1e-11 of a
        # cycle off at t ~ 1e17 ns, 1e-16 arcsec of error).
        c0 = t / period_ns[0, j]
        c1 = t / period_ns[1, j]
        c2 = t / period_ns[2, j]
        a0 = TWO_PI * (c0 - math.floor(c0)) + phase_rad[0, j]
        a1 = TWO_PI * (c1 - math.floor(c1)) + phase_rad[1, j]
        a2 = TWO_PI * (c2 - math.floor(c2)) + phase_rad[2, j]
        if derivative:
            r0 += math.cos(a0) * (TWO_PI / period_ns[0, j])
            r1 += math.cos(a1) * (TWO_PI / period_ns[1, j])
            r2 += math.cos(a2) * (TWO_PI / period_ns[2, j])
        else:
            r0 += math.sin(a0)
            r1 += math.sin(a1)
            r2 += math.sin(a2)
    return r0 * amplitude_rad, r1 * amplitude_rad, r2 * amplitude_rad


@jit
def _rotation_quat(r0, r1, r2, out, i):
    """Row ``i`` of ``out``: the quaternion ``exp(r/2)`` (x, y, z, w) of the rotation vector ``r``."""
    a2 = r0 * r0 + r1 * r1 + r2 * r2
    if a2 < 1e-6:
        # Below 1e-3 rad (attitude errors are ~1e-4): Taylor series of sin(a/2)/a and cos(a/2), whose
        # next terms (a^6 / 645120, a^8 / 10321920) are below 1e-23.
        s = 0.5 - a2 * (1.0 / 48.0 - a2 * (1.0 / 3840.0))
        out[i, 0] = r0 * s
        out[i, 1] = r1 * s
        out[i, 2] = r2 * s
        out[i, 3] = 1.0 - a2 * (1.0 / 8.0 - a2 * (1.0 / 384.0 - a2 * (1.0 / 46080.0)))
        return
    angle = math.sqrt(a2)
    if angle > 0.0:
        s = math.sin(0.5 * angle) / angle
        out[i, 0] = r0 * s
        out[i, 1] = r1 * s
        out[i, 2] = r2 * s
    else:
        out[i, 0] = 0.0
        out[i, 1] = 0.0
        out[i, 2] = 0.0
    out[i, 3] = math.cos(0.5 * angle)


@jit_parallel
def attitude_error_quats(obmt_ns, period_ns, phase_rad, amplitude_rad):
    """Quaternions ``exp(r/2)`` (x, y, z, w) of the attitude error rotation vectors ``r(t)``
    (``gaiasim.sim.attitude``), one row per time of ``obmt_ns`` (int64 ns); ``period_ns`` and
    ``phase_rad`` are (3, n_terms).

    The numpy reference is ``tests/naive/attitude.py`` (this is ~10x faster: no (n, 3, n_terms)
    temporaries, and it runs on every thread).
    """
    n = obmt_ns.shape[0]
    out = np.empty((n, 4))
    for i in prange(n):
        r0, r1, r2 = _error_vector(np.float64(obmt_ns[i]), period_ns, phase_rad, amplitude_rad, False)
        _rotation_quat(r0, r1, r2, out, i)
    return out


@jit_parallel
def attitude_error_nodes(t0_ns, step_ns, n, period_ns, phase_rad, amplitude_rad):
    """The error's rotation vector and its derivative per step (rad) at ``t0_ns + k step_ns``, k < n:
    the nodes of :func:`attitude_error_quats_hermite`, (n, 3) each."""
    r = np.empty((n, 3))
    dr = np.empty((n, 3))
    for k in prange(n):
        t = np.float64(t0_ns + k * step_ns)
        r0, r1, r2 = _error_vector(t, period_ns, phase_rad, amplitude_rad, False)
        d0, d1, d2 = _error_vector(t, period_ns, phase_rad, amplitude_rad, True)
        r[k, 0] = r0
        r[k, 1] = r1
        r[k, 2] = r2
        dr[k, 0] = d0 * step_ns
        dr[k, 1] = d1 * step_ns
        dr[k, 2] = d2 * step_ns
    return r, dr


@jit_parallel
def attitude_error_quats_hermite(obmt_ns, t0_ns, step_ns, r, dr):
    """:func:`attitude_error_quats` with ``r(t)`` interpolated by cubic Hermite polynomials between the
    nodes of :func:`attitude_error_nodes` (values and derivatives per step at ``t0_ns + k step_ns``);
    times must lie within the nodes."""
    n = obmt_ns.shape[0]
    out = np.empty((n, 4))
    last = r.shape[0] - 2
    for i in prange(n):
        dt = obmt_ns[i] - t0_ns
        k = min(max(dt // step_ns, 0), last)
        f = np.float64(dt - k * step_ns) / step_ns
        f2 = f * f
        f3 = f2 * f
        h00 = 2.0 * f3 - 3.0 * f2 + 1.0
        h10 = f3 - 2.0 * f2 + f
        h01 = 3.0 * f2 - 2.0 * f3
        h11 = f3 - f2
        r0 = h00 * r[k, 0] + h10 * dr[k, 0] + h01 * r[k + 1, 0] + h11 * dr[k + 1, 0]
        r1 = h00 * r[k, 1] + h10 * dr[k, 1] + h01 * r[k + 1, 1] + h11 * dr[k + 1, 1]
        r2 = h00 * r[k, 2] + h10 * dr[k, 2] + h01 * r[k + 1, 2] + h11 * dr[k + 1, 2]
        _rotation_quat(r0, r1, r2, out, i)
    return out


@jit_parallel
def realised_field_angles(q_nsl, q_err, u_icrs):
    """Field angles (phi, zeta) of ICRS directions ``u_icrs`` (n, 3) under the realised attitudes
    ``q_nsl * q_err`` (n, 4 each, scalar last): the fused, per-row form of
    ``pipeline.geometry.field_angles(pipeline.geometry.quat_multiply(q_nsl, q_err), u_icrs)``, the same
    operations in the same order, without its (n, 4) and (n, 3) temporaries. The numpy form is the reference
    (``tests/naive/attitude.py``).
    """
    n = u_icrs.shape[0]
    phi = np.empty(n)
    zeta = np.empty(n)
    for i in prange(n):
        x, y, z, w = _quat_mul(q_nsl[i, 0], q_nsl[i, 1], q_nsl[i, 2], q_nsl[i, 3],
                               q_err[i, 0], q_err[i, 1], q_err[i, 2], q_err[i, 3])
        # Rotate u by the conjugate (-x, -y, -z, w): t = 2 (qv x u), s = u + w t + qv x t.
        qx, qy, qz = -x, -y, -z
        vx, vy, vz = u_icrs[i, 0], u_icrs[i, 1], u_icrs[i, 2]
        tx = 2.0 * (qy * vz - qz * vy)
        ty = 2.0 * (qz * vx - qx * vz)
        tz = 2.0 * (qx * vy - qy * vx)
        sx = vx + w * tx + (qy * tz - qz * ty)
        sy = vy + w * ty + (qz * tx - qx * tz)
        sz = vz + w * tz + (qx * ty - qy * tx)
        phi[i] = math.atan2(sy, sx)
        zeta[i] = math.asin(min(max(sz, -1.0), 1.0))
    return phi, zeta
