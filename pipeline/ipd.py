"""Image Parameter Determination (IPD): Poisson maximum-likelihood fits of 1D (AL) and 2D windows.

docs/facts.md section 4 (GDR2 doc 2.4.8, GEDR3 doc 3.3.5-3.3.6): Gaia's IPD fits each window by maximum
likelihood with a Poisson model, ``E(N_k) = beta + alpha * L(k - kappa)``: background ``beta`` >= 0
(e- per sample), flux ``alpha`` (e-) and AL location ``kappa`` (pixels, window frame of
``pipeline.lsf``: sample ``k`` is centred at ``al_px = k``). The LSF comes from the calibration table
``pipeline/data/lsf_af.csv`` through ``pipeline.lsf`` (a Gaussian of ``sigma_px`` integrated over
the pixel, docs/facts.md section 5, tabulated in units of ``sigma_px``). A fit without finite formal errors
(singular Fisher information) is flagged ``FLAG_NOT_CONVERGED``. Gaussian read noise and ADU quantisation
enter through the shifted-Poisson approximation ``N + r2 ~ Poisson(E + r2)`` with
``r2 = var_extra_e2`` (see :func:`extra_variance_e2`). The algorithm is described in
``pipeline.kernels.ipd``.

Public API:
- :func:`fit_images`: the numba fit (parallel over windows), the production path.
- :func:`fit_images_numpy`: the same algorithm vectorised with numpy across windows (no numba); the
  speed baseline, equal to :func:`fit_images` to ~1e-6 px.
- :func:`fit_images_2d`: the 2D fit (AL and AC centres, flux, background) of unbinned WC0 windows.
- :func:`extra_variance_e2`: the Gaussian variance to pass as ``var_extra_e2``.
- :func:`debias_flux`: the fitted fluxes less their bias from fitting the location as well (faint stars).

Both fits take a per-sample ``mask`` (masked samples contribute nothing) and optional cosmic-ray
rejection (``cosmic_sigma``: mask samples far above the fitted model, refit, ``FLAG_COSMIC``).
- ``FLAG_*``: status bits of the ``flags`` output.
"""

from __future__ import annotations

import functools

import numpy as np

from pipeline.kernels import ipd as _k
from pipeline.kernels import ipd2d as _k2
from pipeline.lsf import LSF_SIGMA_PX, lsf_edge_array, lsf_profile, require_table
from pipeline.lsf import lsf_dkappa as _lsf_dkappa

#: The fit did not reach the convergence criterion within ``max_iter`` (or could not step).
FLAG_NOT_CONVERGED = _k.FLAG_NOT_CONVERGED
#: The fitted centre lies outside the window, ``al_px < -0.5`` or ``al_px > n - 0.5``.
FLAG_OUTSIDE_WINDOW = _k.FLAG_OUTSIDE_WINDOW
#: The flux went to its floor (non-positive flux: no star in the window).
FLAG_BAD_FLUX = _k.FLAG_BAD_FLUX
#: Reserved for the caller: the window has saturated samples (never set by the fit).
FLAG_SATURATED = _k.FLAG_SATURATED
#: Cosmic-ray rejection masked samples and refitted (set only when ``cosmic_sigma > 0``).
FLAG_COSMIC = _k.FLAG_COSMIC
#: Fewer than 4 unmasked samples, a non-finite unmasked sample or a bad ``var_extra_e2``: not fitted.
FLAG_BAD_INPUT = _k.FLAG_BAD_INPUT
#: Default cosmic-ray threshold of the pipeline: sigma above the fitted model [U] (kernels.ipd).
COSMIC_SIGMA = _k.COSMIC_SIGMA
#: Mask values (``mask`` arguments): masked by the caller, masked as a cosmic-ray hit by the fit.
MASK_GIVEN = _k.MASK_GIVEN
MASK_COSMIC = _k.MASK_COSMIC

#: Default iteration limit (a converging fit takes ~3 Newton steps).
DEFAULT_MAX_ITER = 30

#: Names of the output arrays, in the order the kernel returns them.
OUTPUT_NAMES = ("al_px", "al_px_err", "flux_e", "flux_e_err", "bg_e", "bg_e_err", "chi2", "n_iter", "flags")


