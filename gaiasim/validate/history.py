"""The results database: every validation appended with the run's provenance, for trends over builds
and days (``gaiasim validate`` writes it; a DuckDB file whose location is configurable; ``gaiasim history``
reads it: :func:`trends`, :func:`plot_trends`).

Default location: ``$GAIASIM_HISTORY``, else ``~/.local/share/gaiasim/history.duckdb``.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from gaiasim.validate.checks import Result
from gaiasim.validate.scorecard import Scorecard
from pipeline import io
from pipeline.io import InputError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    recorded_at TIMESTAMP, run VARCHAR, dataset VARCHAR, pipeline_version VARCHAR, input_sha256 VARCHAR,
    check_name VARCHAR, requirement VARCHAR, value DOUBLE, op VARCHAR, threshold DOUBLE, passed BOOLEAN
);
CREATE TABLE IF NOT EXISTS scorecard (
    recorded_at TIMESTAMP, run VARCHAR, fault_kind VARCHAR, injected BIGINT, detected BIGINT
);
-- Added later: databases written before it get the column (NULL in their old rows).
ALTER TABLE results ADD COLUMN IF NOT EXISTS campaign VARCHAR;
"""
_COLUMNS = ("recorded_at, run, dataset, pipeline_version, input_sha256, check_name, requirement, value, op, "
            "threshold, passed, campaign")


def default_path() -> Path:
    env = os.environ.get("GAIASIM_HISTORY")
    return Path(env) if env else Path.home() / ".local" / "share" / "gaiasim" / "history.duckdb"


