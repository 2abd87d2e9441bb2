"""Unit tests of the LSF (pipeline.lsf) and the IPD fit (pipeline.ipd)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline import ipd
from pipeline.io import InputError
from pipeline.lsf import (
    erf_array,
    lsf_d2kappa,
    lsf_dkappa,
    lsf_edge,
    lsf_profile,
    lsf_table_array,
    lsf_value,
    lsf_walk,
    lsf_walk_edge,
    read_lsf_table,
)

# AF2-9 total detection noise and SM/AF/BP/RP gain, Hambly+2018 Table 1; docs/facts.md section 2.
READ_NOISE_E = 4.3
GAIN_ADU_PER_E = 0.258
VAR_EXTRA_E2 = READ_NOISE_E**2 + (1.0 / GAIN_ADU_PER_E) ** 2 / 12.0


def simulate_windows(rng, flux_e, bg_e, kappa_px, n):
    """Windows of n samples (e-): Poisson + Gaussian read noise, quantised to ADU and converted back."""
    k = np.arange(n)
    expected = bg_e[:, None] + flux_e[:, None] * lsf_profile(k[None, :] - kappa_px[:, None], 1.0)
    counts = rng.poisson(expected) + rng.normal(0.0, READ_NOISE_E, expected.shape)
    return np.round(counts * GAIN_ADU_PER_E) / GAIN_ADU_PER_E


def fit(samples_e, n=None, var=VAR_EXTRA_E2):
    samples_e = np.atleast_2d(np.asarray(samples_e, dtype=np.float64))
    m, n_max = samples_e.shape
    n_samples = np.full(m, n_max if n is None else n, dtype=np.int32)
    return ipd.fit_images(samples_e, n_samples, np.full(m, var))


# --- LSF -------------------------------------------------------------------------------------------


def test_erf_array_matches_math_erf():
    x = np.concatenate([np.linspace(-7.0, 7.0, 20001), [-40.0, 40.0, 0.46875, 4.0]])
    expected = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(erf_array(x), expected, rtol=2e-15, atol=1e-16)
    assert np.isnan(erf_array(np.array([np.nan])))[0]


@pytest.mark.parametrize("sigma_px", [0.7, 1.0, 1.6])
def test_lsf_profile_is_a_normalised_symmetric_pixel_integral(sigma_px):
    x = np.arange(-30, 31, dtype=np.float64)
    prof = lsf_profile(x, sigma_px)
    assert prof.sum() == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_allclose(prof, prof[::-1], atol=1e-16)
    # A centred image in a 12-sample window sits at kappa = (n - 1) / 2 = 5.5 (frame convention).
    centred = lsf_profile(np.arange(12) - 5.5, sigma_px)
    np.testing.assert_allclose(centred, centred[::-1], atol=1e-16)


def test_scalar_lsf_and_derivatives_match_the_gaussian_and_finite_differences():
    rng = np.random.default_rng(11)
    h = 1e-5
    for x, sigma in zip(rng.normal(0.0, 3.0, 200), rng.uniform(0.6, 1.8, 200), strict=True):
        # The calibration table (1/128 step) reproduces the pixel-integrated Gaussian to ~1e-11 of the flux.
        assert lsf_value(x, sigma) == pytest.approx(float(lsf_profile(np.array([x]), sigma)[0]), abs=2e-11)
        # x = k - kappa, so d/dkappa = -d/dx. The first derivative comes from the pdf column and the
        # value from the cdf column: consistent to the interpolation error (~1e-8 / sigma).
        fd1 = -(lsf_value(x + h, sigma) - lsf_value(x - h, sigma)) / (2 * h)
        fd2 = -(lsf_dkappa(x + h, sigma) - lsf_dkappa(x - h, sigma)) / (2 * h)
        assert lsf_dkappa(x, sigma) == pytest.approx(fd1, abs=3e-8)
        assert lsf_d2kappa(x, sigma) == pytest.approx(fd2, abs=1e-8)


@pytest.mark.parametrize("sigma_px", [1.0, 0.5, 0.25, 0.9, 1.3])
def test_lsf_walk_gives_the_terms_of_lsf_edge_at_every_edge(sigma_px):
    """A walk over a window's pixel edges (weights computed once: sigma = 1, 1/2, 1/4 are whole strides of
    the 1/128 table) gives lsf_edge's (cdf, pdf, slope) terms at every edge to rounding, the table's tails
    included (clamp set when an edge lies beyond them); it declines (ok False: the fit then calls
    lsf_edge per edge) for other widths and for a centre that is not finite."""
    whole = (128.0 / sigma_px) == int(128.0 / sigma_px)
    for kappa in np.r_[np.random.default_rng(3).uniform(-12.0, 30.0, 400), 0.0, 5.5, 8.5, 17.0, 1e9]:
        walk, clamp, first, i, stride, *weights = lsf_walk(-0.5 - kappa, sigma_px, 19)
        assert walk == whole
        if not walk:
            continue
        inside = abs(-0.5 - kappa) / sigma_px < 8 and abs(17.5 - kappa) / sigma_px < 8
        assert clamp != inside
        for k in range(19):
            got = lsf_walk_edge(i + k * stride, clamp, first, *weights)
            want = lsf_edge(k - 0.5 - kappa, sigma_px)
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert not lsf_walk(math.nan, 1.0, 13)[0] and not lsf_walk(math.inf, 1.0, 13)[0]


def test_lsf_table_interpolation_is_exact_at_the_nodes_and_continuous_between():
    u0, step, values = read_lsf_table()
    i = np.arange(1, len(values) - 1, 37)  # interior nodes (the ends clamp to the tails)
    cdf, pdf, dpdf = lsf_table_array(u0 + i * step)
    np.testing.assert_array_equal(cdf, values[i, 0])
    np.testing.assert_array_equal(pdf, values[i, 1])
    np.testing.assert_allclose(dpdf, values[i, 2], atol=1e-15)
    left = lsf_table_array(u0 + i[1:] * step - 1e-12)
    right = lsf_table_array(u0 + i[1:] * step + 1e-12)
    for a, b in zip(left, right, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-10)
    far = lsf_table_array(np.array([-1e3, 1e3, np.nan]))
    assert far[0][:2].tolist() == [-0.5, 0.5] and far[1][:2].tolist() == [0.0, 0.0] and np.isnan(far[0][2])


@pytest.mark.parametrize(("text", "match"), [
    ("u,cdf,pdf\n0,0,0\n", "header"),
    ("u,cdf,pdf,dpdf_du\n0,0,0,x\n", "4 numbers"),
    ("u,cdf,pdf,dpdf_du\n0,0,0,0\n1,1,0,0\n", "at least 4 rows"),
    ("u,cdf,pdf,dpdf_du\n0,0,0,0\n1,0.5,0,0\n3,0.7,0,0\n4,1,0,0\n", "equal steps"),
    ("u,cdf,pdf,dpdf_du\n0,0,0,0\n1,0.5,0,0\n2,0.4,0,0\n3,1,0,0\n", "cdf must grow"),
])
def test_a_bad_lsf_table_is_one_clear_error(tmp_path, text, match):
    path = tmp_path / "lsf.csv"
    path.write_text("# comment\n" + text)
    with pytest.raises(InputError, match=match):
        read_lsf_table(path)
    with pytest.raises(InputError, match="restore it"):
        read_lsf_table(tmp_path / "missing.csv")


def test_the_committed_lsf_table_is_what_its_script_writes():
    script = Path(__file__).resolve().parents[2] / "pipeline" / "data" / "make_lsf_table.py"
    assert subprocess.run([sys.executable, str(script), "--check"]).returncode == 0


def test_a_fit_without_formal_errors_is_flagged_not_converged():
    # Regression: the star's samples all masked as cosmic rays but one, the image centred on it. The
    # centre then moves nothing the unmasked samples see (the tabulated LSF is exactly 0 beyond 8 sigma):
    # a singular Fisher matrix, no formal errors, and no flag said so.
    samples = np.array([23.3, 34.9, 27.1, 38.8, 81.4, 240.3, 325.6, 201.6, 62.0, 549.6, 456.6, 31.0])
    mask = np.zeros((2, 12), np.uint8)
    mask[:, 3:11] = ipd.MASK_GIVEN
    res = ipd.fit_images(np.tile(samples, (2, 1)), np.array([12, 12], np.int32), np.full(2, 20.0), mask=mask)
    ref = ipd.fit_images_numpy(np.tile(samples, (2, 1)), np.array([12, 12], np.int32), np.full(2, 20.0), mask=mask)
    for r in (res, ref):
        assert np.all(np.isnan(r["al_px_err"])), r
        assert np.all(r["flags"] & ipd.FLAG_NOT_CONVERGED), r


# --- fit: statistics --------------------------------------------------------------------------------


def robust_width(x):
    return 1.4826 * np.median(np.abs(x - np.median(x)))


@pytest.mark.parametrize("flux_level_e", [1e3, 1e4, 1e5])
def test_pulls_are_unit_normal(flux_level_e):
    """20 000 simulated 12-sample windows per flux level: (fit - simulated) / formal error ~ N(0, 1)."""
    rng = np.random.default_rng(20240601 + int(flux_level_e))
    m, n = 20_000, 12
    kappa = 5.5 + rng.uniform(-1.0, 1.0, m)
    flux = np.full(m, flux_level_e)
    bg = np.full(m, 30.0)
    res = fit(simulate_windows(rng, flux, bg, kappa, n))
    ok = res["flags"] == 0
    assert ok.mean() > 0.999, f"only {ok.mean():.4f} of the windows fitted without flags"
    pull_al = ((res["al_px"] - kappa) / res["al_px_err"])[ok]
    pull_flux = ((res["flux_e"] - flux) / res["flux_e_err"])[ok]
    for name, pull in (("al_px", pull_al), ("flux_e", pull_flux)):
        assert abs(np.median(pull)) < 0.05, f"{name} pull median {np.median(pull):.3f} (want |.| < 0.05)"
        width = robust_width(pull)
        assert abs(width - 1.0) < 0.10, f"{name} pull robust width {width:.3f} (want 1 +- 0.10)"
    # 9 degrees of freedom: the reduced chi2 has mean 1 and median ~0.93.
    assert np.mean(res["chi2"][ok]) == pytest.approx(1.0, abs=0.05)


def test_the_location_bias_coefficient_is_a_quarter_over_the_pixel_integrated_variance():
    """K = 1 / (4 s^2) for a Gaussian of width s; the pixel adds 1/12 px^2 to the LSF's variance."""
    assert ipd.location_bias_coefficient(1.0) == pytest.approx(1.0 / (4.0 * (1.0 + 1.0 / 12.0)), rel=3e-3)
    assert ipd.location_bias_coefficient(2.0) == pytest.approx(1.0 / (4.0 * (4.0 + 1.0 / 12.0)), rel=3e-3)


