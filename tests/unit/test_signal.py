"""Window rendering (gaiasim.sim.signal): 2D WC0 windows, cosmic rays, counter-based reproducibility,
and the pipeline's fits of them (pipeline.transits.fit_star_packets) against the simulated truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gaiasim.sim import kernels_signal, signal
from gaiasim.sim.instrument.electronics import TRUE as INSTRUMENT
from pipeline import icd, ipd, lsf, transits
from pipeline.calibration import DEFAULT as CAL


def robust_width(x):
    return 1.4826 * np.median(np.abs(x - np.median(x)))


def transits_of(rng, m, g_lo, g_hi):
    return {
        "transit_id": np.sort(rng.choice(2**40, m, replace=False)).astype(np.int64) << 17,
        "t_offset_px": rng.uniform(-0.5, 0.5, m),
        "fov": rng.integers(1, 3, m).astype(np.int8),
        "g_mag": rng.uniform(g_lo, g_hi, m),
        "bp_rp": rng.uniform(0.5, 1.5, m),
    }


def render(tr, seed=3):
    return signal.make_windows(seed, tr["transit_id"], tr["t_offset_px"], tr["fov"], tr["g_mag"], tr["bp_rp"],
                               INSTRUMENT)


def fit(w):
    records = np.zeros(len(w.payload), dtype=icd.packet_dtype(w.apid))
    records["payload"] = w.payload
    return transits.fit_star_packets(records, int(w.payload["window_class"][0]), CAL)


def test_wc0_packets_carry_2d_af_windows_and_1d_sm():
    dtype = icd.PAYLOADS[icd.APID_STAR_WC0]
    assert dtype["af_adu"].shape == (icd.N_AF, 18, 12)
    assert dtype["sm_adu"].shape == (18,)
    assert icd.PAYLOADS[icd.APID_STAR_WC1]["af_adu"].shape == (icd.N_AF, 18)
    assert icd.PAYLOADS[icd.APID_STAR_WC2]["af_adu"].shape == (icd.N_AF, 12)


@pytest.mark.compiled
def test_wc0_fits_have_unit_al_and_ac_pulls():
    """3000 WC0 transits (27 000 2D AF windows): AL and AC pulls vs the simulated centres ~ N(0, 1)."""
    rng = np.random.default_rng(61)
    (w,) = render(transits_of(rng, 3000, 11.0, 12.99))
    res = fit(w)
    truth = w.truth_ccd
    ok = res["flags"][:, 1:] == 0
    assert ok.mean() > 0.98, f"only {ok.mean():.4f} of the 2D windows fitted without flags"
    for name in ("al_px", "ac_px"):
        sim = truth[name].to_numpy(zero_copy_only=False).reshape(-1, 10)[:, 1:]
        pull = ((res[name][:, 1:] - sim) / res[name + "_err"][:, 1:])[ok]
        assert abs(np.median(pull)) < 0.05, f"{name} pull median {np.median(pull):.3f} (want |.| < 0.05)"
        assert abs(robust_width(pull) - 1.0) < 0.10, f"{name} pull width {robust_width(pull):.3f} (want 1 +- 0.1)"
    assert np.all(np.isnan(res["ac_px"][:, 0])), "the SM window is 1D: no AC centre"
    ac_truth = truth["ac_px"].to_numpy(zero_copy_only=False).reshape(-1, 10)
    assert np.all(np.isnan(ac_truth[:, 0])) and np.all(np.isfinite(ac_truth[:, 1:]))


@pytest.mark.compiled
@pytest.mark.parametrize(("g_lo", "g_hi", "min_flagged"), [(13.0, 15.99, 0.8), (16.0, 20.0, 0.9)])
def test_1d_fits_with_cosmic_rays_have_unit_al_pulls(g_lo, g_hi, min_flagged):
    """Clean and cosmic-flagged 1D windows alike: AL pulls ~ N(0, 1); most hits of > 1000 e- are flagged
    (not all: a hit on the core of a bright star is within its noise, ~200 e- per sample at G = 13)."""
    rng = np.random.default_rng(62)
    (w,) = render(transits_of(rng, 20_000, g_lo, g_hi))
    res = fit(w)
    sim = w.truth_ccd["al_px"].to_numpy().reshape(-1, 10)
    cosmic = w.truth_ccd["cosmic_e"].to_numpy().reshape(-1, 10)
    ok = (res["flags"] & ~ipd.FLAG_COSMIC) == 0
    pull = (res["al_px"] - sim) / res["al_px_err"]
    assert abs(np.median(pull[ok])) < 0.05
    assert abs(robust_width(pull[ok]) - 1.0) < 0.10
    flagged = (res["flags"] & ipd.FLAG_COSMIC) != 0
    big = cosmic > 1000.0
    assert flagged[big].mean() > min_flagged, f"only {flagged[big].mean():.3f} of the > 1000 e- hits flagged"
    hit_ok = ok & flagged
    assert abs(np.median(pull[hit_ok])) < 0.1 and abs(robust_width(pull[hit_ok]) - 1.0) < 0.15
    assert flagged[cosmic == 0].mean() < 1e-3, "clean windows flagged as cosmic"


@pytest.mark.compiled
def test_cosmic_ray_rate_follows_flux_area_and_integration_time():
    """Ungated 12 x 12 pixel windows: hits ~ Poisson(5 /cm^2/s x 144 x 3e-6 cm^2 x 4.4226 s) ~ 0.95 %."""
    rng = np.random.default_rng(63)
    (w,) = render(transits_of(rng, 20_000, 16.0, 20.0))
    cosmic = w.truth_ccd["cosmic_e"].to_numpy()
    lam = signal.COSMIC_FLUX_PER_CM2_S * signal.PIXEL_AREA_CM2 * 144 * icd.GATE_INTEGRATION_S[0]
    expected = 1.0 - np.exp(-lam)
    n = cosmic.size
    assert abs(np.mean(cosmic > 0) - expected) < 4 * np.sqrt(expected / n), f"hit rate {np.mean(cosmic > 0):.4f}"
    hits = cosmic[cosmic > 0]
    assert signal.COSMIC_MIN_E * 0.5 <= hits.min() and hits.max() <= signal.COSMIC_MAX_E
    assert 500.0 < np.median(hits) < 2000.0, f"median deposit {np.median(hits):.0f} e-"


def test_generation_is_identical_whatever_the_slicing():
    """Counter-based streams: rendering the transits in two slices gives the same bytes and truth."""
    rng = np.random.default_rng(64)
    tr = transits_of(rng, 600, 9.0, 20.0)
    whole = {w.apid: w for w in render(tr)}
    n_seen = 0
    for sl in (slice(300, None), slice(0, 300)):
        for w in render({k: v[sl] for k, v in tr.items()}):
            ref = whole[w.apid]
            pos = np.searchsorted(ref.payload["transit_id"], w.payload["transit_id"])
            assert ref.payload[pos].tobytes() == w.payload.tobytes()
            rows = (pos[:, None] * 10 + np.arange(10)).ravel()
            assert ref.truth_ccd.take(rows).equals(w.truth_ccd)
            n_seen += len(pos)
    assert n_seen == 600


def test_given_ac_offset_sets_the_ac_centre():
    rng = np.random.default_rng(65)
    tr = transits_of(rng, 50, 11.0, 12.0)
    offset = rng.uniform(-0.5, 0.5, 50)
    (w,) = signal.make_windows(3, tr["transit_id"], tr["t_offset_px"], tr["fov"], tr["g_mag"], tr["bp_rp"], INSTRUMENT,
                               ac_offset_px=offset)
    ac = w.truth_ccd["ac_px"].to_numpy(zero_copy_only=False).reshape(-1, 10)[:, 1:]
    assert np.all(np.abs(ac - (5.5 + offset[:, None])) <= signal.WINDOW_AC_JITTER_PX + 1e-12)


def test_psf_table_equals_the_gaussian_cdf():
    """The renderer's tabulated PSF profile (kernels_signal.psf_half_cdf) is Phi(u) - 1/2 within 1e-11,
    inside the table, at its nodes and beyond its +-9 width ends."""
    u = np.r_[np.random.default_rng(5).uniform(-10.0, 10.0, 20_000), np.arange(-9.0, 9.01, 1 / 128), -50.0, 50.0]
    got = np.array([kernels_signal.psf_half_cdf(x) for x in u])
    want = np.array([0.5 * math.erf(x / math.sqrt(2.0)) for x in u])
    assert np.abs(got - want).max() < 1e-11


@pytest.mark.parametrize("sigma_px", [1.0, 0.5, 0.8, 1.3])
def test_pixel_profile_integrates_the_gaussian_over_each_pixel(sigma_px):
    """kernels_signal._pixel_profile (shared Hermite weights when 1 / sigma is a whole number of table steps,
    as at sigma = 1 and 0.5; one table lookup per edge otherwise) equals the exact pixel-integrated Gaussian
    (pipeline.lsf.lsf_profile, from erf) within 2e-11 (two edges, each within 1e-11), for centres inside,
    at the edge of and far outside the window (where the edges leave the table)."""
    rng = np.random.default_rng(17)
    for kappa in np.r_[rng.uniform(-2.0, 13.0, 300), -0.5, 11.5, 5.5, -30.0, 40.0]:
        out = np.empty(12)
        kernels_signal._pixel_profile(kappa, 1.0 / sigma_px, out)
        want = lsf.lsf_profile(np.arange(12) - kappa, sigma_px)
        assert np.abs(out - want).max() < 2e-11, kappa
