"""``gaiasim campaign``: an end-to-end test or an operational rehearsal over several days, in one command.

A campaign spec (TOML, ``datasets/campaigns/``) names the days (each a date, a dataset level, a fault plan
and a seed; or a date range with one level and plan), the replay speed, the feature tags to run, the
baseline to compare with and the pipeline configuration under test::

    name = "rehearsal"
    replay_speed = 600            # times real time, "max" (no waiting) or "none" (no replay)
    tags = "e2e or ingest"        # pytest -m expression over the feature tags; "" runs no feature
    baseline = "clean"            # "", "clean", "sut:<SUT spec>" or a run folder
    [sut]                         # optional: the system under test (gaiasim.sut); default builtin
    spec = "cmd:./my-pipeline {dataset} {out}"
    timeout_s = 3600
    [pipeline_config]             # optional, builtin only: PipelineConfig fields to override
    match_radius_mas = 500.0
    [[days]]
    date = "2016-01-16"
    level = "small"               # datasets/levels/<level>.toml
    faults = "hk_anomalies"       # datasets/faults/<plan>.toml, or "none"
    seed = 5
    scale = 1e-4                  # optional: the level's scale otherwise

(or ``[range] start = ..., end = ...`` with ``level``, ``faults``, ``seed`` and ``scale`` at the top level.)

For each day, in ``OUT/days/<label>/``: the dataset is generated (cached by spec hash in the cache folder,
``OUT/cache`` unless told, so campaigns may share it); with a replay speed, its TM files are delivered into
``inbox/`` by :mod:`gaiasim.replay` on the pass schedule while the pipeline's watch mode
(:mod:`pipeline.watch`) processes each one as it arrives, its latencies judged by REQ-OPS-001/002; without
a replay speed, the pipeline runs over the dataset in one batch. Then the run is validated against the
dataset's truth (the results appended to the history database under the campaign's name) and compared with
the baseline. ``baseline = "clean"`` is the same day run in one batch with the default
:class:`~pipeline.config.PipelineConfig` (cached beside the dataset): a day's run shares no rows with another
day's, so the clean run of the *same* day is what a candidate configuration (or a watch over a replay) can
be compared with. ``baseline = "sut:<spec>"`` runs another system under test over each day (cached by its
identity): the operational release as the baseline of a candidate. A run folder as baseline is compared
with the days whose TM files it read; the other days say they are not comparable. The system under test
(``[sut]``, or ``gaiasim campaign --sut``) runs each day and the features judge it.

Each day writes ``day.json`` last (atomically): a rerun skips the days that have one for the same spec and
redoes the others (generation, replay and pipeline runs resume from what they left). Then the feature tags
run in a subprocess (JUnit XML and Cucumber JSON in ``OUT/reports/``), each day gets its HTML report when
matplotlib is installed, and ``campaign.json`` and ``campaign.md`` sum it all up. The campaign is green
when every check of every day passed, every injected fault was detected, no comparison differs and the
features passed.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path

from junitparser import Error, Failure, JUnitXml, JUnitXmlError, Skipped, TestSuite

from gaiasim import replay as rp
from gaiasim import sut as suts
from gaiasim import workspace
from gaiasim.sim.generate import generate
from gaiasim.spec import NAME_PATTERN, DaySpec, SpecError, load_toml, make_spec
from gaiasim.validate import checks, db, report, scorecard
from gaiasim.validate import history as hist
from pipeline import io
from pipeline.config import PipelineConfig
from pipeline.layout import RUN_JSON

Progress = Callable[[str, float], None]

#: The source checkout: features/ and pyproject.toml (the declared tags); absent from an installed wheel.
REPO = Path(__file__).resolve().parents[1]
CAMPAIGN_KEYS = ("name", "description", "days", "range", "level", "faults", "seed", "scale", "replay_speed",
                 "tags", "baseline", "pipeline_config", "html_reports", "sut")
SUT_KEYS = ("spec", "timeout_s")
DAY_KEYS = ("date", "level", "faults", "seed", "scale")
RANGE_KEYS = ("start", "end")
#: At most this many days in one campaign (a quarter of operations).
MAX_DAYS = 92
#: Written last in a day's folder: the day is finished (its summary, and the spec it was made from).
DONE = "day.json"
#: Written first in a day's folder: the spec the folder's contents are made from.
STARTED = "day.started.json"
NO_PLAN = ("", "none")


def _noop(_stage: str, _fraction: float) -> None:
    return None


# --- the spec ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignDay:
    """One day of a campaign: the dataset to generate, and the label of its folder."""

    label: str  # folder name under OUT/days/: <nn>-<date>-<plan>
    level: str  # datasets/levels/<level>.toml
    faults: str  # datasets/faults/<faults>.toml, "none" for a nominal day
    spec: DaySpec  # the level's spec with this day's date, seed and scale (one day)
    faults_path: Path | None

    def to_json(self) -> dict:
        return {"label": self.label, "date": self.spec.date.isoformat(), "level": self.level, "faults": self.faults,
                "seed": self.spec.seed, "scale": self.spec.scale}

    def key(self) -> str:
        """The dataset's cache key (the same as :mod:`gaiasim.workspace`'s)."""
        return workspace._key(self.spec, self.faults_path)


@dataclass(frozen=True)
class CampaignSpec:
    name: str  # label: history's campaign column, report titles
    days: tuple[CampaignDay, ...]
    replay_speed: float | None = None  # times real time; math.inf: no waiting; None: no replay
    tags: str = ""  # pytest -m expression over the features' tags; "" runs no feature
    baseline: str = ""  # "": no comparison; "clean": each day's default-config run; else a run folder
    pipeline_config: Mapping[str, object] = field(default_factory=dict)  # PipelineConfig overrides
    html_reports: bool = True  # a daily HTML report per day (when matplotlib is installed)
    sut: str = "builtin"  # the system under test (gaiasim.sut spec)
    sut_timeout_s: float | None = None  # a cmd or venv SUT's timeout per run
    description: str = ""
    source: str = "campaign"  # where the spec came from (its file), for messages

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise a one-line :class:`SpecError` naming the key and what it may be."""
        where = self.source
        if not isinstance(self.name, str) or not NAME_PATTERN.fullmatch(self.name):
            raise SpecError(f"{where}: name = {self.name!r}: must be a label of letters, digits, '_', '.' or '-' "
                            "(at most 64, starting with a letter or digit)")
        if not self.days:
            raise SpecError(f"{where}: no days: give [[days]] tables (date, level, faults, seed) or a [range]")
        if len(self.days) > MAX_DAYS:
            raise SpecError(f"{where}: {len(self.days)} days: at most {MAX_DAYS} in one campaign; split it")
        if self.replay_speed is not None and not self.replay_speed > 0:
            raise SpecError(f"{where}: replay_speed = {self.replay_speed!r}: must be a number > 0, max or none")
        if not isinstance(self.tags, str):
            raise SpecError(f"{where}: tags = {self.tags!r}: must be a string (a pytest -m expression)")
        check_tags(self.tags, where)
        try:
            system = self.system()
            if self.baseline.startswith("sut:"):
                suts.parse(self.baseline[4:], timeout_s=self.sut_timeout_s)
        except io.InputError as exc:
            raise SpecError(f"{where}: {exc}") from None
        if self.replay_speed is not None and not system.can_watch():
            speed = "max" if math.isinf(self.replay_speed) else f"{self.replay_speed:g}"
            raise SpecError(f"{where}: replay_speed = {speed} needs a system under test with a watch "
                            "mode: put {inbox} in its command line, or set replay_speed = \"none\"")
        if self.baseline not in ("", "clean") and not self.baseline.startswith("sut:") \
                and not (Path(self.baseline) / RUN_JSON).is_file():
            raise SpecError(f"{where}: baseline = {self.baseline!r}: no finished run there ({RUN_JSON} missing); "
                            "give a run folder, \"clean\" (each day's run with the default pipeline "
                            "configuration), \"sut:<SUT spec>\" or \"\" (no comparison)")
        if not isinstance(self.html_reports, bool):
            raise SpecError(f"{where}: html_reports = {self.html_reports!r}: must be true or false")
        pipeline_config(self.pipeline_config, f"{where}: pipeline_config")

    @classmethod
    def load(cls, path: Path) -> CampaignSpec:
        """Load and check a campaign spec TOML."""
        path = Path(path)
        return cls.from_dict(load_toml(path), path.parent.resolve(), str(path))

    @classmethod
    def from_dict(cls, raw: Mapping, base: Path | None = None, source: str = "campaign") -> CampaignSpec:
        """A spec from parsed TOML; a baseline run folder is relative to ``base`` (the spec's folder)."""
        _known_keys(raw, CAMPAIGN_KEYS, source)
        name = raw.get("name")
        if name is None:
            raise SpecError(f"{source}: name is missing: give the campaign a name (a label, e.g. \"rehearsal\")")
        defaults = {k: raw[k] for k in ("level", "faults", "seed", "scale") if k in raw}
        if ("days" in raw) == ("range" in raw):
            raise SpecError(f"{source}: give either [[days]] (a date, level, faults and seed each) or [range] "
                            "(start, end) with level, faults and seed, not both and not neither")
        if "days" in raw:
            entries = raw["days"]
            if not isinstance(entries, list) or not all(isinstance(d, dict) for d in entries):
                raise SpecError(f"{source}: days must be an array of tables ([[days]]) with keys "
                                f"{', '.join(DAY_KEYS)}")
            for i, entry in enumerate(entries):
                _known_keys(entry, DAY_KEYS, f"{source}: days[{i + 1}]")
        else:
            entries = _range_days(raw["range"], source)
        days = tuple(_parse_day(i, {**defaults, **entry}, f"{source}: days[{i + 1}]")
                     for i, entry in enumerate(entries))
        baseline = raw.get("baseline", "")
        if not isinstance(baseline, str):
            raise SpecError(f"{source}: baseline = {baseline!r}: must be a run folder, \"clean\" or \"\"")
        if baseline.strip().lower() in ("", "none"):
            baseline = ""
        elif baseline != "clean" and not baseline.startswith("sut:"):
            baseline = str((Path(base or ".") / baseline).resolve())
        overrides = raw.get("pipeline_config", {})
        sut = raw.get("sut", {})
        if not isinstance(sut, dict):
            raise SpecError(f"{source}: sut must be a table: [sut] spec = \"{suts.SPEC_HELP}\"")
        _known_keys(sut, SUT_KEYS, f"{source}: [sut]")
        if not isinstance(sut.get("spec", "builtin"), str):
            raise SpecError(f"{source}: [sut] spec = {sut['spec']!r}: must be a string: {suts.SPEC_HELP}")
        timeout = sut.get("timeout_s")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                    or not timeout > 0):
            raise SpecError(f"{source}: [sut] timeout_s = {timeout!r}: must be a number of seconds > 0")
        return cls(name=name, days=days, replay_speed=_speed(raw.get("replay_speed", "none"), source),
                   tags=raw.get("tags", ""), baseline=baseline, pipeline_config=overrides,
                   html_reports=raw.get("html_reports", True), sut=sut.get("spec", "builtin"),
                   sut_timeout_s=timeout, description=raw.get("description", ""), source=source)

    def config(self) -> PipelineConfig:
        """The pipeline configuration under test: the default with the spec's overrides."""
        return pipeline_config(self.pipeline_config)

    def system(self) -> suts.SUT:
        """The system under test: the ``[sut]`` spec (the builtin pipeline with the config overrides)."""
        return suts.parse(self.sut, self.config(), self.sut_timeout_s)

    def to_json(self) -> dict:
        speed = None if self.replay_speed is None else "max" if math.isinf(self.replay_speed) else self.replay_speed
        return {"name": self.name, "description": self.description, "source": self.source,
                "replay_speed": speed, "tags": self.tags, "baseline": self.baseline,
                "pipeline_config": dict(self.pipeline_config), "html_reports": self.html_reports,
                "sut": self.sut, "sut_timeout_s": self.sut_timeout_s,
                "days": [d.to_json() for d in self.days]}


