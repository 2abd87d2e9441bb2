"""The daily report's day-to-day parts: the anomalies of the day marked on its time plots and listed with their
times (gaiasim.validate.anomalies), today against the previous days of the results database
(gaiasim.validate.day_trends), and the logbook's anomaly counts beside the scorecard's."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gaiasim.validate import anomalies as an
from gaiasim.validate import checks, day_trends, db, html_report, scorecard
from gaiasim.validate import history as hist
from gaiasim.validate.scorecard import Scorecard

#: A day with two attitude glitches, two HK limit violations and lost packets (a plan of this test's own:
#: the packaged plans have the glitches and the HK anomalies on different days).
MIXED_PLAN = "attitude_glitches = 2\nhk_excursions = 2\npacket_loss = 0.001\n"
MIXED_SEED = 11


@pytest.fixture(scope="module")
def mpl():
    return pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory) -> tuple[Path, Path]:
    from gaiasim.demo import DEMO_SPEC
    from gaiasim.sim.generate import generate
    from pipeline.run import run

    root = tmp_path_factory.mktemp("mixed")
    plan = root / "mixed.toml"
    plan.write_text(MIXED_PLAN)
    generate(dataclasses.replace(DEMO_SPEC, seed=MIXED_SEED), root / "dataset", plan)
    run(root / "dataset", root / "run")
    return root / "dataset", root / "run"


@pytest.fixture(scope="module")
def mixed_report(mpl, mixed_run, tmp_path_factory) -> str:
    dataset, run_dir = mixed_run
    return html_report.build(run_dir, dataset=dataset, features=Path("none"),
                             history=tmp_path_factory.mktemp("nohistory") / "history.duckdb")


def _alt(text: str, anchor: str) -> str:
    section = re.search(rf'<section id="{anchor}">.*?</section>', text, re.S).group(0)
    return html.unescape(re.search(r'<img alt="([^"]*)"', section).group(1))


def _section_text(text: str, anchor: str) -> str:
    section = re.search(rf'<section id="{anchor}">(.*?)</section>', text, re.S).group(1)
    return html.unescape(re.sub(r"<[^>]+>", " ", section))


# --- anomalies on the time plots ------------------------------------------------------------------------------


def test_glitches_and_limit_violations_are_marked_on_the_time_plots(mixed_report):
    transits = _alt(mixed_report, "transits")
    for mark in ("attitude glitch: 2 reported", "attitude glitch: 2 injected", "HK limit violation: 2 reported",
                 "HK limit violation: 2 injected", "downlink pass: 4 passes"):
        assert mark in transits, transits
    assert re.search(r"data gap \(lost packets\): [1-9]\d* reported", transits), transits
    hk = _alt(mixed_report, "hk")
    assert "HK limit violation: 2 injected" in hk, hk
    assert re.search(r"HK limit violation, (yellow|red): [12] reported", hk), hk


def test_the_anomaly_table_lists_them_at_their_times(mixed_run, mixed_report):
    dataset, run_dir = mixed_run
    con = db.connect(run_dir, dataset)
    t0 = html_report.rp.day_start_ns(con)
    table = _section_text(mixed_report, "anomalies")
    glitches = con.execute("SELECT obmt_ns FROM truth_faults WHERE kind = 'attitude_glitch'").fetchall()
    limits = con.execute("SELECT channel, start_ns, end_ns FROM truth_hk_anomalies").fetchall()
    assert len(glitches) == 2 and len(limits) == 2
    for (t,) in glitches:
        assert re.search(rf"attitude glitch\s+injected\s+{html_report._utc(t, t0)}", table)
        assert re.search(rf"attitude glitch\s+reported\s+{html_report._utc(t, t0)}", table)
    for channel, start, end in limits:
        assert re.search(rf"HK limit violation\s+injected\s+{html_report._utc(start, t0)}\s+"
                         rf"{html_report._utc(end, t0)}\s+{channel}", table)


def test_a_nominal_day_marks_only_its_passes(mpl, demo_run):
    dataset, run_dir = demo_run
    con = db.connect(run_dir, dataset)
    t0 = html_report.rp.day_start_ns(con)
    marks = an.collect(con, truth=True)
    assert {m.category for m in marks.items} == {"downlink pass"}
    assert marks.totals == {("downlink pass", "downlink"): an.Total(4, min(m.start_ns for m in marks.items),
                                                                    max(m.start_ns for m in marks.items))}
    assert html_report.rp.transits_per_hour(con, t0, marks).marks == ("downlink pass: 4 passes",)
    assert html_report.rp.hk_channels(con, None, t0, marks).marks == ()


def test_a_day_of_many_packet_faults_keeps_the_first_and_counts_them_all(mpl, mixed_run, monkeypatch):
    """A full-scale bad downlink has millions of lost packets: the timeline keeps the first of each kind and
    the plot's legend gives the full count with how many it draws."""
    dataset, run_dir = mixed_run
    con = db.connect(run_dir, dataset)
    n_lost = con.execute("SELECT count(*) FROM truth_faults WHERE kind = 'packet_loss'").fetchall()[0][0]
    assert n_lost > 5
    monkeypatch.setattr(an, "MAX_PER_KIND", 5)
    timeline = an.collect(con, truth=True)
    lost = [a for a in timeline.items if a.category == "data gap (lost packets)" and a.source == "injected"]
    assert len(lost) == 5 and timeline.total("data gap (lost packets)", "injected") == n_lost
    marks = html_report.rp.transits_per_hour(con, html_report.rp.day_start_ns(con), timeline).marks
    assert f"data gap (lost packets): {n_lost} injected (first 5 drawn)" in marks
    assert "attitude glitch: 2 injected" in marks


