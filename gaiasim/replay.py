"""``gaiasim replay``: deliver a dataset's TM files into an inbox on the pass schedule, at N x real time.

A TM file is the telemetry of one ground-station pass (:mod:`gaiasim.sim.downlink`): named after the pass
start (``2016-01-16T02-00.tm``), it carries what was generated before that start, and it is complete on
ground at the end of the pass, so that is when it is delivered. The pass schedule comes from the dataset's
manifest (its spec's date and days, and ``obmt_start_ns``), exactly as ``gaiasim generate`` made it.

Late deliveries of the fault plan (``late_delivery``) are packets moved into the *next* pass's file
(:func:`gaiasim.sim.slices.write_spools`; the fault ledger names the file that carries them): no file is
itself delivered late, so every file arrives at the end of its own pass.

Times are compressed by the speed relative to the first delivery: at speed 3600, the 8 h between two passes
take 8 s. Each file is copied to ``INBOX/.<name>.part`` and then renamed to ``INBOX/<name>`` (a rename is
atomic on one file system), so a watcher never sees half a file. The clock and sleep are arguments, so a
test checks the schedule without waiting.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gaiasim import dataset as ds
from gaiasim.clitable import Column, Tabular
from gaiasim.sim import downlink
from gaiasim.spec import SpecError, make_spec
from pipeline.io import InputError

#: Contact time of one pass, s [U]: ~8 h of contact a day (docs/facts.md section 3) shared by the day's passes.
PASS_DURATION_S = 8 * 3600 / len(downlink.PASS_START_H)


@dataclass(frozen=True)
class Scheduled:
    file: str  # TM file name, in the dataset's tm/ folder
    delivery_ns: int  # OBMT the file is complete on ground: the end of its pass
    scheduled_s: float  # replay seconds after the first delivery (0 for every file at speed max)


@dataclass(frozen=True)
class Delivery:
    file: str  # TM file name, now in the inbox
    scheduled_s: float  # replay seconds after the first delivery it was due
    delivered_s: float  # replay seconds after the start it was renamed into the inbox
    delivered_at: float  # the clock when it was renamed into the inbox (UNIX seconds with the default clock)


def parse_speed(text: str) -> float:
    """Replay speed: a number > 0 (times real time) or ``max`` (no waiting: ``math.inf``)."""
    if str(text).strip().lower() == "max":
        return math.inf
    try:
        speed = float(text)
    except ValueError:
        raise SpecError(f"--speed {text!r}: give a number > 0 (times real time) or max") from None
    if not speed > 0:  # also refuses NaN
        raise SpecError(f"--speed {text!r}: must be > 0 (times real time), or max to deliver without waiting")
    return speed


def schedule(dataset: Path, speed: float) -> list[Scheduled]:
    """The delivery of each TM file of ``dataset``, in delivery order, at ``speed`` x real time."""
    dataset = Path(dataset)
    if not speed > 0:
        raise SpecError(f"speed {speed!r}: must be > 0 (times real time), or math.inf to deliver without waiting")
    if not dataset.is_dir():
        raise InputError(f"dataset {dataset} not found; give a folder made by 'gaiasim generate'")
    manifest = ds.read_manifest(dataset)
    files = sorted((dataset / "tm").glob("*.tm"))
    if not files:
        raise InputError(f"{dataset} has no TM files (tm/*.tm) to deliver; regenerate the dataset")
    spec = make_spec(**manifest["spec"])
    passes = {f"{p.name}.tm": p for p in downlink.pass_schedule(spec.date, spec.days, manifest["obmt_start_ns"])}
    unknown = [f.name for f in files if f.name not in passes]
    if unknown:
        raise InputError(f"{dataset}/tm/{unknown[0]} is not a pass of the dataset's schedule "
                         f"({', '.join(sorted(passes))}); regenerate the dataset")
    end_ns = {f.name: passes[f.name].start_ns + round(PASS_DURATION_S * 1e9) for f in files}
    order = sorted(end_ns, key=lambda name: (end_ns[name], name))
    first = end_ns[order[0]]
    return [Scheduled(name, end_ns[name], 0.0 if math.isinf(speed) else (end_ns[name] - first) / 1e9 / speed)
            for name in order]


def deliver(source: Path, inbox: Path) -> Path:
    """Copy ``source`` to ``inbox/.<name>.part``, then rename it to ``inbox/<name>`` (atomic)."""
    part = Path(inbox) / f".{source.name}.part"
    shutil.copyfile(source, part)
    target = Path(inbox) / source.name
    os.replace(part, target)
    return target


def replay(dataset: Path, inbox: Path, speed: float, clock: Callable[[], float] = time.time,
           sleep: Callable[[float], None] = time.sleep,
           on_delivery: Callable[[Delivery, int, int], None] | None = None) -> list[Delivery]:
    """Deliver every TM file of ``dataset`` into ``inbox`` on the pass schedule at ``speed`` x real time
    (``math.inf``: at once); ``on_delivery(delivery, index, count)`` after each file. Returns the log.

    Each file is due at a fixed offset from the start, so a slow copy delays that file only, not the rest.
    """
    plan = schedule(dataset, speed)
    inbox = Path(inbox)
    inbox.mkdir(parents=True, exist_ok=True)
    start = clock()
    log = []
    for i, item in enumerate(plan):
        while (wait := start + item.scheduled_s - clock()) > 0:
            sleep(wait)
        deliver(Path(dataset) / "tm" / item.file, inbox)
        now = clock()
        log.append(Delivery(item.file, item.scheduled_s, now - start, now))
        if on_delivery is not None:
            on_delivery(log[-1], i, len(plan))
    return log


def progress_line(d: Delivery, index: int, count: int) -> str:
    """One line per delivered file: which, when it was due and when it came (replay seconds)."""
    return (f"[{index + 1}/{count}] {d.file} delivered at +{d.delivered_s:.1f} s "
            f"(due +{d.scheduled_s:.1f} s, late {max(d.delivered_s - d.scheduled_s, 0.0):.1f} s)")


def log_view(log: list[Delivery]) -> Tabular:
    """The delivery log: each file, when it was due and when it came (replay seconds), and the UTC clock time."""
    return Tabular("deliveries", [
        Column("file"), Column("scheduled_s", text=lambda v: f"{v:.3f}"),
        Column("delivered_s", text=lambda v: f"{v:.3f}"),
        Column("delivered_at (UTC)", text=lambda v: v.isoformat(timespec="milliseconds"))],
        [(d.file, d.scheduled_s, d.delivered_s, dt.datetime.fromtimestamp(d.delivered_at, dt.UTC).replace(tzinfo=None))
         for d in log])
