"""Private numba kernels for the 1D Image Parameter Determination (IPD) fit.

Model (docs/facts.md section 4, GDR2 doc 2.4.8): the expected signal of sample ``k`` of a window is
``E_k = beta + alpha * L(k - kappa)`` electrons, with ``beta`` the background per sample, ``alpha`` the
flux and ``kappa`` the AL image centre (window frame of ``pipeline.lsf``: sample ``k`` is centred at
``al_px = k``). The fit maximises the Poisson likelihood. Read noise (plus ADU quantisation) is folded
in with the usual shift: ``N_k + r2 ~ Poisson(E_k + r2)``, ``r2 = var_extra_e2``, so with ``w = N + r2``
and ``mu = E + r2`` the log-likelihood is ``sum(w log mu - mu)`` up to a data-only constant. We add the
constant ``-(w log w - w)`` for ``w > 0`` (the saturated model) so values near the optimum are O(n)
and step acceptance is not lost in rounding for bright stars.

Iterations are Newton steps on (kappa, alpha, beta) using the observed Hessian, falling back to Fisher
scoring where the Hessian is not negative definite; steps are capped (|dkappa| <= 1 px, alpha shrinks at
most 10x per step), ``beta >= 0`` is kept by an active set, and a halving line search (Armijo) makes
every accepted step increase the likelihood. Convergence: Newton decrement ``g . d < 1e-3`` (a step
below ~3 % of the formal errors); that last step is applied without re-evaluation, and Newton's
quadratic convergence leaves the result within ~1e-4 of the formal errors of the exact optimum. Formal errors come
from the inverse Fisher information at the solution. Kernels never raise: bad data give flag bits.

Masked samples (``mask != 0``) are left out of every sum (likelihood, gradient, Hessian, Fisher, chi2)
and of the start (read as the interpolation of their neighbours). Cosmic-ray rejection: after a fit,
the worst sample, if more than ``COSMIC_SIGMA`` above the model, is masked with its 2 neighbours (whatever
their value) and the window refitted from a fresh start, one hit per round, setting ``FLAG_COSMIC``.
``pipeline.ipd.fit_images_numpy`` mirrors this algorithm step by step; keep the two in sync.
"""

from __future__ import annotations

import math

import numba
import numpy as np

import pipeline.kernels as kmath
from pipeline.kernels import jit_fit, jit_fit_inline, jit_fit_parallel
from pipeline.lsf import lsf_edge, lsf_walk, lsf_walk_edge

# Status bits (re-exported by pipeline.ipd).
FLAG_NOT_CONVERGED = 1
FLAG_OUTSIDE_WINDOW = 2
FLAG_BAD_FLUX = 4
FLAG_SATURATED = 8
FLAG_COSMIC = 16
FLAG_BAD_INPUT = 32

# Algorithm constants, shared with the numpy mirror in pipeline.ipd.
MIN_SAMPLES = 4  # 3 parameters + at least 1 degree of freedom for the reduced chi2
ALPHA_FLOOR_E = 1e-3  # lower bound on the flux; a fit pinned here has no star (FLAG_BAD_FLUX)
ALPHA_SHRINK = 0.1  # one step may shrink the flux by at most this factor
MAX_KAPPA_STEP_PX = 1.0  # one step may move the centre by at most this much
MU_FLOOR_E = 1e-12  # floor on E + r2 (only reachable with r2 = 0 and beta = 0)
# Newton decrement g.d (~ sum of (step/error)^2) below which the fit has converged (the step is then taken
# without re-evaluating). Measured on 60,000 scale-1e-2 WC1/WC2 windows against 1e-12: centres and fluxes
# within 3e-5 of their formal errors, formal errors within 0.2 %, flags equal in all but 1 window;
# 4.10 -> 2.77 iterations a fit (3.33 at 1e-6). WC0 2D fits are unchanged (bright: they jump below 1e-12).
LAM2_CONVERGED = 1e-3
ARMIJO_C = 1e-4  # sufficient-increase constant of the line search
LOGL_SLACK_REL = 1e-11  # rounding allowance in the likelihood comparison, relative to 1 + |logL|
MAX_HALVINGS = 40
PIVOT_REL = 1e-12  # Cholesky pivots below this fraction of the diagonal count as not positive

