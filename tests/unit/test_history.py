"""The results database over time (gaiasim.validate.history.trends, ``gaiasim history``)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from click.testing import CliRunner

from gaiasim.cli import main
from gaiasim.validate import checks
from gaiasim.validate import history as hist
from pipeline.io import InputError
from tests.runs import write_pre_campaign_history

RUN_INFO = {"dataset": "/data/day", "pipeline_version": "0.1.0", "inputs": {"tm/a.tm": "ab" * 32}}
PHOT = checks.get("photometry_bias")  # REQ-PHOT-001, <= 0.01 mag
XM = checks.get("crossmatch_correct")  # REQ-XM-001, >= 0.999


def record(path, phot_mag: float, xm: float | None, campaign: str | None = None) -> None:
    """One validation of two checks, as ``gaiasim validate`` appends it."""
    results = [checks.Result(PHOT, phot_mag, phot_mag <= PHOT.threshold),
               checks.Result(XM, xm, xm is not None and xm >= XM.threshold)]
    hist.append(path, RUN_INFO, path.parent / "run", results, None, campaign)


def invoke(*args):
    return CliRunner().invoke(main, ["history", *map(str, args)])


def test_trend_per_requirement_holds_every_result_oldest_first_with_its_pass_rate(tmp_path):
    db = tmp_path / "history.duckdb"
    for mag in (0.002, 0.03, 0.004):
        record(db, mag, 1.0)

    series = {t.requirement: t for t in hist.trends(db)}

    phot = series["REQ-PHOT-001"]
    assert (phot.check_name, phot.campaign, phot.op, phot.threshold) == ("photometry_bias", None, "<=", 0.01)
    assert phot.values == (0.002, 0.03, 0.004)
    assert phot.passed == (True, False, True)
    assert phot.pass_rate == pytest.approx(2 / 3)
    assert list(phot.recorded_at) == sorted(phot.recorded_at)
    assert series["REQ-XM-001"].pass_rate == 1.0
    assert [t.requirement for t in hist.trends(db, requirement="REQ-XM-001")] == ["REQ-XM-001"]


def test_campaigns_are_trended_apart_and_can_be_chosen(tmp_path):
    db = tmp_path / "history.duckdb"
    record(db, 0.001, 1.0, "nightly")
    record(db, 0.05, 0.5, "release-1.2")
    record(db, 0.002, None, "nightly")  # the crossmatch check could not run: no value, failed

    got = {(t.requirement, t.campaign): (t.values, t.pass_rate) for t in hist.trends(db)}

    assert got[("REQ-PHOT-001", "nightly")] == ((0.001, 0.002), 1.0)
    assert got[("REQ-PHOT-001", "release-1.2")] == ((0.05,), 0.0)
    assert got[("REQ-XM-001", "nightly")] == ((1.0, None), 0.5)
    assert {t.campaign for t in hist.trends(db, campaign="release-1.2")} == {"release-1.2"}


def test_a_database_from_before_campaigns_is_read_and_then_extended(tmp_path):
    db = tmp_path / "old.duckdb"
    write_pre_campaign_history(db)

    (old,) = hist.trends(db)
    assert (old.campaign, old.values, old.recorded_at) == (None, (0.005,), (dt.datetime(2026, 1, 1),))

    record(db, 0.003, 1.0, "nightly")
    phot = {t.campaign: t.values for t in hist.trends(db, requirement="REQ-PHOT-001")}
    assert phot == {None: (0.005,), "nightly": (0.003,)}


def test_missing_database_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="run 'gaiasim validate' first"):
        hist.trends(tmp_path / "none.duckdb")
    result = invoke("--db", tmp_path / "none.duckdb")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gaiasim: error: no results database at"), lines


def test_no_matching_result_names_what_is_recorded(tmp_path):
    db = tmp_path / "history.duckdb"
    record(db, 0.001, 1.0, "nightly")
    result = invoke("--db", db, "--requirement", "REQ-NOPE-001")
    assert result.exit_code == 2
    assert "REQ-PHOT-001, REQ-XM-001" in result.stderr and "nightly" in result.stderr


def test_cli_prints_the_pass_rate_and_plots_the_trend(tmp_path):
    pytest.importorskip("matplotlib")
    db = tmp_path / "history.duckdb"
    for mag in (0.002, 0.03, 0.004):
        record(db, mag, 1.0, "nightly")
    png = tmp_path / "plots" / "trend.png"

    result = invoke("--db", db, "--requirement", "REQ-PHOT-001", "--plot", png)

    assert result.exit_code == 0, result.output
    assert "REQ-PHOT-001" in result.stdout and "67%" in result.stdout and "REQ-XM-001" not in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_campaign_day_redone_after_a_crash_is_recorded_once(tmp_path):
    """replace_same: the same run, code and inputs validated again replaces its rows (and scorecard)."""
    from gaiasim.validate.scorecard import Scorecard

    db = tmp_path / "history.duckdb"
    results = [checks.Result(PHOT, 0.002, True)]
    card = Scorecard({"gap": (3, 3)}, {})
    for _ in range(2):
        hist.append(db, RUN_INFO, tmp_path / "run", results, card, "rehearsal", replace_same=True)
    newer = {**RUN_INFO, "pipeline_version": "0.2.0"}
    hist.append(db, newer, tmp_path / "run", results, card, "rehearsal", replace_same=True)
    hist.append(db, RUN_INFO, tmp_path / "run", results, card, "other", replace_same=True)
    hist.append(db, RUN_INFO, tmp_path / "run", results, card)  # plain appends always add
    con = duckdb.connect(str(db))
    got = con.execute("SELECT campaign, pipeline_version, count(*) FROM results GROUP BY ALL ORDER BY ALL").fetchall()
    assert got == [("other", "0.1.0", 1), ("rehearsal", "0.1.0", 1), ("rehearsal", "0.2.0", 1), (None, "0.1.0", 1)]
    assert con.execute("SELECT count(*) FROM scorecard").fetchone()[0] == 4


# --- two writers at once ---------------------------------------------------------------------------------

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE IF NOT EXISTS held (a INTEGER)")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def hold_database(path, seconds: float):
    """Another process holding the results database for ``seconds`` (as a second validate would)."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    child.stdout.close()
    return child


