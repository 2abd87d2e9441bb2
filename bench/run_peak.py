"""Where a pipeline run reaches its peak memory: every thread's stack at the highest resident set seen.

    python bench/run_peak.py DATASET OUT [HOURS]

Runs the built-in pipeline over DATASET into OUT (two hour-threads, as ``gaiasim run`` on 2 cores) and samples
the resident set every 0.1 s; at each new maximum it keeps every thread's stack. After HOURS hours are done
(default 3: the largest hours go first, so these are the day's heaviest) it prints the peak and the stacks, and
exits. OUT can go in /dev/shm where the disk is short (a full-scale day's first pass and three hours: ~5 GB).

Measured 2026-12-07 on the full-scale population-sky day (69.93 M transits): 2.12 GiB at 275 s, one hour-thread
fitting windows and the other between two slices of 200,000 packets; with slices of 100,000 and fit chunks of
25,000 (pipeline.hourly), 1.67 GiB, the three hours done in the same time.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from pathlib import Path

from pipeline import run as pipeline_run
from pipeline.config import PipelineConfig
from pipeline.executor import ThreadExecutor


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))


def main(dataset: Path, out: Path, hours: int) -> None:
    peak: dict = {"bytes": 0, "stacks": {}, "at_s": 0.0}
    stop = threading.Event()
    t0 = time.time()

    def sample() -> None:
        while not stop.is_set():
            rss = _rss_bytes()
            if rss > peak["bytes"]:
                stacks = {tid: "".join(traceback.format_stack(frame, limit=12))
                          for tid, frame in sys._current_frames().items() if tid != threading.get_ident()}
                peak.update(bytes=rss, stacks=stacks, at_s=time.time() - t0)
            time.sleep(0.1)

    def report() -> None:
        stop.set()
        print(f"peak {peak['bytes'] / 2**30:.2f} GiB at {peak['at_s']:.0f} s", flush=True)
        for tid, stack in peak["stacks"].items():
            print(f"--- thread {tid}\n{stack}", flush=True)
        os._exit(0)  # the other hours are not waited for

    done = 0

    def progress(stage: str, fraction: float) -> None:
        nonlocal done
        resident = _rss_bytes() / 2**30
        print(f"[{time.time() - t0:6.0f} s] {stage} {fraction:.2f}, resident {resident:.2f} GiB", flush=True)
        if stage == "hours":
            done += 1
            if done >= hours:
                report()

    threading.Thread(target=sample, daemon=True).start()
    with ThreadExecutor(2) as pool:
        pipeline_run.run(dataset, out, PipelineConfig(), progress, pool)
    report()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 3)
