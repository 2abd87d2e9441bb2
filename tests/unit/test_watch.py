"""Watch mode (pipeline.watch): files taken once each, in arrival order, across restarts, with the
batch run's outputs at the end, and latencies that the REQ-OPS checks judge."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from gaiasim.validate import db
from pipeline import io
from pipeline.run import WORK
from pipeline.watch import watch


class Stop(Exception):
    pass


def outputs(run_dir: Path) -> dict[str, str]:
    """SHA-256 of every output Parquet file (latencies are wall-clock times: left out)."""
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*.parquet")) if WORK not in p.parts and "latency" not in p.parts}


def deliver(dataset: Path, inbox: Path, names: list[str]) -> None:
    inbox.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(dataset / "tm" / name, inbox / f".{name}.part")
        (inbox / f".{name}.part").rename(inbox / name)


def tm_names(dataset: Path) -> list[str]:
    return sorted(p.name for p in (dataset / "tm").glob("*.tm"))


def file_rows(run_dir: Path) -> list[str]:
    con = db.connect(run_dir)
    return [r[0] for r in con.execute("SELECT name FROM latency WHERE kind = 'file' ORDER BY name").fetchall()]


def test_watching_the_arrivals_across_a_restart_gives_the_batch_outputs(faulty_run, tmp_path):
    dataset, batch = faulty_run
    inbox, out = tmp_path / "inbox", tmp_path / "run"
    names = tm_names(dataset)
    deliver(dataset, inbox, names[:2])
    first = watch(dataset, inbox, out, max_files=2, poll_s=0.01)
    assert first["status"] == "watching" and first["counts"]["files"] == 2
    deliver(dataset, inbox, names[2:])  # arrive while the watcher is down
    info = watch(dataset, inbox, out, max_files=len(names), poll_s=0.01)
    assert info["counts"]["files"] == len(names) and info["counts"]["balance_ok"]
    assert outputs(out) == outputs(batch)
    assert file_rows(out) == names  # each file taken exactly once


def test_a_watcher_killed_inside_a_file_finishes_it_on_restart(faulty_run, tmp_path):
    dataset, batch = faulty_run
    inbox, out = tmp_path / "inbox", tmp_path / "run"
    names = tm_names(dataset)
    deliver(dataset, inbox, names)
    calls = {"hours": 0}

    def crash(stage: str, _fraction: float) -> None:
        calls[stage] = calls.get(stage, 0) + 1
        if stage == "hours" and calls["hours"] == 30:
            raise Stop

    with pytest.raises(Stop):
        watch(dataset, inbox, out, max_files=len(names), poll_s=0.01, progress=crash)
    watch(dataset, inbox, out, max_files=len(names), poll_s=0.01)
    assert outputs(out) == outputs(batch)
    assert file_rows(out) == names


def test_an_idle_inbox_ends_the_watch(faulty_run, tmp_path):
    dataset, _ = faulty_run
    (tmp_path / "inbox").mkdir()
    ticks = iter(range(0, 10**12, 10**9))  # a clock moving 1 s per look
    info = watch(dataset, tmp_path / "inbox", tmp_path / "run", idle_exit_s=5, clock_ns=lambda: next(ticks),
                 sleep=lambda _s: None)
    assert info["status"] == "watching" and "counts" not in info


def test_a_missing_inbox_is_one_clear_error(faulty_run, tmp_path):
    dataset, _ = faulty_run
    with pytest.raises(io.InputError, match=r"inbox .* not found"):
        watch(dataset, tmp_path / "nowhere", tmp_path / "run")


def test_a_batch_run_folder_is_not_watched_into(faulty_run, tmp_path):
    dataset, batch = faulty_run
    (tmp_path / "inbox").mkdir()
    out = tmp_path / "run"
    shutil.copytree(batch, out)
    with pytest.raises(io.InputError, match="another run"):
        watch(dataset, tmp_path / "inbox", out, max_files=1)
