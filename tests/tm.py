"""Hand-made telemetry for tests of the run's ingest: packets built here, written as TM files of a small
dataset (a one-source catalogue and a ``dataset.json`` with the day's OBMT span), run by the real pipeline,
and its outputs read back; and forged packets: a packet of a real dataset changed field by field, with its
CRC recomputed, so only the ICD's content rules can catch it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import icd, schemas
from pipeline.executor import SerialExecutor
from pipeline.run import run

#: OBMT at the start of the hand-made day (2016-01-16, as the demo day), and the day's length.
T0_NS = 69_911_112_960_000_000
DAY_NS = 86_400_000_000_000
MOD = icd.SEQ_COUNT_MODULO


def periodic_packets(apid: int, seq0: int, n: int, t0_ns: int = T0_NS) -> np.ndarray:
    """``n`` valid HK or attitude packets (rows of octets) from count ``seq0``, one ICD period apart."""
    payload = np.zeros(n, icd.PAYLOADS[apid])
    if apid == icd.APID_HK:
        payload["value"] = np.arange(n * len(icd.HK_CHANNELS), dtype=np.float32).reshape(n, -1)
    else:
        payload["q"][:, 3] = 1.0  # the identity attitude: a unit quaternion
    t = t0_ns + np.arange(n, dtype=np.int64) * icd.PERIOD_NS[apid]
    return icd.encode_packets(apid, seq0 + np.arange(n), t.astype(np.uint64), payload)


def hk_packets(seq0: int, n: int, t0_ns: int = T0_NS) -> np.ndarray:
    return periodic_packets(icd.APID_HK, seq0, n, t0_ns)


def hand_packet(apid: int, seq: int, body: bytes, obmt_ns: int = T0_NS) -> np.ndarray:
    """A CCSDS TM packet built octet by octet, with a correct CRC (for APIDs or lengths outside the ICD)."""
    data = int(obmt_ns).to_bytes(8, "big") + bytes(body)
    word0 = (1 << 11) | apid
    word1 = (0b11 << 14) | seq
    header = word0.to_bytes(2, "big") + word1.to_bytes(2, "big") + (len(data) + 2 - 1).to_bytes(2, "big")
    packet = np.frombuffer(header + data, dtype=np.uint8)
    return np.concatenate([packet, np.frombuffer(icd.crc16(packet).to_bytes(2, "big"), np.uint8)])


def tm_bytes(pieces: list[np.ndarray]) -> bytes:
    return np.concatenate([np.asarray(p, np.uint8).reshape(-1) for p in pieces]).tobytes() if pieces else b""


def make_dataset(root: Path, files: dict[str, bytes], span_ns: tuple[int, int] = (T0_NS, T0_NS + DAY_NS)) -> Path:
    """A dataset folder at ``root``: ``tm/<name>`` holding each of ``files``' octets, a one-source
    catalogue and ``dataset.json`` with the day's OBMT span."""
    (root / "tm").mkdir(parents=True)
    for name, data in files.items():
        (root / "tm" / name).write_bytes(data)
    (root / "catalogue" / "region=00").mkdir(parents=True)
    catalogue = pa.table({"source_id": [1], "ra_deg": [10.0], "dec_deg": [10.0], "g_mag": [15.0],
                          "g_mag_sigma": [0.01]}, schema=schemas.CATALOGUE)
    pq.write_table(catalogue, root / "catalogue" / "region=00" / "part-00000.parquet")
    (root / "dataset.json").write_text(json.dumps({"obmt_start_ns": span_ns[0], "obmt_end_ns": span_ns[1]}))
    return root


@dataclass
class RunOutputs:
    counts: dict
    warnings: list[str]
    quarantine: list[dict]  # ordered by file, offset
    gaps: list[dict]  # ordered as the run wrote them (hour parts, then the whole day's, then between hours)
    transits: pa.Table
    ccd: pa.Table


def _read(folder: Path, schema: pa.Schema) -> pa.Table:
    parts = [pq.read_table(p, partitioning=None).cast(schema) for p in sorted(folder.rglob("*.parquet"))]
    return pa.concat_tables(parts) if parts else schema.empty_table()


def run_dataset(dataset: Path, out: Path | None = None) -> RunOutputs:
    """Run the pipeline (serially) over ``dataset`` and read back its counts and tables."""
    out = out or dataset.parent / f"{dataset.name}-run"
    info = run(dataset, out, executor=SerialExecutor())
    quarantine = sorted(_read(out / "quarantine", schemas.QUARANTINE).to_pylist(),
                        key=lambda r: (r["file"], r["offset"]))
    return RunOutputs(info["counts"], info["warnings"], quarantine, _read(out / "gaps", schemas.GAPS).to_pylist(),
                      _read(out / "transits", schemas.TRANSITS), _read(out / "ccd", schemas.CCD))


def run_tm(root: Path, files: dict[str, list[np.ndarray]], **kwargs) -> RunOutputs:
    """:func:`make_dataset` of the packets ``files`` (name -> pieces of octets) at ``root``, then run it."""
    return run_dataset(make_dataset(root / "dataset", {n: tm_bytes(p) for n, p in files.items()}, **kwargs))


