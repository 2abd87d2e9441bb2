"""Requirement traceability: requirement -> scenarios -> last result, from the features' tags.

Requirements are the ``@REQ-<AREA>-<NNN>`` tags of features/. The feature files are read with gherkin-official
(the Cucumber parser, the one pytest-bdd uses) and compiled into pickles as Cucumber does, so the tags of a
feature, a rule, a scenario and an Examples table apply to the scenarios under them, and a Scenario Outline is
one row per example, named ``<outline name> [example <k>: <column>=<value>, ...]`` (k counts the outline's
example rows from 1, across its Examples tables).

Results come from either report of ``nox -s features``:

- Cucumber Messages (``reports/cucumber.ndjson``, written by steps/messages.py; a file ending ``.ndjson``):
  every test case names its pickle, so its scenario or example row exactly;
- Cucumber JSON (``reports/cucumber.json``, pytest-bdd's): a scenario by its file and line, an example row by
  pytest's id of the row (its values joined by ``-``, made unique as pytest does). pytest-bdd's Cucumber JSON
  leaves out a scenario skipped before its first step and reports one skipped within a step as passed: trace
  from the Messages where they exist.

A result that matches no scenario of the features is not dropped: :func:`orphans` lists them.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gherkin.errors import CompositeParserException, ParserError
from gherkin.parser import Parser
from gherkin.pickles.compiler import Compiler

from pipeline.io import InputError

_REQ = re.compile(r"@(REQ-[A-Z0-9]+-\d{3})$")
#: Step statuses of Cucumber Messages (TestStepResultStatus) that fail a test case; all PASSED passes it, any
#: other mix (SKIPPED, PENDING, UNKNOWN) skips it.
_FAILING = {"FAILED", "UNDEFINED", "AMBIGUOUS"}


@dataclass(frozen=True)
class Scenario:
    """A scenario, or one example row of a Scenario Outline."""

    feature: str  # feature file, relative to the features folder
    name: str
    requirements: tuple[str, ...]
    line: int  # of the Scenario keyword (the outline's, for an example row)
    row_line: int | None = None  # of the example row
    pytest_id: str | None = None  # pytest's id of the example row (pytest-bdd parametrizes the outline by row)


@dataclass(frozen=True)
class Outcome:
    """One scenario's result in a report."""

    uri: str  # the feature file as the report names it
    line: int  # of the Scenario keyword
    row_line: int | None  # of the example row (Cucumber Messages)
    pytest_id: str | None  # pytest's id of the example row (Cucumber JSON)
    status: str  # passed, failed or skipped

    def of(self, s: Scenario) -> bool:
        if not (self.line == s.line and _same_file(self.uri, s.feature)):
            return False
        if s.row_line is None:
            return self.row_line is None and self.pytest_id is None
        return self.row_line == s.row_line if self.row_line is not None else self.pytest_id == s.pytest_id


def _same_file(uri: str, feature: str) -> bool:
    """The same feature file: one path ends with the other (a report names it from its own root)."""
    a, b = PurePosixPath(uri).parts, PurePosixPath(feature).parts
    n = min(len(a), len(b))
    return n > 0 and a[-n:] == b[-n:]


def _parse(path: Path) -> dict:
    try:
        return {**Parser().parse(path.read_text(encoding="utf-8")), "uri": path.as_posix()}
    except CompositeParserException as exc:
        raise InputError(f"{path}: {exc.errors[0]}; fix the Gherkin of that feature file") from None
    except ParserError as exc:
        raise InputError(f"{path}: {exc}; fix the Gherkin of that feature file") from None


def _pytest_ids(values: list[tuple[str, ...]]) -> list[str]:
    """pytest's ids of a Scenario Outline's rows: the values joined by ``-``; repeated ids get pytest's counter
    suffix (``_pytest.python.IdMaker.make_unique_parameterset_ids``)."""
    ids = ["-".join(v) for v in values]
    counts, suffixes, taken = Counter(ids), defaultdict(int), set(ids)
    for i, base in enumerate(ids):
        if counts[base] > 1:
            sep = "_" if base and base[-1].isdigit() else ""
            while f"{base}{sep}{suffixes[base]}" in taken:
                suffixes[base] += 1
            ids[i] = f"{base}{sep}{suffixes[base]}"
            taken.add(ids[i])
            suffixes[base] += 1
    return ids


def _rows(document: dict) -> tuple[dict[str, dict], dict[str, tuple[int, str, str]]]:
    """Scenario AST id -> scenario; example row AST id -> (row number k, 'column=value, ...', pytest id)."""
    scenarios, rows = {}, {}
    for child in document.get("feature", {}).get("children", []):
        for inner in [child, *child.get("rule", {}).get("children", [])]:
            if "scenario" not in inner:
                continue
            scenario = inner["scenario"]
            scenarios[scenario["id"]] = scenario
            table = [(ex["tableHeader"], row) for ex in scenario["examples"] if "tableHeader" in ex
                     for row in ex["tableBody"]]
            values = [tuple(c["value"] for c in row["cells"]) for _, row in table]
            for k, ((header, row), pid) in enumerate(zip(table, _pytest_ids(values), strict=True), start=1):
                cells = ", ".join(f"{h['value']}={c['value']}" for h, c in zip(header["cells"], row["cells"],
                                                                                strict=True))
                rows[row["id"]] = (k, cells, pid)
    return scenarios, rows