# Cosmic-ray rejection (docs/facts.md section 4: IPD masks cosmic rays) [U thresholds]. With Gaussian-like
# noise a clean sample exceeds 6 sigma with p ~ 1e-9, so a clean window is almost never flagged.
COSMIC_SIGMA = 6.0  # a sample this many sigma above the fitted model is a cosmic-ray hit
# A hit may share its charge with a neighbour; the neighbours of a detected sample are masked whatever
# their value (choosing them by their residual would select upward fluctuations and bias the refit).
COSMIC_WORST_SIGMA = 3.0  # chi2-triggered masking only for a worst sample above this
COSMIC_MAX_ROUNDS = 3  # detect-mask-refit rounds (one hit each) at most
# A hit shared by 2 samples can look like a (narrow) star and pull the fit onto it, leaving no sample
# above COSMIC_SIGMA but a chi2 far too large: when chi2 > dof + COSMIC_CHI2_SIGMA sqrt(2 dof), the worst
# sample is masked if it is above COSMIC_WORST_SIGMA (chi2_9 > 43: p ~ 1e-6 for a clean window).
COSMIC_CHI2_SIGMA = 8.0
# Margin in z of the chi2 bound that lets a window skip the cosmic-ray scan (see _fit_window): ~15x the
# most the final, unevaluated Newton step can move a sample's z.
COSMIC_SCAN_MARGIN = 0.5
# Mask values: a sample the caller masked, a sample masked as a cosmic-ray hit.
MASK_GIVEN = 1
MASK_COSMIC = 2


@jit_fit_inline
def _evaluate(samples_e, mask, n, r2, sigma_px, kappa, alpha, beta):
    """Log-likelihood, gradient, observed negative Hessian, Fisher matrix and chi2 sum at one point.

    Samples with ``mask[k] != 0`` are skipped: they add nothing to any sum.

    Returns ``(logl, g0, g1, g2, h00, h01, h02, h11, h12, h22, f00, f01, f02, f11, f12, f22, chi2_sum)``
    in parameter order (kappa [px], alpha [e-], beta [e-]).
    """
    logl = 0.0
    g0 = g1 = g2 = 0.0
    h00 = h01 = h02 = h11 = h12 = h22 = 0.0
    f00 = f01 = f02 = f11 = f12 = f22 = 0.0
    chi2_sum = 0.0
    # The n + 1 pixel edges by a table walk (pipeline.lsf.lsf_walk: a fit ~1.3x faster at sigma = 1), or
    # one lookup per edge where the walk does not apply.
    (walk, clamp, first, i, stride,
     w00, w10, w01, w11, v0, v1, v2, inv_sigma) = lsf_walk(-0.5 - kappa, sigma_px, n + 1)  # fmt: skip
    if walk:
        e0, q0, s0 = lsf_walk_edge(i, clamp, first, w00, w10, w01, w11, v0, v1, v2, inv_sigma)
    else:
        e0, q0, s0 = lsf_edge(-0.5 - kappa, sigma_px)
    for k in range(n):
        if walk:
            i += stride
            e1, q1, s1 = lsf_walk_edge(i, clamp, first, w00, w10, w01, w11, v0, v1, v2, inv_sigma)
        else:
            e1, q1, s1 = lsf_edge(k + 0.5 - kappa, sigma_px)
        lk = e1 - e0  # L(k - kappa)
        dk = q0 - q1  # dL/dkappa
        d2k = s0 - s1  # d2L/dkappa2
        e0 = e1
        q0 = q1
        s0 = s1
        if mask[k]:
            continue
        model = beta + alpha * lk
        mu = model + r2
        if mu < MU_FLOOR_E:
            mu = MU_FLOOR_E
        w = samples_e[k] + r2
        if w > 0.0:
            delta = (mu - w) / w
            logl += w * (kmath.log1p(delta) - delta)
        else:
            logl += w * kmath.log(mu) - mu
        inv_mu = 1.0 / mu
        ratio = w * inv_mu
        res = ratio - 1.0
        j0 = alpha * dk  # dE/dkappa; dE/dalpha = lk; dE/dbeta = 1
        g0 += res * j0
        g1 += res * lk
        g2 += res
        c = ratio * inv_mu
        h00 += c * j0 * j0 - res * alpha * d2k
        h01 += c * j0 * lk - res * dk
        h02 += c * j0
        h11 += c * lk * lk
        h12 += c * lk
        h22 += c
        f00 += inv_mu * j0 * j0
        f01 += inv_mu * j0 * lk
        f02 += inv_mu * j0
        f11 += inv_mu * lk * lk
        f12 += inv_mu * lk
        f22 += inv_mu
        r = samples_e[k] - model
        chi2_sum += r * r * inv_mu
    return logl, g0, g1, g2, h00, h01, h02, h11, h12, h22, f00, f01, f02, f11, f12, f22, chi2_sum