def _known_keys(raw: object, allowed: tuple[str, ...], where: str) -> None:
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: must be a table with keys {', '.join(allowed)}")
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise SpecError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(sorted(allowed))}")


def _date(value: object, where: str) -> dt.date:
    try:
        return make_spec(date=value).date
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None


def _range_days(raw: object, source: str) -> list[dict]:
    where = f"{source}: range"
    _known_keys(raw, RANGE_KEYS, where)
    missing = [k for k in RANGE_KEYS if k not in raw]
    if missing:
        raise SpecError(f"{where}: {missing[0]} is missing; give start and end dates (YYYY-MM-DD, both included)")
    start, end = (_date(raw[k], f"{where}.{k}") for k in RANGE_KEYS)
    if end < start:
        raise SpecError(f"{where}: end = {end} is before start = {start}")
    if (end - start).days >= MAX_DAYS:
        raise SpecError(f"{where}: {(end - start).days + 1} days: at most {MAX_DAYS} in one campaign; split it")
    return [{"date": start + dt.timedelta(days=i)} for i in range((end - start).days + 1)]


def _parse_day(index: int, values: Mapping, where: str) -> CampaignDay:
    for key in ("date", "level", "seed"):
        if key not in values:
            raise SpecError(f"{where}: {key} is missing; each day needs date, level, faults and seed "
                            "(level, faults, seed and scale may be given once at the top level)")
    level, faults = values["level"], values.get("faults", "none")
    for key, value in (("level", level), ("faults", faults)):
        # Names, never paths: a campaign spec picks among the repository's levels and fault plans.
        if not isinstance(value, str) or (value not in NO_PLAN and not NAME_PATTERN.fullmatch(value)):
            raise SpecError(f"{where}: {key} = {value!r}: must be the name of a packaged file in datasets/"
                            f"{'levels' if key == 'level' else 'faults'}/ (without .toml)")
    try:
        base, faults_path = workspace.level_spec(level, faults=None if faults in NO_PLAN else faults)
        if faults in NO_PLAN:
            faults_path = None  # a nominal day, whatever the level's own spec says
        changes = {"date": values["date"], "seed": values["seed"], "days": 1}
        if "scale" in values:
            changes["scale"] = values["scale"]
        spec = make_spec(**{**base.to_json(), **changes})
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None
    plan = "none" if faults in NO_PLAN else faults
    return CampaignDay(f"{index + 1:02d}-{spec.date}-{plan}", level, plan, spec, faults_path)


