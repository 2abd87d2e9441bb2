"""Ingest: TM files -> good packets per APID, quarantine rows and sequence anomalies.

Conservation (checked in ``run.json`` and by the validation): every packet read is used, dropped as a
duplicate (counted, and listed in ``gaps``) or quarantined with its raw octets and a reason;
``read = used + duplicates + quarantined`` exactly, and the quarantined and good spans tile each file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline import icd, io, schemas


@dataclass
class Ingested:
    packets: dict[int, np.ndarray]  # APID -> packet records (icd.packet_dtype), deduplicated, time order
    files: dict[int, np.ndarray]  # APID -> name of the file each packet came from
    quarantine: pa.Table
    gaps: pa.Table
    counts: dict[str, int] = field(default_factory=dict)


def _quarantine_rows(name: str, buf: np.ndarray, index: np.ndarray) -> dict[str, list]:
    bad = index[index["status"] != icd.STATUS_OK]
    return {
        "file": [name] * len(bad),
        "offset": bad["offset"].tolist(),
        "octets": bad["octets"].tolist(),
        "apid": bad["apid"].tolist(),
        "seq": bad["seq"].tolist(),
        "reason": [icd.QUARANTINE_REASONS[int(s)] for s in bad["status"]],
        "raw": [buf[o : o + n].tobytes() for o, n in zip(bad["offset"], bad["octets"], strict=True)],
    }


def _spans(mask: np.ndarray, breaks: np.ndarray | None = None) -> list[tuple[int, int]]:
    """[start, stop) index ranges of the runs of True in ``mask``, also cut where ``breaks`` is True."""
    out = []
    start = None
    for i, m in enumerate(mask.tolist()):
        if start is not None and (not m or (breaks is not None and breaks[i])):
            out.append((start, i))
            start = None
        if m and start is None:
            start = i
    if start is not None:
        out.append((start, len(mask)))
    return out


def sequence_anomalies(apid: int, seq: np.ndarray, obmt_ns: np.ndarray, files: np.ndarray) -> tuple[np.ndarray, dict]:
    """Duplicates, gaps and out-of-order spans of one APID's packets given in reception order.

    Returns the indices of the packets to keep, in time order, and the ``gaps`` rows. A duplicate is a
    packet with the same sequence count and time as one received before it. Gaps are read in time
    order, where consecutive counts must differ by 1 modulo 16384 (CCSDS 133.0-B).
    """
    rows: dict[str, list] = {name: [] for name in schemas.GAPS.names}

    def add(kind: str, first: int, last: int, count: int, t: int, file: str) -> None:
        for key, value in zip(schemas.GAPS.names, (apid, kind, first, last, count, t, file), strict=True):
            rows[key].append(value)

    n = len(seq)
    # Time order (stable, so of identical copies the first received comes first).
    order = np.lexsort((seq, obmt_ns))
    dup = np.zeros(n, dtype=bool)
    dup[1:] = (obmt_ns[order][1:] == obmt_ns[order][:-1]) & (seq[order][1:] == seq[order][:-1])
    for i in order[dup]:
        add("duplicate", int(seq[i]), int(seq[i]), 1, int(obmt_ns[i]), str(files[i]))
    keep = order[~dup]
    # Out of order: first copies older than a packet already received (late arrivals, reordering); a
    # second copy is a duplicate, whenever it comes.
    first = np.sort(keep)
    late = np.zeros(len(first), dtype=bool)
    if len(first):
        late[1:] = obmt_ns[first][1:] < np.maximum.accumulate(obmt_ns[first])[:-1]
    # One row per run of late packets with consecutive sequence counts, so a row's range is exact.
    breaks = np.ones(len(first), dtype=bool)
    breaks[1:] = (seq[first][1:] - seq[first][:-1]) % icd.SEQ_COUNT_MODULO != 1
    for a, b in _spans(late, breaks):
        add("out_of_order", int(seq[first[a]]), int(seq[first[b - 1]]), b - a, int(obmt_ns[first[a]]),
            str(files[first[a]]))
    step = (np.diff(seq[keep]) % icd.SEQ_COUNT_MODULO).astype(np.int64)
    for j in np.flatnonzero(step != 1):
        before, after = keep[j], keep[j + 1]
        missing = int((step[j] - 1) % icd.SEQ_COUNT_MODULO)
        add("gap", int((seq[before] + 1) % icd.SEQ_COUNT_MODULO), int((seq[after] - 1) % icd.SEQ_COUNT_MODULO),
            missing, int(obmt_ns[after]), str(files[after]))
    return keep, rows


def ingest_files(paths: list[Path]) -> Ingested:
    """Read and check every TM file (in the given order, which is reception order)."""
    quarantine: dict[str, list] = {name: [] for name in schemas.QUARANTINE.names}
    per_apid: dict[int, list[np.ndarray]] = {}
    per_apid_file: dict[int, list[np.ndarray]] = {}
    read = 0
    for path in paths:
        buf = io.read_tm_file(path)
        index = icd.scan_stream(buf)
        read += len(index)
        for key, values in _quarantine_rows(path.name, buf, index).items():
            quarantine[key].extend(values)
        for apid in np.unique(index["apid"][index["status"] == icd.STATUS_OK]):
            records = icd.decode_packets(buf, index, int(apid))
            per_apid.setdefault(int(apid), []).append(records)
            per_apid_file.setdefault(int(apid), []).append(np.full(len(records), path.name, dtype=object))

    packets, files = {}, {}
    gaps: dict[str, list] = {name: [] for name in schemas.GAPS.names}
    duplicates = 0
    for apid in sorted(per_apid):
        records = np.concatenate(per_apid[apid])
        names = np.concatenate(per_apid_file[apid])
        seq = (records["word1"] & 0x3FFF).astype(np.int64)
        keep, rows = sequence_anomalies(apid, seq, records["obmt_ns"].astype(np.int64), names)
        duplicates += len(records) - len(keep)
        for key, values in rows.items():
            gaps[key].extend(values)
        packets[apid], files[apid] = records[keep], names[keep]

    quarantined = len(quarantine["file"])
    used = sum(len(p) for p in packets.values())
    return Ingested(
        packets=packets,
        files=files,
        quarantine=pa.table(quarantine, schema=schemas.QUARANTINE),
        gaps=pa.table(gaps, schema=schemas.GAPS),
        counts={"packets_read": read, "packets_used": used, "duplicates_dropped": duplicates,
                "packets_quarantined": quarantined, "files": len(paths)},
    )
