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
