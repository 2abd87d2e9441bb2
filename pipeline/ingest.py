"""Ingest: the checks every TM packet goes through before the pipeline uses it.

- :func:`scan_file`: a TM file in bounded chunks, split into sound packets (header, length, CRC) and
  quarantined spans (:func:`pipeline.icd.scan_stream`);
- :func:`check_chunk`: each sound packet's content against the ICD (:func:`pipeline.icd.check_packets`)
  and its time against the day being processed (:data:`DAY_MARGIN_NS`);
- :func:`sequence_anomalies`: per APID, duplicates, conflicts, gaps, stalls, count jumps and out-of-order
  spans, from the sequence counts and the times.

Conservation (checked in ``run.json`` and by the validation): every packet read is used, dropped as a
duplicate (counted, and listed in ``gaps``) or quarantined with its raw octets and a reason;
``read = used + duplicates + quarantined`` exactly, and the quarantined and good spans tile each file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline import icd, io, schemas

#: How far outside the day being processed a packet's OBMT may lie and still be used, ns. The day's
#: bounds come from the ground's schedule (``dataset.json``); a packet a few minutes outside them is
#: the day's (an on-board clock offset, a boundary set on another time scale: UTC and TCB differ by
#: about a minute). Further out, it is another day's packet or a corrupt time: quarantined as
#: ``outside_day``. This project's choice.
DAY_MARGIN_NS = 10 * 60 * 1_000_000_000
#: A sequence count repeated at a later time is a stalled counter, unless the time step spans at least
#: this many typical packet intervals: then the count went once round (16383 packets lost).
STALL_MAX_INTERVALS = icd.SEQ_COUNT_MODULO // 2

#: The octets of the packets at the given indices, one row each (exact comparison of copies).
Octets = Callable[[np.ndarray], np.ndarray]


def check_chunk(chunk: Chunk, span_ns: tuple[int, int]) -> np.ndarray:
    """Quarantine, in ``chunk.index`` (its ``status``), the sound packets that break the ICD's content
    rules (:func:`pipeline.icd.check_packets`) or whose OBMT lies outside ``span_ns`` = [start, end) of
    the day being processed, widened by :data:`DAY_MARGIN_NS` on each side. Returns the OBMT (ns) of the
    packets still good, in index order."""
    index = chunk.index
    good = np.flatnonzero(index["status"] == icd.STATUS_OK)
    t = icd.packet_obmt_ns(chunk.buf, index["offset"][good])
    status = np.full(len(good), icd.STATUS_OK, dtype=np.int8)
    apids = index["apid"][good]
    for apid in np.unique(apids).tolist():
        sel = np.flatnonzero(apids == apid)
        status[sel] = icd.check_packets(chunk.buf, index["offset"][good[sel]], apid, t[sel])
    outside = (t < span_ns[0] - DAY_MARGIN_NS) | (t >= span_ns[1] + DAY_MARGIN_NS)
    status[(status == icd.STATUS_OK) & outside] = icd.OUTSIDE_DAY
    index["status"][good] = status
    return t[status == icd.STATUS_OK]


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


def classify_steps(step: np.ndarray, dt_ns: np.ndarray, period_ns: int | None,
                   typical_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """What lies between consecutive packets of one APID (time order) whose counts advance by ``step``
    (modulo 16384) in ``dt_ns``: per step a gaps ``kind`` ('' for nothing) and its ``count``.

    - Periodic APIDs (``period_ns``, :data:`pipeline.icd.PERIOD_NS`): the times say how many packets are
      missing (``round(dt / period) - 1``). When the counts agree modulo 16384, a ``gap`` of that many
      (so 16384 lost packets, invisible in the counts, are found); a repeated count one period later is a
      ``stall``; any other disagreement a ``count_jump``, counted with the packets the times imply.
    - Star packets (no fixed rate, none in dead time: times cannot count them): a ``gap`` of
      ``step - 1`` (modulo 16384); a repeated count is a ``stall``, or 16383 lost packets when the time
      step spans :data:`STALL_MAX_INTERVALS` typical intervals (``typical_ns``; 0: unknown).
    """
    step = np.asarray(step, dtype=np.int64)
    dt_ns = np.asarray(dt_ns, dtype=np.int64)
    by_count = (step - 1) % icd.SEQ_COUNT_MODULO
    kind = np.full(len(step), "", dtype=object)
    if period_ns:
        by_time = np.rint(dt_ns / period_ns).astype(np.int64) - 1
        agree = (by_time >= 0) & ((by_time - by_count) % icd.SEQ_COUNT_MODULO == 0)
        stall = ~agree & (step == 0) & (by_time <= 0)
        kind[agree & (by_time > 0)] = "gap"
        kind[stall] = "stall"
        kind[~agree & ~stall] = "count_jump"
        count = np.where(agree, by_time, np.where(stall, 1, np.maximum(by_time, 0)))
    else:
        wrapped = dt_ns >= STALL_MAX_INTERVALS * typical_ns if typical_ns > 0 else np.zeros(len(step), bool)
        stall = (step == 0) & ~wrapped
        kind[step != 1] = "gap"
        kind[stall] = "stall"
        count = np.where(stall, 1, by_count)
    return kind, count


@dataclass
class Sequence:
    """What :func:`sequence_anomalies` found in one APID's packets."""

    keep: np.ndarray  # indices of the packets to use, in time order
    conflict: np.ndarray  # indices of copies that disagree: none of them is used (quarantine, 'conflict')
    gaps: dict[str, list]  # rows of pipeline.schemas.GAPS
    typical_ns: int  # median time step between packets with consecutive counts (0: none)


