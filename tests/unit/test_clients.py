"""A run read by real clients without surprises (docs/clients.md): the DuckDB CLI of the current release
opens catalog.duckdb, from a run that was moved; every column carries its unit and meaning, every OBMT a
UTC beside it; plain pandas and polars, gaiasim.read_table and ``gaiasim query --format json`` keep every
64-bit id exact."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import gaiasim
from gaiasim.cli import main
from pipeline import catalog, io, layout, schemas, timescale

#: The DuckDB CLI the test extra installs (pyproject: duckdb-cli==1.5.6, the current stable release).
DUCKDB_CLI_VERSION = "v1.5."
#: The storage version of a DuckDB file that every DuckDB from 1.0 on reads (the header's version number;
#: DuckDB's "Storage Versions and Format" page: 64 for v0.10.0 to v1.1.x files).
STORAGE_64 = 64
ID_TABLES = {"transits": ("transit_id", "source_id"), "alerts": ("alert_id", "source_id")}


def _duckdb_cli() -> str | None:
    """The DuckDB CLI binary: $GAIASIM_DUCKDB_CLI, else the one of the duckdb-cli package (the test extra)."""
    if os.environ.get("GAIASIM_DUCKDB_CLI"):
        return os.environ["GAIASIM_DUCKDB_CLI"]
    spec = importlib.util.find_spec("duckdb_cli")
    binary = Path(spec.origin).parent / "duckdb" if spec and spec.origin else None
    return str(binary) if binary and binary.is_file() else None


@pytest.fixture
def moved_run(transient_run, tmp_path) -> Path:
    """The transients day's run copied to a folder, then moved to another (the first one deleted): a run
    with unmatched transits and new-source alerts (null source_ids)."""
    first = tmp_path / "first" / "run"
    shutil.copytree(transient_run[1], first)
    moved = tmp_path / "elsewhere" / "run"
    moved.parent.mkdir()
    shutil.move(first, moved)
    shutil.rmtree(tmp_path / "first")
    return moved


def _exact(run_dir: Path, table: str) -> pa.Table:
    """The id columns as pyarrow reads them (exact, nulls as null), in transit / alert order."""
    ids = ID_TABLES[table]
    return pq.read_table(run_dir / table, columns=list(ids)).sort_by(ids[0])


def test_the_run_has_what_these_tests_need(moved_run):
    for table, (key, nullable) in ID_TABLES.items():
        t = _exact(moved_run, table)
        assert t[nullable].null_count > 0, f"{table}.{nullable} has no null: the float64 trap cannot show"
        assert pc.max(t[key]).as_py() > 2**53, f"{table}.{key}: no id above 2**53"


# --- the DuckDB catalogue -----------------------------------------------------------------------------


def test_the_catalogue_is_written_for_duckdb_1_1_and_later(moved_run):
    header = (moved_run / catalog.CATALOG).read_bytes()[:20]
    assert header[8:12] == b"DUCK" and struct.unpack_from("<Q", header, 12)[0] == STORAGE_64


def test_a_catalogue_in_the_writer_s_own_storage_would_be_caught(tmp_path):
    """The check above can fire: DuckDB 2's default storage (what catalog.duckdb was before) is another."""
    if int(duckdb.__version__.split(".")[0]) < 2:
        pytest.skip(f"DuckDB {duckdb.__version__} writes storage {STORAGE_64} by default")
    path = tmp_path / "default.duckdb"
    duckdb.connect(str(path)).close()
    assert struct.unpack_from("<Q", path.read_bytes(), 12)[0] != STORAGE_64


