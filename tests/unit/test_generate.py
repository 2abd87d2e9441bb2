"""The generator as a whole: determinism, slicing independence, dry-run estimates, attitude, losses."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaiasim import dataset as ds
from gaiasim.sim import generate as gen
from gaiasim.sim import onboard, slices
from gaiasim.sim.attitude import AttitudeError, realised_transits
from gaiasim.sim.scanlaw import ScanLaw
from gaiasim.sim.timescale import obmt_ns_from_date
from gaiasim.spec import make_spec
from pipeline import geometry

SPEC = make_spec(scale=2e-5, seed=11)


@pytest.fixture(scope="module")
def twin_datasets(tmp_path_factory):
    """The same spec generated twice (once cut into many slices) and once with another seed."""
    root = tmp_path_factory.mktemp("twins")
    gen.generate(SPEC, root / "a")
    saved = gen.TRANSITS_PER_SLICE
    gen.TRANSITS_PER_SLICE = 300  # force ~10 slices for the same day
    try:
        manifest = gen.generate(SPEC, root / "b")
    finally:
        gen.TRANSITS_PER_SLICE = saved
    gen.generate(make_spec(scale=2e-5, seed=12), root / "c")
    return root, manifest


def test_same_seed_and_spec_give_the_same_bytes_whatever_the_slicing(twin_datasets):
    root, manifest = twin_datasets
    assert manifest["counts"]["slices"] > 5, "the second generation was meant to run in many slices"
    a = ds.read_manifest(root / "a")["files"]
    b = ds.read_manifest(root / "b")["files"]
    tm = sorted(k for k in a if k.startswith("tm/"))
    assert tm and all(a[k] == b.get(k) for k in tm), "TM files differ between two runs of the same spec"
    for table, keys in (("transits", ["transit_id"]), ("ccd", ["transit_id", "al_px"]), ("sources", ["source_id"]),
                        ("artefacts", ["kind", "transit_id"])):  # the on-board VPU's ghosts, conflicts, flips
        ta = pq.read_table(root / "a" / "truth" / table).sort_by([(k, "ascending") for k in keys])
        tb = pq.read_table(root / "b" / "truth" / table).sort_by([(k, "ascending") for k in keys])
        assert ta.num_rows > 0 and ta.equals(tb), f"truth {table} differs between two runs of the same spec"


def test_different_seeds_give_different_skies(twin_datasets):
    root, _ = twin_datasets
    ids_a = set(pq.read_table(root / "a" / "truth" / "sources")["source_id"].to_pylist())
    ids_c = set(pq.read_table(root / "c" / "truth" / "sources")["source_id"].to_pylist())
    g_a = np.sort(pq.read_table(root / "a" / "truth" / "sources")["g_mag"].to_numpy())
    g_c = np.sort(pq.read_table(root / "c" / "truth" / "sources")["g_mag"].to_numpy())
    assert ids_a != ids_c or not np.array_equal(g_a, g_c), "seeds 11 and 12 gave the same sky"


def test_verify_passes_on_a_fresh_dataset(twin_datasets):
    root, _ = twin_datasets
    assert ds.verify(root / "a") == []


def test_the_manifest_holds_the_digest_of_a_tm_file_cut_short_after_it_was_hashed(faulty_run):
    """Pass files are hashed as they are assembled; the truncated-file fault then cuts the last one, whose
    digest must be that of the bytes left (verify reads every file again)."""
    dataset, _ = faulty_run
    kinds = pq.read_table(dataset / "truth" / "faults").column("kind").to_pylist()
    assert "truncated_file" in kinds
    assert ds.verify(dataset) == []


def test_dry_run_estimates_the_transit_count(twin_datasets):
    root, _ = twin_datasets
    actual = ds.read_manifest(root / "a")["counts"]["transits"]
    estimate = gen.dry_run(SPEC)["transits"]
    # The estimate samples the same day at scale 2e-5: same sky density, independent Poisson draws.
    assert abs(estimate - actual) <= 4 * np.sqrt(actual) + 0.05 * actual, (estimate, actual)


def test_dry_run_at_full_scale_lies_in_the_daily_volume():
    e = gen.dry_run(make_spec(scale=1.0, seed=42))
    assert 70e6 * 0.85 <= e["transits"] <= 70e6 * 1.15, f"{e['transits']:.3g} transits at scale 1"
    assert 25e9 <= e["tm_octets"] <= 90e9, f"{e['tm_octets'] / 1e9:.1f} GB of TM"
    assert 360 <= e["octets_per_transit"] <= 1300


def test_the_disk_check_falls_back_to_the_dry_run_estimate_when_the_upper_bound_does_not_fit():
    spec = make_spec(scale=1.0, seed=42)
    upper = gen.expected_size(spec)["total_octets"]
    assert gen.needed_octets(spec, int(upper) + 1) == upper
    tight = gen.needed_octets(spec, 0)
    e = gen.dry_run(spec)
    assert e["tm_octets"] < tight < upper, "a day that fits the 80 GB box must not be refused"
    assert tight >= gen.DISK_MARGIN * e["tm_octets"]


def test_slices_are_aligned_and_cover_the_span():
    t0 = obmt_ns_from_date(dt.date(2016, 1, 16))
    t1 = t0 + 86_400_000_000_000
    bounds = gen.slice_bounds(t0, t1, 1.0)
    assert bounds[0] == t0 and bounds[-1] == t1
    assert all(b % gen.SLICE_ALIGN_NS == 0 for b in bounds[1:-1])
    assert all(np.diff(bounds) > 0)
    assert len(bounds) - 1 >= 500, "a full-scale day must be cut into many bounded slices"


def test_realised_transits_put_the_star_on_the_line_of_sight():
    t0 = obmt_ns_from_date(dt.date(2016, 1, 16))
    scan = ScanLaw(t0, t0 + 3_600_000_000_000)
    error = AttitudeError(3)
    rng = np.random.default_rng(0)
    u = rng.normal(size=(20000, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    found = scan.find_transits(u, t0 + 10**10, t0 + 3_500_000_000_000)
    assert len(found["obmt_ns"]) > 10
    su = u[found["source_index"]]
    t, zeta = realised_transits(scan.attitude, error, su, found["fov"], found["obmt_ns"])
    q = error.apply(scan.attitude(t), t)
    phi, zeta_check = geometry.field_angles(q, su)
    eta = (phi - geometry.fov_phi_rad(found["fov"]) + np.pi) % (2 * np.pi) - np.pi
    assert np.max(np.abs(eta)) < 2e-9 * geometry.SCAN_RATE_RAD_S * 1e9, "realised crossing off by > 2 ns"
    assert np.allclose(zeta, zeta_check)
    shift_s = (t - found["obmt_ns"]) / 1e9
    assert 0.01 < np.std(shift_s) < 0.6, f"attitude errors should move crossings by ~0.1 s, got {np.std(shift_s)}"


def test_on_board_losses_follow_their_model_and_count_dead_time_once():
    """10 % (G <= 13) to 20 % (G >= 20) of the transits never reach the ground, dead time (6.2 %)
    included: not 6.2 % on top (26 % at G = 20)."""
    rng = np.random.default_rng(1)
    tid = rng.integers(0, 2**60, 200_000)
    t0 = obmt_ns_from_date(dt.date(2016, 1, 16))
    dead = onboard.dead_intervals(5, t0, t0 + 10 * onboard.DAY_NS)
    t = rng.integers(t0, t0 + 10 * onboard.DAY_NS, 200_000)
    assert abs(onboard.in_dead_time(t, dead).mean() - onboard.DEAD_TIME_FRACTION) < 0.005
    for g, total in ((10.0, 0.10), (16.5, 0.15), (21.0, 0.20)):
        gone = onboard.in_dead_time(t, dead) | onboard.lost(5, tid, np.full(len(tid), g))
        assert abs(gone.mean() - total) < 0.005, (g, gone.mean())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.sampled_from([8.0, 15.5, 15.5, 20.0])), max_size=40))
def test_the_brightest_image_of_a_shared_transit_id_keeps_it_as_with_a_lexsort(items):
    ids = np.array([i for i, _ in items], dtype=np.int64)
    g = np.array([m for _, m in items])
    order = np.lexsort((g, ids))  # the reference: by id, then G, then index; the first of each id
    reference = order[np.r_[True, ids[order][1:] != ids[order][:-1]]] if len(ids) else order
    np.testing.assert_array_equal(slices._brightest_per_id(ids, g), reference)
