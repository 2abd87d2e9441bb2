"""The window renderer (gaiasim.sim.kernels_signal) against the naive mean of each sample (tests/naive/signal.py),
blends included: with a bright star, the Poisson noise is a small fraction of each sample, so the rendered
electrons must lie within 6 sigma of the reference mean, and a second image misplaced by a fraction of a pixel
(or not drawn) falls far outside."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gaiasim.sim import kernels_signal as ks
from tests.naive import signal as naive

GAIN, BIAS, ADC_MAX = 0.1, 1000.0, 65535
NO_COSMICS = np.array([800.0, 250.0, 200.0, 20000.0, 0.5])


@st.composite
def windows(draw):
    m = draw(st.integers(1, 3))
    s = draw(st.integers(1, 2))
    n = draw(st.sampled_from([12, 18]))
    f = st.floats
    return {
        "m": m, "s": s, "n": n,
        "flux": np.array(draw(st.lists(f(1e4, 1e6), min_size=m * s, max_size=m * s))).reshape(m, s),
        "bg": np.array(draw(st.lists(f(0.0, 200.0), min_size=m, max_size=m))),
        "centre": np.array(draw(st.lists(f(2.0, n - 3.0), min_size=m, max_size=m))),
        "ac_centre": np.array(draw(st.lists(f(3.0, 8.0), min_size=m, max_size=m))),
        "cti": np.array(draw(st.lists(f(-0.2, 0.2), min_size=m * s, max_size=m * s))).reshape(m, s),
        "sigma": np.array(draw(st.lists(f(0.8, 1.3), min_size=m * s, max_size=m * s))).reshape(m, s),
        "ratio": np.array(draw(st.lists(st.one_of(st.just(0.0), f(0.05, 1.0)), min_size=m, max_size=m))),
        "d_al": np.array(draw(st.lists(f(-4.0, 4.0), min_size=m, max_size=m))),
        "d_ac": np.array(draw(st.lists(f(-4.0, 4.0), min_size=m, max_size=m))),
        "tid": np.array(draw(st.lists(st.integers(0, 2**50), min_size=m, max_size=m, unique=True)), dtype=np.int64),
    }


def _within_noise(adu: np.ndarray, mean_e: np.ndarray) -> np.ndarray:
    """|rendered - reference| in sigma of the Poisson noise (plus one ADU of rounding); a sample at the ADC's
    top (saturated) only has to be at least as bright as the reference says (its excess above the top is 0)."""
    electrons = (adu.astype(np.float64) - BIAS) / GAIN
    excess = np.abs(electrons - mean_e)
    saturated = adu >= ADC_MAX
    excess = np.where(saturated, np.maximum(electrons - mean_e, 0.0), excess)
    return excess / (np.sqrt(mean_e) + 1.0 / GAIN)


@settings(max_examples=40, deadline=None)
@given(windows())
def test_1d_windows_and_their_blends_equal_the_naive_mean(w):
    m, s, n = w["m"], w["s"], w["n"]
    zeros, ones = np.zeros((m, s)), np.ones((m, s))
    al_px, cosmic_e = np.empty((m, s)), np.empty((m, s))
    adu = np.empty((m, s, n), dtype=np.uint16)
    ks._render_windows(7, w["tid"], w["flux"], w["bg"], w["centre"], 0.0, zeros, w["cti"], zeros, w["sigma"], 0.0, 4.0,
                       GAIN * ones, BIAS * ones, ADC_MAX, 1, np.zeros(m), NO_COSMICS, w["ratio"], w["d_al"], al_px,
                       cosmic_e, adu)
    np.testing.assert_array_equal(al_px, np.repeat(w["centre"][:, None], s, axis=1))  # no jitter, no shift
    for i in range(m):
        for j in range(s):
            mean = naive.window_mean_1d(n, w["centre"][i], w["cti"][i, j], w["sigma"][i, j], w["flux"][i, j],
                                        w["bg"][i], w["ratio"][i], w["d_al"][i])
            assert _within_noise(adu[i, j], mean).max() < 6.0, (i, j)


@settings(max_examples=40, deadline=None)
@given(windows())
def test_2d_windows_and_their_blends_equal_the_naive_mean(w):
    m, s, n, n_ac = w["m"], w["s"], w["n"], 12
    zeros, ones = np.zeros((m, s)), np.ones((m, s))
    al_px, ac_px, cosmic_e = np.empty((m, s)), np.empty((m, s)), np.empty((m, s))
    adu = np.empty((m, s, n, n_ac), dtype=np.uint16)
    bg = w["bg"] / n_ac
    ks._render_windows_2d(7, w["tid"], w["flux"], bg, w["centre"], w["ac_centre"], 0.0, 0.0, zeros, w["cti"], zeros,
                          w["sigma"], 0.0, 4.0, GAIN * ones, BIAS * ones, ADC_MAX, 1, np.zeros(m), NO_COSMICS,
                          w["ratio"], w["d_al"], w["d_ac"], al_px, ac_px, cosmic_e, adu)
    for i in range(m):
        for j in range(s):
            mean = naive.window_mean_2d(n, n_ac, w["centre"][i], w["ac_centre"][i], w["cti"][i, j], w["sigma"][i, j],
                                        w["flux"][i, j], bg[i], w["ratio"][i], w["d_al"][i], w["d_ac"][i])
            assert _within_noise(adu[i, j], mean).max() < 6.0, (i, j)


def test_the_reference_tells_a_misplaced_second_image():
    """The tolerance is tight enough: a second image drawn 0.3 px off its place fails the comparison."""
    m, s, n = 1, 1, 18
    adu = np.empty((m, s, n), dtype=np.uint16)
    ones = np.ones((m, s))
    ks._render_windows(7, np.array([5]), np.full((m, s), 5e5), np.array([50.0]), np.array([8.0]), 0.0, 0 * ones,
                       0 * ones, 0 * ones, ones, 0.0, 4.0, GAIN * ones, BIAS * ones, ADC_MAX, 1, np.zeros(m),
                       NO_COSMICS, np.array([0.5]), np.array([2.0]), np.empty((m, s)), np.empty((m, s)), adu)
    right = naive.window_mean_1d(n, 8.0, 0.0, 1.0, 5e5, 50.0, 0.5, 2.0)
    assert _within_noise(adu[0, 0], right).max() < 6.0
    assert _within_noise(adu[0, 0], naive.window_mean_1d(n, 8.0, 0.0, 1.0, 5e5, 50.0, 0.5, 2.3)).max() > 6.0
    assert _within_noise(adu[0, 0], naive.window_mean_1d(n, 8.0, 0.0, 1.0, 5e5, 50.0, 0.0, 0.0)).max() > 6.0
