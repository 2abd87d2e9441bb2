"""``gaiasim compare``: two runs (a candidate build against the operational baseline), table by table.

Rows are matched by the key of their table (:data:`KEYS`); for each table the comparison counts the rows
only in A, the rows only in B, and, for each column of the schema (:mod:`pipeline.schemas`), the matched
rows whose values differ beyond tolerance, with a few examples. Partition columns of hive-partitioned
runs (``hour=...``) are not in the schema and are left out.

Tolerances (TOML, ``datasets/compare/tolerances.toml`` by default) apply to float columns only::

    [ccd]
    al_px = { abs = 1e-6 }          # px
    flux_e = { rel = 1e-6 }         # fraction of the larger |value|
    [transits]
    ra_deg = { abs = 1e-9, rel = 0 }

Two values agree when they are equal (NULL = NULL and NaN = NaN included) or, for a listed column, when
``|a - b| <= max(abs, rel * max(|a|, |b|))`` (as :func:`math.isclose`). Unlisted columns must be equal.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from gaiasim import packaged
from gaiasim.clitable import Column, Tabular
from gaiasim.spec import SpecError, load_toml
from gaiasim.validate.db import read_run_info
from pipeline import io, schemas

#: The columns that identify a row of each run table: rows of two runs with the same key are compared.
KEYS: dict[str, tuple[str, ...]] = {
    "transits": ("transit_id",),  # Gaia transit id: one row per transit
    "ccd": ("transit_id", "strip"),  # one image per strip (SM1/SM2, AF1..AF9) of a transit
    "alerts": ("alert_id",),  # smallest transit_id of the evidence: one alert per source or group
    "hk": ("obmt_ns", "channel"),  # one sample per channel per HK packet
    "hk_events": ("channel", "kind", "start_ns"),  # an event of a kind starts once per channel and sample
    "gaps": ("apid", "kind", "first_seq", "obmt_ns"),  # seq counts wrap at 16384: obmt_ns tells wraps apart
    "quarantine": ("file", "offset"),  # a span of octets of one TM file
}

#: The tolerance file used when none is given.
DEFAULT_TOLERANCES = packaged.DATASETS / "compare" / "tolerances.toml"
#: Examples kept per differing column (and per side for rows only in one run).
N_EXAMPLES = 5


@dataclass(frozen=True)
class Tolerance:
    abs_tol: float = 0.0  # absolute tolerance, in the column's unit
    rel_tol: float = 0.0  # relative tolerance, a fraction of the larger |value|


Tolerances = Mapping[str, Mapping[str, Tolerance]]  # table -> column -> tolerance


@dataclass(frozen=True)
class ColumnDiff:
    column: str
    n_differ: int  # matched rows whose values differ beyond tolerance
    examples: tuple[tuple[tuple, object, object], ...]  # (key, value in A, value in B), by key
    tolerance: Tolerance | None  # None: compared exactly


@dataclass(frozen=True)
class TableDiff:
    table: str
    key: tuple[str, ...]
    rows_a: int
    rows_b: int
    only_in_a: int
    only_in_b: int
    only_in_a_examples: tuple[tuple, ...]  # keys, by key
    only_in_b_examples: tuple[tuple, ...]
    duplicate_keys_a: int  # rows beyond the first with the same key (the key should be unique)
    duplicate_keys_b: int
    columns: tuple[ColumnDiff, ...]  # the columns that differ

    @property
    def differs(self) -> bool:
        return bool(self.only_in_a or self.only_in_b or self.duplicate_keys_a or self.duplicate_keys_b
                    or self.columns)


@dataclass(frozen=True)
class Comparison:
    run_a: str
    run_b: str
    tables: tuple[TableDiff, ...]

    @property
    def differs(self) -> bool:
        return any(t.differs for t in self.tables)


# --- tolerances --------------------------------------------------------------------------------------


def float_columns(table: str) -> list[str]:
    """Columns of ``table`` a tolerance may apply to: its float columns outside the key."""
    return [f.name for f in schemas.RUN_TABLES[table]
            if pa.types.is_floating(f.type) and f.name not in KEYS[table]]


def _tolerance(where: str, raw: object) -> Tolerance:
    if not isinstance(raw, dict) or not raw:
        raise SpecError(f"{where}: give {{ abs = ..., rel = ... }} (either or both), not {raw!r}")
    unknown = sorted(set(raw) - {"abs", "rel"})
    if unknown:
        raise SpecError(f"{where}.{unknown[0]}: unknown tolerance; allowed: abs, rel")
    values = {}
    for name in ("abs", "rel"):
        value = raw.get(name, 0.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise SpecError(f"{where}.{name} = {value!r}: must be a finite number >= 0")
        values[name] = float(value)
    return Tolerance(values["abs"], values["rel"])


def parse_tolerances(raw: Mapping, source: str = "tolerances") -> dict[str, dict[str, Tolerance]]:
    """Tolerances from a parsed TOML document; a one-line :class:`SpecError` names any unknown key."""
    out: dict[str, dict[str, Tolerance]] = {}
    for table, columns in raw.items():
        if table not in schemas.RUN_TABLES:
            raise SpecError(f"{source}: unknown table {table!r}; allowed: {', '.join(sorted(schemas.RUN_TABLES))}")
        allowed = float_columns(table)
        if not isinstance(columns, dict):
            raise SpecError(f"{source}: [{table}] must be a table of column = {{ abs = ..., rel = ... }}")
        for column, spec in columns.items():
            if column not in allowed:
                what = "not a float column" if column in schemas.RUN_TABLES[table].names else "unknown column"
                raise SpecError(f"{source}: {what} {table}.{column}; allowed in [{table}]: "
                                f"{', '.join(allowed) or 'none (every column is compared exactly)'}")
            out.setdefault(table, {})[column] = _tolerance(f"{source}: {table}.{column}", spec)
    return out


def load_tolerances(path: Path | None = None) -> dict[str, dict[str, Tolerance]]:
    """Tolerances from a TOML file (default :data:`DEFAULT_TOLERANCES`)."""
    path = Path(path) if path is not None else DEFAULT_TOLERANCES
    return parse_tolerances(load_toml(path), str(path))


# --- comparison --------------------------------------------------------------------------------------


def _q(name: str) -> str:
    """A quoted SQL identifier (names come from pipeline.schemas, never from the user)."""
    return '"' + name.replace('"', '""') + '"'


def _register(con: duckdb.DuckDBPyConnection, run_dir: Path, side: str, table: str) -> str:
    """View ``<side>_<table>`` over the run's Parquet (every part, hive partitions included); its name."""
    schema = schemas.RUN_TABLES[table]
    folder = Path(run_dir).resolve() / table
    view = f"{side}_{table}"
    if folder.is_dir() and any(folder.rglob("*.parquet")):
        rel = con.read_parquet(str(folder / "**" / "*.parquet"), hive_partitioning=True)
        missing = [n for n in schema.names if n not in rel.columns]
        if missing:
            raise io.InputError(f"{run_dir}: table {table} has no column {missing[0]!r} "
                                f"(expected {', '.join(schema.names)}); was it made by another pipeline version?")
    else:  # no part at all: an empty table
        rel = con.from_arrow(schema.empty_table())
    rel.select(*(_q(n) for n in schema.names)).create_view(view)
    return view


