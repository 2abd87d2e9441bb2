"""The run folder, as the contract between a system under test and the harness (docs/run-contract.md).

A run folder holds one folder per table of :data:`pipeline.schemas.RUN_TABLES`, each with one Parquet file
or more (an empty table too), and ``run.json`` (described by the JSON Schema ``run.schema.json``, package
data of :mod:`pipeline.data`). ``transits`` and ``ccd`` may be split into Hive partitions ``hour=<int>``
(OBMT hours); the other tables hold their files directly. Anything else at the top is the system under
test's own (``catalog.duckdb``, logs) and is ignored, except ``latency/`` (watch mode), which follows
:data:`pipeline.schemas.LATENCY` when present.

A contract module: it imports nothing of the pipeline but the other contract modules.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pipeline import schemas
from pipeline.data import packaged

RUN_JSON = "run.json"
#: The built-in pipeline's DuckDB views over its run (pipeline.catalog; docs/clients.md): a file of the
#: system under test's own, which the contract ignores, named here so that the harness opens it by name.
CATALOG = "catalog.duckdb"
#: A dataset's CCD calibration (:data:`pipeline.schemas.CCD_CALIBRATION`), relative to the dataset folder;
#: optional: a system under test uses its nominal calibration without it.
CCD_CALIBRATION = "calibration/ccd.parquet"
#: The JSON Schema of run.json (package data of :mod:`pipeline.data`).
RUN_SCHEMA = "run.schema.json"
#: Tables every finished run holds, by folder name.
TABLES = schemas.RUN_TABLES
#: Tables a run may hold, by folder name (checked when present).
OPTIONAL_TABLES = {"latency": schemas.LATENCY}
#: Hive partition keys a table's files may sit under (``hour=19427/part-0.parquet``); integers.
PARTITIONS: dict[str, tuple[str, ...]] = {"transits": ("hour",), "ccd": ("hour",)}
#: Unit and meaning of each partition key (as a column, when a reader takes Hive partitioning).
PARTITION_KEYS: dict[str, tuple[str, str]] = {
    "hour": ("h", "Hive partition of the file: the OBMT hour (OBMT ns // 3 600 000 000 000) of its transits"),
}
#: run.json counts that must equal a table's number of rows.
ROW_COUNTS = {"transits": "transits", "ccd": "ccd_images", "alerts": "alerts", "hk": "hk_samples",
              "quarantine": "packets_quarantined"}


def run_json_schema() -> dict:
    """The JSON Schema of run.json (draft 2020-12)."""
    return json.loads(packaged(RUN_SCHEMA).read_text())


def parquet_glob(folder: Path) -> Path:
    """Every Parquet file under ``folder``, Hive partitions included (absolute)."""
    return Path(folder).resolve() / "**" / "*.parquet"


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def view_sql(name: str, files: Path) -> str:
    """SQL creating view ``name`` (a plain identifier) over the Parquet ``files`` (a path or a glob; absolute)."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"view name {name!r} is not a plain identifier")
    return f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet({_quote(files)}, hive_partitioning = true)"
