"""Helpers for tests that tamper with a run folder's outputs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import layout, schemas


def rewrite_table(run_dir: Path, table: str, change: Callable[[pa.Table], pa.Table]) -> None:
    """Replace every part of ``<run_dir>/<table>`` (hive partitions included) by one file holding
    ``change(table)``, in time order as the pipeline writes it; run.json's count of the table's rows
    follows, as a pipeline with that bug would report it (for every table but quarantine, whose count
    also enters the packet balance, the run still keeps the run contract)."""
    folder = run_dir / table
    schema = schemas.RUN_TABLES[table]
    parts = [pq.read_table(p).cast(schema) for p in sorted(folder.rglob("*.parquet"))]
    new = change(pa.concat_tables(parts) if parts else schema.empty_table())
    assert new.schema.equals(schema, check_metadata=False), "a change must keep the table's schema"
    shutil.rmtree(folder)
    folder.mkdir()
    pq.write_table(new, folder / "part-0.parquet")
    key = layout.ROW_COUNTS.get(table)
    if key is not None:
        path = run_dir / layout.RUN_JSON
        info = json.loads(path.read_text())
        info["counts"][key] = new.num_rows
        if table == "transits":
            info["counts"]["transits_matched"] = new.num_rows - new["source_id"].null_count
        path.write_text(json.dumps(info, indent=1))


def write_pre_campaign_history(db: Path) -> None:
    """A results database as ``gaiasim validate`` wrote it before campaigns and SUT identities: one result
    (REQ-PHOT-001 passed with 0.005 mag on 2026-01-01, run 'r', dataset 'd', pipeline 0.0.9)."""
    import datetime as dt

    import duckdb

    con = duckdb.connect(str(db))
    con.execute("""CREATE TABLE results (recorded_at TIMESTAMP, run VARCHAR, dataset VARCHAR,
        pipeline_version VARCHAR, input_sha256 VARCHAR, check_name VARCHAR, requirement VARCHAR, value DOUBLE,
        op VARCHAR, threshold DOUBLE, passed BOOLEAN)""")
    con.execute("INSERT INTO results VALUES (?, 'r', 'd', '0.0.9', '', 'photometry_bias', 'REQ-PHOT-001', 0.005, "
                "'<=', 0.01, true)", [dt.datetime(2026, 1, 1)])
    con.close()
