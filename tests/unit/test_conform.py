"""gaiasim conform: a clean run keeps the run contract; each kind of breach is listed, and validate, compare
and report refuse the run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from gaiasim import conform
from gaiasim.cli import main
from pipeline import geometry, layout, schemas

DOC = Path(__file__).resolve().parents[2] / "docs" / "run-contract.md"


@pytest.fixture
def run_copy(demo_run, tmp_path) -> tuple[Path, Path]:
    dataset, run_dir = demo_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns(".lock"))
    return dataset, copy


def _messages(run_dir: Path, dataset: Path) -> list[str]:
    violations, _ = conform.check(run_dir, dataset)
    return [str(v) for v in violations]


def _edit_json(run_dir: Path, change) -> None:
    path = run_dir / layout.RUN_JSON
    info = json.loads(path.read_text())
    change(info)
    path.write_text(json.dumps(info))


def test_a_clean_run_conforms(demo_run):
    dataset, run_dir = demo_run
    violations, summary = conform.check(run_dir, dataset)
    assert violations == []
    assert summary.tables == len(layout.TABLES) and summary.rows["transits"] > 100
    result = CliRunner().invoke(main, ["conform", str(run_dir)])
    assert result.exit_code == 0 and "keeps the run contract" in result.output


def test_a_dropped_column_a_missing_table_and_an_edited_run_json_are_each_listed(run_copy):
    dataset, run_dir = run_copy
    alerts = run_dir / "alerts" / "part-0.parquet"
    pq.write_table(pq.read_table(alerts).drop(["g_mag"]), alerts)
    shutil.rmtree(run_dir / "hk_events")
    _edit_json(run_dir, lambda info: info["counts"].update(transits=info["counts"]["transits"] + 1))
    found = _messages(run_dir, dataset)
    assert "alerts/part-0.parquet: column g_mag is missing" in found
    assert "hk_events/: table missing" in found
    assert any(m.startswith("run.json:/counts/transits:") for m in found), found
    assert len(found) == 3, found
    result = CliRunner().invoke(main, ["conform", str(run_dir)])
    assert result.exit_code == 1
    assert "column g_mag is missing" in result.output and "table missing" in result.output


@pytest.mark.parametrize(
    ("breach", "expected"),
    [
        (lambda r: _edit_json(r, lambda i: i.pop("inputs")), r"run\.json:/: 'inputs' is a required property"),
        (lambda r: _edit_json(r, lambda i: i.update(status="running")), r"run\.json:/status: 'running': the run did"),
        (lambda r: _edit_json(r, lambda i: i["counts"].update(packets_used=-1)), r"run\.json:/counts/packets_used"),
        (lambda r: (r / layout.RUN_JSON).write_text("{"), r"run\.json: not valid JSON"),
        (lambda r: _edit_json(r, lambda i: i["inputs"].update({next(k for k in i["inputs"] if k.startswith("tm/")):
                                                               "0" * 64})), r"SHA-256 000000000000\.\.\. differs"),
        (lambda r: _edit_json(r, lambda i: i["inputs"].pop(next(k for k in i["inputs"] if k.startswith("tm/")))),
         r"run\.json:/inputs: tm/.* of the dataset was not read"),
        (lambda r: (r / "transits" / ".part-9.parquet.tmp-1").write_bytes(b"x"), r"transits/\.part-9.*stray file"),
        (lambda r: (r / "alerts" / "hour=3").mkdir(), r"alerts/hour=3: unexpected folder; partitions of alerts: none"),
        (lambda r: (r / "alerts" / "part-0.parquet").write_bytes(b"PAR1 not really"), r"not a readable Parquet"),
        (lambda r: pq.write_table(pa.table({"transit_id": pa.array([1], pa.int32())}), r / "transits" / "x.parquet"),
         r"transits/x\.parquet: column transit_id is int32, the contract says int64"),
        (lambda r: pq.write_table(pa.table({"kind": ["x"], "name": [None], "arrived_utc_ns": [1],
                                            "written_utc_ns": [2], "latency_s": [1.0]}),
                                  (r / "latency").mkdir() or r / "latency" / "p.parquet"),
         r"latency/p\.parquet: column name is null.*|latency/p\.parquet: column name holds 1 nulls"),
    ],
    ids=["no-inputs", "not-finished", "negative-count", "bad-json", "wrong-sha", "tm-not-read", "temporary",
         "bad-partition", "not-parquet", "wrong-type", "nulls"],
)
def test_each_breach_is_named(run_copy, breach, expected):
    dataset, run_dir = run_copy
    breach(run_dir)
    found = _messages(run_dir, dataset)
    assert any(re.search(expected, m) for m in found), found


def test_validate_compare_and_report_refuse_a_run_that_breaks_the_contract(run_copy, tmp_path):
    _dataset, run_dir = run_copy
    shutil.rmtree(run_dir / "gaps")
    for args in (["validate", str(run_dir), "--no-history"], ["compare", str(run_dir), str(run_dir)],
                 ["report", str(run_dir), "--html", str(tmp_path / "r.html")]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1, (args, result.output)
        assert "does not keep the run contract" in result.output and "gaps/: table missing" in result.output
    assert not (tmp_path / "r.html").exists()


def test_a_plain_string_strip_column_is_accepted(run_copy):
    """Dictionary encoding is a storage choice: a SUT writing plain strings keeps the contract."""
    dataset, run_dir = run_copy
    for path in (run_dir / "ccd").rglob("*.parquet"):
        table = pq.read_table(path, partitioning=None)
        pq.write_table(table.set_column(1, "strip", table["strip"].cast(pa.string())), path)
    assert _messages(run_dir, dataset) == []


def test_the_contract_page_lists_every_column_of_every_table():
    text = DOC.read_text()
    for name, schema in {**layout.TABLES, **layout.OPTIONAL_TABLES}.items():
        section = text.split(f"### `{name}/`", 1)[1].split("###", 1)[0]
        for field in schema:
            assert f"| `{field.name}` |" in section, (name, field.name)


def test_the_strip_values_are_the_geometry_s_strips():
    """The contract spells the strips out (it imports no geometry); the pipeline's geometry agrees."""
    assert schemas.CCD_STRIPS == geometry.STRIPS[:11]