def test_faint_fluxes_lose_the_bias_of_the_free_centre():
    """300 e- over a 470 e- background (a G ~ 21 star in a binned AF window): the free-centre fit is biased
    +1.4 %; debiased it is within 0.5 %, and a bright star's flux does not move."""
    rng = np.random.default_rng(20261207)
    m, n = 20_000, 12
    kappa = 5.5 + rng.uniform(-0.5, 0.5, m)
    faint = fit(simulate_windows(rng, np.full(m, 300.0), np.full(m, 470.0), kappa, n))
    ok = faint["flags"] == 0
    raw = np.median(faint["flux_e"][ok]) / 300.0
    debiased = np.median(ipd.debias_flux(faint["flux_e"], faint["al_px_err"])[ok]) / 300.0
    assert raw > 1.008, f"the free-centre fit's bias is {raw - 1:+.4f}: the test no longer shows it"
    assert abs(debiased - 1.0) < 0.005, f"debiased flux off by {debiased - 1:+.4f}"
    bright = fit(simulate_windows(rng, np.full(100, 1e5), np.full(100, 30.0), kappa[:100], n))
    assert np.allclose(ipd.debias_flux(bright["flux_e"], bright["al_px_err"]), bright["flux_e"], rtol=1e-4)
    assert ipd.debias_flux(np.array([5.0]), np.array([np.nan]))[0] == 5.0


