"""A run's tables in Python, ids exact: :func:`read_table` (Arrow, pandas or polars) and :func:`open_catalog`.

Plain ``pandas.read_parquet`` turns an integer column holding a null (``transits.source_id``, an unmatched
transit) into float64, and a 64-bit id above 2**53 (every transit_id, most source_ids) is then no longer
itself. The built-in pipeline's files carry the metadata that makes pandas read such a column as ``Int64``
(pipeline.io.pandas_metadata); any other system's need not: :func:`read_table` gives exact ids from any run
that keeps the contract. docs/clients.md shows the calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.dataset as pads

from pipeline import layout
from pipeline.io import InputError, pandas_metadata

BACKENDS = ("arrow", "pandas", "polars")


def _schema(name: str) -> pa.Schema:
    schema = layout.TABLES.get(name) or layout.OPTIONAL_TABLES.get(name)
    if schema is None:
        known = ", ".join([*layout.TABLES, *layout.OPTIONAL_TABLES])
        raise InputError(f"{name!r} is not a table of a run; name one of {known}")
    return schema


def read_table(run_dir: Path | str, name: str, backend: Literal["arrow", "pandas", "polars"] = "arrow",
               columns: list[str] | None = None) -> Any:
    """Table ``name`` of the run ``run_dir`` (every Parquet file of its folder, Hive partitions included),
    with the contract's column types (pipeline.schemas; a ``strip`` stored as plain strings is read as the
    contract's dictionary), as a ``pyarrow.Table``, a ``pandas.DataFrame`` (a nullable integer column as
    ``Int64`` and the like: ids exact, nulls ``<NA>``) or a ``polars.DataFrame`` (integers are nullable
    there). ``columns``: a subset, in that order. The partition key (``hour``) is not a column of the table."""
    if backend not in BACKENDS:
        raise InputError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    schema = _schema(name)
    folder = Path(run_dir) / name
    if not folder.is_dir():
        raise InputError(f"{folder} is missing: {run_dir} is not a finished run (docs/run-contract.md); "
                         "run 'gaiasim run' first, or name the run folder")
    unknown = [c for c in columns or [] if c not in schema.names]
    if unknown:
        raise InputError(f"{name} has no column {', '.join(unknown)}; its columns: {', '.join(schema.names)}")
    # Files whose names begin with '.' (a writer's temporaries) or '_' are not read (pyarrow's default).
    table = pads.dataset(folder, schema=schema, format="parquet").to_table(columns=columns)
    table = table.replace_schema_metadata(pandas_metadata(table.schema))
    if backend == "pandas":
        _require("pandas")
        return table.to_pandas()
    if backend == "polars":
        pl = _require("polars")
        return pl.from_arrow(table)
    return table


def _require(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise InputError(f"backend {module} needs the {module} package: pip install {module}") from None


def open_catalog(run_dir: Path | str):
    """The run's ``catalog.duckdb`` (built-in pipeline), read-only, its views reading the run's own files
    wherever the run now lies (DuckDB's ``file_search_path`` set to the run folder)."""
    import duckdb

    path = Path(run_dir) / layout.CATALOG
    if not path.is_file():
        raise InputError(f"{path} is missing (the built-in pipeline writes it); read the tables with "
                         "gaiasim.read_table or 'gaiasim query' instead")
    con = duckdb.connect(str(path), read_only=True)
    folder = str(Path(run_dir).resolve()).replace("'", "''")
    con.execute(f"SET file_search_path = '{folder}'")
    return con
