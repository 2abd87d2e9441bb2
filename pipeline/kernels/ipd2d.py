"""Private numba kernels for the 2D Image Parameter Determination (IPD) fit of unbinned windows.

Model (docs/facts.md section 4: "2D windows also fit the AC position"; section 5: AL and AC LSFs both about
sigma = 1 pixel): the expected signal of pixel ``(k, ac)`` (AL sample ``k``, AC sample ``ac``) is
``E_kl = beta + alpha * A(k - kappa_al) * C(ac - kappa_ac)`` electrons, with ``A`` and ``C`` the pixel-
integrated Gaussians of ``pipeline.lsf`` of widths ``sigma_al_px`` and ``sigma_ac_px`` (a separable PSF),
``beta >= 0`` the background per pixel and ``alpha`` the flux. Frame: pixel ``(k, ac)`` is centred at
``(al_px, ac_px) = (k, ac)``, so an image centred in an 18 x 12 window sits at (8.5, 5.5).

Same likelihood and algorithm as the 1D fit (``pipeline.kernels.ipd``), with 4 parameters in the order
(kappa_al, kappa_ac, alpha, beta): shifted Poisson ``N + r2 ~ Poisson(E + r2)`` with the saturated-model
constant, Newton steps on the observed Hessian with a Fisher-scoring fallback, both centre steps capped
at 1 px, alpha shrinking at most 10x per step, ``beta >= 0`` by an active set, an Armijo halving line
search, and formal errors from the inverse Fisher information. Masked pixels (``mask != 0``) add nothing
to any sum; cosmic-ray rejection masks the worst pixel if more than ``cosmic_sigma`` above the model (and
its 4 neighbours) and refits, one hit per round (``FLAG_COSMIC``). Kernels never raise.
"""

from __future__ import annotations

import math

import numba
import numpy as np

import pipeline.kernels as kmath
from pipeline.kernels import jit, jit_parallel

# These constants are frozen into this module's compiled code, and numba's on-disk cache only notices
# changes to this file: after changing one in kernels/ipd.py, touch this file (or clear __pycache__).
from pipeline.kernels.ipd import (
    ALPHA_FLOOR_E,
    ALPHA_SHRINK,
    ARMIJO_C,
    COSMIC_CHI2_SIGMA,
    COSMIC_MAX_ROUNDS,
    COSMIC_WORST_SIGMA,
    FLAG_BAD_FLUX,
    FLAG_BAD_INPUT,
    FLAG_COSMIC,
    FLAG_NOT_CONVERGED,
    FLAG_OUTSIDE_WINDOW,
    LAM2_CONVERGED,
    LOGL_SLACK_REL,
    MASK_COSMIC,
    MAX_HALVINGS,
    MAX_KAPPA_STEP_PX,
    MU_FLOOR_E,
    PIVOT_REL,
)
from pipeline.lsf import lsf_edge

N_PAR = 4  # kappa_al [px], kappa_ac [px], alpha [e-], beta [e- per pixel]
MIN_PIXELS = N_PAR + 1  # at least 1 degree of freedom for the reduced chi2
#: Windows per parallel block (scratch arrays are allocated once per block).
BLOCK = 64


@jit
def _profile(kappa, sigma_px, p, dp, d2p):
    """Pixel-integrated LSF ``p[k] = L(k - kappa)`` and its first and second kappa derivatives."""
    e0, q0, s0 = lsf_edge(-0.5 - kappa, sigma_px)
    for k in range(p.shape[0]):
        e1, q1, s1 = lsf_edge(k + 0.5 - kappa, sigma_px)
        p[k] = e1 - e0
        dp[k] = q0 - q1
        d2p[k] = s0 - s1
        e0, q0, s0 = e1, q1, s1


