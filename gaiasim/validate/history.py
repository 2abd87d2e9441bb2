"""The results database: every validation appended with the run's provenance, for trends over builds
and days (``gaiasim validate`` writes it; a DuckDB file whose location is configurable; ``gaiasim history``
reads it: :func:`trends`, :func:`plot_trends`).

Default location: ``$GAIASIM_HISTORY``, else ``~/.local/share/gaiasim/history.duckdb``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import time
from collections.abc import Callable
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
-- The system under test's identity (gaiasim.sut: adapter, version or digest, configuration).
ALTER TABLE results ADD COLUMN IF NOT EXISTS sut VARCHAR;
"""
_COLUMNS = ("recorded_at, run, dataset, pipeline_version, input_sha256, check_name, requirement, value, op, "
            "threshold, passed, campaign, sut")
_N_COLUMNS = len(_COLUMNS.split(","))


def default_path() -> Path:
    env = os.environ.get("GAIASIM_HISTORY")
    return Path(env) if env else Path.home() / ".local" / "share" / "gaiasim" / "history.duckdb"


#: How long an append waits for another process that holds the results database (a validate or a campaign
#: appending at the same moment; each holds it for well under a second), s.
LOCK_WAIT_S = 120.0
#: Suffix of the folder beside the database that keeps validations which could not be appended within
#: :data:`LOCK_WAIT_S`; the next append adds them first. A validation is never dropped.
PENDING_SUFFIX = ".pending"


def _holder(message: str) -> str:
    """'held by PID n' from DuckDB's lock error, when it names the process."""
    match = re.search(r"PID (\d+)", message)
    return f"held by process {match.group(1)}" if match else "held by another process"


def _connect_when_free(path: Path, wait_s: float, on_wait: Callable[[str], None]) -> duckdb.DuckDBPyConnection | None:
    """A writable connection to ``path``, waiting (with backoff) while another process holds the file;
    None when it is still held after ``wait_s`` seconds. ``on_wait`` hears one line when the wait starts."""
    deadline = time.monotonic() + wait_s
    delay, told = 0.05, False
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if not told:
                on_wait(f"waiting for the results database {path} ({_holder(str(exc))}), up to {wait_s:.0f} s")
                told = True
            time.sleep(min(delay, left))
            delay = min(2 * delay, 1.0)


def _ignore(_message: str) -> None:
    return None


def connect_when_free(path: Path, wait_s: float = LOCK_WAIT_S) -> duckdb.DuckDBPyConnection:
    """A writable connection to the results database, waiting up to ``wait_s`` for another process that
    holds it; one clear line (InputError) when it stays held."""
    con = _connect_when_free(Path(path), wait_s, _ignore)
    if con is None:
        raise InputError(f"the results database {path} stayed in use for {wait_s:.0f} s; run the same command "
                         "again when the other validation has finished")
    return con


def append(path: Path, run_info: dict, run_dir: Path, results: list[Result], card: Scorecard | None,
           campaign: str | None = None, replace_same: bool = False, wait_s: float = LOCK_WAIT_S,
           on_wait: Callable[[str], None] = _ignore) -> int:
    """Append one validation (of ``campaign``, if it belongs to one); returns the number of result rows written.

    With ``replace_same``, the rows of an earlier validation of the same run folder by the same pipeline
    version over the same inputs (in the same campaign) are replaced, in one transaction: a campaign day
    redone after a crash between its append and its done marker is recorded once.

    Another process appending at the same moment holds the database: this waits for it (``on_wait`` hears
    one line), up to ``wait_s`` seconds; if it is still held then, the validation is kept in the pending
    folder beside the database (:data:`PENDING_SUFFIX`) and the next append adds it. A check that had
    nothing to measure (n/a) is recorded with ``passed`` NULL.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    inputs = ",".join(sorted(run_info.get("inputs", {}).values()))
    run = str(Path(run_dir).resolve())
    entry = {
        "recorded_at": now.isoformat(),
        "replace_same": [run, run_info.get("pipeline_version", ""), inputs, campaign] if replace_same else None,
        "results": [
            [now.isoformat(), run, run_info.get("dataset", ""), run_info.get("pipeline_version", ""), inputs,
             r.check.name, r.check.requirement, None if r.value is None or math.isnan(r.value) else r.value,
             r.check.op, r.check.threshold, r.passed, campaign, (run_info.get("sut") or {}).get("identity")]
            for r in results
        ],
        "scorecard": [[now.isoformat(), run, kind, n, d] for kind, (d, n) in card.recall.items()]
        if card is not None else [],
    }
    con = _connect_when_free(path, wait_s, on_wait)
    pending_dir = path.with_name(path.name + PENDING_SUFFIX)
    if con is None:
        kept = pending_dir / f"{now:%Y%m%dT%H%M%S%f}-{os.getpid()}.json"
        io.write_json(entry, kept)
        on_wait(f"the results database {path} stayed in use for {wait_s:.0f} s: this validation is kept in {kept} "
                "and the next append adds it")
        return len(entry["results"])
    pending = sorted(pending_dir.glob("*.json")) if pending_dir.is_dir() else []
    try:
        con.execute(_SCHEMA)
        con.execute("BEGIN TRANSACTION")
        for e in [*(json.loads(f.read_text()) for f in pending), entry]:
            _write(con, e)
        con.execute("COMMIT")
    finally:
        con.close()
    for f in pending:
        f.unlink(missing_ok=True)
    return len(entry["results"])


def _write(con: duckdb.DuckDBPyConnection, entry: dict) -> None:
    """Insert one validation (an :func:`append` entry) inside the caller's transaction."""
    if entry["replace_same"]:
        same = "run = ? AND pipeline_version = ? AND input_sha256 = ? AND campaign IS NOT DISTINCT FROM ?"
        con.execute(f"DELETE FROM scorecard WHERE run = ? AND recorded_at IN (SELECT recorded_at FROM results WHERE "
                    f"{same})", [entry["replace_same"][0], *entry["replace_same"]])
        con.execute(f"DELETE FROM results WHERE {same}", entry["replace_same"])
    if entry["results"]:
        # An entry kept pending by an older version has fewer columns: the new ones are NULL.
        rows = [row + [None] * (_N_COLUMNS - len(row)) for row in entry["results"]]
        con.executemany(f"INSERT INTO results ({_COLUMNS}) VALUES (?::TIMESTAMP, {', '.join('?' * (_N_COLUMNS - 1))})",
                        rows)
    if entry["scorecard"]:
        con.executemany("INSERT INTO scorecard VALUES (?::TIMESTAMP, ?, ?, ?, ?)", entry["scorecard"])