def test_the_duckdb_cli_opens_the_catalogue_of_a_moved_run(moved_run, tmp_path):
    cli = _duckdb_cli()
    if cli is None:
        pytest.skip("no DuckDB CLI: pip install duckdb-cli==1.5.6 (the test extra) or set GAIASIM_DUCKDB_CLI")
    version = subprocess.run([cli, "-version"], capture_output=True, text=True, timeout=60).stdout
    assert version.startswith(DUCKDB_CLI_VERSION), version
    counts = json.loads((moved_run / layout.RUN_JSON).read_text())["counts"]
    sql = ("SELECT count(*) AS n, count(utc) AS with_utc, max(transit_id)::VARCHAR AS last FROM transits; "
           "SELECT count(*) AS n FROM duckdb_columns() WHERE table_name = 'ccd' AND comment IS NULL")
    # From the run folder: nothing to set.
    here = subprocess.run([cli, "-readonly", "-json", catalog.CATALOG, "-c", sql], cwd=moved_run,
                          capture_output=True, text=True, timeout=120)
    assert here.returncode == 0, here.stderr
    last = str(pc.max(_exact(moved_run, "transits")["transit_id"]).as_py())
    assert here.stdout.split("\n")[0] == json.dumps([{"n": counts["transits"], "with_utc": counts["transits"],
                                                      "last": last}], separators=(",", ":"))
    assert json.loads(here.stdout.split("\n", 1)[1]) == [{"n": 0}]
    # From anywhere else, with file_search_path (what docs/clients.md says).
    there = subprocess.run([cli, "-readonly", "-json", "-cmd", f"SET file_search_path = '{moved_run}'",
                            str(moved_run / catalog.CATALOG), "-c", "SELECT count(*) AS n FROM alerts"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert there.returncode == 0 and json.loads(there.stdout) == [{"n": counts["alerts"]}], there.stderr


def test_the_catalogue_of_a_moved_run_reads_that_run(moved_run, tmp_path, monkeypatch):
    counts = json.loads((moved_run / layout.RUN_JSON).read_text())["counts"]
    with gaiasim.open_catalog(moved_run) as con:  # file_search_path: from any working directory
        monkeypatch.chdir(tmp_path)
        assert con.sql("SELECT count(*) FROM transits").fetchall() == [(counts["transits"],)]
        assert con.sql("SELECT count(*) FROM ccd").fetchall() == [(counts["ccd_images"],)]
    monkeypatch.chdir(moved_run)  # opened from the run folder, a plain connection needs nothing
    with duckdb.connect(catalog.CATALOG, read_only=True) as con:
        assert con.sql("SELECT count(*) FROM hk").fetchall() == [(counts["hk_samples"],)]
    monkeypatch.chdir(tmp_path)  # from elsewhere, without the setting: an error naming the relative files
    with duckdb.connect(str(moved_run / catalog.CATALOG), read_only=True) as con, \
            pytest.raises(duckdb.IOException, match=r"transits/\*\*/\*\.parquet"):
        con.sql("SELECT count(*) FROM transits").fetchall()


def test_gaiasim_query_reads_a_moved_run(moved_run):
    done = CliRunner().invoke(main, ["query", str(moved_run), "SELECT count(*) AS n FROM transits", "--format",
                                     "csv"])
    counts = json.loads((moved_run / layout.RUN_JSON).read_text())["counts"]
    assert done.exit_code == 0 and done.output == f"n\n{counts['transits']}\n", done.output


def test_every_column_of_every_view_carries_its_unit_and_meaning(moved_run):
    with gaiasim.open_catalog(moved_run) as con:
        rows = con.sql("SELECT table_name, column_name, comment FROM duckdb_columns() WHERE NOT internal").fetchall()
        views = dict(con.sql("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall())
    assert set(views) == set(schemas.RUN_TABLES) and all(views.values())
    comments = {(t, c): text for t, c, text in rows}
    assert all(comments.values()), [k for k, v in comments.items() if not v]
    for name, schema in schemas.RUN_TABLES.items():
        for field in schema:
            unit = field.metadata[b"unit"].decode()
            doc = field.metadata[b"doc"].decode()
            assert comments[name, field.name] == (f"[{unit}] {doc}" if unit else doc)
        for column in schemas.obmt_columns(schema):
            assert comments[name, catalog.utc_name(column)].startswith(f"UTC of {column} ")
    assert comments["transits", "hour"].startswith("[h] ")


def test_a_column_without_a_description_stops_the_catalogue(moved_run, monkeypatch):
    """The comments cannot silently skip a column: a view column the schemas do not describe is an error."""
    monkeypatch.setattr(layout, "PARTITION_KEYS", {})
    with pytest.raises(ValueError, match=r"no description for column.*hour"):
        catalog.write_catalog(moved_run, json.loads((moved_run / layout.RUN_JSON).read_text())
                              ["fingerprint"]["day_span_ns"])


def test_each_obmt_column_has_its_utc_beside_it(moved_run):
    span = json.loads((moved_run / layout.RUN_JSON).read_text())["fingerprint"]["day_span_ns"]
    relation = timescale.utc_relation(span)
    with gaiasim.open_catalog(moved_run) as con:
        for name, schema in schemas.RUN_TABLES.items():
            for column in schemas.obmt_columns(schema):
                got = con.sql(f"SELECT {column} AS obmt, {catalog.utc_name(column)} AS utc, obmt_utc({column}) AS "
                              f"macro FROM {name} WHERE {column} IS NOT NULL").fetchnumpy()
                want = relation.utc_us(got["obmt"]).astype("datetime64[us]")
                assert np.array_equal(got["utc"], want), f"{name}.{column}"
                assert np.array_equal(got["macro"], want)
        n = con.sql("SELECT count(*) FROM transits").fetchall()[0][0]
    assert n > 0


@pytest.mark.parametrize(("column", "name"), [("obmt_ns", "utc"), ("start_ns", "start_utc"),
                                              ("first_obmt_ns", "first_utc"), ("last_obmt_ns", "last_utc")])
def test_utc_column_names(column, name):
    assert catalog.utc_name(column) == name


# --- pandas, polars and gaiasim.read_table ------------------------------------------------------------


@pytest.mark.parametrize("table", sorted(ID_TABLES))
def test_plain_pandas_and_polars_keep_every_id_exact(moved_run, table):
    want = _exact(moved_run, table)
    key = ID_TABLES[table][0]
    frame = pd.read_parquet(moved_run / table).sort_values(key)
    assert str(frame[ID_TABLES[table][1]].dtype) == "Int64"  # the nullable one (the other one holds no null)
    for column in ID_TABLES[table]:
        assert [None if v is pd.NA else int(v) for v in frame[column]] == want[column].to_pylist()
    polars = pl.read_parquet(moved_run / table / "**" / "*.parquet").sort(key)
    for column in ID_TABLES[table]:
        assert polars[column].to_list() == want[column].to_pylist()


def _as_another_sut_writes_it(run_dir: Path, table: str) -> None:
    """Rewrite ``table`` as a plain pyarrow writer would (no pandas metadata, ``strip`` as plain strings)."""
    data = pq.read_table(run_dir / table)
    data = data.select([n for n in data.column_names if n != "hour"]).replace_schema_metadata(None)
    if "strip" in data.column_names:
        data = data.set_column(data.schema.get_field_index("strip"), "strip", data["strip"].cast(pa.string()))
    shutil.rmtree(run_dir / table)
    (run_dir / table).mkdir()
    pq.write_table(data, run_dir / table / "part-0.parquet")


def test_without_the_metadata_plain_pandas_corrupts_ids_and_read_table_does_not(moved_run):
    want = _exact(moved_run, "transits")
    _as_another_sut_writes_it(moved_run, "transits")
    plain = pd.read_parquet(moved_run / "transits").sort_values("transit_id")
    assert plain["source_id"].dtype == np.float64  # the trap this file is about: it is real
    assert [None if v != v else int(v) for v in plain["source_id"]] != want["source_id"].to_pylist()
    frame = gaiasim.read_table(moved_run, "transits", "pandas").sort_values("transit_id")
    assert str(frame["source_id"].dtype) == "Int64"
    assert [None if v is pd.NA else int(v) for v in frame["source_id"]] == want["source_id"].to_pylist()
    arrow = gaiasim.read_table(moved_run, "transits").sort_by("transit_id")
    assert arrow.schema.equals(schemas.TRANSITS, check_metadata=False)
    assert arrow["source_id"].to_pylist() == want["source_id"].to_pylist()
    polars = gaiasim.read_table(moved_run, "transits", "polars", columns=["transit_id", "source_id"])
    assert polars.sort("transit_id")["source_id"].to_list() == want["source_id"].to_pylist()


def test_read_table_takes_the_contract_s_types(moved_run):
    _as_another_sut_writes_it(moved_run, "ccd")
    ccd = gaiasim.read_table(moved_run, "ccd", columns=["transit_id", "strip"])
    assert ccd.schema.field("strip").type == schemas.STRIP_TYPE and ccd.num_rows > 0


@pytest.mark.parametrize(("args", "message"), [
    (("nosuch",), "'nosuch' is not a table of a run; name one of transits"),
    (("transits", "excel"), "backend 'excel' is not one of arrow, pandas, polars"),
    (("transits", "arrow", ["obmt"]), "transits has no column obmt; its columns: transit_id, obmt_ns"),
])
def test_read_table_refuses_in_one_line(moved_run, args, message):
    with pytest.raises(io.InputError, match=message) as caught:
        gaiasim.read_table(moved_run, *args)
    assert "\n" not in str(caught.value)


def test_read_table_names_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(io.InputError, match="is not a finished run"):
        gaiasim.read_table(tmp_path, "transits")
    with pytest.raises(io.InputError, match=r"catalog\.duckdb is missing"):
        gaiasim.open_catalog(tmp_path)


_IDS = st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), max_size=40)


@given(ids=_IDS, small=st.lists(st.one_of(st.none(), st.integers(-128, 127)), max_size=40))
def test_the_writer_s_files_give_pandas_exact_nullable_integers(tmp_path_factory, ids, small):
    """pipeline.io.write_table: plain pandas.read_parquet reads every nullable integer column back exactly,
    and two writes of one table are the same bytes."""
    schema = pa.schema([pa.field("id", pa.int64(), nullable=True), pa.field("k", pa.int8(), nullable=True),
                        pa.field("n", pa.int64(), nullable=False)])
    small = (small + [None] * len(ids))[:len(ids)]
    table = pa.table({"id": pa.array(ids, pa.int64()), "k": pa.array(small, pa.int8()),
                      "n": pa.array(range(len(ids)), pa.int64())}, schema=schema)
    folder = tmp_path_factory.mktemp("w")
    io.write_table(table, schema, folder / "a.parquet")
    io.write_table(table, schema, folder / "b.parquet")
    assert (folder / "a.parquet").read_bytes() == (folder / "b.parquet").read_bytes()
    frame = pd.read_parquet(folder / "a.parquet")
    assert [str(frame[c].dtype) for c in frame] == ["Int64", "Int8", "int64"]
    assert [None if v is pd.NA else int(v) for v in frame["id"]] == ids
    assert [None if v is pd.NA else int(v) for v in frame["k"]] == small


def test_a_schema_without_nullable_integers_gets_no_pandas_metadata():
    assert io.pandas_metadata(schemas.HK) is None and io.pandas_metadata(schemas.TRANSITS) is not None


# --- gaiasim query --format json -----------------------------------------------------------------------


def test_query_json_keeps_every_64_bit_id_exact(moved_run):
    """The choice (docs/clients.md): ids are JSON integers written digit for digit (exact for Python, jq,
    DuckDB's read_json; a JavaScript client needs a BigInt-aware parser or ``CAST(id AS VARCHAR)``)."""
    done = CliRunner().invoke(main, ["query", str(moved_run), "SELECT transit_id, source_id FROM transits "
                                     "ORDER BY transit_id", "--format", "json"])
    assert done.exit_code == 0, done.output
    rows = json.loads(done.output)
    want = _exact(moved_run, "transits")
    assert [r["transit_id"] for r in rows] == want["transit_id"].to_pylist()
    assert [r["source_id"] for r in rows] == want["source_id"].to_pylist()
    assert str(max(want["transit_id"].to_pylist())) in done.output  # digit for digit, no exponent