@jit
def _evaluate(samples_e, mask, r2, sig_al, sig_ac, x, scratch, g, h, f):
    """Log-likelihood and chi2 sum at ``x``; gradient ``g`` (4,), observed negative Hessian ``h`` and
    Fisher matrix ``f`` (4, 4) written in place. ``scratch`` (6, max(n_al, n_ac)) holds the profiles."""
    n_al, n_ac = samples_e.shape
    ka, kc, alpha, beta = x[0], x[1], x[2], x[3]
    pa, dpa, d2pa = scratch[0, :n_al], scratch[1, :n_al], scratch[2, :n_al]
    pc, dpc, d2pc = scratch[3, :n_ac], scratch[4, :n_ac], scratch[5, :n_ac]
    _profile(ka, sig_al, pa, dpa, d2pa)
    _profile(kc, sig_ac, pc, dpc, d2pc)
    logl = 0.0
    chi2_sum = 0.0
    g0 = g1 = g2 = g3 = 0.0
    h00 = h01 = h02 = h03 = h11 = h12 = h13 = h22 = h23 = h33 = 0.0
    f00 = f01 = f02 = f03 = f11 = f12 = f13 = f22 = f23 = f33 = 0.0
    for k in range(n_al):
        a = pa[k]
        da = dpa[k]
        d2a = d2pa[k]
        for ac in range(n_ac):
            if mask[k, ac]:
                continue
            c_ = pc[ac]
            dc = dpc[ac]
            lk = a * c_
            model = beta + alpha * lk
            mu = model + r2
            if mu < MU_FLOOR_E:
                mu = MU_FLOOR_E
            w = samples_e[k, ac] + r2
            if w > 0.0:
                delta = (mu - w) / w
                logl += w * (kmath.log1p(delta) - delta)
            else:
                logl += w * kmath.log(mu) - mu
            inv_mu = 1.0 / mu
            ratio = w * inv_mu
            res = ratio - 1.0
            cc = ratio * inv_mu
            j0 = alpha * da * c_  # dE/dkappa_al
            j1 = alpha * a * dc  # dE/dkappa_ac
            j2 = lk  # dE/dalpha; dE/dbeta = 1
            g0 += res * j0
            g1 += res * j1
            g2 += res * j2
            g3 += res
            # Observed: c J J^T - res d2E (d2E: alpha d2A C, alpha A d2C, alpha dA dC, dA C, A dC).
            h00 += cc * j0 * j0 - res * alpha * d2a * c_
            h01 += cc * j0 * j1 - res * alpha * da * dc
            h02 += cc * j0 * j2 - res * da * c_
            h03 += cc * j0
            h11 += cc * j1 * j1 - res * alpha * a * d2pc[ac]
            h12 += cc * j1 * j2 - res * a * dc
            h13 += cc * j1
            h22 += cc * j2 * j2
            h23 += cc * j2
            h33 += cc
            f00 += inv_mu * j0 * j0
            f01 += inv_mu * j0 * j1
            f02 += inv_mu * j0 * j2
            f03 += inv_mu * j0
            f11 += inv_mu * j1 * j1
            f12 += inv_mu * j1 * j2
            f13 += inv_mu * j1
            f22 += inv_mu * j2 * j2
            f23 += inv_mu * j2
            f33 += inv_mu
            r = samples_e[k, ac] - model
            chi2_sum += r * r * inv_mu
    g[0], g[1], g[2], g[3] = g0, g1, g2, g3
    _fill_sym(h, h00, h01, h02, h03, h11, h12, h13, h22, h23, h33)
    _fill_sym(f, f00, f01, f02, f03, f11, f12, f13, f22, f23, f33)
    return logl, chi2_sum


@jit
def _fill_sym(a, a00, a01, a02, a03, a11, a12, a13, a22, a23, a33):
    a[0, 0], a[0, 1], a[0, 2], a[0, 3] = a00, a01, a02, a03
    a[1, 0], a[1, 1], a[1, 2], a[1, 3] = a01, a11, a12, a13
    a[2, 0], a[2, 1], a[2, 2], a[2, 3] = a02, a12, a22, a23
    a[3, 0], a[3, 1], a[3, 2], a[3, 3] = a03, a13, a23, a33


@jit
def _solve(a, b, fix_beta, x, low):
    """Solve the symmetric positive-definite ``a x = b`` by Cholesky (``low`` is scratch (4, 4)).

    With ``fix_beta`` the last unknown (beta) is held at 0. Returns False when ``a`` is not (numerically)
    positive definite.
    """
    p = N_PAR - 1 if fix_beta else N_PAR
    x[N_PAR - 1] = 0.0
    for r in range(p):
        for c in range(r + 1):
            acc = a[r, c]
            for q in range(c):
                acc -= low[r, q] * low[c, q]
            if r == c:
                if not (a[r, r] > 0.0) or not (acc > PIVOT_REL * a[r, r]):
                    return False
                low[r, r] = kmath.sqrt(acc)
            else:
                low[r, c] = acc / low[c, c]
    for r in range(p):  # forward: L y = b
        acc = b[r]
        for q in range(r):
            acc -= low[r, q] * x[q]
        x[r] = acc / low[r, r]
    for r in range(p - 1, -1, -1):  # back: L^T x = y
        acc = x[r]
        for q in range(r + 1, p):
            acc -= low[q, r] * x[q]
        x[r] = acc / low[r, r]
    return True


