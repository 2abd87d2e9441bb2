"""The day's anomalies on one time axis, for the daily report's time plots and its anomaly table.

Three sources, each kept apart (``Anomaly.source``):

- ``reported``: what the run itself reported: HK and attitude events (``hk_events``: glitch, limit, stale,
  rate) and the packet-stream anomalies of ``gaps`` (gap, duplicate, out_of_order, stall, count_jump), each
  at the OBMT the pipeline gives them (``gaps.obmt_ns``: the packet where the anomaly was seen);
- ``injected``: with the dataset's truth, what the fault ledgers say was injected (``truth_faults`` at the
  OBMT of the packet concerned, ``truth_hk_anomalies`` from the first to the last anomalous sample);
- ``downlink``: the passes, one per TM file the run read (``run_inputs``), at the pass start its name gives
  (``YYYY-MM-DDTHH-MM.tm``, UTC, docs/run-contract.md section 1); a file not named so is listed without a time.

:data:`CATEGORIES` maps every kind of those tables to one category; a kind it does not know gets a category of
its own name, so nothing is dropped.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

import duckdb

from gaiasim.sim.timescale import obmt_ns_from_date

#: (source, kind) -> category. The categories of :data:`TIMELINE` are the ones the time plots mark.
CATEGORIES = {
    ("reported", "glitch"): "attitude glitch",
    ("reported", "limit"): "HK limit violation",
    ("reported", "stale"): "HK stale channel",
    ("reported", "rate"): "HK rate of change",
    ("reported", "gap"): "data gap (lost packets)",
    ("reported", "duplicate"): "duplicate packets",
    ("reported", "out_of_order"): "packets out of order",
    ("reported", "stall"): "sequence counter stall",
    ("reported", "count_jump"): "sequence counter jump",
    ("injected", "attitude_glitch"): "attitude glitch",
    ("injected", "hk_excursion"): "HK limit violation",
    ("injected", "hk_stale"): "HK stale channel",
    ("injected", "packet_loss"): "data gap (lost packets)",
    ("injected", "duplicate"): "duplicate packets",
    ("injected", "pass_overlap"): "duplicate packets",
    ("injected", "late_delivery"): "packets out of order",
    ("injected", "bit_flip"): "corrupted packet",
    ("injected", "truncated_file"): "truncated file",
    ("downlink", "pass"): "downlink pass",
}
#: Categories marked on the time plots and listed one by one, in legend order; the others (packet faults
#: by the hundred on a bad downlink day) are summed per category in the report.
TIMELINE = ("attitude glitch", "HK limit violation", "HK stale channel", "HK rate of change",
            "data gap (lost packets)", "downlink pass")
#: A TM file's name: the pass start, UTC (docs/run-contract.md section 1).
PASS_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})\.tm$")
NS_PER_MINUTE = 60_000_000_000


@dataclass(frozen=True)
class Anomaly:
    category: str  # a value of CATEGORIES, or the kind itself when it has none
    source: str  # reported (the run's outputs), injected (the truth's ledgers) or downlink (a TM file)
    start_ns: int | None  # OBMT; None: a pass whose file name gives no time
    end_ns: int | None
    detail: str  # channel, APID, file, count: what an operator looks up
    channel: str | None = None  # the HK channel (or 'attitude') of an HK or attitude event

    @property
    def timed(self) -> bool:
        return self.start_ns is not None


def pass_start_ns(name: str) -> int | None:
    """OBMT of the start of the pass a TM file ``name`` comes from (its name, UTC taken as TCB like the rest
    of the harness: gaiasim.sim.timescale), or None for a name not in the contract's form."""
    match = PASS_NAME.match(name)
    if not match:
        return None
    try:
        day = dt.date.fromisoformat(match.group(1))
    except ValueError:
        return None
    hour, minute = int(match.group(2)), int(match.group(3))
    if hour > 23 or minute > 59:
        return None
    return obmt_ns_from_date(day) + (60 * hour + minute) * NS_PER_MINUTE


def _category(source: str, kind: str) -> str:
    return CATEGORIES.get((source, kind), kind)


@dataclass(frozen=True)
class Total:
    count: int
    first_ns: int | None
    last_ns: int | None


@dataclass(frozen=True)
class Timeline:
    """The day's anomalies: the :data:`TIMELINE` categories one by one (at most :data:`MAX_PER_KIND` of each
    kind, the earliest), in time order (passes without a time last), and every anomaly counted."""

    items: tuple[Anomaly, ...]
    totals: dict[tuple[str, str], Total]  # (category, source) -> all of them, listed one by one or not

    def total(self, category: str, source: str) -> int:
        found = self.totals.get((category, source))
        return found.count if found else 0


