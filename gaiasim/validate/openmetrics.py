"""The results database (:mod:`gaiasim.validate.history`) as an OpenMetrics text exposition, for Prometheus and
Grafana (``gaiasim metrics``; docs/metrics.md lists every metric).

Format: OpenMetrics 1.0, text format (https://github.com/OpenObservability/OpenMetrics/blob/main/specification/
OpenMetrics.md; the same text as https://prometheus.io/docs/specs/om/open_metrics_spec/): per metric family
``# TYPE``, ``# UNIT`` (the unit is the name's suffix), ``# HELP``, then its samples, one metric (label set)
after another with its points in ascending time; ``# EOF`` last. Label values are escaped as its section
"Escaping" says (backslash, double quote, line feed).

Two uses, one text:

* the whole history, every point with its validation's time as the timestamp (Unix seconds): Prometheus
  backfill (``promtool tsdb create-blocks-from openmetrics``) or any OpenMetrics reader;
* with ``latest``: the latest validation of each campaign, without timestamps (OpenMetrics: "MetricPoints
  SHOULD NOT have explicit timestamps"; the node_exporter textfile collector skips a file that has them,
  https://github.com/prometheus/node_exporter/pull/769). Every family is a gauge and the HELP texts need no
  escaping, so this text is also valid in the Prometheus text format 0.0.4 that the textfile collector
  reads (there ``# UNIT`` and ``# EOF`` are comments).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gaiasim.validate.checks import CHECKS
from gaiasim.validate.history import Record
from pipeline.io import InputError

#: The media type of the text (OpenMetrics 1.0, "Overall Structure"), for an HTTP server that serves it.
CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

#: Labels of the per-check families: the check (``unit`` is the check's own unit, from
#: :data:`gaiasim.validate.checks.CHECKS`; ``op`` how the value must compare with the threshold) and the
#: validation it belongs to.
CHECK_LABELS = ("requirement", "check", "unit", "op", "run", "campaign")
#: Labels of the per-validation families.
VALIDATION_LABELS = ("run", "campaign", "dataset", "pipeline_version", "sut")
#: Labels of the per-stage families (run.json of one run).
STAGE_LABELS = ("run", "stage")


@dataclass(frozen=True)
class Family:
    """One metric family: all are gauges (a value that can go up and down between validations)."""

    name: str
    unit: str  # OpenMetrics UNIT, the suffix of the name; "" when the family has no single unit
    help: str
    labels: tuple[str, ...]


FAMILIES: tuple[Family, ...] = (
    Family("gaiasim_check_value", "",
           "The value a check measured, in the check's own unit (label unit); absent when it measured nothing",
           CHECK_LABELS),
    Family("gaiasim_check_threshold", "",
           "The threshold the check's value was compared with (label op), as recorded with the validation",
           CHECK_LABELS),
    Family("gaiasim_check_passed", "",
           "1 when the check passed, 0 when it failed; absent when it had nothing to measure (n/a)",
           CHECK_LABELS),
    Family("gaiasim_check_not_applicable", "",
           "1 when the check had nothing to measure (n/a, never a pass); absent otherwise",
           CHECK_LABELS),
    Family("gaiasim_checks_pass_ratio", "ratio",
           "Passed checks among the checks of the validation that measured something (n/a ones left out)",
           VALIDATION_LABELS),
    Family("gaiasim_validation_timestamp_seconds", "seconds",
           "When the validation was recorded, Unix time (its age in a latest-only exposition)",
           VALIDATION_LABELS),
    Family("gaiasim_stage_duration_seconds", "seconds",
           "Wall time of a pipeline stage (run.json timings_s)",
           STAGE_LABELS),
    Family("gaiasim_stage_peak_rss_bytes", "bytes",
           "Peak resident memory of the pipeline process when the stage ended (run.json peak_rss_bytes)",
           STAGE_LABELS),
)
#: Every metric name the exposition can hold (the Grafana dashboard may use only these).
NAMES = frozenset(f.name for f in FAMILIES)
_FAMILY = {f.name: f for f in FAMILIES}
_UNITS = {c.name: c.unit for c in CHECKS}


@dataclass(frozen=True)
class Sample:
    family: str
    labels: tuple[str, ...]  # values, in the order of the family's labels
    value: float
    timestamp_us: int | None  # Unix time, microseconds (the database's resolution); None: none exposed


def escape(text: str) -> str:
    """A label value (or HELP text) escaped as OpenMetrics 1.0, "Escaping", requires: backslash, double quote
    and line feed; everything else stays as it is (UTF-8)."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def number(x: float) -> str:
    """A value: the shortest text that reads back as the same float64 (Python's repr); +Inf, -Inf and NaN
    as the spec spells them."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return repr(float(x))


def unix_us(when: dt.datetime) -> int:
    """Unix time in whole microseconds of a UTC time (naive, as the results database keeps it)."""
    delta = when.replace(tzinfo=None) - dt.datetime(1970, 1, 1)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _timestamp(us: int) -> str:
    # Seconds with exactly the recorded microseconds (a float64 of ~1.7e9 s cannot hold all six digits).
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def latest(records: Iterable[Record]) -> list[Record]:
    """The rows of the most recent validation of each campaign (and of the validations outside any)."""
    records = list(records)
    last: dict[str | None, tuple[dt.datetime, str]] = {}
    for r in records:
        key = (r.recorded_at, r.run)
        if r.campaign not in last or key > last[r.campaign]:
            last[r.campaign] = key
    return [r for r in records if (r.recorded_at, r.run) == last[r.campaign]]


def samples(records: Iterable[Record], stages: Mapping[str, dict] | None = None,
            timestamps: bool = True) -> list[Sample]:
    """The samples of ``records`` (result rows) and of ``stages`` (run folder, as recorded in the rows ->
    its run.json); each stage sample has the time of its run's latest validation among ``records``."""
    records = list(records)
    out: list[Sample] = []

    def ts(when: dt.datetime) -> int | None:
        return unix_us(when) if timestamps else None

    validations: dict[tuple[dt.datetime, str, str | None], list[Record]] = {}
    for r in records:
        validations.setdefault((r.recorded_at, r.run, r.campaign), []).append(r)
        check = (r.requirement, r.check_name, _UNITS.get(r.check_name, ""), r.op, r.run, r.campaign or "")
        when = ts(r.recorded_at)
        if r.value is not None:
            out.append(Sample("gaiasim_check_value", check, r.value, when))
        out.append(Sample("gaiasim_check_threshold", check, r.threshold, when))
        if r.passed is None:
            out.append(Sample("gaiasim_check_not_applicable", check, 1.0, when))
        else:
            out.append(Sample("gaiasim_check_passed", check, float(r.passed), when))
    for (recorded_at, run, campaign), rows in validations.items():
        first = rows[0]
        labels = (run, campaign or "", first.dataset, first.pipeline_version, first.sut or "")
        measured = [r.passed for r in rows if r.passed is not None]
        if measured:
            out.append(Sample("gaiasim_checks_pass_ratio", labels, sum(measured) / len(measured), ts(recorded_at)))
        out.append(Sample("gaiasim_validation_timestamp_seconds", labels, unix_us(recorded_at) / 1e6,
                          ts(recorded_at)))
    for run, info in (stages or {}).items():
        times = [r.recorded_at for r in records if r.run == run]
        if not times:
            raise ValueError(f"run {run} has no validation among the records")
        when = ts(max(times))
        for key, family in (("timings_s", "gaiasim_stage_duration_seconds"),
                            ("peak_rss_bytes", "gaiasim_stage_peak_rss_bytes")):
            by_stage = info.get(key) or {}
            if not isinstance(by_stage, dict):
                raise InputError(f"run.json of {run}: {key} is not an object of stage -> number; rerun the pipeline")
            for stage, value in by_stage.items():
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise InputError(f"run.json of {run}: {key}.{stage} = {value!r} is not a number; "
                                     "rerun the pipeline")
                out.append(Sample(family, (run, stage), float(value), when))
    return out