@jit
def _direction(g, h, f, fix_beta, d, low):
    """Newton direction from the observed Hessian, or the Fisher-scoring one if that is not an ascent."""
    ok = _solve(h, g, fix_beta, d, low)
    if not ok or not (g[0] * d[0] + g[1] * d[1] + g[2] * d[2] + g[3] * d[3] > 0.0):
        ok = _solve(f, g, fix_beta, d, low)
    return ok


@jit
def _value(samples_e, mask, k, ac, beta):
    """Pixel (k, ac), or where masked the mean of its unmasked 4-neighbours (``beta`` if none)."""
    if not mask[k, ac]:
        return samples_e[k, ac]
    n_al, n_ac = samples_e.shape
    acc = 0.0
    cnt = 0
    for kk, ll in ((k - 1, ac), (k + 1, ac), (k, ac - 1), (k, ac + 1)):
        if 0 <= kk < n_al and 0 <= ll < n_ac and not mask[kk, ll]:
            acc += samples_e[kk, ll]
            cnt += 1
    return acc / cnt if cnt else beta


@jit
def _centre_1d(prof, n):
    """Centre of a 1D profile: brightest 3 samples plus a log-parabola offset within 1 px."""
    best = -np.inf
    k_best = 1
    for k in range(1, n - 1):
        s = prof[k - 1] + prof[k] + prof[k + 1]
        if s > best:
            best = s
            k_best = k
    kappa = float(k_best)
    x_lo, x_mid, x_hi = prof[k_best - 1], prof[k_best], prof[k_best + 1]
    if x_lo > 0.0 and x_mid > 0.0 and x_hi > 0.0:
        l_lo = kmath.log(x_lo)
        l_hi = kmath.log(x_hi)
        curv = l_lo - 2.0 * kmath.log(x_mid) + l_hi
        if curv < 0.0:
            kappa += min(max(0.5 * (l_lo - l_hi) / curv, -1.0), 1.0)
    return kappa


@jit
def _start(samples_e, mask, x, scratch):
    """Moment start: background = lowest mean of the 4 window edges, centres from the AL and AC
    marginal profiles (:func:`_centre_1d`), flux by sum."""
    n_al, n_ac = samples_e.shape
    edge = np.inf
    for side in range(4):
        acc = 0.0
        cnt = 0
        length = n_ac if side < 2 else n_al
        for t in range(length):
            if side == 0:
                k, ac = 0, t
            elif side == 1:
                k, ac = n_al - 1, t
            elif side == 2:
                k, ac = t, 0
            else:
                k, ac = t, n_ac - 1
            if not mask[k, ac]:
                acc += samples_e[k, ac]
                cnt += 1
        if cnt and acc / cnt < edge:
            edge = acc / cnt
    beta = edge if edge > 0.0 and math.isfinite(edge) else 0.0
    prof_al = scratch[0, :n_al]
    prof_ac = scratch[1, :n_ac]
    prof_al[:] = 0.0
    prof_ac[:] = 0.0
    alpha = 0.0
    for k in range(n_al):
        for ac in range(n_ac):
            # The masked-pixel call only where masked: numba calls with array arguments are not inlined
            # and cost ~40-70 ns each, more than the rest of this loop body.
            v = (_value(samples_e, mask, k, ac, beta) if mask[k, ac] else samples_e[k, ac]) - beta
            prof_al[k] += v
            prof_ac[ac] += v
            alpha += v
    x[0] = _centre_1d(prof_al, n_al)
    x[1] = _centre_1d(prof_ac, n_ac)
    x[2] = max(alpha, 1.0)
    x[3] = beta


