"""The results database as OpenMetrics (gaiasim.validate.openmetrics, ``gaiasim metrics``), read back by an
independent parser (prometheus_client's), and the Grafana dashboard that uses it (docs/grafana/)."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from pathlib import Path

import jsonschema
import promql_parser
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.parser import text_string_to_metric_families as text_004_to_metric_families

from gaiasim.cli import main
from gaiasim.validate import checks
from gaiasim.validate import history as hist
from gaiasim.validate import openmetrics as om
from pipeline import layout
from pipeline.io import InputError
from pipeline.run import _Timer, peak_rss_bytes
from tests.runs import write_pre_campaign_history

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "gaiasim-dashboard.json"
RUN_INFO = {"dataset": "/data/day \"one\"", "pipeline_version": "0.1.0", "inputs": {"tm/a.tm": "ab" * 32},
            "sut": {"identity": "builtin:0.1.0"}}
PHOT = checks.get("photometry_bias")  # REQ-PHOT-001, <= 0.01 mag
XM = checks.get("crossmatch_correct")  # REQ-XM-001, >= 0.999
NA = checks.get("faults_detected")  # n/a when no fault was injected


def parse(text: str) -> dict[str, dict[tuple, list[tuple[float, int | None]]]]:
    """family -> labels (sorted items) -> [(value, Unix time in microseconds)], by prometheus_client's
    OpenMetrics parser."""
    out = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge", family.name
        series = out.setdefault(family.name, {})
        for s in family.samples:
            assert s.name == family.name
            when = None if s.timestamp is None else s.timestamp.sec * 10**6 + s.timestamp.nsec // 1000
            series.setdefault(tuple(sorted(s.labels.items())), []).append((s.value, when))
    return out


def micros(when: dt.datetime) -> int:
    """Unix time in microseconds of a naive UTC time, exactly."""
    return (when - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)


def validate_into(db: Path, run: Path, results, campaign=None) -> None:
    hist.append(db, RUN_INFO, run, results, None, campaign)


@pytest.fixture()
def history(tmp_path):
    """Three validations: two of one run outside any campaign (one failing), one of another in a campaign with
    an n/a check and a check that failed without a value."""
    db = tmp_path / "history.duckdb"
    validate_into(db, tmp_path / "run-1", [checks.Result(PHOT, 0.002, True), checks.Result(XM, 1.0, True)])
    validate_into(db, tmp_path / "run-1", [checks.Result(PHOT, 0.03, False), checks.Result(XM, 1.0, True)])
    validate_into(db, tmp_path / "run 2", [checks.Result(PHOT, 0.001, True), checks.Result(XM, None, False),
                                           checks.Result(NA, None, None)], "nightly")
    return db


def test_the_exposition_reads_back_as_the_history(history):
    rows = hist.records(history)
    got = parse(om.render(om.samples(rows)))

    assert set(got) == om.NAMES  # every family's metadata, even without samples
    assert got["gaiasim_stage_duration_seconds"] == got["gaiasim_stage_peak_rss_bytes"] == {}  # no --run
    for r in rows:
        labels = tuple(sorted({"requirement": r.requirement, "check": r.check_name,
                               "unit": checks.get(r.check_name).unit, "op": r.op, "run": r.run,
                               "campaign": r.campaign or ""}.items()))
        when = micros(r.recorded_at)
        assert (r.threshold, when) in got["gaiasim_check_threshold"][labels]
        if r.value is None:
            assert labels not in got["gaiasim_check_value"]
        else:
            assert (r.value, when) in got["gaiasim_check_value"][labels]
        if r.passed is None:  # n/a: never a pass, nor a failure
            assert labels not in got["gaiasim_check_passed"]
            assert got["gaiasim_check_not_applicable"][labels] == [(1.0, when)]
        else:
            assert (float(r.passed), when) in got["gaiasim_check_passed"][labels]
            assert labels not in got.get("gaiasim_check_not_applicable", {})
    ratios = {dict(k)["run"].rsplit("/", 1)[1]: [v for v, _ in points]
              for k, points in got["gaiasim_checks_pass_ratio"].items()}
    assert ratios == {"run-1": [1.0, 0.5], "run 2": [0.5]}  # the n/a check is left out of run 2's
    (labels,) = [dict(k) for k in got["gaiasim_checks_pass_ratio"] if dict(k)["campaign"] == "nightly"]
    assert (labels["dataset"], labels["pipeline_version"], labels["sut"]) == ('/data/day "one"', "0.1.0",
                                                                              "builtin:0.1.0")


def test_metadata_follows_the_spec_and_the_text_is_also_prometheus_text_format(history):
    text = om.render(om.samples(om.latest(hist.records(history)), timestamps=False))
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for f in om.FAMILIES:
        assert families[f.name].unit == f.unit and families[f.name].documentation == f.help
        assert not f.unit or f.name.endswith("_" + f.unit)
        # HELP needing no escape: the 0.0.4 text format knows only \\ and \n there, not \".
        assert not set(f.help) & {"\\", "\n", '"'}, f.name
    assert text.endswith("\n# EOF\n")
    legacy = {f.name: len(f.samples) for f in text_004_to_metric_families(text)}
    assert legacy == {name: len(f.samples) for name, f in families.items()}


def test_latest_keeps_the_newest_validation_of_each_campaign_without_timestamps(history):
    got = parse(om.render(om.samples(om.latest(hist.records(history)), timestamps=False)))
    phot = {dict(k)["campaign"]: v for k, v in got["gaiasim_check_value"].items()
            if dict(k)["check"] == "photometry_bias"}
    assert phot == {"": [(0.03, None)], "nightly": [(0.001, None)]}


def test_a_malformed_exposition_is_rejected_by_the_parser(history):
    text = om.render(om.samples(hist.records(history)))
    list(text_string_to_metric_families(text))  # the real one parses
    with pytest.raises(ValueError, match="EOF"):
        list(text_string_to_metric_families(text.replace("# EOF\n", "")))
    with pytest.raises(ValueError):  # a label value left unescaped
        list(text_string_to_metric_families(text.replace('\\"one\\"', '"one"')))
    lines = text.splitlines(keepends=True)

    def swapped(i: int) -> str:
        return "".join([*lines[:i], lines[i + 1], lines[i], *lines[i + 2:]])

    def series(line: str) -> str:
        return line.rsplit("}", 1)[0]

    values = [i for i, line in enumerate(lines) if line.startswith("gaiasim_check_value{")]
    same = next(i for i in values if series(lines[i]) == series(lines[i + 1]))
    with pytest.raises(ValueError, match="backwards"):  # one metric's points in ascending time
        list(text_string_to_metric_families(swapped(same)))
    other = next(i for i in values if series(lines[i]) != series(lines[i + 1]) and i - 1 in values
                 and series(lines[i - 1]) == series(lines[i]))
    with pytest.raises(ValueError, match="grouping"):  # one metric's points together
        list(text_string_to_metric_families(swapped(other)))


def test_a_database_from_before_campaigns_and_suts_is_exported(tmp_path):
    db = tmp_path / "old.duckdb"
    write_pre_campaign_history(db)
    got = parse(om.render(om.samples(hist.records(db))))
    (labels,) = got["gaiasim_checks_pass_ratio"]
    assert dict(labels) == {"run": "r", "campaign": "", "dataset": "d", "pipeline_version": "0.0.9", "sut": ""}
    assert got["gaiasim_checks_pass_ratio"][labels] == [(1.0, micros(dt.datetime(2026, 1, 1)))]
    with pytest.raises(InputError, match="no results in"):
        hist.records(db, campaign="nightly")


def test_two_different_results_at_one_time_are_refused_not_exposed():
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 678901)
    row = hist.Record(when, "/r", "/d", "1", None, None, "REQ-PHOT-001", "photometry_bias", 0.002, "<=", 0.01, True)
    with pytest.raises(InputError, match="same time"):
        om.render(om.samples([row, row.__class__(**{**row.__dict__, "value": 0.003})]))


HOSTILE = st.text(st.sampled_from('"\\\n{}=,# \t\r\x00é✓\u2028'), max_size=8) | st.text(max_size=12)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=60, deadline=None)
@given(names=st.lists(st.tuples(HOSTILE, HOSTILE, HOSTILE, HOSTILE | st.none(), HOSTILE, FLOATS, FLOATS),
                      min_size=1, max_size=4),
       stages=st.dictionaries(HOSTILE, st.floats(min_value=0, max_value=1e6), max_size=3))
def test_hostile_label_values_round_trip(names, stages):
    base = dt.datetime(2026, 3, 1, 12, 0, 0, 1)
    rows = [hist.Record(base + dt.timedelta(seconds=i), run, dataset, "v", campaign, sut, req, check, value,
                        "<=", threshold, True)
            for i, (run, req, check, campaign, sut, value, threshold) in enumerate(names)
            for dataset in ["d\\\"\n"]]
    runs = {rows[0].run: {"timings_s": stages}}
    got = parse(om.render(om.samples(rows, runs)))
    for r in rows:
        labels = tuple(sorted({"requirement": r.requirement, "check": r.check_name, "unit": om._UNITS.get(
            r.check_name, ""), "op": "<=", "run": r.run, "campaign": r.campaign or ""}.items()))
        (value,) = [v for v, when in got["gaiasim_check_value"][labels] if when == micros(r.recorded_at)]
        assert value == r.value or (math.isnan(value) and math.isnan(r.value))
    last = max(r.recorded_at for r in rows if r.run == rows[0].run)
    assert {dict(k)["stage"]: v for k, v in got["gaiasim_stage_duration_seconds"].items()} == {
        stage: [(t, micros(last))] for stage, t in stages.items()}


def fake_run(folder: Path, **extra) -> Path:
    folder.mkdir(parents=True)
    (folder / layout.RUN_JSON).write_text(json.dumps({"status": "complete", **extra}))
    return folder


def test_cli_writes_the_exposition_atomically_with_the_stage_metrics_of_a_run(history, tmp_path):
    run = fake_run(tmp_path / "run-1", timings_s={"ingest": 1.5, "hours": 20.25},
                   peak_rss_bytes={"ingest": 2**30, "hours": 3 * 2**30})
    out = tmp_path / "textfile" / "gaiasim.prom"

    result = CliRunner().invoke(main, ["metrics", "--db", str(history), "--latest", "--run", str(run),
                                       "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"metrics {out}: ") and "of 2 validations" in result.stdout
    assert [p.name for p in out.parent.iterdir()] == ["gaiasim.prom"]  # no temporary left beside it
    got = parse(out.read_text())
    assert {dict(k)["stage"]: v for k, v in got["gaiasim_stage_peak_rss_bytes"].items()} == {
        "ingest": [(2.0**30, None)], "hours": [(3.0 * 2**30, None)]}
    assert {dict(k)["stage"]: v for k, v in got["gaiasim_stage_duration_seconds"].items()} == {
        "ingest": [(1.5, None)], "hours": [(20.25, None)]}

    printed = CliRunner().invoke(main, ["metrics", "--db", str(history), "--requirement", "REQ-XM-001"])
    assert printed.exit_code == 0 and printed.stdout.endswith("# EOF\n")
    assert {dict(k)["requirement"] for k in parse(printed.stdout)["gaiasim_check_threshold"]} == {"REQ-XM-001"}


def test_cli_refuses_a_run_that_was_not_validated_in_one_line(history, tmp_path):
    run = fake_run(tmp_path / "other", timings_s={"ingest": 1.0})
    result = CliRunner().invoke(main, ["metrics", "--db", str(history), "--run", str(run)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "has no validation" in lines[0] and "gaiasim validate" in lines[0], lines
    missing = CliRunner().invoke(main, ["metrics", "--db", str(tmp_path / "none.duckdb")])
    assert missing.exit_code == 2 and "no results database" in missing.stderr


def test_the_pipeline_records_its_peak_memory_per_stage_in_the_contract():
    timer = _Timer()
    before = peak_rss_bytes()
    ballast = bytearray(64 * 2**20)  # touched: resident
    ballast[::4096] = b"x" * len(ballast[::4096])
    timer.lap("ingest")
    timer.lap("hours")
    # Bytes, not the kilobytes /proc and getrusage count in: at least the ballast, which is resident now.
    assert len(ballast) <= timer.peak_rss["ingest"] and before <= timer.peak_rss["ingest"] <= timer.peak_rss["hours"]
    del ballast
    info = {"status": "running", "timings_s": timer.timings, "peak_rss_bytes": timer.peak_rss}
    jsonschema.validate(info, layout.run_json_schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**info, "peak_rss_bytes": {"ingest": -1}}, layout.run_json_schema())


def test_docs_name_every_family_with_its_unit_and_labels():
    text = (DASHBOARD.parents[1] / "metrics.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(gaiasim_\w+)` \|.*$", text, re.M)}
    assert set(rows) == om.NAMES
    previous = ""
    for f in om.FAMILIES:
        labels = rows[f.name].split("|")[3]
        named = re.findall(r"`(\w+)`", labels)
        assert named == list(f.labels) or (labels.strip() == "same" and f.labels == previous), f.name
        assert f.unit in rows[f.name].split("|")[2], f.name
        previous = f.labels


# Grafana's own variables, replaced by something PromQL accepts before the expression is parsed.
_GRAFANA_VARIABLES = re.compile(r"\$\{?(__range|__interval|__rate_interval)\}?|\$\{?\w+(:\w+)?\}?")


def _promql(text: str) -> str:
    return _GRAFANA_VARIABLES.sub(lambda m: "1h" if m.group(1) else "x", text)


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects, by PromQL's own parser (which also refuses bad syntax); a
    selector without a literal name is reported as '<any>'."""
    names: set[str] = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            named = [m.value for m in node.matchers.matchers
                     if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal]
            names.update([node.name] if node.name else named or ["<any>"])
        return True

    promql_parser.walk(promql_parser.parse(_promql(expr)), visit)
    return names