@pytest.mark.parametrize(("name", "hours"), [("2016-01-16T02-00.tm", 2.0), ("2016-01-17T02-30.tm", 26.5)])
def test_a_pass_starts_when_its_file_name_says(name, hours):
    from gaiasim.sim.timescale import obmt_ns_from_date

    assert an.pass_start_ns(name) == obmt_ns_from_date(dt.date(2016, 1, 16)) + round(hours * 3.6e12)


@pytest.mark.parametrize("name", ["pass-3.tm", "2016-01-16T25-00.tm", "2016-02-30T02-00.tm", "2016-01-16T02-00"])
def test_a_file_name_out_of_the_contract_gives_no_pass_time(name):
    assert an.pass_start_ns(name) is None


# --- trends against the previous days -------------------------------------------------------------------------

CHECK = checks.get("crossmatch_correct")  # >= 0.999
OTHER = checks.get("faults_detected")  # == 0


def _validate(db_path: Path, run: Path, crossmatch: float, recall: tuple[int, int] = (10, 10),
              campaign: str | None = None) -> None:
    """Append a synthetic validation of ``run`` with the history module's own append."""
    results = [checks.Result(CHECK, crossmatch, crossmatch >= CHECK.threshold), checks.Result(OTHER, 0.0, True)]
    hist.append(db_path, {"pipeline_version": "test", "dataset": "day"}, run, results,
                Scorecard({"bit_flip": recall}, {}), campaign=campaign)


def _today(crossmatch: float, recall: tuple[int, int] = (10, 10)) -> tuple[list[checks.Result], Scorecard]:
    return ([checks.Result(CHECK, crossmatch, True), checks.Result(OTHER, 0.0, True)],
            Scorecard({"bit_flip": recall}, {}))


def test_previous_days_are_other_runs_before_this_one_in_its_campaign(tmp_path):
    path = tmp_path / "history.duckdb"
    for k, value in enumerate((0.9992, 0.9995, 0.9994)):
        _validate(path, tmp_path / f"day{k}", value, campaign="ops")
    _validate(path, tmp_path / "day1", 0.9996, campaign="ops")  # day1 validated again: its latest counts
    _validate(path, tmp_path / "elsewhere", 0.5, campaign="rehearsal")  # another campaign: not compared
    _validate(path, tmp_path / "today", 0.9993, campaign="ops")
    _validate(path, tmp_path / "tomorrow", 0.1, campaign="ops")  # after today's validation: not compared

    previous = day_trends.previous_days(path, tmp_path / "today")
    assert previous.campaign == "ops"
    assert [Path(r).name for r in previous.runs] == ["day0", "day2", "day1"]
    assert previous.values[CHECK.name] == (0.9992, 0.9994, 0.9996)
    assert previous.values[day_trends.RECALL + "bit_flip"] == (1.0, 1.0, 1.0)
    assert [Path(r).name for r in day_trends.previous_days(path, tmp_path / "today", days=2).runs] == ["day2",
                                                                                                       "day1"]