def _differ_sql(column: str, i: int, tol: Tolerance | None) -> tuple[str, dict[str, float]]:
    """SQL true when the column's values of ``a`` and ``b`` differ beyond ``tol``, and its parameters
    (named after ``i``, the column's position)."""
    a, b = f"a.{_q(column)}", f"b.{_q(column)}"
    same = f"{a} IS NOT DISTINCT FROM {b}"  # NULL = NULL, NaN = NaN (DuckDB orders NaN as a value)
    if tol is None:
        return f"NOT ({same})", {}
    close = (f"abs({a}::DOUBLE - {b}::DOUBLE) <= greatest($abs_{i}, "
             f"$rel_{i} * greatest(abs({a}::DOUBLE), abs({b}::DOUBLE)))")
    return f"NOT coalesce({same} OR {close}, false)", {f"abs_{i}": tol.abs_tol, f"rel_{i}": tol.rel_tol}


def _compare_table(con: duckdb.DuckDBPyConnection, table: str, run_a: Path, run_b: Path,
                   tolerances: Mapping[str, Tolerance]) -> TableDiff:
    key = KEYS[table]
    va, vb = _register(con, run_a, "a", table), _register(con, run_b, "b", table)
    keys = ", ".join(_q(k) for k in key)
    on = " AND ".join(f"a.{_q(k)} = b.{_q(k)}" for k in key)
    order = ", ".join(f"a.{_q(k)}" for k in key)

    def rows(view: str) -> int:
        return con.execute(f"SELECT count(*) FROM {_q(view)}").fetchall()[0][0]

    def duplicates(view: str) -> int:
        return con.execute(f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {_q(view)} "
                           f"GROUP BY {keys})").fetchall()[0][0]

    def only_in(first: str, other: str) -> tuple[int, tuple[tuple, ...]]:
        anti = f"FROM {_q(first)} AS a WHERE NOT EXISTS (SELECT 1 FROM {_q(other)} AS b WHERE {on})"
        n = con.execute(f"SELECT count(*) {anti}").fetchall()[0][0]
        examples = con.execute(f"SELECT {order} {anti} ORDER BY {order} LIMIT {N_EXAMPLES}").fetchall() if n else []
        return n, tuple(examples)

    n_a, ex_a = only_in(va, vb)
    n_b, ex_b = only_in(vb, va)
    joined = f"FROM {_q(va)} AS a JOIN {_q(vb)} AS b ON {on}"
    columns = [f.name for f in schemas.RUN_TABLES[table] if f.name not in key]
    differ = {c: _differ_sql(c, i, tolerances.get(c)) for i, c in enumerate(columns)}
    params = {k: v for _sql, p in differ.values() for k, v in p.items()}
    counts = con.execute(f"SELECT {', '.join(f'count_if({sql})' for sql, _p in differ.values())} {joined}",
                         params or None).fetchall()[0]
    diffs = []
    for column, n in zip(columns, counts, strict=True):
        if not n:
            continue
        sql, used = differ[column]
        rows_ = con.execute(f"SELECT {order}, a.{_q(column)}, b.{_q(column)} {joined} WHERE {sql} "
                            f"ORDER BY {order} LIMIT {N_EXAMPLES}", used or None).fetchall()
        examples = tuple((tuple(r[:len(key)]), r[len(key)], r[len(key) + 1]) for r in rows_)
        diffs.append(ColumnDiff(column, n, examples, tolerances.get(column)))
    return TableDiff(table, key, rows(va), rows(vb), n_a, n_b, ex_a, ex_b, duplicates(va), duplicates(vb),
                     tuple(diffs))


