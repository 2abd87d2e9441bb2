"""``catalog.duckdb``: DuckDB views over a run's Parquet tables (regenerable; Parquet is the contract).

What a reader of the file meets (docs/clients.md):

- **Any DuckDB from 1.1 on opens it** (:data:`STORAGE_VERSION`): the DuckDB CLI of the current release
  and older ones, not only the Python package that wrote it.
- **It travels with the run**: a view reads ``<table>/**/*.parquet`` relative to the run folder, not an
  absolute path. DuckDB resolves a relative path against its ``file_search_path`` setting, else the
  working directory: ``cd RUN && duckdb -readonly catalog.duckdb``, or from anywhere
  ``duckdb -readonly -cmd "SET file_search_path = 'RUN'" RUN/catalog.duckdb``
  (``gaiasim.tables.open_catalog`` does the latter).
- **Units and meanings**: every view and every column carries a comment (``COMMENT ON``; in
  ``duckdb_columns()``, ``duckdb_views()``): the unit and doc of the contract's field metadata
  (pipeline.schemas), of the partition keys (pipeline.layout.PARTITION_KEYS) and of the UTC columns.
- **UTC beside OBMT**: each OBMT column (pipeline.schemas.obmt_columns) has a TIMESTAMP beside it
  (:func:`utc_name`: ``obmt_ns`` -> ``utc``, ``start_ns`` -> ``start_utc``, ``first_obmt_ns`` ->
  ``first_utc``), and the macro ``obmt_utc(obmt_ns)`` converts any OBMT: pipeline.timescale's relation
  over the run's day.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline import io, layout, schemas, timescale

CATALOG = layout.CATALOG
#: The DuckDB release whose storage the file is written for: 1.1, the oldest this project supports
#: (pyproject ``duckdb>=1.1``). A file in the writer's own, newer storage is refused by older readers
#: ("Trying to read a database file with version number 69, but we can only read versions between 64 and
#: 68": the DuckDB 1.5 CLI before a DuckDB 2.0 file). DuckDB's storage_compatibility_version setting; its
#: docs, "Storage Versions and Format" (https://duckdb.org/docs/stable/internals/storage).
STORAGE_VERSION = "v1.1.0"
#: The macro converting an OBMT (ns) into UTC.
UTC_MACRO = "obmt_utc"


def utc_name(column: str) -> str:
    """The name of the UTC column beside the OBMT column ``column``: ``obmt_ns`` -> ``utc``,
    ``first_obmt_ns`` -> ``first_utc``, ``start_ns`` -> ``start_utc``."""
    stem = column.removesuffix("_ns").removesuffix("obmt").rstrip("_")
    return f"{stem}_utc" if stem else "utc"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _field_comment(field: pa.Field) -> str:
    meta = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
    unit, doc = meta.get("unit", ""), meta.get("doc", "")
    return f"[{unit}] {doc}" if unit else doc


def _utc_comment(column: str, relation: timescale.UtcRelation) -> str:
    return (f"UTC of {column} (TIMESTAMP, microseconds, rounded down; NULL outside OBMT {relation.start_ns}.."
            f"{relation.end_ns} ns, the run's day and an hour each side): the mission's OBMT -> TCB relation "
            "and the IAU time scales (pipeline.timescale)")


def _view_sql(name: str, schema: pa.Schema, relation: timescale.UtcRelation) -> str:
    utc = "".join(f", {relation.sql(c)} AS {utc_name(c)}" for c in schemas.obmt_columns(schema))
    files = _quote(f"{name}/**/*.parquet")  # relative to the run folder: see the module doc
    return f"CREATE VIEW {name} AS SELECT *{utc} FROM read_parquet({files}, hive_partitioning = true)"


def _comments(con: duckdb.DuckDBPyConnection, name: str, schema: pa.Schema,
              relation: timescale.UtcRelation) -> list[str]:
    """COMMENT ON the view ``name`` and on each of its columns; a column without a description is an error."""
    docs = {f.name: _field_comment(f) for f in schema}
    docs |= {key: f"[{unit}] {doc}" for key, (unit, doc) in layout.PARTITION_KEYS.items()}
    docs |= {utc_name(c): _utc_comment(c, relation) for c in schemas.obmt_columns(schema)}
    columns = [row[0] for row in con.execute(f"DESCRIBE {name}").fetchall()]
    missing = [c for c in columns if c not in docs]
    if missing:
        raise ValueError(f"view {name}: no description for column(s) {', '.join(missing)} (pipeline.schemas)")
    table = (f"the run's {name}/ table (docs/run-contract.md); it reads {name}/**/*.parquet relative to the run "
             "folder: open the catalogue from the run folder or SET file_search_path to it")
    return [f"COMMENT ON VIEW {name} IS {_quote(table)}"] + [
        f"COMMENT ON COLUMN {name}.{column} IS {_quote(docs[column])}" for column in columns]


def write_catalog(run_dir: Path, span_ns: tuple[int, int]) -> Path:
    """(Re)create ``catalog.duckdb`` in ``run_dir`` with one view per run table (``span_ns``: the day's OBMT
    span [start, end), for the UTC columns); atomic."""
    run_dir = Path(run_dir).resolve()
    tmp = run_dir / f".{CATALOG}.tmp-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    relation = timescale.utc_relation(span_ns)
    try:
        with io.named_temporary(tmp):
            con = duckdb.connect(str(tmp), config={"storage_compatibility_version": STORAGE_VERSION})
            try:
                # The views' relative paths bind against the run folder here (and wherever a reader sets it).
                con.execute(f"SET file_search_path = {_quote(str(run_dir))}")
                con.execute(f"CREATE MACRO {UTC_MACRO}(obmt_ns) AS {relation.sql('obmt_ns')}")
                con.execute(f"COMMENT ON MACRO {UTC_MACRO} IS {_quote(_utc_comment('an OBMT (ns)', relation))}")
                for name, schema in schemas.RUN_TABLES.items():
                    con.execute(_view_sql(name, schema, relation))
                    for statement in _comments(con, name, schema, relation):
                        con.execute(statement)
            finally:
                con.close()
            os.replace(tmp, run_dir / CATALOG)
    except (duckdb.Error, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise io.OutputError(f"cannot write {run_dir / CATALOG}: {str(exc).splitlines()[0]}; free disk space or "
                             "choose a writable --out folder, then run the same command again") from None
    return run_dir / CATALOG
