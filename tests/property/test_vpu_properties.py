"""The on-board window conflicts, blends and truncated windows, and the pipeline's bright-star environment,
against their brute-force references (tests/naive/vpu.py)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gaiasim.sim import vpu
from gaiasim.sim.instrument import focal_plane as fp
from pipeline import environment, geometry, icd
from tests.naive import vpu as naive

TDI = fp.TDI_PERIOD_NS


@st.composite
def detections(draw):
    """A few detections crowded in time (tens of ms) and AC pixels on 1-2 rows, ties in G included."""
    n = draw(st.integers(0, 30))
    ints = st.integers
    t = np.array(draw(st.lists(ints(0, 40 * TDI), min_size=n, max_size=n)), dtype=np.int64)
    row = np.array(draw(st.lists(ints(1, 2), min_size=n, max_size=n)), dtype=np.int8)
    ac = np.array(draw(st.lists(st.floats(0.0, 30.0), min_size=n, max_size=n)))
    g = np.array(draw(st.lists(st.sampled_from([8.0, 12.5, 13.0, 15.0, 15.0, 17.5, 20.0]), min_size=n, max_size=n)))
    tid = np.array(draw(st.lists(ints(0, 2**40), min_size=n, max_size=n, unique=True)), dtype=np.int64)
    return t, row, ac, g, tid


@settings(max_examples=60, deadline=None)
@given(detections())
def test_conflicts_equal_the_brute_force_reference(d):
    t, row, ac, g, tid = d
    wc = np.searchsorted([13.0, 16.0], g, side="right").astype(np.int8)
    lost, blocker = vpu.conflicts(t, row, ac, wc, g, tid)
    ref_lost, ref_blocker = naive.conflicts(t, row, ac, wc, g, tid, TDI)
    np.testing.assert_array_equal(lost, ref_lost)
    np.testing.assert_array_equal(blocker, ref_blocker)
    if len(t):  # the highest priority of all always keeps its window
        assert not lost[np.lexsort((tid, g))[0]]


@settings(max_examples=60, deadline=None)
@given(detections(), st.lists(st.sampled_from([1, 2]), min_size=30, max_size=30),
       st.lists(st.sampled_from([float("nan"), 9.0, 15.9, 16.0, 17.0, 19.9, 20.0]), min_size=30, max_size=30),
       st.lists(st.booleans(), min_size=30, max_size=30))
def test_the_bright_environment_equals_the_brute_force_reference(d, fovs, gs, sat):
    t, row, ac, _g, _tid = d
    n = len(t)
    t = t * 3  # spread over ~120 ms: inside and outside the 5.5 arcsec (92 ms) reach
    fov, g = np.array(fovs[:n]), np.array(gs[:n])
    saturated = np.array(sat[:n], dtype=bool) & (np.arange(n) % 4 == 0)  # a few saturated transits
    ac_px = np.round(ac * 4).astype(np.int16)  # 0-120 px: inside and outside the 15 arcsec (85 px) reach
    cfg = environment.EnvironmentConfig()
    got = environment.bright_environment(t, fov, row, ac_px, g, cfg, saturated=saturated)
    reach_ns = cfg.al_arcsec * geometry.ARCSEC_RAD / geometry.SCAN_RATE_RAD_S * 1e9
    ac_reach = cfg.ac_arcsec / (geometry.PIXEL_AC_RAD / geometry.ARCSEC_RAD)
    want = naive.bright_environment(t, fov, row, ac_px, g, cfg.bright_g_mag, cfg.delta_g_mag, reach_ns, ac_reach,
                                    saturated)
    np.testing.assert_array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(detections(), st.lists(st.sampled_from([1, 2]), min_size=30, max_size=30),
       st.lists(st.floats(-1.5, 1.5), min_size=30, max_size=30))
def test_blends_equal_the_brute_force_reference(d, fovs, ac_arcsec):
    t, row, _ac, g, tid = d
    n = len(t)
    t = t // 8  # within ~5 ms: inside and outside the 0.23 arcsec (3.8 ms) limit
    zeta = np.array(ac_arcsec[:n]) * fp.ARCSEC_RAD  # inside and outside the 0.70 arcsec limit
    fov = np.array(fovs[:n])
    got = vpu.blends(t, fov, row, zeta, g, tid)
    want = naive.blends(t, fov, row, zeta, g, tid, fp.SCAN_RATE_ARCSEC_S, fp.ARCSEC_RAD, vpu.BLEND_AL_ARCSEC,
                        vpu.BLEND_AC_ARCSEC)
    np.testing.assert_array_equal(got, want)
    into = got >= 0  # light goes into a brighter detection that keeps its window
    assert np.all(got[got[into]] < 0)
    assert np.all((g[got[into]] < g[into]) | ((g[got[into]] == g[into]) & (tid[got[into]] < tid[into])))


@settings(max_examples=60, deadline=None)
@given(detections(), st.lists(st.booleans(), min_size=30, max_size=30),
       st.lists(st.integers(0, icd.TRANSIT_ID_OBMT_QUANTUM_NS - 1), min_size=30, max_size=30))
def test_truncations_equal_the_brute_force_reference(d, windows, quantum):
    t, row, ac, g, tid = d
    n = len(t)
    wc = np.searchsorted([13.0, 16.0], g, side="right").astype(np.int8)
    has = np.array(windows[:n], dtype=bool)
    w = t - np.array(quantum[:n], dtype=np.int64)  # the window's reference: the crossing quantised
    start, end, faces = vpu.truncations(t, w, row, ac, wc, g, tid, has)
    ref = naive.truncations(t, w, row, ac, wc, g, tid, has, TDI)
    for got, want in zip((start, end, faces), ref, strict=True):
        np.testing.assert_array_equal(got, want)
    n_al = np.array([icd.WINDOW_SAMPLES[c] for c in wc.tolist()], dtype=np.int64)
    assert np.all(start + end <= 2 * n_al) and np.all((faces >= 0) == (start + end > 0))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(-5, 40), max_size=30), st.lists(st.integers(-5, 40), max_size=60))
def test_held_answers_as_numpy_isin(ids, among):
    ids, among = np.array(ids, dtype=np.int64), np.array(among, dtype=np.int64)
    np.testing.assert_array_equal(vpu._held(ids, among), np.isin(ids, among))
