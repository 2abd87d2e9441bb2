"""Today against the previous days: every check's measured value and every fault kind's detection recall of a
run, beside the same metrics of the validations before it in the results database (:mod:`history`).

Which previous days (:func:`previous_days`): the latest validation of each *other* run, recorded before this
run's own latest validation (all of them when this run was never validated into the database), in the same
campaign as this run's validation (outside any campaign when it has none), the last :data:`TREND_DAYS`. A run
validated twice counts once (its latest validation). The results database records no dataset level:
a campaign keeps its days at one level; outside campaigns, days of any level are compared.

When is a value marked (:func:`flag`): when it lies outside the range of the previous days' values, or when
it moved from their median by more than :data:`MOVE_OF_MARGIN` of the median's distance to the check's
threshold (the margin a requirement leaves; a value at its threshold has none, and only the range applies).
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from gaiasim.validate import history
from gaiasim.validate.checks import Result
from gaiasim.validate.scorecard import Scorecard

#: Previous validations a day is compared with at most (two weeks of daily runs; an operations choice, not a
#: published value: ``gaiasim report --trend-days``).
TREND_DAYS = 14
#: A value is marked when it moved from the previous days' median by more than this fraction of the
#: median's margin to the threshold (half the room a requirement left used up, or gained, in one day; an
#: operations choice, not a published value).
MOVE_OF_MARGIN = 0.5
#: Prefix of a scorecard metric's name (its fault kind follows).
RECALL = "recall of "


@dataclass(frozen=True)
class PreviousDays:
    """The validations a run is compared with, oldest first, and how they were chosen."""

    database: Path
    days: int  # the most previous days asked for
    campaign: str | None  # the comparison group: this campaign (None: validations outside any campaign)
    this_run_recorded: dt.datetime | None  # this run's latest validation, None when it has none
    runs: tuple[str, ...]
    recorded_at: tuple[dt.datetime, ...]
    values: dict[str, tuple[float | None, ...]]  # metric -> value per previous day (None: n/a or not recorded)

    @property
    def chosen(self) -> str:
        """Which validations were eligible, in words for the report: 'of other runs outside any campaign,
        recorded before this run's validation of ...'."""
        group = f"in campaign {self.campaign}" if self.campaign else "outside any campaign"
        when = (f"recorded before this run's validation of {self.this_run_recorded:%Y-%m-%d %H:%M:%S} UTC"
                if self.this_run_recorded else "recorded at any time (this run has not been validated into it)")
        return f"of other runs {group}, {when}"


@dataclass(frozen=True)
class Trend:
    """One metric today and on the previous days."""

    metric: str  # a check's name, or RECALL + a fault kind
    requirement: str  # REQ-... of a check; 'scorecard' for a recall
    unit: str
    op: str
    threshold: float
    today: float | None  # None: n/a today
    previous: tuple[float | None, ...]  # oldest first
    flag: str  # why today's value is marked, '' when it is not


def _connect(path: Path):
    """A connection to the results database, or None when there is none (no previous day)."""
    if not Path(path).is_file():
        return None
    return history.connect_when_free(Path(path))


def previous_days(path: Path, run_dir: Path, days: int = TREND_DAYS) -> PreviousDays:
    """The previous days of ``run_dir`` in the results database ``path`` (module doc)."""
    run = str(Path(run_dir).resolve())
    con = _connect(path)
    empty = PreviousDays(Path(path), days, None, None, (), (), {})
    if con is None:
        return empty
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        if "results" not in tables:
            return empty
        has_campaign = con.execute("SELECT count(*) FROM duckdb_columns() WHERE table_name = 'results' "
                                   "AND column_name = 'campaign'").fetchall()[0][0]
        campaign_col = "campaign" if has_campaign else "NULL::VARCHAR"
        mine = con.execute(f"SELECT recorded_at, {campaign_col} FROM results WHERE run = ? "
                           "ORDER BY recorded_at DESC LIMIT 1", [run]).fetchall()
        recorded, campaign = mine[0] if mine else (None, None)
        chosen = con.execute(f"""
            SELECT run, max(recorded_at) AS recorded_at FROM results
            WHERE run != ? AND {campaign_col} IS NOT DISTINCT FROM ? AND (?::TIMESTAMP IS NULL OR recorded_at < ?)
            GROUP BY run ORDER BY recorded_at DESC, run LIMIT ?""", [run, campaign, recorded, recorded, days]
                             ).fetchall()[::-1]
        values: dict[str, list[float | None]] = {}
        for k, (other, when) in enumerate(chosen):
            rows = con.execute("SELECT check_name, value FROM results WHERE run = ? AND recorded_at = ?",
                               [other, when]).fetchall()
            if "scorecard" in tables:
                rows += [(RECALL + kind, detected / injected if injected else None) for kind, injected, detected in
                         con.execute("SELECT fault_kind, injected, detected FROM scorecard "
                                     "WHERE run = ? AND recorded_at = ?", [other, when]).fetchall()]
            for metric, value in rows:
                values.setdefault(metric, [None] * len(chosen))[k] = value
    finally:
        con.close()
    return PreviousDays(Path(path), days, campaign, recorded, tuple(r[0] for r in chosen), tuple(r[1] for r in chosen),
                        {m: tuple(v) for m, v in values.items()})


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def flag(today: float | None, previous: tuple[float | None, ...], threshold: float) -> str:
    """Why ``today`` is marked against ``previous`` (module doc), '' when it is not."""
    before = _finite(previous)
    if today is None or not math.isfinite(today) or not before:
        return ""
    reasons = []
    lo, hi = min(before), max(before)
    if today < lo or today > hi:
        reasons.append(f"{'below' if today < lo else 'above'} the previous days' range [{lo:.4g}, {hi:.4g}]")
    median = statistics.median(before)
    margin = abs(threshold - median)
    if margin > 0 and abs(today - median) > MOVE_OF_MARGIN * margin:
        reasons.append(f"moved {abs(today - median) / margin:.2f} of the margin to the threshold "
                       f"(median {median:.4g}, threshold {threshold:g})")
    return "; ".join(reasons)


def compare(results: list[Result], card: Scorecard | None, previous: PreviousDays) -> list[Trend]:
    """Every check of ``results`` and every fault kind of ``card`` (today) or of the previous days."""
    none = (None,) * len(previous.runs)
    out = []
    for r in results:
        before = previous.values.get(r.check.name, none)
        out.append(Trend(r.check.name, r.check.requirement, r.check.unit, r.check.op, r.check.threshold, r.value,
                         before, flag(r.value, before, r.check.threshold)))
    recall = {RECALL + kind: d / n if n else None for kind, (d, n) in (card.recall.items() if card else ())}
    recorded = {m for m in previous.values if m.startswith(RECALL)}
    for metric in sorted(set(recall) | recorded):
        before = previous.values.get(metric, none)
        today = recall.get(metric)
        out.append(Trend(metric, "scorecard", "", "==", 1.0, today, before, flag(today, before, 1.0)))
    return out