def _speed(value: object, where: str) -> float | None:
    if isinstance(value, str) and value.strip().lower() in NO_PLAN:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SpecError(f"{where}: replay_speed = {value!r}: must be a number > 0 (times real time), max or none")
    try:
        return rp.parse_speed(str(value))
    except SpecError:
        raise SpecError(f"{where}: replay_speed = {value!r}: must be a number > 0 (times real time), "
                        "max (no waiting) or none (no replay)") from None


def declared_tags() -> set[str] | None:
    """The markers declared in the repository's pyproject.toml (None when it is not there)."""
    path = REPO / "pyproject.toml"
    if not path.is_file():
        return None
    markers = load_toml(path).get("tool", {}).get("pytest", {}).get("ini_options", {}).get("markers", [])
    return {m.split(":", 1)[0].strip() for m in markers}


def check_tags(tags: str, where: str = "campaign") -> None:
    """A pytest -m expression naming only declared tags (with and, or, not and parentheses)."""
    words = [w for w in re.split(r"[\s()]+", tags) if w and w not in ("and", "or", "not")]
    known = declared_tags()
    if known is None:
        return
    for word in words:
        if word not in known:
            plain = sorted(t for t in known if not t.startswith("REQ-"))
            raise SpecError(f"{where}: tags = {tags!r}: unknown tag {word!r}; known tags: {', '.join(plain)} and "
                            "the requirement ids (REQ-...), joined with and, or, not")


