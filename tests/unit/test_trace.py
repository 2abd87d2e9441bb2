"""The traceability matrix: requirement tags of features, results from a Cucumber report."""

from __future__ import annotations

import json

import pytest

from gaiasim.validate import trace
from pipeline.io import InputError

FEATURE = """@e2e @REQ-ABC-001
Feature: something
  @REQ-ABC-002
  Scenario: first one
    Given a thing

  Scenario Outline: second <n>
    Given a thing
    Examples:
      | n |
      | 1 |
"""


def test_feature_tags_apply_to_every_scenario_and_scenario_tags_to_theirs(tmp_path):
    (tmp_path / "area").mkdir()
    (tmp_path / "area" / "x.feature").write_text(FEATURE)
    got = {(s.name, s.requirements) for s in trace.scenarios(tmp_path)}
    assert got == {("first one", ("REQ-ABC-001", "REQ-ABC-002")), ("second <n>", ("REQ-ABC-001",))}


def test_matrix_takes_the_last_results_and_a_failed_step_fails_the_scenario(tmp_path):
    (tmp_path / "x.feature").write_text(FEATURE)
    report = [{"elements": [
        {"name": "first one", "steps": [{"result": {"status": "passed"}}, {"result": {"status": "failed"}}]},
        {"name": "second 1", "steps": [{"result": {"status": "passed"}}]},
    ]}]
    (tmp_path / "c.json").write_text(json.dumps(report))
    rows = trace.matrix(tmp_path, tmp_path / "c.json")
    assert ("REQ-ABC-002", "x.feature", "first one", "failed") in rows
    assert ("REQ-ABC-001", "x.feature", "second <n>", "passed") in rows
    assert trace.markdown(rows).count("\n") == len(rows) + 2


def test_missing_report_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="nox -s features"):
        trace.results(tmp_path / "nope.json")