@jit_fit
def _solve3(a00, a01, a02, a11, a12, a22, b0, b1, b2, fix_beta):
    """Solve the symmetric positive-definite 3x3 system ``A x = b`` by Cholesky.

    With ``fix_beta`` the third unknown is held at 0 (2x2 system in kappa, alpha). Returns
    ``(ok, x0, x1, x2)``; ``ok`` is False when ``A`` is not (numerically) positive definite.
    """
    if fix_beta:
        a02 = 0.0
        a12 = 0.0
        a22 = 1.0
        b2 = 0.0
    if not (a00 > 0.0) or not (a11 > 0.0) or not (a22 > 0.0):
        return False, 0.0, 0.0, 0.0
    l00 = kmath.sqrt(a00)
    l10 = a01 / l00
    l20 = a02 / l00
    p11 = a11 - l10 * l10
    if not (p11 > PIVOT_REL * a11):
        return False, 0.0, 0.0, 0.0
    l11 = kmath.sqrt(p11)
    l21 = (a12 - l20 * l10) / l11
    p22 = a22 - l20 * l20 - l21 * l21
    if not (p22 > PIVOT_REL * a22):
        return False, 0.0, 0.0, 0.0
    l22 = kmath.sqrt(p22)
    y0 = b0 / l00
    y1 = (b1 - l10 * y0) / l11
    y2 = (b2 - l20 * y0 - l21 * y1) / l22
    x2 = y2 / l22
    x1 = (y1 - l21 * x2) / l11
    x0 = (y0 - l10 * x1 - l20 * x2) / l00
    return True, x0, x1, x2


@jit_fit
def _direction(g0, g1, g2, h00, h01, h02, h11, h12, h22, f00, f01, f02, f11, f12, f22, fix_beta):
    """Newton direction from the observed Hessian, or the Fisher-scoring one if that is not an ascent."""
    ok, d0, d1, d2 = _solve3(h00, h01, h02, h11, h12, h22, g0, g1, g2, fix_beta)
    if not ok or not (g0 * d0 + g1 * d1 + g2 * d2 > 0.0):
        ok, d0, d1, d2 = _solve3(f00, f01, f02, f11, f12, f22, g0, g1, g2, fix_beta)
    return ok, d0, d1, d2


@jit_fit
def _value(samples_e, mask, n, k):
    """Masked sample ``k`` read as the linear interpolation of its nearest unmasked neighbours (the nearer
    one alone at the window ends, 0 if none): what the start estimate reads in its place."""
    lo = k - 1
    while lo >= 0 and mask[lo]:
        lo -= 1
    hi = k + 1
    while hi < n and mask[hi]:
        hi += 1
    if lo >= 0 and hi < n:
        return samples_e[lo] + (samples_e[hi] - samples_e[lo]) * (k - lo) / (hi - lo)
    if lo >= 0:
        return samples_e[lo]
    if hi < n:
        return samples_e[hi]
    return 0.0


@jit_fit
def _start(samples_e, mask, n):
    """Moment start: background from the window edges, centre from the brightest 3 samples, flux by sum.

    Masked samples are read through :func:`_value` (interpolated from their neighbours), and only they:
    a call with array arguments is not inlined and costs numba ~40 ns, more than the whole start, so
    unmasked samples are read in place (no scratch array either: the CUDA build allocates nothing).
    """
    v0 = samples_e[0] if not mask[0] else _value(samples_e, mask, n, 0)
    v1 = samples_e[1] if not mask[1] else _value(samples_e, mask, n, 1)
    v2 = samples_e[n - 2] if not mask[n - 2] else _value(samples_e, mask, n, n - 2)
    v3 = samples_e[n - 1] if not mask[n - 1] else _value(samples_e, mask, n, n - 1)
    beta = min(0.5 * (v0 + v1), 0.5 * (v2 + v3))
    if beta < 0.0:
        beta = 0.0
    best = -np.inf
    k_best = 1
    x_lo = x_mid = x_hi = 0.0  # the brightest 3 samples, background subtracted
    alpha = v0 - beta
    prev = v0
    cur = v1
    for k in range(1, n - 1):
        nxt = samples_e[k + 1] if not mask[k + 1] else _value(samples_e, mask, n, k + 1)
        s = prev + cur + nxt
        if s > best:
            best = s
            k_best = k
            x_lo, x_mid, x_hi = prev - beta, cur - beta, nxt - beta
        alpha += cur - beta
        prev = cur
        cur = nxt
    alpha += cur - beta
    # Log-parabola through the 3 brightest samples (exact for a sampled Gaussian), offset within 1 px.
    kappa = float(k_best)
    if x_lo > 0.0 and x_mid > 0.0 and x_hi > 0.0:
        l_lo = kmath.log(x_lo)
        l_hi = kmath.log(x_hi)
        curv = l_lo - 2.0 * kmath.log(x_mid) + l_hi
        if curv < 0.0:
            kappa += min(max(0.5 * (l_lo - l_hi) / curv, -1.0), 1.0)
    if alpha < 1.0:
        alpha = 1.0
    return kappa, alpha, beta


