"""``gaiasim run``: the daily pipeline over one dataset's TM files and reference catalogue, streamed.

Stages, in bounded memory whatever the scale:

1. **ingest** (:mod:`pipeline.spool`): each TM file read once in chunks; quarantine written, star packets
   indexed by OBMT hour, housekeeping and attitude decoded; beside it, the reference catalogue split by
   sky cell (:mod:`pipeline.skycells`);
2. **decode** (whole day, small): housekeeping and attitude sequence checks, ``hk``, attitude glitches
   and HK limit events;
3. **hours** (:mod:`pipeline.hourly`): per OBMT hour, image parameters, sky positions, crossmatch,
   photometry, gaps, alert candidates; Parquet encoded on a writer thread while the next chunk is fitted;
4. **alerts** over the day's candidates, sequence gaps between hours, ``catalog.duckdb`` and ``run.json``.

Every file is written atomically and each file (stage 1) and hour (stage 3) records that it is done,
so a run that is stopped or killed resumes where it was and gives the same bytes as an uninterrupted
one. The run folder is locked while a run writes into it. The pipeline reads ``<dataset>/tm/*.tm``,
``<dataset>/catalogue/`` and, of ``<dataset>/dataset.json``, the day's OBMT span (``obmt_start_ns``,
``obmt_end_ns``): nothing else of the dataset, and only regular files inside it.
"""

from __future__ import annotations

import json
import resource
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads

from pipeline import alerts, attitude, catalog, ccdcal, hourly, icd, io, lsf, schemas, skycells, spool
from pipeline.config import PipelineConfig
from pipeline.executor import SerialExecutor
from pipeline.hkmon import check_hk_table
from pipeline.ingest import quarantine_packets, sequence_anomalies
from pipeline.layout import CCD_CALIBRATION, RUN_JSON
from pipeline.version import pipeline_version

Progress = Callable[[str, float], None]
#: Scratch folder of a run in progress (removed when the run completes).
WORK = ".work"


def _noop(_stage: str, _fraction: float) -> None:
    return None


def tm_files(dataset: Path) -> list[Path]:
    """TM files of a dataset in reception order (their names are the pass start times); refuses anything
    but regular files inside the dataset (:func:`pipeline.io.require_regular_files`)."""
    tm = Path(dataset) / "tm"
    if not tm.is_dir():
        raise io.InputError(f"{dataset} has no tm/ folder; give a dataset made by 'gaiasim generate'")
    return io.require_regular_files(sorted(tm.glob("*.tm")), Path(dataset))


def day_span(dataset: Path) -> tuple[int, int]:
    """[start, end) OBMT (ns) of the day(s) a dataset holds, from its ``dataset.json``: packets outside it
    (and its margin, :data:`pipeline.ingest.DAY_MARGIN_NS`) are quarantined as ``outside_day``."""
    path = Path(dataset) / "dataset.json"
    try:
        info = json.loads(path.read_text())
        span = int(info["obmt_start_ns"]), int(info["obmt_end_ns"])
    except FileNotFoundError:
        raise io.InputError(f"{dataset} has no dataset.json to give the day's OBMT span; give a dataset made by "
                            "'gaiasim generate'") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        raise io.InputError(f"{path} gives no day span (integers obmt_start_ns < obmt_end_ns); regenerate the "
                            "dataset") from None
    if not span[0] < span[1]:
        raise io.InputError(f"{path} gives no day span (integers obmt_start_ns < obmt_end_ns); regenerate the "
                            "dataset")
    return span


def read_catalogue(dataset: Path) -> pa.Table:
    """The whole reference catalogue in memory, checked against :data:`pipeline.schemas.CATALOGUE` (for
    tools and benchmarks; a run reads it by sky cell, :mod:`pipeline.skycells`)."""
    return pa.concat_tables(list(skycells.batches(dataset)))


def _hk_table(records: np.ndarray | None) -> pa.Table:
    if records is None or len(records) == 0:
        return schemas.HK.empty_table()
    n_ch = len(icd.HK_CHANNELS)
    return pa.table(
        {
            "obmt_ns": np.repeat(records["obmt_ns"].astype(np.int64), n_ch),
            "channel": np.tile(np.array([c.name for c in icd.HK_CHANNELS]), len(records)),
            "value": records["payload"]["value"].astype(np.float64).ravel(),
        },
        schema=schemas.HK,
    )


