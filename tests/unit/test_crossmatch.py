"""Crossmatch index (pipeline.crossmatch) against the brute-force oracle (tests.naive.crossmatch)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pipeline import crossmatch, geometry
from tests.naive.crossmatch import best_two_brute_force, brightest_brute_force, nearest_brute_force, sorted_index_naive

RADIUS_MAS = 500.0  # the pipeline's default (pipeline.config.PipelineConfig.match_radius_mas)


def random_offsets(rng, u: np.ndarray, max_mas: float) -> np.ndarray:
    """Directions within ``max_mas`` of each ``u`` (uniform position angle, uniform distance)."""
    a = np.cross(u, np.array([0.0, 0.0, 1.0]))
    a[np.linalg.norm(a, axis=1) < 1e-9] = [1.0, 0.0, 0.0]  # exactly at a pole
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b = np.cross(u, a)
    angle = rng.uniform(0, 2 * np.pi, len(u))[:, None]
    rho = rng.uniform(0, max_mas, len(u))[:, None] * geometry.MAS_RAD
    v = u * np.cos(rho) + np.sin(rho) * (np.cos(angle) * a + np.sin(angle) * b)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def sky(rng, kind: str, n: int) -> np.ndarray:
    """Catalogue unit vectors: uniform, near a pole, across the RA wrap, or in tight clusters."""
    if kind == "uniform":
        v = rng.normal(size=(n, 3))
        return v / np.linalg.norm(v, axis=1, keepdims=True)
    if kind == "north_pole":
        return geometry.unit_from_radec(rng.uniform(0, 360, n), 90.0 - rng.uniform(0, 0.05, n))
    if kind == "south_pole":
        return geometry.unit_from_radec(rng.uniform(0, 360, n), -90.0 + rng.uniform(0, 0.05, n))
    if kind == "ra_wrap":
        return geometry.unit_from_radec(rng.uniform(-0.05, 0.05, n) % 360.0, rng.uniform(-0.05, 0.05, n))
    if kind == "clustered":
        centres = sky(rng, "uniform", max(1, n // 50))
        return random_offsets(rng, centres[rng.integers(0, len(centres), n)], 3 * RADIUS_MAS)
    raise ValueError(kind)


@given(st.integers(0, 2**32 - 1), st.integers(0, 300), st.sampled_from(["uniform", "clustered"]),
       st.floats(0.0, 0.9), st.sampled_from([crossmatch.MIN_RADIUS_MAS, RADIUS_MAS, 60_000.0]))
def test_the_index_is_the_stable_sort_of_the_grid_keys(seed, n, kind, repeated, radius_mas):
    """build_index's sort (quicksort, then equal keys in row order) and gathers equal the plain stable sort;
    many sources share a grid cell (repeated positions, clusters) so the tie order is exercised. The
    unit vectors come as a strided column of a record array, as the run's catalogue cells give them."""
    rng = np.random.default_rng(seed)
    u = sky(rng, kind, n)
    copies = rng.random(n) < repeated  # a source at the position of an earlier one: equal keys
    u[copies] = u[rng.integers(0, np.arange(n)[copies] + 1)] if n else u[copies]
    rec = np.zeros(n, np.dtype([("id", "i8"), ("u", "f8", (3,)), ("g", "f4"), ("s", "f4")]))
    rec["u"], rec["g"], rec["s"] = u, rng.uniform(3, 21, n), rng.uniform(0, 0.1, n)
    index = crossmatch.build_index(rec["u"], radius_mas, rec["g"], rec["s"])
    keys, order, u_sorted, g, g_var = sorted_index_naive(u, radius_mas, rec["g"], rec["s"], crossmatch.MAG_FLOOR_MAG,
                                                   crossmatch.CELL_CHORDS)
    assert np.array_equal(index.keys_sorted, keys) and np.array_equal(index.order, order)
    assert np.array_equal(index.u_sorted, u_sorted) and np.array_equal(index.g_sorted, g)
    assert np.array_equal(index.g_var_sorted, g_var)