def test_an_append_waits_for_another_writer_and_lands(tmp_path):
    db = tmp_path / "history.duckdb"
    record(db, 0.001, 1.0)
    child = hold_database(db, 1.5)
    heard = []
    results = [checks.Result(PHOT, 0.002, True)]
    hist.append(db, RUN_INFO, tmp_path / "run", results, None, wait_s=30, on_wait=heard.append)
    child.wait()
    assert len(heard) == 1 and heard[0].startswith(f"waiting for the results database {db}"), heard
    assert [t.values for t in hist.trends(db, requirement="REQ-PHOT-001")] == [(0.001, 0.002)]


def test_a_validation_that_cannot_wait_longer_is_kept_and_added_by_the_next_append(tmp_path):
    db = tmp_path / "history.duckdb"
    record(db, 0.001, 1.0)
    child = hold_database(db, 3)
    heard = []
    hist.append(db, RUN_INFO, tmp_path / "run", [checks.Result(PHOT, 0.002, True)], None, wait_s=0.3,
                on_wait=heard.append)
    assert "is kept in" in heard[-1], heard
    assert len(list((tmp_path / ("history.duckdb" + hist.PENDING_SUFFIX)).glob("*.json"))) == 1
    child.wait()
    record(db, 0.003, 1.0)
    assert [t.values for t in hist.trends(db, requirement="REQ-PHOT-001")] == [(0.001, 0.002, 0.003)]
    assert not list((tmp_path / ("history.duckdb" + hist.PENDING_SUFFIX)).glob("*.json")), "a pending file left"


def test_two_validates_into_one_history_both_land(demo_run, tmp_path):
    import subprocess
    import sys

    _dataset, run_dir = demo_run
    db = tmp_path / "history.duckdb"
    cmd = [sys.executable, "-c", "from gaiasim.cli import main; main()", "validate", str(run_dir), "--history", str(db)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [p.communicate()[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    con = duckdb.connect(str(db), read_only=True)
    runs = con.execute("SELECT count(DISTINCT recorded_at) FROM results").fetchall()[0][0]
    assert runs == 2, f"{runs} validations recorded of 2"