@jit_fit
def _newton(samples_e, mask, n, r2, sigma_px, max_iter):
    """Maximise the likelihood from the moment start. Returns ``(kappa, alpha, beta, f00, f01, f02, f11,
    f12, f22, chi2_sum, n_iter, converged, bad_flux)``."""
    kappa, alpha, beta = _start(samples_e, mask, n)
    (logl, g0, g1, g2, h00, h01, h02, h11, h12, h22,
     f00, f01, f02, f11, f12, f22, chi2_sum) = _evaluate(
        samples_e, mask, n, r2, sigma_px, kappa, alpha, beta)  # fmt: skip
    converged = False
    bad_flux = False
    it = 0
    while it < max_iter:
        it += 1
        # Active set for beta >= 0: hold beta at 0 while the likelihood pulls it negative.
        fix_beta = beta <= 0.0 and g2 <= 0.0
        ok, d0, d1, d2 = _direction(g0, g1, g2, h00, h01, h02, h11, h12, h22, f00, f01, f02, f11, f12, f22, fix_beta)
        if ok and not fix_beta and beta <= 0.0 and d2 < 0.0:
            ok, d0, d1, d2 = _direction(g0, g1, g2, h00, h01, h02, h11, h12, h22, f00, f01, f02, f11, f12, f22, True)
        if not ok:
            break
        lam2 = g0 * d0 + g1 * d1 + g2 * d2
        if lam2 < LAM2_CONVERGED:
            # Take the last (tiny) Newton step without re-evaluating: errors and chi2 barely change.
            converged = True
            kappa += d0
            alpha = max(alpha + d1, ALPHA_FLOOR_E)
            beta = max(beta + d2, 0.0)
            break
        # Step control.
        t = 1.0
        if abs(d0) > MAX_KAPPA_STEP_PX:
            t = MAX_KAPPA_STEP_PX / abs(d0)
        if d1 < 0.0:
            alpha_min = max(ALPHA_SHRINK * alpha, ALPHA_FLOOR_E)
            room = alpha - alpha_min
            if room <= 0.0:
                bad_flux = True  # pinned at the flux floor and still pulled down: no star
                break
            if alpha + t * d1 < alpha_min:
                t = room / -d1
        hit_beta = False
        if d2 < 0.0 and beta + t * d2 <= 0.0:
            t = beta / -d2
            hit_beta = True
        slack = LOGL_SLACK_REL * (1.0 + abs(logl))
        accepted = False
        for _ in range(MAX_HALVINGS):
            kappa_t = kappa + t * d0
            alpha_t = alpha + t * d1
            beta_t = 0.0 if hit_beta else max(beta + t * d2, 0.0)
            (logl_t, tg0, tg1, tg2, th00, th01, th02, th11, th12, th22,
             tf00, tf01, tf02, tf11, tf12, tf22, tchi2) = _evaluate(
                samples_e, mask, n, r2, sigma_px, kappa_t, alpha_t, beta_t)  # fmt: skip
            if logl_t >= logl + ARMIJO_C * t * lam2 - slack:
                accepted = True
                break
            t *= 0.5
            hit_beta = False
        if not accepted:
            break
        kappa = kappa_t
        alpha = alpha_t
        beta = beta_t
        logl = logl_t
        g0, g1, g2 = tg0, tg1, tg2
        h00, h01, h02, h11, h12, h22 = th00, th01, th02, th11, th12, th22
        f00, f01, f02, f11, f12, f22 = tf00, tf01, tf02, tf11, tf12, tf22
        chi2_sum = tchi2
    return kappa, alpha, beta, f00, f01, f02, f11, f12, f22, chi2_sum, it, converged, bad_flux