def compare_runs(run_a: Path, run_b: Path, tolerances: Tolerances | None = None) -> Comparison:
    """Compare every output table of two runs (see the module doc); ``tolerances`` default to those of
    :data:`DEFAULT_TOLERANCES` (give ``{}`` to compare every column exactly).

    Raises :class:`pipeline.io.InputError` when a folder is not a finished run (no run.json).
    """
    for run_dir in (run_a, run_b):
        read_run_info(run_dir)  # one clear line when run.json is missing or broken
    if tolerances is None:
        tolerances = load_tolerances()
    con = duckdb.connect(":memory:")
    try:
        tables = tuple(_compare_table(con, table, Path(run_a), Path(run_b), tolerances.get(table, {}))
                       for table in schemas.RUN_TABLES)
    finally:
        con.close()
    return Comparison(str(run_a), str(run_b), tables)


# --- rendering ---------------------------------------------------------------------------------------


def _show(value: object, width: int = 40) -> str:
    if isinstance(value, bytes):
        value = value.hex()
    text = "NULL" if value is None else repr(value) if isinstance(value, float) else str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _key_text(key: tuple) -> str:
    return ", ".join(_show(k) for k in key)


def _tolerance_text(tol: Tolerance | None) -> str:
    if tol is None:
        return "exact"
    return " ".join(f"{name} {value:g}" for name, value in (("abs", tol.abs_tol), ("rel", tol.rel_tol)) if value)


