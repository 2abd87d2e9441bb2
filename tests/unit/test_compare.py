"""``gaiasim compare`` (gaiasim.compare): two synthetic runs written with pyarrow, matched row by row."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from gaiasim import compare
from gaiasim.cli import main
from gaiasim.spec import SpecError
from pipeline import geometry, schemas
from pipeline.io import InputError

N_ROWS = 6


def _column(field: pa.Field, n: int, rng: np.random.Generator) -> pa.Array:
    """``n`` values of ``field``'s type, distinct in every row (so any column may be part of a key)."""
    t = field.type
    if pa.types.is_dictionary(t):
        return pa.array([geometry.STRIPS[i % 11] for i in range(n)]).dictionary_encode().cast(t)
    if pa.types.is_floating(t):
        return pa.array(rng.normal(10.0, 3.0, n), pa.float64()).cast(t)
    if pa.types.is_integer(t):
        return pa.array(np.arange(1, n + 1) * 3, t)
    if pa.types.is_string(t):
        return pa.array([f"{field.name}-{i}" for i in range(n)], t)
    if pa.types.is_binary(t):
        return pa.array([bytes([i, 255 - i]) for i in range(n)], t)
    if pa.types.is_boolean(t):
        return pa.array([i % 2 == 0 for i in range(n)], t)
    if pa.types.is_list(t):
        return pa.array([[i, i + 7] for i in range(n)], t)
    raise TypeError(f"no test values for {field}")


def synthetic_tables(seed: int = 1) -> dict[str, pa.Table]:
    """Every run table with ``N_ROWS`` rows of its schema (pipeline.schemas.RUN_TABLES)."""
    rng = np.random.default_rng(seed)
    return {name: pa.table([_column(f, N_ROWS, rng) for f in schema], schema=schema)
            for name, schema in schemas.RUN_TABLES.items()}


def write_run(root: Path, tables: dict[str, pa.Table], split_hours: bool = False) -> Path:
    """A run folder that keeps the run contract (of a one-file dataset beside it): run.json, transits and
    ccd under ``hour=NN/`` hive partitions (two when ``split_hours``), the other tables in one file each."""
    root.mkdir(parents=True)
    dataset = root.parent / "dataset"
    (dataset / "tm").mkdir(parents=True, exist_ok=True)
    (dataset / "tm" / "a.tm").write_bytes(b"")
    empty_sha = hashlib.sha256(b"").hexdigest()
    rows = {name: t.num_rows for name, t in tables.items()}
    counts = {"files": 1, "packets_read": rows["quarantine"], "packets_used": 0, "duplicates_dropped": 0,
              "packets_quarantined": rows["quarantine"], "transits": rows["transits"], "transits_matched": 0,
              "ccd_images": rows["ccd"], "hk_samples": rows["hk"], "alerts": rows["alerts"]}
    (root / "run.json").write_text(json.dumps({"status": "complete", "pipeline_version": "test", "counts": counts,
                                               "dataset": str(dataset), "inputs": {"tm/a.tm": empty_sha}}))
    for name, table in tables.items():
        parts = [table.slice(0, 2), table.slice(2)] if split_hours else [table]
        for hour, part in enumerate(parts):
            folder = root / name / f"hour={hour:02d}" if name in ("transits", "ccd") else root / name
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(part, folder / f"part-{hour}.parquet")
    return root


def with_value(table: pa.Table, column: str, row: int, value) -> pa.Table:
    values = table[column].to_pylist()
    values[row] = value
    i = table.schema.get_field_index(column)
    return table.set_column(i, table.schema.field(i), pa.array(values, table.schema.field(i).type))


@pytest.fixture
def tables() -> dict[str, pa.Table]:
    return synthetic_tables()


def invoke(*args):
    return CliRunner().invoke(main, ["compare", *(str(a) for a in args)])


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one error line, got {lines}"
    assert lines[0].startswith("gaiasim: error:"), lines[0]
    return lines[0]


# --- the library ---------------------------------------------------------------------------------------


def test_every_run_table_has_a_key_of_its_schema_columns():
    assert set(compare.KEYS) == set(schemas.RUN_TABLES)
    for name, key in compare.KEYS.items():
        assert set(key) <= set(schemas.RUN_TABLES[name].names), f"{name} key {key} not in its schema"


def test_identical_runs_have_no_difference(tmp_path, tables):
    a, b = write_run(tmp_path / "a", tables), write_run(tmp_path / "b", tables, split_hours=True)
    result = compare.compare_runs(a, b)
    assert not result.differs
    assert [t.table for t in result.tables] == list(schemas.RUN_TABLES)
    for t in result.tables:
        assert (t.rows_a, t.rows_b, t.only_in_a, t.only_in_b, t.columns) == (N_ROWS, N_ROWS, 0, 0, ()), t


