"""The reference catalogue as a previous cycle's product (gaiasim.sim.catalogue): its own ids, linked to the
truth in truth/catalogue_links; missing faint sources, merged pairs and spurious entries at their rates; and
the crossmatch checks that read the links (REQ-XM-001, gaiasim.validate.xm_pairs)."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gaiasim.sim import catalogue, sky
from gaiasim.sim.instrument.focal_plane import unit_from_radec
from gaiasim.validate import checks, xm_pairs

PIXEL = 300_000


def sources(g_mag, ra_deg=None, dec_deg=None) -> pa.Table:
    """Truth sources of G ``g_mag``, spread over a 2 x 2 deg field (or at the positions given)."""
    g = np.asarray(g_mag, dtype=np.float64)
    n = len(g)
    rng = np.random.default_rng(99)
    ra = rng.uniform(100.0, 102.0, n) if ra_deg is None else np.asarray(ra_deg, dtype=np.float64)
    dec = rng.uniform(10.0, 12.0, n) if dec_deg is None else np.asarray(dec_deg, dtype=np.float64)
    return pa.table({"source_id": (PIXEL << sky.SOURCE_ID_SHIFT) + np.arange(n), "pixel": np.full(n, PIXEL, np.int32),
                     "ra_deg": ra, "dec_deg": dec, "g_mag": g.astype(np.float32), "bp_rp": np.ones(n, np.float32)},
                    schema=sky.TRUTH_SOURCES)


def build(src: pa.Table, plan=catalogue.DEFAULT_PLAN, seed: int = 5):
    return catalogue.build(src, np.random.default_rng(seed), seed, plan)


def test_the_links_are_complete_and_consistent():
    g = np.r_[np.linspace(8.0, 20.7, 5000), 15.0, 17.0]
    ra = np.r_[np.random.default_rng(1).uniform(100, 102, 5000), 101.0, 101.0 + 0.2 / 3600]
    dec = np.r_[np.random.default_rng(2).uniform(10, 12, 5000), 11.0, 11.0]
    src = sources(g, ra, dec)
    cat, links, pixel = build(src)
    assert links.schema.equals(catalogue.TRUTH_CATALOGUE_LINKS) and len(pixel) == cat.num_rows
    ids = cat["source_id"].to_numpy()
    assert len(np.unique(ids)) == len(ids), "catalogue ids unique"
    assert not set(ids) & set(src["source_id"].to_numpy()), "catalogue ids are not truth ids"
    assert ids.min() >= catalogue.CATALOGUE_ID_BASE
    rows = links.to_pylist()
    truth_rows = [r for r in rows if r["source_id"] is not None]
    assert sorted(r["source_id"] for r in truth_rows) == sorted(src["source_id"].to_pylist()), "every source once"
    linked = {r["catalogue_source_id"] for r in rows if r["catalogue_source_id"] is not None}
    assert linked == set(ids.tolist()), "every entry linked, no link to a missing entry"
    per_entry = {}
    for r in rows:
        assert r["relation"] in catalogue.RELATIONS
        assert (r["catalogue_source_id"] is None) == (r["relation"] == "missing")
        assert (r["source_id"] is None) == (r["relation"] == "spurious")
        if r["catalogue_source_id"] is not None:
            per_entry.setdefault(r["catalogue_source_id"], []).append(r["relation"])
    for relations in per_entry.values():
        assert relations in (["single"], ["spurious"]) or (len(relations) >= 2 and set(relations) == {"merged"})
    kinds = {r["relation"] for r in rows}
    assert kinds == {"single", "merged", "missing", "spurious"}, kinds


def test_a_close_pair_is_one_entry_at_the_flux_weighted_position_with_the_summed_flux():
    sep = 0.3 / 3600  # deg, below the 0.4 arcsec merge limit
    src = sources([15.0, 16.0, 15.0], [101.0, 101.0 + sep, 101.5], [11.0, 11.0, 11.0])
    plan = catalogue.CataloguePlan(missing_faint=False, spurious_bright_fraction=0.0, spurious_fraction=0.0)
    cat, links, _ = build(src, plan)
    assert cat.num_rows == 2
    rel = dict(zip(links["source_id"].to_pylist(), links["relation"].to_pylist(), strict=True))
    ids = src["source_id"].to_pylist()
    assert [rel[i] for i in ids] == ["merged", "merged", "single"]
    to_cat = dict(zip(links["source_id"].to_pylist(), links["catalogue_source_id"].to_pylist(), strict=True))
    assert to_cat[ids[0]] == to_cat[ids[1]] != to_cat[ids[2]]
    assert to_cat[ids[0]] == catalogue.catalogue_ids(5, [ids[0]])[0], "keyed by the brighter member"
    merged = cat.filter(pa.compute.equal(cat["source_id"], to_cat[ids[0]])).to_pylist()[0]
    flux = 10 ** (-0.4 * np.array([15.0, 16.0]))
    want_g = -2.5 * np.log10(flux.sum())
    assert merged["g_mag"] == pytest.approx(want_g, abs=5 * merged["g_mag_sigma"] / np.sqrt(70) + 1e-6)
    want_ra = 101.0 + sep * flux[1] / flux.sum()
    got = unit_from_radec(merged["ra_deg"], merged["dec_deg"])
    want = unit_from_radec(want_ra, 11.0)
    assert np.degrees(np.arccos(min(1.0, float(np.dot(got, want))))) * 3.6e6 < 1.0, "within 1 mas (errors ~0.02)"
    nb = dict(zip(links["source_id"].to_pylist(), links["neighbour_sep_arcsec"].to_pylist(), strict=True))
    assert nb[ids[0]] == pytest.approx(0.3 * np.cos(np.radians(11.0)), rel=1e-3) and nb[ids[2]] is None


def test_missing_sources_follow_the_completeness_curve_and_none_is_bright_enough_to_alert():
    g = np.random.default_rng(3).uniform(18.0, 21.5, 40_000)
    _cat, links, _ = build(sources(g), catalogue.CataloguePlan(merge_arcsec=0.0, spurious_fraction=0.0))
    missing = np.array([r == "missing" for r in links["relation"].to_pylist()])[: len(g)]
    plan = catalogue.DEFAULT_PLAN
    assert not missing[g < plan.complete_below_g_mag].any(), "complete brighter than G 20"
    assert plan.complete_below_g_mag >= 19.0 + 1.0, "a missing source stays 1 mag below the new-source limit"
    for lo in np.arange(20.0, 21.5, 0.25):
        inside = (g >= lo) & (g < lo + 0.25)
        p = plan.p_missing(g[inside]).mean()
        n = inside.sum()
        assert abs(missing[inside].mean() - p) < 5 * np.sqrt(p * (1 - p) / n) + 1e-9, lo
    assert plan.p_missing(np.array([plan.completeness_g50_mag]))[0] == pytest.approx(0.5)


def test_spurious_entries_appear_at_their_rate_near_their_hosts_and_link_to_no_source():
    g = np.r_[np.full(2000, 10.0), np.full(20_000, 17.0)]
    plan = catalogue.CataloguePlan(missing_faint=False, merge_arcsec=0.0, spurious_bright_fraction=0.2,
                                   spurious_fraction=0.01)
    cat, links, _ = build(sources(g), plan)
    spurious = links.filter(pa.compute.equal(links["relation"], "spurious"))
    want = 2000 * 0.2 + 20_000 * 0.01
    assert abs(spurious.num_rows - want) < 5 * np.sqrt(2000 * 0.16 + 20_000 * 0.0099)
    ids = set(spurious["catalogue_source_id"].to_pylist())
    is_spur = np.array([i in ids for i in cat["source_id"].to_pylist()])
    u = unit_from_radec(cat["ra_deg"].to_numpy(), cat["dec_deg"].to_numpy())
    d = np.degrees(np.arccos(np.clip(u[is_spur] @ u[~is_spur].T, -1, 1))) * 3600
    assert ((d > 1.9) & (d < 30.1)).any(axis=1).all(), "each 2-30 arcsec from a catalogued source"
    g_spur = cat["g_mag"].to_numpy()[is_spur]
    assert (g_spur >= 19.0).all() and (g_spur <= 20.7).all()
    clean, clean_links, _ = build(sources(g), catalogue.CLEAN_PLAN)
    assert clean.num_rows == len(g) and set(clean_links["relation"].to_pylist()) == {"single"}


def test_the_same_seed_gives_the_same_catalogue_and_another_seed_other_ids():
    src = sources(np.random.default_rng(4).uniform(8.0, 20.7, 3000))
    a, la, _ = build(src, seed=5)
    b, lb, _ = build(src, seed=5)
    assert a.equals(b) and la.equals(lb)
    c, _, _ = build(src, seed=6)
    assert not set(a["source_id"].to_pylist()) & set(c["source_id"].to_pylist())


@given(st.lists(st.integers(0, (1 << 56) - 1), min_size=1, max_size=200, unique=True), st.integers(0, 2**32))
def test_catalogue_ids_are_a_bijection_into_their_own_range(keys, seed):
    ids = catalogue.catalogue_ids(seed, np.array(keys))
    assert len(set(ids.tolist())) == len(keys)
    assert ((ids >= catalogue.CATALOGUE_ID_BASE) & (ids < catalogue.CATALOGUE_ID_BASE * 2)).all()
    assert (catalogue.catalogue_ids(seed, np.array(keys)) == ids).all()


def test_catalogue_ids_refuse_keys_out_of_range():
    with pytest.raises(ValueError, match="2\\*\\*56"):
        catalogue.catalogue_ids(0, np.array([1 << 56]))


# --- the crossmatch as the harness judges it: through the links -------------------------------------------

A, B, C, M, N = 11, 12, 13, 14, 15  # truth sources: A and B merged, C single, M missing, N new (no link)
EA, EC, EB_WRONG = 1001, 1003, 1002  # catalogue entries: the merged one, C's, and one of no source
LINKS = [(EA, A, "merged", 0.3, 1.0), (EA, B, "merged", 0.3, -1.0), (EC, C, "single", None, None),
         (None, M, "missing", 1.5, 2.5), (EB_WRONG, None, "spurious", None, None)]


def con_of(matches: list[tuple[int, int | None]]) -> duckdb.DuckDBPyConnection:
    """A connection with views transits (transit_id, source_id) and truth_transits of ``matches``: (truth
    source, catalogue id the run matched it to, or None), and the links above."""
    con = duckdb.connect()
    con.register("transits", pa.table({"transit_id": list(range(len(matches))),
                                       "source_id": pa.array([m[1] for m in matches], pa.int64())}))
    con.register("truth_transits", pa.table({"transit_id": list(range(len(matches))),
                                             "source_id": [m[0] for m in matches]}))
    con.register("truth_catalogue_links", pa.Table.from_pylist(
        [dict(zip(catalogue.TRUTH_CATALOGUE_LINKS.names, r, strict=True)) for r in LINKS],
        schema=catalogue.TRUTH_CATALOGUE_LINKS))
    return con


def xm(matches) -> float:
    return checks.evaluate(con_of(matches), checks.get("crossmatch_correct")).value


RIGHT = [(A, EA), (B, EA), (C, EC), (M, None), (N, None)]


def test_crossmatch_is_right_through_the_links():
    assert xm(RIGHT) == 1.0


@pytest.mark.parametrize("wrong", [
    (C, C),  # a pipeline that matched by truth id
    (B, EC),  # a merged member matched to another entry
    (A, EB_WRONG),  # to a spurious entry
    (C, None),  # a catalogued source left unmatched
    (M, EC),  # a missing source matched to a neighbour
    (N, EA),  # a new source matched
])
def test_crossmatch_fires_on_each_kind_of_wrong_match(wrong):
    assert xm([*RIGHT, wrong]) == pytest.approx(5 / 6)


def test_the_pair_report_bins_by_separation_and_magnitude_difference():
    con = con_of([*RIGHT, (B, EC), (M, EC)])
    rows = {(r.population, r.sep_lo_arcsec, r.dg_lo_mag): r for r in xm_pairs.measure(con)}
    assert sorted(rows, key=str) == sorted([("isolated", None, None), ("pair", 0.0, 1.0), ("pair", 1.0, 2.0)], key=str)
    isolated = rows["isolated", None, None]  # C (no neighbour) and N (new: no link)
    assert (isolated.n, isolated.correct, isolated.target, isolated.meets) == (2, 2, 0.999, True)
    merged = rows["pair", 0.0, 1.0]  # A and B: 0.3 arcsec, |dG| 1.0; B once to the wrong entry
    assert (merged.n, merged.correct, merged.target, merged.meets) == (3, 2, None, None)
    assert (merged.ci_lo, merged.ci_hi) == pytest.approx((0.0943, 0.9916), abs=1e-3)  # Clopper-Pearson, 2 of 3
    missing = rows["pair", 1.0, 2.0]  # M: 1.5 arcsec, |dG| 2.5; once unmatched (right), once matched (wrong)
    assert (missing.n, missing.correct, missing.target, missing.meets) == (2, 1, xm_pairs.RESOLVED_TARGET, False)
    assert len(xm_pairs.view(list(rows.values())).rows) == 3
    assert xm_pairs.to_json(list(rows.values()))[0]["fraction"] is not None


def test_a_generated_dataset_lists_and_links_its_catalogue(demo_run):
    dataset, _ = demo_run
    cat = pq.read_table(dataset / "catalogue")
    links = pq.read_table(dataset / "truth" / "catalogue_links")
    truth = pq.read_table(dataset / "truth" / "sources")
    linked = pa.compute.drop_null(links["catalogue_source_id"]).to_pylist()
    assert sorted(set(linked)) == sorted(cat["source_id"].to_pylist())
    new = set(truth["source_id"].to_pylist()) - set(links["source_id"].to_pylist())
    assert all(i & variability_bit() for i in new), "only the day's new sources are not linked"
    manifest = (dataset / "dataset.json").read_text()
    assert "truth/catalogue_links/part-00000.parquet" in manifest


def variability_bit() -> int:
    from gaiasim.sim.variability import NEW_SOURCE_ID_BIT
    return NEW_SOURCE_ID_BIT


def test_the_pair_report_holds_in_a_tight_memory_budget(tmp_path):
    """A 1.2e7-transit day's pair report ran out of DuckDB's 1 GB when the truth and the links were joined in one
    pipeline; 300,000 transits in 40 MB failed the same way. It must spill, not fail."""
    n = 300_000
    con = duckdb.connect(":memory:", config={"memory_limit": "40MB", "threads": 2,
                                             "temp_directory": str(tmp_path / "spill")})
    tables = {"transits": f"SELECT i AS transit_id, i * 7 % {n} + 1000000000 AS source_id",
              "truth_transits": "SELECT i AS transit_id, i // 2 AS source_id",
              # Every tenth source has a neighbour 1 arcsec away, 0.5 mag apart; all link to their own entry.
              "truth_catalogue_links": "SELECT i AS source_id, i + 1000000000 AS catalogue_source_id, CASE WHEN i % 10 "
                                       "= 0 THEN 1.0 END AS neighbour_sep_arcsec, 0.5 AS neighbour_delta_g_mag"}
    for name, select in tables.items():
        con.execute(f"COPY ({select} FROM range({n}) t(i)) TO '{tmp_path / name}.parquet'")
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM '{tmp_path / name}.parquet'")
    rows = {(r.population, r.sep_lo_arcsec, r.dg_lo_mag): r for r in xm_pairs.measure(con)}
    assert rows["isolated", None, None].n == 270_000 and rows["pair", 1.0, 0.0].n == 30_000
    # The run matched transit i to source i * 7 % n's entry and its truth is i // 2: right only where they agree.
    right = sum(1 for i in range(n) if (i * 7) % n == i // 2)
    assert sum(r.correct for r in rows.values()) == right
