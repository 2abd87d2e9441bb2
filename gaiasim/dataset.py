"""Dataset folders: layout, manifest (``dataset.json``) and integrity (``gaiasim verify``).

::

    <dataset>/
      dataset.json     spec, code version, counts, SHA-256 of every file
      tm/<pass>.tm     raw CCSDS packet streams, one file per downlink pass
      catalogue/       reference catalogue (Parquet, region=NN partitions)
      truth/<table>/   what really happened (Parquet parts): sources, transits, ccd, faults
      logbook.json     the operations logbook entry of each day
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline import io, version
from pipeline.io import write_table

MANIFEST = "dataset.json"

__all__ = [
    "MANIFEST",
    "code_version",
    "data_files",
    "read_manifest",
    "verify",
    "write_logbook",
    "write_manifest",
    "write_table",
    "write_tm",
]


def code_version() -> str:
    """The simulator's version: the package version and a digest of gaiasim/ and pipeline/ (it encodes
    with pipeline.icd) sources (pipeline.version)."""
    return version.code_version("gaiasim", "pipeline")


def write_tm(path: Path, data: np.ndarray) -> None:
    io.write_bytes(np.ascontiguousarray(data, dtype=np.uint8), path)


def write_logbook(root: Path, entries: list[dict]) -> None:
    io.write_json({"logbook": entries}, Path(root) / "logbook.json")


def data_files(root: Path) -> list[Path]:
    """Every file of the dataset except the manifest, sorted, relative to ``root``."""
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(root: Path, manifest: dict, known: dict[str, str] | None = None) -> None:
    """Write the manifest: ``manifest`` with the code version and the SHA-256 of every data file.
    ``known`` gives the digests of files hashed as they were written (dataset-relative names); the
    others are read and hashed here."""
    manifest = dict(manifest)
    manifest["code_version"] = code_version()
    known = known or {}
    files = list(map(str, data_files(root)))
    todo = [name for name in files if name not in known]
    digests = dict(zip(todo, io.sha256_files([root / name for name in todo]), strict=True))
    manifest["files"] = {name: known[name] if name in known else digests[name] for name in files}
    io.write_json(manifest, root / MANIFEST)


def read_manifest(root: Path) -> dict:
    path = Path(root) / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise io.InputError(f"{root} is not a dataset: {MANIFEST} is missing; run 'gaiasim generate' first") from None
    except json.JSONDecodeError as exc:
        raise io.InputError(f"{path} is not valid JSON ({exc}); regenerate the dataset") from None


def verify(root: Path) -> list[str]:
    """Problems found when recomputing every SHA-256 against the manifest (empty when intact)."""
    root = Path(root)
    manifest = read_manifest(root)
    expected = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(expected, dict):
        raise io.InputError(f"{root / MANIFEST} has no 'files' table of SHA-256 digests; regenerate the dataset")
    found = {}  # name -> problem, reported in name order
    inside = root.resolve()
    present = []
    for name, digest in sorted(expected.items()):
        path = root / name
        # The manifest is data: a name that leads out of the dataset is a problem, never a file to read.
        if not path.resolve().is_relative_to(inside):
            found[name] = f"{name}: outside the dataset (a manifest must name the dataset's own files)"
        elif not path.is_file():
            found[name] = f"{name}: missing"
        else:
            present.append((name, digest))
    for (name, digest), actual in zip(present, io.sha256_files([root / n for n, _ in present]), strict=True):
        if actual != digest:
            found[name] = f"{name}: SHA-256 differs from the manifest"
    problems = [found[name] for name in sorted(found)]
    for p in data_files(root):
        if str(p) not in expected:
            problems.append(f"{p}: not in the manifest")
    return problems