def scenarios(features: Path) -> list[Scenario]:
    """Every scenario (every example row of an outline) of every feature file, with its requirements."""
    out = []
    for path in sorted(Path(features).rglob("*.feature")):
        document = _parse(path)
        by_id, rows = _rows(document)
        for pickle in Compiler().compile(document):
            scenario = by_id[pickle["astNodeIds"][0]]
            reqs = tuple(sorted({m.group(1) for t in pickle["tags"] if (m := _REQ.match(t["name"]))}))
            feature, line = path.relative_to(features).as_posix(), scenario["location"]["line"]
            if len(pickle["astNodeIds"]) == 1:
                out.append(Scenario(feature, scenario["name"], reqs, line))
            else:
                k, cells, pid = rows[pickle["astNodeIds"][1]]
                out.append(Scenario(feature, f"{scenario['name']} [example {k}: {cells}]", reqs, line,
                                    pickle["location"]["line"], pid))
    return out


def _read(report: Path) -> str:
    try:
        return Path(report).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{report} not found; run 'nox -s features' to write the Cucumber reports") from None


def _cucumber_json(report: Path) -> list[Outcome]:
    try:
        features = json.loads(_read(report))
    except json.JSONDecodeError as exc:
        raise InputError(f"{report} is not valid JSON ({exc}); rerun the features") from None
    if not isinstance(features, list):
        raise InputError(f"{report} is not a Cucumber JSON report (a list of features); rerun the features")
    out = []
    for feature in features:
        for element in feature.get("elements", []):
            statuses = [s.get("result", {}).get("status", "skipped") for s in element.get("steps", [])]
            status = "failed" if "failed" in statuses else "passed" if statuses and all(
                s == "passed" for s in statuses) else "skipped"
            pid = m.group(1) if (m := re.search(r"\[(.*)\]$", element.get("id", ""))) else None
            out.append(Outcome(feature.get("uri", ""), element.get("line", 0), None, pid, status))
    return out


def _messages(report: Path) -> list[Outcome]:
    envelopes = []
    for n, line in enumerate(_read(report).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            envelopes.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InputError(f"{report}: line {n} is not JSON ({exc}); rerun the features") from None
    scenario_lines: dict[str, int] = {}
    pickles, cases, attempts = {}, {}, {}
    statuses: dict[str, list[str]] = defaultdict(list)
    finished: set[str] = set()
    for e in envelopes:
        if "gherkinDocument" in e:
            scenario_lines |= {i: s["location"]["line"] for i, s in _rows(e["gherkinDocument"])[0].items()}
        elif "pickle" in e:
            pickles[e["pickle"]["id"]] = e["pickle"]
        elif "testCase" in e:
            cases[e["testCase"]["id"]] = e["testCase"]["pickleId"]
        elif "testCaseStarted" in e:
            started = e["testCaseStarted"]
            attempts[started["testCaseId"]] = started["id"]  # the last attempt counts
        elif "testStepFinished" in e:
            f = e["testStepFinished"]
            statuses[f["testCaseStartedId"]].append(f["testStepResult"]["status"])
        elif "testCaseFinished" in e:
            finished.add(e["testCaseFinished"]["testCaseStartedId"])
    out = []
    for case, started in attempts.items():
        pickle = pickles[cases[case]]
        s = statuses[started]
        # A test case started and never finished: the run died in it.
        status = "failed" if started not in finished or _FAILING & set(s) else "passed" if s and all(
            x == "PASSED" for x in s) else "skipped"
        row = pickle["location"]["line"] if len(pickle["astNodeIds"]) > 1 else None
        out.append(Outcome(pickle["uri"], scenario_lines[pickle["astNodeIds"][0]], row, None, status))
    return out


def results(report: Path) -> list[Outcome]:
    """Every scenario's result in a Cucumber Messages report (``.ndjson``) or a Cucumber JSON report."""
    return _messages(report) if Path(report).suffix == ".ndjson" else _cucumber_json(report)


def _status(s: Scenario, outcomes: list[Outcome]) -> str:
    """Failed if any result of the scenario failed, passed if all passed, skipped otherwise; not run if none."""
    hits = [o.status for o in outcomes if o.of(s)]
    return "not run" if not hits else "failed" if "failed" in hits else "passed" if all(
        h == "passed" for h in hits) else "skipped"


def matrix(features: Path, report: Path | None = None) -> list[tuple[str, str, str, str]]:
    """Rows (requirement, feature, scenario, last result), by requirement, then in file order."""
    outcomes = results(report) if report else []
    found = sorted(((req, s) for s in scenarios(features) for req in s.requirements),
                   key=lambda r: (r[0], r[1].feature, r[1].row_line or r[1].line))
    return [(req, s.feature, s.name, _status(s, outcomes)) for req, s in found]


def orphans(features: Path, report: Path) -> list[Outcome]:
    """The results in the report that match no scenario of the features (renamed, moved or deleted since)."""
    found = scenarios(features)
    return [o for o in results(report) if not any(o.of(s) for s in found)]


def markdown(rows: list[tuple[str, str, str, str]]) -> str:
    lines = ["| requirement | feature | scenario | last result |", "| --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
