"""``catalog.duckdb``: DuckDB views over a run's Parquet tables (regenerable; Parquet is the contract).

Views use absolute paths, so the database opens from any working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from pipeline import io, schemas
from pipeline.layout import parquet_glob, view_sql

CATALOG = "catalog.duckdb"


def write_catalog(run_dir: Path) -> Path:
    """(Re)create ``catalog.duckdb`` in ``run_dir`` with one view per run table; atomic."""
    run_dir = Path(run_dir).resolve()
    tmp = run_dir / f".{CATALOG}.tmp-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    try:
        with io.named_temporary(tmp):
            con = duckdb.connect(str(tmp))
            try:
                for name in schemas.RUN_TABLES:
                    con.execute(view_sql(name, parquet_glob(run_dir / name)))
            finally:
                con.close()
            os.replace(tmp, run_dir / CATALOG)
    except (duckdb.Error, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise io.OutputError(f"cannot write {run_dir / CATALOG}: {str(exc).splitlines()[0]}; free disk space or "
                             "choose a writable --out folder, then run the same command again") from None
    return run_dir / CATALOG
