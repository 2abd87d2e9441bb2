"""The detection scorecard: the harness testing itself.

For every fault the simulator injected (the fault ledger, the HK anomalies and the transients), was it
reported where a correct pipeline must report it? Recall per fault kind, and false alarms per kind of
report (a report no injected fault explains). A fault plan whose faults go undetected fails.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from gaiasim.validate import alert_checks, checks

#: Injected faults and whether each was detected, one row per fault: (kind, detected).
_INJECTED = f"""
    SELECT f.kind, ({checks.DETECTED}) AS detected FROM truth_faults f
    UNION ALL
    SELECT a.kind, (SELECT count(*) FROM hk_events e WHERE e.channel = a.channel AND e.start_ns = a.start_ns
                    AND e.end_ns = a.end_ns AND a.expected = {checks.HK_EXPECTED}) = 1
    FROM truth_hk_anomalies a
    UNION ALL
    SELECT kind, detected FROM ({alert_checks.TRANSIENT_DETECTION_SQL})
"""

#: Reports that no injected fault explains, by kind of report.
_FALSE_ALARMS = {
    "quarantine": checks.UNEXPLAINED_QUARANTINE,
    "gap": checks.UNEXPLAINED_GAPS,
    "duplicate": checks.UNEXPLAINED_DUPLICATES,
    "out_of_order": checks.UNEXPLAINED_OUT_OF_ORDER,
    "counter": checks.UNEXPLAINED_COUNTER,
    "attitude_glitch": checks.UNEXPLAINED_GLITCHES,
    "hk_event": checks.UNEXPLAINED_HK_EVENTS,
    "alert": alert_checks.FALSE_ALERT_COUNT_SQL,
}


@dataclass(frozen=True)
class Scorecard:
    recall: dict[str, tuple[int, int]]  # fault kind -> (detected, injected)
    false_alarms: dict[str, int]  # kind of report -> reports no fault explains

    @property
    def passed(self) -> bool:
        return all(d == n for d, n in self.recall.values()) and not any(self.false_alarms.values())


def scorecard(con: duckdb.DuckDBPyConnection) -> Scorecard:
    rows = con.execute(f"SELECT kind, count(*) FILTER (WHERE detected), count(*) FROM ({_INJECTED}) "
                       "GROUP BY kind ORDER BY kind").fetchall()
    recall = {kind: (int(d), int(n)) for kind, d, n in rows}
    false_alarms = {name: int(con.execute(sql).fetchall()[0][0]) for name, sql in _FALSE_ALARMS.items()}
    return Scorecard(recall, false_alarms)
