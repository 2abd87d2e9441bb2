"""Numba kernels of the procedural sky: sources of a pixel from its own counter-based random stream."""

from __future__ import annotations

import math

import numba
import numpy as np

from gaiasim.sim.jit import jit, jit_parallel
from gaiasim.sim.kernels_random import normal, poisson, stream_key, uniform

#: Draws 0 .. 2^20 - 1 of a pixel's stream decide its source count; the sources use the draws after.
_SOURCE_COUNTER = 1 << 20


@jit
def pixel_bounds(pixel, n_z, n_ra):
    """The equal-area pixel ``pixel`` of ``n_z`` bands in z = sin(dec) by ``n_ra`` cells in ra: (z0, z1, ra0, ra1),
    ra in radians."""
    band, cell = pixel // n_ra, pixel % n_ra
    return (-1.0 + 2.0 * band / n_z, -1.0 + 2.0 * (band + 1) / n_z, 2.0 * math.pi * cell / n_ra,
            2.0 * math.pi * (cell + 1) / n_ra)


@jit_parallel
def _count_sources(seed, pixels, mean_per_pixel, counts):
    """Number of sources of each pixel: Poisson of the pixel's mean, from the pixel's stream."""
    for i in numba.prange(pixels.shape[0]):
        n, _ = poisson(mean_per_pixel[pixels[i]], stream_key(seed, pixels[i]), 0)
        counts[i] = np.int64(n)


@jit_parallel
def _fill_sources(seed, pixels, offsets, n_z, n_ra, log_n, g_of_log_n, colour_mean, colour_sigma, colour_min,
                  colour_max, z_out, ra_out, g_out, bp_rp_out):
    """Positions (uniform in z = sin dec and ra inside the equal-area pixel), G by inverting the
    cumulative counts (log-linear), and BP-RP of the sources of each pixel."""
    two_pi = 2.0 * math.pi
    for i in numba.prange(pixels.shape[0]):
        pixel = pixels[i]
        key = stream_key(seed, pixel)
        z0, _z1, ra0, _ra1 = pixel_bounds(pixel, n_z, n_ra)
        counter = _SOURCE_COUNTER
        for j in range(offsets[i], offsets[i + 1]):
            z_out[j] = z0 + (2.0 / n_z) * uniform(key, counter)
            ra_out[j] = ra0 + (two_pi / n_ra) * uniform(key, counter + 1)
            target = math.log10(uniform(key, counter + 2)) + log_n[-1]
            g_out[j] = np.interp(max(target, log_n[0]), log_n, g_of_log_n)
            c, counter = normal(key, counter + 3)
            bp_rp_out[j] = min(max(colour_mean + colour_sigma * c, colour_min), colour_max)