def sequence_anomalies(apid: int, seq: np.ndarray, obmt_ns: np.ndarray, files: np.ndarray, octets: Octets,
                       late: np.ndarray | None = None) -> Sequence:
    """Duplicates, conflicts, gaps, stalls, count jumps and out-of-order spans of one APID's packets given
    in reception order.

    Packets with the same sequence count and time are copies: ``octets`` (the packets' octets at given
    indices) compares them. Identical copies are duplicates: the first received is kept, the others are
    dropped and listed. Copies that differ are a conflict: none can be trusted, all are returned in
    ``conflict`` (the caller quarantines them). Counts are then read in time order
    (:func:`classify_steps`). ``late`` marks the packets older than one received before them when that
    was decided over more packets than these (the streaming run's time slices, :func:`late_flags`); by
    default it is decided here.
    """
    rows: dict[str, list] = {name: [] for name in schemas.GAPS.names}

    def add(kind: str, first: int, last: int, count: int, t: int, file: str) -> None:
        for key, value in zip(schemas.GAPS.names, (apid, kind, first, last, count, t, file), strict=True):
            rows[key].append(value)

    n = len(seq)
    # Time order (stable, so of identical copies the first received comes first).
    order = np.lexsort((seq, obmt_ns))
    same = (obmt_ns[order][1:] == obmt_ns[order][:-1]) & (seq[order][1:] == seq[order][:-1])
    dup = np.zeros(n, dtype=bool)
    clash = np.zeros(n, dtype=bool)
    starts = np.flatnonzero(np.r_[True, ~same])
    for a, b in zip(starts.tolist(), [*starts[1:].tolist(), n], strict=True):
        if b - a > 1:  # copies (rare): compare their octets
            copies = octets(order[a:b])
            if (copies == copies[0]).all():
                dup[a + 1:b] = True
            else:
                clash[a:b] = True
    for i in order[dup]:
        add("duplicate", int(seq[i]), int(seq[i]), 1, int(obmt_ns[i]), str(files[i]))
    keep = order[~dup & ~clash]
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
    dt = np.diff(obmt_ns[keep]).astype(np.int64)
    typical = int(np.median(dt[step == 1])) if (step == 1).any() else 0
    kinds, counts = classify_steps(step, dt, icd.PERIOD_NS.get(apid), typical)
    for j in np.flatnonzero(kinds != ""):
        before, after = keep[j], keep[j + 1]
        if kinds[j] == "stall":
            add("stall", int(seq[after]), int(seq[after]), 1, int(obmt_ns[after]), str(files[after]))
        else:
            add(str(kinds[j]), int((seq[before] + 1) % icd.SEQ_COUNT_MODULO),
                int((seq[after] - 1) % icd.SEQ_COUNT_MODULO), int(counts[j]), int(obmt_ns[after]), str(files[after]))
    return Sequence(keep, np.sort(order[clash]), rows, typical)


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


def quarantine_packets(files: np.ndarray, offsets: np.ndarray, apid: int, seq: np.ndarray, reasons: np.ndarray,
                       octets: np.ndarray) -> pa.Table:
    """:data:`pipeline.schemas.QUARANTINE` rows of whole packets of one APID found unusable after the scan
    (conflicts): their files, file offsets, sequence counts, reason codes and octets (one row each)."""
    return pa.table({
        "file": [str(f) for f in files],
        "offset": np.asarray(offsets, dtype=np.int64),
        "octets": np.full(len(offsets), octets.shape[1] if octets.ndim == 2 else 0, dtype=np.int64),
        "apid": np.full(len(offsets), apid, dtype=np.int32),
        "seq": np.asarray(seq, dtype=np.int32),
        "reason": [icd.QUARANTINE_REASONS[int(r)] for r in reasons],
        "raw": [row.tobytes() for row in octets],
    }, schema=schemas.QUARANTINE)


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
