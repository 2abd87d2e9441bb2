"""The one place gaiasim opens DuckDB: a run's tables plus its dataset's truth, as views.

``gaiasim query`` and ``gaiasim validate`` both use :func:`connect`. Views:

- run tables: ``transits``, ``ccd``, ``quarantine``, ``gaps``, ``hk`` (pipeline.schemas)
- ``run_counts(key, value)``: the per-stage counts of run.json
- truth (when the run's dataset is at hand): ``truth_sources``, ``truth_transits``, ``truth_ccd``,
  ``truth_faults``, and ``catalogue`` (the reference catalogue the pipeline used)
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from gaiasim import dataset as ds
from gaiasim.sim.truth import TRUTH_TABLES
from pipeline import catalog, io, schemas
from pipeline.run import RUN_JSON


def read_run_info(run_dir: Path) -> dict:
    path = Path(run_dir) / RUN_JSON
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise io.InputError(
            f"{run_dir} is not a finished run: {RUN_JSON} is missing; run 'gaiasim run' first") from None
    except json.JSONDecodeError as exc:
        raise io.InputError(f"{path} is not valid JSON ({exc}); rerun the pipeline") from None


def connect(run_dir: Path, dataset: Path | None = None) -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB with views over the run (and its dataset's truth, if found)."""
    run_dir = Path(run_dir).resolve()
    info = read_run_info(run_dir)
    con = duckdb.connect(":memory:")
    for name in schemas.RUN_TABLES:
        con.execute(catalog.view_sql(name, catalog.parquet_glob(run_dir / name)))
    con.execute("CREATE TABLE run_counts (key VARCHAR, value BIGINT)")
    con.executemany("INSERT INTO run_counts VALUES (?, ?)",
                    [(k, int(v)) for k, v in info["counts"].items()])
    root = Path(dataset) if dataset else Path(info["dataset"])
    if (root / ds.MANIFEST).is_file():
        for name in TRUTH_TABLES:
            con.execute(catalog.view_sql(f"truth_{name}", catalog.parquet_glob(root / "truth" / name)))
        con.execute(catalog.view_sql("catalogue", catalog.parquet_glob(root / "catalogue")))
    return con


def has_truth(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE view_name = 'truth_transits'").fetchone()[0])
