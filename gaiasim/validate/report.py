"""Machine-readable validation results: JUnit XML and JSON."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from gaiasim.validate.checks import Result
from gaiasim.validate.scorecard import Scorecard
from pipeline import io


def _value(r: Result) -> float | None:
    return None if r.value is None or math.isnan(r.value) else r.value


def to_json(results: list[Result], run_dir: Path, card: Scorecard | None = None) -> dict:
    return {
        "run": str(Path(run_dir).resolve()),
        "passed": not any(r.failed for r in results) and (card is None or card.passed),
        "scorecard": None if card is None else {
            "recall": {kind: {"detected": d, "injected": n} for kind, (d, n) in card.recall.items()},
            "false_alarms": card.false_alarms,
        },
        "checks": [
            {
                "name": r.check.name,
                "requirement": r.check.requirement,
                "statement": r.check.statement,
                "value": _value(r),
                "op": r.check.op,
                "threshold": r.check.threshold,
                "unit": r.check.unit,
                "passed": r.passed,  # null: nothing to measure (n/a)
                "status": r.status,
                "note": r.note,
            }
            for r in results
        ],
    }


def write_json(results: list[Result], run_dir: Path, path: Path, card: Scorecard | None = None) -> None:
    io.write_json(to_json(results, run_dir, card), Path(path))


def write_junit(results: list[Result], path: Path) -> None:
    """One testsuite ``gaiasim.validate``, one testcase per check (classname = requirement id); a check with
    nothing to measure (n/a) is a skipped testcase, with the reason."""
    failures = sum(r.failed for r in results)
    skipped = sum(r.passed is None for r in results)
    suite = ET.Element("testsuite", name="gaiasim.validate", tests=str(len(results)), failures=str(failures),
                       errors="0", skipped=str(skipped))
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=r.check.requirement, name=r.check.name)
        if r.passed is None:
            ET.SubElement(case, "skipped", message=r.note or "nothing to measure")
        elif not r.passed:
            msg = r.note or f"{r.check.name} = {r.value} {r.check.unit}, required {r.check.op} {r.check.threshold}"
            ET.SubElement(case, "failure", message=msg).text = r.check.statement
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = ET.Element("testsuites")
    root.append(suite)
    io.write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True), path)
