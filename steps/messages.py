"""Cucumber Messages of a pytest-bdd run: ``pytest features --cucumber-messages reports/cucumber.ndjson``.

The report is NDJSON, one envelope a line, in the protocol of Cucumber Messages (https://github.com/cucumber/messages,
the protocol version of the installed ``cucumber-messages`` package), built with that package's model types:

- ``meta``; ``hook`` twice (pytest's fixture set-up before every scenario, its tear-down after);
- per feature file with a scenario collected: ``source``, ``gherkinDocument`` and a ``pickle`` per collected
  scenario (one per Scenario Outline example row), from gherkin-official's parser and pickle compiler (the ones
  the Cucumber implementations and pytest-bdd use);
- ``testRunStarted``, then a ``testCase`` per collected scenario (set-up hook, its steps, tear-down hook);
- per scenario as it runs: ``testCaseStarted``, ``testStepStarted`` / ``testStepFinished`` per step,
  ``testCaseFinished``; ``testRunFinished`` last.

Written as the run goes (a killed run leaves every finished scenario and no ``testRunFinished``). A step's status:
PASSED, FAILED (its exception), UNDEFINED (no step definition), SKIPPED (``pytest.skip`` in it, or not reached
after a failure or a skip). A failure outside the steps (fixture set-up, the scenario function, tear-down) fails
the hook step, so no failure is dropped. Step definitions (``stepDefinition``) are not reported: pytest-bdd finds
them as fixtures per scenario. Not supported with pytest-xdist (``-n``): refused with one line.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import cucumber_messages as cm
import pytest
from gherkin.ast_builder import AstBuilder
from gherkin.parser import Parser
from gherkin.pickles.compiler import Compiler
from gherkin.stream.id_generator import IdGenerator
from pytest_bdd.parser import ScenarioTemplate
from pytest_bdd.scenario import scenario_wrapper_template_registry

#: The pytest-bdd parametrization of a Scenario Outline's example rows (pytest_bdd.scenario).
_EXAMPLE_PARAM = "_pytest_bdd_example"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bdd")
    group.addoption("--cucumber-messages", metavar="FILE", default=None,
                    help="write the Gherkin scenarios' results as Cucumber Messages (NDJSON) to FILE")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--cucumber-messages", None)
    if not path or hasattr(config, "workerinput"):
        return
    if getattr(config.option, "numprocesses", None):
        raise pytest.UsageError("--cucumber-messages does not work with pytest-xdist: drop -n, or drop the option")
    config.pluginmanager.register(MessagesWriter(Path(path), config.rootpath), "gaiasim-cucumber-messages")


def _now() -> cm.Timestamp:
    ns = time.time_ns()
    return cm.Timestamp(seconds=ns // 10**9, nanos=ns % 10**9)


def _duration(ns: int) -> cm.Duration:
    ns = max(ns, 0)
    return cm.Duration(seconds=ns // 10**9, nanos=ns % 10**9)


def _exception(exc: BaseException) -> cm.Exception:
    return cm.Exception(type=f"{type(exc).__module__}.{type(exc).__qualname__}", message=str(exc))


@dataclass
class _Case:
    """One collected scenario: its test case, and where its run stands."""

    test_case: cm.TestCase
    step_ids: dict[int, str]  # feature-file line of a pickle step -> its test step id
    started_id: str = ""
    next_step: int = 0  # index into the pickle steps: the first not yet reported
    open_step: tuple[str, int] | None = None  # (test step id, perf_counter_ns) of the step running
    failure_reported: bool = False  # a FAILED or UNDEFINED step carries the scenario's failure
    unreported_failure: str = ""  # a failure in the call phase that no step carries

    @property
    def pickle_steps(self) -> list[cm.TestStep]:
        return self.test_case.test_steps[1:-1]


@dataclass
class MessagesWriter:
    """The pytest plugin that writes the envelopes (registered by ``--cucumber-messages``)."""

    path: Path
    rootpath: Path
    ids: IdGenerator = field(default_factory=IdGenerator)
    cases: dict[str, _Case] = field(default_factory=dict)  # pytest node id -> its test case
    unmapped: list[str] = field(default_factory=list)  # pytest-bdd items no pickle matches (reported, not dropped)

    def __post_init__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8")
        self.run_id = self.ids.get_next_id()
        self.setup_hook = cm.Hook(id=self.ids.get_next_id(), name="pytest: set up the scenario's fixtures",
                                  source_reference=cm.SourceReference(), type=cm.HookType.before_test_case)
        self.teardown_hook = cm.Hook(id=self.ids.get_next_id(), name="pytest: the scenario function and tear-down",
                                     source_reference=cm.SourceReference(), type=cm.HookType.after_test_case)

    def _emit(self, **message: object) -> None:
        envelope = cm.Envelope(**message)
        self._file.write(json.dumps(cm.message_converter.to_dict(envelope), ensure_ascii=False) + "\n")
        self._file.flush()

    def _uri(self, filename: str) -> str:
        path = Path(filename).resolve()
        return (path.relative_to(self.rootpath) if path.is_relative_to(self.rootpath) else path).as_posix()

    # --- before the run: the documents, pickles and test cases -------------------------------------------------

    def pytest_sessionstart(self) -> None:
        self._emit(meta=cm.Meta(
            protocol_version=version("cucumber-messages"),
            implementation=cm.Product(name="pytest-bdd", version=version("pytest-bdd")),
            runtime=cm.Product(name=platform.python_implementation(), version=platform.python_version()),
            os=cm.Product(name=platform.system(), version=platform.release()),
            cpu=cm.Product(name=platform.machine()),
        ))
        self._emit(hook=self.setup_hook)
        self._emit(hook=self.teardown_hook)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        chosen: list[tuple[pytest.Item, str, int, int]] = []  # item, feature file, scenario line, example row
        for item in session.items:
            template = _template(item)
            if template is None:
                continue  # not a Gherkin scenario
            callspec = getattr(item, "callspec", None)
            row = callspec.indices.get(_EXAMPLE_PARAM, 0) if callspec is not None else 0
            chosen.append((item, template.feature.filename, template.line_number, row))
        pickles: dict[str, list[dict]] = {}  # feature file -> its pickles (gherkin dicts)
        scenario_lines: dict[str, dict[str, int]] = {}  # feature file -> scenario AST id -> line
        step_lines: dict[str, int] = {}  # step AST id -> line (ids are unique across the run)
        for filename in dict.fromkeys(f for _, f, _, _ in chosen):
            text = Path(filename).read_text(encoding="utf-8")
            uri = self._uri(filename)
            document = {**Parser(AstBuilder(self.ids)).parse(text), "uri": uri}
            self._emit(source=cm.Source(data=text, media_type=cm.SourceMediaType.text_x_cucumber_gherkin_plain,
                                        uri=uri))
            self._emit(gherkin_document=cm.message_converter.from_dict(document, cm.GherkinDocument))
            pickles[filename] = Compiler(self.ids).compile(document)
            scenario_lines[filename] = _scenario_lines(document)
            step_lines |= _step_lines(document)
        runnable = []
        for item, filename, line, row in chosen:
            of_scenario = [p for p in pickles[filename] if scenario_lines[filename][p["astNodeIds"][0]] == line]
            if row >= len(of_scenario):
                self.unmapped.append(item.nodeid)
                continue
            pickle = of_scenario[row]
            self._emit(pickle=cm.message_converter.from_dict(pickle, cm.Pickle))
            step_ids = {step_lines[s["astNodeIds"][0]]: self.ids.get_next_id() for s in pickle["steps"]}
            test_steps = [cm.TestStep(id=self.ids.get_next_id(), hook_id=self.setup_hook.id)]
            test_steps += [cm.TestStep(id=step_ids[step_lines[s["astNodeIds"][0]]], pickle_step_id=s["id"])
                           for s in pickle["steps"]]
            test_steps += [cm.TestStep(id=self.ids.get_next_id(), hook_id=self.teardown_hook.id)]
            case = cm.TestCase(id=self.ids.get_next_id(), pickle_id=pickle["id"], test_steps=test_steps,
                               test_run_started_id=self.run_id)
            runnable.append((item.nodeid, _Case(case, step_ids)))
        self._emit(test_run_started=cm.TestRunStarted(timestamp=_now(), id=self.run_id))
        for nodeid, case in runnable:
            self._emit(test_case=case.test_case)
            self.cases[nodeid] = case

    # --- while a scenario runs -------------------------------------------------------------------------------

    def _step_finished(self, case: _Case, step_id: str, status: cm.TestStepResultStatus, ns: int,
                       message: str | None = None, exception: cm.Exception | None = None) -> None:
        self._emit(test_step_finished=cm.TestStepFinished(
            test_case_started_id=case.started_id, test_step_id=step_id, timestamp=_now(),
            test_step_result=cm.TestStepResult(duration=_duration(ns), status=status, message=message,
                                               exception=exception)))

    def _step(self, case: _Case, status: cm.TestStepResultStatus, message: str | None = None) -> None:
        """Report the next pickle step, not run: started and finished at once."""
        step = case.pickle_steps[case.next_step]
        self._emit(test_step_started=cm.TestStepStarted(test_case_started_id=case.started_id, test_step_id=step.id,
                                                        timestamp=_now()))
        self._step_finished(case, step.id, status, 0, message)
        case.next_step += 1

    def _skip_the_rest(self, case: _Case, message: str | None) -> None:
        """The step that skipped (``pytest.skip``) and every step not reached: SKIPPED."""
        self._close(case, cm.TestStepResultStatus.skipped, message)
        while case.next_step < len(case.pickle_steps):
            self._step(case, cm.TestStepResultStatus.skipped)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
        case = self.cases.get(item.nodeid)
        if case is not None:
            case.started_id = self.ids.get_next_id()
            self._emit(test_case_started=cm.TestCaseStarted(attempt=0, id=case.started_id,
                                                            test_case_id=case.test_case.id, timestamp=_now()))
            self._emit(test_step_started=cm.TestStepStarted(
                test_case_started_id=case.started_id, test_step_id=case.test_case.test_steps[0].id,
                timestamp=_now()))
        result = yield
        if case is not None:
            self._emit(test_case_finished=cm.TestCaseFinished(test_case_started_id=case.started_id,
                                                              timestamp=_now(), will_be_retried=False))
        return result

    def _case(self, request: pytest.FixtureRequest) -> _Case | None:
        return self.cases.get(request.node.nodeid)

    def pytest_bdd_before_step(self, request: pytest.FixtureRequest, step) -> None:
        case = self._case(request)
        if case is None:
            return
        step_id = case.step_ids[step.line_number]
        self._emit(test_step_started=cm.TestStepStarted(test_case_started_id=case.started_id, test_step_id=step_id,
                                                        timestamp=_now()))
        case.open_step = (step_id, time.perf_counter_ns())

    def _close(self, case: _Case, status: cm.TestStepResultStatus, message: str | None = None,
               exception: cm.Exception | None = None) -> None:
        if case.open_step is None:
            return
        step_id, start = case.open_step
        self._step_finished(case, step_id, status, time.perf_counter_ns() - start, message, exception)
        case.open_step = None
        case.next_step += 1

    def pytest_bdd_after_step(self, request: pytest.FixtureRequest) -> None:
        case = self._case(request)
        if case is not None:
            self._close(case, cm.TestStepResultStatus.passed)

    def pytest_bdd_step_error(self, request: pytest.FixtureRequest, exception: BaseException) -> None:
        case = self._case(request)
        if case is not None:
            exc = _exception(exception)
            self._close(case, cm.TestStepResultStatus.failed, f"{exc.type}: {exc.message}", exc)
            case.failure_reported = True

    def pytest_bdd_step_func_lookup_error(self, request: pytest.FixtureRequest, exception: BaseException) -> None:
        case = self._case(request)
        if case is not None:
            self._step(case, cm.TestStepResultStatus.undefined, str(exception))
            case.failure_reported = True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        case = self.cases.get(report.nodeid)
        if case is None:
            return
        if report.when == "setup":
            status = (cm.TestStepResultStatus.passed if report.passed else cm.TestStepResultStatus.skipped
                      if report.skipped else cm.TestStepResultStatus.failed)
            message = None if report.passed else _reason(report)
            self._step_finished(case, case.test_case.test_steps[0].id, status, round(report.duration * 1e9), message)
        elif report.when == "call":
            if report.failed and not case.failure_reported:
                case.unreported_failure = _reason(report)
            self._skip_the_rest(case, _reason(report) if report.skipped else None)
        elif report.when == "teardown":
            self._skip_the_rest(case, None)  # the set-up failed or skipped: no step ran
            hook_step = case.test_case.test_steps[-1].id
            self._emit(test_step_started=cm.TestStepStarted(test_case_started_id=case.started_id,
                                                            test_step_id=hook_step, timestamp=_now()))
            failures = [m for m in (case.unreported_failure, _reason(report) if report.failed else "") if m]
            status = cm.TestStepResultStatus.failed if failures else cm.TestStepResultStatus.passed
            self._step_finished(case, hook_step, status, round(report.duration * 1e9),
                                "\n".join(failures) or None)

    # --- after the run --------------------------------------------------------------------------------------

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        success = int(exitstatus) in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
        message = None if not self.unmapped else (
            f"{len(self.unmapped)} scenario(s) matched no pickle and are not reported: {', '.join(self.unmapped)}")
        self._emit(test_run_finished=cm.TestRunFinished(success=success and not self.unmapped, timestamp=_now(),
                                                        message=message, test_run_started_id=self.run_id))
        self._file.close()

    def pytest_terminal_summary(self, terminalreporter) -> None:
        terminalreporter.write_sep("-", f"Cucumber Messages: {self.path} ({len(self.cases)} test cases)")
        if self.unmapped:
            terminalreporter.write_line(f"not in the Cucumber Messages (no pickle): {', '.join(self.unmapped)}")


def _template(item: pytest.Item) -> ScenarioTemplate | None:
    """The pytest-bdd scenario an item runs (pytest-bdd's registry, as its own ``--generate-missing`` reads it)."""
    try:
        return scenario_wrapper_template_registry.get(getattr(item, "obj", None))
    except TypeError:  # None, or an object that cannot be weakly referenced: not a scenario
        return None


def _reason(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])  # (file, line, "Skipped: reason")
    return report.longreprtext


def _scenario_lines(document: dict) -> dict[str, int]:
    """Scenario AST id -> the line of its ``Scenario`` / ``Scenario Outline`` keyword (rules included)."""
    out = {}
    for child in document.get("feature", {}).get("children", []):
        for inner in [child, *child.get("rule", {}).get("children", [])]:
            if "scenario" in inner:
                out[inner["scenario"]["id"]] = inner["scenario"]["location"]["line"]
    return out


def _step_lines(document: dict) -> dict[str, int]:
    """Step AST id -> its line (backgrounds and rules included)."""
    out = {}
    for child in document.get("feature", {}).get("children", []):
        for inner in [child, *child.get("rule", {}).get("children", [])]:
            for kind in ("background", "scenario"):
                for step in inner.get(kind, {}).get("steps", []):
                    out[step["id"]] = step["location"]["line"]
    return out