@jit
def _newton(samples_e, mask, r2, sig_al, sig_ac, max_iter, x, ws):
    """Maximise the likelihood from the moment start; ``x`` (4,) receives the solution and ``ws`` is the
    workspace (see :func:`_workspace`). Returns ``(chi2_sum, n_iter, converged, bad_flux)``; the Fisher
    matrix at the solution is left in ``ws.f``."""
    scratch, g, h, f, d, low, xt, gt, ht, ft = ws
    _start(samples_e, mask, x, scratch)
    logl, chi2_sum = _evaluate(samples_e, mask, r2, sig_al, sig_ac, x, scratch, g, h, f)
    converged = False
    bad_flux = False
    it = 0
    while it < max_iter:
        it += 1
        fix_beta = x[3] <= 0.0 and g[3] <= 0.0
        ok = _direction(g, h, f, fix_beta, d, low)
        if ok and not fix_beta and x[3] <= 0.0 and d[3] < 0.0:
            ok = _direction(g, h, f, True, d, low)
        if not ok:
            break
        lam2 = g[0] * d[0] + g[1] * d[1] + g[2] * d[2] + g[3] * d[3]
        if lam2 < LAM2_CONVERGED:
            converged = True
            x[0] += d[0]
            x[1] += d[1]
            x[2] = max(x[2] + d[2], ALPHA_FLOOR_E)
            x[3] = max(x[3] + d[3], 0.0)
            break
        t = 1.0
        for q in range(2):
            if abs(d[q]) * t > MAX_KAPPA_STEP_PX:
                t = MAX_KAPPA_STEP_PX / abs(d[q])
        alpha = x[2]
        if d[2] < 0.0:
            alpha_min = max(ALPHA_SHRINK * alpha, ALPHA_FLOOR_E)
            room = alpha - alpha_min
            if room <= 0.0:
                bad_flux = True
                break
            if alpha + t * d[2] < alpha_min:
                t = room / -d[2]
        hit_beta = False
        if d[3] < 0.0 and x[3] + t * d[3] <= 0.0:
            t = x[3] / -d[3]
            hit_beta = True
        slack = LOGL_SLACK_REL * (1.0 + abs(logl))
        accepted = False
        for _ in range(MAX_HALVINGS):
            xt[0] = x[0] + t * d[0]
            xt[1] = x[1] + t * d[1]
            xt[2] = x[2] + t * d[2]
            xt[3] = 0.0 if hit_beta else max(x[3] + t * d[3], 0.0)
            logl_t, chi2_t = _evaluate(samples_e, mask, r2, sig_al, sig_ac, xt, scratch, gt, ht, ft)
            if logl_t >= logl + ARMIJO_C * t * lam2 - slack:
                accepted = True
                break
            t *= 0.5
            hit_beta = False
        if not accepted:
            break
        x[:] = xt
        g[:] = gt
        h[:, :] = ht
        f[:, :] = ft
        logl = logl_t
        chi2_sum = chi2_t
    return chi2_sum, it, converged, bad_flux


@jit
def _mask_cosmics(samples_e, mask, r2, sig_al, sig_ac, x, cosmic_sigma, chi2_high, scratch):
    """Mask the worst pixel and its 4 neighbours if it lies more than ``cosmic_sigma`` above the model
    (``COSMIC_WORST_SIGMA`` when ``chi2_high``), one hit per round as the 1D kernel. Returns the number
    newly masked. ``scratch`` (6, max(n_al, n_ac)) receives the model's AL and AC profiles."""
    n_al, n_ac = samples_e.shape
    pa, dpa, d2pa = scratch[0, :n_al], scratch[1, :n_al], scratch[2, :n_al]
    pc, dpc, d2pc = scratch[3, :n_ac], scratch[4, :n_ac], scratch[5, :n_ac]
    _profile(x[0], sig_al, pa, dpa, d2pa)
    _profile(x[1], sig_ac, pc, dpc, d2pc)
    worst = -np.inf
    kw = lw = -1
    for k in range(n_al):
        for ac in range(n_ac):
            if mask[k, ac] == 0:
                # Residual in units of its expected standard deviation, (N - E) / sqrt(E + r2).
                model = x[3] + x[2] * pa[k] * pc[ac]
                z = (samples_e[k, ac] - model) / kmath.sqrt(max(model + r2, MU_FLOOR_E))
                if z > worst:
                    worst = z
                    kw, lw = k, ac
    if not (worst > cosmic_sigma or (chi2_high and worst > COSMIC_WORST_SIGMA)):
        return 0
    new = 0
    for kk, ll in ((kw, lw), (kw - 1, lw), (kw + 1, lw), (kw, lw - 1), (kw, lw + 1)):
        if 0 <= kk < n_al and 0 <= ll < n_ac and mask[kk, ll] == 0:
            mask[kk, ll] = MASK_COSMIC
            new += 1
    return new


@jit
def _workspace(n_max):
    """Scratch arrays of one thread: profiles, gradient, Hessian, Fisher, step, Cholesky, trial point."""
    return (np.empty((6, n_max)), np.empty(N_PAR), np.empty((N_PAR, N_PAR)), np.empty((N_PAR, N_PAR)),
            np.empty(N_PAR), np.zeros((N_PAR, N_PAR)), np.empty(N_PAR), np.empty(N_PAR),
            np.empty((N_PAR, N_PAR)), np.empty((N_PAR, N_PAR)))


