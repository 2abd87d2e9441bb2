"""Per-slice tasks of the generator: a day is cut into time slices processed independently.

Phase A (:func:`find_slice_transits`): the sky pixels the scans cross in the slice, their sources, and
the transits inside the slice, saved to ``<work>/transits/<k>.npz``. Phase C (:func:`render_slice`):
the star packets of those transits (windows, encoding with their sequence counts, packet faults),
spooled per pass and APID under ``<work>/spool/``, and the slice's truth parts. Tasks take a picklable
:class:`SliceContext` and a slice index, write their own files and return small summaries, so they run
the same in-process, in a process pool or on Dask workers; randomness is keyed by (seed, slice) or by
(seed, transit), so the result never depends on where a slice ran. A task may run again (a Dask
worker lost, a task retried) and then rewrites the same files with the same bytes: every file appears
at once under its final name (written under a temporary name, then renamed), never appended in place.
"""

from __future__ import annotations

import functools
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from gaiasim.sim import allocator, faults, onboard, signal, sky, variability, vpu
from gaiasim.sim.attitude import AttitudeError, realised_transits
from gaiasim.sim.instrument import focal_plane as geometry
from gaiasim.sim.instrument import realism
from gaiasim.sim.instrument.drift import NONE as NO_DRIFT
from gaiasim.sim.instrument.drift import DriftPlan
from gaiasim.sim.instrument.electronics import TRUE as CALIBRATION
from gaiasim.sim.scanlaw import ScanLaw, ScanLawParams
from gaiasim.sim.truth import TRUTH_TRANSITS, write_part
from pipeline import icd
from pipeline.io import sha256_file

#: Sampling of the scan to find the sky pixels a slice crosses: along scan (ns) and across scan.
COVERAGE_STEP_NS = 1_000_000_000
COVERAGE_AC_SAMPLES = 15
COVERAGE_AC_MARGIN_RAD = np.deg2rad(0.02)
#: Sources materialised at once in phase A, and transits rendered at once in phase C (bounded memory).
SOURCES_PER_CHUNK = 2_000_000
TRANSITS_PER_CHUNK = 100_000
#: HK star-rate bins (the HK sampling period, docs/facts.md section 8).
RATE_BIN_NS = 10_000_000_000


@dataclass(frozen=True)
class SliceContext:
    seed: int
    scale: float
    t0_ns: int  # dataset start
    t1_ns: int  # dataset end
    bounds_ns: tuple[int, ...]  # slice k is [bounds[k], bounds[k + 1])
    pass_starts_ns: tuple[int, ...]
    pass_names: tuple[str, ...]
    plan: faults.FaultPlan
    root: str  # the dataset's temporary folder (truth parts go to <root>/truth/<table>/)
    work: str  # scratch folder inside it (removed when the dataset is complete)
    variability_plan: variability.VariabilityPlan = field(default_factory=variability.VariabilityPlan)
    #: Transient events (gaiasim.sim.transients.TRUTH_TRANSIENTS): the rate's, and the focused ones placed after a
    #: first phase A.
    transients: pa.Table = field(default_factory=variability.TRUTH_TRANSIENTS.empty_table)
    #: Sources new to the catalogue (sky.TRUTH_SOURCES rows): in the sky, not in the catalogue.
    new_sources: pa.Table = field(default_factory=sky.TRUTH_SOURCES.empty_table)
    #: The imperfections of the simulated instrument (gaiasim.sim.instrument.realism).
    effects: realism.Effects = realism.REALISTIC
    #: The fault plan's calibration drift (gaiasim.sim.instrument.drift).
    drift: DriftPlan = NO_DRIFT
    #: The sky model (gaiasim.sim.sky.MODELS), the spec's ``sky`` key.
    sky: str = "toy"

    def instrument(self) -> realism.InstrumentState:
        """The true instrument of this dataset (drawn from the seed, the same in every worker)."""
        return realism.draw(self.seed, self.effects, self.t0_ns, self.drift, self.t1_ns)

    @property
    def n_slices(self) -> int:
        return len(self.bounds_ns) - 1


#: Transits are searched this far beyond a slice under the nominal law, then kept where the realised
#: attitude puts them: more than the largest attitude error over the scan rate (~0.5 s).
REALISED_MARGIN_NS = 2_000_000_000


@functools.lru_cache(maxsize=4)
def _scan_law(t0_ns: int, t1_ns: int) -> ScanLaw:
    margin = COVERAGE_STEP_NS + REALISED_MARGIN_NS
    return ScanLaw(t0_ns - margin, t1_ns + margin, ScanLawParams())


