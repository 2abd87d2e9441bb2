"""``gaiasim conform RUN``: does a run folder keep the run contract (docs/run-contract.md)?

Whatever system made the run, the harness judges it through the contract alone: the layout
(:mod:`pipeline.layout`), every table's schema (:mod:`pipeline.schemas`), run.json against its JSON Schema,
the counts against the tables' rows, and the inputs' SHA-256 against the dataset's manifest. Every
violation is listed (none stops the others from being looked for); validate, compare and report refuse a
run with any.

Only Parquet footers are read (schemas, row counts, null counts), so a full day conforms in seconds.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import io, layout


@dataclass(frozen=True)
class Violation:
    where: str  # a path inside the run folder, or run.json:/json/pointer
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


class NonConforming(Exception):
    """A run that breaks the contract: the system under test failed (exit status 1), the list says how."""

    def __init__(self, run_dir: Path, violations: list[Violation]) -> None:
        self.run_dir, self.violations = run_dir, violations
        lines = [f"  {v}" for v in violations]
        super().__init__("\n".join([f"{run_dir} does not keep the run contract (docs/run-contract.md), "
                                    f"{len(violations)} violation(s):", *lines]))


@dataclass(frozen=True)
class Summary:
    tables: int
    files: int
    rows: dict[str, int]
    inputs: int


def _logical(t: pa.DataType) -> pa.DataType:
    """The type a reader sees: dictionary encoding and large offsets are storage choices."""
    if pa.types.is_dictionary(t):
        return _logical(t.value_type)
    if pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    if pa.types.is_large_list(t) or pa.types.is_list(t):
        return pa.list_(_logical(t.value_type))
    return t


_PARTITION = re.compile(r"^([a-z_]+)=(-?[0-9]+)$")


def _table_files(run_dir: Path, name: str, out: list[Violation]) -> list[Path]:
    """The Parquet files of table ``name``; anything else in its folder is a violation."""
    folder = run_dir / name
    keys = layout.PARTITIONS.get(name, ())
    files = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(run_dir)
        parts = path.relative_to(folder).parts
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            out.append(Violation(str(rel), "not a regular file or folder"))
            continue
        if path.is_dir():
            m = _PARTITION.match(parts[-1])
            if len(parts) > len(keys) or not m or m.group(1) != keys[len(parts) - 1]:
                allowed = "/".join(f"{k}=<integer>" for k in keys) or "none: files directly in the folder"
                out.append(Violation(str(rel), f"unexpected folder; partitions of {name}: {allowed}"))
            continue
        if path.suffix != ".parquet" or path.name.startswith("."):
            out.append(Violation(str(rel), "stray file (a half-written temporary?); a table folder holds only "
                                           "Parquet files"))
            continue
        if len(parts) - 1 > len(keys) or any(not _PARTITION.match(p) for p in parts[:-1]):
            continue  # its folder is reported
        files.append(path)
    if not files:
        out.append(Violation(f"{name}/", "no Parquet file (an empty table is one file with no rows)"))
    return files


def _check_file(path: Path, rel: str, schema: pa.Schema, out: list[Violation]) -> int:
    """Violations of one Parquet file against its table's schema; its number of rows."""
    try:
        meta = pq.ParquetFile(path).metadata
        found = meta.schema.to_arrow_schema()
    except (pa.ArrowException, OSError) as exc:
        out.append(Violation(rel, f"not a readable Parquet file ({str(exc).splitlines()[0]})"))
        return 0
    expected = {f.name: f for f in schema}
    for f in found:
        if f.name not in expected:
            out.append(Violation(rel, f"column {f.name} is not in the contract"))
        elif _logical(f.type) != _logical(expected[f.name].type):
            out.append(Violation(rel, f"column {f.name} is {f.type}, the contract says {expected[f.name].type}"))
    for name in expected.keys() - set(found.names):
        out.append(Violation(rel, f"column {name} is missing"))
    for i, f in enumerate(meta.schema.to_arrow_schema()):
        if f.name in expected and not expected[f.name].nullable:
            nulls = 0
            for g in range(meta.num_row_groups):
                stats = meta.row_group(g).column(i).statistics
                nulls += stats.null_count if stats is not None and stats.has_null_count else 0
            if nulls:
                out.append(Violation(rel, f"column {f.name} holds {nulls} nulls; the contract allows none"))
    return meta.num_rows


def _check_run_json(run_dir: Path, out: list[Violation]) -> dict | None:
    path = run_dir / layout.RUN_JSON
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        out.append(Violation(layout.RUN_JSON, "missing"))
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        out.append(Violation(layout.RUN_JSON, f"not valid JSON ({exc})"))
        return None
    validator = jsonschema.Draft202012Validator(layout.run_json_schema())
    errors = sorted(validator.iter_errors(info), key=lambda e: list(e.absolute_path))
    for e in errors:
        pointer = "/" + "/".join(str(p) for p in e.absolute_path)
        out.append(Violation(f"{layout.RUN_JSON}:{pointer}", e.message))
    if errors or not isinstance(info, dict):
        return None
    if info["status"] != "complete" and not (info["status"] == "watching" and "counts" in info):
        out.append(Violation(f"{layout.RUN_JSON}:/status", f"{info['status']!r}: the run did not finish"))
        return None
    return info


