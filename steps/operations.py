"""Steps of near-real-time operations: pass files replayed into an inbox the pipeline watches."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_bdd import parsers, then, when

from gaiasim import sut, workspace


@when(parsers.parse("the day's pass files are replayed at {speed:g} times real time into an inbox the pipeline "
                    "watches"), target_fixture="candidate_run_dir")
def _(dataset: Path, speed: float, tmp_path: Path, system_under_test: sut.SUT) -> Path:
    if not system_under_test.can_watch():
        pytest.skip(f"the system under test ({system_under_test.spec}) has no watch mode: its command line has no "
                    "{inbox}")
    return workspace.watched_run_for(dataset, speed, root=tmp_path, system=system_under_test)


@then(parsers.parse('the check "{name}" passes on the watched run'))
def _(candidate_run_dir: Path, name: str) -> None:
    result = workspace.check(candidate_run_dir, name)
    assert result.passed, (f"{result.check.requirement} {name}: measured {result.value} {result.check.unit}, "
                           f"required {result.check.op} {result.check.threshold}")
