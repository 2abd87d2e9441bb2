"""The features' three reports of one small pytest-bdd run, in a subprocess: JUnit XML (pytest), Cucumber JSON
(pytest-bdd) and Cucumber Messages (steps/messages.py). The feature passes, fails on purpose (an assertion, an
undefined step, a fixture broken at set-up and at tear-down, a failing outline example), and skips (by tag and
within a step), so every count has something to count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cucumber_messages as cm
import jsonschema
import pytest
from click.testing import CliRunner
from junitparser import Error, Failure, JUnitXml, Skipped

from gaiasim.cli import main
from gaiasim.validate import trace

REPO = Path(__file__).resolve().parents[2]

FEATURE = """\
@REQ-DEMO-001
Feature: the three reports agree
  Scenario: a positive number
    Given the number 1
    Then it is positive

  @REQ-DEMO-002
  Scenario: a negative number fails on purpose
    Given the number -1
    Then it is positive

  Scenario: a step nobody defined
    Given the number 1
    Then nobody defined this step

  Scenario: its fixture breaks at set-up
    Given the number 1

  Scenario: its fixture breaks at tear-down
    Given the number 1
    Then it is positive

  @skip
  Scenario: skipped by its tag
    Given the number 1

  Scenario: skipped within a step
    Given the number 1
    When the step skips
    Then it is positive

  Scenario Outline: the number <n>
    Given the number <n>
    Then it is positive

    Examples:
      | n  |
      | 2  |
      | -3 |
      | 2  |
"""

STEPS = '''\
import pytest
from pytest_bdd import given, parsers, scenarios, then, when

scenarios("demo.feature")


@pytest.fixture(autouse=True)
def _breaks(request):
    if "breaks_at_setup" in request.node.name:
        raise RuntimeError("broken at set-up on purpose")
    yield
    if "breaks_at_teardown" in request.node.name:
        raise RuntimeError("broken at tear-down on purpose")


@given(parsers.parse("the number {n:d}"), target_fixture="number")
def _(n):
    return n


@when("the step skips")
def _():
    pytest.skip("nothing to measure")


@then("it is positive")
def _(number):
    assert number > 0
'''

#: What happened to each scenario (pytest's verdict; JUnit and the Messages must say the same).
EXPECTED = {"passed": 3, "failed": 5, "skipped": 2}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reports of one pytest run over the small feature (about a second: the steps do no work)."""
    root = tmp_path_factory.mktemp("bdd")
    (root / "demo.feature").write_text(FEATURE)
    (root / "test_demo.py").write_text(STEPS)
    (root / "pytest.ini").write_text("[pytest]\nmarkers =\n    REQ-DEMO-001: demo\n    REQ-DEMO-002: demo\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "test_demo.py", "-c", "pytest.ini", "--rootdir", ".", "-q",
         "-p", "steps.messages", "-p", "no:cacheprovider", "-W", "error",
         "--junitxml=junit.xml", "--cucumberjson=cucumber.json", "--cucumber-messages=reports/cucumber.ndjson"],
        cwd=root, capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))})
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]  # 1: tests failed, as they must
    assert "Cucumber Messages: reports/cucumber.ndjson (10 test cases)" in done.stdout, done.stdout[-3000:]
    return root


