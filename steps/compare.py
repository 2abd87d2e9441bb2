"""Steps of the baseline comparison: the system under test's run of a day against the operational
baseline's (``pytest --baseline-sut SPEC``): two different systems, so a regression shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_bdd import then, when

from gaiasim import compare, sut, workspace


@pytest.fixture(scope="session")
def baseline_system(request: pytest.FixtureRequest) -> sut.SUT:
    """The operational baseline (``pytest --baseline-sut SPEC``)."""
    return sut.parse(request.config.getoption("--baseline-sut"), timeout_s=request.config.getoption("--sut-timeout"))


@when("the operational baseline processes the day", target_fixture="run_dir")
def _(dataset: Path, workspace_root: Path, baseline_system: sut.SUT) -> Path:
    return workspace.run_for(dataset, root=workspace_root, system=baseline_system)


@when("the system under test processes the same day", target_fixture="candidate_run_dir")
def _(dataset: Path, workspace_root: Path, system_under_test: sut.SUT) -> Path:
    return workspace.run_for(dataset, root=workspace_root, system=system_under_test)


@when("the candidate's outputs are compared with the operational baseline", target_fixture="comparison")
def _(run_dir: Path, candidate_run_dir: Path) -> compare.Comparison:
    return compare.compare_runs(run_dir, candidate_run_dir)


@then("no output table differs beyond tolerance")
def _(comparison: compare.Comparison) -> None:
    differ = {t.table: {"only_in_baseline_rows": t.only_in_a, "only_in_candidate_rows": t.only_in_b,
                        "columns_rows_beyond_tolerance": {d.column: d.n_differ for d in t.columns}}
              for t in comparison.tables if t.differs}
    assert not differ, f"output tables that differ between baseline and candidate: {differ}"