def render(points: Iterable[Sample]) -> str:
    """The exposition: every family of :data:`FAMILIES` (its metadata even when it has no sample), each
    metric's points together in ascending time, ``# EOF`` last."""
    by_family: dict[str, dict[tuple[str, ...], list[Sample]]] = {f.name: {} for f in FAMILIES}
    for s in points:
        by_family[s.family].setdefault(s.labels, []).append(s)
    lines: list[str] = []
    for f in FAMILIES:
        lines.append(f"# TYPE {f.name} gauge")
        if f.unit:
            lines.append(f"# UNIT {f.name} {f.unit}")
        lines.append(f"# HELP {f.name} {escape(f.help)}")
        for labels, group in sorted(by_family[f.name].items()):
            group.sort(key=lambda s: -1 if s.timestamp_us is None else s.timestamp_us)
            for a, b in itertools.pairwise(group):
                # "If more than one MetricPoint is exposed for a Metric, then its MetricPoints MUST have
                # monotonically increasing timestamps" (OpenMetrics 1.0, "Metric").
                if a.timestamp_us is None or a.timestamp_us == b.timestamp_us:
                    raise InputError(f"two different {f.name} points of {dict(zip(f.labels, labels, strict=True))} "
                                     "at the same time in the results database; export with --latest, or remove "
                                     "the duplicate validation")
            text = ",".join(f'{name}="{escape(value)}"' for name, value in zip(f.labels, labels, strict=True))
            for s in group:
                when = "" if s.timestamp_us is None else f" {_timestamp(s.timestamp_us)}"
                lines.append(f"{f.name}{{{text}}} {number(s.value)}{when}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"

