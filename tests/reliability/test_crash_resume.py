"""Crash and resume: ``gaiasim run`` and ``gaiasim generate`` killed with SIGKILL at random points, then
started again, end with the bytes of an uninterrupted run, and a reader never sees a partial file.

The number of kills comes from ``GAIASIM_KILLS`` (default 4, so CI stays short; ``nox -s crash`` asks
for more). Kill times are drawn uniformly over the measured duration of an uninterrupted run, from a
fixed seed, and each kill is classified by what it interrupted (first pass, hours, Parquet write, ...),
so a report shows which stages were hit. The tally goes to ``reports/crash.json`` when ``REPORTS`` is
set.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.run import WORK

KILLS = int(os.environ.get("GAIASIM_KILLS", "4"))
GAIASIM = [str(Path(sys.executable).parent / "gaiasim")]
#: Seed of the kill times (the same points on every run of the suite).
SEED = 20161116


def digests(root: Path) -> dict[str, str]:
    """SHA-256 of every file a reader can see (hidden work files and the lock excluded)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not any(part.startswith(".") for part in
                                                                      p.relative_to(root).parts)}


def assert_no_partial_file_visible(root: Path) -> None:
    """Every Parquet file under a visible name opens and reads whole."""
    for p in root.rglob("*.parquet"):
        if not any(part.startswith(".") for part in p.relative_to(root).parts):
            pq.read_table(p)  # raises on a partial file


def stage_hit(root: Path) -> str:
    """What a kill interrupted, from what it left on disk."""
    if any(".tmp-" in p.name for p in root.rglob("*")):
        return "mid-write"
    if not (root / "run.json").exists():
        return "start"
    if json.loads((root / "run.json").read_text()).get("status") == "complete":
        return "finish"
    work = root / WORK
    # The attitude file closes stage 2 (decode, a fraction of a second): after it, the hours.
    return "hours" if work.is_dir() and any(work.glob("attitude-*")) else "ingest"


def kill_after(cmd: list[str], delay_s: float) -> bool:
    """Start ``cmd``, SIGKILL it after ``delay_s``; True when it had finished by then."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay_s)
        return True
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return False


def clean_duration(cmd: list[str], ready: Path | None = None) -> tuple[float, float]:
    """Wall time of an uninterrupted ``cmd``, and when ``ready`` appeared (0 if not watched): the end of
    the start-up (imports, loading the compiled kernels)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = 0.0
    while proc.poll() is None:
        if ready is not None and not seen and ready.exists():
            seen = time.perf_counter() - start
        time.sleep(0.02)
    assert proc.returncode == 0, cmd
    return time.perf_counter() - start, seen


def kill_until_done(cmd: list[str], out: Path, ready_s: float, duration_s: float, kills: int, seed: int) -> Counter:
    """Kill ``cmd`` ``kills`` times at random points, checking what is visible after each kill, then let it
    finish; returns how many kills hit each stage. A fifth of the kills fall in the start-up, the rest
    over the work after it."""
    import numpy as np

    rng = np.random.default_rng(seed)
    early = kills // 5
    delays = np.r_[rng.uniform(0.3, max(ready_s, 0.4), early), rng.uniform(ready_s, 0.95 * duration_s, kills - early)]
    hits: Counter = Counter()
    for delay in np.sort(delays):
        if kill_after(cmd, float(delay)):
            hits["after the end"] += 1
            continue
        hits[stage_hit(out)] += 1
        assert_no_partial_file_visible(out)
    subprocess.run(cmd, check=True, capture_output=True)
    return hits


def record(name: str, hits: Counter) -> None:
    reports = os.environ.get("REPORTS")
    if reports:
        path = Path(reports) / "crash.json"
        data = json.loads(path.read_text()) if path.exists() else {}
        data[name] = {"kills": sum(hits.values()), "by_stage": dict(hits)}
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def test_a_killed_run_resumes_to_the_bytes_of_a_clean_run(faulty_run, tmp_path):
    dataset, _ = faulty_run
    clean, out = tmp_path / "clean", tmp_path / "killed"
    duration, ready = clean_duration([*GAIASIM, "run", str(dataset), "--out", str(clean)], clean / "run.json")
    hits = kill_until_done([*GAIASIM, "run", str(dataset), "--out", str(out)], out, ready, duration, KILLS, SEED)
    record("run", hits)
    want, got = digests(clean), digests(out)
    want.pop("run.json"), got.pop("run.json")  # its timings differ; its counts are checked below
    want.pop("catalog.duckdb"), got.pop("catalog.duckdb")  # views naming the run's own absolute path
    assert got == want, f"kills by stage: {dict(hits)}"
    a, b = (json.loads((p / "run.json").read_text()) for p in (clean, out))
    assert a["counts"] == b["counts"] and a["inputs"] == b["inputs"] and b["status"] == "complete"