def scan_law(ctx: SliceContext) -> ScanLaw:
    return _scan_law(ctx.t0_ns, ctx.t1_ns)


@functools.lru_cache(maxsize=4)
def attitude_error(seed: int) -> AttitudeError:
    return AttitudeError(seed)


def realised_attitude(ctx: SliceContext, obmt_ns: np.ndarray) -> np.ndarray:
    """The attitude the spacecraft really had (and reports in its attitude packets)."""
    return attitude_error(ctx.seed).apply(scan_law(ctx).attitude(obmt_ns), obmt_ns)


def crossed_pixels(scan: ScanLaw, t0_ns: int, t1_ns: int) -> np.ndarray:
    """Sky pixels that the two fields of view cross in [t0, t1]."""
    t = np.arange(t0_ns, t1_ns + COVERAGE_STEP_NS, COVERAGE_STEP_NS, dtype=np.int64)
    q = scan.attitude(np.minimum(t, t1_ns))
    zeta = np.linspace(geometry.ZETA_MIN_RAD - COVERAGE_AC_MARGIN_RAD, -geometry.ZETA_MIN_RAD + COVERAGE_AC_MARGIN_RAD,
                       COVERAGE_AC_SAMPLES)
    pixels = []
    for fov in (1, 2):
        srs = geometry.srs_direction(geometry.fov_phi_rad(fov), zeta)  # (ac, 3)
        u = geometry.quat_rotate(q[:, None, :], srs[None, :, :])
        pixels.append(sky.pixels_near(u.reshape(-1, 3)))
    return np.unique(np.concatenate(pixels))


def pixel_chunks(pixels: np.ndarray, scale: float, model: str = "toy") -> list[np.ndarray]:
    """Split pixels so each chunk holds about SOURCES_PER_CHUNK expected sources."""
    expected = np.cumsum(sky.expected_sources(pixels, scale, model))
    cut = np.searchsorted(expected, np.arange(SOURCES_PER_CHUNK, expected[-1] if len(expected) else 0,
                                              SOURCES_PER_CHUNK))
    return [c for c in np.split(pixels, cut) if len(c)]


