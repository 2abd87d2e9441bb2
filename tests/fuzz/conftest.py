"""Fuzz session report: inputs run per test (every buffer of a batch counts), printed at the end and
written as JSON to ``$GAIASIM_FUZZ_REPORT`` when set (``nox -s fuzz`` sets ``reports/fuzz.json``)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from hypothesis import settings

from tests.fuzz.targets import TALLY

_START = time.monotonic()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not TALLY:
        return
    total = sum(TALLY.values())
    wall_s = round(time.monotonic() - _START, 1)
    profile = os.environ.get("HYPOTHESIS_PROFILE", "default")
    terminalreporter.write_sep("-", f"fuzz: {total} inputs in {wall_s} s (profile {profile})")
    for name, n in sorted(TALLY.items()):
        terminalreporter.write_line(f"{name:>24}: {n}")
    out = os.environ.get("GAIASIM_FUZZ_REPORT")
    if out:
        failed = len(terminalreporter.stats.get("failed", [])) + len(terminalreporter.stats.get("error", []))
        report = {"inputs_total": total, "inputs": dict(sorted(TALLY.items())), "wall_s": wall_s,
                  "profile": profile, "max_examples": settings.default.max_examples, "failed_tests": failed,
                  "exit_status": int(exitstatus)}
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=1) + "\n")
        terminalreporter.write_line(f"fuzz report written to {out}")