def _fingerprint(dataset: Path, files: list[Path], config: PipelineConfig, span: tuple[int, int]) -> dict:
    """What a run folder's outputs depend on, cheap to check (sizes and times, not checksums)."""
    return {
        "pipeline_version": pipeline_version(),
        "dataset": str(dataset),
        "day_span_ns": list(span),
        "config": config.to_json(),
        "files": [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files],
        "lsf_table_sha256": lsf.TABLE_SHA256,
        "ccd_calibration_sha256": ccdcal.load(dataset).sha256,
    }


def refuse_foreign(out: Path) -> None:
    """Refuse, before touching it, a folder that holds files but no run."""
    if out.is_dir() and not (out / RUN_JSON).exists() and any(p.name != io.LOCK_NAME for p in out.iterdir()):
        raise io.InputError(f"run folder {out} is not empty; choose a new --out folder or remove it")


def _complete(out: Path, fingerprint: dict) -> dict | None:
    """run.json of ``out`` when it holds this very run, finished; else None."""
    try:
        info = json.loads((out / RUN_JSON).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return info if info.get("fingerprint") == fingerprint and info.get("status") == "complete" else None


def _prepare(out: Path, fingerprint: dict) -> dict | None:
    """The finished run.json when ``out`` already holds this very run; None to (re)start or resume it.

    Refuses a folder holding anything else.
    """
    path = out / RUN_JSON
    if path.is_file():
        try:
            info = json.loads(path.read_text())
        except json.JSONDecodeError:
            info = {}
        if info.get("fingerprint") != fingerprint:
            raise io.InputError(f"run folder {out} holds a run of other inputs or another pipeline version; "
                                "choose a new --out folder or remove it")
        return info if info.get("status") == "complete" else None
    refuse_foreign(out)
    io.write_json({"status": "running", "fingerprint": fingerprint}, path)
    return None


def _whole_day(out: Path, work: Path, files: list[Path],
               config: PipelineConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    """Stage 2: housekeeping and attitude of the whole day; returns the attitude for sky positions
    (glitches removed) and the stage's counts."""
    names = [f.name for f in files]
    gaps: dict[str, list] = {name: [] for name in schemas.GAPS.names}
    packets, used, duplicates, quarantine = {}, 0, 0, []
    for apid in spool.WHOLE_DAY_APIDS:
        records, received_in, offsets = spool.whole_day_records(work, len(files), names, apid)
        # As on the link: the records' fields may have come back in native byte order (numpy concatenates so).
        wire = records.astype(icd.packet_dtype(apid))
        octets = wire.view(np.uint8).reshape(len(wire), wire.dtype.itemsize)
        seq = (records["word1"] & 0x3FFF).astype(np.int64)
        found = sequence_anomalies(apid, seq, records["obmt_ns"].astype(np.int64), received_in, octets.__getitem__)
        for key, values in found.gaps.items():
            gaps[key].extend(values)
        c = found.conflict
        quarantine.append(quarantine_packets(received_in[c], offsets[c], apid, seq[c],
                                             np.full(len(c), icd.CONFLICT), octets[c]))
        packets[apid] = records[found.keep]
        used += len(found.keep)
        duplicates += len(records) - len(found.keep) - len(c)
    att = packets[icd.APID_ATTITUDE]
    att_t, att_q = att["obmt_ns"].astype(np.int64), att["payload"]["q"].astype(np.float64)
    # Corrupted attitude solutions are reported and left out of the attitude used for sky positions.
    glitched = attitude.find_glitches(att_t, att_q)
    hk = _hk_table(packets[icd.APID_HK])
    hk_limit_events = check_hk_table(hk, config.limit_table())
    events = pa.concat_tables([attitude.glitch_events(att_t, glitched), hk_limit_events])
    io.write_table(hk, schemas.HK, out / "hk" / "part-0.parquet")
    io.write_table(events, schemas.HK_EVENTS, out / "hk_events" / "part-0.parquet")
    io.write_table(pa.table(gaps, schema=schemas.GAPS), schemas.GAPS, out / "gaps" / "part-whole-day.parquet")
    quarantine = pa.concat_tables(quarantine)
    io.write_or_remove(quarantine, schemas.QUARANTINE, out / "quarantine" / "part-whole-day.parquet")
    counts = {"packets_used": used, "duplicates_dropped": duplicates, "packets_quarantined": quarantine.num_rows,
              "hk_samples": hk.num_rows, "hk_limit_events": hk_limit_events.num_rows}
    return att_t[~glitched], att_q[~glitched], counts


def run(dataset: Path, out: Path, config: PipelineConfig | None = None, progress: Progress = _noop,
        executor: Executor | None = None) -> dict:
    """Run the pipeline over ``dataset`` into the run folder ``out``; returns the content of run.json.

    Resumes a run of the same inputs that was stopped; returns at once when ``out`` holds it complete.
    The hours run as tasks on ``executor`` (default: in this process, numba on every core); any executor
    gives the same bytes.
    """
    config = config or PipelineConfig()
    dataset, out = Path(dataset).resolve(), Path(out).resolve()
    lsf.require_table()
    files = tm_files(dataset)
    fingerprint = _fingerprint(dataset, files, config, day_span(dataset))
    if (done := _complete(out, fingerprint)) is not None:  # run.json is written atomically: no lock needed
        return done
    skycells.check(dataset)  # a bad catalogue is refused before anything is written
    refuse_foreign(out)
    with io.locked_folder(out):
        io.remove_abandoned(out)  # what a killed run was writing
        done = _prepare(out, fingerprint)
        if done is not None:
            return done
        return _run(dataset, files, out, config, fingerprint, progress, executor or SerialExecutor())


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far, bytes: ``VmHWM`` in /proc/self/status (Linux proc(5),
    in kB = 1024 bytes), else ``ru_maxrss`` (getrusage(2): kilobytes on Linux, bytes on macOS)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024


class _Timer:
    """Seconds per stage, summed over calls, and this process's peak resident memory when each stage ended
    (a high-water mark: a stage that raised it shows a larger value than the stage before)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.peak_rss: dict[str, int] = {}
        self._clock = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = round(self.timings.get(stage, 0.0) + now - self._clock, 4)
        self.peak_rss[stage] = peak_rss_bytes()
        self._clock = now


def _ingest(files: list[Path], out: Path, work: Path, summaries: list[dict], span: tuple[int, int],
            progress: Progress, executor: Executor | None = None) -> list[dict]:
    """Stage 1 for the files after the ``summaries`` already made (reception order) of the day ``span``:
    all summaries. Files not yet spooled are tasks on ``executor`` (they are independent,
    :mod:`pipeline.spool`)."""
    executor = executor or SerialExecutor()
    # Largest files first, so that the pool's last task is a small one; results awaited in that order.
    order = sorted(range(len(summaries), len(files)), key=lambda k: (-files[k].stat().st_size, k))
    pending = {}
    for k in order:
        summary = spool.load_summary(work, k)
        if summary is None or summary["file"] != files[k].name:
            pending[k] = executor.submit(spool.spool_file, files[k], k, out, work, span)
        else:
            pending[k] = summary
    for i, k in enumerate(order):
        if not isinstance(pending[k], dict):
            pending[k] = pending[k].result()
        progress("ingest", 0.3 * (len(summaries) + i + 1) / max(len(files), 1))
    return list(summaries) + [pending[k] for k in range(len(summaries), len(files))]


@dataclass(frozen=True)
class HourJob:
    """One hour of a run, as a task for any ``concurrent.futures`` executor (picklable, idempotent)."""

    dataset: Path  # for the reference catalogue
    out: Path
    files: tuple[Path, ...]
    summaries: tuple[dict, ...]
    config: PipelineConfig
    hour: int


#: The shared part of the hours (catalogue, sky index, attitude) of the run this process works on, keyed
#: by (run folder, files so far): built once per process, by the parent or by a worker.
_DAYS: dict[tuple[str, int], hourly.Day] = {}


def _attitude_path(work: Path, n_files: int) -> Path:
    return work / f"attitude-{n_files}.npz"


def _day(dataset: Path, files: list[Path], summaries: list[dict], out: Path, config: PipelineConfig,
         cells: dict | None = None) -> tuple[hourly.Day, dict]:
    """Stage 2 (housekeeping and attitude of the files so far) and what every hour shares (also left in
    the work area for worker processes); ``cells``: the catalogue's split by sky cell, if already made."""
    work = out / WORK
    att_t, att_q, day_counts = _whole_day(out, work, files, config)
    with io._atomic(_attitude_path(work, len(files))) as f:
        np.savez(f, t=att_t, q=att_q)
    day = hourly.Day(files=files, summaries=summaries, out=out, work=work, att_t_ns=att_t, att_q=att_q,
                     cells=skycells.split(dataset, work) if cells is None else cells,
                     match_radius_mas=config.match_radius_mas,
                     calibration=config.calibration,
                     alert_config=config.alert_config(), ccd_calibration=ccdcal.load(dataset))
    _DAYS.clear()
    _DAYS[(str(out), len(files))] = day
    return day, day_counts


def _day_of(job: HourJob) -> hourly.Day:
    """The shared part of ``job``'s hours, from this process's cache or built from the work area."""
    key = (str(job.out), len(job.files))
    if key not in _DAYS:
        work = job.out / WORK
        att = np.load(_attitude_path(work, len(job.files)))
        _DAYS.clear()
        _DAYS[key] = hourly.Day(
            files=list(job.files), summaries=list(job.summaries), out=job.out, work=work,
            att_t_ns=att["t"], att_q=att["q"], cells=skycells.split(job.dataset, work),
            match_radius_mas=job.config.match_radius_mas, calibration=job.config.calibration,
            alert_config=job.config.alert_config(), ccd_calibration=ccdcal.load(job.dataset))
    return _DAYS[key]


def run_hour(job: HourJob) -> dict:
    """Task: every output of one hour (:func:`pipeline.hourly.process_hour`); returns its summary."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet") as writer:
        return hourly.process_hour(_day_of(job), job.hour, writer)


def _hours(day: hourly.Day, dataset: Path, config: PipelineConfig, redo: set[int], progress: Progress,
           executor: Executor) -> list[dict]:
    """Stage 3: every hour of the day's files not yet done (and those in ``redo``), as tasks on
    ``executor``; all hour summaries, in hour order."""
    packets: dict[int, int] = {}
    for s in day.summaries:
        for h, (first, stop) in s["hours"].items():
            packets[int(h)] = packets.get(int(h), 0) + stop - first
    hours = sorted(packets)
    # Largest hours first: on a pool the last tasks to start are then the shortest, so the cores finish
    # together (hours differ ~3x in size as the scans cross the galactic plane). Results are awaited in the
    # same order (about the order they finish in, so progress moves steadily).
    order = sorted(hours, key=lambda h: (-packets[h], h))
    pending = {}
    for hour in order:
        if hour in redo or hourly.load_summary(day.work, hour) is None:
            job = HourJob(dataset, day.out, tuple(day.files), tuple(day.summaries), config, hour)
            pending[hour] = executor.submit(run_hour, job)
    done = {}
    for i, hour in enumerate(order):
        done[hour] = pending[hour].result() if hour in pending else hourly.load_summary(day.work, hour)
        progress("hours", 0.32 + 0.6 * (i + 1) / max(len(hours), 1))
    return [done[hour] for hour in hours]


def day_warnings(summaries: list[dict], span: list[int]) -> list[str]:
    """One line per TM file holding packets outside the day (quarantined as ``outside_day``, so nothing is
    lost): a file none of whose packets is usable is most likely another day's, to move to its own dataset."""
    lines = []
    for s in summaries:
        n = s["packets_outside_day"]
        if n:
            whole = s["packets_read"] == s["packets_quarantined"]
            lines.append(f"tm/{s['file']}: {'all ' if whole else ''}{n} of its {s['packets_read']} packets lie "
                         f"outside this day's OBMT span [{span[0]}, {span[1]}) ns, quarantined as outside_day"
                         + ("; a file of another day? move it to its own dataset" if whole else ""))
    return lines


def _finish(day: hourly.Day, hour_summaries: list[dict], day_counts: dict, config: PipelineConfig,
            fingerprint: dict, timings: dict, status: str) -> dict:
    """Stage 4: alerts over the day's candidates, gaps between hours, catalog and run.json."""
    out, work = day.out, day.work
    hours = [s["hour"] for s in hour_summaries]
    parts = [pads.dataset(str(work / "alerts" / f"{h}.parquet"), format="parquet").to_table() for h in hours]
    evidence = pa.concat_tables(parts).cast(schemas.TRANSITS) if parts else schemas.TRANSITS.empty_table()
    sources = skycells.sources(work, day.cells, evidence["source_id"].drop_null().to_numpy())
    alert_table = alerts.raise_alerts(evidence, sources, day.alert_config)
    io.write_table(alert_table, schemas.ALERTS, out / "alerts" / "part-0.parquet")
    io.write_table(hourly.boundary_gaps(hour_summaries), schemas.GAPS, out / "gaps" / "part-between-hours.parquet")
    for name, schema in schemas.RUN_TABLES.items():  # every table has a file, even on an empty day
        if not (out / name).is_dir():
            io.write_table(schema.empty_table(), schema, out / name / "part-0.parquet")
    catalog.write_catalog(out, fingerprint["day_span_ns"])

    def total(key: str, parts: list[dict]) -> int:
        return sum(int(p[key]) for p in parts)

    summaries = day.summaries
    counts = {
        "files": len(day.files),
        "packets_read": total("packets_read", summaries),
        "packets_used": day_counts["packets_used"] + total("packets_used", hour_summaries),
        "duplicates_dropped": day_counts["duplicates_dropped"] + total("duplicates_dropped", hour_summaries),
        "packets_quarantined": total("packets_quarantined", summaries) + day_counts["packets_quarantined"]
        + total("packets_quarantined", hour_summaries),
        "packets_outside_day": total("packets_outside_day", summaries),
        "transits": total("transits", hour_summaries),
        "transits_matched": total("transits_matched", hour_summaries),
        "ccd_images": total("ccd_images", hour_summaries),
        "hk_samples": day_counts["hk_samples"],
        "hk_limit_events": day_counts["hk_limit_events"],
        "catalogue_sources": day.cells["sources"],
        "alerts": alert_table.num_rows,
        "hours": len(hours),
    }
    counts["balance_ok"] = counts["packets_read"] == (
        counts["packets_used"] + counts["duplicates_dropped"] + counts["packets_quarantined"]
    )
    info = {
        "pipeline_version": pipeline_version(),
        "dataset": fingerprint["dataset"],
        "config": config.to_json(),
        "fingerprint": fingerprint,
        "inputs": {**{f"tm/{s['file']}": s["sha256"] for s in summaries},
                   "calibration/lsf_af.csv": lsf.TABLE_SHA256,
                   **({CCD_CALIBRATION: day.ccd_calibration.sha256} if day.ccd_calibration.sha256 else {})},
        "counts": counts,
        "warnings": day_warnings(summaries, fingerprint["day_span_ns"]),
        "timings_s": timings,
        "status": status,
    }
    io.write_json(info, out / RUN_JSON)
    return info


def _run(dataset: Path, files: list[Path], out: Path, config: PipelineConfig, fingerprint: dict,
         progress: Progress, executor: Executor) -> dict:
    timer = _Timer()
    # The catalogue's split by sky cell needs no TM: it runs beside the files' first pass.
    cells = executor.submit(skycells.split, dataset, out / WORK)
    summaries = _ingest(files, out, out / WORK, [], tuple(fingerprint["day_span_ns"]), progress, executor)
    timer.lap("ingest")
    day, day_counts = _day(dataset, files, summaries, out, config, cells.result())
    progress("decode", 0.32)
    timer.lap("decode")
    hour_summaries = _hours(day, dataset, config, set(), progress, executor)
    timer.lap("hours")
    info = _finish(day, hour_summaries, day_counts, config, fingerprint, timer.timings, "complete")
    progress("alerts", 1.0)
    timer.lap("alerts")
    info["timings_s"] = timer.timings
    info["peak_rss_bytes"] = timer.peak_rss
    io.write_json(info, out / RUN_JSON)
    shutil.rmtree(out / WORK, ignore_errors=True)
    return info