#: Anomalies of one kind kept one by one at most (the earliest); the rest are counted (Timeline.totals) and
#: the plots say how many they draw. A full-scale day of a bad downlink has millions of packet faults.
MAX_PER_KIND = 5000


def _add(totals: dict[tuple[str, str], Total], key: tuple[str, str], n: int, first: int | None,
         last: int | None) -> None:
    """Count ``n`` anomalies seen from ``first`` to ``last`` (None: no time) into ``totals[key]``."""
    old = totals.get(key)
    if old is not None:
        n += old.count
        first = min((t for t in (old.first_ns, first) if t is not None), default=None)
        last = max((t for t in (old.last_ns, last) if t is not None), default=None)
    totals[key] = Total(n, first, last)


def _kinds(con: duckdb.DuckDBPyConnection, source: str, sql: str,
           totals: dict[tuple[str, str], Total]) -> list[tuple]:
    """Rows of ``sql`` (its first columns ``kind`` and ``t``) of the TIMELINE kinds, at most MAX_PER_KIND of
    each; every row counted into ``totals`` by category."""
    for kind, n, first, last in con.execute(f"SELECT kind, count(*), min(t), max(t) FROM ({sql}) GROUP BY kind"
                                            ).fetchall():
        _add(totals, (_category(source, kind), source), n, first, last)
    kinds = sorted({k for (s, k), c in CATEGORIES.items() if s == source and c in TIMELINE})
    rows = con.execute(f"SELECT * FROM ({sql}) WHERE kind IN (SELECT unnest(?::VARCHAR[])) "
                       f"QUALIFY row_number() OVER (PARTITION BY kind ORDER BY t) <= {MAX_PER_KIND}", [kinds]
                       ).fetchall()
    return rows


def collect(con: duckdb.DuckDBPyConnection, truth: bool) -> Timeline:
    """The anomalies the run reported (and, with ``truth``, those its ledgers injected) and every pass."""
    out: list[Anomaly] = []
    totals: dict[tuple[str, str], Total] = {}
    rows = _kinds(con, "reported", "SELECT kind, start_ns AS t, channel, severity, side, end_ns, n_samples, "
                                     "extreme_value, open FROM hk_events", totals)
    for kind, start, channel, severity, side, end, n, extreme, is_open in rows:
        what = f"{channel}: {severity}" + (f" {side}" if side else "") + f", {n} sample(s)"
        if extreme is not None and math.isfinite(extreme):
            what += f", extreme {extreme:.6g}"
        out.append(Anomaly(_category("reported", kind), "reported", start, end, what + (", open" if is_open else ""),
                           channel))
    rows = _kinds(con, "reported", "SELECT kind, obmt_ns AS t, apid, first_seq, last_seq, count, file FROM gaps",
                  totals)
    for kind, t, apid, first, last, count, file in rows:
        out.append(Anomaly(_category("reported", kind), "reported", t, t,
                           f"APID {apid}, seq {first}-{last}, {count} packet(s), {file}"))
    names = [r[0] for r in con.execute("SELECT name FROM run_inputs WHERE name LIKE '%.tm' ORDER BY name").fetchall()]
    for name in names:
        start = pass_start_ns(PurePosixPath(name).name)  # run_inputs names are dataset-relative: tm/NAME
        out.append(Anomaly("downlink pass", "downlink", start, start,
                           name if start is not None else f"{name} (name gives no pass time)"))
        _add(totals, ("downlink pass", "downlink"), 1, start, start)
    if truth:
        rows = _kinds(con, "injected", "SELECT kind, obmt_ns AS t, apid, seq, file FROM truth_faults", totals)
        for kind, t, apid, seq, file in rows:
            out.append(Anomaly(_category("injected", kind), "injected", t, t,
                               f"{kind}: APID {apid}, seq {seq}, {file}"))
        rows = _kinds(con, "injected", "SELECT kind, start_ns AS t, channel, severity, side, end_ns "
                                       "FROM truth_hk_anomalies", totals)
        for kind, start, channel, severity, side, end in rows:
            out.append(Anomaly(_category("injected", kind), "injected", start, end,
                               f"{channel}: {severity}" + (f" {side}" if side else ""), channel))
    items = sorted(out, key=lambda a: (a.start_ns is None, a.start_ns or 0, a.category, a.source, a.detail))
    return Timeline(tuple(items), totals)
