"""Shared test configuration: hypothesis profiles and the generated demo days (built once per session).

Hypothesis profile (``HYPOTHESIS_PROFILE``, default ``dev``, or ``ci`` when ``CI`` is set):

- ``dev``: 50 examples, for the edit-test loop;
- ``ci``: 100 examples, derandomized (same examples on every run);
- ``fuzz``: 20000 examples, for a long hunt.

Every profile has ``deadline=None``: numba compiles a kernel on its first call, which would otherwise
blow the deadline of whichever example happens to run first.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# A shared 2-core machine can make input generation slow: that is not a failure of the code under test.
_SLOW_OK = [HealthCheck.too_slow]
settings.register_profile("dev", max_examples=50, deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True, suppress_health_check=_SLOW_OK)
settings.register_profile("fuzz", max_examples=20000, deadline=None, suppress_health_check=_SLOW_OK)
# CI (CI=true) runs the derandomised profile, so a landing never depends on the luck of the draw.
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Fault plan of the faulty day, and the seed it is generated with.
FAULTY_PLAN = REPO_ROOT / "datasets" / "faults" / "corrupted_link.toml"
FAULTY_SEED = 7


def _generate_and_run(root: Path, spec, faults_path: Path | None) -> tuple[Path, Path]:
    from gaiasim.sim.generate import generate
    from pipeline.run import run

    dataset, run_dir = root / "dataset", root / "run"
    generate(spec, dataset, faults_path)
    run(dataset, run_dir)
    return dataset, run_dir


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(dataset, run folder) of the embedded demo day (``gaiasim.demo.DEMO_SPEC``), nominal telemetry."""
    from gaiasim.demo import DEMO_SPEC

    return _generate_and_run(tmp_path_factory.mktemp("demo"), DEMO_SPEC, None)


@pytest.fixture(scope="session")
def faulty_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(dataset, run folder) of the demo day at seed 7 with the ``corrupted_link`` fault plan."""
    from gaiasim.demo import DEMO_SPEC

    spec = dataclasses.replace(DEMO_SPEC, seed=FAULTY_SEED)
    return _generate_and_run(tmp_path_factory.mktemp("faulty"), spec, FAULTY_PLAN)


@pytest.fixture(scope="session")
def transient_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(dataset, run folder) of the demo day at seed 6 with the ``transients`` plan (alerts to raise)."""
    from gaiasim.demo import DEMO_SPEC

    spec = dataclasses.replace(DEMO_SPEC, seed=6)
    return _generate_and_run(tmp_path_factory.mktemp("transients"), spec, FAULTY_PLAN.parent / "transients.toml")


@pytest.fixture(scope="session")
def hk_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(dataset, run folder) of the demo day at seed 8 with the ``hk_anomalies`` plan (HK events to report)."""
    from gaiasim.demo import DEMO_SPEC

    spec = dataclasses.replace(DEMO_SPEC, seed=8)
    return _generate_and_run(tmp_path_factory.mktemp("hk"), spec, FAULTY_PLAN.parent / "hk_anomalies.toml")


@pytest.fixture(autouse=True, scope="session")
def _history_in_tmp(tmp_path_factory):
    """``gaiasim validate`` appends to a results database and the query prompt keeps a history: keep the tests'
    out of the home folder."""
    patch = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("history")
    patch.setenv("GAIASIM_HISTORY", str(folder / "history.duckdb"))
    patch.setenv("GAIASIM_QUERY_HISTORY", str(folder / "query_history"))  # the query prompt's line history
    yield
    patch.undo()