def assert_conserved(counts: dict) -> None:
    assert counts["packets_read"] == (counts["packets_used"] + counts["duplicates_dropped"]
                                      + counts["packets_quarantined"]), counts


# --- forging packets of a real dataset -----------------------------------------------------------------


@dataclass(frozen=True)
class Packet:
    """Where one packet of a dataset lies."""

    file: Path
    offset: int
    apid: int


def packets_of(path: Path, apid: int) -> list[Packet]:
    """Every sound packet of ``apid`` in the TM file ``path``, in file order."""
    index = icd.scan_stream(np.fromfile(path, np.uint8))
    sel = index[(index["apid"] == apid) & (index["status"] == icd.STATUS_OK)]
    return [Packet(path, int(o), apid) for o in sel["offset"]]


def read_packet(p: Packet) -> np.ndarray:
    """The packet as one record of :func:`pipeline.icd.packet_dtype` (a copy)."""
    n = icd.packet_octets(p.apid)
    with open(p.file, "rb") as f:
        f.seek(p.offset)
        return np.frombuffer(f.read(n), icd.packet_dtype(p.apid)).copy()


def write_packet(p: Packet, record: np.ndarray) -> None:
    """Put ``record`` (one packet record) at ``p``, its CRC recomputed: a sound packet on the link level."""
    octets = np.asarray(record).view(np.uint8).copy()
    crc = icd.crc16(octets[:-icd.CRC_OCTETS])
    octets[-2:] = (crc >> 8, crc & 0xFF)
    with open(p.file, "r+b") as f:
        f.seek(p.offset)
        f.write(octets.tobytes())


def forge(p: Packet, change: Callable[[np.ndarray], None]) -> np.ndarray:
    """Apply ``change`` to the packet at ``p`` in place (a record it may edit), CRC kept valid; returns
    the forged record."""
    record = read_packet(p)
    change(record)
    write_packet(p, record)
    return record


# --- what a run may never output ------------------------------------------------------------------------

#: How far a transit's fitted AF1 time may lie from the time its transit_id encodes: the fit moves it by a
#: fraction of a window (18 TDI periods of ~1 ms); a second is far beyond any fit.
FITTED_TIME_SLACK_NS = 1_000_000_000


def icd_violations(out: RunOutputs, span_ns: tuple[int, int]) -> list[str]:
    """Rows of ``transits`` or ``ccd`` whose FoV, CCD row, AC pixel, gate, window class or time lies outside
    the ICD or disagrees with its transit_id, or that repeat a transit_id (empty when the run is sound)."""
    from pipeline.ingest import DAY_MARGIN_NS

    t = out.transits
    found = []
    tid = t["transit_id"].to_numpy()
    t_ref, fov, row, ac = icd.decode_transit_id(tid)

    def bad(name: str, mask: np.ndarray) -> None:
        if mask.any():
            found.append(f"{int(mask.sum())} transits with {name}, first transit_id {int(tid[np.argmax(mask)])}")

    bad("FoV outside 1-2 or unlike its transit_id", ~np.isin(fov, icd.TRANSIT_ID_FOVS) | (fov != t["fov"].to_numpy()))
    bad("CCD row outside 1-7 or unlike its transit_id", (row < 1) | (row > 7) | (row != t["ccd_row"].to_numpy()))
    bad("AC pixel outside 14-1979 or unlike its transit_id", (ac < icd.TRANSIT_ID_AC_PX[0])
        | (ac > icd.TRANSIT_ID_AC_PX[1]) | (ac != t["ac_px"].to_numpy()))
    bad("a gate not in the ICD", ~np.isin(t["gate"].to_numpy(), sorted(icd.GATES)))
    bad("a window class not in the ICD", ~np.isin(t["window_class"].to_numpy(), list(icd.WINDOW_SAMPLES)))
    obmt = t["obmt_ns"].to_numpy()
    bad("a time far from its transit_id's", np.abs(obmt - t_ref) > FITTED_TIME_SLACK_NS)
    bad("a time outside the day", (obmt < span_ns[0] - DAY_MARGIN_NS - FITTED_TIME_SLACK_NS)
        | (obmt >= span_ns[1] + DAY_MARGIN_NS + FITTED_TIME_SLACK_NS))
    bad("a transit_id seen before", np.r_[False, np.sort(tid)[1:] == np.sort(tid)[:-1]])
    c = out.ccd
    ccd_tid = c["transit_id"].to_numpy()
    known = np.isin(ccd_tid, tid)
    if not known.all():
        found.append(f"{int((~known).sum())} CCD rows of no transit, first transit_id {int(ccd_tid[~known][0])}")
    _, ccd_fov, _, _ = icd.decode_transit_id(ccd_tid)
    strip = np.array(c["strip"].to_pylist(), dtype=object)
    sm = np.isin(strip, ["SM1", "SM2"])
    wrong_sm = sm & (strip != np.where(ccd_fov == 1, "SM1", "SM2"))
    if wrong_sm.any():
        found.append(f"{int(wrong_sm.sum())} SM rows in the other FoV's sky mapper")
    return found