def pipeline_config(overrides: Mapping[str, object], where: str = "pipeline_config") -> PipelineConfig:
    """The default :class:`PipelineConfig` with ``overrides`` (its field names; nested tables for the
    calibration), every key and value checked."""
    config = _override(PipelineConfig(), overrides, where)
    try:
        config.check()
    except ValueError as exc:
        raise SpecError(f"{where}.{exc}") from None
    return config


def _override(obj, overrides: object, where: str):
    allowed = sorted(f.name for f in fields(obj))
    if not isinstance(overrides, Mapping):
        raise SpecError(f"{where} = {overrides!r}: must be a table with keys among {', '.join(allowed)}")
    changes = {}
    for key, value in overrides.items():
        if key not in allowed:
            raise SpecError(f"{where}: unknown key {key!r}; allowed keys: {', '.join(allowed)}")
        current = getattr(obj, key)
        if is_dataclass(current):
            changes[key] = _override(current, value, f"{where}.{key}")
        elif isinstance(current, str):  # a file of the pipeline's configuration
            if not isinstance(value, str):
                raise SpecError(f"{where}.{key} = {value!r}: must be a path (a string)")
            changes[key] = value
        elif isinstance(current, dict):
            _known_keys(value, tuple(sorted(current)), f"{where}.{key}")
            changes[key] = {**current, **{k: _number(v, f"{where}.{key}.{k}") for k, v in value.items()}}
        else:
            changes[key] = _number(value, f"{where}.{key}")
    return replace(obj, **changes)


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpecError(f"{where} = {value!r}: must be a finite number")
    return float(value)


# --- running it --------------------------------------------------------------------------------------


def _fingerprint(spec: CampaignSpec, day: CampaignDay) -> dict:
    """What a day's folder depends on: a rerun with another of these redoes the day."""
    return {"campaign": spec.name, "day": day.to_json(), "dataset_key": day.key(),
            "replay_speed": spec.to_json()["replay_speed"], "baseline": spec.baseline,
            "pipeline_config": spec.config().to_json(), "sut": spec.system().identity()}


def _dataset(day: CampaignDay, cache: Path) -> Path:
    """The day's dataset, generated once into the cache (generation is atomic: a folder there is whole)."""
    folder = cache / "datasets" / day.key()
    if not folder.is_dir():
        generate(day.spec, folder, day.faults_path)
    return folder


