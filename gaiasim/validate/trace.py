"""Requirement traceability: requirement -> scenarios -> last result, from the features' tags.

Requirements are the ``@REQ-<AREA>-<NNN>`` tags of features/ (a feature's tags apply to its scenarios);
results come from a Cucumber JSON report (``nox -s features`` writes ``reports/cucumber.json``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.io import InputError

_REQ = re.compile(r"@(REQ-[A-Z0-9]+-\d{3})")


@dataclass(frozen=True)
class Scenario:
    feature: str  # feature file, relative to the features folder
    name: str
    requirements: tuple[str, ...]


def scenarios(features: Path) -> list[Scenario]:
    """Every scenario of every feature file, with the requirements it is tagged with."""
    out = []
    for path in sorted(Path(features).rglob("*.feature")):
        pending: list[str] = []
        feature_reqs: list[str] = []
        for line in path.read_text().splitlines():
            text = line.strip()
            if text.startswith("@"):
                pending += _REQ.findall(text)
            elif text.startswith("Feature:"):
                feature_reqs, pending = pending, []
            elif text.startswith(("Scenario:", "Scenario Outline:")):
                name = text.split(":", 1)[1].strip()
                reqs = tuple(sorted(set(feature_reqs + pending)))
                out.append(Scenario(str(path.relative_to(features)), name, reqs))
                pending = []
    return out


def results(cucumber_json: Path) -> dict[str, str]:
    """Last result of each scenario name in a Cucumber JSON report: passed, failed or skipped."""
    try:
        report = json.loads(Path(cucumber_json).read_text())
    except FileNotFoundError:
        raise InputError(f"{cucumber_json} not found; run 'nox -s features' to write the Cucumber report") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{cucumber_json} is not valid JSON ({exc}); rerun the features") from None
    out: dict[str, str] = {}
    for feature in report:
        for element in feature.get("elements", []):
            statuses = [s.get("result", {}).get("status", "skipped") for s in element.get("steps", [])]
            status = "failed" if "failed" in statuses else "passed" if statuses and all(
                s == "passed" for s in statuses) else "skipped"
            # Scenario Outline examples share a name prefix: a failure in any example fails the scenario.
            name = element.get("name", "")
            for key in {name, name.split(" - ")[0]}:
                if out.get(key) != "failed":
                    out[key] = status
    return out


def _status(name: str, last: dict[str, str]) -> str:
    hits = [v for k, v in last.items() if k == name or k.startswith(name.split("<")[0].strip())]
    return "failed" if "failed" in hits else "passed" if hits and all(h == "passed" for h in hits) else "not run"


def matrix(features: Path, cucumber_json: Path | None = None) -> list[tuple[str, str, str, str]]:
    """Rows (requirement, feature, scenario, last result), by requirement."""
    last = results(cucumber_json) if cucumber_json else {}
    rows = [(req, s.feature, s.name, _status(s.name, last)) for s in scenarios(features) for req in s.requirements]
    return sorted(rows)


def markdown(rows: list[tuple[str, str, str, str]]) -> str:
    lines = ["| requirement | feature | scenario | last result |", "| --- | --- | --- | --- |"]
    lines += [f"| {r} | {f} | {s} | {v} |" for r, f, s, v in rows]
    return "\n".join(lines) + "\n"
