"""Ingest: TM files -> good packets per APID, quarantine rows and sequence anomalies.

Conservation (checked in ``run.json`` and by the validation): every packet read is used, dropped as a
duplicate (counted, and listed in ``gaps``) or quarantined with its raw octets and a reason;
``read = used + duplicates + quarantined`` exactly, and the quarantined and good spans tile each file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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


def sequence_anomalies(apid: int, seq: np.ndarray, obmt_ns: np.ndarray, files: np.ndarray,
                       late: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Duplicates, gaps and out-of-order spans of one APID's packets given in reception order.

    Returns the indices of the packets to keep, in time order, and the ``gaps`` rows. A duplicate is a
    packet with the same sequence count and time as one received before it. Gaps are read in time
    order, where consecutive counts must differ by 1 modulo 16384 (CCSDS 133.0-B). ``late`` marks the
    packets older than one received before them when that was decided over more packets than these
    (the streaming run's time slices, :func:`late_flags`); by default it is decided here.
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
    if late is None:
        late = late_flags(obmt_ns[first], np.iinfo(np.int64).min)[0]
    else:
        late = np.asarray(late, dtype=bool)[first]
    # One row per run of late packets with consecutive sequence counts from one file, so a row's range
    # is exact.
    breaks = np.ones(len(first), dtype=bool)
    breaks[1:] = ((seq[first][1:] - seq[first][:-1]) % icd.SEQ_COUNT_MODULO != 1) | (
        files[first][1:] != files[first][:-1])
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


def late_flags(obmt_ns: np.ndarray, newest_ns: int) -> tuple[np.ndarray, int]:
    """Packets (of one APID, in reception order) older than one received before them, given the newest
    time ``newest_ns`` received earlier; returns the flags and the newest time after these packets.

    A second copy of a packet has its original's time, so it never raises the newest time: the flags of
    the first copies are the same whether or not duplicates are among the packets.
    """
    obmt_ns = np.asarray(obmt_ns, dtype=np.int64)
    if len(obmt_ns) == 0:
        return np.zeros(0, dtype=bool), newest_ns
    newest = np.maximum.accumulate(np.r_[np.int64(newest_ns), obmt_ns])
    return obmt_ns < newest[:-1], int(newest[-1])


# --- Reading TM files in bounded chunks --------------------------------------------------------------

#: Octets read per chunk: the reading buffer is this plus the look-ahead, allocated once per file.
CHUNK_OCTETS = 1 << 25
#: Octets past a row's start the scanner may look at to decide that row as it would with the whole file:
#: the longest length field (65536 + 7 octets) and then the longest ICD packet.
LOOKAHEAD_OCTETS = (1 << 16) + icd.PRIMARY_HEADER_OCTETS + 1 + int(icd.EXPECTED_OCTETS.max())


@dataclass
class Chunk:
    """Rows of :func:`pipeline.icd.scan_stream` over ``buf`` (a view of the reused reading buffer, valid
    until the next chunk); ``base`` is the file offset of ``buf[0]``."""

    buf: np.ndarray
    base: int
    index: np.ndarray


def scan_file(path: Path, chunk_octets: int = CHUNK_OCTETS, digest: hashlib._Hash | None = None) -> Iterator[Chunk]:
    """Scan a TM file in chunks read into one reused buffer (memory bounded whatever the file size).

    A row is taken from a chunk only when the chunk holds every octet the scanner may look at to decide
    it, so the rows are those of a scan of the whole file. The one exception: a quarantined span longer
    than a chunk is cut into rows of at most ``chunk_octets``. ``digest`` (hashlib) sees every octet once.
    """
    path = Path(path)
    try:
        f = open(path, "rb", buffering=0)
    except OSError as exc:
        raise io.InputError(f"cannot read TM file {path}: {exc.strerror}; check the dataset path") from exc
    buf = np.empty(chunk_octets + LOOKAHEAD_OCTETS, dtype=np.uint8)
    view = memoryview(buf)
    held, base, eof = 0, 0, False
    max_octets = int(icd.EXPECTED_OCTETS.max())
    # The digest of a chunk's new octets runs on its own thread while the chunk is scanned and used (SHA-256
    # is ~30 s of a full day's 36 GB on one core; hashlib releases the GIL), and ends before the buffer is
    # reused.
    with f, ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256") as hasher:
        while not eof or held:
            n = held
            while n < len(buf) and not eof:
                try:
                    got = f.readinto(view[n:])
                except OSError as exc:
                    raise io.InputError(f"cannot read TM file {path}: {exc.strerror}") from exc
                if not got:
                    eof = True
                    break
                n += got
            if n == 0:
                return
            hashed = hasher.submit(digest.update, view[held:n]) if digest is not None and n > held else None
            index = icd.scan_stream(buf[:n])
            if eof:
                take, consumed = len(index), n
            else:
                ends = index["offset"] + index["octets"]
                ok = (index["offset"] + LOOKAHEAD_OCTETS <= n) & (ends + max_octets <= n)
                take = int(np.argmin(ok)) if not ok.all() else len(index)
                if take == 0:  # one quarantined span longer than the chunk: cut it
                    index = index[:1].copy()
                    index["octets"] = n - LOOKAHEAD_OCTETS
                    take = 1
                consumed = int(index["offset"][take - 1] + index["octets"][take - 1])
            yield Chunk(buf[:n], base, index[:take])
            if hashed is not None:
                hashed.result()
            held = n - consumed
            buf[:held] = buf[consumed:n]
            base += consumed


def quarantine_rows(name: str, chunk: Chunk) -> dict[str, list]:
    """:data:`pipeline.schemas.QUARANTINE` rows (as lists) of a chunk's unusable rows, file offsets."""
    index = chunk.index
    bad = index[index["status"] != icd.STATUS_OK]
    return {
        "file": [name] * len(bad),
        "offset": (bad["offset"] + chunk.base).tolist(),
        "octets": bad["octets"].tolist(),
        "apid": bad["apid"].tolist(),
        "seq": bad["seq"].tolist(),
        "reason": [icd.QUARANTINE_REASONS[int(s)] for s in bad["status"]],
        "raw": [chunk.buf[o : o + n].tobytes() for o, n in zip(bad["offset"], bad["octets"], strict=True)],
    }


def packet_times(buf: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """OBMT (ns) of the packets at ``offsets``: the secondary header's big-endian 8 octets."""
    at = np.asarray(offsets, dtype=np.int64)[:, None] + (icd.PRIMARY_HEADER_OCTETS + np.arange(8))
    return buf[at].copy().view(">i8").reshape(-1).astype(np.int64)


def ingest_files(paths: list[Path], chunk_octets: int = CHUNK_OCTETS) -> Ingested:
    """Read and check every TM file (in the given order, which is reception order), all in memory.

    For a few files (tests, tools); ``gaiasim run`` streams the same steps in time slices
    (:mod:`pipeline.run`).
    """
    quarantine: dict[str, list] = {name: [] for name in schemas.QUARANTINE.names}
    per_apid: dict[int, list[np.ndarray]] = {}
    per_apid_file: dict[int, list[np.ndarray]] = {}
    read = 0
    for path in paths:
        for chunk in scan_file(path, chunk_octets):
            index = chunk.index
            read += len(index)
            for key, values in quarantine_rows(path.name, chunk).items():
                quarantine[key].extend(values)
            for apid in np.unique(index["apid"][index["status"] == icd.STATUS_OK]):
                records = icd.decode_packets(chunk.buf, index, int(apid))
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