def assert_matches_oracle(u_ref: np.ndarray, u_query: np.ndarray, radius_mas: float) -> None:
    index = crossmatch.build_index(u_ref, radius_mas)
    row, sep = crossmatch.nearest(index, u_query)
    want, dist = nearest_brute_force(u_ref, u_query, radius_mas)
    # Only compare where the answer is numerically unambiguous: no source within 1 uas of the radius,
    # and no second source within 1 uas of the nearest one.
    tol_mas = 1e-3
    near_edge = np.any(np.abs(dist - radius_mas) < tol_mas, axis=1) if dist.size else np.zeros(len(u_query), bool)
    if dist.shape[1] >= 2:
        two = np.sort(dist, axis=1)[:, :2]
        near_edge |= (two[:, 1] - two[:, 0]) < tol_mas
    clear = ~near_edge
    assert clear.mean() > 0.9, "test sky too ambiguous to mean anything"
    bad = np.flatnonzero(clear & (row != want))
    assert not len(bad), f"{len(bad)} queries differ from brute force, first {bad[0]}: {row[bad[0]]} vs {want[bad[0]]}"
    found = row >= 0
    assert np.all(np.isnan(sep[~found]))
    assert np.allclose(sep[found], dist[np.flatnonzero(found), row[found]], atol=1e-6), "separation (mas) differs"
    assert np.all(sep[found] <= radius_mas + tol_mas)


@pytest.mark.parametrize("kind", ["uniform", "north_pole", "south_pole", "ra_wrap", "clustered"])
@pytest.mark.parametrize("seed", [0, 1])
def test_nearest_equals_brute_force(kind, seed):
    rng = np.random.default_rng([seed, 17])
    u_ref = sky(rng, kind, 400)
    # Queries near sources (within 2 radii: matches and misses) and anywhere.
    near = random_offsets(rng, u_ref[rng.integers(0, len(u_ref), 300)], 2 * RADIUS_MAS)
    u_query = np.concatenate([near, sky(rng, kind, 100), u_ref[:20]])
    assert_matches_oracle(u_ref, u_query, RADIUS_MAS)


@given(st.integers(0, 2**32 - 1), st.sampled_from(["uniform", "north_pole", "ra_wrap", "clustered"]),
       st.floats(200.0, 3.0e6), st.integers(1, 60))
def test_nearest_equals_brute_force_for_any_radius(seed, kind, radius_mas, n_ref):
    rng = np.random.default_rng(seed)
    u_ref = sky(rng, kind, n_ref)
    u_query = np.concatenate([random_offsets(rng, u_ref[rng.integers(0, n_ref, 40)], 2 * radius_mas),
                              sky(rng, kind, 10)])
    index = crossmatch.build_index(u_ref, radius_mas)
    row, _ = crossmatch.nearest(index, u_query)
    want, dist = nearest_brute_force(u_ref, u_query, radius_mas)
    tol = 1e-6 * radius_mas
    ambiguous = np.any(np.abs(dist - radius_mas) < tol, axis=1)
    if n_ref >= 2:
        two = np.sort(dist, axis=1)[:, :2]
        ambiguous |= (two[:, 1] - two[:, 0]) < tol
    assert np.array_equal(row[~ambiguous], want[~ambiguous])


def test_exact_source_positions_match_themselves():
    rng = np.random.default_rng(5)
    u_ref = sky(rng, "uniform", 200)
    row, sep = crossmatch.nearest(crossmatch.build_index(u_ref, RADIUS_MAS), u_ref)
    assert row.tolist() == list(range(200))
    assert np.all(sep < 1e-3), f"self-separation up to {sep.max()} mas"


def test_empty_catalogue_matches_nothing():
    index = crossmatch.build_index(np.empty((0, 3)), RADIUS_MAS)
    rng = np.random.default_rng(3)
    row, sep = crossmatch.nearest(index, sky(rng, "uniform", 5))
    assert row.tolist() == [-1] * 5
    assert np.all(np.isnan(sep))


def test_no_queries_give_empty_results():
    index = crossmatch.build_index(sky(np.random.default_rng(4), "uniform", 10), RADIUS_MAS)
    row, sep = crossmatch.nearest(index, np.empty((0, 3)))
    assert row.shape == (0,) and sep.shape == (0,)


@pytest.mark.parametrize("radius_mas", [0.0, -1.0, 3.6e6, 1e9, float("nan")])
def test_radius_outside_range_is_refused(radius_mas):
    with pytest.raises(ValueError, match="match radius"):
        crossmatch.build_index(np.array([[1.0, 0.0, 0.0]]), radius_mas)


def test_radius_below_grid_resolution_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"\[200 mas, 1 deg\)"):
        crossmatch.build_index(np.array([[1.0, 0.0, 0.0]]), crossmatch.MIN_RADIUS_MAS - 1.0)


