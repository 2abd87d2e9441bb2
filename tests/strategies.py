"""Hypothesis strategies shared by the property tests: packets, streams and fault plans.

Payloads are arbitrary bytes viewed as the ICD payload dtype, so every bit pattern (NaN floats,
saturated samples, nonsense transit ids) goes through the encoder and the scanner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from gaiasim.sim.faults import FaultPlan
from pipeline import icd

APIDS = sorted(icd.PAYLOADS)
#: Sequence counts are taken modulo 16384 by the encoder: draw well beyond it to exercise the wrap.
SEQ_COUNT_MAX = 4 * icd.SEQ_COUNT_MODULO
OBMT_NS_MAX = 2**64 - 1


@dataclass(frozen=True)
class Chunk:
    """A run of packets of one APID, as the encoder takes them."""

    apid: int
    seq: np.ndarray  # int64 sequence counts (not reduced modulo 16384)
    obmt_ns: np.ndarray  # uint64 on-board mission times, ns
    payload: np.ndarray  # icd.PAYLOADS[apid] records

    def encode(self) -> np.ndarray:
        """(n, octets) uint8 packets."""
        return icd.encode_packets(self.apid, self.seq, self.obmt_ns, self.payload)


@st.composite
def apids(draw) -> int:
    """Any APID of the ICD."""
    return draw(st.sampled_from(APIDS))


@st.composite
def payloads(draw, apid: int, n: int) -> np.ndarray:
    """``n`` payload records of ``apid``: hypothesis-drawn bytes viewed as ``icd.PAYLOADS[apid]``."""
    dtype = icd.PAYLOADS[apid]
    raw = draw(st.binary(min_size=n * dtype.itemsize, max_size=n * dtype.itemsize))
    return np.frombuffer(raw, dtype=dtype, count=n).copy()


@st.composite
def sequence_counts(draw, n: int) -> np.ndarray:
    """``n`` sequence counts, either arbitrary or consecutive from an arbitrary start (wrapping)."""
    if draw(st.booleans()):
        start = draw(st.integers(0, SEQ_COUNT_MAX))
        return start + np.arange(n, dtype=np.int64)
    return np.array(draw(st.lists(st.integers(0, SEQ_COUNT_MAX), min_size=n, max_size=n)), dtype=np.int64)


@st.composite
def obmt_values(draw, n: int) -> np.ndarray:
    """``n`` OBMT values in ns over the whole uint64 range."""
    return np.array(draw(st.lists(st.integers(0, OBMT_NS_MAX), min_size=n, max_size=n)), dtype=np.uint64)


@st.composite
def chunks(draw, apid: int | None = None, min_packets: int = 0, max_packets: int = 3) -> Chunk:
    """One chunk of packets of ``apid`` (any APID when None)."""
    apid = draw(apids()) if apid is None else apid
    n = draw(st.integers(min_packets, max_packets))
    return Chunk(apid, draw(sequence_counts(n)), draw(obmt_values(n)), draw(payloads(apid, n)))


@st.composite
def packet_streams(draw, min_chunks: int = 1, max_chunks: int = 4, min_packets: int = 1) -> list[Chunk]:
    """Chunks of several APIDs (one APID may come back in several chunks), concatenated in order."""
    return draw(st.lists(chunks(min_packets=min_packets), min_size=min_chunks, max_size=max_chunks))


def stream_bytes(stream: list[Chunk]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The concatenated stream and the (offset, octets) of every packet in it."""
    parts = [c.encode() for c in stream]
    spans = []
    offset = 0
    for rows in parts:
        for _ in range(rows.shape[0]):
            spans.append((offset, rows.shape[1]))
            offset += rows.shape[1]
    buf = np.concatenate([r.reshape(-1) for r in parts]) if parts else np.empty(0, np.uint8)
    return buf, spans


@st.composite
def fault_plans(draw, max_fraction: float = 0.5) -> FaultPlan:
    """Any valid fault plan (fractions in [0, max_fraction], up to 2 truncated files)."""
    fraction = st.floats(0.0, max_fraction, allow_nan=False)
    return FaultPlan(
        packet_loss=draw(fraction),
        bit_flip=draw(fraction),
        duplicate=draw(fraction),
        truncated_files=draw(st.integers(0, 1)),
        truncate_octets=draw(st.integers(1, 1000)),
    )