# --- fit: flags and validation ----------------------------------------------------------------------


def test_flat_window_has_no_star_and_is_flagged():
    res = fit(np.full((1, 12), 50.0))
    bad = ipd.FLAG_NOT_CONVERGED | ipd.FLAG_BAD_FLUX
    assert res["flags"][0] & bad, f"flags {res['flags'][0]:#b} lack NOT_CONVERGED/BAD_FLUX"
    assert res["flux_e"][0] < 1.0


def test_nan_and_short_windows_are_flagged_without_raising():
    rng = np.random.default_rng(3)
    samples = simulate_windows(rng, np.full(4, 1e4), np.full(4, 20.0), np.full(4, 5.5), 12)
    samples[1, 4] = np.nan
    samples[2, 7] = np.inf
    n_samples = np.array([12, 12, 12, 3], dtype=np.int32)
    for fitter in (ipd.fit_images, ipd.fit_images_numpy):
        res = fitter(samples, n_samples, np.full(4, VAR_EXTRA_E2))
        assert res["flags"][0] == 0
        for i in (1, 2, 3):
            assert res["flags"][i] & ipd.FLAG_BAD_INPUT, f"window {i}: flags {res['flags'][i]:#b}"
            assert np.isnan(res["al_px"][i])


def test_nan_beyond_n_samples_is_ignored():
    rng = np.random.default_rng(4)
    samples = np.full((1, 18), np.nan)
    samples[0, :12] = simulate_windows(rng, np.array([5e3]), np.array([10.0]), np.array([6.2]), 12)
    res = ipd.fit_images(samples, np.array([12], dtype=np.int32), np.array([VAR_EXTRA_E2]))
    ref = fit(samples[:, :12])
    assert res["flags"][0] == 0
    assert res["al_px"][0] == ref["al_px"][0]


