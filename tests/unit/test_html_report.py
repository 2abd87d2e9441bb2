"""The daily HTML report (gaiasim.validate.html_report): one self-contained file, every data string escaped."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from gaiasim.cli import main
from gaiasim.validate import html_report

#: Plots of a run with truth: transits per hour, sky map, HK, centroid pulls, photometric residuals.
PLOTS_WITH_TRUTH = 5
INJECTED = "<script>alert('x')</script>"
ESCAPED = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"
FEATURE = f"""@REQ-ABC-001
Feature: hostile names
  Scenario: a scenario called {INJECTED}
    Given a thing
"""


@pytest.fixture(scope="module")
def mpl():
    return pytest.importorskip("matplotlib")


def images(text: str) -> list[str]:
    """The report's plots (not the trend sparklines, one per check when the history has previous days)."""
    return re.findall(r'<img (?!class="spark")[^>]*src="data:image/png;base64,[A-Za-z0-9+/=]+"', text)


def assert_self_contained(text: str) -> None:
    assert not re.search(r"https?://", text), "the report must not reference anything outside itself"
    assert not re.search(r"<(script|link|iframe)\b", text, re.IGNORECASE), "no script, stylesheet link or frame"
    sources = re.findall(r'src="([^"]{0,30})', text)
    assert all(s.startswith("data:image/png;base64,") for s in sources), sources


def test_report_is_one_self_contained_file_with_every_plot(mpl, demo_run, tmp_path):
    dataset, run_dir = demo_run
    out = tmp_path / "reports" / "day.html"
    result = CliRunner().invoke(main, ["report", str(run_dir), "--html", str(out), "--dataset", str(dataset)])
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.parent.iterdir()] == ["day.html"], "the report must be one file"
    text = out.read_text()
    assert len(images(text)) == PLOTS_WITH_TRUTH
    assert_self_contained(text)
    for section in ("checks", "scorecard", "alerts", "hk-events", "anomalies", "trends", "run", "logbook", "trace"):
        assert f'<section id="{section}">' in text, section
    # Overall verdict = every check passes and the scorecard is complete, as validate decides.
    assert ("PASS" in text) != ('<span class="verdict FAIL">' in text)


def test_data_strings_are_escaped(mpl, demo_run, tmp_path):
    """A logbook note, an operator name, a TM file name and a scenario name carrying markup come out as text."""
    dataset, run_dir = demo_run
    copy = tmp_path / "dataset"
    shutil.copytree(dataset, copy)
    book = json.loads((copy / "logbook.json").read_text())
    entry = book["logbook"][0]
    entry["note"] = f"handover {INJECTED}"
    entry["operator"] = INJECTED
    entry["passes"][0]["file"] = f"{INJECTED}.tm"
    (copy / "logbook.json").write_text(json.dumps(book))
    features = tmp_path / "features"
    features.mkdir()
    (features / "x.feature").write_text(FEATURE)

    text = html_report.build(run_dir, dataset=copy, features=features)

    assert "<script" not in text.lower()
    assert text.count(ESCAPED) >= 4  # note, operator, TM file, scenario
    assert f"handover {ESCAPED}" in text


def relayout(run_dir: Path, out: Path, hive: bool) -> Path:
    """A copy of ``run_dir`` whose transits, ccd and hk are one flat part, or hive partitions by hour."""
    shutil.copytree(run_dir, out)
    for table in ("transits", "ccd", "hk"):
        rows = f"SELECT * FROM read_parquet('{run_dir / table}/**/*.parquet', hive_partitioning = false)"
        shutil.rmtree(out / table)
        if hive:
            hour = "(obmt_ns // 3600000000000) % 24" if table != "ccd" else "transit_id % 24"
            duckdb.execute(f"COPY (SELECT *, CAST({hour} AS INTEGER) AS hour FROM ({rows})) "
                           f"TO '{out / table}' (FORMAT parquet, PARTITION_BY (hour))")
        else:
            (out / table).mkdir()
            duckdb.execute(f"COPY ({rows}) TO '{out / table / 'part-0.parquet'}' (FORMAT parquet)")
    return out


def test_hive_partitioned_run_gives_the_same_report(mpl, demo_run, tmp_path):
    """Runs partitioned by hour (<run>/<table>/hour=NN/part-*.parquet) read through the same views."""
    dataset, run_dir = demo_run
    flat = relayout(run_dir, tmp_path / "flat", hive=False)
    hive = relayout(run_dir, tmp_path / "hive", hive=True)
    assert len(list((hive / "transits").glob("hour=*/*.parquet"))) > 1

    flat_text = html_report.build(flat, dataset=dataset, features=tmp_path / "none")
    hive_text = html_report.build(hive, dataset=dataset, features=tmp_path / "none")

    assert len(images(hive_text)) == PLOTS_WITH_TRUTH
    n_transits = re.search(r"all ([\d,]+) transits", flat_text)
    assert n_transits and n_transits.group(0) in hive_text
    checks_table = re.compile(r'<section id="checks">.*?</section>', re.S)
    assert checks_table.search(hive_text).group(0) == checks_table.search(flat_text).group(0)


def test_missing_matplotlib_is_one_line_and_exit_2(monkeypatch, tmp_path):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    result = CliRunner().invoke(main, ["report", str(tmp_path), "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["gaiasim: error: " + html_report.MISSING_EXTRA]
    assert not (tmp_path / "r.html").exists()


def test_missing_run_is_one_line_and_exit_2(mpl, tmp_path):
    result = CliRunner().invoke(main, ["report", str(tmp_path / "nowhere"), "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "run.json is missing" in result.stderr


def test_report_without_truth_says_so_and_still_renders(mpl, demo_run, tmp_path):
    _, run_dir = demo_run
    text = html_report.build(run_dir, dataset=tmp_path / "no-dataset", features=Path(tmp_path / "none"))
    assert len(images(text)) == PLOTS_WITH_TRUTH - 2  # no pulls, no residuals without truth
    assert "No truth linked to this run" in text
    assert '<span class="verdict FAIL">' in text  # checks that need truth fail, never silently pass
    assert_self_contained(text)
