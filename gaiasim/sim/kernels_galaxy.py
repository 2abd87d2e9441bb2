"""Numba kernels of the population sky (:mod:`gaiasim.sim.galaxy`): line-of-sight tables and per-star draws.

Plain numpy reference: ``tests/naive/galaxy.py`` (line-of-sight tables), checked by
``tests/property/test_galaxy_properties.py``. Parameters come in as arrays built by galaxy.py, indexed by
the P_* constants below; every draw of a pixel comes from its own counter-based stream.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from gaiasim.sim.jit import jit, jit_parallel
from gaiasim.sim.kernels_random import normal, poisson, stream_key, uniform
from gaiasim.sim.kernels_sky import pixel_bounds

#: Draws 0 .. 2^20 - 1 of a pixel's stream decide its source count; the sources use the draws after.
_SOURCE_COUNTER = 1 << 20
#: Tries of the rejection draw of one star before its last candidate is kept (never reached in tests).
_MAX_TRIES = 10_000
#: Sub-steps per distance bin of the dust integral (midpoint rule).
_DUST_STEPS = 4

(P_R0, P_ZSUN, P_RMAX, P_HRY1, P_HRY2, P_HRO1, P_HRO2, P_THK_HR, P_THK_HZ, P_THK_XL, P_HALO_N, P_HALO_EPS,
 P_HALO_AC, P_BX0, P_BY0, P_BZ0, P_BRC, P_BCOS, P_BSIN, P_DUST_L, P_DUST_H, P_DUST_SUN, P_DUST_A0, P_OMEGA,
 P_BC_PERP, P_BC_PARA, P_BDZ, P_BXBONE, P_BSIGMA, P_BSECH, P_DUST_MODEL, P_AL_R0, P_AL_HI_N, P_AL_HI_L, P_AL_HI_HOLE,
 P_AL_H2_N, P_AL_H2_L, P_AL_H2_HOLE, P_AL_GC_N, P_AL_GC_W, P_AL_ZCO, P_AL_ZCO_GROW, P_AL_ZH_RATIO, P_AL_ZC,
 P_AL_MET_RIN, P_AL_MET_IN, P_AL_MET_RBREAK, P_AL_MET_P1, P_AL_MET_P2, P_AL_GAM1, P_AL_GAM2, P_AL_TUNE_L0, P_AL_TUNE_L1,
 P_AL_TUNE) = range(54)
#: P_DUST_MODEL values: galaxy.DUST_MODELS in order.
DUST_LI2018, DUST_AL05 = 0, 1


@jit
def _thin_law(r, z, eps, young, p):
    a2 = r * r + (z / eps) ** 2
    if young:
        return math.exp(-a2 / p[P_HRY1] ** 2) - math.exp(-a2 / p[P_HRY2] ** 2)
    return math.exp(-math.sqrt(0.25 + a2 / p[P_HRO1] ** 2)) - math.exp(-math.sqrt(0.25 + a2 / p[P_HRO2] ** 2))


@jit
def _thick_law(r, z, p):
    az, hz, xl = abs(z), p[P_THK_HZ], p[P_THK_XL]
    vertical = 1.0 - z * z / (xl * (2.0 * hz + xl)) if az <= xl else math.exp((xl - az) / hz) / (1.0 + xl / (2.0 * hz))
    return math.exp(-(r - p[P_R0]) / p[P_THK_HR]) * vertical


@jit
def _halo_law(r, z, p):
    a = math.sqrt(r * r + (z / p[P_HALO_EPS]) ** 2)
    return (max(a, p[P_HALO_AC]) / p[P_R0]) ** -p[P_HALO_N]


@jit
def _bulge_law(xc, yc, zg, p):
    """The bulge/bar's density over its central one, one generalised form for the three transcribed laws
    (galaxy.BULGE_MODELS): bar axes rotated by the bar angle, boxy radius r_s = {[(|x|/x0)^c_perp +
    (|y|/y0)^c_perp]^(c_para/c_perp) + (|z|/z0')^c_para}^(1/c_para) with z0' = z0 (1 + dz sin(|x|/x_bone))
    (the GUMS "bone"), profile exp(-r_s^2/2) or sech^2(r_s), times exp(-(r_xy - R_c)^2 / (2 sigma^2))
    beyond R_c."""
    xb = xc * p[P_BCOS] + yc * p[P_BSIN]
    yb = -xc * p[P_BSIN] + yc * p[P_BCOS]
    z0 = p[P_BZ0] * (1.0 + p[P_BDZ] * math.sin(abs(xb) / p[P_BXBONE]))
    c_perp, c_para = p[P_BC_PERP], p[P_BC_PARA]
    r_perp = ((abs(xb) / p[P_BX0]) ** c_perp + (abs(yb) / p[P_BY0]) ** c_perp) ** (1.0 / c_perp)
    rs = (r_perp ** c_para + (abs(zg) / z0) ** c_para) ** (1.0 / c_para)
    if p[P_BSECH] > 0.5:
        e = math.exp(-2.0 * rs)
        law = 4.0 * e / (1.0 + e) ** 2
    else:
        law = math.exp(-0.5 * rs * rs)
    rxy = math.sqrt(xb * xb + yb * yb)
    if rxy > p[P_BRC]:
        law *= math.exp(-0.5 * ((rxy - p[P_BRC]) / p[P_BSIGMA]) ** 2)
    return law


@jit
def densities(x, y, z, p, local, eps, out):
    """Number densities (pc^-3) of each density group (galaxy.GROUPS: the thin disc's age bins, each with its axis
    ratio in ``eps``, then thick disc, halo and bulge) at heliocentric Galactic (x to the centre, y, z) in kpc, z
    measured from the Sun's height (the plane is at z = -z_sun); ``local``: the groups' local densities."""
    zg = z + p[P_ZSUN]
    xc, yc = p[P_R0] - x, y  # Galactocentric, x towards the Sun
    r = math.sqrt(xc * xc + yc * yc)
    n = eps.shape[0]
    out[:n + 1] = 0.0  # the discs end at R_max
    if r <= p[P_RMAX]:
        for i in range(n):
            law = _thin_law(r, zg, eps[i], i == 0, p) / _thin_law(p[P_R0], p[P_ZSUN], eps[i], i == 0, p)
            out[i] = local[i] * law
        out[n] = local[n] * _thick_law(r, zg, p) / _thick_law(p[P_R0], p[P_ZSUN], p)
    out[n + 1] = local[n + 1] * _halo_law(r, zg, p) / _halo_law(p[P_R0], p[P_ZSUN], p)
    out[n + 2] = local[n + 2] * _bulge_law(xc, yc, zg, p)


@jit
def dust(x, y, z, p):
    """Dust density at heliocentric (x, y, z) kpc, in units that p[P_DUST_A0] turns into A0 per kpc: the
    exponential dust disc of Li+2018 (its shape, 1 at the Sun), or Amores & Lepine 2005's axisymmetric
    Model A (its gas density, HI and H2 with their central holes, in their units; galaxy.DUST_MODELS)."""
    if p[P_DUST_MODEL] == DUST_AL05:
        return _al05_gas(x, y, z, p)
    xc = p[P_R0] - x
    r = math.sqrt(xc * xc + y * y)
    if r > p[P_RMAX]:
        return 0.0
    return math.exp(-(r - p[P_R0]) / p[P_DUST_L] - abs(z + p[P_DUST_SUN]) / p[P_DUST_H])


@jit
def _al05_gas(x, y, z, p):
    """Amores & Lepine 2005 Model A (galaxy.AL05_*): gam1 n_HI(R) Z(R) exp(-((z - zc)/z_HI)^2/2) + gam2 n_H2(R)
    exp(-((z - zc)/z_H2)^2/2), R about their own Galactic centre, r0 from the Sun; x their "tune" towards
    120 <= l <= 200."""
    xc = p[P_AL_R0] - x
    r = max(math.sqrt(xc * xc + y * y), 1e-9)
    z_h2 = p[P_AL_ZCO] * math.exp(p[P_AL_ZCO_GROW] * r)
    z_hi = p[P_AL_ZH_RATIO] * z_h2
    n_hi = p[P_AL_HI_N] * math.exp(-r / p[P_AL_HI_L] - (p[P_AL_HI_HOLE] / r) ** 2)
    n_h2 = (p[P_AL_H2_N] * math.exp(-r / p[P_AL_H2_L] - (p[P_AL_H2_HOLE] / r) ** 2)
            + p[P_AL_GC_N] * math.exp(-r * r / p[P_AL_GC_W]))
    if r <= p[P_AL_MET_RIN]:
        metals = p[P_AL_MET_IN]
    elif r <= p[P_AL_MET_RBREAK]:
        metals = (p[P_AL_R0] / r) ** p[P_AL_MET_P1]
    else:
        metals = (p[P_AL_R0] / r) ** p[P_AL_MET_P2]
    dz = z - p[P_AL_ZC]
    gas = (p[P_AL_GAM1] * n_hi * metals * math.exp(-0.5 * (dz / z_hi) ** 2)
           + p[P_AL_GAM2] * n_h2 * math.exp(-0.5 * (dz / z_h2) ** 2))
    lon = math.degrees(math.atan2(y, x)) % 360.0
    if p[P_AL_TUNE_L0] <= lon <= p[P_AL_TUNE_L1]:
        gas *= p[P_AL_TUNE]
    return gas


@jit
def _los_one(lon, b, edges, p, local, eps, detected, a0_step, counts, a0):
    """One direction: counts (components, bins) of detected stars and A0 at the bin edges (bins + 1)."""
    cl, sl, cb, sb = math.cos(lon), math.sin(lon), math.cos(b), math.sin(b)
    n_bins = edges.shape[0] - 1
    n_a = detected.shape[2]
    rho = np.empty(local.shape[0])
    a0[0] = 0.0
    for k in range(n_bins):
        d0, d1 = edges[k] * 1e-3, edges[k + 1] * 1e-3
        step = (d1 - d0) / _DUST_STEPS
        col = 0.0
        for s in range(_DUST_STEPS):
            d = d0 + (s + 0.5) * step
            col += dust(d * cb * cl, d * cb * sl, d * sb, p) * step
        a0[k + 1] = a0[k] + p[P_DUST_A0] * col
        dc = math.sqrt(d0 * d1)
        a0c = a0[k] + (a0[k + 1] - a0[k]) * (dc - d0) / (d1 - d0)
        densities(dc * cb * cl, dc * cb * sl, dc * sb, p, local, eps, rho)
        volume = p[P_OMEGA] * (edges[k + 1] ** 3 - edges[k] ** 3) / 3.0
        f = min(a0c / a0_step, n_a - 1.0)
        j = min(int(f), n_a - 2)
        t = f - j
        for c in range(counts.shape[0]):
            frac = detected[c, k, j] * (1.0 - t) + detected[c, k, j + 1] * t
            counts[c, k] = rho[c // 2] * volume * frac


@jit_parallel
def line_of_sight(l_rad, b_rad, edges, p, local, eps, detected, a0_step, counts, a0):
    for i in numba.prange(l_rad.shape[0]):
        _los_one(l_rad[i], b_rad[i], edges, p, local, eps, detected, a0_step, counts[i], a0[i])


@jit_parallel
def expected_totals(l_rad, b_rad, edges, p, local, eps, detected, a0_step, out):
    """Sum of each direction's table: its expected detected stars (before the pixel-independent scale)."""
    for i in numba.prange(l_rad.shape[0]):
        counts = np.empty((detected.shape[0], edges.shape[0] - 1))
        a0 = np.empty(edges.shape[0])
        _los_one(l_rad[i], b_rad[i], edges, p, local, eps, detected, a0_step, counts, a0)
        out[i] = counts.sum()


@jit_parallel
def count_sources(seed, pixels, mean, counts):
    """Number of primaries of each pixel: Poisson of its mean, from the pixel's stream (draw 0)."""
    for i in numba.prange(pixels.shape[0]):
        n, _ = poisson(mean[i], stream_key(seed, pixels[i]), 0)
        counts[i] = np.int64(n)


@jit
def k_law(c, x, a0, x_lo, x_hi, a_max):
    x = min(max(x, x_lo), x_hi)
    a = min(max(a0, 0.0), a_max)
    return (c[0] + c[1] * x + c[2] * x * x + c[3] * x ** 3 + c[4] * a + c[5] * a * a + c[6] * a ** 3
            + c[7] * x * a + c[8] * a * x * x + c[9] * x * a * a)


@jit
def detected_fraction(g, cg, g_gen):
    """Cantat-Gaudin+2023 completeness, (G0, w, s) in ``cg``; zero from the generation limit on."""
    if g >= g_gen:
        return 0.0
    return 1.0 - (0.5 * (math.tanh((g - cg[0]) / cg[1]) + 1.0)) ** cg[2]


@jit
def _inside(z, ra, z0, z1, ra0, ra1):
    return z0 <= z < z1 and ra0 <= ra < ra1


@jit_parallel
def fill_sources(seed, pixels, n_primary, slots, n_z, n_ra, counts, a0_edges, edges, mg_grid, mg_step, cum, ridge,
                 sigma, k_g, k_bp, k_rp, x_range, a_max, k_g_min, cg, g_gen, a0_scatter, kinds, mf_mass, mf_frac,
                 log_m, mg_of_m, pop_of, bp, z_out, ra_out, g_out, bp_rp_out, used, pop_out, giant_out, comp_out,
                 dist_out, a0_out, mg_out, x0_out, sep_out):
    """The stars of each pixel into its slots (2 per primary: room for a resolved companion); ``used`` gets
    how many were written. bp: q_min, log P median, sigma, merge and wide separations (arcsec), lightest
    star, giant mass. ``mg_of_m`` and ``pop_of``: per density group (component // 2), its sequence's M_G per
    mass and its population code. Beside each source its physics (gaiasim.sim.source_physics): population, giant,
    companion code, distance (pc), A0, absolute G and intrinsic BP-RP (a merged pair: both stars), pair
    separation (arcsec, NaN without a companion); they take no draws, so the sources are the same with or
    without them."""
    two_pi = 2.0 * math.pi
    n_c, n_k = counts.shape[1], counts.shape[2]
    mg_lo = mg_grid[0] - 0.5 * mg_step
    n_m = mg_grid.shape[0]
    mg_asc = mg_of_m[:, ::-1].copy()
    logm_for_mg = log_m[::-1].copy()
    for i in numba.prange(pixels.shape[0]):
        pixel = pixels[i]
        key = stream_key(seed, pixel)
        z0, z1, ra0, ra1 = pixel_bounds(pixel, n_z, n_ra)
        table = np.cumsum(counts[i].ravel())
        total = table[-1]
        counter = _SOURCE_COUNTER
        out = slots[i]
        for _ in range(n_primary[i]):
            pick = np.searchsorted(table, uniform(key, counter) * total, side="right")
            c = min(pick // n_k, n_c - 1)
            k = pick % n_k
            e0, e1 = edges[k], edges[k + 1]
            d = (e0 ** 3 + uniform(key, counter + 1) * (e1 ** 3 - e0 ** 3)) ** (1.0 / 3.0)
            a0_mean = a0_edges[i, k] + (a0_edges[i, k + 1] - a0_edges[i, k]) * (d - e0) / (e1 - e0)
            mu = 5.0 * math.log10(d / 10.0)
            counter += 2
            g = bp_rp = mg = a0 = x0 = 0.0
            for _try in range(_MAX_TRIES):
                nrm, counter = normal(key, counter)
                a0 = max(0.0, a0_mean * (1.0 + a0_scatter * nrm))
                f = min((g_gen - mu - k_g_min * a0 - mg_lo) / mg_step, float(n_m))
                u = uniform(key, counter)
                counter += 1
                if f <= 0.0:
                    continue
                j = int(f)
                c_max = cum[c, j] + (cum[c, min(j + 1, n_m)] - cum[c, j]) * (f - j) if j < n_m else cum[c, n_m]
                if c_max <= 0.0:
                    continue
                target = u * c_max
                m = min(max(np.searchsorted(cum[c], target, side="right") - 1, 0), n_m - 1)
                width = cum[c, m + 1] - cum[c, m]
                mg = mg_lo + mg_step * (m + ((target - cum[c, m]) / width if width > 0.0 else 0.5))
                nrm, counter = normal(key, counter)
                x0 = ridge[c, m] + sigma[c] * nrm
                g = mg + mu + k_law(k_g, x0, a0, x_range[0], x_range[1], a_max) * a0
                bp_rp = x0 + (k_law(k_bp, x0, a0, x_range[0], x_range[1], a_max)
                              - k_law(k_rp, x0, a0, x_range[0], x_range[1], a_max)) * a0
                accept = uniform(key, counter) < detected_fraction(g, cg, g_gen)
                counter += 1
                if accept:
                    break
            z = z0 + (z1 - z0) * uniform(key, counter)
            ra = ra0 + (ra1 - ra0) * uniform(key, counter + 1)
            counter += 2
            # companion (docs/sky.md section 6)
            mass = 10.0 ** np.interp(mg, mg_asc[c // 2], logm_for_mg) if kinds[c] == 0 else bp[6]
            second = False
            g2 = bp_rp2 = mg2 = x2 = 0.0
            theta = math.nan
            code = 0
            if uniform(key, counter) < np.interp(mass, mf_mass, mf_frac):
                q = bp[0] + (1.0 - bp[0]) * uniform(key, counter + 1)
                nrm, counter = normal(key, counter + 2)
                p_yr = 10.0 ** (bp[1] + bp[2] * nrm) / 365.25
                m2 = q * mass
                a_au = ((mass + m2) * p_yr * p_yr) ** (1.0 / 3.0)
                theta = a_au * (0.5 + 0.5 * uniform(key, counter)) / d  # arcsec (1 au at 1 pc)
                nrm, counter = normal(key, counter + 1)
                code = 1
                if m2 >= bp[5] and theta <= bp[4]:
                    mg2 = np.interp(math.log10(m2), log_m, mg_of_m[c // 2])
                    ms = c - kinds[c]
                    x2 = np.interp(mg2, mg_grid, ridge[ms]) + sigma[ms] * nrm
                    g2 = mg2 + mu + k_law(k_g, x2, a0, x_range[0], x_range[1], a_max) * a0
                    bp_rp2 = x2 + (k_law(k_bp, x2, a0, x_range[0], x_range[1], a_max)
                                   - k_law(k_rp, x2, a0, x_range[0], x_range[1], a_max)) * a0
                    if theta < bp[3]:
                        f1, f2 = 10.0 ** (-0.4 * g), 10.0 ** (-0.4 * g2)
                        g = -2.5 * math.log10(f1 + f2)
                        bp_rp = (f1 * bp_rp + f2 * bp_rp2) / (f1 + f2)
                        x0 = (f1 * x0 + f2 * x2) / (f1 + f2)
                        mg = -2.5 * math.log10(10.0 ** (-0.4 * mg) + 10.0 ** (-0.4 * mg2))
                        code = 2
                    else:
                        second = uniform(key, counter) < detected_fraction(g2, cg, g_gen)
                        code = 4 if second else 3
            else:
                counter += 1
            counter += 1
            z_out[out], ra_out[out], g_out[out], bp_rp_out[out] = z, ra, g, bp_rp
            pop_out[out], giant_out[out], comp_out[out], dist_out[out] = pop_of[c // 2], kinds[c], code, d
            a0_out[out], mg_out[out], x0_out[out], sep_out[out] = a0, mg, x0, theta
            out += 1
            if second:
                pa = two_pi * uniform(key, counter)
                dec = math.asin(z)
                rad = theta * math.pi / 648_000.0
                dz = math.cos(dec) * rad * math.cos(pa)
                dra = rad * math.sin(pa) / max(math.cos(dec), 1e-9)
                z2, ra2 = z + dz, ra + dra
                if not _inside(z2, ra2, z0, z1, ra0, ra1):
                    z2, ra2 = z - dz, ra - dra
                if not _inside(z2, ra2, z0, z1, ra0, ra1):  # a pixel narrower than the pair: keep it inside
                    z2 = min(max(z2, z0), z1 - 1e-15)
                    ra2 = min(max(ra2, ra0), ra1 - 1e-15)
                z_out[out], ra_out[out], g_out[out], bp_rp_out[out] = z2, ra2, g2, bp_rp2
                pop_out[out], giant_out[out], comp_out[out], dist_out[out] = pop_of[c // 2], 0, 5, d
                a0_out[out], mg_out[out], x0_out[out], sep_out[out] = a0, mg2, x2, theta
                out += 1
            counter += 1
        used[i] = out - slots[i]