def append(path: Path, run_info: dict, run_dir: Path, results: list[Result], card: Scorecard | None,
           campaign: str | None = None, replace_same: bool = False) -> int:
    """Append one validation (of ``campaign``, if it belongs to one); returns the number of result rows written.

    With ``replace_same``, the rows of an earlier validation of the same run folder by the same pipeline
    version over the same inputs (in the same campaign) are replaced, in one transaction: a campaign day
    redone after a crash between its append and its done marker is recorded once.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    inputs = ",".join(sorted(run_info.get("inputs", {}).values()))
    rows = [
        (now, str(Path(run_dir).resolve()), run_info.get("dataset", ""), run_info.get("pipeline_version", ""),
         inputs, r.check.name, r.check.requirement,
         None if r.value is None or math.isnan(r.value) else r.value, r.check.op, r.check.threshold, r.passed,
         campaign)
        for r in results
    ]
    con = duckdb.connect(str(path))
    try:
        con.execute(_SCHEMA)
        con.execute("BEGIN TRANSACTION")
        if replace_same:
            same = ("run = ? AND pipeline_version = ? AND input_sha256 = ? AND campaign IS NOT DISTINCT FROM ?",
                    [str(Path(run_dir).resolve()), run_info.get("pipeline_version", ""), inputs, campaign])
            con.execute(f"DELETE FROM scorecard WHERE run = ? AND recorded_at IN "
                        f"(SELECT recorded_at FROM results WHERE {same[0]})", [same[1][0], *same[1]])
            con.execute(f"DELETE FROM results WHERE {same[0]}", same[1])
        if rows:
            con.executemany(f"INSERT INTO results ({_COLUMNS}) VALUES ({', '.join('?' * 12)})", rows)
        if card is not None and card.recall:
            con.executemany("INSERT INTO scorecard VALUES (?, ?, ?, ?, ?)",
                            [(now, str(Path(run_dir).resolve()), kind, n, d) for kind, (d, n) in card.recall.items()])
        con.execute("COMMIT")
    finally:
        con.close()
    return len(rows)


@dataclass(frozen=True)
class Trend:
    """One check of one requirement (in one campaign) over time, oldest first."""

    requirement: str  # REQ-<AREA>-<NNN>
    check_name: str
    campaign: str | None  # None: validations recorded outside any campaign
    op: str  # ==, <= or >=, as last recorded
    threshold: float  # as last recorded (a threshold may change between builds)
    recorded_at: tuple[dt.datetime, ...]  # UTC
    values: tuple[float | None, ...]  # the measured metric, None when the check could not run
    passed: tuple[bool, ...]

    @property
    def runs(self) -> int:
        return len(self.passed)

    @property
    def pass_rate(self) -> float:
        return sum(self.passed) / len(self.passed)


def _open(path: Path) -> duckdb.DuckDBPyConnection:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no results database at {path}: run 'gaiasim validate' first, or pass --db")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise InputError(f"{path} is not a results database ({str(exc).splitlines()[0]})") from None
    if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'results'").fetchone()[0]:
        con.close()
        raise InputError(f"{path} holds no validation results: run 'gaiasim validate' first")
    return con


def trends(path: Path, requirement: str | None = None, campaign: str | None = None) -> list[Trend]:
    """Per requirement, check and campaign: every recorded result, oldest first (optionally one requirement
    and/or one campaign). Works on databases written before the campaign column existed."""
    con = _open(path)
    try:
        has_campaign = con.execute("SELECT count(*) FROM duckdb_columns() WHERE table_name = 'results' "
                                   "AND column_name = 'campaign'").fetchone()[0]
        rows = con.execute(f"""
            SELECT requirement, check_name, {'campaign' if has_campaign else 'NULL::VARCHAR'} AS campaign,
                   recorded_at, value, op, threshold, passed
            FROM results
            WHERE (?::VARCHAR IS NULL OR requirement = ?) AND (?::VARCHAR IS NULL OR campaign = ?)
            ORDER BY requirement, check_name, campaign NULLS FIRST, recorded_at, run""",
                           [requirement, requirement, campaign, campaign]).fetchall()
        if not rows:
            known = con.execute("SELECT DISTINCT requirement FROM results ORDER BY 1").fetchall()
            camps = con.execute("SELECT DISTINCT campaign FROM results WHERE campaign IS NOT NULL ORDER BY 1"
                                ).fetchall() if has_campaign else []
            raise InputError(
                f"no results in {path} for requirement {requirement or 'any'} and campaign {campaign or 'any'}; "
                f"recorded requirements: {', '.join(r[0] for r in known) or 'none'}; "
                f"campaigns: {', '.join(c[0] for c in camps) or 'none'}")
    finally:
        con.close()
    out: list[Trend] = []
    start = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i][:3] != rows[start][:3]:
            group = rows[start:i]
            req, name, camp = group[0][:3]
            out.append(Trend(req, name, camp, group[-1][5], float(group[-1][6]),
                             tuple(r[3] for r in group), tuple(r[4] for r in group), tuple(bool(r[7]) for r in group)))
            start = i
    return out


def plot_trends(series: list[Trend], path: Path) -> Path:
    """A PNG: the metric against the time it was recorded, one panel per requirement and check, one line per
    campaign, the threshold dashed and the failed validations marked. Needs the ``report`` extra."""
    import numpy as np

    from gaiasim.validate.report_plots import new_figure, png_bytes

    new_figure(1, 1)  # fails with the install hint when matplotlib is missing
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    panels: dict[tuple[str, str], list[Trend]] = {}
    for t in series:
        panels.setdefault((t.requirement, t.check_name), []).append(t)
    ncols = 2 if len(panels) > 1 else 1
    nrows = -(-len(panels) // ncols)
    fig = new_figure(6 * ncols, 2.4 * nrows + 0.3)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax, ((req, name), group) in zip(axes, panels.items(), strict=False):
        for t in group:
            pts = [(when, v, ok) for when, v, ok in zip(t.recorded_at, t.values, t.passed, strict=True)
                   if v is not None]
            label = t.campaign or "no campaign"
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", ms=3, lw=1, label=label)
                bad = [p for p in pts if not p[2]]
                if bad:
                    ax.plot([p[0] for p in bad], [p[1] for p in bad], "x", color="#d62728", ms=7, mew=2)
        last = group[-1]
        ax.axhline(last.threshold, color="#d62728", ls="--", lw=1, label=f"threshold ({last.op} {last.threshold:g})")
        passed = sum(sum(t.passed) for t in group) / sum(t.runs for t in group)
        ax.set_title(f"{req}  {name}   (passed {passed:.0%} of {sum(t.runs for t in group)})", fontsize="small",
                     loc="left")
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        ax.tick_params(labelsize="x-small")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small", loc="best")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    io.write_bytes(png_bytes(fig), path)
    return path
