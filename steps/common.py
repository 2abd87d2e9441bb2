"""Steps shared by every feature: a day, the pipeline over it, and a named check."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_bdd import given, parsers, then, when

from gaiasim import sut, workspace


@pytest.fixture(scope="session")
def system_under_test(request: pytest.FixtureRequest) -> sut.SUT:
    """The system under test the features judge (``pytest --sut SPEC``, default builtin)."""
    return sut.parse(request.config.getoption("--sut"), timeout_s=request.config.getoption("--sut-timeout"))


@pytest.fixture(scope="session")
def workspace_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Datasets and runs cached for the whole session (keyed by spec hash)."""
    return tmp_path_factory.mktemp("workspace")


@given(parsers.parse("a {level} day generated with seed {seed:d}"), target_fixture="dataset")
def _(level: str, seed: int, workspace_root: Path) -> Path:
    return workspace.dataset_for(level, seed, root=workspace_root)


@given(parsers.parse('a {level} day generated with seed {seed:d} and the fault plan "{plan}"'),
       target_fixture="dataset")
def _(level: str, seed: int, plan: str, workspace_root: Path) -> Path:
    return workspace.dataset_for(level, seed, plan, root=workspace_root)


@given(parsers.parse("{days:d} consecutive {level} days generated with seed {seed:d}"), target_fixture="dataset")
def _(days: int, level: str, seed: int, workspace_root: Path) -> Path:
    return workspace.dataset_for(level, seed, root=workspace_root, days=days)


@when("the day is generated again from the same spec", target_fixture="regenerated_differences")
def _(dataset: Path) -> list[str]:
    return workspace.regeneration_differences(dataset)


@when("the daily pipeline processes the day again", target_fixture="rerun_differences")
def _(run_dir: Path, system_under_test: sut.SUT) -> list[str]:
    return workspace.rerun_differences(run_dir, system_under_test)


@then("every file of the dataset has the same SHA-256")
def _(regenerated_differences: list[str]) -> None:
    assert not regenerated_differences, f"files that differ between two generations: {regenerated_differences}"


@then("every output table has the same bytes")
def _(rerun_differences: list[str]) -> None:
    assert not rerun_differences, f"output tables that differ between two runs: {rerun_differences}"


@when("the daily pipeline processes the day", target_fixture="run_dir")
def _(dataset: Path, workspace_root: Path, system_under_test: sut.SUT) -> Path:
    return workspace.run_for(dataset, root=workspace_root, system=system_under_test)


@then("the detection scorecard is complete")
def _(run_dir: Path) -> None:
    card = workspace.scorecard(run_dir)
    missed = {kind: f"{d}/{n}" for kind, (d, n) in card.recall.items() if d != n}
    alarms = {kind: n for kind, n in card.false_alarms.items() if n}
    assert card.passed, f"undetected faults (detected/injected): {missed}; false alarms: {alarms}"


def _judged(run_dir: Path, name: str, passes: bool) -> None:
    result = workspace.check(run_dir, name)
    assert result.passed is passes, (
        f"{result.check.requirement} {name}{'' if passes else ' should have caught it'}: measured {result.value} "
        f"{result.check.unit} ({result.status}), required {result.check.op} {result.check.threshold} "
        f"({result.note or result.check.statement})"
    )


@then(parsers.parse('the check "{name}" fails'))
def _(run_dir: Path, name: str) -> None:
    _judged(run_dir, name, False)


@then(parsers.parse('the check "{name}" passes'))
def _(run_dir: Path, name: str) -> None:
    _judged(run_dir, name, True)


@then(parsers.parse('the check "{name}" measures {value:g}'))
def _(run_dir: Path, name: str, value: float) -> None:
    """The value itself, where the check's verdict cannot be had: a rate the day's exposure cannot bound (n/a) still
    measures 0 when nothing happened."""
    result = workspace.check(run_dir, name)
    assert result.value == value, (f"{result.check.requirement} {name}: measured {result.value} {result.check.unit} "
                                   f"({result.status}), expected {value:g} ({result.note or result.check.statement})")
