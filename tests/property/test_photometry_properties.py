"""The BP/RP spectrum-fit kernel against its numpy reference (tests/naive/photometry.py)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pipeline import icd, photometry
from pipeline.calibration import DEFAULT as CAL
from tests.naive import photometry as naive


@st.composite
def spectra(draw):
    """Realistic spectra (a star of 10..1e6 e- over a background, with noise), or any ADU at all."""
    m = draw(st.integers(0, 40))
    if draw(st.booleans()):
        return draw(hnp.arrays(np.uint16, (m, icd.SPECTRUM_SAMPLES)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    flux = 10.0 ** rng.uniform(1, 6, m)
    e = rng.uniform(0, 50, m)[:, None] + flux[:, None] * CAL.spectrum_profile(icd.SPECTRUM_SAMPLES)[None, :]
    e = rng.poisson(e) + rng.normal(0, 5, e.shape)
    return np.clip(np.round(e * CAL.gain_adu_per_e + CAL.bias_adu), 0, icd.ADC_MAX_ADU).astype(np.uint16)


@settings(deadline=None, max_examples=80)
@given(spectra(), st.sampled_from(["BP", "RP"]))
def test_spectrum_fit_kernel_equals_numpy_reference(adu, band):
    with np.errstate(all="ignore"):
        want = naive.spectrum_fluxes(adu, CAL, band)
    got = photometry.spectrum_fluxes(adu.astype(">u2"), CAL, band)  # as packets carry them: big-endian
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape == (len(adu),)
        np.testing.assert_array_equal(np.isfinite(g), np.isfinite(w))
        ok = np.isfinite(w)
        np.testing.assert_allclose(g[ok], w[ok], rtol=1e-9, atol=1e-6)  # e-: sums of ~1e4 e- round at 1e-9