def _replay_and_watch(dataset: Path, folder: Path, speed: float, system: suts.SUT) -> tuple[dict, dict]:
    """Deliver the day's TM files into ``folder/inbox`` on the pass schedule (:mod:`gaiasim.replay`, in a
    thread) while the system under test's watch mode processes each file as it arrives into
    ``folder/run``; returns (run.json, the delivery log). A replay cut short is done again from the start
    (inbox and run removed); after a finished replay, a stopped builtin watch resumes."""
    inbox, run_dir, marker = folder / "inbox", folder / "run", folder / "replay.json"
    plan = rp.schedule(dataset, speed)
    # The watch stops once every file is in; and, should the replay die, when none came for longer than
    # the longest wait of the schedule (plus a margin for a busy machine).
    gaps = [b.scheduled_s - a.scheduled_s for a, b in itertools.pairwise(plan)]
    idle_s = max(gaps, default=0.0) + 120.0
    if marker.is_file() and system.adapter == "builtin":
        return system.watch(dataset, inbox, run_dir, poll_s=0.2, idle_exit_s=idle_s, max_files=len(plan)), \
            json.loads(marker.read_text())
    marker.unlink(missing_ok=True)
    shutil.rmtree(inbox, ignore_errors=True)
    shutil.rmtree(run_dir, ignore_errors=True)
    inbox.mkdir(parents=True)
    with ThreadPoolExecutor(1, thread_name_prefix="replay") as pool:
        pending = pool.submit(rp.replay, dataset, inbox, speed)
        info = system.watch(dataset, inbox, run_dir, poll_s=0.2, idle_exit_s=idle_s, max_files=len(plan))
        log = pending.result()
    # Every TM file of the day read (the run's inputs are the dataset's: gaiasim.conform checks the SHA-256).
    read = sum(1 for name in info.get("inputs", {}) if name.startswith("tm/"))
    if read < len(plan):
        raise io.InputError(f"the watch over {inbox} stopped with {read} of {len(plan)} files taken; "
                            "rerun the campaign to do the day again")
    latency = None
    if (run_dir / "latency").is_dir():
        con = db.connect(run_dir, dataset)
        latency = con.execute("SELECT coalesce(max(latency_s), 0) FROM latency WHERE kind = 'file'").fetchone()[0]
        con.close()
    replay_info = {"speed": "max" if math.isinf(speed) else speed, "inbox": str(inbox), "files": len(log),
                   "span_s": round(log[-1].delivered_s, 3),
                   "max_late_s": round(max(max(d.delivered_s - d.scheduled_s, 0.0) for d in log), 3),
                   "max_file_latency_s": None if latency is None else round(float(latency), 3),
                   "deliveries": [{"file": d.file, "scheduled_s": round(d.scheduled_s, 3),
                                   "delivered_s": round(d.delivered_s, 3)} for d in log]}
    io.write_json(replay_info, marker)
    return info, replay_info


def _compare(baseline: Path, run_dir: Path, folder: Path, history: Path) -> dict:
    """The day's run against its baseline; differences approved for these two runs
    (:mod:`gaiasim.validate.approvals`) do not turn the day red."""
    from gaiasim import compare as cmp
    from gaiasim.validate import approvals

    mine, theirs = db.read_run_info(run_dir), db.read_run_info(baseline)
    if mine.get("inputs") != theirs.get("inputs"):
        return {"baseline": str(baseline), "compared": False, "differs": False,
                "note": "the baseline is a run of other TM files: not comparable with this day"}
    result = cmp.to_json(cmp.compare_runs(baseline, run_dir, cmp.load_tolerances()))
    approval = approvals.find(history, result) if result["differs"] else None
    result["approval"] = None if approval is None else approval.to_json()
    io.write_json(result, folder / "comparison.json")
    differ = {name: {k: t[k] for k in ("rows_a", "rows_b", "only_in_a", "only_in_b")}
              | {"columns": sorted(t.get("columns", {}))}
              for name, t in result["tables"].items() if t.get("differs")}
    return {"baseline": str(baseline), "compared": True, "differs": result["differs"] and approval is None,
            "tables_differing": differ, "approved": None if approval is None else approval.line(),
            "json": str(folder / "comparison.json")}


def _checks_json(results: list[checks.Result]) -> dict:
    failed = [r for r in results if r.failed]
    return {"passed": sum(r.passed is True for r in results), "failed": len(failed),
            "n/a": sum(r.passed is None for r in results), "total": len(results),
            "failures": [{"name": r.check.name, "requirement": r.check.requirement, "statement": r.check.statement,
                          "value": None if r.value is None or math.isnan(r.value) else r.value,
                          "op": r.check.op, "threshold": r.check.threshold, "unit": r.check.unit, "note": r.note}
                         for r in failed]}