@dataclass(frozen=True)
class Trend:
    """One check of one requirement (in one campaign) over time, oldest first."""

    requirement: str  # REQ-<AREA>-<NNN>
    check_name: str
    campaign: str | None  # None: validations recorded outside any campaign
    op: str  # ==, <= or >=, as last recorded
    threshold: float  # as last recorded (a threshold may change between builds)
    recorded_at: tuple[dt.datetime, ...]  # UTC
    values: tuple[float | None, ...]  # the measured metric, None when the check could not run or was n/a
    passed: tuple[bool | None, ...]  # None: nothing to measure (n/a)

    @property
    def runs(self) -> int:
        return len(self.passed)

    @property
    def pass_rate(self) -> float | None:
        """Passes among the validations that measured something (None when none did)."""
        measured = [p for p in self.passed if p is not None]
        return sum(measured) / len(measured) if measured else None


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
                             tuple(r[3] for r in group), tuple(r[4] for r in group),
                             tuple(None if r[7] is None else bool(r[7]) for r in group)))
            start = i
    return out


@dataclass(frozen=True)
class Record:
    """One result row: one check of one validation (every row of a validation has its ``recorded_at``)."""

    recorded_at: dt.datetime  # UTC
    run: str  # the run folder, absolute
    dataset: str
    pipeline_version: str
    campaign: str | None  # None: recorded outside any campaign
    sut: str | None  # the system under test's identity (None in rows written before it was recorded)
    requirement: str
    check_name: str
    value: float | None  # None: the check could not run or was n/a
    op: str
    threshold: float
    passed: bool | None  # None: nothing to measure (n/a)


def records(path: Path, requirement: str | None = None, campaign: str | None = None) -> list[Record]:
    """Every result row (optionally of one requirement and/or one campaign), oldest validation first; rows
    equal in every column (one validation appended twice) once. Works on databases written before the
    campaign and sut columns existed."""
    con = _open(path)
    try:
        present = {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = 'results'"
                                             ).fetchall()}
        optional = ", ".join(c if c in present else f"NULL::VARCHAR AS {c}" for c in ("campaign", "sut"))
        rows = con.execute(f"""
            SELECT DISTINCT recorded_at, run, dataset, pipeline_version, {optional}, requirement, check_name,
                   value, op, threshold, passed
            FROM results
            WHERE (?::VARCHAR IS NULL OR requirement = ?) AND (?::VARCHAR IS NULL OR campaign = ?)
            ORDER BY recorded_at, run, requirement, check_name""",
                           [requirement, requirement, campaign, campaign]).fetchall()
    finally:
        con.close()
    if not rows:
        raise InputError(f"no results in {path} for requirement {requirement or 'any'} and campaign "
                         f"{campaign or 'any'}: 'gaiasim history --db {path}' lists what is recorded")
    return [Record(*r[:10], float(r[10]), None if r[11] is None else bool(r[11])) for r in rows]


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
        measured = [p for t in group for p in t.passed if p is not None]
        rate = f"{sum(measured) / len(measured):.0%}" if measured else "n/a"
        ax.set_title(f"{req}  {name}   (passed {rate} of {len(measured)} measured)", fontsize="small",
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
