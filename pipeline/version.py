"""Code versions: the package version plus a digest of the source that made an output.

A run (``run.json``) and a dataset (``dataset.json``) record the exact code that made them, so a changed
pipeline never reuses or resumes an older run, and cached datasets and runs (``gaiasim.workspace``) are
made again after the code changed; the package version alone stays the same across edits.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
from pathlib import Path

#: The folder of the installed source (pipeline/ and gaiasim/ sit side by side).
SOURCE_ROOT = Path(__file__).resolve().parents[1]


def package_version() -> str:
    try:
        return importlib.metadata.version("gaiasim")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


@functools.cache
def source_digest(*packages: str) -> str:
    """SHA-256 (12 hex digits) of the Python sources of ``packages`` (folders under :data:`SOURCE_ROOT`),
    file names included, in sorted order."""
    h = hashlib.sha256()
    for package in packages:
        for path in sorted((SOURCE_ROOT / package).rglob("*.py")):
            h.update(str(path.relative_to(SOURCE_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def code_version(*packages: str) -> str:
    """``<package version>+src.<digest of packages' sources>``, e.g. ``0.1.0+src.3f2a9c0d1e4b``."""
    return f"{package_version()}+src.{source_digest(*packages)}"


def pipeline_version() -> str:
    """The version of the system under test (pipeline/ alone: it never imports gaiasim)."""
    return code_version("pipeline")
