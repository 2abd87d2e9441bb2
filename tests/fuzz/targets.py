"""What the fuzz tests check on each input, and the tally of inputs they ran.

:func:`check_buffer` is the scanner and decoder contract on one buffer; :func:`ingest_counts` is the
one place that knows the run's interface (``pipeline.run.run`` and its ``counts``), so a rewrite of the
ingest changes this function only. :func:`watchdog` turns a hang
into a failure: numba code cannot be interrupted, so hypothesis' deadline alone would wait forever.
"""

from __future__ import annotations

import faulthandler
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from pipeline import icd
from pipeline.kernels import ccsds as _k

#: Inputs run per test (every buffer of a batch counts); reported at the end of the session.
TALLY: Counter[str] = Counter()
#: Seconds one example may run before the process is stopped with every thread's traceback.
HANG_S = 120


@contextmanager
def watchdog(seconds: float = HANG_S) -> Iterator[None]:
    """Kill the process (exit status 1, tracebacks on stderr) if the block runs longer than ``seconds``."""
    faulthandler.dump_traceback_later(seconds, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def tally(test: str, n: int = 1) -> None:
    TALLY[test] += n


def check_buffer(buf: np.ndarray) -> tuple[int, int, int]:
    """Scan and decode ``buf``; assert the scanner's contract; return (rows read, decoded, quarantined).

    The rows tile the buffer; every good row is a true packet of the ICD (known APID, its ICD length, a
    CRC that matches); decoding returns exactly the good rows, field for field; and conservation holds:
    rows read == packets decoded + rows quarantined.
    """
    index = icd.scan_stream(buf)
    assert index.dtype == icd.PACKET_INDEX
    n = buf.size
    if n == 0:
        assert len(index) == 0, f"{len(index)} rows for an empty buffer"
        return 0, 0, 0
    offsets, octets = index["offset"], index["octets"]
    assert offsets[0] == 0, f"first row at offset {offsets[0]}"
    assert np.all(octets > 0), f"empty rows at offsets {offsets[octets <= 0]}"
    assert np.array_equal(offsets[1:], (offsets + octets)[:-1]), "rows are not contiguous"
    assert int(octets.sum()) == n, f"rows cover {int(octets.sum())} of {n} octets"
    known = set(icd.QUARANTINE_REASONS) | {icd.STATUS_OK}
    assert set(index["status"].tolist()) <= known, f"unknown status codes in {set(index['status'].tolist())}"
    good = index[index["status"] == icd.STATUS_OK]
    assert np.all(octets[index["status"] == icd.STATUS_OK] == icd.EXPECTED_OCTETS[good["apid"]]), "bad length OK"
    decoded = 0
    for apid in np.unique(good["apid"]).tolist():
        rows = good[good["apid"] == apid]
        records = icd.decode_packets(buf, index, apid)
        assert len(records) == len(rows), f"APID {apid}: {len(records)} decoded of {len(rows)} good rows"
        raw = records.view(np.uint8).reshape(len(records), -1)
        want = buf[rows["offset"][:, None] + np.arange(raw.shape[1])]
        assert np.array_equal(raw, want), f"APID {apid}: decoded octets differ from the stream"
        assert np.all(records["word0"] & icd.MAX_APID == apid)
        assert np.array_equal(records["word1"] & (icd.SEQ_COUNT_MODULO - 1), rows["seq"])
        crc = np.empty(len(raw), np.uint16)
        _k._crc16_rows(np.ascontiguousarray(raw), raw.shape[1] - icd.CRC_OCTETS, _k.CRC_TABLE, crc)
        stored = (raw[:, -2].astype(np.uint16) << 8) | raw[:, -1]
        assert np.array_equal(crc, stored), f"APID {apid}: good rows at {rows['offset'][crc != stored]} fail the CRC"
        decoded += len(records)
    quarantined = int(np.count_nonzero(index["status"] != icd.STATUS_OK))
    assert len(index) == decoded + quarantined, f"{len(index)} read != {decoded} ok + {quarantined} quarantined"
    return len(index), decoded, quarantined


def chunked_scan(path: Path, chunk_octets: int) -> np.ndarray:
    """The ingest's bounded-memory scan of one file (``pipeline.ingest.scan_file`` and its per-chunk
    ``quarantine_rows``): its rows with file offsets, after checking each chunk's own conservation.

    With :func:`ingest_counts`, the only code here that knows the ingest's interface.
    """
    from pipeline.ingest import quarantine_rows, scan_file

    parts = []
    for chunk in scan_file(path, chunk_octets):
        index = chunk.index
        bad = int(np.count_nonzero(index["status"] != icd.STATUS_OK))
        good = sum(len(icd.decode_packets(chunk.buf, index, a)) for a in np.unique(
            index["apid"][index["status"] == icd.STATUS_OK]).tolist())
        assert len(index) == good + bad, f"chunk at {chunk.base}: {len(index)} rows != {good} ok + {bad} quarantined"
        q = quarantine_rows(path.name, chunk)
        assert len(q["file"]) == bad, f"chunk at {chunk.base}: {len(q['file'])} quarantine rows for {bad}"
        assert [len(r) for r in q["raw"]] == q["octets"], f"chunk at {chunk.base}: raw octets differ from spans"
        rows = index.copy()
        rows["offset"] += chunk.base
        parts.append(rows)
    return np.concatenate(parts) if parts else np.empty(0, icd.PACKET_INDEX)


def ingest_counts(bufs: list[np.ndarray], root: Path) -> dict[str, int]:
    """The run (:func:`pipeline.run.run`, through tests.tm) over ``bufs`` as the TM files of a dataset at
    ``root``, in reception order: its conservation counts.

    The only code here that knows the run's interface; returns ``packets_read``, ``packets_used``,
    ``duplicates_dropped``, ``packets_quarantined`` and ``quarantine_rows`` (rows of its quarantine table).
    """
    from tests.tm import make_dataset, run_dataset

    out = run_dataset(make_dataset(root / "dataset", {f"pass-{i:03d}.tm": b.tobytes() for i, b in enumerate(bufs)}))
    keys = ("packets_read", "packets_used", "duplicates_dropped", "packets_quarantined")
    counts = {k: int(out.counts[k]) for k in keys}
    counts["quarantine_rows"] = len(out.quarantine)
    return counts


def run_crafted(bufs: list[np.ndarray], root: Path, span_ns: tuple[int, int]) -> int:
    """The run over ``bufs`` as the TM files of a dataset of the day ``span_ns``: no exception, the balance
    exact (every packet the scanner finds is used, a counted duplicate or quarantined), and no row of
    ``transits`` or ``ccd`` outside the ICD or unlike its transit_id (tests.tm.icd_violations). Returns the
    packets read."""
    from tests.tm import icd_violations, make_dataset, run_dataset

    dataset = make_dataset(root / "dataset", {f"pass-{i:03d}.tm": b.tobytes() for i, b in enumerate(bufs)}, span_ns)
    out = run_dataset(dataset)
    c = out.counts
    expected_read = sum(len(icd.scan_stream(b)) for b in bufs)
    assert c["packets_read"] == expected_read, f"{c['packets_read']} packets read, the scanner found {expected_read}"
    balance = c["packets_used"] + c["duplicates_dropped"] + c["packets_quarantined"]
    assert c["packets_read"] == balance, f"read {c['packets_read']} != used + duplicates + quarantined = {balance}"
    assert len(out.quarantine) == c["packets_quarantined"], "quarantine table and count disagree"
    assert sum(g["kind"] == "duplicate" for g in out.gaps) == c["duplicates_dropped"], "duplicate rows and count"
    violations = icd_violations(out, span_ns)
    assert not violations, f"outputs that break the ICD: {violations}"
    return c["packets_read"]