def _scorecard_json(card: scorecard.Scorecard) -> dict:
    return {"complete": card.passed,
            "recall": {kind: {"detected": d, "injected": n} for kind, (d, n) in card.recall.items()},
            "false_alarms": card.false_alarms}


def _process_day(spec: CampaignSpec, day: CampaignDay, out: Path, cache: Path, history: Path | None,
                 prefetch: CampaignDay | None, progress: Progress) -> tuple[dict, bool]:
    """Process one day; (its summary, False). When it is already done for this very spec: (the summary
    it wrote then, True)."""
    folder = out / "days" / day.label
    fingerprint = _fingerprint(spec, day)
    for marker in (folder / DONE, folder / STARTED):
        if marker.is_file():
            info = json.loads(marker.read_text())
            if info.get("fingerprint") != fingerprint:  # made from another spec: start the day afresh
                shutil.rmtree(folder)
            elif marker.name == DONE:
                return info, True
            break
    io.write_json({"fingerprint": fingerprint}, folder / STARTED)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str, fraction: float) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[f"{stage}_s"] = round(timings.get(f"{stage}_s", 0.0) + now - clock, 3)
        clock = now
        progress(stage, fraction)

    progress("generate", 0.0)
    dataset = _dataset(day, cache)
    lap("generate", 0.2)
    baseline = None
    if spec.baseline == "clean":
        progress("baseline run", 0.2)
        baseline = workspace.run_for(dataset, root=cache)  # the default-configuration run, cached
        lap("baseline_run", 0.35)
    elif spec.baseline.startswith("sut:"):
        progress("baseline run", 0.2)
        baseline = workspace.run_for(dataset, root=cache, system=suts.parse(spec.baseline[4:],
                                                                            timeout_s=spec.sut_timeout_s))
        lap("baseline_run", 0.35)
    elif spec.baseline:
        baseline = Path(spec.baseline)
    run_dir, replay_info = folder / "run", None
    if spec.replay_speed is None:
        progress("run", 0.35)
        system = spec.system()
        if system.adapter != "builtin" and run_dir.exists() and suts.finished(system, run_dir, dataset) is None:
            shutil.rmtree(run_dir)  # what a command SUT left unfinished: made again
        info = system.run(dataset, run_dir)
        lap("run", 0.8)
    else:
        progress("replay and watch", 0.35)
        info, replay_info = _replay_and_watch(dataset, folder, spec.replay_speed, spec.system())
        lap("replay_and_watch", 0.8)
    if prefetch is not None:
        progress("next day's dataset", 0.8)
        _dataset(prefetch, cache)
        lap("prefetch_next_day", 0.8)

    progress("validate", 0.8)
    con = db.connect(run_dir, dataset)
    truth = db.has_truth(con)
    results = checks.evaluate_all(con, truth)
    card = scorecard.scorecard(con) if truth else None
    con.close()
    report.write_json(results, run_dir, folder / "validation.json", card)
    report.write_junit(results, out / "reports" / f"{day.label}.xml")
    lap("validate", 0.9)
    comparison = None
    if baseline is not None:
        progress("compare", 0.9)
        comparison = _compare(baseline, run_dir, folder, history or hist.default_path())
        lap("compare", 1.0)
    checks_ok = not any(r.failed for r in results)
    summary = {
        **day.to_json(),
        "green": checks_ok and (card is not None and card.passed) and not (comparison or {}).get("differs"),
        "dataset": str(dataset), "run": str(run_dir), "baseline_run": None if baseline is None else str(baseline),
        "checks": _checks_json(results), "scorecard": None if card is None else _scorecard_json(card),
        "comparison": comparison, "replay": replay_info,
        "counts": {k: info["counts"][k] for k in ("transits", "transits_matched", "packets_read", "packets_quarantined")
                   if k in info["counts"]},
        "validation_json": str(folder / "validation.json"), "junit": str(out / "reports" / f"{day.label}.xml"),
        "timings": {**timings, "total_s": round(sum(timings.values()), 3)},
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "fingerprint": fingerprint,
    }
    # Appended once the day's results are final; redone after a crash before the marker, it replaces them.
    hist.append(history or hist.default_path(), info, run_dir, results, card, campaign=spec.name, replace_same=True)
    io.write_json(summary, folder / DONE)
    return summary, False


