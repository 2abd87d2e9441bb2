"""Numba kernels of the focal-plane signal: counter-based random numbers and window rendering.

Randomness is counter-based: every draw is a hash of (key, counter), the key derived from the seed and
the transit id. A window's noise therefore depends only on (seed, transit), never on how transits are
split over threads, slices or processes: generation is byte-identical whatever the parallelism.
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
        # Slow path (about 1 draw in 10): the exact acceptance test.
        lhs = math.log(v) + math.log(1.1239 + 1.1328 / (b - 3.4)) - math.log(a / (us * us) + b)
        if lhs <= -lam + k * math.log(lam) - math.lgamma(k + 1.0):
            return k, counter


@jit
def _digitise(electrons, gain, bias, adc_max):
    adu = math.floor(electrons * gain + bias + 0.5)
    if adu < 0.0:
        return 0
    if adu > adc_max:
        return adc_max
    return int(adu)


# Draw-counter layout per transit stream: jitter draws first, then 2^20 draws per strip.
_STRIP_COUNTER = 1 << 20


@jit_parallel
def _render_windows(seed, transit_id, flux_e, bg_e, centre_px, jitter_px, read_noise_e, sigma_px, gain, bias,
                    adc_max, al_px_out, adu_out):
    """Render the 1D windows of m transits over s strips of n samples each.

    ``centre_px`` (m,) is the image centre expected from the transit time; each strip adds a uniform
    placement error of +-``jitter_px``; the simulated centres go to ``al_px_out`` (m, s) and the
    digitised samples (Poisson + Gaussian read noise, gain, offset, ADC clip) to ``adu_out`` (m, s, n).
    """
    m, s, n = adu_out.shape
    for i in numba.prange(m):
        key = stream_key(seed, transit_id[i])
        for j in range(s):
            kappa = centre_px[i] + (2.0 * uniform(key, j) - 1.0) * jitter_px
            al_px_out[i, j] = kappa
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
                    adu_out[i, j, kk] = _digitise(e, gain, bias, adc_max)


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
