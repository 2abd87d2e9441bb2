"""Sky cells of the reference catalogue (pipeline.skycells): a source near a transit is always in the
cells loaded for it, across the ra wrap and at the poles; a split catalogue loads back whole."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline import geometry, schemas, skycells
from tests.naive.skycells import cells_within_naive


@given(st.floats(0, 360, exclude_max=True), st.floats(-90, 90), st.floats(0, 2 * np.pi),
       st.floats(0, 1.0), st.sampled_from([500.0, 10_000.0]))
def test_a_source_within_the_radius_of_a_transit_is_in_its_cells(ra, dec, angle, fraction, radius_mas):
    # The source: the transit moved by up to the radius (the match radius, or 20x it) in any direction.
    sep_mas = fraction * radius_mas
    u = geometry.unit_from_radec(np.array([ra]), np.array([dec])).reshape(3)
    pole = np.array([0.0, 0.0, 1.0]) if abs(u[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = np.cross(u, pole)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(u, e1)
    theta = sep_mas * geometry.MAS_RAD
    v = np.cos(theta) * u + np.sin(theta) * (np.cos(angle) * e1 + np.sin(angle) * e2)
    src_ra, src_dec = geometry.radec_from_unit(v.reshape(1, 3))
    loaded = skycells.cells_within(np.array([ra]), np.array([dec]), radius_mas / 3.6e6)
    assert skycells.cell_of(src_ra, src_dec)[0] in loaded


@given(st.floats(0, 360, exclude_max=True), st.floats(-86, 86))
def test_a_transit_away_from_cell_edges_loads_only_its_own_cell(ra, dec):
    """The point of cells_within: no neighbours where the match circle stays inside the cell."""
    cell = skycells.cell_of(np.array([ra]), np.array([dec]))
    r_deg = 500.0 / 3.6e6
    row, col = cell[0] // skycells.N_RA, cell[0] % skycells.N_RA
    d_ra = (ra - col * skycells.CELL_DEG) % 360.0
    d_dec = dec + 90.0 - row * skycells.CELL_DEG
    margin = 2 * r_deg / np.cos(np.radians(abs(dec) + 1))
    if margin < d_ra < skycells.CELL_DEG - margin and margin < d_dec < skycells.CELL_DEG - margin:
        assert skycells.cells_within(np.array([ra]), np.array([dec]), r_deg).tolist() == cell.tolist()


@given(st.integers(0, 2**32 - 1), st.integers(0, 200), st.sampled_from([500.0, 10_000.0, 3.6e6]),
       st.sampled_from(["anywhere", "polar", "ra_wrap", "cell_edges"]))
def test_the_cells_kernel_equals_the_numpy_reference(seed, n, radius_mas, where):
    rng = np.random.default_rng(seed)
    ra, dec = rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    if where == "polar":
        dec = np.sign(dec) * rng.uniform(85, 90, n)
    elif where == "ra_wrap":
        ra = rng.uniform(-0.01, 0.01, n) % 360.0
    elif where == "cell_edges":  # on a cell boundary, or a radius away from it
        shift_deg = radius_mas / 3.6e6
        ra = rng.integers(0, skycells.N_RA, n) * skycells.CELL_DEG + rng.choice([0.0, 1.0, -1.0], n) * shift_deg
        dec = rng.integers(-45, 46, n) * skycells.CELL_DEG + rng.choice([0.0, 1.0, -1.0], n) * shift_deg
        ra, dec = ra % 360.0, np.clip(dec, -90, 90)
    got = skycells.cells_within(ra, dec, radius_mas / 3.6e6)
    assert np.array_equal(got, cells_within_naive(ra, dec, radius_mas / 3.6e6))


def test_no_positions_no_cells():
    assert skycells.cells_within(np.empty(0), np.empty(0), 1e-4).tolist() == []


def test_a_split_catalogue_loads_back_whole_and_by_cell(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    n = 5000
    table = pa.table({"source_id": np.arange(n, dtype=np.int64), "ra_deg": rng.uniform(0, 360, n),
                      "dec_deg": np.degrees(np.arcsin(rng.uniform(-1, 1, n))),
                      "g_mag": rng.uniform(3, 21, n).astype(np.float32),
                      "g_mag_sigma": rng.uniform(0, 0.1, n).astype(np.float32)}, schema=schemas.CATALOGUE)
    (tmp_path / "day" / "catalogue").mkdir(parents=True)
    pq.write_table(table, tmp_path / "day" / "catalogue" / "part-0.parquet")
    monkeypatch.setattr(skycells, "BATCH_ROWS", 700)  # several batches
    index = skycells.split(tmp_path / "day", tmp_path / "work")
    assert index["sources"] == n == skycells.check(tmp_path / "day")
    whole = skycells.load_records(tmp_path / "work", index)
    assert sorted(whole["source_id"].tolist()) == list(range(n))
    # Each source's unit vector, stored by the split, is its (ra, dec)'s.
    assert np.array_equal(whole["u"], geometry.unit_from_radec(whole["ra_deg"], whole["dec_deg"]))
    assert skycells.table(whole).schema.equals(schemas.CATALOGUE)
    cells = np.array([0, 5, 300, skycells.N_RA * skycells.N_DEC - 1])
    part = skycells.load_records(tmp_path / "work", index, cells)
    want = np.flatnonzero(np.isin(skycells.cell_of(table["ra_deg"].to_numpy(), table["dec_deg"].to_numpy()), cells))
    assert sorted(part["source_id"].tolist()) == want.tolist()
    some = skycells.sources(tmp_path / "work", index, np.array([7, 4999, 123456]))
    assert sorted(some["source_id"].to_pylist()) == [7, 4999]
    # A finished split is read back (bounds from bounds.npy), not redone: the catalogue is not read again.
    monkeypatch.setattr(skycells, "batches", lambda _dataset: pytest.fail("the finished split was redone"))
    again = skycells.split(tmp_path / "day", tmp_path / "work")
    assert again["sources"] == n and np.array_equal(again["cell_bounds"], index["cell_bounds"])


def test_a_split_of_the_older_layout_is_redone(tmp_path):
    """An index.json of older code (cell bounds as JSON lists, no bounds.npy) is not trusted: split again."""
    table = pa.table({"source_id": np.arange(3, dtype=np.int64), "ra_deg": [1.0, 100.0, 250.0],
                      "dec_deg": [-60.0, 0.5, 45.0], "g_mag": np.full(3, 15.0, np.float32),
                      "g_mag_sigma": np.full(3, 0.01, np.float32)}, schema=schemas.CATALOGUE)
    (tmp_path / "day" / "catalogue").mkdir(parents=True)
    pq.write_table(table, tmp_path / "day" / "catalogue" / "part-0.parquet")
    (tmp_path / "work" / "catalogue").mkdir(parents=True)
    old = {"sources": 99, "cell_deg": skycells.CELL_DEG, "cell_bounds": [[0] * (skycells.N_RA * skycells.N_DEC + 1)]}
    (tmp_path / "work" / "catalogue" / skycells.INDEX).write_text(json.dumps(old))
    index = skycells.split(tmp_path / "day", tmp_path / "work")
    assert index["sources"] == 3 and index["cell_bounds"].shape == (1, skycells.N_RA * skycells.N_DEC + 1)
    assert sorted(skycells.load_records(tmp_path / "work", index)["source_id"].tolist()) == [0, 1, 2]


def test_a_footprint_keeps_every_source_within_reach_and_drops_the_far_ones(tmp_path):
    """load_records(near=footprint(...)) keeps every source within the radius of a position (so the crossmatch
    is unchanged), near the poles and across ra = 0 too, and drops most of a cell's sources far from them."""
    rng = np.random.default_rng(5)
    n = 200_000
    ra = np.r_[rng.uniform(0, 360, n - 2000), rng.uniform(0, 360, 2000)]
    dec = np.r_[np.degrees(np.arcsin(rng.uniform(-1, 1, n - 2000))), rng.uniform(89.0, 90.0, 2000)]
    table = pa.table({"source_id": np.arange(n, dtype=np.int64), "ra_deg": ra, "dec_deg": dec,
                      "g_mag": np.full(n, 15.0, np.float32), "g_mag_sigma": np.full(n, 0.01, np.float32)},
                     schema=schemas.CATALOGUE)
    (tmp_path / "day" / "catalogue").mkdir(parents=True)
    pq.write_table(table, tmp_path / "day" / "catalogue" / "part-0.parquet")
    index = skycells.split(tmp_path / "day", tmp_path / "work")
    # Positions: a short strip across ra = 0, a few near the north pole, one at the south pole.
    pra = np.r_[np.linspace(359.5, 360.4, 300) % 360.0, rng.uniform(0, 360, 20), 10.0]
    pdec = np.r_[np.linspace(-0.3, 0.2, 300), rng.uniform(89.3, 89.99, 20), -90.0]
    radius_deg = 15.0 / 3600
    cells = skycells.cells_within(pra, pdec, radius_deg)
    got = skycells.load_records(tmp_path / "work", index, cells, near=skycells.footprint(pra, pdec, radius_deg))
    u, pu = geometry.unit_from_radec(ra, dec), geometry.unit_from_radec(pra, pdec)
    within = np.flatnonzero((u @ pu.T).max(axis=1) >= np.cos(np.radians(radius_deg)))
    assert len(within) > 0 and set(within.tolist()) <= set(got["source_id"].tolist())
    whole = skycells.load_records(tmp_path / "work", index, cells)
    assert set(got["source_id"].tolist()) <= set(whole["source_id"].tolist())
    strip = slice(0, 300)  # (the polar positions take whole rows of cells and of fine cells alike)
    cells = skycells.cells_within(pra[strip], pdec[strip], radius_deg)
    kept = skycells.load_records(tmp_path / "work", index, cells,
                                 near=skycells.footprint(pra[strip], pdec[strip], radius_deg))
    assert len(kept) < 0.5 * len(skycells.load_records(tmp_path / "work", index, cells)), \
        "the footprint must drop the cells' far sources"
    # Same order as the cells' records (batch and cell order).
    assert np.array_equal(got["source_id"], whole["source_id"][np.isin(whole["source_id"], got["source_id"])])