@jit_fit
def _mask_cosmics(samples_e, mask, n, r2, sigma_px, kappa, alpha, beta, cosmic_sigma, chi2_high):
    """Mask (``MASK_COSMIC``) the worst sample and its 2 neighbours (a hit may share its charge with one)
    if it lies more than ``cosmic_sigma`` above the model, or more than ``COSMIC_WORST_SIGMA`` when
    ``chi2_high``. One hit per round: a hit distorts the fit, so other samples are judged after the refit
    (masking several at once would also pick star samples the distorted model leaves high). Neighbours
    are masked whatever their value (choosing them by their residual would select upward noise).
    Returns the number of samples newly masked."""
    # The worst sample maximises z = (N - E) / sqrt(E + r2). Only z > 0 can pass the thresholds, and for
    # positive residuals z_k > z_b  <=>  r_k^2 v_b > r_b^2 v_k: no square root or division per sample.
    r_best = 0.0
    v_best = 1.0
    k_worst = -1
    (walk, clamp, first, i, stride,
     w00, w10, w01, w11, v0, v1, v2, inv_sigma) = lsf_walk(-0.5 - kappa, sigma_px, n + 1)  # fmt: skip
    if walk:
        e0 = lsf_walk_edge(i, clamp, first, w00, w10, w01, w11, v0, v1, v2, inv_sigma)[0]
    else:
        e0 = lsf_edge(-0.5 - kappa, sigma_px)[0]
    for k in range(n):
        # Neighbouring samples share an edge, and the edges come as in _evaluate (the same model values).
        if walk:
            i += stride
            e1 = lsf_walk_edge(i, clamp, first, w00, w10, w01, w11, v0, v1, v2, inv_sigma)[0]
        else:
            e1 = lsf_edge(k + 0.5 - kappa, sigma_px)[0]
        lk = e1 - e0
        e0 = e1
        if mask[k] == 0:
            model = beta + alpha * lk
            r = samples_e[k] - model
            v = max(model + r2, MU_FLOOR_E)
            if r > 0.0 and (k_worst < 0 or r * r * v_best > r_best * r_best * v):
                r_best = r
                v_best = v
                k_worst = k
    worst = r_best / kmath.sqrt(v_best) if k_worst >= 0 else -np.inf
    if not (worst > cosmic_sigma or (chi2_high and worst > COSMIC_WORST_SIGMA)):
        return 0
    new = 0
    for kk in range(max(k_worst - 1, 0), min(k_worst + 2, n)):
        if mask[kk] == 0:
            mask[kk] = MASK_COSMIC
            new += 1
    return new