def extra_variance_e2(read_noise_e: float, gain_adu_per_e: float) -> float:
    """Gaussian variance added to Poisson per sample (e-^2): read noise^2 + ADU quantisation.

    Quantisation to one ADU adds a uniform error of variance ``(1 ADU)^2 / 12 = (1 / gain)^2 / 12`` e-^2.
    docs/facts.md section 2 (Hambly+2018 Table 1): AF2-9 read noise 4.3 e-, gain 0.258 ADU/e-.
    """
    return float(read_noise_e) ** 2 + (1.0 / float(gain_adu_per_e)) ** 2 / 12.0


#: Sub-pixel phases over which :func:`location_bias_coefficient` averages the profile sums.
_PHASES = np.linspace(-0.5, 0.5, 33)[:-1]


def location_bias_coefficient(sigma_px: float = LSF_SIGMA_PX) -> float:
    """K of :func:`debias_flux`: sum L'^2 / (2 sum L^2) over the samples of the integrated LSF, per px^2.

    Fitting the centre kappa with the flux lets the fit slide onto the noise: at an offset d from the true
    centre the profile's projection on the image falls as 1 - K d^2, while the noise adds n0 + n1 d; the
    maximum over d gains n1^2 / (4 K alpha) on average, and var(kappa_hat) = n1^2 / (2 K alpha)^2 gives
    E[alpha_hat] = alpha (1 + K var(kappa_hat)) to first order (background-limited windows; for a Gaussian
    of width s, K = 1 / (4 s^2): 0.230 per px^2 at the 1.0 px LSF integrated over the pixel).
    """
    k = np.arange(-40, 41, dtype=np.float64)
    x = k[None, :] - _PHASES[:, None]
    value = lsf_profile(x, sigma_px)
    slope = np.array([[_lsf_dkappa(v, sigma_px) for v in row] for row in x])
    return float(np.mean((slope * slope).sum(axis=1) / (2.0 * (value * value).sum(axis=1))))


def debias_flux(flux_e: np.ndarray, al_px_err: np.ndarray, sigma_px: float = LSF_SIGMA_PX) -> np.ndarray:
    """Fluxes of 1D fits less their first-order bias from the free centre: ``flux / (1 + K al_px_err^2)``
    (:func:`location_bias_coefficient`). A no-op for bright stars (al_px_err ~ 0.005 px: 6e-6); at 300 e- over
    a 470 e- background (G ~ 21 in a binned AF window) the bias falls from +1.4 % to +0.3 %
    (tests/unit/test_ipd.py). On the population sky's medium day the median transit G error of the G 21 bin
    went from -0.0152 to -0.0023 mag and of the G 20 bin from -0.0046 to +0.0003. Where the error is not
    finite the flux is returned unchanged."""
    flux_e = np.asarray(flux_e, dtype=np.float64)
    err = np.asarray(al_px_err, dtype=np.float64)
    factor = 1.0 + location_bias_coefficient_cached(float(sigma_px)) * np.where(np.isfinite(err), err * err, 0.0)
    return flux_e / factor


@functools.cache
def location_bias_coefficient_cached(sigma_px: float) -> float:
    return location_bias_coefficient(sigma_px)


def _check_mask(mask, shape):
    """A writable uint8 copy of ``mask`` (zeros when None), checked against the samples' ``shape``."""
    if mask is None:
        return np.zeros(shape, dtype=np.uint8)
    if not isinstance(mask, np.ndarray) or mask.dtype != np.uint8 or mask.shape != shape:
        raise ValueError(
            f"mask must be a uint8 numpy array of shape {shape} (non-zero = ignore the sample); "
            "use (bad_samples).astype(np.uint8)"
        )
    return np.array(mask, dtype=np.uint8, order="C")


def _check_cosmic_sigma(cosmic_sigma):
    value = float(cosmic_sigma)
    if not (np.isfinite(value) and value >= 0.0):
        raise ValueError(f"cosmic_sigma must be a finite threshold >= 0 (0 = no rejection), got {cosmic_sigma!r}")
    return value


