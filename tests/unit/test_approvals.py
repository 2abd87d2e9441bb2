"""Reviewed baselines: a comparison fails on any difference until these very differences between these
very two runs are approved, with a name and a reason on record; the daily report lists the approvals."""

from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from click.testing import CliRunner

from gaiasim.cli import main
from pipeline import schemas
from tests.runs import rewrite_table


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def runs(demo_run, tmp_path):
    """(baseline, candidate that lost 5 transits, candidate with shifted centroids, history database)."""
    _, baseline = demo_run
    lost, shifted = tmp_path / "lost", tmp_path / "shifted"
    for copy in (lost, shifted):
        shutil.copytree(baseline, copy, ignore=shutil.ignore_patterns(".lock"))
    rewrite_table(lost, "transits", lambda t: t.slice(5))
    i = schemas.CCD.get_field_index("al_px")
    rewrite_table(shifted, "ccd", lambda t: t.set_column(i, schemas.CCD.field(i),
                                                         pc.add(t["al_px"], pa.scalar(0.01, pa.float32()))))
    return baseline, lost, shifted, tmp_path / "history.duckdb"


def test_an_approved_difference_passes_and_any_other_still_fails(runs, tmp_path, monkeypatch):
    baseline, lost, shifted, history = runs
    diff = tmp_path / "diff.json"
    result = invoke("compare", baseline, lost, "--json", diff, "--history", history)
    assert result.exit_code == 1 and "not approved" in result.output
    written = json.loads(diff.read_text())
    assert written["baseline"]["sha256"] != written["candidate"]["sha256"] and written["approval"] is None

    monkeypatch.setenv("GAIASIM_APPROVER", "a.reviewer")
    result = invoke("baseline", "approve", diff, "--reason", "five transits removed on purpose", "--history", history)
    assert result.exit_code == 0, result.output
    assert "approved by a.reviewer" in result.output

    result = invoke("compare", baseline, lost, "--json", tmp_path / "again.json", "--history", history)
    assert result.exit_code == 0, result.output
    assert "approved by a.reviewer" in result.output and "five transits removed on purpose" in result.output
    assert json.loads((tmp_path / "again.json").read_text())["approval"]["approved_by"] == "a.reviewer"
    assert invoke("compare", baseline, lost, "--history", history, "--no-approvals").exit_code == 1
    # Another difference, or the same difference against another baseline, is not covered.
    assert invoke("compare", baseline, shifted, "--history", history).exit_code == 1
    assert invoke("compare", shifted, lost, "--history", history).exit_code == 1

    listed = invoke("baseline", "list", "--history", history)
    assert listed.exit_code == 0 and "a.reviewer" in listed.output

    pytest.importorskip("matplotlib")
    html = tmp_path / "report.html"
    assert invoke("report", lost, "--html", html, "--history", history).exit_code == 0
    text = html.read_text()
    assert "Approved baseline differences" in text and "five transits removed on purpose" in text


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda d, _: d.write_text("{"), "is not a comparison written by 'gaiasim compare --json'"),
        (lambda d, _: None, "not found; write it with 'gaiasim compare"),
        (lambda d, w: d.write_text(json.dumps({**w, "tables": {**w["tables"], "transits": {"differs": False}}})),
         "was edited after 'gaiasim compare' wrote it"),
        (lambda d, w: d.write_text(json.dumps({k: v for k, v in w.items() if k != "candidate"})),
         "no hashes of the two sides"),
    ],
    ids=["not-json", "missing", "edited", "old-format"],
)
def test_a_bad_diff_is_one_clear_line(runs, tmp_path, setup, expected):
    baseline, lost, _, history = runs
    source = tmp_path / "source.json"
    invoke("compare", baseline, lost, "--json", source, "--history", history)
    diff = tmp_path / "bad.json"
    setup(diff, json.loads(source.read_text()))
    result = invoke("baseline", "approve", diff, "--reason", "x", "--history", history)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines


def test_nothing_to_approve_and_no_reason_are_refused(runs, tmp_path):
    baseline, lost, _, history = runs
    same = tmp_path / "same.json"
    assert invoke("compare", baseline, baseline, "--json", same, "--history", history).exit_code == 0
    result = invoke("baseline", "approve", same, "--reason", "fine", "--history", history)
    assert result.exit_code == 2 and "no difference to approve" in result.stderr
    diff = tmp_path / "diff.json"
    invoke("compare", baseline, lost, "--json", diff, "--history", history)
    result = invoke("baseline", "approve", diff, "--reason", "   ", "--history", history)
    assert result.exit_code == 2 and "an approval needs a reason" in result.stderr
    assert not history.exists() or invoke("compare", baseline, lost, "--history", history).exit_code == 1