def _junit_counts(path: Path) -> dict:
    """tests, failures, errors and skipped of a JUnit XML report, counted over its testcases (junitparser); {}
    when the report is missing or unreadable (the campaign summary then shows ``?``)."""
    try:
        xml = JUnitXml.fromfile(str(path))
    except (OSError, SyntaxError, JUnitXmlError):  # SyntaxError: xml.etree's and lxml's parse errors
        return {}
    suites = [xml] if isinstance(xml, TestSuite) else list(xml)
    cases = [case for suite in suites for case in suite]
    kinds = [type(r) for case in cases for r in case.result]
    return {"tests": len(cases), "failures": kinds.count(Failure), "errors": kinds.count(Error),
            "skipped": kinds.count(Skipped)}


def _features(spec: CampaignSpec, out: Path) -> dict:
    """Run the features selected by the spec's tags in a subprocess (pytest-bdd), reports in OUT/reports."""
    if not spec.tags.strip():
        return {"tags": "", "ran": False, "passed": True, "note": "no tags: no feature run"}
    reports = out / "reports"
    marker = reports / "features.json"
    if marker.is_file():
        done = json.loads(marker.read_text())
        if done.get("tags") == spec.tags:
            return done
    features = REPO / "features"
    if not features.is_dir():
        return {"tags": spec.tags, "ran": False, "passed": False,
                "note": f"no features at {features}: run the campaign from a source checkout"}
    words = set(re.split(r"[\s()]+", spec.tags))
    expression = spec.tags if "slow" in words else f"({spec.tags}) and not slow"
    junit, cucumber, log = reports / "features.xml", reports / "cucumber.json", reports / "features.log"
    reports.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pytest", str(features), "-m", expression, "-q", "-p", "no:cacheprovider",
               f"--junitxml={junit}", f"--cucumberjson={cucumber}", "--sut", spec.sut,
               *(["--sut-timeout", str(spec.sut_timeout_s)] if spec.sut_timeout_s else [])]
    start = time.perf_counter()
    with open(log, "wb") as f:
        rc = subprocess.run(command, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, check=False).returncode
    result = {"tags": spec.tags, "expression": expression, "ran": True, "returncode": rc, "passed": rc == 0,
              **_junit_counts(junit), "junit": str(junit), "cucumber": str(cucumber), "log": str(log),
              "wall_s": round(time.perf_counter() - start, 3), "command": " ".join(command[1:])}
    if rc == 5:
        result["note"] = "no scenario has these tags"
    io.write_json(result, marker)
    return result


def _html_report(day: dict, folder: Path, cucumber: Path | None, history: Path | None) -> str | None:
    path = folder / "report.html"
    if not path.is_file():
        from gaiasim.validate import html_report

        features = REPO / "features"
        # The campaign's own results database: the report's trends compare the day with its earlier days.
        html_report.write(Path(day["run"]), path, dataset=Path(day["dataset"]),
                          features=features if features.is_dir() else None, cucumber=cucumber, history=history)
    return str(path)


def _have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def run_campaign(spec: CampaignSpec, out: Path, progress: Progress = _noop, *, cache: Path | None = None,
                 history: Path | None = None, on_day: Callable[[dict], None] | None = None) -> dict:
    """Run every day of ``spec`` into ``out``, then the features; write campaign.json and campaign.md and
    return the former's content. ``cache``: where datasets and clean runs are kept (default ``out/cache``);
    ``history``: the results database (default :func:`gaiasim.validate.history.default_path`);
    ``on_day(summary)`` after each day."""
    out = Path(out).resolve()
    cache = Path(cache).resolve() if cache else out / "cache"
    start, started_at = time.perf_counter(), dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    steps = len(spec.days) + (1 if spec.tags.strip() else 0)
    with io.locked_folder(out, "campaign"):
        days: list[dict] = []
        skipped: list[str] = []
        for i, day in enumerate(spec.days):
            following = spec.days[i + 1] if i + 1 < len(spec.days) else None
            summary, done_before = _process_day(
                spec, day, out, cache, history, following,
                lambda stage, f, i=i, day=day: progress(f"{day.label} {stage}", (i + f) / steps))
            summary = {**summary, "skipped": done_before}
            days.append(summary)
            if done_before:
                skipped.append(day.label)
            if on_day is not None:
                on_day(summary)
        progress("features", len(spec.days) / steps)
        features = _features(spec, out)
        cucumber = Path(features["cucumber"]) if features.get("cucumber") and Path(features["cucumber"]).is_file() \
            else None
        html = spec.html_reports and _have_matplotlib()
        for d in days:
            d["report"] = _html_report(d, out / "days" / d["label"], cucumber, history) if html else None
        summary = {
            "campaign": spec.name, "description": spec.description, "spec": spec.to_json(), "out": str(out),
            "cache": str(cache), "history": str(history or hist.default_path()),
            "green": all(d["green"] for d in days) and features["passed"],
            "days_green": sum(d["green"] for d in days), "days": [_public(d) for d in days], "features": features,
            "started_at": started_at, "wall_s": round(time.perf_counter() - start, 3),
            "days_skipped": skipped,
        }
        io.write_json(summary, out / "campaign.json")
        io.write_bytes(markdown(summary).encode(), out / "campaign.md")
    progress("done", 1.0)
    return summary


