"""What the command SUTs share: run the builtin pipeline in this process, then (for a broken one) alter its
outputs as a pipeline with that bug would have written them, counts included (the run keeps the contract:
only validation can tell)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402

from pipeline.run import run  # noqa: E402
from tests.runs import rewrite_table  # noqa: E402


def main(bug: Callable[[Path], None] | None = None) -> None:
    if len(sys.argv) != 3:
        sys.exit(f"usage: {Path(sys.argv[0]).name} DATASET OUT")
    dataset, out = Path(sys.argv[1]), Path(sys.argv[2])
    info = run(dataset, out)
    if bug is not None:
        bug(out)
    print(f"{out}: {info['counts']['transits']} transits")


def drop(out: Path, table: str, keep: Callable[[pa.Table], pa.Array]) -> None:
    rewrite_table(out, table, lambda t: t.filter(keep(t)))
