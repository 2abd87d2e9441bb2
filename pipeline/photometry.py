"""BP and RP photometry from the dispersed spectra (FACTS.md section 4: spectro-photometric image
parameters, preliminary in IDT).

Each 60-sample spectrum is fitted with the calibration's dispersed profile ``p`` plus a flat background:
``E_k = b + F p_k``, a weighted linear least-squares fit with Poisson + read-noise + quantisation
weights, iterated so the weights follow the model (three passes). Vectorised over spectra.
"""

from __future__ import annotations

import numpy as np

from pipeline.calibration import Calibration

PASSES = 3


def spectrum_fluxes(adu: np.ndarray, cal: Calibration, band: str) -> tuple[np.ndarray, np.ndarray]:
    """(flux_e, flux_err_e) of each spectrum (m, n) of ``band`` ('BP' or 'RP')."""
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


def magnitudes(flux_e: np.ndarray, flux_err_e: np.ndarray, integration_s: np.ndarray,
               zero_point_mag: float) -> tuple[np.ndarray, np.ndarray]:
    """(mag, mag_err) from fluxes in e- over ``integration_s``; NaN where the flux is not positive."""
    ok = np.isfinite(flux_e) & (flux_e > 0)
    safe = np.where(ok, flux_e, 1.0)
    mag = np.where(ok, zero_point_mag - 2.5 * np.log10(safe / integration_s), np.nan)
    return mag, np.where(ok, 2.5 / np.log(10.0) * flux_err_e / safe, np.nan)