def _public(day: dict) -> dict:
    return {k: v for k, v in day.items() if k != "fingerprint"}


def _fmt_comparison(c: dict | None) -> str:
    if not c:
        return "-"
    if not c.get("compared"):
        return "not comparable"
    if c.get("approved"):
        return f"differs in {', '.join(c['tables_differing'])}, {c['approved']}"
    return "DIFFERS: " + ", ".join(c["tables_differing"]) if c["differs"] else "same"


def day_line(day: dict) -> str:
    """One line per finished day, for the terminal."""
    c = day["checks"]
    failing = ", ".join(sorted({f["requirement"] for f in c["failures"]}))
    card = day["scorecard"]
    return (f"{day['label']}: {'GREEN' if day['green'] else 'RED'}  {c['passed']}/{c['total']} checks"
            f"{f' (failing {failing})' if failing else ''}; scorecard "
            f"{'complete' if card and card['complete'] else 'INCOMPLETE'}; comparison "
            f"{_fmt_comparison(day['comparison'])}; {day['timings']['total_s']:.0f} s"
            f"{' (done before: skipped)' if day.get('skipped') else ''}")


def _link(path: str | None, out: str) -> str:
    """A Markdown link to a file of the campaign folder, relative to campaign.md."""
    if not path:
        return "-"
    rel = Path(path).relative_to(out) if Path(path).is_relative_to(out) else Path(path)
    return f"[{rel.name}]({rel})"


def markdown(summary: dict) -> str:
    """campaign.md: the campaign at a glance."""
    lines = [f"# Campaign {summary['campaign']}: {'GREEN' if summary['green'] else 'RED'}", ""]
    if summary["description"]:
        lines += [summary["description"], ""]
    spec = summary["spec"]
    speed = spec["replay_speed"]
    speed = "no replay" if speed is None else speed if isinstance(speed, str) else f"{speed:g} x real time"
    lines += [f"- spec: `{spec['source']}`; replay speed: {speed}; baseline: "
              f"{spec['baseline'] or 'none'}; pipeline config overrides: {spec['pipeline_config'] or 'none'}",
              f"- {summary['days_green']} of {len(summary['days'])} days green; wall time {summary['wall_s']:.0f} s "
              f"(days skipped as already done: {', '.join(summary['days_skipped']) or 'none'})", "",
              "| day | date | level | faults | seed | result | checks | failing requirements | scorecard "
              "| comparison | transits | replay late (max) | time (s) | report |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for d in summary["days"]:
        c, card, rep = d["checks"], d["scorecard"], d["replay"]
        failing = ", ".join(sorted({f"{f['requirement']} ({f['name']})" for f in c["failures"]})) or "-"
        recall = "no truth" if card is None else ("complete" if card["complete"] else "INCOMPLETE: " + ", ".join(
            f"{k} {v['detected']}/{v['injected']}" for k, v in card["recall"].items() if v["detected"] != v["injected"])
            + "".join(f", {k} false alarms {n}" for k, n in card["false_alarms"].items() if n))
        lines.append(f"| {d['label']} | {d['date']} | {d['level']} ({d['scale']:g}) | {d['faults']} | {d['seed']} | "
                     f"{'green' if d['green'] else '**RED**'} | {c['passed']}/{c['total']} | {failing} | {recall} | "
                     f"{_fmt_comparison(d['comparison'])} | {d['counts'].get('transits', '')} | "
                     f"{'-' if rep is None else format(rep['max_late_s'], '.1f') + ' s'} | "
                     f"{d['timings']['total_s']:.0f} | {_link(d['report'], summary['out'])} |")
    f = summary["features"]
    lines += ["", "## Features", ""]
    if not f.get("ran"):
        lines.append(f"Not run: {f.get('note', '')}")
    else:
        lines.append(f"`-m \"{f['expression']}\"`: {'passed' if f['passed'] else '**FAILED**'} "
                     f"({f.get('tests', '?')} scenarios, {f.get('failures', '?')} failures, {f.get('errors', '?')} "
                     f"errors, {f.get('skipped', '?')} skipped) in {f['wall_s']:.0f} s; JUnit `{f['junit']}`, "
                     f"Cucumber JSON `{f['cucumber']}`, log `{f['log']}`" + (f"; {f['note']}" if f.get("note") else ""))
    return "\n".join(lines) + "\n"

