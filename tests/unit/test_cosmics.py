"""Cosmic-ray rejection of the IPD fits (pipeline.ipd ``cosmic_sigma``): hits are flagged and masked,
refitted centroids are unbiased, clean windows are almost never flagged."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import ipd
from pipeline.lsf import lsf_profile

# AF2-9 total detection noise and gain, Hambly+2018 Table 1; docs/facts.md section 2.
READ_NOISE_E = 4.3
GAIN_ADU_PER_E = 0.258
VAR_EXTRA_E2 = READ_NOISE_E**2 + (1.0 / GAIN_ADU_PER_E) ** 2 / 12.0


def robust_width(x):
    return 1.4826 * np.median(np.abs(x - np.median(x)))


def noisy(rng, expected):
    counts = rng.poisson(expected) + rng.normal(0.0, READ_NOISE_E, expected.shape)
    return np.round(counts * GAIN_ADU_PER_E) / GAIN_ADU_PER_E


def windows_1d(rng, m, n, flux_e, bg_e):
    kappa = (n - 1) / 2 + rng.uniform(-1.0, 1.0, m)
    expected = bg_e + flux_e[:, None] * lsf_profile(np.arange(n)[None, :] - kappa[:, None], 1.0)
    return noisy(rng, expected), kappa


def windows_2d(rng, m, flux_e, bg_e, n_al=18, n_ac=12):
    ka = (n_al - 1) / 2 + rng.uniform(-1.0, 1.0, m)
    kc = (n_ac - 1) / 2 + rng.uniform(-1.0, 1.0, m)
    expected = bg_e + flux_e[:, None, None] * lsf_profile(np.arange(n_al)[None, :, None] - ka[:, None, None], 1.0) \
        * lsf_profile(np.arange(n_ac)[None, None, :] - kc[:, None, None], 1.0)
    return noisy(rng, expected), ka, kc


def add_hits(rng, flat):
    """One hit per window (flat samples view (m, p)): 300-3000 e- (log-uniform), half of them shared with
    the next sample; returns the deposited electrons."""
    m, p = flat.shape
    dep = 10.0 ** rng.uniform(np.log10(300.0), np.log10(3000.0), m)
    k = rng.integers(0, p - 1, m)
    frac = np.where(rng.uniform(size=m) < 0.5, 1.0, rng.uniform(0.5, 1.0, m))
    rows = np.arange(m)
    flat[rows, k] += dep * frac
    flat[rows, k + 1] += dep * (1.0 - frac)
    return dep


def fit_1d(samples, cosmic_sigma=ipd.COSMIC_SIGMA):
    m, n = samples.shape
    return ipd.fit_images(samples, np.full(m, n, np.int32), np.full(m, VAR_EXTRA_E2), cosmic_sigma=cosmic_sigma)


@pytest.mark.parametrize("n", [12, 18])
def test_hit_windows_are_flagged_and_refitted_without_bias_1d(n):
    rng = np.random.default_rng(9100 + n)
    m = 20_000
    flux = 10.0 ** rng.uniform(2.7, 5.0, m)  # G ~ 20.5 to 15 over an ungated AF crossing
    samples, kappa = windows_1d(rng, m, n, flux, 26.0)
    add_hits(rng, samples)
    res = fit_1d(samples)
    flagged = (res["flags"] & ipd.FLAG_COSMIC) != 0
    assert flagged.mean() > 0.9, f"only {flagged.mean():.3f} of the hit windows flagged (want > 0.9)"
    ok = (res["flags"] & ~ipd.FLAG_COSMIC) == 0
    # Faint stars whose core the hit covers may lose their fit (outside window): a few per cent.
    assert ok.mean() > 0.97, f"only {ok.mean():.4f} fitted without other flags"
    pull = ((res["al_px"] - kappa) / res["al_px_err"])[ok]
    assert abs(np.median(pull)) < 0.05, f"al_px pull median {np.median(pull):.3f} on hit windows"
    assert abs(robust_width(pull) - 1.0) < 0.10, f"al_px pull width {robust_width(pull):.3f} on hit windows"


def test_hit_windows_are_flagged_and_refitted_without_bias_2d():
    rng = np.random.default_rng(9200)
    m = 6_000
    flux = 10.0 ** rng.uniform(3.0, 5.5, m)
    samples, ka, kc = windows_2d(rng, m, flux, 2.2)
    add_hits(rng, samples.reshape(m, -1))
    res = ipd.fit_images_2d(samples, np.full(m, VAR_EXTRA_E2), cosmic_sigma=ipd.COSMIC_SIGMA)
    flagged = (res["flags"] & ipd.FLAG_COSMIC) != 0
    assert flagged.mean() > 0.9, f"only {flagged.mean():.3f} of the hit windows flagged (want > 0.9)"
    ok = (res["flags"] & ~ipd.FLAG_COSMIC) == 0
    assert ok.mean() > 0.97
    for name, truth in (("al_px", ka), ("ac_px", kc)):
        pull = ((res[name] - truth) / res[name + "_err"])[ok]
        assert abs(np.median(pull)) < 0.05, f"{name} pull median {np.median(pull):.3f} on hit windows"
        assert abs(robust_width(pull) - 1.0) < 0.10, f"{name} pull width {robust_width(pull):.3f} on hit windows"


def test_clean_windows_are_almost_never_flagged():
    """False-flag rate < 1e-3 on 1e5 clean 1D windows (and 2e4 clean 2D windows)."""
    rng = np.random.default_rng(9300)
    m = 100_000
    flux = 10.0 ** rng.uniform(2.7, 5.5, m)
    n = rng.choice(np.array([12, 18]), m)
    samples = np.full((m, 18), np.nan)
    for size in (12, 18):
        sel = n == size
        samples[sel, :size] = windows_1d(rng, int(sel.sum()), size, flux[sel], 26.0)[0]
    res = ipd.fit_images(samples, n.astype(np.int32), np.full(m, VAR_EXTRA_E2), cosmic_sigma=ipd.COSMIC_SIGMA)
    rate = np.mean((res["flags"] & ipd.FLAG_COSMIC) != 0)
    assert rate < 1e-3, f"false cosmic flags on {rate:.2e} of clean 1D windows (want < 1e-3)"
    m2 = 20_000
    samples2 = windows_2d(rng, m2, 10.0 ** rng.uniform(3.0, 5.5, m2), 2.2)[0]
    res2 = ipd.fit_images_2d(samples2, np.full(m2, VAR_EXTRA_E2), cosmic_sigma=ipd.COSMIC_SIGMA)
    rate2 = np.mean((res2["flags"] & ipd.FLAG_COSMIC) != 0)
    assert rate2 < 1e-3, f"false cosmic flags on {rate2:.2e} of clean 2D windows (want < 1e-3)"


def test_mask_removes_a_sample_from_the_fit():
    """A masked sample contributes nothing: any value there gives the same fit."""
    rng = np.random.default_rng(9400)
    samples, _ = windows_1d(rng, 1, 18, np.array([2e4]), 26.0)
    mask = np.zeros((1, 18), np.uint8)
    mask[0, 7] = ipd.MASK_GIVEN
    a = ipd.fit_images(samples, np.array([18], np.int32), np.array([VAR_EXTRA_E2]), mask=mask)
    samples[0, 7] = 1e9
    b = ipd.fit_images(samples, np.array([18], np.int32), np.array([VAR_EXTRA_E2]), mask=mask)
    samples[0, 7] = np.nan
    c = ipd.fit_images_numpy(samples, np.array([18], np.int32), np.array([VAR_EXTRA_E2]), mask=mask)
    for name in ipd.OUTPUT_NAMES:
        assert a[name][0] == b[name][0], name
        np.testing.assert_allclose(c[name], a[name], rtol=1e-6, atol=1e-6, err_msg=name)
    assert a["flags"][0] == 0


def test_wrong_mask_raises_saying_how_to_fix():
    with pytest.raises(ValueError, match=r"astype\(np.uint8\)"):
        ipd.fit_images(np.zeros((2, 12)), np.full(2, 12, np.int32), np.ones(2), mask=np.zeros((2, 12), bool))
    with pytest.raises(ValueError, match="cosmic_sigma"):
        ipd.fit_images(np.zeros((2, 12)), np.full(2, 12, np.int32), np.ones(2), cosmic_sigma=-1.0)
