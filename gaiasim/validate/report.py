"""Machine-readable validation results: JUnit XML and JSON."""

from __future__ import annotations

import math
from io import BytesIO
from pathlib import Path

from junitparser import Failure, JUnitXml, Properties, Property, Skipped, TestCase, TestSuite

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
    """JUnit XML, written with junitparser: one testsuite ``gaiasim.validate``, one testcase per check (classname =
    requirement id, time = seconds of the check's query), with the properties requirement, value, unit, op and
    threshold; a failed check has a failure, a check with nothing to measure (n/a) is a skipped testcase, with the
    reason. Properties inside a testcase are what pytest's ``record_property`` writes (its default ``xunit1``
    family; Jenkins reads them); the stricter ``xunit2`` schema allows properties on the testsuite only."""
    suite = TestSuite("gaiasim.validate")
    for r in results:
        case = TestCase(r.check.name, classname=r.check.requirement, time=round(r.seconds, 6))
        props = Properties()
        value = _value(r)
        for name, v in (("requirement", r.check.requirement), ("value", "n/a" if value is None else repr(value)),
                        ("unit", r.check.unit), ("op", r.check.op), ("threshold", repr(r.check.threshold))):
            props.add_property(Property(name, v))
        case.append(props)
        if r.passed is None:
            case.result = [Skipped(r.note or "nothing to measure")]
        elif not r.passed:
            failure = Failure(r.note or f"{r.check.name} = {r.value} {r.check.unit}, required {r.check.op} "
                              f"{r.check.threshold}")
            failure.text = r.check.statement
            case.result = [failure]
        suite.add_testcase(case)
    suite.update_statistics()
    xml = JUnitXml()
    xml.add_testsuite(suite)
    xml.update_statistics()
    buffer = BytesIO()
    xml.write(buffer)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    io.write_bytes(buffer.getvalue(), path)
