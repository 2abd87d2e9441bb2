"""The true detection chain of the simulated instrument: gains, bias, read noise, LSF and throughput
(docs/instrument.md, section 3).

These are the values the simulator renders samples with. The pipeline under test has its own
calibration; the two agree only as far as both follow the published values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gaiasim.sim.instrument.focal_plane import AF_STRIPS


def _read_noise_e() -> dict[str, float]:
    """Total detection noise per sample, e- (Hambly+2018, A&A 616, A15, Table 1)."""
    return {"SM1": 10.8, "SM2": 10.8, "AF1": 8.6, **{strip: 4.3 for strip in AF_STRIPS[1:]}, "BP": 5.2, "RP": 4.75}


@dataclass(frozen=True)
class Electronics:
    #: Video-chain gain of the SM, AF, BP and RP CCDs, ADU per electron (Hambly+2018 Table 1).
    gain_adu_per_e: float = 0.258
    #: Electronic offset added before digitisation, ADU. Real offsets are per CCD and monitored from
    #: prescan bursts (EDR3 documentation section 3.3.2); the level is not published [U].
    bias_adu: float = 1000.0
    #: Total detection noise per sample and strip, e-.
    read_noise_e: dict[str, float] = field(default_factory=_read_noise_e)
    #: Width of the Gaussian line spread function, AL pixels: about 1 pixel AL and AC
    #: (de Bruijne+2015, A&A 576, A74, Fig. 5).
    lsf_sigma_px: float = 1.0
    #: Photometric zero points: magnitude of a source giving 1 e-/s (Gaia DR2 passbands; Evans+2018,
    #: A&A 616, A4, Table 3 [U: not re-read]).
    zero_point_g_mag: float = 25.6874
    zero_point_bp_mag: float = 25.3514
    zero_point_rp_mag: float = 24.7619
    #: BP/RP dispersed image along the 60 spectrum samples: a Gaussian of this centre and width, samples
    #: [U: a single shape for every colour].
    spectrum_centre_sample: float = 29.5
    spectrum_sigma_samples: float = 9.0

    def spectrum_profile(self, n_samples: int) -> np.ndarray:
        """Fraction of a BP or RP flux in each of ``n_samples`` spectrum samples (sums to 1)."""
        offset = np.arange(n_samples) - self.spectrum_centre_sample
        shape = np.exp(-0.5 * (offset / self.spectrum_sigma_samples) ** 2)
        return shape / shape.sum()


#: The simulated spacecraft's detection chain.
TRUE = Electronics()