def _check_inputs(samples_e, n_samples, var_extra_e2, sigma_px, max_iter):
    require_table()
    if not isinstance(samples_e, np.ndarray) or samples_e.dtype != np.float64 or samples_e.ndim != 2:
        raise ValueError(
            "samples_e must be a float64 numpy array of shape (m, n_max) in electrons; "
            "use np.asarray(samples_e).astype(np.float64) (and reshape a single window to (1, n))"
        )
    m, n_max = samples_e.shape
    if not isinstance(n_samples, np.ndarray) or n_samples.dtype != np.int32 or n_samples.shape != (m,):
        raise ValueError(
            f"n_samples must be an int32 numpy array of shape ({m},) (one count per window); "
            "use np.asarray(n_samples).astype(np.int32)"
        )
    if not isinstance(var_extra_e2, np.ndarray) or var_extra_e2.dtype != np.float64 or var_extra_e2.shape != (m,):
        raise ValueError(
            f"var_extra_e2 must be a float64 numpy array of shape ({m},) in e-^2; "
            "use np.full(m, extra_variance_e2(read_noise_e, gain_adu_per_e))"
        )
    if m and (n_samples.min() < 0 or n_samples.max() > n_max):
        raise ValueError(f"n_samples must lie in [0, n_max={n_max}]; clip it or pad samples_e to more columns")
    sigma = float(sigma_px)
    if not (np.isfinite(sigma) and sigma > 0.0):
        raise ValueError(f"sigma_px must be a finite positive LSF width in AL pixels, got {sigma_px!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int | np.integer) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    return np.ascontiguousarray(samples_e), sigma, int(max_iter)


def fit_images(
    samples_e: np.ndarray,
    n_samples: np.ndarray,
    var_extra_e2: np.ndarray,
    sigma_px: float = LSF_SIGMA_PX,
    max_iter: int = DEFAULT_MAX_ITER,
    mask: np.ndarray | None = None,
    cosmic_sigma: float = 0.0,
    device: str = "cpu",
    return_mask: bool = False,
) -> dict[str, np.ndarray]:
    """Fit the AL location, flux and background of each 1D window (numba, parallel over windows).

    Parameters
    ----------
    samples_e : float64 (m, n_max)
        Window samples in electrons (ADU / gain, bias removed); only ``[:n_samples[i]]`` of row ``i`` is
        read. Mask bad samples by shortening the window or flag the window beforehand.
    n_samples : int32 (m,)
        Number of valid samples per window (12 or 18 for AF windows, docs/facts.md section 2).
    var_extra_e2 : float64 (m,)
        Gaussian variance per sample added to Poisson: read noise^2 + quantisation, e-^2
        (:func:`extra_variance_e2`).
    sigma_px : float
        LSF width in AL pixels (default 1.0, docs/facts.md section 5).
    max_iter : int
        Iteration limit per window.
    mask : uint8 (m, n_max), optional
        Non-zero samples are ignored: they add nothing to the likelihood, the Fisher information or chi2.
    cosmic_sigma : float
        Cosmic-ray rejection (0 = off; the pipeline uses :data:`COSMIC_SIGMA`): after a fit, samples more
        than this many sigma above the model are masked and the window refitted (``FLAG_COSMIC``).
    device : {"cpu", "cuda"}
        ``"cuda"``: the same kernels compiled for an NVIDIA GPU (``pipeline.kernels.ipd_cuda``), one thread
        per window, inputs copied in and outputs back; equal to the CPU fit far below the formal errors.
    return_mask : bool
        Also return ``mask``: uint8 (m, n_max), the mask as the fit left it (:data:`MASK_GIVEN` where the
        caller masked, :data:`MASK_COSMIC` where the cosmic-ray rejection did, 0 elsewhere); CPU only
        (``pipeline.second_image`` reads where the hits were).

    Returns
    -------
    dict of arrays of length m: ``al_px`` (image centre in the window frame, px), ``al_px_err`` (px),
    ``flux_e`` and ``flux_e_err`` (e-), ``bg_e`` and ``bg_e_err`` (e- per sample), ``chi2`` (reduced,
    ``sum (N - E)^2 / (E + r2) / (n - 3)`` over the n unmasked samples), ``n_iter`` (int32) and ``flags``
    (int32, ``FLAG_*`` bits).
    Errors are the formal ones from the inverse Fisher information. Flagged windows keep their best
    estimates; windows with ``FLAG_BAD_INPUT`` are NaN.

    Raises
    ------
    ValueError
        On a wrong dtype or shape, saying how to fix it; with ``device="cuda"`` and no CUDA GPU. Bad data
        never raise (see ``flags``).
    """
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if return_mask and device != "cpu":
        raise ValueError("return_mask needs device='cpu' (the CUDA build leaves its mask on the GPU)")
    samples_e, sigma, max_iter = _check_inputs(samples_e, n_samples, var_extra_e2, sigma_px, max_iter)
    mask = _check_mask(mask, samples_e.shape)
    fit = _k._fit_windows
    if device == "cuda":
        from pipeline.kernels import ipd_cuda  # imports numba.cuda: only when asked for

        fit = ipd_cuda.fit_windows
    out = fit(samples_e, n_samples, var_extra_e2, sigma, max_iter, mask, _check_cosmic_sigma(cosmic_sigma))
    res = dict(zip(OUTPUT_NAMES, out, strict=True))
    if return_mask:
        res["mask"] = mask  # the kernel wrote its cosmic-ray detections into this copy
    return res


# --------------------------------------------------------------------------------------------------
# numpy mirror of pipeline.kernels.ipd (the benchmark baseline). Each helper matches a kernel helper.


def _evaluate_np(samples, maskf, r2, sigma_px, kappa, alpha, beta):
    """Vectorised ``_evaluate`` for windows ``(w, n_max)``; invalid samples have ``maskf == 0``."""
    n_max = samples.shape[1]
    edges = np.arange(n_max + 1, dtype=np.float64) - 0.5
    e, q, s = lsf_edge_array(edges[None, :] - kappa[:, None], sigma_px)
    lk = e[:, 1:] - e[:, :-1]
    dk = q[:, :-1] - q[:, 1:]
    d2k = s[:, :-1] - s[:, 1:]
    a = alpha[:, None]
    model = beta[:, None] + a * lk
    mu = np.maximum(model + r2[:, None], _k.MU_FLOOR_E)
    w = samples + r2[:, None]
    delta = (mu - w) / w
    logl_k = np.where(w > 0.0, w * (np.log1p(delta) - delta), w * np.log(mu) - mu)
    inv_mu = maskf / mu  # zero for invalid samples: every sum below skips them
    ratio = w * inv_mu
    res = ratio - maskf
    j0 = a * dk
    c = ratio / mu
    cj0 = c * j0
    fj0 = inv_mu * j0
    flk = inv_mu * lk
    r = samples - model
    return {
        "logl": (logl_k * maskf).sum(axis=1),
        "g0": (res * j0).sum(axis=1),
        "g1": (res * lk).sum(axis=1),
        "g2": res.sum(axis=1),
        "h00": (cj0 * j0 - res * a * d2k).sum(axis=1),
        "h01": (cj0 * lk - res * dk).sum(axis=1),
        "h02": cj0.sum(axis=1),
        "h11": (c * lk * lk).sum(axis=1),
        "h12": (c * lk).sum(axis=1),
        "h22": c.sum(axis=1),
        "f00": (fj0 * j0).sum(axis=1),
        "f01": (fj0 * lk).sum(axis=1),
        "f02": fj0.sum(axis=1),
        "f11": (flk * lk).sum(axis=1),
        "f12": flk.sum(axis=1),
        "f22": inv_mu.sum(axis=1),
        "chi2_sum": (r * r * inv_mu).sum(axis=1),
    }


def _solve3_np(a00, a01, a02, a11, a12, a22, b0, b1, b2, fix_beta):
    """Vectorised ``_solve3``; ``fix_beta`` is a bool array. Returns ``(ok, x0, x1, x2)``."""
    a02 = np.where(fix_beta, 0.0, a02)
    a12 = np.where(fix_beta, 0.0, a12)
    a22 = np.where(fix_beta, 1.0, a22)
    b2 = np.where(fix_beta, 0.0, b2)
    ok = (a00 > 0.0) & (a11 > 0.0) & (a22 > 0.0)
    l00 = np.sqrt(np.where(ok, a00, 1.0))
    l10 = a01 / l00
    l20 = a02 / l00
    p11 = a11 - l10 * l10
    ok &= p11 > _k.PIVOT_REL * a11
    l11 = np.sqrt(np.where(ok, p11, 1.0))
    l21 = (a12 - l20 * l10) / l11
    p22 = a22 - l20 * l20 - l21 * l21
    ok &= p22 > _k.PIVOT_REL * a22
    l22 = np.sqrt(np.where(ok, p22, 1.0))
    y0 = b0 / l00
    y1 = (b1 - l10 * y0) / l11
    y2 = (b2 - l20 * y0 - l21 * y1) / l22
    x2 = y2 / l22
    x1 = (y1 - l21 * x2) / l11
    x0 = (y0 - l10 * x1 - l20 * x2) / l00
    return ok, np.where(ok, x0, 0.0), np.where(ok, x1, 0.0), np.where(ok, x2, 0.0)


def _direction_np(ev, fix_beta):
    """Vectorised ``_direction``: Newton, or Fisher scoring where Newton is not an ascent."""
    g = (ev["g0"], ev["g1"], ev["g2"])
    ok, d0, d1, d2 = _solve3_np(ev["h00"], ev["h01"], ev["h02"], ev["h11"], ev["h12"], ev["h22"], *g, fix_beta)
    use_f = ~ok | ~(g[0] * d0 + g[1] * d1 + g[2] * d2 > 0.0)
    okf, e0, e1, e2 = _solve3_np(ev["f00"], ev["f01"], ev["f02"], ev["f11"], ev["f12"], ev["f22"], *g, fix_beta)
    return (
        np.where(use_f, okf, ok),
        np.where(use_f, e0, d0),
        np.where(use_f, e1, d1),
        np.where(use_f, e2, d2),
    )


def _fill_masked_np(samples, n, masked):
    """Masked samples replaced as the kernel's ``_value`` reads them (neighbour interpolation)."""
    samples = samples.copy()
    for i in np.flatnonzero(masked.any(axis=1)):
        ni = int(n[i])
        row, bad = samples[i], masked[i, :ni]
        good = np.flatnonzero(~bad)
        for k in np.flatnonzero(bad):
            lo = good[good < k]
            hi = good[good > k]
            if lo.size and hi.size:
                a, b = lo[-1], hi[0]
                row[k] = row[a] + (row[b] - row[a]) * (k - a) / (b - a)
            elif lo.size or hi.size:
                row[k] = row[lo[-1]] if lo.size else row[hi[0]]
            else:
                row[k] = 0.0
    return samples


def _start_np(samples, n):
    """Vectorised ``_start`` (moment estimate); masked samples already filled (:func:`_fill_masked_np`)."""
    rows = np.arange(samples.shape[0])
    bg_lo = 0.5 * (samples[:, 0] + samples[:, 1])
    bg_hi = 0.5 * (samples[rows, n - 2] + samples[rows, n - 1])
    beta = np.maximum(np.minimum(bg_lo, bg_hi), 0.0)
    n_max = samples.shape[1]
    k = np.arange(1, n_max - 1)
    sums = samples[:, :-2] + samples[:, 1:-1] + samples[:, 2:]
    sums = np.where(k[None, :] < (n - 1)[:, None], sums, -np.inf)
    k_best = 1 + np.argmax(sums, axis=1)  # first maximum, as the kernel's strict '>'
    x_lo = samples[rows, k_best - 1] - beta
    x_mid = samples[rows, k_best] - beta
    x_hi = samples[rows, k_best + 1] - beta
    pos = (x_lo > 0.0) & (x_mid > 0.0) & (x_hi > 0.0)
    l_lo = np.log(np.where(pos, x_lo, 1.0))
    l_hi = np.log(np.where(pos, x_hi, 1.0))
    curv = l_lo - 2.0 * np.log(np.where(pos, x_mid, 1.0)) + l_hi
    use = pos & (curv < 0.0)
    offset = np.clip(0.5 * (l_lo - l_hi) / np.where(use, curv, -1.0), -1.0, 1.0)
    kappa = k_best + np.where(use, offset, 0.0)
    valid = np.arange(n_max)[None, :] < n[:, None]
    alpha = np.where(valid, samples - beta[:, None], 0.0).sum(axis=1)
    alpha = np.maximum(alpha, 1.0)
    return kappa, alpha, beta


def _fit_chunk_np(samples, n, r2, sigma_px, max_iter, mask):
    """Fit one chunk of windows with the vectorised algorithm; returns the output tuple."""
    m, n_max = samples.shape
    out_f = {name: np.full(m, np.nan) for name in OUTPUT_NAMES[:7]}
    n_iter = np.zeros(m, dtype=np.int32)
    flags = np.zeros(m, dtype=np.int32)
    valid = np.arange(n_max)[None, :] < n[:, None]
    used = valid & (mask == 0)
    bad = (used.sum(axis=1) < _k.MIN_SAMPLES) | ~(r2 >= 0.0) | ~np.isfinite(r2)
    bad |= (used & ~np.isfinite(samples)).any(axis=1)
    flags[bad] = _k.FLAG_BAD_INPUT | _k.FLAG_NOT_CONVERGED
    good = np.flatnonzero(~bad)
    if good.size:
        res = _iterate_np(samples[good], n[good], valid[good], used[good], r2[good], sigma_px, max_iter)
        for name in OUTPUT_NAMES[:7]:
            out_f[name][good] = res[name]
        n_iter[good] = res["n_iter"]
        flags[good] = res["flags"]
    return (*(out_f[name] for name in OUTPUT_NAMES[:7]), n_iter, flags)


def _take(ev, idx):
    return {key: val[idx] for key, val in ev.items()}


def _iterate_np(samples, n, valid, used, r2, sigma_px, max_iter):
    """Newton/Fisher iterations with step control on all windows at once (mirror of ``_fit_window``)."""
    m = samples.shape[0]
    maskf = used.astype(np.float64)
    filled = _fill_masked_np(np.where(valid, samples, 1.0), n, valid & ~used)
    samples = np.where(used, samples, 1.0)  # padding and masked samples never enter a sum (maskf == 0)
    kappa, alpha, beta = _start_np(filled, n)
    ev = _evaluate_np(samples, maskf, r2, sigma_px, kappa, alpha, beta)
    converged = np.zeros(m, dtype=bool)
    bad_flux = np.zeros(m, dtype=bool)
    done = np.zeros(m, dtype=bool)
    n_iter = np.zeros(m, dtype=np.int32)
    for it in range(1, max_iter + 1):
        act = np.flatnonzero(~done)
        if act.size == 0:
            break
        n_iter[act] = it
        e = _take(ev, act)
        ka, al, be = kappa[act], alpha[act], beta[act]
        fix_beta = (be <= 0.0) & (e["g2"] <= 0.0)
        ok, d0, d1, d2 = _direction_np(e, fix_beta)
        refix = ok & ~fix_beta & (be <= 0.0) & (d2 < 0.0)
        if refix.any():
            ok2, r0, r1, r2_ = _direction_np(e, np.ones(act.size, dtype=bool))
            ok = np.where(refix, ok2, ok)
            d0 = np.where(refix, r0, d0)
            d1 = np.where(refix, r1, d1)
            d2 = np.where(refix, r2_, d2)
        lam2 = e["g0"] * d0 + e["g1"] * d1 + e["g2"] * d2
        stop_fail = ~ok
        stop_conv = ok & (lam2 < _k.LAM2_CONVERGED)
        conv = act[stop_conv]
        converged[conv] = True
        kappa[conv] += d0[stop_conv]
        alpha[conv] = np.maximum(alpha[conv] + d1[stop_conv], _k.ALPHA_FLOOR_E)
        beta[conv] = np.maximum(beta[conv] + d2[stop_conv], 0.0)
        # Step control.
        t = np.where(np.abs(d0) > _k.MAX_KAPPA_STEP_PX, _k.MAX_KAPPA_STEP_PX / np.abs(d0), 1.0)
        alpha_min = np.maximum(_k.ALPHA_SHRINK * al, _k.ALPHA_FLOOR_E)
        room = al - alpha_min
        shrink = d1 < 0.0
        pinned = ok & ~stop_conv & shrink & (room <= 0.0)
        bad_flux[act[pinned]] = True
        clip_a = shrink & ~pinned & (al + t * d1 < alpha_min)
        t = np.where(clip_a, room / np.where(clip_a, -d1, 1.0), t)
        hit = (d2 < 0.0) & (be + t * d2 <= 0.0)
        t = np.where(hit, be / np.where(hit, -d2, 1.0), t)
        stop = stop_fail | stop_conv | pinned
        done[act[stop]] = True
        # Line search on the windows still stepping.
        sel = np.flatnonzero(~stop)
        slack = _k.LOGL_SLACK_REL * (1.0 + np.abs(e["logl"][sel]))
        pending = np.arange(sel.size)
        t_s, hit_s = t[sel], hit[sel]
        for _ in range(_k.MAX_HALVINGS):
            if pending.size == 0:
                break
            j = sel[pending]
            tt = t_s[pending]
            kt = ka[j] + tt * d0[j]
            at = al[j] + tt * d1[j]
            bt = np.where(hit_s[pending], 0.0, np.maximum(be[j] + tt * d2[j], 0.0))
            w = act[j]
            evt = _evaluate_np(samples[w], maskf[w], r2[w], sigma_px, kt, at, bt)
            accept = evt["logl"] >= e["logl"][j] + _k.ARMIJO_C * tt * lam2[j] - slack[pending]
            wa = w[accept]
            kappa[wa], alpha[wa], beta[wa] = kt[accept], at[accept], bt[accept]
            for key in ev:
                ev[key][wa] = evt[key][accept]
            pending = pending[~accept]
            t_s[pending] *= 0.5
            hit_s[pending] = False
        done[act[sel[pending]]] = True  # line search failed

    c00 = ev["f11"] * ev["f22"] - ev["f12"] ** 2
    c11 = ev["f00"] * ev["f22"] - ev["f02"] ** 2
    c22 = ev["f00"] * ev["f11"] - ev["f01"] ** 2
    det = (
        ev["f00"] * c00
        - ev["f01"] * (ev["f01"] * ev["f22"] - ev["f12"] * ev["f02"])
        + ev["f02"] * (ev["f01"] * ev["f12"] - ev["f11"] * ev["f02"])
    )
    err_ok = (det > 0.0) & (c00 >= 0.0) & (c11 >= 0.0) & (c22 >= 0.0)
    safe_det = np.where(err_ok, det, 1.0)
    flags = np.where(converged & err_ok, 0, _k.FLAG_NOT_CONVERGED)
    flags |= np.where(bad_flux | ~(alpha > _k.ALPHA_FLOOR_E * (1.0 + 1e-9)), _k.FLAG_BAD_FLUX, 0)
    flags |= np.where((kappa >= -0.5) & (kappa <= n - 0.5), 0, _k.FLAG_OUTSIDE_WINDOW)
    return {
        "al_px": kappa,
        "al_px_err": np.where(err_ok, np.sqrt(np.abs(c00) / safe_det), np.nan),
        "flux_e": alpha,
        "flux_e_err": np.where(err_ok, np.sqrt(np.abs(c11) / safe_det), np.nan),
        "bg_e": beta,
        "bg_e_err": np.where(err_ok, np.sqrt(np.abs(c22) / safe_det), np.nan),
        "chi2": ev["chi2_sum"] / (used.sum(axis=1) - 3),
        "n_iter": n_iter,
        "flags": flags.astype(np.int32),
    }


def fit_images_numpy(
    samples_e: np.ndarray,
    n_samples: np.ndarray,
    var_extra_e2: np.ndarray,
    sigma_px: float = LSF_SIGMA_PX,
    max_iter: int = DEFAULT_MAX_ITER,
    chunk_windows: int = 8192,
    mask: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Same fit and outputs as :func:`fit_images`, vectorised with numpy across windows (no numba).

    The speed baseline for the numba kernel; it agrees with :func:`fit_images` to ~1e-6 px. ``mask`` as
    in :func:`fit_images` (no cosmic-ray rejection here).
    ``chunk_windows`` windows are processed at a time so temporaries stay in cache.
    """
    samples_e, sigma, max_iter = _check_inputs(samples_e, n_samples, var_extra_e2, sigma_px, max_iter)
    mask = _check_mask(mask, samples_e.shape)
    if isinstance(chunk_windows, bool) or not isinstance(chunk_windows, int) or chunk_windows < 1:
        raise ValueError(f"chunk_windows must be a positive int, got {chunk_windows!r}")
    m = samples_e.shape[0]
    parts = []
    with np.errstate(all="ignore"):  # masked lanes of np.where may divide by zero; never used
        for lo in range(0, m, chunk_windows):
            hi = min(lo + chunk_windows, m)
            parts.append(_fit_chunk_np(samples_e[lo:hi], n_samples[lo:hi], var_extra_e2[lo:hi], sigma, max_iter,
                                       mask[lo:hi]))
    if not parts:
        parts.append(_fit_chunk_np(samples_e, n_samples, var_extra_e2, sigma, max_iter, mask))
    return {name: np.concatenate([p[j] for p in parts]) for j, name in enumerate(OUTPUT_NAMES)}


# --------------------------------------------------------------------------------------------------
# 2D windows (WC0: 18 AL x 12 AC pixels, docs/facts.md section 2), pipeline.kernels.ipd2d.

#: Names of the 2D fit's output arrays.
OUTPUT_NAMES_2D = ("al_px", "al_px_err", "ac_px", "ac_px_err", "flux_e", "flux_e_err", "bg_e", "bg_e_err", "chi2",
                   "n_iter", "flags")


def fit_images_2d(
    samples_e: np.ndarray,
    var_extra_e2: np.ndarray,
    sigma_al_px: float = LSF_SIGMA_PX,
    sigma_ac_px: float = LSF_SIGMA_PX,
    max_iter: int = DEFAULT_MAX_ITER,
    mask: np.ndarray | None = None,
    cosmic_sigma: float = 0.0,
    return_mask: bool = False,
) -> dict[str, np.ndarray]:
    """Fit the AL and AC location, flux and background of each 2D window (numba, parallel).

    Parameters
    ----------
    samples_e : float64 (m, n_al, n_ac)
        Unbinned window pixels in electrons (ADU / gain, bias removed); pixel ``(k, l)`` is centred at
        ``(al_px, ac_px) = (k, l)``.
    var_extra_e2 : float64 (m,)
        Gaussian variance per pixel added to Poisson (:func:`extra_variance_e2`).
    sigma_al_px, sigma_ac_px : float
        PSF widths, AL pixels and AC pixels (both ~1, docs/facts.md section 5).
    max_iter : int
        Iteration limit per window.
    mask : uint8 (m, n_al, n_ac), optional
        Non-zero pixels are ignored (nothing in the likelihood, the Fisher information or chi2).
    cosmic_sigma : float
        Cosmic-ray rejection threshold in sigma above the model (0 = off), as in :func:`fit_images`.
    return_mask : bool
        Also return ``mask`` (m, n_al, n_ac) as the fit left it, as in :func:`fit_images`.

    Returns
    -------
    dict of arrays of length m, :data:`OUTPUT_NAMES_2D`: as :func:`fit_images` plus ``ac_px`` and
    ``ac_px_err`` (px); ``bg_e`` is per pixel and ``chi2`` has ``n - 4`` degrees of freedom.
    """
    require_table()
    if not isinstance(samples_e, np.ndarray) or samples_e.dtype != np.float64 or samples_e.ndim != 3:
        raise ValueError(
            "samples_e must be a float64 numpy array of shape (m, n_al, n_ac) in electrons; "
            "use np.asarray(samples_e).astype(np.float64) (and reshape a single window to (1, n_al, n_ac))"
        )
    m = samples_e.shape[0]
    if not isinstance(var_extra_e2, np.ndarray) or var_extra_e2.dtype != np.float64 or var_extra_e2.shape != (m,):
        raise ValueError(
            f"var_extra_e2 must be a float64 numpy array of shape ({m},) in e-^2; "
            "use np.full(m, extra_variance_e2(read_noise_e, gain_adu_per_e))"
        )
    sig = []
    for name, value in (("sigma_al_px", sigma_al_px), ("sigma_ac_px", sigma_ac_px)):
        v = float(value)
        if not (np.isfinite(v) and v > 0.0):
            raise ValueError(f"{name} must be a finite positive PSF width in pixels, got {value!r}")
        sig.append(v)
    if isinstance(max_iter, bool) or not isinstance(max_iter, int | np.integer) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    mask = _check_mask(mask, samples_e.shape)
    out = _k2._fit_windows_2d(np.ascontiguousarray(samples_e), var_extra_e2, sig[0], sig[1], int(max_iter), mask,
                              _check_cosmic_sigma(cosmic_sigma))
    res = dict(zip(OUTPUT_NAMES_2D, out, strict=True))
    res["n_iter"] = res["n_iter"].astype(np.int32)
    res["flags"] = res["flags"].astype(np.int32)
    if return_mask:
        res["mask"] = mask
    return res
