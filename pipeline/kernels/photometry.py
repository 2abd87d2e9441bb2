"""Private numba kernel of the BP/RP spectrum fit (see ``pipeline.photometry``; numpy reference in
``tests/naive/photometry.py``)."""

from __future__ import annotations

import numba
import numpy as np

import pipeline.kernels as kmath
from pipeline.kernels import jit_parallel


@jit_parallel
def spectrum_fits(adu, bias_adu, gain_adu_per_e, profile, var_extra_e2, passes):
    """Flux and its error (e-) of each spectrum (row of ``adu``, (m, n) ADU, any numeric type): the weighted
    linear fit of ``b + F profile`` with weights ``1 / (max(model, 0) + var_extra_e2)``, the model starting
    at the counts clipped at 0, refitted ``passes`` times. NaN where the normal equations are singular.
    Nothing is allocated per spectrum: the model of a pass is that of the previous pass's ``(b, F)``."""
    m, n = adu.shape
    flux = np.empty(m)
    err = np.empty(m)
    to_e = 1.0 / gain_adu_per_e
    for i in numba.prange(m):
        f = b = 0.0
        e = np.nan
        for p in range(passes):
            s_w = s_p = s_pp = s_y = s_py = 0.0
            for k in range(n):
                counts = (adu[i, k] - bias_adu) * to_e
                model = max(counts, 0.0) if p == 0 else b + f * profile[k]
                w = 1.0 / (max(model, 0.0) + var_extra_e2)
                wp = w * profile[k]
                s_w += w
                s_p += wp
                s_pp += wp * profile[k]
                s_y += w * counts
                s_py += wp * counts
            det = s_w * s_pp - s_p * s_p
            if det != 0.0:
                f = (s_w * s_py - s_p * s_y) / det
                b = (s_pp * s_y - s_p * s_py) / det
                ratio = s_w / det
                e = kmath.sqrt(ratio) if ratio >= 0.0 else np.nan
            else:
                f = b = e = np.nan
        flux[i] = f
        err[i] = e
    return flux, err