def find_slice_transits(ctx: SliceContext, k: int) -> dict:
    """Phase A: the transits of slice ``k`` (saved to ``transits/<k>.npz``); returns counts per APID,
    sources materialised and transit counts per FoV in 10-s bins (for the HK star rates)."""
    allocator.tune()  # the chunks' temporaries reuse the heap (gaiasim.sim.allocator)
    ts, te = ctx.bounds_ns[k], ctx.bounds_ns[k + 1]
    # The on-board VPU (gaiasim.sim.vpu) sees the detections of a halo each side: its result is the slicing's.
    halo = vpu.HALO_NS if vpu.active(ctx.effects) else 0
    scan = scan_law(ctx)
    parts = []
    n_sources = 0
    crossed = crossed_pixels(scan, ts, te)
    for c, pixels in enumerate(pixel_chunks(crossed, ctx.scale, ctx.sky)):
        src = sky.materialise(ctx.seed, pixels, ctx.scale, ctx.sky)
        n_sources += src.num_rows
        if c == 0 and ctx.new_sources.num_rows:
            src = pa.concat_tables([src, ctx.new_sources])  # a few: searched in every slice
        u = geometry.unit_from_radec(src["ra_deg"].to_numpy(), src["dec_deg"].to_numpy())
        found = scan.find_transits(u, ts - REALISED_MARGIN_NS, te + REALISED_MARGIN_NS)
        t, zeta = realised_transits(scan.attitude, attitude_error(ctx.seed), u[found["source_index"]],
                                    found["fov"], found["obmt_ns"])
        inside = (t >= ts - halo) & (t < te + halo) & (zeta >= geometry.ZETA_MIN_RAD) & (zeta < -geometry.ZETA_MIN_RAD)
        sid = src["source_id"].to_numpy()
        var = variability.variable_params(ctx.seed, sid, ctx.variability_plan)
        # G at each transit: variables, transients; a new source exists only during its event (NaN outside).
        g_now = variability.g_mag_at(src["g_mag"].to_numpy()[found["source_index"]], t, sid[found["source_index"]],
                                     var.take(found["source_index"]), ctx.transients)
        inside &= np.isfinite(g_now)
        i = found["source_index"][inside]
        parts.append({
            "obmt_ns": t[inside], "fov": found["fov"][inside].astype(np.int8), "zeta_rad": zeta[inside],
            "source_id": sid[i], "g_mag": g_now[inside],
            "bp_rp": src["bp_rp"].to_numpy()[i].astype(np.float64),
        })
    tr = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]} if parts else None
    if tr is None or len(tr["obmt_ns"]) == 0:
        tr = {"obmt_ns": np.empty(0, np.int64), "fov": np.empty(0, np.int8), "zeta_rad": np.empty(0),
              "source_id": np.empty(0, np.int64), "g_mag": np.empty(0), "bp_rp": np.empty(0)}
    row = geometry.ccd_row_of_zeta(tr["zeta_rad"])
    ac_px = geometry.ac_px_of_zeta(tr["zeta_rad"], row)
    tid = icd.encode_transit_id(tr["obmt_ns"], tr["fov"], row, ac_px)
    # Two images within one AC pixel and one 0.2 ms OBMT quantum would share a window on board: only the
    # brighter one gets it (the other never becomes a transit). Then order by time, as packets are made.
    keep = _brightest_per_id(tid, tr["g_mag"])  # in transit-id order: the stable sort by time breaks ties by it
    keep = keep[np.argsort(tr["obmt_ns"][keep], kind="stable")]
    # On-board losses: dead time, then the G-dependent data loss (gaiasim.sim.onboard).
    dead_intervals = onboard.dead_intervals(ctx.seed, ts - halo, te + halo)
    dead = onboard.in_dead_time(tr["obmt_ns"][keep], dead_intervals)
    artefacts: dict[str, np.ndarray] = {}
    n_conflict = n_spurious = 0
    if not halo:
        gone = dead | onboard.lost(ctx.seed, tid[keep], tr["g_mag"][keep])
        n_lost = int(gone.sum())
        keep = keep[~gone]
        tr = {key: v[keep] for key, v in tr.items()}
        tr.update(transit_id=tid[keep], ccd_row=row[keep].astype(np.int8), ac_px=ac_px[keep].astype(np.int16),
                  window_class=signal.window_class_of(tr["g_mag"]), gate=signal.gate_of(tr["g_mag"]))
    else:  # then the VPU: windows by on-board G, ghosts, conflicts, and the data loss
        t_keep = tr["obmt_ns"][keep]
        n_dead = int(np.sum(dead & (t_keep >= ts) & (t_keep < te)))
        keep = keep[~dead]
        tr = {key: v[keep] for key, v in tr.items()}
        tr.update(transit_id=tid[keep], ccd_row=row[keep].astype(np.int8), ac_px=ac_px[keep].astype(np.int16))
        tr, artefacts, counts = vpu.on_board(ctx.seed, ctx.effects, tr, ts, te, dead_intervals)
        n_lost, n_conflict, n_spurious = n_dead + counts["lost_on_board"], counts["lost_conflict"], counts["spurious"]
    saved = {**tr, **{f"artefact_{name}": v for name, v in artefacts.items()}}
    _save_npz(Path(ctx.work) / "transits" / f"{k:05d}.npz", saved)
    # The transits of the transients' sources, for their detectability (gaiasim.sim.transients.with_detectability).
    of_event = np.isin(tr["source_id"], ctx.transients["source_id"].to_numpy())
    bins = np.arange(ts - ts % RATE_BIN_NS, te + RATE_BIN_NS, RATE_BIN_NS)
    rates = {fov: np.histogram(tr["obmt_ns"][tr["fov"] == fov], bins=bins)[0] for fov in (1, 2)}
    return {
        "counts": {int(icd.STAR_APIDS[wc]): int(np.sum(tr["window_class"] == wc)) for wc in icd.WINDOW_SAMPLES},
        "sources": n_sources,
        "lost_on_board": n_lost,
        "lost_conflict": n_conflict,
        "spurious": n_spurious,
        "rate_bins_ns": bins[:-1],
        "rates": rates,
        "pixels": crossed,
        "event_transits": {key: tr[key][of_event] for key in ("source_id", "obmt_ns", "fov")},
    }


def _brightest_per_id(ids: np.ndarray, g_mag: np.ndarray) -> np.ndarray:
    """Index of the brightest of the items sharing each id (of equals, the first), in ascending id order:
    ``np.lexsort((g_mag, ids))``'s first of each id. The ids come nearly sorted (transits in time order), so
    a stable sort of the ids alone takes ~15 ms per 2 M where the lexsort took ~0.9 s; the few shared ids
    are then settled among themselves."""
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    first = np.r_[True, sorted_ids[1:] != sorted_ids[:-1]] if len(ids) else np.zeros(0, bool)
    keep = order[first]
    if not first.all():
        run = np.cumsum(first) - 1  # each sorted position's id, numbered
        shared = np.flatnonzero(np.bincount(run)[run] > 1)
        by_g = shared[np.lexsort((g_mag[order[shared]], run[shared]))]  # stable: equals stay in index order
        best = by_g[np.r_[True, run[by_g][1:] != run[by_g][:-1]]]
        keep[run[best]] = order[best]
    return keep


