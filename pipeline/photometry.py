"""BP and RP photometry from the dispersed spectra (docs/facts.md section 4: spectro-photometric image
parameters, preliminary in IDT).

Each 60-sample spectrum is fitted with the calibration's dispersed profile ``p`` plus a flat background:
``E_k = b + F p_k``, a weighted linear least-squares fit with Poisson + read-noise + quantisation
weights, iterated so the weights follow the model (three passes); a numba kernel over spectra
(``pipeline.kernels.photometry``; its numpy reference is ``tests/naive/photometry.py``).
"""

from __future__ import annotations

import numpy as np

from pipeline.calibration import Calibration
from pipeline.kernels import photometry as _k

PASSES = 3


def spectrum_fluxes(adu: np.ndarray, cal: Calibration, band: str) -> tuple[np.ndarray, np.ndarray]:
    """(flux_e, flux_err_e) of each spectrum (m, n) of ``band`` ('BP' or 'RP'), in parallel (numba)."""
    adu = np.ascontiguousarray(adu, dtype=np.uint16)  # packets carry big-endian uint16: native for numba
    profile = np.ascontiguousarray(cal.spectrum_profile(adu.shape[1]), dtype=np.float64)
    return _k.spectrum_fits(adu, float(cal.bias_adu), float(cal.gain_adu_per_e), profile,
                            float(cal.var_extra_e2(band)), PASSES)


def magnitudes(flux_e: np.ndarray, flux_err_e: np.ndarray, integration_s: np.ndarray,
               zero_point_mag: float) -> tuple[np.ndarray, np.ndarray]:
    """(mag, mag_err) from fluxes in e- over ``integration_s``; NaN where the flux is not positive."""
    ok = np.isfinite(flux_e) & (flux_e > 0)
    safe = np.where(ok, flux_e, 1.0)
    mag = np.where(ok, zero_point_mag - 2.5 * np.log10(safe / integration_s), np.nan)
    return mag, np.where(ok, 2.5 / np.log(10.0) * flux_err_e / safe, np.nan)