def test_a_value_outside_the_previous_range_is_marked_and_one_inside_is_not(tmp_path):
    path = tmp_path / "history.duckdb"
    for k, value in enumerate((0.9994, 0.9996, 0.9995)):
        _validate(path, tmp_path / f"day{k}", value)
    previous = day_trends.previous_days(path, tmp_path / "today")
    assert len(previous.runs) == 3 and previous.campaign is None and previous.this_run_recorded is None

    inside = {t.metric: t for t in day_trends.compare(*_today(0.99955), previous)}
    assert inside[CHECK.name].flag == "" and inside[OTHER.name].flag == ""
    low = {t.metric: t for t in day_trends.compare(*_today(0.9991, recall=(9, 10)), previous)}
    assert "below the previous days' range [0.9994, 0.9996]" in low[CHECK.name].flag
    assert "moved" in low[CHECK.name].flag  # 0.0004 from the median, whose margin is 0.0005
    assert "below" in low[day_trends.RECALL + "bit_flip"].flag
    assert low[OTHER.name].flag == ""


def test_the_report_shows_trends_with_sparklines_and_marks(mpl, demo_run, tmp_path):
    dataset, run_dir = demo_run
    path = tmp_path / "history.duckdb"
    for k in range(3):  # three previous days far below today's cross-match: today is marked
        _validate(path, tmp_path / f"day{k}", 0.9990 + 1e-5 * k)
    text = html_report.build(run_dir, dataset=dataset, features=tmp_path / "none", history=path)
    section = re.search(r'<section id="trends">.*?</section>', text, re.S).group(0)
    assert "3 previous day(s)" in section
    rows = re.findall(r"<tr><td>.*?</tr>", section, re.S)
    # Every check, and the recall of bit flips: recorded on the previous days, nothing injected today (n/a).
    assert len(rows) == len(checks.evaluate_all(db.connect(run_dir, dataset), True)) + 1
    recall = next(r for r in rows if f"<td>{day_trends.RECALL}bit_flip</td>" in r)
    assert '<td class="num">n/a</td><td class="num">1 .. 1</td>' in recall
    sparks = [r for r in rows if '<img class="spark"' in r]
    assert len(sparks) == len(rows) - sum("no value on any day" in r for r in rows) > len(rows) // 2
    crossmatch = next(r for r in rows if f"<td>{CHECK.name}</td>" in r)
    assert "&#9650; above the previous days&#x27; range" in crossmatch


def test_no_previous_days_is_said_plainly(tmp_path):
    results, card = _today(0.9995)
    for path in (tmp_path / "absent.duckdb", tmp_path / "empty.duckdb"):
        if path.name == "empty.duckdb":
            _validate(path, tmp_path / "today", 0.9995)  # only this run itself
        previous = day_trends.previous_days(path, tmp_path / "today")
        text = html_report._trends_html(results, card, previous)
        assert text.startswith('<p class="note">No previous days'), text
        assert "<img" not in text


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20), st.floats(0, 1))
def test_a_value_among_the_previous_ones_far_from_the_threshold_is_never_marked(before, where):
    lo, hi = min(before), max(before)
    today = min(max(lo + where * (hi - lo), lo), hi)  # inside [lo, hi] despite rounding
    threshold = 1e9  # every move is far smaller than the margin
    assert day_trends.flag(today, tuple(before), threshold) == ""
    assert "above" in day_trends.flag(hi + 1.0, tuple(before), threshold)
    assert "below" in day_trends.flag(lo - 1.0, tuple(before), threshold)


# --- logbook against the scorecard ----------------------------------------------------------------------------


def test_the_report_shows_logbook_and_scorecard_counts_side_by_side():
    card = Scorecard({"bit_flip": (198, 198), "hk_excursion": (2, 2), "transient_brightening": (1, 1)}, {})
    agreeing = [{"anomalies": {"bit_flip": 198, "hk_excursion": 2}, "anomalies_counted": "what the scorecard counts"}]
    text = html.unescape(html_report._logbook_counts_html(agreeing, card))
    assert "DIFFER" not in text and text.count("agree") == 2 and "transient" not in text
    old = [{"anomalies": {"bit_flip": 141}}]  # an older logbook: faults of the pass after midnight left out
    text = html.unescape(html_report._logbook_counts_html(old, card))
    assert re.search(r"bit_flip</td><td class=\"num\">141</td><td class=\"num\">198</td><td class=\"fail\">DIFFER",
                     text), text
    assert "older gaiasim" in text


def test_a_faulty_days_logbook_agrees_with_its_scorecard_in_the_report(faulty_run):
    dataset, run_dir = faulty_run
    card = scorecard.scorecard(db.connect(run_dir, dataset))
    counts = html.unescape(html_report._logbook_counts_html(html_report.read_logbook(dataset), card))
    assert "DIFFER" not in counts
    assert counts.count("agree") == 7  # bit flips, duplicates, losses, late, overlap, glitches, truncation
