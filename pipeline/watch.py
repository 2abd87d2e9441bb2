"""Watch mode (``gaiasim run DATASET --watch INBOX --out RUN``): process TM files as they arrive.

Each new ``*.tm`` in the inbox (delivered by an atomic rename, e.g. by ``gaiasim replay``; hidden names
are ignored) is taken once, in arrival order: its first pass (:mod:`pipeline.spool`), then the hours it
brings packets or attitude to are (re)done, then the day's alerts, gaps, catalog and ``run.json``
(status ``watching``). After every file the run folder holds the outputs of all files so far, the same
as a batch run over them; once the last file is in, they are the batch run's outputs.

Arrivals are recorded in ``.work/arrivals.json`` (atomically) before a file is processed and marked done
after, so a watcher that is stopped or killed and started again takes every file exactly once and
finishes the one it was on. Latencies go to ``latency/`` (:data:`pipeline.schemas.LATENCY`): file
arrival -> outputs written, and for each new alert, arrival of the file that completed its evidence ->
alert written. The reference catalogue comes from DATASET (the inbox only receives TM).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import icd, io, schemas, skycells, spool
from pipeline.config import PipelineConfig
from pipeline.executor import SerialExecutor
from pipeline.run import (
    RUN_JSON,
    WORK,
    Progress,
    _day,
    _finish,
    _hours,
    _ingest,
    _noop,
    _Timer,
    day_span,
    refuse_foreign,
)
from pipeline.version import pipeline_version

ARRIVALS = "arrivals.json"


def _hours_touched(work: Path, k: int, summary: dict) -> set[int]:
    """Hours file ``k`` brings star packets to, and those whose attitude it changes (with a neighbour on
    each side, which interpolation near an hour's edge reads)."""
    hours = {int(h) for h in summary["hours"]}
    att = np.load(work / "files" / f"{k:04d}-{icd.APID_ATTITUDE}.npy")
    for h in np.unique(spool.hour_of(att["obmt_ns"].astype(np.int64))).tolist():
        hours.update((h - 1, h, h + 1))
    return hours


def _load_state(out: Path, fingerprint: dict) -> dict:
    """The arrivals recorded in ``out`` by an earlier watch of the same inputs, or a new record."""
    path = out / WORK / ARRIVALS
    if (out / RUN_JSON).is_file():
        info = json.loads((out / RUN_JSON).read_text())
        if info.get("fingerprint") != fingerprint:
            raise io.InputError(f"run folder {out} holds another run (not a watch of these inputs); choose a "
                                "new --out folder")
        if path.is_file():
            return json.loads(path.read_text())
        # else: stopped before it recorded its first arrival: nothing was processed, start afresh
    else:
        refuse_foreign(out)
        io.write_json({"status": "watching", "fingerprint": fingerprint}, out / RUN_JSON)
    state = {"files": [], "alerts_seen": []}
    path.parent.mkdir(exist_ok=True)
    io.write_json(state, path)
    return state


def watch(dataset: Path, inbox: Path, out: Path, config: PipelineConfig | None = None, poll_s: float = 1.0,
          idle_exit_s: float | None = None, max_files: int | None = None, progress: Progress = _noop,
          clock_ns: Callable[[], int] = time.time_ns, sleep: Callable[[float], None] = time.sleep) -> dict:
    """Watch ``inbox`` and process each TM file as it arrives (see the module doc); returns run.json.

    Stops after ``max_files`` files in all, or when no file came for ``idle_exit_s`` seconds (None:
    never; stop it with Ctrl-C, a later watch resumes).
    """
    config = config or PipelineConfig()
    dataset, inbox, out = Path(dataset).resolve(), Path(inbox).resolve(), Path(out).resolve()
    if not inbox.is_dir():
        raise io.InputError(f"inbox {inbox} not found; create it or give the folder 'gaiasim replay' delivers to")
    skycells.check(dataset)  # a bad catalogue is refused before anything is written
    fingerprint = {"pipeline_version": pipeline_version(), "dataset": str(dataset), "inbox": str(inbox),
                   "day_span_ns": list(day_span(dataset)), "config": config.to_json(), "mode": "watch"}
    refuse_foreign(out)
    with io.locked_folder(out):
        io.remove_abandoned(out)  # what a killed watcher was writing
        state = _load_state(out, fingerprint)
        idle_since = clock_ns()
        info = json.loads((out / RUN_JSON).read_text())
        while True:
            known = {f["name"] for f in state["files"]}
            for path in sorted(inbox.glob("[!.]*.tm")):
                if path.name not in known:
                    io.require_regular_files([path], inbox)  # a link out of the inbox, a FIFO: refused
                    state["files"].append({"name": path.name, "arrived_utc_ns": path.stat().st_mtime_ns,
                                           "done": False})
                    io.write_json(state, out / WORK / ARRIVALS)
            for k, entry in enumerate(state["files"]):
                if not entry["done"]:
                    info = _take(k, state, inbox, out, config, fingerprint, progress, clock_ns)
                    idle_since = clock_ns()
            n = len(state["files"])
            if (max_files is not None and n >= max_files) or (
                    idle_exit_s is not None and clock_ns() - idle_since >= idle_exit_s * 1e9):
                return info
            sleep(poll_s)


def _take(k: int, state: dict, inbox: Path, out: Path, config: PipelineConfig, fingerprint: dict,
          progress: Progress, clock_ns: Callable[[], int]) -> dict:
    """Process arrival number ``k``; returns run.json."""
    dataset = Path(fingerprint["dataset"])
    timer = _Timer()
    work = out / WORK
    files = [inbox / f["name"] for f in state["files"][:k + 1]]
    summaries = [spool.load_summary(work, j) for j in range(k)]
    summaries = _ingest(files, out, work, summaries, tuple(fingerprint["day_span_ns"]), progress)
    timer.lap("ingest")
    day, day_counts = _day(dataset, files, summaries, out, config)
    timer.lap("decode")
    hour_summaries = _hours(day, dataset, config, _hours_touched(work, k, summaries[k]), progress, SerialExecutor())
    timer.lap("hours")
    info = _finish(day, hour_summaries, day_counts, config, fingerprint, timer.timings, "watching")
    timer.lap("alerts")
    written = clock_ns()
    arrived = state["files"][k]["arrived_utc_ns"]
    alert_ids = pq.read_table(out / "alerts" / "part-0.parquet", columns=["alert_id"])["alert_id"].to_pylist()
    new_alerts = sorted(set(alert_ids) - set(state["alerts_seen"]))
    rows = [("file", files[k].name)] + [("alert", str(a)) for a in new_alerts]
    latency = pa.table({"kind": [r[0] for r in rows], "name": [r[1] for r in rows],
                        "arrived_utc_ns": [arrived] * len(rows), "written_utc_ns": [written] * len(rows),
                        "latency_s": [(written - arrived) / 1e9] * len(rows)}, schema=schemas.LATENCY)
    io.write_table(latency, schemas.LATENCY, out / "latency" / f"part-{k:04d}.parquet")
    state["alerts_seen"] = sorted(set(state["alerts_seen"]) | set(new_alerts))
    state["files"][k]["done"] = True
    io.write_json(state, work / ARRIVALS)
    info["timings_s"] = timer.timings
    info["peak_rss_bytes"] = timer.peak_rss
    io.write_json(info, out / RUN_JSON)
    progress("watch", 1.0)
    return info
