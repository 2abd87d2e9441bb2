"""Numba kernels of the focal-plane signal: window and spectrum rendering.

Randomness comes from :mod:`gaiasim.sim.kernels_random`, one stream per transit (counter layout above
:func:`_render_windows`): a window's noise depends only on (seed, transit), never on how transits are
split over threads, slices or processes, so generation is byte-identical whatever the parallelism.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from gaiasim.sim.jit import jit, jit_inline, jit_parallel
from gaiasim.sim.kernels_random import mix64, normal, poisson, stream_key, uniform

#: The renderer's Gaussian PSF profile: Phi(u) - 1/2 (u in PSF widths) and the density, tabulated from
#: math.erf at 1/128 of a width over +-9 widths and interpolated by cubic Hermite polynomials: within
#: ~1e-11 of the flux, at a third of the cost of an erf (13 per 12-sample window).
_PSF_U0, _PSF_STEP = -9.0, 1.0 / 128.0
_PSF_U = _PSF_U0 + _PSF_STEP * np.arange(round(-2.0 * _PSF_U0 / _PSF_STEP) + 1)
_PSF_TABLE = np.stack([0.5 * np.array([math.erf(u / math.sqrt(2.0)) for u in _PSF_U]),
                       np.exp(-0.5 * _PSF_U**2) / math.sqrt(2.0 * math.pi)], axis=1)
_PSF_LAST = float(len(_PSF_U) - 1)


@jit
def psf_half_cdf(u):
    """Phi(u) - 1/2 of the standard normal from the table (-1/2 and 1/2 beyond +-9)."""
    x = (u - _PSF_U0) * (1.0 / _PSF_STEP)
    if x <= 0.0:
        return -0.5
    if x >= _PSF_LAST:
        return 0.5
    i = int(x)
    f = x - i
    f2 = f * f
    f3 = f2 * f
    table = _PSF_TABLE
    return ((2.0 * f3 - 3.0 * f2 + 1.0) * table[i, 0] + (3.0 * f2 - 2.0 * f3) * table[i + 1, 0]
            + _PSF_STEP * ((f3 - 2.0 * f2 + f) * table[i, 1] + (f3 - f2) * table[i + 1, 1]))


@jit_inline
def _pixel_profile(kappa, inv_sigma, out):
    """Fraction of the flux of an image centred at ``kappa`` (pixels) in each pixel of ``out``: the PSF
    integrated over the pixel, sigma = 1 / ``inv_sigma``. Neighbouring pixels share an edge: n + 1
    profile evaluations for n pixels.

    Edges one pixel apart lie ``inv_sigma / _PSF_STEP`` table steps apart. When that is a whole number (the
    calibrated sigma = 1 pixel: 128 steps) every edge falls at the same fraction of its table step, so the
    4 Hermite weights are computed once for the window, not once per edge (the edge positions and the
    values equal :func:`psf_half_cdf`'s to rounding)."""
    n = out.shape[0]
    stride = inv_sigma * (1.0 / _PSF_STEP)
    x0 = ((-0.5 - kappa) * inv_sigma - _PSF_U0) * (1.0 / _PSF_STEP)
    if stride == math.floor(stride) and x0 > 0.0 and x0 + n * stride < _PSF_LAST:
        i = int(x0)
        step = int(stride)
        f = x0 - i
        f2 = f * f
        f3 = f2 * f
        w0 = 2.0 * f3 - 3.0 * f2 + 1.0
        w1 = 3.0 * f2 - 2.0 * f3
        d0 = _PSF_STEP * (f3 - 2.0 * f2 + f)
        d1 = _PSF_STEP * (f3 - f2)
        table = _PSF_TABLE
        edge = w0 * table[i, 0] + w1 * table[i + 1, 0] + d0 * table[i, 1] + d1 * table[i + 1, 1]
        for k in range(n):
            i += step
            nxt = w0 * table[i, 0] + w1 * table[i + 1, 0] + d0 * table[i, 1] + d1 * table[i + 1, 1]
            out[k] = nxt - edge
            edge = nxt
        return
    edge = psf_half_cdf((-0.5 - kappa) * inv_sigma)
    for k in range(n):
        nxt = psf_half_cdf((k + 0.5 - kappa) * inv_sigma)
        out[k] = nxt - edge
        edge = nxt


#: Wings are drawn only where their brightest sample holds more than this fraction of the window's noise
#: (the background's Poisson and the read noise); fainter, their flux goes to the core, which changes each
#: sample by less than a tenth of its noise. At G 20 on the straylight the wings' brightest sample holds
#: ~0.2 e- against ~17 e- of noise; most windows (G > 18) skip the second profile, which costs ~12 % of
#: the rendering.
WING_NOISE_FRACTION = 0.1


@jit_inline
def wing_fraction_drawn(wing_fraction, wing_scale, sigma, flux, bg, read_noise):
    """The wing fraction a window is drawn with: ``wing_fraction``, or 0 when the wings' brightest sample
    (flux x fraction / (sqrt(2 pi) x their width)) is below :data:`WING_NOISE_FRACTION` of the noise."""
    peak = flux * wing_fraction / (2.5066282746310002 * sigma * wing_scale)
    return wing_fraction if peak > WING_NOISE_FRACTION * math.sqrt(bg + read_noise * read_noise) else 0.0


@jit_inline
def _lsf_profile(kappa, sigma, wing_fraction, wing_scale, out, wing):
    """The LSF integrated over each pixel of ``out``: a Gaussian core of width ``sigma`` holding
    1 - ``wing_fraction`` of the flux, and wings, a Gaussian ``wing_scale`` times wider, holding the rest
    (``wing`` is scratch space of the same length)."""
    _pixel_profile(kappa, 1.0 / sigma, out)
    if wing_fraction > 0.0:
        _pixel_profile(kappa, 1.0 / (sigma * wing_scale), wing)
        for k in range(out.shape[0]):
            out[k] = (1.0 - wing_fraction) * out[k] + wing_fraction * wing[k]


@jit
def _digitise(electrons, gain, bias, adc_max):
    adu = math.floor(electrons * gain + bias + 0.5)
    if adu < 0.0:
        return 0
    if adu > adc_max:
        return adc_max
    return int(adu)


# Draw-counter layout of a transit's window stream (key = stream_key(seed, transit_id)); strip j = 0 is
# the SM window, 1..9 AF1..AF9. Ranges never overlap, so adding a feature never shifts older draws:
#   [0, 16)                      AL placement jitter of strip j: counter j
#   [16, 32)                     AC placement jitter of strip j (2D windows): counter 16 + j
#   32                           AC sub-pixel phase of the transit (2D windows, when not given)
#   [64, 64 + 16 * 16)           cosmic rays of strip j: 16 counters from 64 + 16 j (_cosmic_hits)
#   [(j + 1) 2^20, (j + 2) 2^20) photon and read noise of strip j (variable count, far below 2^20)
# BP and RP spectra use their own keys (_render_spectra).
_STRIP_COUNTER = 1 << 20
AC_JITTER_COUNTER = 16
AC_PHASE_COUNTER = 32
_COSMIC_COUNTER = 64
_COSMIC_COUNTERS_PER_STRIP = 16
#: At most this many cosmic-ray hits per window (P(3 hits) ~ lam^3 / 6 ~ 1e-7 at lam = 0.014).
MAX_COSMIC_HITS = 2
_COSMIC_PER_HIT = 6


@jit
def _cosmic_hits(key, j, lam, n_al, n_ac, mpv_e, width_e, min_e, max_e, split_prob):
    """Cosmic-ray deposits in window ``j`` of a transit: up to 2 hits of 1-2 adjacent samples each.

    Draws come from the fixed counter block of strip ``j`` (a fixed number per strip, whatever happens),
    so they never shift the noise draws. The number of hits is Poisson(``lam``) by inversion (capped at
    :data:`MAX_COSMIC_HITS`); each deposit is Moyal distributed (a closed-form stand-in for Landau:
    ``X = -ln Z^2`` with Z standard normal by Box-Muller) as ``mpv_e + width_e X`` clipped to
    [``min_e``, ``max_e``], in a uniformly chosen sample (flat index ``al * n_ac + ac``); with
    probability ``split_prob`` a uniform fraction (0-50 %) goes to one of its 2 (1D) or 4 (2D) neighbours,
    and is lost when that neighbour is outside the window. Returns 4 (flat index, e-) pairs (index -1
    when unused) and the electrons deposited inside the window.
    """
    base = _COSMIC_COUNTER + _COSMIC_COUNTERS_PER_STRIP * j
    u = uniform(key, base)
    # P(no hit) = exp(-lam) >= 1 - lam: most windows (lam ~ 0.01) are decided without the exponential.
    if u <= 1.0 - lam:
        return -1, 0.0, -1, 0.0, -1, 0.0, -1, 0.0, 0.0
    p = math.exp(-lam)
    cdf = p
    n_hits = 0
    while u > cdf and n_hits < MAX_COSMIC_HITS:
        n_hits += 1
        p *= lam / n_hits
        cdf += p
    # Scalars, not lists: a list is a heap allocation per window (~80 ns, more than the rest of the draw).
    i0, e0, i1, e1 = _cosmic_hit(key, base + 1, n_al, n_ac, mpv_e, width_e, min_e, max_e, split_prob) \
        if n_hits >= 1 else (-1, 0.0, -1, 0.0)
    i2, e2, i3, e3 = _cosmic_hit(key, base + 1 + _COSMIC_PER_HIT, n_al, n_ac, mpv_e, width_e, min_e, max_e,
                                 split_prob) if n_hits >= 2 else (-1, 0.0, -1, 0.0)
    return i0, e0, i1, e1, i2, e2, i3, e3, e0 + e1 + e2 + e3


@jit
def _cosmic_hit(key, c, n_al, n_ac, mpv_e, width_e, min_e, max_e, split_prob):
    """One hit from the 6 counters from ``c``: (flat index, e-) of its sample and of the neighbour that
    shares its charge (index -1 and 0 e- when none, or when that neighbour is outside the window)."""
    z = math.sqrt(-2.0 * math.log(uniform(key, c))) * math.cos(2.0 * math.pi * uniform(key, c + 1))
    e = mpv_e - width_e * math.log(z * z + 1e-300)
    e = min(max(e, min_e), max_e)
    k = min(int(uniform(key, c + 2) * n_al), n_al - 1)
    ac = min(int(uniform(key, c + 3) * n_ac), n_ac - 1)
    us = uniform(key, c + 4)
    if us >= split_prob:
        return k * n_ac + ac, e, -1, 0.0
    frac = 1.0 - 0.5 * us / split_prob  # uniform in (0.5, 1]
    d = uniform(key, c + 5)
    n_dir = 4 if n_ac > 1 else 2
    which = min(int(d * n_dir), n_dir - 1)
    k2, l2 = k, ac
    if which == 0:
        k2 = k - 1
    elif which == 1:
        k2 = k + 1
    elif which == 2:
        l2 = ac - 1
    else:
        l2 = ac + 1
    if 0 <= k2 < n_al and 0 <= l2 < n_ac:
        return k * n_ac + ac, e * frac, k2 * n_ac + l2, e * (1.0 - frac)
    return k * n_ac + ac, e * frac, -1, 0.0


@jit
def _cosmic_at(p, i0, e0, i1, e1, i2, e2, i3, e3):
    """Electrons the cosmic-ray hits put in the sample of flat index ``p``."""
    extra = 0.0
    if p == i0:
        extra += e0
    if p == i1:
        extra += e1
    if p == i2:
        extra += e2
    if p == i3:
        extra += e3
    return extra


@jit_parallel
def _render_windows(seed, transit_id, flux_e, bg_e, centre_px, jitter_px, shift_px, cti_px, read_noise_e, sigma_px,
                    wing_fraction, wing_scale, gain, bias, adc_max, strip0, cosmic_lam, cosmic_params, blend_ratio,
                    blend_al_px, al_px_out, cosmic_e_out, adu_out):
    """Render the 1D windows of m transits over s strips of n samples each.

    ``centre_px`` (m,) is the image centre expected from the transit time; each strip adds a uniform
    placement error of +-``jitter_px`` and the true displacement ``shift_px`` (m, s) of the image (the
    instrument's geometry); the true centres go to ``al_px_out`` (m, s). The charge is recorded
    ``cti_px`` (m, s) further along scan (charge-transfer inefficiency). Per window (m, s): the image flux
    ``flux_e``, the LSF core's width ``sigma_px`` (its wings: ``wing_fraction`` of the flux in a Gaussian
    ``wing_scale`` times wider, :func:`_lsf_profile`), read noise ``read_noise_e`` (e-), ``gain``
    (ADU/e-) and ``bias`` (ADU); ``bg_e`` (m,) is the background per sample. The digitised samples (Poisson +
    Gaussian read noise + cosmic rays, gain, offset, ADC clip) go to ``adu_out`` (m, s, n). Strip ``j`` of
    the arrays is strip ``strip0 + j`` of the counter layout. ``cosmic_lam`` (m,) is the mean number of
    cosmic-ray hits per window, ``cosmic_params`` = (mpv_e, width_e, min_e, max_e, split_prob) (see
    :func:`_cosmic_hits`), and the deposited electrons go to ``cosmic_e_out`` (m, s). ``blend_ratio`` (m,): the
    flux of a second image in the window (a blend below the resolution limit, :mod:`gaiasim.sim.vpu`) over
    the first's, 0 for none; it lies ``blend_al_px`` (m,) further along scan and is drawn with the LSF core
    alone (:func:`_pixel_profile`). A window without one is drawn exactly as before blends existed.
    """
    m, s, n = adu_out.shape
    for i in numba.prange(m):
        key = stream_key(seed, transit_id[i])
        profile = np.empty(n)
        scratch = np.empty(n)
        second = np.zeros(n)
        for jj in range(s):
            j = strip0 + jj
            kappa = centre_px[i] + (2.0 * uniform(key, j) - 1.0) * jitter_px + shift_px[i, jj]
            al_px_out[i, jj] = kappa
            i0, e0, i1, e1, i2, e2, i3, e3, total = _cosmic_hits(
                key, j, cosmic_lam[i], n, 1, cosmic_params[0], cosmic_params[1], cosmic_params[2],
                cosmic_params[3], cosmic_params[4])
            cosmic_e_out[i, jj] = total
            counter = (j + 1) * _STRIP_COUNTER
            flux = flux_e[i, jj]
            noise = read_noise_e[i, jj]
            wings = wing_fraction_drawn(wing_fraction, wing_scale, sigma_px[i, jj], flux, bg_e[i], noise)
            _lsf_profile(kappa + cti_px[i, jj], sigma_px[i, jj], wings, wing_scale, profile, scratch)
            flux2 = flux * blend_ratio[i]
            if flux2 > 0.0:
                _pixel_profile(kappa + cti_px[i, jj] + blend_al_px[i], 1.0 / sigma_px[i, jj], second)
            for k in range(n):
                lam = bg_e[i] + flux * profile[k]
                if flux2 > 0.0:
                    lam += flux2 * second[k]
                e, counter = poisson(lam, key, counter)
                z, counter = normal(key, counter)
                e += noise * z
                if total > 0.0:
                    e += _cosmic_at(k, i0, e0, i1, e1, i2, e2, i3, e3)
                adu_out[i, jj, k] = _digitise(e, gain[i, jj], bias[i, jj], adc_max)


@jit_parallel
def _render_windows_2d(seed, transit_id, flux_e, bg_e, centre_px, ac_centre_px, jitter_px, ac_jitter_px, shift_px,
                       cti_px, read_noise_e, sigma_px, wing_fraction, wing_scale, gain, bias, adc_max, strip0,
                       cosmic_lam, cosmic_params, blend_ratio, blend_al_px, blend_ac_px, al_px_out, ac_px_out,
                       cosmic_e_out, adu_out):
    """Render the 2D (unbinned) windows of m transits over s strips of n_al x n_ac pixels.

    The PSF is a separable Gaussian core of ``sigma_px`` (m, s) AL and AC (each in its own pixel unit,
    docs/facts.md section 5) plus separable wings (``wing_fraction`` of the flux, ``wing_scale`` times wider),
    integrated over each pixel. ``centre_px`` and ``ac_centre_px`` (m,) are the
    expected centres in the window frame; each strip adds uniform placement errors of +-``jitter_px`` AL
    and +-``ac_jitter_px`` AC, and the true AL displacement ``shift_px``; CTI moves the recorded charge
    ``cti_px`` AL. ``bg_e`` is per pixel; the other per-window arrays are as in :func:`_render_windows`.
    A second image (``blend_ratio`` (m,) of the first's flux, 0 for none) lies ``blend_al_px`` and
    ``blend_ac_px`` (m,) from the first, drawn with the PSF core alone, as in :func:`_render_windows`.
    Outputs: centres ``al_px_out``/``ac_px_out`` (m, s), cosmic-ray electrons ``cosmic_e_out`` (m, s) and
    digitised pixels ``adu_out`` (m, s, n_al, n_ac). Strip ``j`` of the arrays is strip ``strip0 + j`` of
    the counter layout.
    """
    m, s, n_al, n_ac = adu_out.shape
    for i in numba.prange(m):
        key = stream_key(seed, transit_id[i])
        prof_al = np.empty(n_al)
        prof_ac = np.empty(n_ac)
        wing_al = np.zeros(n_al)
        wing_ac = np.zeros(n_ac)
        second_al = np.zeros(n_al)
        second_ac = np.zeros(n_ac)
        for jj in range(s):
            j = strip0 + jj
            kappa = centre_px[i] + (2.0 * uniform(key, j) - 1.0) * jitter_px + shift_px[i, jj]
            kappa_ac = ac_centre_px[i] + (2.0 * uniform(key, AC_JITTER_COUNTER + j) - 1.0) * ac_jitter_px
            al_px_out[i, jj] = kappa
            ac_px_out[i, jj] = kappa_ac
            i0, e0, i1, e1, i2, e2, i3, e3, total = _cosmic_hits(
                key, j, cosmic_lam[i], n_al, n_ac, cosmic_params[0], cosmic_params[1], cosmic_params[2],
                cosmic_params[3], cosmic_params[4])
            cosmic_e_out[i, jj] = total
            scale = 1.0 / sigma_px[i, jj]
            _pixel_profile(kappa + cti_px[i, jj], scale, prof_al)
            _pixel_profile(kappa_ac, scale, prof_ac)
            flux = flux_e[i, jj]
            noise = read_noise_e[i, jj]
            # The 2D wings spread over AC too: their brightest pixel is 1 / (sqrt(2 pi) width) of the 1D one.
            wings = wing_fraction_drawn(wing_fraction, wing_scale, sigma_px[i, jj] * sigma_px[i, jj] * wing_scale
                                        * 2.5066282746310002, flux, bg_e[i], noise)
            if wings > 0.0:
                _pixel_profile(kappa + cti_px[i, jj], scale / wing_scale, wing_al)
                _pixel_profile(kappa_ac, scale / wing_scale, wing_ac)
            flux2 = flux * blend_ratio[i]
            if flux2 > 0.0:
                _pixel_profile(kappa + cti_px[i, jj] + blend_al_px[i], scale, second_al)
                _pixel_profile(kappa_ac + blend_ac_px[i], scale, second_ac)
            counter = (j + 1) * _STRIP_COUNTER
            for k in range(n_al):
                for ac in range(n_ac):
                    psf = (1.0 - wings) * prof_al[k] * prof_ac[ac] + wings * wing_al[k] * wing_ac[ac]
                    lam = bg_e[i] + flux * psf
                    if flux2 > 0.0:
                        lam += flux2 * second_al[k] * second_ac[ac]
                    e, counter = poisson(lam, key, counter)
                    z, counter = normal(key, counter)
                    e += noise * z
                    if total > 0.0:
                        e += _cosmic_at(k * n_ac + ac, i0, e0, i1, e1, i2, e2, i3, e3)
                    adu_out[i, jj, k, ac] = _digitise(e, gain[i, jj], bias[i, jj], adc_max)


@jit_parallel
def _render_spectra(seed, stream, transit_id, flux_e, bg_e, shape, read_noise_e, gain, bias, adc_max, adu_out):
    """Render m dispersed spectra (BP or RP: ``stream`` separates their random streams) of profile
    ``shape`` (n,), total flux ``flux_e`` (m,) and background ``bg_e`` (m,) per sample."""
    m, n = adu_out.shape
    for i in numba.prange(m):
        key = stream_key(seed, transit_id[i]) ^ mix64(np.uint64(stream))
        counter = 0
        for k in range(n):
            e, counter = poisson(bg_e[i] + flux_e[i] * shape[k], key, counter)
            z, counter = normal(key, counter)
            adu_out[i, k] = _digitise(e + read_noise_e * z, gain, bias, adc_max)