def test_star_outside_window_is_flagged():
    k = np.arange(12)
    samples = 20.0 + 1e6 * lsf_profile(k + 2.5, 1.0)  # noiseless tail of a star centred at -2.5 px
    res = fit(samples[None, :])
    assert res["flags"][0] & ipd.FLAG_OUTSIDE_WINDOW
    assert res["al_px"][0] == pytest.approx(-2.5, abs=1e-6)


def test_noiseless_window_recovers_the_parameters():
    k = np.arange(18)
    samples = 12.0 + 3e4 * lsf_profile(k - 9.37, 1.0)
    res = fit(samples[None, :])
    assert res["flags"][0] == 0
    assert res["al_px"][0] == pytest.approx(9.37, abs=1e-9)
    assert res["flux_e"][0] == pytest.approx(3e4, rel=1e-9)
    # The fit stops at a Newton decrement of 1e-3: bg within ~1e-6 of its formal error (~1.4 e- here).
    assert res["bg_e"][0] == pytest.approx(12.0, abs=1e-6 * res["bg_e_err"][0])
    # chi2 is that of the last evaluated point, one step of decrement < 1e-3 short of the optimum.
    assert res["chi2"][0] == pytest.approx(0.0, abs=1e-3)


def test_flag_bits_are_distinct_and_reserved_bits_are_never_set():
    bits = [ipd.FLAG_NOT_CONVERGED, ipd.FLAG_OUTSIDE_WINDOW, ipd.FLAG_BAD_FLUX, ipd.FLAG_SATURATED,
            ipd.FLAG_COSMIC, ipd.FLAG_BAD_INPUT]  # fmt: skip
    assert all(b > 0 and b & (b - 1) == 0 for b in bits)
    assert len(set(bits)) == len(bits)
    rng = np.random.default_rng(5)
    samples = rng.normal(30.0, 50.0, (500, 12))  # junk, including negative samples
    res = fit(samples)
    assert not np.any(res["flags"] & (ipd.FLAG_SATURATED | ipd.FLAG_COSMIC))


def test_extra_variance_is_read_noise_plus_quantisation():
    assert ipd.extra_variance_e2(READ_NOISE_E, GAIN_ADU_PER_E) == pytest.approx(VAR_EXTRA_E2, rel=1e-15)


def test_empty_input_gives_empty_outputs():
    for fitter in (ipd.fit_images, ipd.fit_images_numpy):
        res = fitter(np.empty((0, 12)), np.empty(0, dtype=np.int32), np.empty(0))
        assert set(res) == set(ipd.OUTPUT_NAMES)
        assert all(v.shape == (0,) for v in res.values())


@pytest.mark.parametrize(
    ("samples", "n_samples", "var", "match"),
    [
        (np.zeros((2, 12), dtype=np.float32), np.full(2, 12, np.int32), np.ones(2), r"astype\(np.float64\)"),
        (np.zeros(12), np.full(1, 12, np.int32), np.ones(1), r"shape \(m, n_max\)"),
        (np.zeros((2, 12)), np.full(2, 12, np.int64), np.ones(2), r"astype\(np.int32\)"),
        (np.zeros((2, 12)), np.full(3, 12, np.int32), np.ones(2), r"shape \(2,\)"),
        (np.zeros((2, 12)), np.full(2, 12, np.int32), np.ones(2, dtype=np.float32), "var_extra_e2"),
        (np.zeros((2, 12)), np.full(2, 13, np.int32), np.ones(2), r"n_samples must lie in \[0, n_max=12\]"),
    ],
)
def test_wrong_arguments_raise_value_error_saying_how_to_fix(samples, n_samples, var, match):
    for fitter in (ipd.fit_images, ipd.fit_images_numpy):
        with pytest.raises(ValueError, match=match):
            fitter(samples, n_samples, var)


@pytest.mark.parametrize(("kwargs", "match"), [({"sigma_px": 0.0}, "sigma_px"), ({"max_iter": 0}, "max_iter")])
def test_wrong_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ipd.fit_images(np.zeros((1, 12)), np.full(1, 12, np.int32), np.ones(1), **kwargs)
