"""Alert packets as Avro (Apache Avro 1.11 specification, https://avro.apache.org/docs/1.11.1/specification/),
the format of the ZTF and Rubin alert streams (ZTF: github.com/ZwickyTransientFacility/ztf-avro-alert; Rubin:
github.com/lsst/alert_packet), written and read with fastavro.

The schema is package data, one file per version, ``alert-<major>.<minor>.avsc`` (record
``gaiasim.alert.Alert``); each packet carries its version in ``schemavsn``, as ZTF's do. Versions evolve by
Avro's schema resolution rules: a minor version only adds fields with a default, so that a reader of any
1.x reads the files of any other 1.x; anything else (a field removed without a default, a type changed
beyond Avro's promotions int -> long -> float -> double) is a new major version (docs/alerts.md).

One Object Container File holds a run's packets (:func:`write`), or one file per alert holds its packet
(:func:`write_split`, as ZTF and Rubin send them). The sync marker is derived from the content, so the same
alerts give the same bytes.
"""

from __future__ import annotations

import hashlib
import io as _io
import json
from collections.abc import Iterable
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import BinaryIO

import fastavro

from pipeline import io

#: The version this harness writes.
SCHEMA_VERSION = "1.0"
#: Codec of the container files: deflate, one of the two every Avro reader must know (the spec's "Required Codecs").
CODEC = "deflate"


def schema_file(version: str = SCHEMA_VERSION) -> str:
    return f"alert-{version}.avsc"


def schema_json(version: str = SCHEMA_VERSION) -> dict:
    """The Avro schema of ``version`` as JSON (package data of :mod:`gaiasim.publish`)."""
    return json.loads(files("gaiasim.publish").joinpath(schema_file(version)).read_text())


@cache
def _parsed(version: str) -> dict:
    return fastavro.parse_schema(schema_json(version))


def _sync_marker(records: list[dict], version: str) -> bytes:
    """16 octets that depend on the schema version and the alerts (same alerts, same file)."""
    h = hashlib.sha256(f"gaiasim.alert {version}".encode())
    for r in records:
        h.update(f"{r['alert_id']} {r['pipeline_version']}\n".encode())
    return h.digest()[:16]


def encode(packets: Iterable[dict], version: str = SCHEMA_VERSION) -> bytes:
    """An Avro Object Container File of ``packets`` (:mod:`gaiasim.publish.packets`) in schema ``version``;
    a packet without a field of the schema, or with a field it lacks, is refused (fastavro strict mode)."""
    records = [{"schemavsn": version, **p} for p in packets]
    buf = _io.BytesIO()
    fastavro.writer(buf, _parsed(version), records, codec=CODEC, validator=True, strict=True,
                    sync_marker=_sync_marker(records, version))
    return buf.getvalue()


def write(packets: list[dict], path: Path) -> None:
    """All ``packets`` in one container file at ``path`` (atomically; no packet: a file with the schema only)."""
    io.write_bytes(encode(packets), Path(path))


def write_split(packets: list[dict], folder: Path) -> list[Path]:
    """One container file per packet, ``<folder>/<alert_id>.avro``; the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for p in packets:
        paths.append(folder / f"{p['alert_id']}.avro")
        io.write_bytes(encode([p]), paths[-1])
    return paths


def read(source: Path | BinaryIO, reader_version: str | None = None, reader_schema: dict | None = None) -> list[dict]:
    """The records of a container file: as written, or resolved to the schema of ``reader_version`` (or to
    ``reader_schema``, a schema as JSON) by Avro's resolution rules (fastavro raises
    ``fastavro.read.SchemaResolutionError`` where they fail)."""
    if reader_version is not None:
        reader_schema = schema_json(reader_version)
    if isinstance(source, str | Path):
        with open(source, "rb") as f:
            return list(fastavro.reader(f, reader_schema=reader_schema))
    return list(fastavro.reader(source, reader_schema=reader_schema))
