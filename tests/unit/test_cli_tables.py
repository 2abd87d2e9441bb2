"""The command's manners: every table readable at 80 columns (what a pipe gets), ids and verdicts never
broken, --format csv|json carrying the data (64-bit ids exact), DuckDB's hints kept in error lines, a moved
dataset named in one line, a closed pipe not an error, and the interactive prompt's statement splitting."""

from __future__ import annotations

import csv
import io as textio
import json
import re
import shutil
import subprocess
import sys

import duckdb
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from gaiasim import cli, clitable, shell
from gaiasim.cli import main
from gaiasim.clitable import Column, Tabular
from gaiasim.validate import checks, db
from pipeline import timescale
from tests.runs import rewrite_table

WIDTH = 80
REQUIREMENT = re.compile(r"REQ-[A-Z0-9]+-\d{3}")
JUDGED = [c.requirement for c in checks.CHECKS if not c.needs_rerun]  # what a validation without --determinism runs


@pytest.fixture
def narrow(monkeypatch):
    """The command's tables as a pipe gets them: 80 columns."""
    monkeypatch.setattr(cli, "stdout", Console(width=WIDTH))


def invoke(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_fits(text: str) -> None:
    """Every line of every table (a message line may be longer: a terminal wraps it, as it does any text)."""
    long = [line for line in text.splitlines() if len(line) > WIDTH and set(line) & set("│┃━─")]
    assert not long, f"{len(long)} lines wider than {WIDTH} columns, e.g. {long[0]!r}"


def test_validate_at_80_columns_keeps_every_requirement_and_verdict_whole(demo_run, narrow):
    _dataset, run_dir = demo_run
    result = invoke("validate", run_dir, "--no-history")
    assert result.exit_code == 0, result.output
    assert_fits(result.stdout)
    ids = REQUIREMENT.findall(result.stdout)
    assert sorted(ids) == sorted(JUDGED), "an id was folded or a row lost"
    verdicts = re.findall(r"│ (pass|FAIL|n/a) +│\s*$", result.stdout, re.MULTILINE)
    assert len(verdicts) == len(JUDGED)
    assert "statement left out at 80 columns" in result.stdout


def test_a_failed_check_names_its_statement_under_a_narrow_table(demo_run, tmp_path, narrow):
    dataset, run_dir = demo_run
    broken = tmp_path / "run"
    shutil.copytree(run_dir, broken)
    rewrite_table(broken, "transits", lambda t: t.slice(5))  # five transits lost: REQ-E2E-001 fails
    result = invoke("validate", broken, "--dataset", dataset, "--no-history")
    assert result.exit_code == 1
    assert_fits(result.stdout)
    statement = next(c.statement for c in checks.CHECKS if c.requirement == "REQ-E2E-001")
    assert f"REQ-E2E-001 FAIL: {statement}" in " ".join(result.stdout.split())


def test_history_compare_query_and_fidelity_fit_80_columns(demo_run, faulty_run, tmp_path, narrow):
    _dataset, run_dir = demo_run
    _faulty_dataset, faulty_dir = faulty_run
    history = tmp_path / "history.duckdb"
    assert invoke("validate", run_dir, "--history", history).exit_code == 0
    shown = invoke("history", "--db", history)
    assert shown.exit_code == 0, shown.output
    assert_fits(shown.stdout)
    assert sorted(REQUIREMENT.findall(shown.stdout)) == sorted(JUDGED)
    assert "left out at 80 columns" in shown.stdout, "the narrow table says what it left out"
    differ = invoke("compare", run_dir, faulty_dir, "--history", history)
    assert differ.exit_code == 1
    assert_fits(differ.stdout)
    assert "DIFFER" in differ.stdout and "44743164176389160" in differ.stdout, differ.stdout
    wide = invoke("query", run_dir, "select * from transits limit 5")
    assert wide.exit_code == 0
    assert_fits(wide.stdout)
    first = duckdb.connect().sql(f"select transit_id from '{run_dir}/transits/*/*.parquet' "
                                 "order by transit_id limit 1").fetchall()[0][0]
    ids = invoke("query", run_dir, "select transit_id from transits order by transit_id limit 1")
    assert str(first) in ids.stdout, "an id is never folded"
    fid = invoke("fidelity", run_dir)
    assert fid.exit_code == 0, fid.output
    assert_fits(fid.stdout)


def test_icd_baseline_list_and_replay_fit_80_columns(demo_run, tmp_path, narrow):
    dataset, _run = demo_run
    for args in (["icd"], ["baseline", "list", "--history", tmp_path / "h.duckdb"],
                 ["replay", dataset, "--inbox", tmp_path / "inbox", "--speed", "max"]):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        assert "┃" in result.stdout, f"{args[0]}: no table"
        assert_fits(result.stdout)
    assert re.search(r"│ 2016-01-17T02-00\.tm +│.*│ \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} +│", result.stdout), \
        "the delivery time is whole"


def test_history_compare_verify_and_run_give_json_and_csv(demo_run, tmp_path):
    dataset, run_dir = demo_run
    history = tmp_path / "history.duckdb"
    assert invoke("validate", run_dir, "--history", history, "--format", "json").exit_code == 0
    trends = json.loads(invoke("history", "--db", history, "--format", "json").stdout)
    assert sorted(t["requirement"] for t in trends) == sorted(JUDGED)
    rows = list(csv.DictReader(textio.StringIO(invoke("history", "--db", history, "--format", "csv").stdout)))
    assert len(rows) == len(JUDGED) and "recent values" in rows[0]
    same = invoke("compare", run_dir, run_dir, "--format", "json")
    assert same.exit_code == 0 and json.loads(same.stdout)["tables"], same.output
    verified = json.loads(invoke("verify", dataset, "--format", "json").stdout)
    assert verified["intact"] and verified["problems"] == [] and verified["files"] > 0
    counts = invoke("run", dataset, "--out", run_dir, "--format", "json")
    assert counts.exit_code == 0, counts.output
    assert json.loads(counts.stdout)["counts"]["transits"] == db.read_run_info(run_dir)["counts"]["transits"]


def test_verify_json_names_the_damaged_file(demo_run, tmp_path):
    dataset, _run = demo_run
    copy = tmp_path / "dataset"
    shutil.copytree(dataset, copy)
    tm = sorted((copy / "tm").glob("*.tm"))[0]
    tm.write_bytes(tm.read_bytes()[:-1])
    result = invoke("verify", copy, "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["problems"] == [
        {"file": f"tm/{tm.name}", "problem": "SHA-256 differs from the manifest"}]


def test_json_keeps_64_bit_ids_exact(demo_run):
    _dataset, run_dir = demo_run
    sql = "select transit_id, source_id from transits where source_id is not null order by transit_id limit 50"
    expected = duckdb.connect().sql(sql.replace("from transits", f"from '{run_dir}/transits/*/*.parquet'")).fetchall()
    assert max(t for t, _ in expected) > 2**53, "the test needs ids beyond a double's 53 bits"
    got = json.loads(invoke("query", run_dir, sql, "--format", "json").stdout)
    assert [(r["transit_id"], r["source_id"]) for r in got] == expected


@pytest.mark.parametrize(("sql", "hint"), [
    ("select * from transit", 'Did you mean "transits"?'),
    ("select g_ma from transits", 'Candidate bindings: "g_mag"'),
])
def test_duckdb_hints_stay_in_the_error_line(demo_run, sql, hint):
    _dataset, run_dir = demo_run
    result = invoke("query", run_dir, sql)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert hint in result.stderr


def test_a_moved_dataset_is_one_line_naming_it(demo_run, tmp_path):
    _dataset, run_dir = demo_run
    moved = tmp_path / "run"
    shutil.copytree(run_dir, moved)
    info = json.loads((moved / "run.json").read_text())
    info["dataset"] = str(tmp_path / "gone")
    (moved / "run.json").write_text(json.dumps(info))
    for command in ("validate", "report"):
        extra = ["--no-history"] if command == "validate" else ["--html", str(tmp_path / "r.html")]
        result = invoke(command, moved, *extra)
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines() == [
            f"gaiasim: error: truth not found at {tmp_path / 'gone'} (the dataset {moved}/run.json names: moved or "
            "deleted?); pass --dataset with the folder 'gaiasim generate' made"]


def test_a_closed_pipe_is_not_an_error(demo_run):
    _dataset, run_dir = demo_run
    reader = subprocess.Popen([sys.executable, "-m", "gaiasim", "query", str(run_dir), "select * from ccd",
                               "--format", "csv"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader.stdout.readline()
    reader.stdout.close()  # as `| head -1` does
    _, err = reader.communicate(timeout=120)
    assert err == b"", err.decode()


def test_the_prompt_ends_statements_where_duckdb_does(demo_run, capsys):
    _dataset, run_dir = demo_run
    con = db.connect(run_dir, read_only=True)
    lines = iter(["select 'a;", "b' as s;", ".schema run_counts", ".tables", "select 1 as one; -- done;", ".quit"])
    out, errors = [], []
    shell.prompt(con, lambda sql: out.append(con.sql(sql).fetchall()), out.append, errors.append,
                 read=lambda _p: next(lines))
    assert [("a;\nb",)] in out, "a ';' inside a string split the statement"
    assert [(1,)] in out
    text = "\n".join(o for o in out if isinstance(o, str))
    assert re.search(r"key +VARCHAR", text), ".schema shows the columns"
    listed = {line.split()[0] for line in text.splitlines() if line.endswith(("table", "view"))}
    assert {"transits", "ccd", "quarantine", "gaps", "hk", "hk_events", "alerts", "run_counts", "run_inputs",
            "truth_transits", "truth_ccd", "truth_faults"} <= listed, ".tables lists tables and views"
    assert not errors


def test_the_prompt_keeps_its_history(monkeypatch, tmp_path, demo_run):
    readline = pytest.importorskip("readline")
    _dataset, run_dir = demo_run
    path = tmp_path / "query_history"
    monkeypatch.setenv("GAIASIM_QUERY_HISTORY", str(path))
    monkeypatch.setattr("builtins.input", lambda _p: (readline.add_history("select 42;"), ".quit")[1])
    shell.prompt(db.connect(run_dir, read_only=True), print, print, print)
    assert "select 42;" in path.read_text()


@given(st.lists(st.tuples(st.integers(-2**63, 2**63 - 1), st.text(max_size=30), st.none() | st.floats()),
                max_size=8))
def test_csv_and_json_carry_the_values(rows):
    t = Tabular("t", [Column("id"), Column("name", fold=True), Column("x")], rows)
    assert [(r["id"], r["name"]) for r in json.loads(clitable.to_json(t))] == [(i, n) for i, n, _ in rows]
    out = textio.StringIO()
    clitable.emit(t, "csv", Console(), out)
    back = list(csv.reader(textio.StringIO(out.getvalue(), newline="")))
    assert back[0] == ["id", "name", "x"]
    assert [(int(r[0]), r[1]) for r in back[1:]] == [(i, n) for i, n, _ in rows]


def test_columns_are_left_out_most_droppable_first():
    cols = [Column("a"), Column("b" * 30, drop=1), Column("c" * 30, drop=2), Column("d")]
    t = Tabular("t", cols, [("x", "y", "z", "w")])
    assert clitable.fitting(t, 200) == [0, 1, 2, 3]
    assert clitable.fitting(t, 60) == [0, 1, 3], "the highest drop number goes first"
    assert clitable.fitting(t, 10) == [0, 3], "columns never dropped stay, whatever the width"
    table, left_out = clitable.render(t, 60)
    assert left_out == ["c" * 30]
    assert [c.header for c in table.columns] == ["a", "b" * 30, "d"]


def test_a_query_has_the_utc_of_any_obmt_as_the_catalogue_does(demo_run):
    """``obmt_utc(ns)`` in gaiasim query: pipeline.timescale's relation over the dataset's span, the same UTC
    as catalog.duckdb's columns."""
    dataset, run_dir = demo_run
    con = db.connect(run_dir, read_only=True)
    got = con.sql("select obmt_ns, obmt_utc(obmt_ns) from transits order by obmt_ns limit 50").fetchall()
    manifest = json.loads((dataset / "dataset.json").read_text())
    relation = timescale.utc_relation((manifest["obmt_start_ns"], manifest["obmt_end_ns"]))
    expected = relation.utc_us([t for t, _ in got]).astype("datetime64[us]").astype(object).tolist()
    assert [u for _, u in got] == expected
    assert con.sql("select obmt_utc(0)").fetchall() == [(None,)], "NULL outside the span"