def test_the_smallest_radius_the_error_message_recommends_works():
    """The error for a too small radius names the smallest one: that one must then be accepted."""
    u = np.array([[1.0, 0.0, 0.0]])
    index = crossmatch.build_index(u, crossmatch.MIN_RADIUS_MAS)
    row, _ = crossmatch.nearest(index, u)
    assert row.tolist() == [0]


@given(st.integers(0, 2**32 - 1), st.sampled_from(["uniform", "clustered", "ra_wrap"]), st.integers(1, 80),
       st.booleans())
@example(94537, "uniform", 4, False)  # a query 500.016 mas from a source: outside the 500 mas radius
def test_best_two_candidates_equal_brute_force(seed, kind, n_ref, with_query_mags):
    """Kernel ranking (position and magnitude score) against the brute-force oracle."""
    rng = np.random.default_rng(seed)
    u_ref = sky(rng, kind, n_ref)
    g_ref = rng.uniform(12, 21, n_ref)
    sigma_ref = rng.uniform(0, 0.3, n_ref)
    u_query = np.concatenate([random_offsets(rng, u_ref[rng.integers(0, n_ref, 40)], 2 * RADIUS_MAS),
                              sky(rng, kind, 10)])
    g_query = g_ref[rng.integers(0, n_ref, len(u_query))] + rng.normal(0, 0.5, len(u_query))
    if not with_query_mags:
        g_query[:] = np.nan
    err = rng.uniform(0, 0.1, len(u_query))
    index = crossmatch.build_index(u_ref, RADIUS_MAS, g_ref, sigma_ref)
    got = crossmatch.candidates(index, u_query, g_query, err)
    want, score = best_two_brute_force(u_ref, g_ref, sigma_ref**2 + crossmatch.MAG_FLOOR_MAG**2, u_query, g_query,
                                       err**2, RADIUS_MAS, crossmatch.POSITION_SIGMA_MAS)
    _, dist = nearest_brute_force(u_ref, u_query, RADIUS_MAS)
    # Compare rows where the ranking is unambiguous: no source at the radius, no near-tie of the best two
    # (scores are compared everywhere: a tie does not change them).
    ambiguous = np.any(np.abs(dist - RADIUS_MAS) < 1e-3, axis=1)
    two = np.isfinite(score[:, 1])
    ambiguous[two] |= np.abs(score[two, 1] - score[two, 0]) < 1e-6 * (1 + score[two, 0])
    ok = ~ambiguous
    assert np.array_equal(got.row[ok, 0], want[ok, 0])
    edge = np.any(np.abs(dist - RADIUS_MAS) < 1e-3, axis=1)
    assert np.allclose(got.score[~edge], score[~edge], rtol=1e-6, atol=1e-9)
    found = got.row[:, 0] >= 0
    assert np.allclose(got.sep_mas[found, 0], dist[np.flatnonzero(found), got.row[found, 0]], atol=1e-6)
    assert np.all(np.isnan(got.sep_mas[~found, 0])) and np.all(np.isinf(got.score[~found, 0]))


@given(st.integers(0, 2**32 - 1), st.sampled_from(["uniform", "clustered", "ra_wrap"]), st.integers(0, 80),
       st.floats(0.0, 0.5), st.sampled_from([crossmatch.MIN_RADIUS_MAS, RADIUS_MAS, 15_000.0]))
def test_the_brightest_source_within_the_radius_equals_brute_force(seed, kind, n_ref, no_g, radius_mas):
    """The brightest-within-the-radius kernel against the oracle; magnitudes drawn from a few values so that
    ties of G (then the nearer source wins) happen, and some sources without G (never the answer)."""
    rng = np.random.default_rng(seed)
    u_ref = sky(rng, kind, n_ref)
    g_ref = rng.choice([3.0, 9.5, 14.0, 15.9], n_ref)
    g_ref[rng.random(n_ref) < no_g] = np.nan
    u_query = np.concatenate([random_offsets(rng, u_ref[rng.integers(0, n_ref, 40)], 2 * radius_mas)
                              if n_ref else np.empty((0, 3)), sky(rng, kind, 10)])
    got = crossmatch.brightest(crossmatch.build_index(u_ref, radius_mas, g_ref), u_query)
    want = brightest_brute_force(u_ref, g_ref, u_query, radius_mas)
    # Unambiguous queries: no source within 1e-6 radius of the edge, no two equally bright sources equally near.
    _, dist = nearest_brute_force(u_ref, u_query, radius_mas)
    tol = 1e-6 * radius_mas
    ambiguous = np.any(np.abs(dist - radius_mas) < tol, axis=1) if n_ref else np.zeros(len(u_query), bool)
    for i in np.flatnonzero(want >= 0):
        same_g = np.flatnonzero(g_ref == g_ref[want[i]])
        d = np.sort(dist[i, same_g])
        ambiguous[i] |= len(d) > 1 and d[1] - d[0] < tol
    assert np.array_equal(got[~ambiguous], want[~ambiguous])
    assert ambiguous.mean() < 0.5


