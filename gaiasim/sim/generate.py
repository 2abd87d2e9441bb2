"""``gaiasim generate``: sky + scanning law + focal plane + noise + HK + downlink -> a dataset folder.

The span is cut into time slices that stream through in bounded memory (:mod:`gaiasim.sim.slices`):

A. per slice (parallel): crossed sky pixels, their sources, the transits in the slice;
B. here: sequence counts per APID and slice, housekeeping and attitude packets for the whole span;
C. per slice (parallel): windows, packets and packet faults, spooled per downlink pass and APID, and the
   truth parts (hashed by the worker that wrote them);
D. here, while C goes on: each pass file assembled from its spools in downlink order (and hashed) as soon
   as the slices that feed it are done; then the reference catalogue and the source truth in chunks
   (parallel, queued behind C), the fault ledger, and the manifest.

The folder is built under a temporary name beside ``out`` and renamed at the end, so a failed or killed
generation never leaves a half-written dataset behind.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gaiasim import dataset as ds
from gaiasim.executors import SerialExecutor
from gaiasim.sim import (
    allocator,
    catalogue,
    downlink,
    faults,
    hk_faults,
    housekeeping,
    logbook,
    sky,
    slices,
    transients,
    variability,
    vpu,
)
from gaiasim.sim.instrument import drift, focal_plane, mission_limits, realism
from gaiasim.sim.timescale import obmt_ns_from_date
from gaiasim.sim.truth import TRUTH_ATTITUDE, write_part
from gaiasim.spec import DaySpec, SpecError
from pipeline import icd, schemas
from pipeline.io import write_table
from pipeline.layout import CCD_CALIBRATION

Progress = Callable[[str, float], None]

#: Slice boundaries are multiples of 80 s: of the 10-s HK period and of the 204.8-us transit_id quantum,
#: so no HK rate bin and no transit_id straddles two slices.
SLICE_ALIGN_NS = 80_000_000_000
#: Aim for about this many transits per slice (memory per slice stays far under a GiB).
TRANSITS_PER_SLICE = 300_000
#: Transits per day at scale 1 used to size slices (docs/facts.md section 3, with margin for rich skies).
SIZING_TRANSITS_PER_DAY = 2.0e8
#: Octets per transit of TM, all packets included, for the disk-space check (measured: ~520 B at scale
#: 1e-3; HK and attitude add ~7 MB a day whatever the scale).
OCTETS_PER_TRANSIT = 700
FIXED_OCTETS_PER_DAY = 10_000_000


def _noop(_stage: str, _fraction: float) -> None:
    return None


def slice_bounds(t0_ns: int, t1_ns: int, scale: float) -> tuple[int, ...]:
    """Boundaries of the time slices of [t0, t1): interior ones aligned to :data:`SLICE_ALIGN_NS`, the step
    the nearest multiple of it to the length that holds :data:`TRANSITS_PER_SLICE`. (Rounded down, a full day
    had 1081 slices of 80 s instead of 540 of 160 s: every slice materialises the sky pixels it crosses, and
    at 80 s 2.2 sources were materialised for each transit found.)"""
    days = (t1_ns - t0_ns) / 86_400e9
    n = max(1, math.ceil(SIZING_TRANSITS_PER_DAY * scale * days / TRANSITS_PER_SLICE))
    step = max(SLICE_ALIGN_NS, round((t1_ns - t0_ns) / n / SLICE_ALIGN_NS) * SLICE_ALIGN_NS)
    first = (t0_ns // SLICE_ALIGN_NS + 1) * SLICE_ALIGN_NS
    interior = list(range(first + step - SLICE_ALIGN_NS, t1_ns, step)) if n > 1 else []
    return (t0_ns, *[b for b in interior if t0_ns < b < t1_ns], t1_ns)


#: ``gaiasim generate`` runs a day on a process pool when every worker gets at least this many slices.
AUTO_PROCESS_SLICES_PER_WORKER = 4


def auto_executor(spec: DaySpec, workers: int) -> str:
    """The executor ``gaiasim generate`` picks by default: a process pool when there are several workers
    and :data:`AUTO_PROCESS_SLICES_PER_WORKER` slices or more for each, else this process on every numba
    thread. The pool runs the Python and numpy parts in parallel too, but each worker first imports the
    package and loads the compiled kernels. Measured on 2 cores, in-process against pool: 61.7 s against
    48.5 s at scale 5e-2 (34 slices); 27.3-29.1 s against 21.9-27.0 s at 2e-2 (14 slices); 12.9-16.1 s
    against 14.9-15.8 s at 1e-2 (7 slices)."""
    t0 = obmt_ns_from_date(spec.date)
    n_slices = len(slice_bounds(t0, t0 + spec.days * 86_400_000_000_000, spec.scale)) - 1
    return "process" if workers >= 2 and n_slices >= AUTO_PROCESS_SLICES_PER_WORKER * workers else "serial"


def expected_size(spec: DaySpec) -> dict[str, float]:
    """A generous upper estimate of a dataset's octets for the up-front disk-space check (cheap: no sky
    is sampled; :func:`dry_run` gives the date-specific estimate)."""
    transits = 7.0e7 * spec.scale * spec.days * 1.25  # the geometric NSL rate before data loss [D]
    tm = transits * OCTETS_PER_TRANSIT + FIXED_OCTETS_PER_DAY * spec.days
    truth = transits * TRUTH_OCTETS_PER_TRANSIT
    return {"transits": transits, "tm_octets": tm, "total_octets": tm + truth}


#: Truth octets per transit (its row, 9-10 CCD rows, sources; Parquet): measured ~305 on the full day of the
#: population sky with truth/ccd in LZ4 (~22.5 GB for 73.9 M transits; 250 with zstd on the earlier sky), margin kept.
TRUTH_OCTETS_PER_TRANSIT = 330.0
#: Margin on the dry-run estimate in the disk-space check.
DISK_MARGIN = 1.1


def needed_octets(spec: DaySpec, free: int) -> float:
    """Octets the dataset of ``spec`` needs on disk, for the up-front check against ``free``: the cheap
    upper bound of :func:`expected_size` when that fits, else the date-specific :func:`dry_run` estimate
    (seconds) with a 10 % margin, so that a full-scale day is not refused on a disk it fits."""
    need = expected_size(spec)["total_octets"]
    if need <= free:
        return need
    estimate = dry_run(spec)
    return DISK_MARGIN * (estimate["tm_octets"] + estimate["transits"] * TRUTH_OCTETS_PER_TRANSIT)


#: Scale of the sample run behind ``--dry-run`` (a few seconds a day whatever the requested scale).
DRY_RUN_SCALE = 2e-5


def dry_run(spec: DaySpec) -> dict[str, float]:
    """Expected counts and octets of ``spec`` without writing it: the transits of the same days found at
    a small scale, scaled up, times the ICD packet sizes of their window classes."""
    sample = min(spec.scale, DRY_RUN_SCALE)
    t0 = obmt_ns_from_date(spec.date)
    t1 = t0 + spec.days * 86_400_000_000_000
    counts = dict.fromkeys(icd.STAR_APIDS, 0)
    with tempfile.TemporaryDirectory(prefix="gaiasim-dry-run-") as tmp:
        (Path(tmp) / "transits").mkdir()
        bounds = (*range(t0, t1, 86_400_000_000_000), t1)
        ctx = slices.SliceContext(spec.seed, sample, t0, t1, bounds, (t1,), ("dry-run",), faults.FaultPlan(), tmp,
                                  tmp, sky=spec.sky)
        for k in range(ctx.n_slices):
            for apid, n in slices.find_slice_transits(ctx, k)["counts"].items():
                counts[apid] += n
    factor = spec.scale / sample
    star_octets = sum(n * factor * icd.packet_octets(apid) for apid, n in counts.items())
    fixed = spec.days * 86400 * (icd.packet_octets(icd.APID_ATTITUDE) * 1e9 / housekeeping.ATTITUDE_PERIOD_NS
                                 + icd.packet_octets(icd.APID_HK) * 1e9 / housekeeping.HK_PERIOD_NS)
    transits = sum(counts.values()) * factor
    return {
        "transits": transits,
        "tm_octets": star_octets + fixed,
        "octets_per_transit": (star_octets + fixed) / max(transits, 1.0),
        "tm_files": len(downlink.pass_schedule(spec.date, spec.days, t0)),
        "slices": len(slice_bounds(t0, t1, spec.scale)) - 1,
        "sample_scale": sample,
    }


def _remove_abandoned(parent: Path, name: str) -> None:
    """Remove the temporary folders of earlier generations of ``name`` whose process is gone (killed)."""
    for tmp in parent.glob(f".{name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except PermissionError:  # alive, another user's
            continue


def generate(spec: DaySpec, out: Path, faults_path: Path | None = None, progress: Progress = _noop,
             executor: Executor | None = None) -> dict:
    """Generate the dataset of ``spec`` into ``out`` (which must not exist); returns its manifest."""
    allocator.tune()  # gaiasim.sim.allocator: the workers do it before their first task
    out = Path(out)
    if out.exists():
        raise SpecError(f"output {out} already exists; choose a new --out folder or remove it")
    plan = faults.load_plan(faults_path) if faults_path else faults.FaultPlan()
    parent = out.parent if str(out.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(parent).free
    need = needed_octets(spec, free)
    if need > free:
        raise SpecError(f"not enough disk for scale {spec.scale:g} x {spec.days} day(s): about {need / 1e9:.1f} GB "
                        f"needed, {free / 1e9:.1f} GB free under {parent}; free space or lower --scale")
    _remove_abandoned(parent, out.name)
    tmp = parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        vplan = variability.load_plan(faults_path) if faults_path else variability.VariabilityPlan()
        dplan = drift.load_plan(faults_path) if faults_path else drift.NONE
        manifest, digests = _generate_into(spec, plan, tmp, progress, executor or SerialExecutor(), vplan, dplan)
        manifest["faults_plan"] = str(faults_path) if faults_path else ""
        ds.write_manifest(tmp, manifest, known=digests)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _sequence_plan(spec: DaySpec, summaries: list[dict]) -> tuple[list[dict], list[dict], dict[int, int],
                                                                   dict[int, int]]:
    """Per slice: each star APID's first sequence count and packet index; the star packet totals; and
    every APID's first sequence count (random, so the 14-bit wrap is exercised)."""
    rng = np.random.default_rng([spec.seed, 2])
    seq0 = {apid: int(rng.integers(0, icd.SEQ_COUNT_MODULO)) for apid in icd.PAYLOADS}
    seq_start, index_start = [], []
    running = dict.fromkeys(icd.STAR_APIDS, 0)
    for s in summaries:
        index_start.append(dict(running))
        seq_start.append({a: (seq0[a] + running[a]) % icd.SEQ_COUNT_MODULO for a in icd.STAR_APIDS})
        for a in icd.STAR_APIDS:
            running[a] += s["counts"][a]
    return seq_start, index_start, running, seq0