def test_a_row_removed_from_b_is_only_in_a(tmp_path, tables):
    a = write_run(tmp_path / "a", tables)
    b = write_run(tmp_path / "b", {**tables, "transits": tables["transits"].slice(1)})
    result = compare.compare_runs(a, b)
    transits = result.tables[0]
    assert (transits.table, transits.only_in_a, transits.only_in_b) == ("transits", 1, 0)
    assert transits.only_in_a_examples == ((tables["transits"]["transit_id"][0].as_py(),),)
    assert transits.columns == ()
    assert result.differs and [t.table for t in result.tables if t.differs] == ["transits"]


def test_a_value_beyond_tolerance_is_reported_with_its_key_and_both_values(tmp_path, tables):
    ccd = tables["ccd"]
    old = ccd["al_px"][3].as_py()
    new = float(np.float32(old + 1e-3))  # al_px is float32
    a = write_run(tmp_path / "a", tables)
    b = write_run(tmp_path / "b", {**tables, "ccd": with_value(ccd, "al_px", 3, new)})
    result = compare.compare_runs(a, b, {"ccd": {"al_px": compare.Tolerance(abs_tol=1e-5)}})
    (diff,) = next(t for t in result.tables if t.table == "ccd").columns
    key = (ccd["transit_id"][3].as_py(), ccd["strip"][3].as_py())
    assert (diff.column, diff.n_differ) == ("al_px", 1)
    assert diff.examples == ((key, old, new),)


def test_a_value_within_tolerance_passes(tmp_path, tables):
    ccd = tables["ccd"]
    a = write_run(tmp_path / "a", tables)
    b = write_run(tmp_path / "b", {**tables, "ccd": with_value(ccd, "al_px", 3, ccd["al_px"][3].as_py() + 1e-8)})
    assert not compare.compare_runs(a, b, {"ccd": {"al_px": compare.Tolerance(abs_tol=1e-6)}}).differs


def test_relative_tolerance_scales_with_the_larger_value(tmp_path, tables):
    ccd = with_value(tables["ccd"], "flux_e", 0, 1.0e6)
    a = write_run(tmp_path / "a", {**tables, "ccd": ccd})
    b = write_run(tmp_path / "b", {**tables, "ccd": with_value(ccd, "flux_e", 0, 1.0e6 + 8.0)})  # rel 8e-6
    loose, tight = compare.Tolerance(rel_tol=1e-5), compare.Tolerance(rel_tol=1e-6)
    assert not compare.compare_runs(a, b, {"ccd": {"flux_e": loose}}).differs
    assert compare.compare_runs(a, b, {"ccd": {"flux_e": tight}}).differs


def test_unlisted_float_columns_are_compared_exactly(tmp_path, tables):
    transits = tables["transits"]
    a = write_run(tmp_path / "a", tables)
    b = write_run(tmp_path / "b", {**tables, "transits": with_value(transits, "ra_deg", 2,
                                                                       math.nextafter(transits["ra_deg"][2].as_py(),
                                                                                      math.inf))})
    (diff,) = compare.compare_runs(a, b, {}).tables[0].columns
    assert (diff.column, diff.n_differ, diff.tolerance) == ("ra_deg", 1, None)


def test_nan_equals_nan_and_null_null_but_null_differs_from_a_value(tmp_path, tables):
    ccd = with_value(tables["ccd"], "ac_px", 0, math.nan)
    ccd = with_value(ccd, "ac_px", 1, None)
    a = write_run(tmp_path / "a", {**tables, "ccd": ccd})
    b = write_run(tmp_path / "b", {**tables, "ccd": with_value(ccd, "ac_px_err", 4, None)})
    result = compare.compare_runs(a, b, compare.load_tolerances())
    (diff,) = next(t for t in result.tables if t.table == "ccd").columns
    assert (diff.column, diff.n_differ, diff.examples[0][2]) == ("ac_px_err", 1, None)


def test_non_float_columns_differ_exactly_bytes_and_lists_included(tmp_path, tables):
    b_tables = {**tables, "quarantine": with_value(tables["quarantine"], "raw", 0, b"\x00\x01"),
                "alerts": with_value(tables["alerts"], "transit_ids", 5, [1, 2, 3])}
    result = compare.compare_runs(write_run(tmp_path / "a", tables), write_run(tmp_path / "b", b_tables))
    differing = {(t.table, d.column): d.n_differ for t in result.tables for d in t.columns}
    assert differing == {("quarantine", "raw"): 1, ("alerts", "transit_ids"): 1}
    doc = compare.to_json(result)
    assert doc["tables"]["quarantine"]["columns"]["raw"]["examples"][0]["b"] == "0001"


