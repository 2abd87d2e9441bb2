"""Fuzz session report: inputs run per test (every buffer of a batch counts), printed at the end and
written as JSON to ``$GAIASIM_FUZZ_REPORT`` when set (``nox -s fuzz`` sets ``reports/fuzz.json``); the
JSON is rewritten after every test, so a long session stopped half-way still says what it ran."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from hypothesis import settings

from tests.fuzz.targets import TALLY

_START = time.monotonic()
_FAILED: list[str] = []


def _report(status: str) -> dict:
    return {"inputs_total": sum(TALLY.values()), "inputs": dict(sorted(TALLY.items())),
            "wall_s": round(time.monotonic() - _START, 1), "profile": os.environ.get("HYPOTHESIS_PROFILE", "default"),
            "max_examples": settings.default.max_examples, "failed": list(_FAILED), "status": status}


def _write(report: dict) -> None:
    out = os.environ.get("GAIASIM_FUZZ_REPORT")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=1) + "\n")


def pytest_runtest_logreport(report) -> None:
    if report.failed:
        _FAILED.append(report.nodeid)


def pytest_runtest_logfinish(nodeid, location) -> None:
    if TALLY:
        _write(_report("running"))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not TALLY:
        return
    report = _report("passed" if int(exitstatus) == 0 else f"exit status {int(exitstatus)}")
    terminalreporter.write_sep("-", f"fuzz: {report['inputs_total']} inputs in {report['wall_s']} s "
                                    f"(profile {report['profile']}), {len(_FAILED)} failed")
    for name, n in report["inputs"].items():
        terminalreporter.write_line(f"{name:>24}: {n}")
    _write(report)
    if os.environ.get("GAIASIM_FUZZ_REPORT"):
        terminalreporter.write_line(f"fuzz report written to {os.environ['GAIASIM_FUZZ_REPORT']}")