def _hk_and_attitude(spec: DaySpec, ctx: slices.SliceContext, summaries: list[dict], seq0: dict[int, int]) -> list:
    """Housekeeping and attitude packets of the whole span, spooled like slice 0's; returns faults."""
    rng = np.random.default_rng([spec.seed, 5])
    bins = np.concatenate([s["rate_bins_ns"] for s in summaries])
    rate = {fov: np.concatenate([s["rates"][fov] for s in summaries]) / (slices.RATE_BIN_NS / 1e9) for fov in (1, 2)}
    t_hk = np.arange(-(-ctx.t0_ns // housekeeping.HK_PERIOD_NS) * housekeeping.HK_PERIOD_NS, ctx.t1_ns,
                     housekeeping.HK_PERIOD_NS, dtype=np.int64)
    # Each HK sample reports the stars of the 10 s after it (bins are aligned to the HK grid).
    at = np.clip(np.searchsorted(bins, t_hk, side="right") - 1, 0, max(len(bins) - 1, 0))
    rates = {fov: (r[at] if len(r) else np.zeros(len(t_hk))) for fov, r in rate.items()}
    hk_payload = np.zeros(len(t_hk), dtype=icd.HK_PAYLOAD)
    hk_plan = hk_faults.HkFaultPlan(ctx.plan.hk_excursions, ctx.plan.hk_stale)
    hk_values, hk_rows = hk_faults.inject_hk_faults(
        hk_plan, np.random.default_rng([spec.seed, 9]), t_hk, housekeeping.hk_values(rng, t_hk, ctx.t0_ns, rates),
        mission_limits.load())
    hk_payload["value"] = hk_values
    write_part(Path(ctx.root) / "truth" / "hk_anomalies", "00000", hk_faults.ledger_table(hk_rows))
    t_att, att_payload = housekeeping.attitude_samples(
        -(-ctx.t0_ns // housekeeping.ATTITUDE_PERIOD_NS) * housekeeping.ATTITUDE_PERIOD_NS, ctx.t1_ns,
        lambda t: slices.realised_attitude(ctx, t))
    q_real = att_payload["q"].astype(np.float64)
    # The packets carry the on-board estimate; the truth keeps the real attitude.
    q = realism.onboard_attitude(spec.seed, ctx.effects, t_att, q_real)
    dot = np.clip(np.abs(np.sum(q * q_real, axis=1)), 0.0, 1.0)
    write_part(Path(ctx.root) / "truth" / "attitude", "00000", pa.table(
        {"obmt_ns": t_att, **{f"q_{c}": q_real[:, i] for i, c in enumerate("xyzw")},
         "onboard_error_mas": 2.0 * np.arccos(dot) / focal_plane.MAS_RAD}, schema=TRUTH_ATTITUDE))
    glitches = faults.attitude_glitches(ctx.plan, rng, q)
    att_payload["q"] = q
    found = []
    for apid, t, payload in ((icd.APID_HK, t_hk, hk_payload), (icd.APID_ATTITUDE, t_att, att_payload)):
        seq = (seq0[apid] + np.arange(len(t))) % icd.SEQ_COUNT_MODULO
        rows = icd.encode_packets(apid, seq, t, payload)
        protected = np.zeros(len(t), dtype=bool)
        protected[[0, -2, -1][: len(t)]] = True
        if apid == icd.APID_HK:
            for r in hk_rows:  # a lost HK packet would move the anomaly's first or last sample
                protected[(t >= r["start_ns"]) & (t <= r["end_ns"])] = True
        if apid == icd.APID_ATTITUDE:
            for first, length in glitches:
                protected[first:first + length] = True  # a glitch is a wrong solution, not a lost packet
                p = int(np.searchsorted(np.array(ctx.pass_starts_ns), t[first], side="right"))
                # Offset -1: found by time in the attitude, not at a place in the file.
                found.append((p, apid, -1, -1, "attitude_glitch", int(seq[first]), int(t[first]), "hk_event"))
        found += slices.write_spools(ctx, 0, apid, seq, t, rows, protected, rng)
    return found


class _PassFiles:
    """Phase D's TM files: each pass file concatenated from its spools in downlink order as soon as every
    slice that feeds it is rendered (while the workers render later slices), and hashed as it is written
    (the manifest then need not read tens of GB again)."""

    def __init__(self, ctx: slices.SliceContext, root: Path) -> None:
        self.ctx, self.root = ctx, root
        (root / "tm").mkdir(parents=True, exist_ok=True)
        self.base: dict[tuple[int, int, int], int] = {}  # (pass, apid, slice) -> offset of its spool in the file
        self.digests: dict[str, str] = {}  # dataset-relative path -> SHA-256
        self.assembled = 0
        self.last_octets = 0  # packet length of the last file's last packet (for the truncation fault)
        # Pass p carries the packets made before its start, and what pass p - 1 delivers late or sends
        # again: it is complete once every slice that starts before it is rendered.
        firsts = np.array(ctx.bounds_ns[:-1], dtype=np.int64)
        self.needs = [int(np.searchsorted(firsts, start)) for start in ctx.pass_starts_ns]

    def rendered(self, n_slices: int) -> None:
        """Slices 0 .. ``n_slices`` - 1 are rendered (their spools in place): write the passes they complete."""
        while self.assembled < len(self.needs) and self.needs[self.assembled] <= n_slices:
            self._write(self.assembled)
            self.assembled += 1

    def _write(self, p: int) -> None:
        path = self.root / "tm" / f"{self.ctx.pass_names[p]}.tm"
        digest = hashlib.sha256()
        # Two buffers: one chunk is hashed on a thread (hashlib releases the GIL) while it is written here
        # and the next one is read into the other buffer.
        views = (memoryview(bytearray(1 << 22)), memoryview(bytearray(1 << 22)))
        hashing: list[Future | None] = [None, None]
        turn = offset = 0
        with open(path, "wb") as out, ThreadPoolExecutor(1) as hasher:
            for apid in sorted(icd.PAYLOADS, key=downlink.PRIORITY.__getitem__):
                folder = Path(self.ctx.work) / "spool" / f"{p:04d}" / f"{apid:04d}"
                for spool in sorted(folder.glob("*.bin")) if folder.is_dir() else []:
                    self.base[(p, apid, int(spool.stem))] = offset
                    with open(spool, "rb", buffering=0) as f:
                        while True:
                            if hashing[turn] is not None:
                                hashing[turn].result()  # that buffer's previous chunk is hashed: reuse it
                            n = f.readinto(views[turn])
                            if not n:
                                break
                            hashing[turn] = hasher.submit(digest.update, views[turn][:n])
                            out.write(views[turn][:n])
                            offset += n
                            self.last_octets = icd.packet_octets(apid)
                            turn ^= 1
                    spool.unlink()
        self.digests[f"tm/{path.name}"] = digest.hexdigest()

    def finish(self, plan: faults.FaultPlan, found: list[tuple], ledger: faults.Ledger) -> None:
        """Write the passes left, then the fault ledger with file offsets, and truncate the last file if
        the plan says so (its digest is then left to the manifest)."""
        self.rendered(self.ctx.n_slices)
        for p, apid, k, rel, kind, seq, t, expected in found:
            offset = self.base[(p, apid, k)] + rel if k >= 0 else -1
            ledger.add(kind, f"{self.ctx.pass_names[p]}.tm", apid, seq, t, offset, expected)
        if plan.truncated_files and self.ctx.pass_names and self.last_octets:
            last_file = self.root / "tm" / f"{self.ctx.pass_names[-1]}.tm"
            size = last_file.stat().st_size
            with open(last_file, "rb") as f:
                f.seek(size - self.last_octets)
                tail = np.frombuffer(f.read(self.last_octets), dtype=np.uint8)
            end, (kind, apid, seq, t, start, expected) = faults.truncation(plan, tail, size)
            os.truncate(last_file, end)
            ledger.add(kind, last_file.name, apid, seq, t, start, expected)
            del self.digests[f"tm/{last_file.name}"]


def _sources_and_catalogue(spec: DaySpec, pixels: np.ndarray, root: Path, executor: Executor) -> list[Future]:
    """Source truth and the reference catalogue of every crossed pixel, in bounded chunks, as tasks on
    ``executor``: futures of each chunk's source count."""
    chunks = slices.pixel_chunks(pixels, spec.scale, spec.sky) or [np.empty(0, np.int64)]
    return [executor.submit(_source_chunk, spec, i, chunk, root) for i, chunk in enumerate(chunks)]


def _source_chunk(spec: DaySpec, i: int, pixels: np.ndarray, root: Path) -> int:
    """Task: the sources of chunk ``i`` of the crossed pixels, their truth and catalogue parts; their count."""
    allocator.tune()  # gaiasim.sim.allocator
    if spec.sky == "galaxy":  # and its per-star truth (docs/sky.md section 6b); the toy sky writes none
        from gaiasim.sim import galaxy

        sources, physics, sky_pixels = galaxy.materialise(spec.seed, pixels, spec.scale, physics=True)
        write_part(root / "truth" / "source_physics", f"{i:05d}", physics)
        write_part(root / "truth" / "sky_pixels", f"{i:05d}", sky_pixels)
    else:
        sources = sky.materialise(spec.seed, pixels, spec.scale, spec.sky)
    write_part(root / "truth" / "sources", f"{i:05d}", sources)
    links = catalogue.write(root / "catalogue", sources, np.random.default_rng([spec.seed, 3, i]), part=i,
                            seed=spec.seed)
    write_part(root / "truth" / "catalogue_links", f"{i:05d}", links)  # the pipeline never reads it
    return sources.num_rows


def _rate_transients(spec: DaySpec, ctx: slices.SliceContext) -> slices.SliceContext:
    """The context with the transients of the DR3 rate x scale x boost (gaiasim.sim.transients.rate_events), each
    calendar day's from its own stream, on hosts of the pixels that day's scans cross; known before phase A."""
    boost = ctx.variability_plan.transient_boost
    days = [((spec.date + dt.timedelta(days=d)).toordinal(), ctx.t0_ns + d * transients.NS_PER_DAY,
             ctx.t0_ns + (d + 1) * transients.NS_PER_DAY) for d in range(spec.days)]
    events, new_sources = transients.rate_events(spec.seed, spec.scale, boost, days,
                                                 lambda t0, t1: slices.crossed_pixels(slices.scan_law(ctx), t0, t1),
                                                 spec.sky)
    return dataclasses.replace(ctx, transients=events, new_sources=new_sources)


def _place_transients(spec: DaySpec, ctx: slices.SliceContext) -> slices.SliceContext:
    """The context with the plan's focused transients added, placed on the transits phase A found (then to be
    redone), on hosts the rate's events do not use."""
    parts = []
    for k in range(ctx.n_slices):
        with np.load(Path(ctx.work) / "transits" / f"{k:05d}.npz") as f:
            real = f["source_id"] < vpu.ARTEFACT_SOURCE_ID_BASE  # not the on-board ghosts (gaiasim.sim.vpu)
            parts.append({key: f[key][real] for key in ("source_id", "obmt_ns", "fov", "zeta_rad")})
    tr = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    focused, new_sources = variability.place_transients(
        ctx.variability_plan, np.random.default_rng([spec.seed, 6]), spec.seed, spec.scale, ctx.t0_ns, ctx.t1_ns,
        tr["source_id"], tr["obmt_ns"], tr["fov"], tr["zeta_rad"], sky_model=spec.sky,
        exclude=ctx.transients["host_source_id"].to_numpy())
    return dataclasses.replace(ctx, transients=pa.concat_tables([ctx.transients, focused]),
                               new_sources=pa.concat_tables([ctx.new_sources, new_sources]))


def _event_transits(summaries: list[dict]) -> dict[str, np.ndarray]:
    """The transits of the transients' sources that the final phase A found (source_id, obmt_ns, fov)."""
    return {key: np.concatenate([s["event_transits"][key] for s in summaries]) for key in ("source_id", "obmt_ns",
                                                                                           "fov")}


def _with_catalogue(events: pa.Table, root: Path, seen: dict[str, np.ndarray]) -> pa.Table:
    """The transients with the alert a correct pipeline raises for those on sources the reference catalogue
    lacks (truth/catalogue_links, written by phase D): a source new to the catalogue."""
    if not events.num_rows:
        return events
    links = pq.read_table(root / "truth" / "catalogue_links", columns=["source_id", "relation"],
                          filters=[("relation", "=", "missing"),
                                   ("source_id", "in", events["source_id"].to_pylist())])
    return transients.with_catalogue(events, links["source_id"].to_numpy(), seen["source_id"], seen["obmt_ns"],
                                     seen["fov"])


def _generate_into(spec: DaySpec, plan: faults.FaultPlan, root: Path, progress: Progress, executor: Executor,
                   vplan: variability.VariabilityPlan, dplan: drift.DriftPlan = drift.NONE
                   ) -> tuple[dict, dict[str, str]]:
    """Write the dataset's files under ``root``: (the manifest without its digests, the SHA-256 of the files
    hashed as they were written: the TM files and the slices' truth parts)."""
    t0 = obmt_ns_from_date(spec.date)
    t1 = t0 + spec.days * 86_400_000_000_000
    passes = downlink.pass_schedule(spec.date, spec.days, t0)
    bounds = slice_bounds(t0, t1, spec.scale)
    ctx = slices.SliceContext(spec.seed, spec.scale, t0, t1, bounds, tuple(p.start_ns for p in passes),
                              tuple(p.name for p in passes), plan, str(root), str(root / ".work"), vplan,
                              effects=realism.effects_named(spec.instrument), drift=dplan, sky=spec.sky)
    (root / ".work" / "transits").mkdir(parents=True)
    n = ctx.n_slices

    if vplan.transient_boost:
        ctx = _rate_transients(spec, ctx)
    summaries: list[dict] = [{}] * n
    futures = {executor.submit(slices.find_slice_transits, ctx, k): k for k in range(n)}
    for done, (future, k) in enumerate(futures.items()):
        summaries[k] = future.result()
        progress("transits", 0.4 * (done + 1) / n)
    if vplan.n_transients:
        ctx = _place_transients(spec, ctx)
        summaries = [future.result() for future in [executor.submit(slices.find_slice_transits, ctx, k)
                                                    for k in range(n)]]
    seen = _event_transits(summaries)
    ctx = dataclasses.replace(ctx, transients=transients.with_detectability(ctx.transients, seen["source_id"],
                                                                            seen["obmt_ns"], seen["fov"]))
    seq_start, index_start, totals, seq0 = _sequence_plan(spec, summaries)
    found = _hk_and_attitude(spec, ctx, summaries, seq0)
    progress("housekeeping", 0.45)

    pass_files = _PassFiles(ctx, root)
    known: dict[str, str] = {}  # SHA-256 of the truth parts, hashed by the workers that wrote them
    futures = {executor.submit(slices.render_slice, ctx, k, seq_start[k], totals, index_start[k]): k
               for k in range(n)}
    # Queued behind the slices: the catalogue chunks keep the workers busy while the last pass files are
    # written here.
    pixels = np.unique(np.concatenate([s["pixels"] for s in summaries]))
    sources = _sources_and_catalogue(spec, pixels, root, executor)
    for done, future in enumerate(futures):
        slice_faults, digests = future.result()
        found += slice_faults
        known.update(digests)
        pass_files.rendered(done + 1)  # disk-bound, here while the workers render the next slices
        progress("windows", 0.45 + 0.4 * (done + 1) / n)

    ledger = faults.Ledger()
    pass_files.finish(plan, found, ledger)
    write_part(root / "truth" / "faults", "00000", ledger.table())
    write_part(root / "truth" / "instrument", "00000", ctx.instrument().table())
    write_part(root / "truth" / "attitude_events", "00000", ctx.instrument().attitude_events())
    # The calibration a previous cycle measured, which the system under test reads (docs/run-contract.md).
    write_table(ctx.instrument().calibration_product(spec.seed), schemas.CCD_CALIBRATION, root / CCD_CALIBRATION)
    if ctx.new_sources.num_rows:
        write_part(root / "truth" / "sources", "new", ctx.new_sources)  # in the sky, not in the catalogue
    progress("catalogue", 0.9)
    n_sources = sum(future.result() for future in sources)
    ctx = dataclasses.replace(ctx, transients=_with_catalogue(ctx.transients, root, seen))
    write_part(root / "truth" / "transients", "00000", ctx.transients)
    shutil.rmtree(root / ".work")
    for stale in (root / "truth").rglob(".*.tmp-*"):  # a part half-written by a lost worker (its task ran again)
        stale.unlink()
    n_transits = sum(sum(s["counts"].values()) for s in summaries)
    per_day = [0] * spec.days
    for k, s in enumerate(summaries):
        per_day[min((bounds[k] - t0) // 86_400_000_000_000, spec.days - 1)] += sum(s["counts"].values())
    octets = {p.name: p.stat().st_size for p in (root / "tm").glob("*.tm")}
    # The logbook counts the rows of the same two ledgers the scorecard counts (gaiasim.sim.logbook).
    hk_ledger = pq.read_table(root / "truth" / "hk_anomalies", columns=["kind", "start_ns"])
    anomalies = pa.concat_tables([ledger.table().select(["kind", "obmt_ns"]),
                                  hk_ledger.rename_columns(["kind", "obmt_ns"])])
    ds.write_logbook(root, logbook.entries(spec.seed, spec.date, spec.days, t0,
                                           list(zip(ctx.pass_names, ctx.pass_starts_ns, strict=True)), octets,
                                           anomalies, per_day))
    progress("manifest", 0.95)
    manifest = {
        "spec": spec.to_json(),
        "obmt_start_ns": t0,
        "obmt_end_ns": t1,
        "counts": {
            "sources": n_sources,
            "transits": n_transits,
            "transits_lost_on_board": sum(s["lost_on_board"] for s in summaries),
            # The on-board VPU (gaiasim.sim.vpu): detections left without a window, ghosts sent down.
            "transits_lost_conflict": sum(s["lost_conflict"] for s in summaries),
            "spurious_transits": sum(s["spurious"] for s in summaries),
            "slices": n,
            "tm_files": len(passes),
            "faults": ledger.count(),
            "transients": ctx.transients.num_rows,
        },
        # The transients' rate (gaiasim.sim.transients: events a day, about DR3's alerts a day x scale x boost of
        # them detectable) and the plan's focused ones.
        "transients": {"alerts_per_day": transients.ALERTS_PER_DAY, "boost": vplan.transient_boost,
                       "rate_per_day": transients.events_per_day(spec.scale, vplan.transient_boost),
                       "focused": vplan.n_transients, "focused_mix": vplan.transient_mix,
                       "events": ctx.transients.num_rows,
                       "detectable": int(np.sum(ctx.transients["detectable"].to_numpy()))},
    }
    return manifest, {**known, **pass_files.digests}