@pytest.mark.parametrize("plan", ["none"])
def test_a_killed_generate_leaves_no_dataset_and_its_rerun_gives_the_same_bytes(tmp_path, plan):
    spec = Path(__file__).resolve().parents[2] / "datasets" / "levels" / "tiny.toml"
    clean, out = tmp_path / "clean", tmp_path / "killed"
    cmd = [*GAIASIM, "generate", str(spec), "--seed", "3"]
    duration, _ = clean_duration([*cmd, "--out", str(clean)])
    hits: Counter = Counter()
    import numpy as np

    for delay in np.sort(np.random.default_rng(SEED).uniform(0.3, duration, KILLS)):
        if kill_after([*cmd, "--out", str(out)], float(delay)):
            hits["after the end"] += 1
            break
        if out.exists():  # killed after the final rename, on its way out: the dataset is whole
            hits["after the rename"] += 1
            assert digests(out) == digests(clean)
            break
        hits["generate"] += 1
    if not out.exists():
        subprocess.run([*cmd, "--out", str(out)], check=True, capture_output=True)
    record("generate", hits)
    assert digests(out) == digests(clean)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary folders were left behind"


#: Run in a child: the pipeline with Parquet writing that, at write number N, leaves half a file under
#: its temporary name and hangs there, so the parent can kill it in the middle of a Parquet write.
HANGING_WRITER = """
import os, sys, time
import pyarrow.parquet as pq
from pipeline.run import run

real, n, count = pq.write_table, int(sys.argv[3]), [0]
def write_table(table, where, **kwargs):  # where: the temporary, open (pipeline.io._atomic)
    count[0] += 1
    real(table, where, **kwargs)
    if count[0] == n:
        where.flush()
        os.ftruncate(where.fileno(), where.tell() // 2)
        print("writing", flush=True)
        time.sleep(600)
pq.write_table = write_table
run(sys.argv[1], sys.argv[2])
"""


@pytest.mark.parametrize("nth_write", [2, 15, 60])
def test_a_run_killed_in_the_middle_of_a_parquet_write_resumes_to_the_same_bytes(faulty_run, tmp_path, nth_write):
    dataset, clean = faulty_run
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", HANGING_WRITER, str(dataset), str(out), str(nth_write)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    with proc.stdout:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert stage_hit(out) == "mid-write"
    assert_no_partial_file_visible(out)
    record(f"run mid-write #{nth_write}", Counter({"mid-write": 1}))
    result = subprocess.run([*GAIASIM, "run", str(dataset), "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    want, got = digests(clean), digests(out)
    for name in ("run.json", "catalog.duckdb"):
        want.pop(name), got.pop(name)
    assert got == want
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name], "the interrupted write's temporary is left"


def test_a_killed_watcher_takes_every_file_once_after_a_restart(faulty_run, tmp_path):
    """Watch mode under SIGKILL: files arrive while it is down; after restarts each is processed once and
    the outputs are the batch run's."""
    import shutil

    import duckdb
    import numpy as np

    dataset, clean = faulty_run
    inbox, out = tmp_path / "inbox", tmp_path / "watched"
    inbox.mkdir()
    names = sorted(p.name for p in (dataset / "tm").glob("*.tm"))
    cmd = [*GAIASIM, "run", str(dataset), "--watch", str(inbox), "--out", str(out), "--poll", "0.05",
           "--max-files", str(len(names))]
    rng = np.random.default_rng(SEED)
    hits: Counter = Counter()
    for name in names:
        shutil.copy(dataset / "tm" / name, inbox / f".{name}.part")
        (inbox / f".{name}.part").rename(inbox / name)  # arrives while the watcher is down (or up)
        if kill_after(cmd, float(rng.uniform(1.0, 6.0))):
            hits["after the end"] += 1
            break
        hits["watching"] += 1
        assert_no_partial_file_visible(out)
    subprocess.run(cmd, check=True, capture_output=True)
    record("watch", hits)
    want, got = digests(clean), digests(out)
    for name in ("run.json", "catalog.duckdb"):
        want.pop(name), got.pop(name)
    got = {k: v for k, v in got.items() if not k.startswith("latency/")}
    assert got == want
    files = duckdb.sql(f"SELECT name FROM read_parquet('{out}/latency/*.parquet') WHERE kind = 'file' "
                       "ORDER BY name").fetchall()
    assert [f[0] for f in files] == names  # each file taken exactly once
