"""Fault plans and the fault ledger.

A fault plan (TOML in datasets/faults/) says what to break in the downlinked telemetry. Every injected
fault becomes one row of the ledger (``truth_faults``) with what a correct pipeline must report for it,
so the harness can check that each one is detected.

Plan keys (all optional; fractions are per packet, drawn independently per pass)::

    packet_loss = 0.001      # packets lost in the downlink      -> pipeline reports a sequence gap
    bit_flip = 0.001         # one bit flipped in a packet       -> quarantine (crc_error or other)
    duplicate = 0.001        # packet received twice             -> duplicate dropped
    truncated_files = 1      # the last file ends mid-packet     -> quarantine (truncated)
    truncate_octets = 100    # octets cut from the end of that file
    late_delivery = 0.001    # packet arrives one pass late      -> out_of_order
    overlap_s = 60           # the last 60 s of each pass again at the start of the next -> duplicates
    attitude_glitches = 3    # corrupted attitude solutions     -> hk_events attitude glitch
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pyarrow as pa

from gaiasim.sim.hk_faults import HkFaultPlan
from gaiasim.sim.instrument import drift
from gaiasim.sim.instrument.drift import PLAN_KEYS as DRIFT_KEYS
from gaiasim.sim.instrument.focal_plane import quat_multiply
from gaiasim.sim.variability import PLAN_KEYS as VARIABILITY_KEYS
from gaiasim.spec import SpecError, load_toml

TRUTH_FAULTS = pa.schema(
    [
        pa.field("fault_id", pa.int64(), nullable=False),
        pa.field("kind", pa.string(), nullable=False,
                 metadata={"doc": "packet_loss, bit_flip, duplicate, truncated_file"}),
        pa.field("file", pa.string(), nullable=False),
        pa.field("apid", pa.int32(), nullable=False),
        pa.field("seq", pa.int32(), nullable=False),
        pa.field("obmt_ns", pa.int64(), nullable=False, metadata={"unit": "ns"}),
        pa.field("offset", pa.int64(), nullable=False, metadata={"unit": "octet", "doc": "in the TM file"}),
        pa.field("expected", pa.string(), nullable=False, metadata={"doc": "what the pipeline must report"}),
    ]
)


@dataclass(frozen=True)
class FaultPlan:
    packet_loss: float = 0.0  # fraction of packets lost
    bit_flip: float = 0.0  # fraction of packets with one flipped bit
    duplicate: float = 0.0  # fraction of packets received twice
    truncated_files: int = 0  # 1: the last TM file of the dataset is cut short inside its last packet
    truncate_octets: int = 100  # octets cut from the truncated file
    late_delivery: float = 0.0  # fraction of packets that arrive one pass late (out of time order)
    overlap_s: float = 0.0  # seconds of data at the end of each pass sent again in the next (overlapping passes)
    attitude_glitches: int = 0  # corrupted attitude solutions: runs of 1-8 samples off by 3-60 arcsec
    hk_excursions: int = 0  # HK limit violations (gaiasim.sim.hk_faults)   -> hk_events limit
    hk_stale: int = 0  # HK stale-channel periods (gaiasim.sim.hk_faults)   -> hk_events stale

    def __post_init__(self) -> None:
        for f in fields(self):
            if isinstance(getattr(self, f.name), bool):
                raise SpecError(f"{f.name} = {getattr(self, f.name)!r}: must be a number, not true/false")
        for name in ("packet_loss", "bit_flip", "duplicate", "late_delivery"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value <= 0.5:
                raise SpecError(f"{name} = {value!r}: must be a fraction in [0, 0.5]")
        if not isinstance(self.truncated_files, int) or self.truncated_files not in (0, 1):
            raise SpecError(f"truncated_files = {self.truncated_files!r}: must be 0 or 1 (the last file is cut)")
        if not isinstance(self.attitude_glitches, int) or not 0 <= self.attitude_glitches <= 100:
            raise SpecError(f"attitude_glitches = {self.attitude_glitches!r}: must be an integer in [0, 100]")
        if not isinstance(self.overlap_s, int | float) or not 0.0 <= self.overlap_s <= 3600.0:
            raise SpecError(f"overlap_s = {self.overlap_s!r}: must be a number of seconds in [0, 3600]")
        if not isinstance(self.truncate_octets, int) or not 1 <= self.truncate_octets <= 1_000_000:
            raise SpecError(f"truncate_octets = {self.truncate_octets!r}: must be an integer in [1, 1000000]")
        HkFaultPlan(self.hk_excursions, self.hk_stale)  # checks the two HK keys


def load_plan(path: Path) -> FaultPlan:
    raw = load_toml(Path(path))
    allowed = {f.name for f in fields(FaultPlan)} | set(VARIABILITY_KEYS) | set(DRIFT_KEYS)
    unknown = sorted(set(raw) - allowed)
    if unknown:
        allowed_keys = ", ".join(sorted(allowed))
        raise SpecError(f"{path}: unknown key {unknown[0]!r} in the fault plan; allowed keys: {allowed_keys}")
    try:
        drift.plan_from_mapping(raw)  # its keys are checked with the rest, before anything is written
        return FaultPlan(**{k: v for k, v in raw.items() if k not in VARIABILITY_KEYS and k not in DRIFT_KEYS})
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None


class Ledger:
    """Collects the injected faults; :meth:`table` gives ``truth_faults``."""

    def __init__(self) -> None:
        self._rows: list[tuple] = []

    def add(self, kind: str, file: str, apid: int, seq: int, obmt_ns: int, offset: int, expected: str) -> None:
        self._rows.append((len(self._rows), kind, file, int(apid), int(seq), int(obmt_ns), int(offset), expected))

    def count(self) -> int:
        return len(self._rows)

    def table(self) -> pa.Table:
        cols = list(zip(*self._rows, strict=True)) if self._rows else [[] for _ in TRUTH_FAULTS]
        return pa.table(dict(zip(TRUTH_FAULTS.names, cols, strict=True)), schema=TRUTH_FAULTS)


#: A fault found in one chunk of packets: (kind, apid, seq, obmt_ns, offset in the chunk, expected).
FaultRow = tuple[str, int, int, int, int, str]


def inject(plan: FaultPlan, rng: np.random.Generator, apid: int, seq: np.ndarray, t: np.ndarray, rows: np.ndarray,
           protected: np.ndarray) -> tuple[np.ndarray, list[FaultRow]]:
    """Bytes of a run of packets of one APID (``rows``: one packet per row, in reception order) with the
    plan's packet faults injected, and the faults (offsets relative to the start of the run).

    ``protected`` packets get no fault: the first and the last two packets of each APID in a dataset.
    A loss is only visible as a sequence gap when an intact packet of the same APID follows it, and the
    last packet may be cut short by a truncated file, so the one before it must arrive intact.
    """
    n, octets = rows.shape
    lost = ~protected & (rng.random(n) < plan.packet_loss)
    flipped = ~protected & ~lost & (rng.random(n) < plan.bit_flip)
    # A flipped packet is quarantined, so a copy of it would not be a duplicate: keep them apart.
    duplicated = ~protected & ~lost & ~flipped & (rng.random(n) < plan.duplicate)
    kept = np.flatnonzero(~lost)
    copies = 1 + duplicated[kept]
    first_copy = np.cumsum(copies) - copies  # output row of each kept packet
    # Most runs have no packet fault: their rows go out as they are (a view), not copied.
    out = rows[np.repeat(kept, copies)] if len(kept) < n or duplicated.any() or flipped.any() else rows
    found: list[FaultRow] = []
    for i in np.flatnonzero(lost):
        # A lost packet is reported where the next packet of the run starts.
        found.append(("packet_loss", apid, int(seq[i]), int(t[i]), octets * int(np.sum(copies[kept < i])), "gap"))
    for j in np.flatnonzero(flipped[kept]):
        bit = int(rng.integers(0, octets * 8))
        out[first_copy[j], bit // 8] ^= np.uint8(1 << (bit % 8))
        found.append(("bit_flip", apid, int(seq[kept[j]]), int(t[kept[j]]), octets * int(first_copy[j]),
                      "quarantine"))
    for j in np.flatnonzero(duplicated[kept]):
        found.append(("duplicate", apid, int(seq[kept[j]]), int(t[kept[j]]), octets * int(first_copy[j] + 1),
                      "duplicate"))
    return out.reshape(-1), found


def attitude_glitches(plan: FaultPlan, rng: np.random.Generator, q: np.ndarray) -> list[tuple[int, int]]:
    """Corrupt runs of downlinked attitude samples in place (a rotation of 3-60 arcsec about a random
    axis); returns the (first sample, samples) of each run. Runs are at least 200 samples apart and away
    from the ends, so each one can be told from the smooth attitude around it."""
    n = len(q)
    slots = np.arange(100, n - 100, 200)
    glitches = []
    for first in np.sort(rng.choice(slots, min(plan.attitude_glitches, len(slots)), replace=False)):
        length = int(rng.integers(1, 9))
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        angle = np.deg2rad(rng.uniform(3.0, 60.0) / 3600.0)
        dq = np.concatenate([axis * np.sin(0.5 * angle), [np.cos(0.5 * angle)]])
        q[first:first + length] = quat_multiply(q[first:first + length], dq)
        glitches.append((int(first), length))
    return glitches


def truncation(plan: FaultPlan, tail: np.ndarray, size: int) -> tuple[int, FaultRow]:
    """Where a truncated file of ``size`` octets ends, given its last packet's octets ``tail``: inside
    that packet (never the whole of it), so exactly one packet is cut short."""
    apid = ((int(tail[0]) << 8) | int(tail[1])) & 0x7FF
    seq = ((int(tail[2]) << 8) | int(tail[3])) & 0x3FFF
    t = int.from_bytes(tail[6:14].tobytes(), "big")
    cut = min(plan.truncate_octets, tail.size - 1)
    return size - cut, ("truncated_file", apid, seq, t, size - tail.size, "quarantine")


def apply(plan: FaultPlan, rng: np.random.Generator, file: str,
          chunks: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]], ledger: Ledger,
          truncate: bool = False) -> np.ndarray:
    """Bytes of one TM file from its packets (``(apid, seq, obmt_ns, rows, protected)`` per APID, in
    reception order), with the plan's faults injected (:func:`inject`) and recorded in ``ledger``;
    ``truncate`` cuts the file short inside its last packet (:func:`truncation`)."""
    pieces: list[np.ndarray] = []
    offset = 0
    last_octets = 0
    for apid, seq, t, rows, protected in chunks:
        data, found = inject(plan, rng, apid, seq, t, rows, protected)
        for kind, a, sq, tt, rel, expected in found:
            ledger.add(kind, file, a, sq, tt, offset + rel, expected)
        if data.size:
            pieces.append(data)
            last_octets = rows.shape[1]
        offset += data.size
    data = np.concatenate(pieces) if pieces else np.empty(0, dtype=np.uint8)
    if truncate and last_octets:
        end, (kind, a, sq, tt, start, expected) = truncation(plan, data[data.size - last_octets:], data.size)
        ledger.add(kind, file, a, sq, tt, start, expected)
        data = data[:end]
    return data
