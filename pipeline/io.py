"""The one module of the pipeline that touches files: TM reading and atomic Parquet / JSON writing."""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import stat
import threading
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import BinaryIO, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

T = TypeVar("T")


class InputError(Exception):
    """An input the operator must fix (missing file, wrong schema): one line, exit status 2."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def require_regular_files(paths: list[Path], root: Path) -> list[Path]:
    """``paths``, once each is known to be a regular file inside ``root`` (a symbolic link is followed only
    to a regular file inside ``root``); else one :class:`InputError` naming the first one that is not. A
    dataset is data that may come from anywhere: a link in it must not make a run read (and copy into its
    quarantine) a file elsewhere, and a FIFO or device would block or never end."""
    root = Path(root).resolve()
    for path in paths:
        shown = path.relative_to(root) if path.is_relative_to(root) else path
        try:
            target = path.resolve(strict=True)
            mode = target.stat().st_mode
        except (OSError, RuntimeError):
            raise InputError(f"{root.name}/{shown} is a link to nothing; remove it or put the file itself "
                             "there") from None
        if not target.is_relative_to(root):
            raise InputError(f"{root.name}/{shown} is a link to {target}, outside the dataset {root}; a run reads only "
                             "files inside its dataset: copy the file into it")
        if not stat.S_ISREG(mode):
            raise InputError(f"{root.name}/{shown} is {_kind(mode)}; a run reads only regular files: remove it or "
                             "put the file itself there")
    return paths


def read_tm_file(path: Path) -> np.ndarray:
    """The bytes of a TM file as a uint8 array (one read into a preallocated buffer)."""
    try:
        size = path.stat().st_size
        buf = np.empty(size, dtype=np.uint8)
        with open(path, "rb", buffering=0) as f:
            got = f.readinto(memoryview(buf))
    except OSError as exc:
        raise InputError(f"cannot read TM file {path}: {exc.strerror}; check the dataset path") from exc
    return buf[:got]


def sha256_file(path: Path, chunk_octets: int = 1 << 22) -> str:
    h = hashlib.sha256()
    buf = bytearray(chunk_octets)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def sha256_files(paths: list[Path]) -> list[str]:
    """:func:`sha256_file` of each path, in order, on a thread per core (hashlib and file reads release the
    GIL: a dataset's tens of GB hash about twice as fast on 2 cores as on one)."""
    if len(paths) < 2:
        return [sha256_file(p) for p in paths]
    with ThreadPoolExecutor(max_workers=min(len(paths), os.cpu_count() or 1)) as pool:
        return list(pool.map(sha256_file, paths))


class OutputError(InputError):
    """An output that cannot be written (disk full, read-only or unwritable folder): one line, exit 2.
    Nothing half-written is left: the temporary file is removed and the target is untouched."""


def _short_write_reason(folder: Path, exc: OSError) -> str:
    """Why a write without an errno failed (numpy reports a short write as 'N requested and M written').

    A short write to a file is the file system running out of room, however much is free by the time the
    reason is looked up: a run removes its temporaries as it stops, and the other hour's thread may have freed
    its own (the disk-full test saw 'No space' missing from the line once, on a loaded machine)."""
    first = str(exc).splitlines()[0]
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if free is not None and free < 1 << 20:
        return f"No space left on device ({free} bytes free)"
    if "requested and" in first:
        return f"No space left on device (a short write: {first}; {free} bytes free after it)"
    return first


def _output_error(path: Path, exc: OSError) -> OutputError:
    reason = os.strerror(exc.errno) if exc.errno else _short_write_reason(path.parent, exc)
    return OutputError(f"cannot write {path}: {reason}; free disk space or choose a writable --out folder, "
                       "then run the same command again")


#: The temporaries being written in this process (:func:`_atomic`): an interrupted command removes them
#: before it ends (:func:`remove_temporaries`), so it leaves no hidden partial file behind. A temporary is
#: created and registered under ``_LOCK``, and none is created once the command is ending (``_ENDING``):
#: a writer thread could otherwise create its file just after the removal and leave it behind.
_WRITING: set[Path] = set()
_LOCK = threading.RLock()  # re-entrant: the signal handler may interrupt its own thread inside the lock
_ENDING = threading.Event()


def remove_temporaries() -> None:
    """Remove every temporary this process is writing and create no other (called as an interrupted
    command ends: the process exits right after)."""
    with _LOCK:
        _ENDING.set()
        for tmp in list(_WRITING):
            try:
                tmp.unlink()
            except OSError:
                pass


@contextmanager
def named_temporary(tmp: Path) -> Iterator[Path]:
    """Register ``tmp``, a temporary that its writer must open by name (a DuckDB database, with its
    ``.wal``), so that an interrupted command removes it too (:func:`remove_temporaries`)."""
    names = {Path(tmp), Path(tmp).with_name(Path(tmp).name + ".wal")}
    with _LOCK:
        if _ENDING.is_set():
            threading.Event().wait()  # the command is ending (os._exit): start no file
        _WRITING.update(names)
    try:
        yield Path(tmp)
    finally:
        _WRITING.difference_update(names)


def _open_binary(path: Path) -> BinaryIO:
    return open(path, "wb")


@contextmanager
def _atomic(path: Path, opener: Callable[[Path], BinaryIO] = _open_binary) -> Iterator[BinaryIO]:
    """A file open for writing (``opener``, a binary ``open`` by default) under a temporary name beside
    ``path``; closed and renamed onto ``path`` when the block succeeds, removed when it fails (a reader
    never sees a partial file under a real name). The block writes to the file object, never to the
    temporary's name: once it is removed, nothing can bring it back."""
    path = Path(path)
    # Process and thread in the name: two writers of one path (a retried task) never share a temporary.
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _LOCK:
            if _ENDING.is_set():
                threading.Event().wait()  # the command is ending (os._exit): start no file
            f = opener(tmp)
            _WRITING.add(tmp)
        with f:
            yield f
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _output_error(path, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        _WRITING.discard(tmp)


#: Codec of the run's per-hour tables (CCD images and transits, nearly all of a run's bytes), written on
#: the run's critical path: LZ4 (LZ4_RAW in the file) took 26-33 % less CPU than zstd to write them (2 M CCD
#: rows: 0.16 against 0.24 s) for files 5-7 % larger. Everything else, datasets included, stays on zstd.
HOT_CODEC = "lz4"


def write_table(table: pa.Table, schema: pa.Schema, path: Path, compression: str = "zstd") -> None:
    """Write ``table`` as Parquet (``compression``: zstd, or :data:`HOT_CODEC`) at ``path`` atomically
    (temporary name, then rename).

    Refuses a table whose schema differs from ``schema``: schemas are defined once, in
    :mod:`pipeline.schemas` (or beside the simulator's own tables).

    The file carries :func:`pandas_metadata`, so that ``pandas.read_parquet`` keeps nullable integer
    columns exact (as ``Int64``, not float64).
    """
    if not table.schema.equals(schema, check_metadata=False):
        raise ValueError(f"table for {path.name} does not match its schema:\n{table.schema}\nexpected:\n{schema}")
    encoding = _column_encoding(schema)
    with _atomic(path, lambda tmp: pa.OSFile(str(tmp), "wb")) as f:
        pq.write_table(table.cast(schema).replace_schema_metadata(pandas_metadata(schema)), f,
                       compression=compression, use_dictionary=[name for name in schema.names if name not in encoding],
                       column_encoding=encoding)


def pandas_metadata(schema: pa.Schema) -> dict[bytes, bytes] | None:
    """Schema metadata under which pandas reads every nullable integer column of ``schema`` as a nullable
    integer (``Int64``, ``Int8``, ...), None if it has none. Without it ``pandas.read_parquet`` turns such a
    column into float64 as soon as it holds a null, and a 64-bit id above 2**53 is no longer itself.

    pyarrow's own ``pandas`` key (what ``pa.Table.from_pandas`` writes; pyarrow ``pandas_compat``): pandas
    restores a column's dtype from its ``numpy_type``. Only those columns are listed, other columns read as
    without it; no library version is written, so the bytes of a file do not depend on the writer's pandas.
    """
    columns = [{"name": f.name, "field_name": f.name, "pandas_type": str(f.type),
                "numpy_type": f"{'UInt' if pa.types.is_unsigned_integer(f.type) else 'Int'}{f.type.bit_width}",
                "metadata": None}
               for f in schema if f.nullable and pa.types.is_integer(f.type)]
    if not columns:
        return None
    meta = {"index_columns": [], "column_indexes": [], "columns": columns}
    return {b"pandas": json.dumps(meta, separators=(",", ":")).encode()}


def write_or_remove(table: pa.Table, schema: pa.Schema, path: Path) -> None:
    """:func:`write_table` when ``table`` has rows, else remove ``path`` (a part that a redone hour or day
    no longer needs, e.g. a quarantine part whose packets are now fine): a table's parts are always those
    of the last pass."""
    if table.num_rows:
        write_table(table, schema, path)
    else:
        Path(path).unlink(missing_ok=True)


def _column_encoding(schema: pa.Schema) -> dict[str, str]:
    """Parquet encodings that suit our columns (measured on a scale-0.1 day: 32-41 % smaller files and
    3-6x faster writes than dictionary + zstd): floats byte-stream-split (the exponent and high mantissa
    bytes compress, the noise bits do not), integers delta-coded (ids, times and sequence counters grow
    steadily). Other columns (strings, booleans) keep dictionary encoding."""
    encoding = {}
    for field in schema:
        if pa.types.is_floating(field.type):
            encoding[field.name] = "BYTE_STREAM_SPLIT"
        elif pa.types.is_integer(field.type):
            encoding[field.name] = "DELTA_BINARY_PACKED"
    return encoding


def write_json(obj: dict, path: Path) -> None:
    with _atomic(path) as f:
        f.write((json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def write_npy(array: np.ndarray, path: Path) -> None:
    """Write ``array`` as .npy atomically (no pickles: plain and structured dtypes only)."""
    with _atomic(path) as f:
        np.save(f, array, allow_pickle=False)


def write_npy_parts(dtype: np.dtype, parts: list[Path], n: int, path: Path) -> None:
    """Write the raw records of the files ``parts`` (in order, ``n`` records of ``dtype`` in all) as one
    .npy at ``path``, atomically and streaming (memory holds a 4 MiB buffer, whatever ``n``)."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": (n,)}
    with _atomic(path) as f:
        np.lib.format.write_array_header_1_0(f, header)
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, f, 1 << 22)


def write_bytes(data: bytes | np.ndarray, path: Path) -> None:
    with _atomic(path) as f:
        f.write(memoryview(data))


def append_bytes(data: bytes | np.ndarray, path: Path) -> None:
    """Append ``data`` to the work file ``path`` (a part that a pass builds up and that is read only once
    the pass has finished; a failed pass redoes it from scratch). A write that fails (disk full,
    read-only) is an :class:`OutputError`, like a failed :func:`write_table`."""
    try:
        with open(path, "ab") as f:
            f.write(memoryview(data))
    except OSError as exc:
        raise _output_error(Path(path), exc) from None


LOCK_NAME = ".lock"


def remove_abandoned(folder: Path) -> int:
    """Remove the temporary files (:func:`_atomic`) that killed writers left under ``folder``; call it
    holding the folder's lock (:func:`locked_folder`), when no other writer can be at work. Returns how
    many were removed."""
    stale = [p for p in Path(folder).rglob(".*.tmp-*") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def folder_in_use(folder: Path) -> bool:
    """Whether a process holds ``folder``'s lock (:func:`locked_folder`) right now: a run writing into it."""
    try:
        fd = os.open(Path(folder) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@contextmanager
def locked_folder(folder: Path, what: str = "run") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if needed) while the block runs.

    A second process asking for the same folder gets an :class:`InputError` at once instead of two
    writers mixing their outputs. The lock is the kernel's (``flock``): it goes with the process, so a
    killed run never leaves a stale lock behind.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise InputError(f"cannot write to {folder}: {exc.strerror}; choose a writable --out folder") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"{folder} is in use by another gaiasim {what}; wait for it to finish or choose "
                             "another --out folder") from None
        yield folder
    finally:
        os.close(fd)


def load_config(path: Path | Traversable, cls: type[T], error: type[InputError], what: str, example: str) -> T:
    """The dataclass ``cls`` from a TOML file whose keys are its field names (all optional); every problem is
    one ``error`` line naming the file, and the fix: no file, bad TOML, an unknown key (with the allowed ones),
    or a value ``cls`` refuses (raising ``error``). ``what`` names the config ("the alert config"), ``example``
    the packaged file to copy."""
    path = Path(path) if isinstance(path, str) else path
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise error(f"{path}: no such file; give {what} as TOML (see {example})") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    allowed = sorted(f.name for f in dataclasses.fields(cls))
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise error(f"{path}: unknown key {unknown[0]!r} in {what}; allowed keys: {', '.join(allowed)}")
    try:
        return cls(**raw)
    except error as exc:
        raise error(f"{path}: {exc}") from None