def test_duplicate_keys_are_counted_as_a_difference(tmp_path, tables):
    hk = tables["hk"]
    b = write_run(tmp_path / "b", {**tables, "hk": pa.concat_tables([hk, hk.slice(0, 1)])})
    hk_diff = next(t for t in compare.compare_runs(write_run(tmp_path / "a", tables), b).tables if t.table == "hk")
    assert (hk_diff.duplicate_keys_a, hk_diff.duplicate_keys_b, hk_diff.differs) == (0, 1, True)


def test_a_table_with_no_parquet_is_empty(tmp_path, tables):
    a = write_run(tmp_path / "a", tables)
    b = write_run(tmp_path / "b", {k: v for k, v in tables.items() if k != "gaps"})
    gaps = next(t for t in compare.compare_runs(a, b).tables if t.table == "gaps")
    assert (gaps.rows_a, gaps.rows_b, gaps.only_in_a) == (N_ROWS, 0, N_ROWS)


def test_a_folder_without_run_json_is_refused(tmp_path, tables):
    a = write_run(tmp_path / "a", tables)
    (tmp_path / "b").mkdir()
    with pytest.raises(InputError, match=r"run\.json is missing"):
        compare.compare_runs(a, tmp_path / "b")


@pytest.mark.parametrize(("toml", "words"), [
    ("[ccd]\nnot_a_column = { abs = 1 }\n", ["ccd.not_a_column", "al_px"]),
    ("[cdd]\nal_px = { abs = 1 }\n", ["'cdd'", "transits"]),
    ("[ccd]\nflags = { abs = 1 }\n", ["not a float column ccd.flags", "al_px"]),
    ("[ccd]\nal_px = { abs = -1 }\n", ["ccd.al_px.abs", ">= 0"]),
    ("[ccd]\nal_px = { tol = 1 }\n", ["ccd.al_px.tol", "abs, rel"]),
])
def test_bad_tolerance_files_name_the_key(tmp_path, toml, words):
    path = tmp_path / "tol.toml"
    path.write_text(toml)
    with pytest.raises(SpecError) as info:
        compare.load_tolerances(path)
    for w in words:
        assert w in str(info.value)


def test_the_default_tolerances_load():
    tol = compare.load_tolerances()
    assert tol["ccd"]["al_px"] == compare.Tolerance(abs_tol=1e-5)


# --- the command ---------------------------------------------------------------------------------------


def test_cli_identical_runs_exit_0(tmp_path, tables):
    result = invoke(write_run(tmp_path / "a", tables), write_run(tmp_path / "b", tables))
    assert result.exit_code == 0, result.output
    assert "runs agree within tolerance" in result.stdout


def test_cli_perturbed_value_exits_1_and_shows_it_in_the_json(tmp_path, tables):
    ccd = tables["ccd"]
    a = write_run(tmp_path / "a", tables)
    b = write_run(tmp_path / "b", {**tables, "ccd": with_value(ccd, "al_px", 3, 42.5)})
    out = tmp_path / "out" / "cmp.json"
    result = invoke(a, b, "--json", out)
    assert result.exit_code == 1, result.output
    assert "runs differ in ccd" in result.stdout and "ccd.al_px" in result.stdout
    doc = json.loads(out.read_text())
    example = doc["tables"]["ccd"]["columns"]["al_px"]["examples"][0]
    assert example == {"key": [ccd["transit_id"][3].as_py(), ccd["strip"][3].as_py()],
                       "a": ccd["al_px"][3].as_py(), "b": 42.5}
    assert doc["differs"] and not doc["tables"]["transits"]["differs"]


def test_cli_within_the_given_tolerance_exits_0(tmp_path, tables):
    ccd = tables["ccd"]
    a = write_run(tmp_path / "a", tables)
    b = write_run(tmp_path / "b", {**tables, "ccd": with_value(ccd, "bg_e", 0, ccd["bg_e"][0].as_py() + 0.01)})
    tol = tmp_path / "tol.toml"
    tol.write_text("[ccd]\nbg_e = { abs = 0.1 }\n")
    assert invoke(a, b).exit_code == 1
    result = invoke(a, b, "--tolerances", tol)
    assert result.exit_code == 0, result.output


def test_cli_bad_tolerance_key_exits_2_with_one_line(tmp_path, tables):
    tol = tmp_path / "tol.toml"
    tol.write_text("[transits]\nra = { abs = 1e-9 }\n")
    result = invoke(write_run(tmp_path / "a", tables), write_run(tmp_path / "b", tables), "--tolerances", tol)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "transits.ra" in line and "ra_deg" in line, line


def test_cli_folder_without_run_json_exits_2_with_one_line(tmp_path, tables):
    (tmp_path / "b").mkdir()
    result = invoke(write_run(tmp_path / "a", tables), tmp_path / "b")
    assert result.exit_code == 2
    assert "run.json is missing" in one_error_line(result)
