"""Numba kernels of the focal-plane signal: counter-based random numbers and window rendering.

Randomness is counter-based: every draw is a hash of (key, counter), the key derived from the seed and
the transit id (counter layout above :func:`_render_windows`). A window's noise therefore depends only
on (seed, transit), never on how transits are split over threads, slices or processes: generation is
byte-identical whatever the parallelism.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from pipeline.kernels import jit, jit_parallel

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO_M53 = 1.0 / 9007199254740992.0


@jit
def mix64(z):
    """SplitMix64 finaliser (Steele, Lea & Flood 2014): a bijective 64-bit hash."""
    z = np.uint64(z)
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@jit
def stream_key(seed, item):
    """Key of the random stream of ``item`` (e.g. a transit id) under ``seed``."""
    return mix64(mix64(np.uint64(seed) + _GOLDEN) ^ np.uint64(item))


@jit
def uniform(key, counter):
    """Uniform in (0, 1) from draw number ``counter`` of stream ``key``."""
    z = mix64(key + np.uint64(counter) * _GOLDEN)
    return (np.float64(z >> np.uint64(11)) + 0.5) * _TWO_M53


@jit
def normal_pair(key, counter):
    """Two independent standard normals and the next counter (Marsaglia's polar method)."""
    while True:
        x = 2.0 * uniform(key, counter) - 1.0
        y = 2.0 * uniform(key, counter + 1) - 1.0
        counter += 2
        r2 = x * x + y * y
        if 0.0 < r2 < 1.0:
            f = math.sqrt(-2.0 * math.log(r2) / r2)
            return x * f, y * f, counter


_LOG_FACTORIAL_TABLE = np.array([math.lgamma(k + 1.0) for k in range(16)])
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@jit
def log_factorial(k):
    """``ln k!`` of a whole number ``k >= 0`` (float): a table below 16, else Stirling's series to 1/x^7
    (truncation below 1e-15 relative), as numpy's ``random_loggam``."""
    if k < 16.0:
        return _LOG_FACTORIAL_TABLE[int(k)]
    x = k + 1.0
    r = 1.0 / (x * x)
    series = (1.0 / 12.0 - r * (1.0 / 360.0 - r * (1.0 / 1260.0 - r / 1680.0))) / x
    return (x - 0.5) * math.log(x) - x + _HALF_LOG_2PI + series


@jit
def poisson(lam, key, counter):
    """Poisson deviate of mean ``lam``; returns (value, next counter).

    Inversion below 10, else Hormann's PTRS transformed rejection (1993), as in numpy's generator.
    """
    if lam <= 0.0:
        return 0.0, counter
    if lam < 10.0:
        u = uniform(key, counter)
        counter += 1
        p = math.exp(-lam)
        f = p
        k = 0
        while u > f and k < 1000:
            k += 1
            p *= lam / k
            f += p
        return float(k), counter
    b = 0.931 + 2.53 * math.sqrt(lam)
    a = -0.059 + 0.02483 * b
    vr = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        u = uniform(key, counter) - 0.5
        v = uniform(key, counter + 1)
        counter += 2
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return k, counter
        if k < 0.0 or (us < 0.013 and v > us):
            continue
        # Slow path (about 1 draw in 2 at lam ~ 30, 1 in 5 at lam ~ 3000): the exact acceptance test, with
        # one log on the left and a Stirling log-factorial on the right (libm's lgamma is ~3x slower).
        lhs = math.log(v * (1.1239 + 1.1328 / (b - 3.4)) / (a / (us * us) + b))
        if lhs <= -lam + k * math.log(lam) - log_factorial(k):
            return k, counter


@jit
def uniform_array(seed, transit_id, counter):
    """Draw ``counter`` of the window stream of each transit: uniforms in (0, 1), shape of ``transit_id``."""
    out = np.empty(transit_id.shape[0])
    for i in range(transit_id.shape[0]):
        out[i] = uniform(stream_key(seed, transit_id[i]), counter)
    return out


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
    p = math.exp(-lam)
    cdf = p
    n_hits = 0
    while u > cdf and n_hits < MAX_COSMIC_HITS:
        n_hits += 1
        p *= lam / n_hits
        cdf += p
    idx = [-1, -1, -1, -1]
    dep = [0.0, 0.0, 0.0, 0.0]
    total = 0.0
    for h in range(n_hits):
        c = base + 1 + _COSMIC_PER_HIT * h
        z = math.sqrt(-2.0 * math.log(uniform(key, c))) * math.cos(2.0 * math.pi * uniform(key, c + 1))
        e = mpv_e - width_e * math.log(z * z + 1e-300)
        e = min(max(e, min_e), max_e)
        k = min(int(uniform(key, c + 2) * n_al), n_al - 1)
        ac = min(int(uniform(key, c + 3) * n_ac), n_ac - 1)
        us = uniform(key, c + 4)
        frac = 1.0
        if us < split_prob:
            frac = 1.0 - 0.5 * us / split_prob  # uniform in (0.5, 1]
        idx[2 * h] = k * n_ac + ac
        dep[2 * h] = e * frac
        total += e * frac
        if frac < 1.0:
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
                idx[2 * h + 1] = k2 * n_ac + l2
                dep[2 * h + 1] = e * (1.0 - frac)
                total += e * (1.0 - frac)
    return idx[0], dep[0], idx[1], dep[1], idx[2], dep[2], idx[3], dep[3], total


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
def _render_windows(seed, transit_id, flux_e, bg_e, centre_px, jitter_px, read_noise_e, sigma_px, gain, bias,
                    adc_max, strip0, cosmic_lam, cosmic_params, al_px_out, cosmic_e_out, adu_out):
    """Render the 1D windows of m transits over s strips of n samples each.

    ``centre_px`` (m,) is the image centre expected from the transit time; each strip adds a uniform
    placement error of +-``jitter_px``; the simulated centres go to ``al_px_out`` (m, s) and the
    digitised samples (Poisson + Gaussian read noise + cosmic rays, gain, offset, ADC clip) to ``adu_out``
    (m, s, n). Strip ``j`` of the arrays is strip ``strip0 + j`` of the counter layout (and of
    ``read_noise_e``). ``cosmic_lam`` (m,) is the mean number of cosmic-ray hits per window,
    ``cosmic_params`` = (mpv_e, width_e, min_e, max_e, split_prob) (see :func:`_cosmic_hits`), and the
    deposited electrons go to ``cosmic_e_out`` (m, s).
    """
    m, s, n = adu_out.shape
    for i in numba.prange(m):
        key = stream_key(seed, transit_id[i])
        for jj in range(s):
            j = strip0 + jj
            kappa = centre_px[i] + (2.0 * uniform(key, j) - 1.0) * jitter_px
            al_px_out[i, jj] = kappa
            i0, e0, i1, e1, i2, e2, i3, e3, total = _cosmic_hits(
                key, j, cosmic_lam[i], n, 1, cosmic_params[0], cosmic_params[1], cosmic_params[2],
                cosmic_params[3], cosmic_params[4])
            cosmic_e_out[i, jj] = total
            counter = (j + 1) * _STRIP_COUNTER
            # Neighbouring samples share a pixel edge: n + 1 erf evaluations per window.
            scale = 1.0 / (sigma_px * math.sqrt(2.0))
            edge = 0.5 * math.erf((-0.5 - kappa) * scale)
            for k in range(0, n, 2):
                z0, z1, counter = normal_pair(key, counter)
                for kk in range(k, min(k + 2, n)):
                    nxt = 0.5 * math.erf((kk + 0.5 - kappa) * scale)
                    e, counter = poisson(bg_e[i] + flux_e[i] * (nxt - edge), key, counter)
                    edge = nxt
                    e += read_noise_e[j] * (z0 if kk == k else z1)
                    if total > 0.0:
                        e += _cosmic_at(kk, i0, e0, i1, e1, i2, e2, i3, e3)
                    adu_out[i, jj, kk] = _digitise(e, gain, bias, adc_max)


@jit_parallel
def _render_windows_2d(seed, transit_id, flux_e, bg_e, centre_px, ac_centre_px, jitter_px, ac_jitter_px,
                       read_noise_e, sigma_al_px, sigma_ac_px, gain, bias, adc_max, strip0, cosmic_lam,
                       cosmic_params, al_px_out, ac_px_out, cosmic_e_out, adu_out):
    """Render the 2D (unbinned) windows of m transits over s strips of n_al x n_ac pixels.

    The PSF is separable: a Gaussian of ``sigma_al_px`` AL and ``sigma_ac_px`` AC (each in its own pixel
    unit, FACTS.md section 5) integrated over each pixel. ``centre_px`` and ``ac_centre_px`` (m,) are the
    expected centres in the window frame; each strip adds uniform placement errors of +-``jitter_px`` AL
    and +-``ac_jitter_px`` AC. ``bg_e`` is per pixel. Outputs: centres ``al_px_out``/``ac_px_out`` (m, s),
    cosmic-ray electrons ``cosmic_e_out`` (m, s) and digitised pixels ``adu_out`` (m, s, n_al, n_ac).
    Strip ``j`` of the arrays is strip ``strip0 + j`` of the counter layout and of ``read_noise_e``.
    """
    m, s, n_al, n_ac = adu_out.shape
    scale_al = 1.0 / (sigma_al_px * math.sqrt(2.0))
    scale_ac = 1.0 / (sigma_ac_px * math.sqrt(2.0))
    npx = n_al * n_ac
    for i in numba.prange(m):
        key = stream_key(seed, transit_id[i])
        prof_al = np.empty(n_al)
        prof_ac = np.empty(n_ac)
        for jj in range(s):
            j = strip0 + jj
            kappa = centre_px[i] + (2.0 * uniform(key, j) - 1.0) * jitter_px
            kappa_ac = ac_centre_px[i] + (2.0 * uniform(key, AC_JITTER_COUNTER + j) - 1.0) * ac_jitter_px
            al_px_out[i, jj] = kappa
            ac_px_out[i, jj] = kappa_ac
            i0, e0, i1, e1, i2, e2, i3, e3, total = _cosmic_hits(
                key, j, cosmic_lam[i], n_al, n_ac, cosmic_params[0], cosmic_params[1], cosmic_params[2],
                cosmic_params[3], cosmic_params[4])
            cosmic_e_out[i, jj] = total
            edge = 0.5 * math.erf((-0.5 - kappa) * scale_al)
            for k in range(n_al):
                nxt = 0.5 * math.erf((k + 0.5 - kappa) * scale_al)
                prof_al[k] = nxt - edge
                edge = nxt
            edge = 0.5 * math.erf((-0.5 - kappa_ac) * scale_ac)
            for k in range(n_ac):
                nxt = 0.5 * math.erf((k + 0.5 - kappa_ac) * scale_ac)
                prof_ac[k] = nxt - edge
                edge = nxt
            counter = (j + 1) * _STRIP_COUNTER
            for p in range(0, npx, 2):
                z0, z1, counter = normal_pair(key, counter)
                for pp in range(p, min(p + 2, npx)):
                    k = pp // n_ac
                    ac = pp - k * n_ac
                    e, counter = poisson(bg_e[i] + flux_e[i] * prof_al[k] * prof_ac[ac], key, counter)
                    e += read_noise_e[j] * (z0 if pp == p else z1)
                    if total > 0.0:
                        e += _cosmic_at(pp, i0, e0, i1, e1, i2, e2, i3, e3)
                    adu_out[i, jj, k, ac] = _digitise(e, gain, bias, adc_max)


@jit_parallel
def _render_spectra(seed, stream, transit_id, flux_e, bg_e, shape, read_noise_e, gain, bias, adc_max, adu_out):
    """Render m dispersed spectra (BP or RP: ``stream`` separates their random streams) of profile
    ``shape`` (n,), total flux ``flux_e`` (m,) and background ``bg_e`` (m,) per sample."""
    m, n = adu_out.shape
    for i in numba.prange(m):
        key = stream_key(seed, transit_id[i]) ^ mix64(np.uint64(stream))
        counter = 0
        for k in range(0, n, 2):
            z0, z1, counter = normal_pair(key, counter)
            for kk in range(k, min(k + 2, n)):
                e, counter = poisson(bg_e[i] + flux_e[i] * shape[kk], key, counter)
                e += read_noise_e * (z0 if kk == k else z1)
                adu_out[i, kk] = _digitise(e, gain, bias, adc_max)
