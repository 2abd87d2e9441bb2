"""Where datasets and runs live: a local folder or a prefix on object storage, as one pyarrow filesystem and a
root path in it, with writes that keep their all-or-nothing guarantee on both (docs/run-contract.md, "Object
storage").

``locate("s3://bucket/prefix")`` (endpoint from the argument or ``GAIASIM_S3_ENDPOINT``, credentials and region
from the usual AWS variables) or ``locate("/data/day")``. Object storage has no rename, so atomicity is built
from what it does have: one PUT is atomic (a reader sees the whole object or none), so

* a single file is written in one PUT (:meth:`Location.put`; locally: a temporary name renamed into place);
* a task's several files become visible together through its **manifest** (:meth:`Location.commit`), one
  small JSON object naming each file with its size and SHA-256, written last. A reader takes only the files
  its manifests name (:meth:`Location.committed`), never a listing: a task killed half-way leaves parts that
  no manifest names, which a resumed task overwrites. Nothing is ever moved.

A contract module: it imports nothing of the pipeline.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

#: The S3 endpoint (``http://127.0.0.1:9000``, ``https://s3.example.org``) when no argument names one; unset: AWS.
ENDPOINT_ENV = "GAIASIM_S3_ENDPOINT"
#: The region when neither AWS_REGION nor AWS_DEFAULT_REGION says (S3-compatible servers accept any).
DEFAULT_REGION = "us-east-1"
#: Where a location keeps its manifests, relative to its root.
MANIFESTS = "_manifests"
#: Seconds before an unreachable endpoint is reported (connection and each request).
TIMEOUT_S = 10.0


class StorageError(Exception):
    """A location that cannot be used as given: one line naming it and the fix (exit status 2)."""


@dataclass(frozen=True)
class Location:
    """A root (a folder, or a bucket and prefix) on one filesystem; ``uri`` as the user wrote it, resolved."""

    fs: pafs.FileSystem
    root: str
    uri: str

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def path(self, name: str) -> str:
        """The filesystem path of ``name`` (``a/b.parquet``, relative to the root)."""
        return f"{self.root}/{name}" if name else self.root

    def child(self, name: str) -> Location:
        return Location(self.fs, self.path(name), f"{self.uri.rstrip('/')}/{name}")

    def _call(self, what: str, name: str, fn):
        try:
            return fn()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise StorageError(f"{self.uri}: cannot {what} {name or 'the root'}: {_one_line(exc)}; "
                               f"check the location, its credentials and {ENDPOINT_ENV}") from None

    def put(self, name: str, data: bytes) -> None:
        """Write ``data`` as ``name`` all or nothing: one PUT on object storage, temporary + rename locally."""
        path = self.path(name)
        if self.is_local:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            tmp = f"{path}.{uuid.uuid4().hex}.tmp"
            try:
                Path(tmp).write_bytes(data)
                os.replace(tmp, path)
            finally:
                Path(tmp).unlink(missing_ok=True)
            return

        def write() -> None:
            with self.fs.open_output_stream(path) as out:  # one PUT below the multipart threshold, else one upload
                out.write(data)
        self._call("write", name, write)

    def get(self, name: str) -> bytes:
        def read() -> bytes:
            with self.fs.open_input_stream(self.path(name)) as f:
                return f.read()
        return self._call("read", name, read)

    def exists(self, name: str) -> bool:
        info = self._call("look up", name, lambda: self.fs.get_file_info(self.path(name)))
        return info.type != pafs.FileType.NotFound

    def put_parquet(self, table: pa.Table, name: str, compression: str = "zstd") -> None:
        """``table`` as a Parquet object ``name``, written whole in memory first, then :meth:`put`."""
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression=compression)
        self.put(name, sink.getvalue().to_pybytes())

    def read_parquet(self, name: str) -> pa.Table:
        return pq.read_table(pa.BufferReader(self.get(name)))

    def commit(self, task: str, names: list[str]) -> dict:
        """Make task ``task``'s files ``names`` (already written) visible together: its manifest, written last.
        Returns the manifest."""
        if not task or "/" in task:
            raise ValueError(f"task name {task!r} must be non-empty and hold no '/'")
        files = []
        for name in names:
            data = self.get(name)
            files.append({"name": name, "octets": len(data), "sha256": hashlib.sha256(data).hexdigest()})
        manifest = {"task": task, "files": files}
        self.put(f"{MANIFESTS}/{task}.json", json.dumps(manifest, indent=1, sort_keys=True).encode())
        return manifest

    def manifests(self) -> list[dict]:
        """Every committed task's manifest, by task name (one listing of the manifests' folder)."""
        selector = pafs.FileSelector(self.path(MANIFESTS), allow_not_found=True)
        infos = self._call("list", MANIFESTS, lambda: self.fs.get_file_info(selector))
        names = sorted(i.path.rsplit("/", 1)[-1] for i in infos if i.path.endswith(".json"))
        return [json.loads(self.get(f"{MANIFESTS}/{n}")) for n in names]

    def committed(self) -> list[str]:
        """The files of every committed task, in task then file order; a task's files only once its manifest
        exists, whatever else lies under the root."""
        return [f["name"] for m in self.manifests() for f in m["files"]]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _endpoint(endpoint: str | None) -> tuple[str | None, str]:
    """(host[:port] or None for AWS, scheme) of ``endpoint`` or ``GAIASIM_S3_ENDPOINT``."""
    value = endpoint or os.environ.get(ENDPOINT_ENV)
    if not value:
        return None, "https"
    parsed = urllib.parse.urlsplit(value if "://" in value else f"https://{value}")
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.path not in ("", "/"):
        raise StorageError(f"S3 endpoint {value!r} is not http(s)://host[:port]; "
                           f"set {ENDPOINT_ENV} (or the endpoint option) to one, e.g. http://127.0.0.1:9000")
    return parsed.netloc, parsed.scheme


def locate(where: str | Path, endpoint: str | None = None) -> Location:
    """The location of ``where``: a local path (``file://`` allowed) or ``s3://bucket[/prefix]``."""
    text = str(where)
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme in ("", "file") or len(parsed.scheme) == 1:  # a Windows drive letter is a path
        local = Path(parsed.path if parsed.scheme == "file" else text).expanduser().resolve()
        return Location(pafs.LocalFileSystem(), local.as_posix(), local.as_posix())
    if parsed.scheme != "s3":
        raise StorageError(f"{text}: unsupported location scheme {parsed.scheme!r}; use a local path or "
                           "s3://bucket/prefix")
    bucket, prefix = parsed.netloc, parsed.path.strip("/")
    if not bucket:
        raise StorageError(f"{text}: no bucket; write s3://bucket/prefix")
    host, scheme = _endpoint(endpoint)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    fs = pafs.S3FileSystem(region=region, endpoint_override=host, scheme=scheme, connect_timeout=TIMEOUT_S,
                           request_timeout=TIMEOUT_S)
    root = f"{bucket}/{prefix}" if prefix else bucket
    loc = Location(fs, root, f"s3://{root}")
    try:
        info = fs.get_file_info(bucket)
    except OSError as exc:
        raise StorageError(f"{text}: cannot reach the S3 endpoint {host or 'of AWS'}: {_one_line(exc)}; "
                           f"set {ENDPOINT_ENV} to a reachable endpoint") from None
    if info.type == pafs.FileType.NotFound:
        raise StorageError(f"{text}: bucket {bucket!r} does not exist at {host or 'AWS'}; create it first")
    return loc
