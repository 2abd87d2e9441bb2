"""Second pass of the streaming run: one OBMT hour of star packets -> transits, CCD images and gaps.

An hour is the unit of work and of resumption: its outputs are

- ``ccd/hour=<h>/part-<slice>-<chunk>.parquet`` (one per :data:`IPD_CHUNK_TRANSITS` transits, time order),
- ``transits/hour=<h>/part-<slice>.parquet`` (crossmatched, in time order; one slice unless the hour holds
  more than :data:`SLICE_TRANSITS` packets),
- ``gaps/part-h<h>.parquet`` (duplicates, out-of-order spans, gaps and stalls inside the hour),
- ``quarantine/part-h<h>.parquet`` (star packets in conflict: copies that disagree, or a transit_id that
  two packets claim; only when there are some),
- ``.work/alerts/<h>.parquet`` (the hour's alert candidates, :func:`pipeline.alerts.candidates`),

and then ``.work/hours/<h>.json``, its summary, written last: an hour with a summary is done. Every
file is written atomically, and the same inputs give the same bytes, so an hour redone after a crash
rewrites what it had written identically. Packets are read from the TM files by offset, a chunk at a
time, so memory is bounded by the chunk size whatever the scale.
"""

from __future__ import annotations

import itertools
import json
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline import alerts, ccdcal, crossmatch, environment, geometry, icd, io, ipd, schemas, skycells, spool, transits
from pipeline.calibration import Calibration
from pipeline.ingest import classify_steps, quarantine_packets, sequence_anomalies

#: Transits fitted at once: the fits' float64 samples and intermediates take ~20x the packets' size.
IPD_CHUNK_TRANSITS = 25_000
#: Most star packets processed at once: an hour with more (a full-scale day has ~3 M an hour) is cut into
#: equal-time slices, so memory stays the same whatever the scale. A run works on one hour per core at once
#: (:class:`pipeline.executor.ThreadExecutor`): on a scale-0.1 day (~300,000 an hour) 200,000 gave a peak
#: of 0.90 GiB on 2 cores against 0.97 GiB for 400,000, in the same time within the machine's noise. On the
#: full-scale population-sky day (its three largest hours, the two largest at once), 100,000 with chunks of
#: 25,000 peaked at 1.67 GiB against 2.12 GiB for 200,000 and 50,000, the hours done in the same time
#: (209 and 342 s against 202 and 347 s).
SLICE_TRANSITS = 100_000
#: Transits fitted by one call of :func:`pipeline.transits.fit_star_packets` (a chunk's packets of one window
#: class are fitted in pieces of this many, into arrays of the chunk's size): the fit's float64 samples, masks and
#: temporaries take ~7 kB per transit of window class 2, ~10 kB of class 1 and ~40 kB of class 0 (tracemalloc, the
#: scale-0.195 population-sky dataset), so a 50,000-transit chunk peaked at ~340 MB per task, ~100 MB in pieces
#: of 10,000, in the same CPU time. Each window is fitted on its own: the pieces give the same bytes. With the
#: 1 deg sky cells (pipeline.skycells.CELL_DEG), the run's peak on that day fell from 1.92 to 1.41 GiB (2 cores).
FIT_TRANSITS = 8192


@dataclass(frozen=True)
class Day:
    """What every hour of a run shares (read once per run)."""

    files: list[Path]  # TM files in reception order
    summaries: list[dict]  # their first-pass summaries (pipeline.spool)
    out: Path
    work: Path
    att_t_ns: np.ndarray  # attitude used for sky positions (glitches removed), time order
    att_q: np.ndarray
    cells: dict  # the reference catalogue by sky cell in the work area (pipeline.skycells.split)
    match_radius_mas: float
    calibration: Calibration
    alert_config: alerts.AlertConfig
    ccd_calibration: ccdcal.CcdCalibration = ccdcal.NOMINAL  # the dataset's, when it has one
    #: The bright-star environment test (pipeline/data/environment.toml).
    environment: environment.EnvironmentConfig = field(default_factory=environment.default_config)


def summary_path(work: Path, hour: int) -> Path:
    return work / "hours" / f"{hour}.json"