def _temporary_name(path: Path) -> Path:
    """A name beside ``path`` no other attempt uses (two attempts at one task may share a process)."""
    return path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = _temporary_name(path)
    with open(tmp, "wb") as f:  # a file object: np.savez would add .npz to a name
        np.savez(f, **arrays)
    os.replace(tmp, path)


def spool_path(ctx: SliceContext, pass_index: int, apid: int, k: int, work: str | Path | None = None) -> Path:
    """Spool of slice ``k``'s packets of ``apid`` for one pass, under ``work`` (default ``ctx.work``)."""
    return Path(work or ctx.work) / "spool" / f"{pass_index:04d}" / f"{apid:04d}" / f"{k:05d}.bin"


def write_spools(ctx: SliceContext, k: int, apid: int, seq: np.ndarray, t: np.ndarray, rows: np.ndarray,
                 protected: np.ndarray, rng: np.random.Generator, work: str | Path | None = None) -> list[tuple]:
    """Inject packet faults into a run of packets of one APID and append it to the spool of each pass
    (under ``work``, default ``ctx.work``); returns the faults as ``(pass_index, apid, k, offset in spool,
    kind, seq, obmt_ns, expected)``."""
    found_all = []
    starts = np.array(ctx.pass_starts_ns)
    pass_of = np.searchsorted(starts, t, side="right")
    last_pass = len(starts) - 1
    # Late deliveries and overlapping passes send packets in the next pass too: never from the last pass.
    late = ~protected & (pass_of < last_pass) & (rng.random(len(t)) < ctx.plan.late_delivery)
    end_of_pass = starts[np.minimum(pass_of, last_pass)]
    resent = ~protected & ~late & (pass_of < last_pass) & (t >= end_of_pass - int(ctx.plan.overlap_s * 1e9))

    def spool(p: int, data: np.ndarray) -> int:
        path = spool_path(ctx, p, apid, k, work)
        path.parent.mkdir(parents=True, exist_ok=True)
        base = path.stat().st_size if path.exists() else 0
        with open(path, "ab") as f:
            f.write(memoryview(data))
        return base

    octets = rows.shape[1]
    for p in np.unique(pass_of):
        sel = (pass_of == p) & ~late
        data, found = faults.inject(ctx.plan, rng, apid, seq[sel], t[sel], rows[sel], protected[sel] | resent[sel])
        base = spool(int(p), data)
        found_all += [(int(p), apid, k, base + rel, kind, sq, tt, expected)
                      for kind, _a, sq, tt, rel, expected in found]
        # Before the next pass's own packets of this slice: what this pass delivers late or sends again.
        for mask, kind, expected in ((late, "late_delivery", "out_of_order"), (resent, "pass_overlap", "duplicate")):
            extra = np.flatnonzero(mask & (pass_of == p))
            if len(extra):
                base = spool(int(p) + 1, rows[extra].reshape(-1))
                found_all += [(int(p) + 1, apid, k, base + octets * j, kind, int(seq[i]), int(t[i]), expected)
                              for j, i in enumerate(extra)]
    return found_all


def _vpu_extras(tr: dict[str, np.ndarray], part: np.ndarray) -> dict:
    """The blends and truncated windows of the VPU (gaiasim.sim.vpu.WINDOW_EXTRAS) for make_windows: none
    when no VPU effect is on (then the windows are rendered as before the VPU existed)."""
    if "cut_start" not in tr:
        return {}
    blend = {k: tr[f"blend_{k}"][part] for k in ("g_mag", "bp_rp", "d_al_px", "d_ac_px")}
    return {"blend": blend, "not_read": np.stack([tr["cut_start"][part], tr["cut_end"][part]], axis=1)}