def _check_counts(info: dict, rows: dict[str, int], out: list[Violation]) -> None:
    c = info["counts"]
    for table, key in layout.ROW_COUNTS.items():
        if table in rows and c[key] != rows[table]:
            out.append(Violation(f"{layout.RUN_JSON}:/counts/{key}", f"{c[key]}, but {table}/ holds {rows[table]} "
                                                                      "rows"))
    balance = c["packets_used"] + c["duplicates_dropped"] + c["packets_quarantined"]
    if c["packets_read"] != balance:
        out.append(Violation(f"{layout.RUN_JSON}:/counts/packets_read",
                             f"{c['packets_read']} read != {balance} used + duplicates + quarantined"))
    if "balance_ok" in c and c["balance_ok"] != (c["packets_read"] == balance):
        out.append(Violation(f"{layout.RUN_JSON}:/counts/balance_ok", f"{c['balance_ok']} contradicts the counts"))
    if c["transits_matched"] > c["transits"]:
        out.append(Violation(f"{layout.RUN_JSON}:/counts/transits_matched",
                             f"{c['transits_matched']} > {c['transits']} transits"))
    n_tm = sum(1 for k in info["inputs"] if k.startswith("tm/"))
    if c["files"] != n_tm:
        out.append(Violation(f"{layout.RUN_JSON}:/counts/files", f"{c['files']}, but inputs lists {n_tm} TM files"))


def dataset_tm_sha256(dataset: Path) -> dict[str, str]:
    """SHA-256 of the dataset's TM files by ``tm/NAME``: from its manifest (dataset.json) when it has one,
    else computed."""
    try:
        files = json.loads((dataset / "dataset.json").read_text())["files"]
        return {k: v for k, v in files.items() if k.startswith("tm/")}
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
        out = {}
        for path in sorted((dataset / "tm").glob("*.tm")):
            with path.open("rb") as f:
                out[f"tm/{path.name}"] = hashlib.file_digest(f, "sha256").hexdigest()
        return out


def _check_inputs(info: dict, dataset: Path, out: list[Violation]) -> None:
    if not (dataset / "tm").is_dir():
        out.append(Violation(f"{layout.RUN_JSON}:/dataset", f"{dataset} is no dataset (no tm/ folder); pass "
                                                            "--dataset"))
        return
    have = dataset_tm_sha256(dataset)
    read = {k: v for k, v in info["inputs"].items() if k.startswith("tm/")}
    for name in sorted(have.keys() - read.keys()):
        out.append(Violation(f"{layout.RUN_JSON}:/inputs", f"{name} of the dataset was not read"))
    for name in sorted(read.keys() - have.keys()):
        out.append(Violation(f"{layout.RUN_JSON}:/inputs/{name}", "not a TM file of the dataset"))
    for name in sorted(read.keys() & have.keys()):
        if read[name] != have[name]:
            out.append(Violation(f"{layout.RUN_JSON}:/inputs/{name}", f"SHA-256 {read[name][:12]}... differs from "
                                                                      f"the dataset's {have[name][:12]}..."))


def check(run_dir: Path, dataset: Path | None = None) -> tuple[list[Violation], Summary]:
    """Every violation of the run contract in ``run_dir`` (empty: it conforms), and what was looked at.

    ``dataset``: the dataset the run read (default: run.json's). Raises InputError for a folder that does
    not exist or a run being written.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise io.InputError(f"run folder {run_dir} not found; give a folder made by 'gaiasim run'")
    if io.folder_in_use(run_dir):
        raise io.InputError(f"{run_dir} is being written now; wait for the run to finish")
    out: list[Violation] = []
    info = _check_run_json(run_dir, out)
    rows, n_files = {}, 0
    tables = {**layout.TABLES, **{k: v for k, v in layout.OPTIONAL_TABLES.items() if (run_dir / k).exists()}}
    for name, schema in tables.items():
        if not (run_dir / name).is_dir():
            out.append(Violation(f"{name}/", "table missing"))
            continue
        files = _table_files(run_dir, name, out)
        n_files += len(files)
        rows[name] = sum(_check_file(f, str(f.relative_to(run_dir)), schema, out) for f in files)
    if info is not None:
        _check_counts(info, rows, out)
        _check_inputs(info, Path(dataset) if dataset else Path(info["dataset"]), out)
    summary = Summary(len(tables), n_files, rows, len(info["inputs"]) if info else 0)
    return out, summary


def require(run_dir: Path, dataset: Path | None = None) -> None:
    """Refuse (:class:`NonConforming`) a run that breaks the contract."""
    violations, _ = check(run_dir, dataset)
    if violations:
        raise NonConforming(Path(run_dir), violations)