@jit
def _fit_window(samples_e, mask, r2, sig_al, sig_ac, max_iter, cosmic_sigma, ws, x, out, i):
    """Fit one window and write row ``i`` of ``out`` (11, m): al_px, al_px_err, ac_px, ac_px_err, flux_e,
    flux_e_err, bg_e, bg_e_err, chi2, n_iter, flags."""
    for q in range(out.shape[0]):
        out[q, i] = np.nan
    out[9, i] = 0.0
    n_al, n_ac = samples_e.shape
    n_used = 0
    bad = not (r2 >= 0.0) or not math.isfinite(r2)
    for k in range(n_al):
        for ac in range(n_ac):
            if not mask[k, ac]:
                n_used += 1
                if not math.isfinite(samples_e[k, ac]):
                    bad = True
    if bad or n_used < MIN_PIXELS or n_al < 3 or n_ac < 3:
        out[10, i] = FLAG_BAD_INPUT | FLAG_NOT_CONVERGED
        return
    status = 0
    chi2_sum, it, converged, bad_flux = _newton(samples_e, mask, r2, sig_al, sig_ac, max_iter, x, ws)
    if cosmic_sigma > 0.0:
        for _ in range(COSMIC_MAX_ROUNDS):
            dof = n_used - N_PAR
            # chi2 trigger in the first round only: later it would pick star samples' upward noise.
            chi2_high = status == 0 and chi2_sum > dof + COSMIC_CHI2_SIGMA * kmath.sqrt(2.0 * dof)
            new = _mask_cosmics(samples_e, mask, r2, sig_al, sig_ac, x, cosmic_sigma, chi2_high, ws[0])
            if new == 0 or n_used - new < MIN_PIXELS:
                break
            n_used -= new
            status |= FLAG_COSMIC
            chi2_sum, it, converged, bad_flux = _newton(samples_e, mask, r2, sig_al, sig_ac, max_iter, x, ws)
    f, low, e = ws[3], ws[5], ws[4]
    out[0, i] = x[0]
    out[2, i] = x[1]
    out[4, i] = x[2]
    out[6, i] = x[3]
    # Formal errors: diagonal of the inverse Fisher matrix, column by column.
    g = ws[6]
    errors_ok = True
    for q in range(N_PAR):
        g[:] = 0.0
        g[q] = 1.0
        if not _solve(f, g, False, e, low):
            errors_ok = False
            break
        if e[q] >= 0.0:
            out[1 + 2 * q, i] = kmath.sqrt(e[q])
        else:
            errors_ok = False
    out[8, i] = chi2_sum / (n_used - N_PAR)
    out[9, i] = it
    # No formal errors (singular Fisher information): the data do not pin the solution down (as in 1D).
    if not converged or not errors_ok:
        status |= FLAG_NOT_CONVERGED
    if bad_flux or not (x[2] > ALPHA_FLOOR_E * (1.0 + 1e-9)):
        status |= FLAG_BAD_FLUX
    if not (-0.5 <= x[0] <= n_al - 0.5 and -0.5 <= x[1] <= n_ac - 0.5):
        status |= FLAG_OUTSIDE_WINDOW
    out[10, i] = status


@jit_parallel
def _fit_windows_2d(samples_e, var_extra_e2, sig_al, sig_ac, max_iter, mask, cosmic_sigma):
    """Fit every window ``samples_e[i]`` (float64 (m, n_al, n_ac), e-) in parallel blocks.

    ``var_extra_e2`` float64 (m,), ``mask`` uint8 (m, n_al, n_ac) (non-zero = ignore; cosmic-ray
    detections are written into it). Returns float64 (11, m), rows as in :func:`_fit_window`.
    """
    m, n_al, n_ac = samples_e.shape
    out = np.empty((11, m))
    n_blocks = (m + BLOCK - 1) // BLOCK
    for b in numba.prange(n_blocks):
        ws = _workspace(max(n_al, n_ac))
        x = np.empty(N_PAR)
        for i in range(b * BLOCK, min((b + 1) * BLOCK, m)):
            _fit_window(samples_e[i], mask[i], var_extra_e2[i], sig_al, sig_ac, max_iter, cosmic_sigma, ws, x, out, i)
    return out