def dashboard_queries(dashboard: dict) -> list[str]:
    """Every PromQL expression of the dashboard: panel targets (rows included) and the selectors inside
    its label_values() variables."""
    out = []
    panels = list(dashboard["panels"])
    while panels:
        p = panels.pop()
        panels.extend(p.get("panels", []))
        out.extend(t["expr"] for t in p.get("targets", []))
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            (selector,) = re.fullmatch(r"label_values\((.*),\s*\w+\)", var["query"]["query"]).groups()
            out.append(selector)
    return out


def test_the_dashboard_uses_only_metrics_the_exporter_writes():
    dashboard = json.loads(DASHBOARD.read_text())
    queries = dashboard_queries(dashboard)
    used = set().union(*(metric_names(q) for q in queries))
    assert len(queries) >= 10 and used <= om.NAMES, used - om.NAMES
    assert {"gaiasim_checks_pass_ratio", "gaiasim_check_passed", "gaiasim_check_value", "gaiasim_check_threshold",
            "gaiasim_stage_duration_seconds", "gaiasim_stage_peak_rss_bytes"} <= used
    # The check can fire: a renamed metric, or a selector without a name, is caught.
    renamed = 'max by (check) (last_over_time(gaiasim_check_values{campaign=~"$campaign"}[$__range]))'
    assert metric_names(renamed) - om.NAMES == {"gaiasim_check_values"}
    assert metric_names('{campaign="x"}') == {"<any>"}
    with pytest.raises(ValueError):
        metric_names("sum(gaiasim_check_value[5m])")  # a range where an instant vector belongs
    assert dashboard["schemaVersion"] >= 39
    (source,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert source["query"] == "prometheus"
    for p in dashboard["panels"]:
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
