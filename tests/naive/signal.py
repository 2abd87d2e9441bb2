"""Slow, obvious reference for the mean of a rendered window (gaiasim.sim.kernels_signal._render_windows and
_render_windows_2d): the expected electrons of each sample, before Poisson noise, read noise and digitisation.

A Gaussian PSF of width sigma integrated over each pixel (scipy.special.ndtr, independent of the kernels'
tabulated profile) for the first image, at its centre plus the window's CTI shift, and for a second image
(a blend below the resolution limit, gaiasim.sim.vpu) ``ratio`` times as bright, ``d_al`` (and ``d_ac``)
pixels further, on a flat background. No LSF wings (the kernels draw the second image with the core alone).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr


def pixel_fractions(n: int, centre_px: float, sigma_px: float) -> np.ndarray:
    """Fraction of an image centred at ``centre_px`` in each of ``n`` pixels (pixel k spans [k - 0.5, k + 0.5))."""
    k = np.arange(n, dtype=np.float64)
    return ndtr((k + 0.5 - centre_px) / sigma_px) - ndtr((k - 0.5 - centre_px) / sigma_px)


def window_mean_1d(n: int, centre_px: float, cti_px: float, sigma_px: float, flux_e: float, bg_e: float,
                   ratio: float, d_al_px: float) -> np.ndarray:
    """Expected electrons of the n samples of a 1D window."""
    kappa = centre_px + cti_px
    mean = bg_e + flux_e * pixel_fractions(n, kappa, sigma_px)
    if ratio > 0:
        mean = mean + ratio * flux_e * pixel_fractions(n, kappa + d_al_px, sigma_px)
    return mean


def window_mean_2d(n_al: int, n_ac: int, centre_px: float, ac_centre_px: float, cti_px: float, sigma_px: float,
                   flux_e: float, bg_e: float, ratio: float, d_al_px: float, d_ac_px: float) -> np.ndarray:
    """Expected electrons of the (n_al, n_ac) pixels of a 2D window (``bg_e`` per pixel)."""
    kappa = centre_px + cti_px
    mean = bg_e + flux_e * np.outer(pixel_fractions(n_al, kappa, sigma_px),
                                    pixel_fractions(n_ac, ac_centre_px, sigma_px))
    if ratio > 0:
        mean = mean + ratio * flux_e * np.outer(pixel_fractions(n_al, kappa + d_al_px, sigma_px),
                                                pixel_fractions(n_ac, ac_centre_px + d_ac_px, sigma_px))
    return mean
