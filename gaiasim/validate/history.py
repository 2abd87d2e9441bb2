"""The results database: every validation appended with the run's provenance, for trends over builds
and days (``gaiasim validate`` writes it; a DuckDB file whose location is configurable).

Default location: ``$GAIASIM_HISTORY``, else ``~/.local/share/gaiasim/history.duckdb``.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from pathlib import Path

import duckdb

from gaiasim.validate.checks import Result
from gaiasim.validate.scorecard import Scorecard

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    recorded_at TIMESTAMP, run VARCHAR, dataset VARCHAR, pipeline_version VARCHAR, input_sha256 VARCHAR,
    check_name VARCHAR, requirement VARCHAR, value DOUBLE, op VARCHAR, threshold DOUBLE, passed BOOLEAN
);
CREATE TABLE IF NOT EXISTS scorecard (
    recorded_at TIMESTAMP, run VARCHAR, fault_kind VARCHAR, injected BIGINT, detected BIGINT
);
"""


def default_path() -> Path:
    env = os.environ.get("GAIASIM_HISTORY")
    return Path(env) if env else Path.home() / ".local" / "share" / "gaiasim" / "history.duckdb"


def append(path: Path, run_info: dict, run_dir: Path, results: list[Result], card: Scorecard | None) -> int:
    """Append one validation; returns the number of result rows written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    inputs = ",".join(sorted(run_info.get("inputs", {}).values()))
    rows = [
        (now, str(Path(run_dir).resolve()), run_info.get("dataset", ""), run_info.get("pipeline_version", ""),
         inputs, r.check.name, r.check.requirement,
         None if r.value is None or math.isnan(r.value) else r.value, r.check.op, r.check.threshold, r.passed)
        for r in results
    ]
    con = duckdb.connect(str(path))
    try:
        con.execute(_SCHEMA)
        if rows:
            con.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        if card is not None and card.recall:
            con.executemany("INSERT INTO scorecard VALUES (?, ?, ?, ?, ?)",
                            [(now, str(Path(run_dir).resolve()), kind, n, d) for kind, (d, n) in card.recall.items()])
    finally:
        con.close()
    return len(rows)
