"""Slow, obvious reference for the IPD fit (pipeline.ipd), built on scipy.

Same model and likelihood as the pipeline (docs/facts.md section 4): ``E_k = beta + alpha * L(k - kappa)``
with the pixel-integrated Gaussian LSF (docs/facts.md section 5), shifted Poisson for read noise
(``N + r2 ~ Poisson(E + r2)``), ``beta >= 0``. The LSF is computed here with ``scipy.special.ndtr``
(independent of ``pipeline.lsf``), and the fit is a profile likelihood: for a fixed centre the
likelihood is concave in (alpha, beta), so it is maximised with bounded L-BFGS-B; the centre is found
by a grid over the whole window followed by a bounded Brent search around the best grid point. Fisher
errors use a central finite difference for dE/dkappa.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import ndtr


def lsf(x_px: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian of width sigma_px integrated over the pixel [x - 0.5, x + 0.5)."""
    return ndtr((x_px + 0.5) / sigma_px) - ndtr((x_px - 0.5) / sigma_px)


def log_likelihood(kappa, alpha, beta, samples_e, var_extra_e2, sigma_px, pos=None) -> float:
    """Shifted-Poisson log-likelihood sum(w log mu - mu) with the saturated-model constant removed.

    ``pos``: the sample positions of ``samples_e`` (default 0..n-1; masked samples are simply absent)."""
    k = np.arange(samples_e.size) if pos is None else pos
    mu = beta + alpha * lsf(k - kappa, sigma_px) + var_extra_e2
    w = samples_e + var_extra_e2
    saturated = np.where(w > 0.0, w * np.log(np.where(w > 0.0, w, 1.0)) - w, 0.0)
    return float(np.sum(w * np.log(mu) - mu - saturated))


def _best_flux_bg(kappa, samples_e, var_extra_e2, sigma_px, pos):
    """Maximise the likelihood over (alpha >= 0, beta >= 0) at a fixed centre kappa."""
    k = pos
    prof = lsf(k - kappa, sigma_px)
    w = samples_e + var_extra_e2
    saturated = np.where(w > 0.0, w * np.log(np.where(w > 0.0, w, 1.0)) - w, 0.0)
    a_scale = max(float(np.sum(samples_e)), 1.0)
    b_scale = max(float(np.mean(samples_e)), 1.0)

    def neg(x):
        alpha, beta = x[0] * a_scale, x[1] * b_scale
        mu = beta + alpha * prof + var_extra_e2
        res = w / mu - 1.0
        value = -np.sum(w * np.log(mu) - mu - saturated)
        grad = -np.array([np.sum(res * prof) * a_scale, np.sum(res) * b_scale])
        return value, grad

    b0 = max(min(samples_e[0], samples_e[-1]), 0.0)
    x0 = np.array([max(np.sum(samples_e - b0), 1.0) / a_scale, b0 / b_scale])
    sol = minimize(
        neg, x0, jac=True, method="L-BFGS-B", bounds=[(0.0, None), (0.0, None)],
        options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 1000},
    )  # fmt: skip
    return -sol.fun, sol.x[0] * a_scale, sol.x[1] * b_scale


def fit_window(samples_e: np.ndarray, var_extra_e2: float, sigma_px: float = 1.0,
               mask: np.ndarray | None = None) -> dict[str, float]:
    """Reference fit of one window; returns the fields of ``pipeline.ipd.fit_images`` (no flags).

    Samples where ``mask`` is non-zero are dropped (they are simply not data).
    """
    samples_e = np.asarray(samples_e, dtype=np.float64)
    n_window = samples_e.size
    pos = np.arange(n_window) if mask is None else np.flatnonzero(np.asarray(mask) == 0)
    samples_e = samples_e[pos]
    n = samples_e.size
    grid = np.arange(-0.5, n_window - 0.5 + 1e-9, 0.5)
    prof = [_best_flux_bg(kap, samples_e, var_extra_e2, sigma_px, pos)[0] for kap in grid]
    k0 = grid[int(np.argmax(prof))]
    sol = minimize_scalar(
        lambda kap: -_best_flux_bg(kap, samples_e, var_extra_e2, sigma_px, pos)[0],
        bounds=(k0 - 0.5, k0 + 0.5), method="bounded", options={"xatol": 1e-8},
    )  # fmt: skip
    kappa = float(sol.x)
    _, alpha, beta = _best_flux_bg(kappa, samples_e, var_extra_e2, sigma_px, pos)

    k = pos
    h = 1e-5
    prof_k = lsf(k - kappa, sigma_px)
    jac = np.column_stack(
        [
            alpha * (lsf(k - kappa - h, sigma_px) - lsf(k - kappa + h, sigma_px)) / (2 * h),
            prof_k,
            np.ones(n),
        ]
    )
    model = beta + alpha * prof_k
    mu = model + var_extra_e2
    fisher = jac.T @ (jac / mu[:, None])
    cov = np.linalg.inv(fisher)
    return {
        "al_px": kappa,
        "al_px_err": float(np.sqrt(cov[0, 0])),
        "flux_e": float(alpha),
        "flux_e_err": float(np.sqrt(cov[1, 1])),
        "bg_e": float(beta),
        "bg_e_err": float(np.sqrt(cov[2, 2])),
        "chi2": float(np.sum((samples_e - model) ** 2 / mu) / (n - 3)),
        "logl": log_likelihood(kappa, alpha, beta, samples_e, var_extra_e2, sigma_px, pos),
    }
