"""Root conftest: registers the pytest-bdd step modules for the features, and the options that choose the
system under test they judge.

``--sut SPEC`` (default ``builtin``): the system under test of every feature (gaiasim.sut: ``builtin``,
``cmd:<command line>``, ``venv:<wheel, sdist, requirement or git ref>``); ``--baseline-sut SPEC``: the
operational baseline the baseline-comparison feature compares it with (default: the builtin pipeline run as
a separate program, ``tests/suts/honest.py``); ``--sut-timeout SECONDS`` for command SUTs.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

# steps.messages: ``--cucumber-messages FILE``, the scenarios' results as Cucumber Messages (NDJSON).
pytest_plugins = ["steps.common", "steps.compare", "steps.operations", "steps.messages"]

#: The default operational baseline: this tree's pipeline, run as a command (a different SUT from the
#: in-process builtin one, with the same code: the two must agree exactly).
SUTS = Path(__file__).resolve().parent / "tests" / "suts"
HONEST_SUT = f"cmd:{shlex.quote(sys.executable)} {shlex.quote(str(SUTS / 'honest.py'))} {{dataset}} {{out}}"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gaiasim", "gaiasim: the system under test")
    group.addoption("--sut", default="builtin", help="system under test of the features: builtin, cmd:<command line "
                    "with {dataset} and {out}> or venv:<wheel, sdist, requirement or git ref> (default builtin)")
    group.addoption("--baseline-sut", default=HONEST_SUT, help="operational baseline of the baseline-comparison "
                    "feature, a SUT spec (default: this tree's pipeline run as a command, tests/suts/honest.py)")
    group.addoption("--sut-timeout", type=float, default=None, help="seconds a cmd or venv SUT may take per run")


def pytest_configure(config: pytest.Config) -> None:
    """Refuse a bad SUT spec before any test runs: one line naming it."""
    from gaiasim import sut
    from pipeline.io import InputError

    for option in ("--sut", "--baseline-sut"):
        try:
            sut.parse(config.getoption(option), timeout_s=config.getoption("--sut-timeout"))
        except InputError as exc:
            raise pytest.UsageError(f"{option}: {exc}") from None