def summary_view(c: Comparison) -> Tabular:
    """One row per run table."""
    rows = []
    for t in c.tables:
        dup = f" (duplicate keys A {t.duplicate_keys_a}, B {t.duplicate_keys_b})" \
            if t.duplicate_keys_a or t.duplicate_keys_b else ""
        cols = ", ".join(f"{d.column} ({d.n_differ})" for d in t.columns) + dup
        rows.append((t.table, ", ".join(t.key), t.rows_a, t.rows_b, t.only_in_a, t.only_in_b, cols or "-",
                     "DIFFER" if t.differs else "same"))
    return Tabular(f"compare A={c.run_a} B={c.run_b}", [
        Column("table"), Column("key", fold=True, drop=2), Column("rows A"), Column("rows B"), Column("only in A"),
        Column("only in B"), Column("columns differing", fold=True, drop=1), Column("result")], rows)


def examples_view(c: Comparison) -> Tabular | None:
    """The examples (rows only in one run, values beyond tolerance); None when none differ."""
    if not c.differs:
        return None
    rows = []
    for t in c.tables:
        for side, examples in (("only in A", t.only_in_a_examples), ("only in B", t.only_in_b_examples)):
            rows += [(f"{t.table} ({side})", "", _key_text(key), "row" if side == "only in A" else "-",
                      "row" if side == "only in B" else "-") for key in examples]
        for d in t.columns:
            rows += [(f"{t.table}.{d.column}", _tolerance_text(d.tolerance), _key_text(key), _show(a), _show(b))
                     for key, a, b in d.examples]
    return Tabular(f"differences (up to {N_EXAMPLES} examples each)", [
        Column("table.column", fold=True), Column("tolerance", fold=True, drop=1), Column("key", fold=True),
        Column("A", fold=True), Column("B", fold=True)], rows)


def _plain(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or infinity
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def run_sha256(run_dir: Path) -> str:
    """A run's content hash: SHA-256 over the path and SHA-256 of every Parquet file of its tables (run.json,
    with its timings, left out): two runs with the same outputs have the same hash, whatever made them."""
    run_dir = Path(run_dir)
    paths = sorted(p for name in schemas.RUN_TABLES for p in (run_dir / name).rglob("*.parquet"))
    h = hashlib.sha256()
    for path, digest in zip(paths, io.sha256_files(paths), strict=True):
        h.update(f"{path.relative_to(run_dir).as_posix()}\0{digest}\n".encode())
    return h.hexdigest()


def _side(run_dir: str) -> dict:
    info = read_run_info(Path(run_dir))
    return {"run": str(Path(run_dir).resolve()), "sha256": run_sha256(Path(run_dir)),
            "sut": (info.get("sut") or {}).get("identity"), "pipeline_version": info.get("pipeline_version")}


def differences_sha256(diff: Mapping) -> str:
    """SHA-256 of what differs (the ``tables`` of :func:`to_json`, canonical JSON): an approval holds for
    these very differences."""
    return hashlib.sha256(json.dumps(diff["tables"], sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def to_json(c: Comparison) -> dict:
    """The comparison as plain JSON-able data (bytes as hex, NaN and infinities as strings), with what
    identifies it for a review (:mod:`gaiasim.validate.approvals`): each side's content hash and SUT
    (``baseline`` is run A, ``candidate`` run B) and the hash of the differences."""
    out = {
        "run_a": c.run_a,
        "run_b": c.run_b,
        "baseline": _side(c.run_a),
        "candidate": _side(c.run_b),
        "differs": c.differs,
        "tables": {
            t.table: {
                "key": list(t.key),
                "rows_a": t.rows_a,
                "rows_b": t.rows_b,
                "only_in_a": t.only_in_a,
                "only_in_b": t.only_in_b,
                "only_in_a_examples": _plain(t.only_in_a_examples),
                "only_in_b_examples": _plain(t.only_in_b_examples),
                "duplicate_keys_a": t.duplicate_keys_a,
                "duplicate_keys_b": t.duplicate_keys_b,
                "differs": t.differs,
                "columns": {
                    d.column: {
                        "n_differ": d.n_differ,
                        "tolerance": None if d.tolerance is None else {"abs": d.tolerance.abs_tol,
                                                                       "rel": d.tolerance.rel_tol},
                        "examples": [{"key": _plain(k), "a": _plain(a), "b": _plain(b)} for k, a, b in d.examples],
                    }
                    for d in t.columns
                },
            }
            for t in c.tables
        },
    }
    out["differences_sha256"] = differences_sha256(out)
    return out
