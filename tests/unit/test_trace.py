"""The traceability matrix: requirement tags of features (gherkin-official), results from a Cucumber report, one
row per Scenario Outline example. The Cucumber Messages path is tested on a real run in test_cucumber_reports.py."""

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
    Given a thing <n>
    Examples:
      | n |
      | 1 |

    @REQ-ABC-003
    Examples: more
      | n |
      | 2 |
      | 1 |
"""


def cucumber_json(*elements: tuple[int, str, list[str]], uri: str = "x.feature") -> list[dict]:
    """A Cucumber JSON report as pytest-bdd writes it: (scenario line, pytest test name, step statuses)."""
    return [{"uri": uri, "elements": [{"line": line, "id": name, "steps": [{"result": {"status": s}} for s in steps]}
                                      for line, name, steps in elements]}]


def test_feature_tags_apply_to_every_scenario_and_examples_tags_to_their_rows(tmp_path):
    (tmp_path / "area").mkdir()
    (tmp_path / "area" / "x.feature").write_text(FEATURE)
    got = [(s.feature, s.name, s.requirements, s.line, s.row_line, s.pytest_id) for s in trace.scenarios(tmp_path)]
    assert got == [
        ("area/x.feature", "first one", ("REQ-ABC-001", "REQ-ABC-002"), 4, None, None),
        ("area/x.feature", "second <n> [example 1: n=1]", ("REQ-ABC-001",), 7, 11, "1_0"),
        ("area/x.feature", "second <n> [example 2: n=2]", ("REQ-ABC-001", "REQ-ABC-003"), 7, 16, "2"),
        ("area/x.feature", "second <n> [example 3: n=1]", ("REQ-ABC-001", "REQ-ABC-003"), 7, 17, "1_1"),
    ]


def test_pytest_ids_of_repeated_rows_get_pytests_counter():
    assert trace._pytest_ids([("a", "1"), ("b",), ("a", "1"), ("c",), ("c",)]) == ["a-1_0", "b", "a-1_1", "c0", "c1"]


def test_matrix_takes_each_examples_result_and_a_failed_step_fails_the_scenario(tmp_path):
    (tmp_path / "x.feature").write_text(FEATURE)
    report = cucumber_json((4, "test_first_one", ["passed", "failed"]), (7, "test_second_n[1_0]", ["passed"]),
                           (7, "test_second_n[2]", ["passed", "failed"]), (7, "test_second_n[1_1]", ["skipped"]))
    (tmp_path / "c.json").write_text(json.dumps(report))
    rows = trace.matrix(tmp_path, tmp_path / "c.json")
    assert ("REQ-ABC-002", "x.feature", "first one", "failed") in rows
    assert [(r, s, v) for r, _, s, v in rows if s.startswith("second")] == [
        ("REQ-ABC-001", "second <n> [example 1: n=1]", "passed"),
        ("REQ-ABC-001", "second <n> [example 2: n=2]", "failed"),
        ("REQ-ABC-001", "second <n> [example 3: n=1]", "skipped"),
        ("REQ-ABC-003", "second <n> [example 2: n=2]", "failed"),
        ("REQ-ABC-003", "second <n> [example 3: n=1]", "skipped"),
    ]
    assert trace.markdown(rows).count("\n") == len(rows) + 2
    assert trace.orphans(tmp_path, tmp_path / "c.json") == []


def test_a_result_of_no_scenario_is_an_orphan_and_a_row_without_result_not_run(tmp_path):
    (tmp_path / "x.feature").write_text(FEATURE)
    (tmp_path / "c.json").write_text(json.dumps(cucumber_json((5, "test_moved", ["passed"]),
                                                              (4, "test_first_one", ["passed"], ), uri="y.feature")))
    assert [(o.uri, o.line) for o in trace.orphans(tmp_path, tmp_path / "c.json")] == [("y.feature", 5),
                                                                                       ("y.feature", 4)]
    assert {v for *_, v in trace.matrix(tmp_path, tmp_path / "c.json")} == {"not run"}


def test_markdown_escapes_the_column_separator():
    assert "a \\| b" in trace.markdown([("REQ-ABC-001", "x.feature", "a | b", "passed")])


def test_missing_report_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="nox -s features"):
        trace.results(tmp_path / "nope.json")
    with pytest.raises(InputError, match="nox -s features"):
        trace.results(tmp_path / "nope.ndjson")


def test_bad_reports_and_bad_gherkin_are_one_clear_error_each(tmp_path):
    (tmp_path / "c.json").write_text('{"not": "a list"}')
    with pytest.raises(InputError, match="not a Cucumber JSON report"):
        trace.results(tmp_path / "c.json")
    (tmp_path / "m.ndjson").write_text('{"meta": {}}\n{broken\n')
    with pytest.raises(InputError, match="line 2 is not JSON"):
        trace.results(tmp_path / "m.ndjson")
    (tmp_path / "bad.feature").write_text("Feature: x\n  Scenario: y\n    Given z\n  Examples oops\n")
    with pytest.raises(InputError, match=r"bad.feature: \(4:3\).*fix the Gherkin") as caught:
        trace.scenarios(tmp_path)
    assert "\n" not in str(caught.value)