@jit_fit_inline
def _fit_window(
    samples_e, mask, n, var_extra_e2, sigma_px, max_iter, cosmic_sigma, i,
    al_px, al_px_err, flux_e, flux_e_err, bg_e, bg_e_err, chi2, n_iter, flags,
):  # fmt: skip
    """Fit (kappa, alpha, beta) to ``samples_e[:n]`` (electrons) and write slot ``i`` of the outputs.

    ``var_extra_e2`` is the Gaussian variance added to Poisson (read noise plus ADU quantisation, e-^2).
    Samples with ``mask[k] != 0`` are ignored. With ``cosmic_sigma > 0``, samples that a fit leaves more
    than ``cosmic_sigma`` above the model are masked in place (``MASK_COSMIC``) and the window refitted,
    up to ``COSMIC_MAX_ROUNDS`` times; ``FLAG_COSMIC`` then says a sample was masked.
    """
    al_px[i] = np.nan
    al_px_err[i] = np.nan
    flux_e[i] = np.nan
    flux_e_err[i] = np.nan
    bg_e[i] = np.nan
    bg_e_err[i] = np.nan
    chi2[i] = np.nan
    n_iter[i] = 0
    r2 = var_extra_e2
    bad = n > samples_e.shape[0] or not (r2 >= 0.0) or not math.isfinite(r2)
    n_used = 0
    if not bad:
        for k in range(n):
            if not mask[k]:
                n_used += 1
                if not math.isfinite(samples_e[k]):
                    bad = True
    if bad or n_used < MIN_SAMPLES:
        flags[i] = FLAG_BAD_INPUT | FLAG_NOT_CONVERGED
        return

    status = 0
    (kappa, alpha, beta, f00, f01, f02, f11, f12, f22,
     chi2_sum, it, converged, bad_flux) = _newton(samples_e, mask, n, r2, sigma_px, max_iter)  # fmt: skip
    if cosmic_sigma > 0.0:
        for _ in range(COSMIC_MAX_ROUNDS):
            dof = n_used - 3
            # chi2 trigger in the first round only: later it would pick star samples' upward noise.
            chi2_high = status == 0 and chi2_sum > dof + COSMIC_CHI2_SIGMA * kmath.sqrt(2.0 * dof)
            # A sample's z^2 is its term of chi2_sum, so none can pass cosmic_sigma when sqrt(chi2_sum) is
            # below it: most windows skip the scan. chi2_sum is that of the last evaluated point; the final
            # Newton step (decrement < LAM2_CONVERGED) moves any z by at most ~sqrt(LAM2_CONVERGED) = 0.03.
            if not chi2_high and kmath.sqrt(chi2_sum) + COSMIC_SCAN_MARGIN < cosmic_sigma:
                break
            new = _mask_cosmics(samples_e, mask, n, r2, sigma_px, kappa, alpha, beta, cosmic_sigma, chi2_high)
            if new == 0 or n_used - new < MIN_SAMPLES:
                break  # nothing to mask, or too little would be left: keep the last fit
            n_used -= new
            status |= FLAG_COSMIC
            (kappa, alpha, beta, f00, f01, f02, f11, f12, f22,
             chi2_sum, it, converged, bad_flux) = _newton(samples_e, mask, n, r2, sigma_px, max_iter)  # fmt: skip

    # Formal errors: diagonal of the inverse Fisher information (cofactors of the symmetric 3x3).
    c00 = f11 * f22 - f12 * f12
    c11 = f00 * f22 - f02 * f02
    c22 = f00 * f11 - f01 * f01
    det = f00 * c00 - f01 * (f01 * f22 - f12 * f02) + f02 * (f01 * f12 - f11 * f02)
    al_px[i] = kappa
    flux_e[i] = alpha
    bg_e[i] = beta
    errors_ok = det > 0.0 and c00 >= 0.0 and c11 >= 0.0 and c22 >= 0.0
    if errors_ok:
        al_px_err[i] = kmath.sqrt(c00 / det)
        flux_e_err[i] = kmath.sqrt(c11 / det)
        bg_e_err[i] = kmath.sqrt(c22 / det)
    chi2[i] = chi2_sum / (n_used - 3)
    n_iter[i] = it
    # No formal errors (singular Fisher information: e.g. a star left only in a far masked corner) means
    # the data do not pin the solution down: not converged, whatever the iterations said.
    if not converged or not errors_ok:
        status |= FLAG_NOT_CONVERGED
    if bad_flux or not (alpha > ALPHA_FLOOR_E * (1.0 + 1e-9)):
        status |= FLAG_BAD_FLUX
    if not (kappa >= -0.5 and kappa <= n - 0.5):
        status |= FLAG_OUTSIDE_WINDOW
    flags[i] = status


@jit_fit_parallel
def _fit_windows(samples_e, n_samples, var_extra_e2, sigma_px, max_iter, mask, cosmic_sigma):
    """Fit every window (row of ``samples_e``, float64 (m, n_max) electrons) in parallel.

    ``n_samples`` int32 (m,) valid samples per row, ``var_extra_e2`` float64 (m,), ``mask`` uint8
    (m, n_max) (non-zero = ignore the sample; cosmic-ray detections are written into it). Returns
    ``(al_px, al_px_err, flux_e, flux_e_err, bg_e, bg_e_err, chi2, n_iter, flags)``.
    """
    m = samples_e.shape[0]
    al_px = np.empty(m)
    al_px_err = np.empty(m)
    flux_e = np.empty(m)
    flux_e_err = np.empty(m)
    bg_e = np.empty(m)
    bg_e_err = np.empty(m)
    chi2 = np.empty(m)
    n_iter = np.empty(m, dtype=np.int32)
    flags = np.empty(m, dtype=np.int32)
    for i in numba.prange(m):
        _fit_window(
            samples_e[i], mask[i], n_samples[i], var_extra_e2[i], sigma_px, max_iter, cosmic_sigma, i,
            al_px, al_px_err, flux_e, flux_e_err, bg_e, bg_e_err, chi2, n_iter, flags,
        )  # fmt: skip
    return al_px, al_px_err, flux_e, flux_e_err, bg_e, bg_e_err, chi2, n_iter, flags
