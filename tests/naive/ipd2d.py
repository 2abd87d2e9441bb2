"""Slow, obvious reference for the 2D IPD fit (pipeline.ipd.fit_images_2d), built on scipy.

Model (docs/facts.md sections 4 and 5): ``E_kl = beta + alpha * A(k - kappa_al) * C(l - kappa_ac)`` with
pixel-integrated Gaussians computed here with ``scipy.special.ndtr`` (independent of ``pipeline.lsf``),
shifted Poisson for read noise, ``alpha, beta >= 0``; masked pixels are simply absent. The fit: for every
centre on a 0.25 px grid over the window, (alpha, beta) from weighted least squares (a cheap start), the
best grid point refined by bounded L-BFGS-B on all 4 parameters with an analytic gradient, then by
Nelder-Mead to polish. Fisher errors from a central finite-difference Jacobian.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import ndtr


def _lsf(x_px, sigma_px):
    return ndtr((x_px + 0.5) / sigma_px) - ndtr((x_px - 0.5) / sigma_px)


def _model(p, kk, ll, sig_al, sig_ac):
    return p[3] + p[2] * _lsf(kk - p[0], sig_al) * _lsf(ll - p[1], sig_ac)


def log_likelihood_2d(params, samples_e, var_extra_e2, sigma_al_px=1.0, sigma_ac_px=1.0, mask=None) -> float:
    """Shifted-Poisson log-likelihood (saturated-model constant removed) of (kappa_al, kappa_ac, alpha, beta)."""
    samples_e = np.asarray(samples_e, dtype=np.float64)
    keep = np.ones(samples_e.shape, bool) if mask is None else np.asarray(mask) == 0
    kk, ll = np.nonzero(keep)
    w = samples_e[keep] + var_extra_e2
    mu = np.maximum(_model(np.asarray(params, dtype=np.float64), kk, ll, sigma_al_px, sigma_ac_px) + var_extra_e2,
                    1e-12)
    saturated = np.where(w > 0.0, w * np.log(np.where(w > 0.0, w, 1.0)) - w, 0.0)
    return float(np.sum(w * np.log(mu) - mu - saturated))


def fit_window_2d(samples_e: np.ndarray, var_extra_e2: float, sigma_al_px: float = 1.0, sigma_ac_px: float = 1.0,
                  mask: np.ndarray | None = None) -> dict[str, float]:
    """Reference fit of one (n_al, n_ac) window; returns the fields of ``fit_images_2d`` (no flags)."""
    samples_e = np.asarray(samples_e, dtype=np.float64)
    n_al, n_ac = samples_e.shape
    keep = np.ones(samples_e.shape, bool) if mask is None else np.asarray(mask) == 0
    kk, ll = np.nonzero(keep)
    kk = kk.astype(np.float64)
    ll = ll.astype(np.float64)
    s = samples_e[keep]
    r2 = var_extra_e2
    w = s + r2
    saturated = np.where(w > 0.0, w * np.log(np.where(w > 0.0, w, 1.0)) - w, 0.0)

    def neg_logl(p):
        mu = np.maximum(_model(p, kk, ll, sigma_al_px, sigma_ac_px) + r2, 1e-12)
        return -float(np.sum(w * np.log(mu) - mu - saturated))

    best = (np.inf, None)
    for ka in np.arange(-0.5, n_al - 0.5 + 1e-9, 0.25):
        a = _lsf(kk - ka, sigma_al_px)
        for kc in np.arange(-0.5, n_ac - 0.5 + 1e-9, 0.25):
            prof = a * _lsf(ll - kc, sigma_ac_px)
            design = np.column_stack([prof, np.ones_like(prof)])
            wt = 1.0 / np.sqrt(np.maximum(s, 1.0) + r2)
            coef = np.linalg.lstsq(design * wt[:, None], s * wt, rcond=None)[0]
            p = np.array([ka, kc, max(coef[0], 1.0), max(coef[1], 0.0)])
            value = neg_logl(p)
            if value < best[0]:
                best = (value, p)
    p0 = best[1]
    scale = np.array([1.0, 1.0, max(p0[2], 1.0), max(p0[3], 1.0)])

    def neg_scaled(q):
        return neg_logl(q * scale)

    bounds = [(p0[0] - 1.0, p0[0] + 1.0), (p0[1] - 1.0, p0[1] + 1.0), (1e-3 / scale[2], None), (0.0, None)]
    sol = minimize(neg_scaled, p0 / scale, method="L-BFGS-B", bounds=bounds,
                   options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 5000})
    sol = minimize(neg_scaled, sol.x, method="Nelder-Mead",
                   options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 20000, "maxfev": 40000})
    p = sol.x * scale
    p[3] = max(p[3], 0.0)

    h = 1e-6
    jac = np.empty((s.size, 4))
    for q in range(4):
        step = h * max(abs(p[q]), 1.0) if q >= 2 else h
        up, dn = p.copy(), p.copy()
        up[q] += step
        dn[q] -= step
        jac[:, q] = (_model(up, kk, ll, sigma_al_px, sigma_ac_px) - _model(dn, kk, ll, sigma_al_px, sigma_ac_px)) \
            / (2 * step)
    model = _model(p, kk, ll, sigma_al_px, sigma_ac_px)
    mu = model + r2
    cov = np.linalg.inv(jac.T @ (jac / mu[:, None]))
    return {
        "al_px": float(p[0]), "al_px_err": float(np.sqrt(cov[0, 0])),
        "ac_px": float(p[1]), "ac_px_err": float(np.sqrt(cov[1, 1])),
        "flux_e": float(p[2]), "flux_e_err": float(np.sqrt(cov[2, 2])),
        "bg_e": float(p[3]), "bg_e_err": float(np.sqrt(cov[3, 3])),
        "chi2": float(np.sum((s - model) ** 2 / mu) / (s.size - 4)),
        "logl": -neg_logl(p),
    }
