"""Calibration constants of the instrument: the ground segment's pre-launch calibration database.

IDT uses the pre-launch gains (docs/facts.md section 4). The simulated instrument has its own values and
imperfections (gaiasim/sim/instrument, docs/instrument.md), and each dataset carries a measured calibration
(calibration/ccd.parquet, read by pipeline.ccdcal); these are the nominal values used without one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline import geometry


def _read_noise() -> dict[str, float]:
    # Total detection noise per sample, Hambly+2018 Table 1 (docs/facts.md section 2).
    noise = {"SM1": 10.8, "SM2": 10.8, "AF1": 8.6, "BP": 5.2, "RP": 4.75}
    noise.update({name: 4.3 for name in geometry.AF_STRIPS[1:]})
    return noise


@dataclass(frozen=True)
class Calibration:
    #: Video-chain gain, ADU per electron, SM/AF/BP/RP (Hambly+2018 Table 1; docs/facts.md section 2).
    gain_adu_per_e: float = 0.258
    #: Electronic offset added before digitisation, ADU [U placeholder; real offsets are per CCD and
    #: monitored from prescan bursts, docs/facts.md section 8].
    bias_adu: float = 1000.0
    #: Read (total detection) noise per sample and strip, e-.
    read_noise_e: dict[str, float] = field(default_factory=_read_noise)
    #: Gaussian LSF width, AL pixels (de Bruijne+2015 Fig. 5; docs/facts.md section 5).
    lsf_sigma_px: float = 1.0
    #: Photometric zero points, mag for 1 e-/s (Gaia DR2 passbands, Evans+2018 [U: not in docs/facts.md]).
    zero_point_g_mag: float = 25.6874
    zero_point_bp_mag: float = 25.3514
    zero_point_rp_mag: float = 24.7619
    #: BP/RP dispersed image profile along the 60 spectrum samples: a Gaussian of this centre and width,
    #: samples [U: Gaia's spectra are calibrated per source colour; one shape serves here].
    spectrum_centre_sample: float = 29.5
    spectrum_sigma_samples: float = 9.0

    def spectrum_profile(self, n_samples: int) -> np.ndarray:
        """Fraction of a BP or RP flux in each of the ``n_samples`` spectrum samples (sums to 1)."""
        x = (np.arange(n_samples) - self.spectrum_centre_sample) / self.spectrum_sigma_samples
        shape = np.exp(-0.5 * x * x)
        return shape / shape.sum()

    def var_extra_e2(self, strip: str) -> float:
        """Variance added to the Poisson term per sample: read noise plus ADU quantisation (1/12 ADU^2)."""
        return self.read_noise_e[strip] ** 2 + (1.0 / self.gain_adu_per_e) ** 2 / 12.0


DEFAULT = Calibration()