def pair_sky():
    """A close pair (120 mas apart, 2 mag apart) as Gaia's AC pixel cannot resolve it."""
    ra, dec = np.array([80.0, 80.0]), np.array([10.0, 10.0 + 120.0 / 3.6e6])
    return geometry.unit_from_radec(ra, dec), np.array([17.0, 19.0]), np.zeros(2)


def test_magnitude_picks_the_right_member_of_a_close_pair():
    """A transit of the bright member that lands nearer the faint one (its AC position is one 177 mas pixel)
    matches the bright one: nearest-only matching made false 2-mag brightenings of such pairs."""
    u_ref, g_ref, sigma = pair_sky()
    index = crossmatch.build_index(u_ref, RADIUS_MAS, g_ref, sigma)
    query = geometry.unit_from_radec(np.array([80.0, 80.0]), np.array([10.0 + 80 / 3.6e6, 10.0 + 40 / 3.6e6]))
    assert crossmatch.nearest(index, query)[0].tolist() == [1, 0]  # position alone: both wrong
    got = crossmatch.candidates(index, query, np.array([17.02, 18.97]), np.array([0.01, 0.02]))
    assert got.row[:, 0].tolist() == [0, 1]
    assert got.row[:, 1].tolist() == [1, 0]
    assert np.allclose(got.sep_mas[:, 0], [80.0, 80.0], atol=1e-3)


def candidates_of(rows, scores, seps=None) -> crossmatch.Candidates:
    rows, scores = np.array(rows, dtype=np.int64), np.array(scores, dtype=float)
    return crossmatch.Candidates(rows, np.full(rows.shape, 50.0) if seps is None else np.array(seps), scores)


SCAN = np.array([1, 1, 1], dtype=np.int8), np.array([0, 10_000_000, 20_000_000], dtype=np.int64)


def test_conflict_loser_takes_its_second_candidate():
    c = candidates_of([[0, 1], [0, 1], [2, -1]], [[0.5, 3.0], [1.0, 2.0], [0.1, np.inf]],
                      [[40.0, 90.0], [60.0, 70.0], [10.0, np.nan]])
    row, sep, lost = crossmatch.resolve_conflicts(c, *SCAN)
    assert row.tolist() == [0, 1, 2]
    assert sep.tolist() == [40.0, 70.0, 10.0]
    assert lost.tolist() == [False, True, False]


def test_conflict_loser_whose_second_is_held_stays_unmatched():
    c = candidates_of([[0, 1], [0, 1], [1, 0]], [[0.5, 3.0], [1.0, 2.0], [0.1, 4.0]])
    row, sep, lost = crossmatch.resolve_conflicts(c, *SCAN)
    assert row.tolist() == [0, -1, 1]
    assert np.isnan(sep[1]) and lost.tolist() == [False, True, False]


def test_losers_competing_for_one_second_candidate_best_score_wins():
    c = candidates_of([[0, 1], [0, 1], [0, 1]], [[0.5, 3.0], [1.0, 2.5], [0.7, 2.0]])
    row, _, lost = crossmatch.resolve_conflicts(c, *SCAN)
    assert row.tolist() == [0, -1, 1]
    assert lost.tolist() == [False, True, True]


def test_transits_of_different_scans_or_fields_keep_their_source():
    c = candidates_of([[0, -1], [0, -1], [0, -1]], [[0.5, np.inf], [1.0, np.inf], [0.2, np.inf]])
    fov = np.array([1, 2, 1], dtype=np.int8)
    obmt = np.array([0, 0, 2 * crossmatch.SCAN_WINDOW_NS], dtype=np.int64)
    row, _, lost = crossmatch.resolve_conflicts(c, fov, obmt)
    assert row.tolist() == [0, 0, 0] and not lost.any()