def render_slice(ctx: SliceContext, k: int, seq_start: dict[int, int], totals: dict[int, int],
                 index_start: dict[int, int]) -> tuple[list[tuple], dict[str, str]]:
    """Phase C: star packets of slice ``k``, spooled per pass and APID, and the slice's truth parts.

    ``seq_start`` is each APID's sequence count at the slice's first packet, ``index_start`` its packet
    index in the dataset and ``totals`` the dataset's packet count (for the protected first and last
    packets, :func:`gaiasim.sim.faults.inject`). Returns the packet faults (:func:`write_spools`) and the
    SHA-256 of each truth part written (dataset-relative names), hashed here while the part is in the
    page cache, on the worker, rather than read again for the manifest.
    """
    allocator.tune()
    with np.load(Path(ctx.work) / "transits" / f"{k:05d}.npz") as f:
        tr = {key: f[key] for key in f.files if not key.startswith("artefact_")}
        artefacts = {key.removeprefix("artefact_"): f[key] for key in f.files if key.startswith("artefact_")}
    # Spools are appended to chunk by chunk: build them in a folder of this attempt, then move them in.
    stage = Path(ctx.work) / "stage" / f"{k:05d}-{uuid.uuid4().hex}"
    rng = np.random.default_rng([ctx.seed, 4, k])
    found = []
    written: list[Path] = []
    apid_of = np.array(icd.STAR_APIDS)[tr["window_class"]]
    seq_of = np.zeros(len(apid_of), dtype=np.int32)
    for apid in icd.STAR_APIDS:
        mine = np.flatnonzero(apid_of == apid)
        index = index_start[apid] + np.arange(len(mine))
        seq_of[mine] = (seq_start[apid] + np.arange(len(mine))) % icd.SEQ_COUNT_MODULO
        for lo in range(0, len(mine), TRANSITS_PER_CHUNK):
            part = mine[lo:lo + TRANSITS_PER_CHUNK]
            t_ref = icd.decode_transit_id(tr["transit_id"][part])[0]
            # AC phase: where the source sits in the transit id's AC pixel (its centre is zeta_of_ac_px).
            ac_phase = (tr["zeta_rad"][part] - geometry.zeta_of_ac_px(tr["ac_px"][part], tr["ccd_row"][part])) \
                / geometry.PIXEL_AC_RAD
            windows = signal.make_windows(ctx.seed, tr["transit_id"][part], (tr["obmt_ns"][part] - t_ref)
                                          / geometry.TDI_PERIOD_NS, tr["fov"][part], tr["g_mag"][part],
                                          tr["bp_rp"][part], CALIBRATION, ac_offset_px=ac_phase,
                                          state=ctx.instrument(), window_class=tr["window_class"][part],
                                          gate=tr["gate"][part], **_vpu_extras(tr, part))
            (w,) = windows  # one window class per APID
            rows = icd.encode_packets(apid, seq_of[part], tr["obmt_ns"][part], w.payload)
            idx = index[lo:lo + TRANSITS_PER_CHUNK]
            protected = (idx == 0) | (idx >= totals[apid] - 2)
            found += write_spools(ctx, k, apid, seq_of[part], tr["obmt_ns"][part], rows, protected, rng, stage)
            written.append(write_part(Path(ctx.root) / "truth" / "ccd", f"{k:05d}-{apid}-{lo:09d}", w.truth_ccd))
    names = np.array(ctx.pass_names)
    file_of = names[np.searchsorted(np.array(ctx.pass_starts_ns), tr["obmt_ns"], side="right")] if len(names) \
        else np.empty(0, str)
    g_bp, g_rp = signal.bp_rp_mags(tr["g_mag"], tr["bp_rp"])
    table = pa.table(
        {
            "transit_id": tr["transit_id"], "source_id": tr["source_id"], "obmt_ns": tr["obmt_ns"],
            "fov": tr["fov"], "ccd_row": tr["ccd_row"], "ac_px": tr["ac_px"], "zeta_rad": tr["zeta_rad"],
            "g_mag": tr["g_mag"].astype(np.float32),
            "bp_mag": g_bp.astype(np.float32), "rp_mag": g_rp.astype(np.float32),
            "window_class": tr["window_class"], "gate": tr["gate"],
            "apid": apid_of.astype(np.int32), "seq": seq_of, "file": np.char.add(file_of.astype(str), ".tm"),
        },
        schema=TRUTH_TRANSITS,
    )
    written.append(write_part(Path(ctx.root) / "truth" / "transits", f"{k:05d}", table))
    if artefacts and len(artefacts["transit_id"]):  # the VPU's (gaiasim.sim.vpu): none with the ideal instrument
        written.append(write_part(Path(ctx.root) / "truth" / "artefacts", f"{k:05d}", vpu.artefact_table(artefacts)))
    for staged in sorted(stage.rglob("*.bin")):
        final = Path(ctx.work) / staged.relative_to(stage)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)
    shutil.rmtree(stage, ignore_errors=True)
    return found, {str(path.relative_to(ctx.root)): sha256_file(path) for path in written}
