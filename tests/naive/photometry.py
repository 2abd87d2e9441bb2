"""Slow, obvious reference for ``pipeline.photometry`` (tests only): the spectrum fit with numpy, all
spectra at once (the production code before its numba kernel)."""

from __future__ import annotations

import numpy as np

from pipeline.calibration import Calibration
from pipeline.photometry import PASSES


def spectrum_fluxes(adu: np.ndarray, cal: Calibration, band: str) -> tuple[np.ndarray, np.ndarray]:
    counts = (np.asarray(adu, dtype=np.float64) - cal.bias_adu) / cal.gain_adu_per_e
    m, n = counts.shape
    p = cal.spectrum_profile(n)[None, :]
    var_extra = cal.var_extra_e2(band)
    model = np.maximum(counts, 0.0)
    flux = np.zeros(m)
    err = np.full(m, np.nan)
    for _ in range(PASSES):
        w = 1.0 / (np.maximum(model, 0.0) + var_extra)
        s_w, s_p, s_pp = w.sum(1), (w * p).sum(1), (w * p * p).sum(1)
        s_y, s_py = (w * counts).sum(1), (w * p * counts).sum(1)
        det = s_w * s_pp - s_p * s_p
        with np.errstate(divide="ignore", invalid="ignore"):
            flux = (s_w * s_py - s_p * s_y) / det
            bg = (s_pp * s_y - s_p * s_py) / det
            err = np.sqrt(s_w / det)
        model = bg[:, None] + flux[:, None] * p
    return flux, err
