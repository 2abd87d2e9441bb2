"""First pass of the streaming run: each TM file read once, in bounded chunks, into the run's work area.

For file ``k`` (reception order) it writes:

- ``quarantine/part-<k>-<chunk>.parquet``: every unusable octet span, with its raw octets and reason;
- ``.work/files/<k>.npy``: one :data:`PACKET_REF` per good star packet (where it is, its APID, sequence
  count, time, transit_id's low bits and whether it arrived late), grouped by OBMT hour, in reception
  order within an hour;
- ``.work/files/<k>-<apid>.npy``: the decoded housekeeping and attitude packets (a few MB a day), and
  ``<k>-<apid>-offset.npy`` their offsets in the file;
- ``.work/files/<k>.json``: the summary (counts, the file's SHA-256, hour ranges, newest time per APID);
  written last, so a file whose summary exists is done and a resumed run skips it.

Every sound packet's content is checked against the ICD and its time against the day being processed
(:func:`pipeline.ingest.check_chunk`) before it is used: a packet that fails is quarantined with its
reason here, like a corrupt one.

Files are independent of each other, so they may be spooled at once (``gaiasim run`` does so on its
executor). The one thing a packet's flags owe to earlier files, whether it arrived after a newer packet
of its APID ("late"), is split in two: the spool flags packets late within their own file, and
:func:`hour_refs` adds the files received before (:func:`newest_before`).

Only star packets are left in the TM files: the time slices of the second pass read them from there by
offset (:mod:`pipeline.hourly`), so nothing of the day's volume is copied.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline import icd, io, schemas
from pipeline.ingest import check_chunk, late_flags, quarantine_rows, scan_file

#: OBMT per partition hour, ns.
HOUR_NS = 3_600_000_000_000
#: Reference to a good star packet in a TM file. ``tid_low``: bits 0-15 of its transit_id (FoV, CCD row, AC
#: pixel); the rest is its time quantum, ``obmt_ns // 204800`` (checked by pipeline.icd.check_packets).
PACKET_REF = np.dtype([("obmt_ns", "i8"), ("offset", "i8"), ("apid", "i2"), ("seq", "i2"), ("tid_low", "u2"),
                       ("late", "?")])

#: APIDs decoded whole in the first pass (small, needed by every slice or checked over the whole day).
WHOLE_DAY_APIDS = (icd.APID_HK, icd.APID_ATTITUDE)


def transit_ids(refs: np.ndarray) -> np.ndarray:
    """The transit_ids of star packets from their references."""
    units = refs["obmt_ns"] // icd.TRANSIT_ID_OBMT_QUANTUM_NS
    return (units << icd.TRANSIT_ID_TIME_SHIFT) | refs["tid_low"].astype(np.int64)


def hour_of(obmt_ns: np.ndarray) -> np.ndarray:
    """Partition hour of OBMT times (``obmt_ns // HOUR_NS``)."""
    return np.floor_divide(np.asarray(obmt_ns, dtype=np.int64), HOUR_NS)


def summary_path(work: Path, k: int) -> Path:
    return work / "files" / f"{k:04d}.json"


def spool_file(path: Path, k: int, out: Path, work: Path, span_ns: tuple[int, int]) -> dict:
    """First pass over TM file number ``k`` (see the module doc) of the day ``span_ns`` = [start, end)
    OBMT; returns its summary.

    Star packets are flagged late against the packets before them in this file; the summary's
    ``newest_ns`` (newest time per APID in this file) lets :func:`hour_refs` add the earlier files.
    """
    digest = hashlib.sha256()
    whole_day = {apid: [] for apid in WHOLE_DAY_APIDS}
    whole_day_at = {apid: [] for apid in WHOLE_DAY_APIDS}
    newest: dict[int, int] = {}
    read = quarantined = outside = 0
    folder = work / "files"
    # The references go to one raw file per hour as the chunks come (a full-scale pass file holds ~20 M
    # star packets: held and sorted in memory they took ~1.5 GB), then are joined in hour order.
    parts = folder / f"{k:04d}.parts"
    shutil.rmtree(parts, ignore_errors=True)  # what a killed first pass of this file left
    parts.mkdir(parents=True)
    per_hour: dict[int, int] = {}
    for c, chunk in enumerate(scan_file(path, digest=digest)):
        index = chunk.index
        read += len(index)
        times = check_chunk(chunk, span_ns)
        outside += int(np.count_nonzero(index["status"] == icd.OUTSIDE_DAY))
        bad = quarantine_rows(path.name, chunk)
        if bad["file"]:
            quarantined += len(bad["file"])
            io.write_table(pa.table(bad, schema=schemas.QUARANTINE), schemas.QUARANTINE,
                           out / "quarantine" / f"part-{k:04d}-{c:05d}.parquet")
        good = index[index["status"] == icd.STATUS_OK]
        late = np.zeros(len(good), dtype=bool)
        for apid in np.unique(good["apid"]).tolist():
            sel = np.flatnonzero(good["apid"] == apid)
            late[sel], newest[apid] = late_flags(times[sel], newest.get(apid, np.iinfo(np.int64).min))
        for apid in WHOLE_DAY_APIDS:
            if (good["apid"] == apid).any():
                whole_day[apid].append(icd.decode_packets(chunk.buf, index, apid))
                whole_day_at[apid].append(good["offset"][good["apid"] == apid] + chunk.base)
        star = np.isin(good["apid"], icd.STAR_APIDS)
        ref = np.empty(int(star.sum()), PACKET_REF)
        ref["obmt_ns"], ref["offset"] = times[star], good["offset"][star] + chunk.base
        ref["apid"], ref["seq"], ref["late"] = good["apid"][star], good["seq"][star], late[star]
        ref["tid_low"] = icd.gather_field(chunk.buf, good["offset"][star], "transit_id") & 0xFFFF
        hours = hour_of(ref["obmt_ns"])
        for hour in np.unique(hours).tolist():
            sel = ref[hours == hour]  # reception order within the hour
            io.append_bytes(sel, parts / f"{hour}.bin")
            per_hour[hour] = per_hour.get(hour, 0) + len(sel)
    present = sorted(per_hour)
    stops = np.cumsum([per_hour[h] for h in present], dtype=np.int64)
    first = stops - np.array([per_hour[h] for h in present], dtype=np.int64)
    io.write_npy_parts(PACKET_REF, [parts / f"{h}.bin" for h in present], int(stops[-1]) if present else 0,
                       folder / f"{k:04d}.npy")
    shutil.rmtree(parts)
    for apid, parts in whole_day.items():
        io.write_npy(np.concatenate(parts) if parts else np.empty(0, icd.packet_dtype(apid)),
                     folder / f"{k:04d}-{apid}.npy")
        io.write_npy(np.concatenate(whole_day_at[apid]) if parts else np.empty(0, np.int64),
                     folder / f"{k:04d}-{apid}-offset.npy")
    summary = {
        "file": path.name,
        "sha256": digest.hexdigest(),
        "packets_read": read,
        "packets_quarantined": quarantined,
        "packets_outside_day": outside,
        "hours": {str(h): [int(a), int(b)] for h, a, b in zip(present, first, stops, strict=True)},
        "newest_ns": {str(a): int(t) for a, t in sorted(newest.items())},
    }
    io.write_json(summary, summary_path(work, k))
    return summary


def load_summary(work: Path, k: int) -> dict | None:
    """The summary of file ``k`` if its first pass finished, else None."""
    try:
        return json.loads(summary_path(work, k).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def newest_before(summaries: list[dict]) -> list[dict[int, int]]:
    """Per file (reception order), the newest packet time per APID in the files received before it."""
    newest: dict[int, int] = {}
    before = []
    for summary in summaries:
        before.append(dict(newest))
        for apid, t in summary["newest_ns"].items():
            newest[int(apid)] = max(newest.get(int(apid), t), t)
    return before


def hour_refs(work: Path, n_files: int, summaries: list[dict], hour: int) -> tuple[np.ndarray, np.ndarray]:
    """The star-packet references of one hour from every file, in reception order, and each one's file
    number; ``late`` also marks packets older than one of their APID in an earlier file. Each file's part is
    copied straight into the result (no list of parts to concatenate: at scale 1 an hour holds up to ~5.5 M
    references, 23 bytes each)."""
    before = newest_before(summaries[:n_files])
    spans = [(k, summaries[k]["hours"].get(str(hour))) for k in range(n_files)]
    spans = [(k, span) for k, span in spans if span]
    refs = np.empty(sum(stop - first for _, (first, stop) in spans), PACKET_REF)
    files = np.empty(len(refs), dtype=np.int32)
    at = 0
    for k, (first, stop) in spans:
        part = refs[at:at + stop - first]
        part[...] = np.load(work / "files" / f"{k:04d}.npy", mmap_mode="r")[first:stop]
        for apid, t in before[k].items():
            part["late"] |= (part["apid"] == apid) & (part["obmt_ns"] < t)
        files[at:at + stop - first] = k
        at += stop - first
    return refs, files


def whole_day_records(work: Path, n_files: int, names: list[str],
                      apid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The decoded packets of ``apid`` from every file in reception order, each one's file name and its
    offset in that file."""
    parts = [np.load(work / "files" / f"{k:04d}-{apid}.npy") for k in range(n_files)]
    at = [np.load(work / "files" / f"{k:04d}-{apid}-offset.npy") for k in range(n_files)]
    files = [np.full(len(p), names[k], dtype=object) for k, p in enumerate(parts)]
    if not parts:
        return np.empty(0, icd.packet_dtype(apid)), np.empty(0, dtype=object), np.empty(0, np.int64)
    return np.concatenate(parts), np.concatenate(files), np.concatenate(at)