def load_summary(work: Path, hour: int) -> dict | None:
    try:
        return json.loads(summary_path(work, hour).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def read_star_packets(files: list[Path], file_k: np.ndarray, offset: np.ndarray, apid: int) -> np.ndarray:
    """Packets of ``apid`` at ``offset`` in ``files[file_k]`` (any order), decoded, in the given order.

    Each file is mapped only while its packets are copied out, so resident memory stays at the size of
    the packets asked for.
    """
    out = np.empty(len(offset), icd.packet_dtype(apid))
    for k in np.unique(file_k).tolist():
        sel = np.flatnonzero(file_k == k)
        mapped = np.memmap(files[k], dtype=np.uint8, mode="r")
        try:
            out[sel] = icd.gather_packets(mapped, offset[sel], apid)
        finally:
            mapped._mmap.close()  # unmap now (numpy keeps the map open until collected)
    return out


def match(index: crossmatch.SkyIndex, cols: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crossmatch transits (``ra_deg``, ``dec_deg``, ``g_mag``, ``g_mag_err``, ``fov``, ``obmt_ns``):
    (catalogue row or -1, separation in mas, lost a conflict) (pipeline.crossmatch)."""
    u = geometry.unit_from_radec(np.nan_to_num(cols["ra_deg"]), np.nan_to_num(cols["dec_deg"]))
    found = crossmatch.candidates(index, u, cols["g_mag"], cols["g_mag_err"])
    found.row[~np.isfinite(cols["ra_deg"])] = -1  # no position, no match
    return crossmatch.resolve_conflicts(found, cols["fov"], cols["obmt_ns"])


def _transit_table(cols: dict[str, np.ndarray], day: Day) -> tuple[pa.Table, pa.Table, np.ndarray, np.ndarray]:
    """The hour's transits (time order), crossmatched to the catalogue sources of the sky they crossed
    (conflicts within a scan resolved); the sources matched, each transit's row among them (-1: none), and
    which transits lie in a bright transit's environment (pipeline.environment: their matches stand only
    where the magnitudes agree)."""
    positioned = np.isfinite(cols["ra_deg"])
    reach_mas = max(day.match_radius_mas, 1000.0 * day.environment.catalogue_radius_arcsec)
    ra, dec = cols["ra_deg"][positioned], cols["dec_deg"][positioned]
    records = skycells.load_records(day.work, day.cells, skycells.cells_within(ra, dec, reach_mas / 3.6e6),
                                    near=skycells.footprint(ra, dec, reach_mas / 3.6e6))
    index = crossmatch.build_index(records["u"], day.match_radius_mas, records["g_mag"], records["g_mag_sigma"])
    resolved, sep, conflict = match(index, cols)
    u = geometry.unit_from_radec(np.nan_to_num(cols["ra_deg"]), np.nan_to_num(cols["dec_deg"]))
    suspect = environment.bright_environment(cols["obmt_ns"], cols["fov"], cols["ccd_row"], cols["ac_px"],
                                             cols["g_mag"], day.environment,
                                             saturated=(cols["flags"] & ipd.FLAG_SATURATED) != 0)
    suspect |= positioned & environment.near_bright_source(u, cols["g_mag"], records["u"], records["g_mag"],
                                                           day.environment)
    g_cat = records["g_mag"][np.maximum(resolved, 0)] if len(records["g_mag"]) else np.full(len(resolved), np.nan)
    resolved = np.where(suspect & ~environment.match_kept(cols["g_mag"], g_cat, day.environment), -1, resolved)
    matched = resolved >= 0
    src = records["source_id"]
    flags = cols["flags"] | np.where(matched, 0, crossmatch.FLAG_UNMATCHED).astype(np.int32)
    flags |= np.where(conflict, crossmatch.FLAG_MATCH_CONFLICT, 0).astype(np.int32)
    flags |= np.where(suspect, environment.FLAG_BRIGHT_ENVIRONMENT, 0).astype(np.int32)
    table = pa.table(
        {
            **{k: cols[k] for k in ("transit_id", "obmt_ns", "fov", "ccd_row", "ac_px", "window_class", "gate",
                                    "ra_deg", "dec_deg")},
            "source_id": pa.array(np.where(matched, src[np.maximum(resolved, 0)] if len(src) else 0, 0),
                                  mask=~matched),
            "match_sep_mas": pa.array(sep.astype(np.float32), mask=~matched),
            **{k: pa.array(cols[k], mask=~np.isfinite(cols[k]))
               for k in ("g_mag", "g_mag_err", "bp_mag", "bp_mag_err", "rp_mag", "rp_mag_err")},
            "n_af_ok": cols["n_af_ok"],
            "flags": flags,
        },
        schema=schemas.TRANSITS,
    )
    # The sources matched, for the alert candidates (a full-scale slice loads ~10 sources per transit).
    used, inverse = np.unique(resolved[matched], return_inverse=True)
    row = np.full(len(resolved), -1, dtype=np.int64)
    row[matched] = inverse
    return table, skycells.table(records[used]), row, suspect


def process_hour(day: Day, hour: int, writer: Executor) -> dict:
    """Every output of one OBMT hour (see the module doc); returns its summary.

    An hour of more than :data:`SLICE_TRANSITS` star packets is cut into that many equal-time slices,
    each processed on its own (memory holds one slice). Parquet encoding runs on ``writer`` (a one-thread
    executor) while the next chunk is fitted.
    """
    refs, file_k = spool.hour_refs(day.work, len(day.files), day.summaries, hour)
    n_slices = max(1, -(-len(refs) // SLICE_TRANSITS))
    # Slices are cut on transit_id time quanta (an hour holds exactly 17,578,125 of them), so the packets
    # that claim one transit_id always meet in one slice.
    quanta = spool.HOUR_NS // icd.TRANSIT_ID_OBMT_QUANTUM_NS
    quantum = (refs["obmt_ns"] - hour * spool.HOUR_NS) // icd.TRANSIT_ID_OBMT_QUANTUM_NS
    # int32 and the quanta freed: 12 bytes less per packet of an hour (up to ~5.5 M packets at scale 1).
    slice_of = np.minimum(quantum * n_slices // quanta, n_slices - 1).astype(np.int32)
    del quantum
    pending: list[Future] = []
    parts = []
    for j in range(n_slices):
        sel = slice_of == j
        parts.append(_process_slice(day, hour, j, refs[sel], file_k[sel], writer, pending))
    gaps = pa.concat_tables([p.pop("gaps") for p in parts] + [boundary_gaps(parts)])
    quarantine = pa.concat_tables([p.pop("quarantine") for p in parts])
    io.write_or_remove(quarantine, schemas.QUARANTINE, day.out / "quarantine" / f"part-h{hour}.parquet")
    candidates = pa.concat_tables([p.pop("candidates") for p in parts])
    pending.append(writer.submit(io.write_table, candidates, schemas.TRANSITS, day.work / "alerts" / f"{hour}.parquet"))
    pending.append(writer.submit(io.write_table, gaps, schemas.GAPS, day.out / "gaps" / f"part-h{hour}.parquet"))
    for future in pending:
        future.result()  # the hour is done only when every part is on disk
    ends = {}
    for apid in map(str, icd.STAR_APIDS):
        present = [p["ends"][apid] for p in parts if apid in p["ends"]]
        if present:
            ends[apid] = {**present[0], **{k: present[-1][k] for k in ("last_seq", "last_obmt_ns", "typical_ns")}}
    summary = {"hour": hour, "slices": n_slices, "ends": ends,
               **{key: sum(p[key] for p in parts) for key in
                  ("packets_used", "duplicates_dropped", "packets_quarantined", "transits", "transits_matched",
                   "ccd_images")}}
    io.write_json(summary, summary_path(day.work, hour))
    return summary


def _process_slice(day: Day, hour: int, j: int, refs: np.ndarray, file_k: np.ndarray, writer: Executor,
                   pending: list[Future]) -> dict:
    """Slice ``j`` of an hour: its CCD and transit parts written (on ``writer``, futures added to
    ``pending``); returns its counts, first and last packet per APID, gaps and alert candidates."""
    kept, ends, duplicates, gaps, quarantine = _sequences(day, refs, file_k)
    kept, claimed = _unclaimed(day, refs, file_k, kept)
    quarantine = pa.concat_tables(quarantine + claimed) if quarantine + claimed else schemas.QUARANTINE.empty_table()

    parts: list[dict[str, np.ndarray]] = []
    n_ccd = 0
    for c, lo in enumerate(range(0, len(kept), IPD_CHUNK_TRANSITS)):
        chunk = kept[lo:lo + IPD_CHUNK_TRANSITS]
        ccd = []
        for wc, apid in enumerate(icd.STAR_APIDS):
            sel = chunk[refs["apid"][chunk] == apid]
            if not len(sel):
                continue
            records = read_star_packets(day.files, file_k[sel], refs["offset"][sel], apid)
            fit = _fit_in_pieces(records, wc, day)
            cols = transits.transit_rows(records, wc, fit, day.calibration, day.att_t_ns, day.att_q)
            parts.append(cols)
            ccd.append(transits.ccd_table(cols["transit_id"], cols["fov"], fit, icd.WINDOW_SAMPLES[wc]))
        table = pa.concat_tables(ccd)
        n_ccd += table.num_rows
        pending.append(writer.submit(io.write_table, table, schemas.CCD,
                                     day.out / "ccd" / f"hour={hour}" / f"part-{j}-{c:04d}.parquet", io.HOT_CODEC))

    if parts:
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        del parts
        order = np.argsort(cols["obmt_ns"], kind="stable")
        table, catalogue, row, suspect = _transit_table({k: v[order] for k, v in cols.items()}, day)
        pending.append(writer.submit(io.write_table, table, schemas.TRANSITS,
                                     day.out / "transits" / f"hour={hour}" / f"part-{j}.parquet", io.HOT_CODEC))
        # A transit in a bright transit's environment is never an alert's evidence (pipeline.environment).
        candidates = alerts.candidates(table.filter(pa.array(~suspect)), catalogue, day.alert_config,
                                       catalogue_row=row[~suspect])
    else:
        table = candidates = schemas.TRANSITS.empty_table()
    return {
        "slice": j,
        "packets_used": len(kept),
        "duplicates_dropped": duplicates,
        "packets_quarantined": quarantine.num_rows,
        "transits": table.num_rows,
        "transits_matched": int(table["source_id"].is_valid().to_numpy().sum()) if table.num_rows else 0,
        "ccd_images": n_ccd,
        "ends": ends,
        "gaps": pa.table(gaps, schema=schemas.GAPS),
        "quarantine": quarantine,
        "candidates": candidates,
    }


def _fit_in_pieces(records: np.ndarray, wc: int, day: Day) -> dict[str, np.ndarray]:
    """:func:`pipeline.transits.fit_star_packets` of ``records`` (one window class), :data:`FIT_TRANSITS` at a
    time, each piece's arrays copied into arrays of the whole (a transit's fit depends on its packet alone)."""
    fit: dict[str, np.ndarray] = {}
    for lo in range(0, len(records), FIT_TRANSITS):
        piece = transits.fit_star_packets(records[lo:lo + FIT_TRANSITS], wc, day.calibration, day.ccd_calibration)
        for key, values in piece.items():
            if key not in fit:
                fit[key] = np.empty((len(records), *values.shape[1:]), dtype=values.dtype)
            fit[key][lo:lo + len(values)] = values
        del piece
    return fit


def _sequences(day: Day, refs: np.ndarray, file_k: np.ndarray) -> tuple[np.ndarray, dict, int, dict, list[pa.Table]]:
    """Per star APID, the sequence checks of a slice's packets (pipeline.ingest.sequence_anomalies): the
    packets to use (time order), the first and last per APID, the duplicates dropped, the gaps rows and the
    quarantine of conflicting copies."""
    names = np.array([f.name for f in day.files], dtype=object)
    gaps: dict[str, list] = {name: [] for name in schemas.GAPS.names}
    kept, ends, duplicates, quarantine = [], {}, 0, []
    for apid in icd.STAR_APIDS:
        sel = np.flatnonzero(refs["apid"] == apid)
        if not len(sel):
            continue

        def octets(i: np.ndarray, sel: np.ndarray = sel, apid: int = apid) -> np.ndarray:
            return _packet_octets(day.files, file_k[sel[i]], refs["offset"][sel[i]], apid)

        found = sequence_anomalies(apid, refs["seq"][sel].astype(np.int64), refs["obmt_ns"][sel],
                                   names[file_k[sel]], octets, late=refs["late"][sel])
        duplicates += len(sel) - len(found.keep) - len(found.conflict)
        for key, values in found.gaps.items():
            gaps[key].extend(values)
        if len(found.conflict):
            quarantine.append(_quarantine(day, refs, file_k, sel[found.conflict], apid, icd.CONFLICT))
        if len(found.keep):
            first, last = sel[found.keep[0]], sel[found.keep[-1]]
            ends[str(apid)] = {"first_seq": int(refs["seq"][first]), "first_obmt_ns": int(refs["obmt_ns"][first]),
                               "first_file": str(names[file_k[first]]), "last_seq": int(refs["seq"][last]),
                               "last_obmt_ns": int(refs["obmt_ns"][last]), "typical_ns": found.typical_ns}
        kept.append(sel[found.keep])
    kept = np.concatenate(kept) if kept else np.empty(0, np.int64)
    return kept[np.argsort(refs["obmt_ns"][kept], kind="stable")], ends, duplicates, gaps, quarantine


def _unclaimed(day: Day, refs: np.ndarray, file_k: np.ndarray, kept: np.ndarray) -> tuple[np.ndarray, list[pa.Table]]:
    """``kept`` without the star packets (of any window class) that claim one transit_id together, and their
    quarantine rows: neither of two such packets can be trusted."""
    tid = spool.transit_ids(refs[kept])
    order = np.argsort(tid, kind="stable")
    twice = np.zeros(len(kept), dtype=bool)
    same = tid[order][1:] == tid[order][:-1]
    twice[order[1:][same]] = twice[order[:-1][same]] = True
    quarantine = []
    for apid in icd.STAR_APIDS:
        claimed = kept[twice & (refs["apid"][kept] == apid)]
        if len(claimed):
            quarantine.append(_quarantine(day, refs, file_k, claimed, apid, icd.TRANSIT_CONFLICT))
    return kept[~twice], quarantine


def _packet_octets(files: list[Path], file_k: np.ndarray, offset: np.ndarray, apid: int) -> np.ndarray:
    """The octets of the star packets of ``apid`` at ``offset`` in ``files[file_k]``, one row each."""
    records = read_star_packets(files, file_k, offset, apid)
    return records.view(np.uint8).reshape(len(records), records.dtype.itemsize)


def _quarantine(day: Day, refs: np.ndarray, file_k: np.ndarray, which: np.ndarray, apid: int, reason: int) -> pa.Table:
    """Quarantine rows of the star packets ``refs[which]`` of ``apid``, all for ``reason``."""
    which = np.sort(which)
    return quarantine_packets(np.array([day.files[k].name for k in file_k[which]], dtype=object),
                              refs["offset"][which], apid, refs["seq"][which], np.full(len(which), reason),
                              _packet_octets(day.files, file_k[which], refs["offset"][which], apid))


def boundary_gaps(summaries: list[dict]) -> pa.Table:
    """Sequence gaps between consecutive time slices (hours, or the slices of an hour; each one's own gaps
    are in its part), per star APID; ``summaries`` in time order."""
    rows: dict[str, list] = {name: [] for name in schemas.GAPS.names}
    for apid in icd.STAR_APIDS:
        ends = [s["ends"][str(apid)] for s in summaries if str(apid) in s["ends"]]
        for before, after in itertools.pairwise(ends):
            step = (after["first_seq"] - before["last_seq"]) % icd.SEQ_COUNT_MODULO
            typical = before["typical_ns"] or after["typical_ns"]
            kind, count = classify_steps(np.array([step]), np.array([after["first_obmt_ns"] - before["last_obmt_ns"]]),
                                         icd.PERIOD_NS.get(apid), typical)
            if kind[0] == "":
                continue
            if kind[0] == "stall":
                first = last = after["first_seq"]
            else:
                first = (before["last_seq"] + 1) % icd.SEQ_COUNT_MODULO
                last = (after["first_seq"] - 1) % icd.SEQ_COUNT_MODULO
            values = (apid, str(kind[0]), first, last, int(count[0]), after["first_obmt_ns"], after["first_file"])
            for key, value in zip(schemas.GAPS.names, values, strict=True):
                rows[key].append(value)
    return pa.table(rows, schema=schemas.GAPS)
