"""Properties of the IPD fit: numba == scipy reference, numba == numpy mirror, never raises."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pipeline import ipd
from pipeline.lsf import lsf_profile
from tests.naive.ipd import fit_window as naive_fit_window

# AF2-9 total detection noise and gain, Hambly+2018 Table 1; FACTS.md section 2.
READ_NOISE_E = 4.3
GAIN_ADU_PER_E = 0.258
VAR_EXTRA_E2 = READ_NOISE_E**2 + (1.0 / GAIN_ADU_PER_E) ** 2 / 12.0


@st.composite
def star_windows(draw):
    """One simulated AF window: n in {12, 18} (FACTS.md section 2), star within +-1.5 px of centre."""
    n = draw(st.sampled_from([12, 18]))
    flux_e = draw(st.floats(200.0, 1e6))
    bg_e = draw(st.floats(0.0, 100.0))
    kappa_px = (n - 1) / 2 + draw(st.floats(-1.5, 1.5))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    expected = bg_e + flux_e * lsf_profile(np.arange(n) - kappa_px, 1.0)
    samples = rng.poisson(expected) + rng.normal(0.0, READ_NOISE_E, n)
    return samples.astype(np.float64), kappa_px, flux_e


@st.composite
def window_batches(draw):
    """A batch of mixed 12- and 18-sample windows in one (m, 18) array, ADU-quantised, with padding."""
    m = draw(st.integers(1, 64))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = rng.choice(np.array([12, 18], dtype=np.int32), m)
    flux = 10.0 ** rng.uniform(2.0, 6.0, m)
    bg = rng.uniform(0.0, 100.0, m)
    kappa = (n - 1) / 2 + rng.uniform(-2.0, 2.0, m)
    expected = bg[:, None] + flux[:, None] * lsf_profile(np.arange(18)[None, :] - kappa[:, None], 1.0)
    counts = rng.poisson(expected) + rng.normal(0.0, READ_NOISE_E, expected.shape)
    samples = np.round(counts * GAIN_ADU_PER_E) / GAIN_ADU_PER_E
    samples[np.arange(18)[None, :] >= n[:, None]] = np.nan  # padding must never be read
    return samples, n, np.full(m, VAR_EXTRA_E2)


@settings(deadline=None, max_examples=50)
@given(star_windows())
def test_numba_fit_equals_naive_scipy_reference(window):
    samples, _, _ = window
    n = samples.size
    res = ipd.fit_images(samples[None, :], np.array([n], dtype=np.int32), np.array([VAR_EXTRA_E2]))
    ref = naive_fit_window(samples, VAR_EXTRA_E2)
    assert res["flags"][0] == 0, f"flags {res['flags'][0]:#b}"
    assert abs(res["al_px"][0] - ref["al_px"]) < 2e-3, f"al_px {res['al_px'][0]} vs reference {ref['al_px']}"
    assert abs(res["flux_e"][0] / ref["flux_e"] - 1.0) < 1e-3, f"flux_e {res['flux_e'][0]} vs {ref['flux_e']}"
    assert abs(res["bg_e"][0] - ref["bg_e"]) < 1e-3 * (1.0 + ref["bg_e_err"]) + 1e-3 * ref["flux_e"] / n
    for name in ("al_px_err", "flux_e_err", "bg_e_err"):
        assert abs(res[name][0] / ref[name] - 1.0) < 1e-2, f"{name} {res[name][0]} vs {ref[name]}"


@settings(deadline=None, max_examples=50)
@given(window_batches())
def test_numba_fit_equals_numpy_fit(batch):
    samples, n, var = batch
    fast = ipd.fit_images(samples, n, var)
    slow = ipd.fit_images_numpy(samples, n, var)
    np.testing.assert_array_equal(fast["flags"], slow["flags"])
    np.testing.assert_allclose(fast["al_px"], slow["al_px"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(fast["flux_e"], slow["flux_e"], rtol=1e-8)
    np.testing.assert_allclose(fast["bg_e"], slow["bg_e"], rtol=1e-8, atol=1e-6)
    for name in ("al_px_err", "flux_e_err", "bg_e_err", "chi2"):
        np.testing.assert_allclose(fast[name], slow[name], rtol=1e-6)


@settings(deadline=None, max_examples=50)
@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=20),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=64),
    ),
    st.floats(0.0, 1e4),
)
def test_fit_never_raises_on_any_data(samples, var_extra_e2):
    m, n_max = samples.shape
    n = np.full(m, n_max, dtype=np.int32)
    var = np.full(m, var_extra_e2)
    for fitter in (ipd.fit_images, ipd.fit_images_numpy):
        res = fitter(samples, n, var)
        assert res["flags"].shape == (m,)
        assert np.all((res["flags"] != 0) | np.isfinite(res["al_px"]))
        assert not np.any(res["flags"] & (ipd.FLAG_SATURATED | ipd.FLAG_COSMIC))