def envelopes(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def round_trips(envelope: dict) -> bool:
    """The envelope read into the package's model types and written back is the same JSON: every field known,
    every required field there and every enum value valid (those two raise TypeError)."""
    return cm.message_converter.to_dict(cm.message_converter.from_dict(envelope, cm.Envelope)) == envelope


def junit_counts(path: Path) -> Counter:
    """passed / failed / skipped scenarios in a JUnit report: a failure or an error fails the testcase."""
    out = Counter()
    for suite in JUnitXml.fromfile(str(path)):
        for case in suite:
            kinds = {type(r) for r in case.result}
            out["failed" if kinds & {Failure, Error} else "skipped" if Skipped in kinds else "passed"] += 1
    return out


def report_counts(path: Path) -> Counter:
    return Counter(o.status for o in trace.results(path))


def test_every_envelope_round_trips_through_the_cucumber_messages_model(run):
    found = envelopes(run / "reports" / "cucumber.ndjson")
    assert all(len(e) == 1 and round_trips(e) for e in found)
    kinds = [next(iter(e)) for e in found]
    assert kinds[0] == "meta" and kinds[-1] == "testRunFinished" and kinds.count("testRunStarted") == 1
    assert kinds.index("testRunStarted") < kinds.index("testCase") < kinds.index("testCaseStarted")
    assert Counter(kinds)["pickle"] == Counter(kinds)["testCase"] == Counter(kinds)["testCaseFinished"] == 10
    pickles = {e["pickle"]["id"]: e["pickle"] for e in found if "pickle" in e}
    cases = {e["testCase"]["id"]: e["testCase"] for e in found if "testCase" in e}
    hooks = {e["hook"]["id"] for e in found if "hook" in e}
    for case in cases.values():  # every reference resolves: pickle, pickle steps, hooks
        steps = case["testSteps"]
        assert [s.get("pickleStepId") for s in steps[1:-1]] == [s["id"] for s in pickles[case["pickleId"]]["steps"]]
        assert {steps[0]["hookId"], steps[-1]["hookId"]} == hooks
    started = {e["testCaseStarted"]["id"]: e["testCaseStarted"]["testCaseId"] for e in found if "testCaseStarted" in e}
    finished = Counter()
    for e in found:
        if "testStepFinished" in e:
            f = e["testStepFinished"]
            assert f["testStepId"] in {s["id"] for s in cases[started[f["testCaseStartedId"]]]["testSteps"]}
            finished[f["testCaseStartedId"]] += 1
    assert all(finished[i] == len(cases[c]["testSteps"]) for i, c in started.items()), "every step reported once"


def test_every_envelope_keeps_the_cucumber_messages_json_schema(run):
    """The messages' own JSON Schema (tests/data/cucumber: cucumber/messages v34.2.0), checked by the jsonschema
    library: an implementation independent of the model types the report is written with."""
    schema = json.loads((REPO / "tests" / "data" / "cucumber" / "messages.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    found = envelopes(run / "reports" / "cucumber.ndjson")
    errors = [f"{next(iter(e))}: {err.message}" for e in found for err in validator.iter_errors(e)]
    assert not errors, errors[:5]
    step = next(e for e in found if "testStepFinished" in e)
    assert not validator.is_valid({"testStepFinished": {**step["testStepFinished"], "colour": "green"}})
    assert not validator.is_valid(json.loads(json.dumps(step).replace('"PASSED"', '"GREEN"').replace(
        '"FAILED"', '"GREEN"').replace('"SKIPPED"', '"GREEN"').replace('"UNDEFINED"', '"GREEN"')))
    assert not validator.is_valid({"testCase": {"id": "1"}}), "required fields missing"


def test_the_round_trip_fires_on_a_malformed_envelope(run):
    line = next(e for e in envelopes(run / "reports" / "cucumber.ndjson") if "testStepFinished" in e)
    assert round_trips(line)
    assert not round_trips({"testStepFinished": {**line["testStepFinished"], "colour": "green"}})
    with pytest.raises(TypeError, match="'GREEN' is not a valid TestStepResultStatus"):
        round_trips(json.loads(json.dumps(line).replace('"PASSED"', '"GREEN"')))
    with pytest.raises(TypeError, match="Missing required fields"):
        round_trips({"testCase": {"id": "1"}})


def test_junit_and_the_messages_agree_on_every_count(run):
    assert junit_counts(run / "junit.xml") == report_counts(run / "reports" / "cucumber.ndjson") == EXPECTED


def test_a_tampered_report_disagrees(run):
    text = (run / "reports" / "cucumber.ndjson").read_text()
    tampered = run / "tampered.ndjson"
    tampered.write_text(text.replace('"status": "FAILED"', '"status": "PASSED"', 1))
    assert report_counts(tampered) != junit_counts(run / "junit.xml")


def test_cucumber_json_agrees_on_what_pytest_bdd_can_tell(run):
    """pytest-bdd 9's Cucumber JSON has only the call phase's step results: a scenario skipped or broken before
    its steps is left out, one with an undefined step, one skipped within a step and one broken at tear-down
    come out passed. Everywhere else it agrees with the Messages, outline examples included."""
    by_json = {s: v for _, _, s, v in trace.matrix(run, run / "cucumber.json")}
    by_messages = {s: v for _, _, s, v in trace.matrix(run, run / "reports" / "cucumber.ndjson")}
    differ = {s: (by_json[s], by_messages[s]) for s in by_messages if by_json[s] != by_messages[s]}
    assert differ == {
        "a step nobody defined": ("passed", "failed"),
        "its fixture breaks at set-up": ("not run", "failed"),
        "its fixture breaks at tear-down": ("passed", "failed"),
        "skipped by its tag": ("not run", "skipped"),
        "skipped within a step": ("passed", "skipped"),
    }
    assert report_counts(run / "cucumber.json") == {"passed": 6, "failed": 2}


def test_trace_gives_each_outline_example_its_own_row_and_result(run):
    rows = trace.matrix(run, run / "reports" / "cucumber.ndjson")
    outline = [(r, s, v) for r, _, s, v in rows if s.startswith("the number <n>")]
    assert outline == [("REQ-DEMO-001", "the number <n> [example 1: n=2]", "passed"),
                       ("REQ-DEMO-001", "the number <n> [example 2: n=-3]", "failed"),
                       ("REQ-DEMO-001", "the number <n> [example 3: n=2]", "passed")]
    assert [s for r, _, s, _ in rows if r == "REQ-DEMO-002"] == ["a negative number fails on purpose"]
    assert trace.orphans(run, run / "reports" / "cucumber.ndjson") == []
    result = CliRunner().invoke(main, ["trace", "--features", str(run), "--cucumber",
                                       str(run / "reports" / "cucumber.ndjson")])
    assert result.exit_code == 0, result.output
    assert "| REQ-DEMO-001 | demo.feature | the number <n> [example 2: n=-3] | failed |" in result.output


def test_the_root_conftest_offers_the_option_to_every_run_from_the_repository(request):
    """``nox -s features`` passes --cucumber-messages to pytest from the repository: the root conftest loads it."""
    assert request.config.pluginmanager.hasplugin("steps.messages")
    assert request.config.getoption("--cucumber-messages") is None  # known, and off unless asked for
