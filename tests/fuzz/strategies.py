"""Hypothesis strategies for fuzzing the TM path and the fault-plan parser.

Two kinds of input reach the scanner: bytes with no structure at all, and real telemetry (packets the ICD
encoder made from valid records, interleaved by APID like a downlink pass) broken the ways a link and a
ground station break it: bit flips, truncation, splices of two passes, length fields that lie, huge
length fields, zeroed headers, garbage, deleted and repeated spans, packets forged with a correct CRC.

Every mutation is a :class:`Mutation` value applied by :func:`mutate`, so the same code serves the
shrinkable strategy (:func:`mutated_tm`: hypothesis draws the mutations) and the fast batches
(:func:`mutation_batches`: one example's seed drives ``numpy.random.default_rng`` through many
mutations, each of them one more input).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from gaiasim.sim.faults import FaultPlan
from gaiasim.sim.hk_faults import HK_PLAN_KEYS
from gaiasim.sim.variability import PLAN_KEYS as VARIABILITY_KEYS
from pipeline import icd

APIDS = sorted(icd.PAYLOADS)
#: Relative frequency of each APID in a pass: star packets dominate, attitude at ~1 Hz, HK slower.
APID_WEIGHTS = {icd.APID_HK: 1, icd.APID_ATTITUDE: 3, icd.APID_STAR_WC0: 1, icd.APID_STAR_WC1: 3,
                icd.APID_STAR_WC2: 8}
#: Octet offset of the fields of the primary header (CCSDS 133.0-B).
LENGTH_FIELD = 4
MUTATION_KINDS = (
    "bit_flips",  # 1-8 bits flipped anywhere
    "overwrite",  # a few octets overwritten with random values
    "truncate_tail",  # the stream ends early (a pass cut short)
    "truncate_head",  # the stream starts late (acquisition of signal mid-packet)
    "splice",  # the head of this pass, the tail of another one
    "length_lie",  # a packet's length field off by a little, CRC left as it was
    "length_lie_crc",  # the same, with a CRC recomputed over the length the field claims (a forged packet)
    "huge_length",  # a packet's length field near 0xFFFF
    "zero_header",  # a packet's primary header zeroed
    "apid_change",  # a packet's APID replaced (unknown or another known one)
    "insert_garbage",  # random octets inserted
    "delete_span",  # a span of octets removed
    "repeat_packet",  # a packet received twice (a duplicate)
    "swap_packets",  # two packets exchanged (reception out of order)
)
#: Largest fault-plan value magnitude drawn: covers every range the plan checks, and far beyond.
_BIG = 10**7


# --- valid telemetry -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tm:
    """A TM byte stream and the (offset, octets) of each packet the encoder put in it."""

    buf: np.ndarray  # uint8
    spans: tuple[tuple[int, int], ...]


def encode_tm(rng: np.random.Generator, n_packets: int) -> Tm:
    """About ``n_packets`` valid packets, in per-APID runs of 1-8 with consecutive sequence counts and
    increasing OBMT, like a downlink pass. Payloads are random octets with a consistent window class."""
    apids = np.array(APIDS)
    p = np.array([APID_WEIGHTS[a] for a in APIDS], dtype=float)
    seq = {int(a): int(rng.integers(0, icd.SEQ_COUNT_MODULO)) for a in APIDS}
    t = int(rng.integers(0, 2**62))
    parts, spans, offset, left = [], [], 0, n_packets
    while left > 0:
        apid = int(rng.choice(apids, p=p / p.sum()))
        n = min(left, int(rng.integers(1, 9)))
        dtype = icd.PAYLOADS[apid]
        payload = np.frombuffer(rng.bytes(n * dtype.itemsize), dtype=dtype).copy()
        if apid in icd.STAR_APIDS:
            payload["window_class"] = icd.STAR_APIDS.index(apid)
            payload["gate"] = 0
        obmt = t + np.cumsum(rng.integers(1, 10**9, n)).astype(np.uint64)
        t = int(obmt[-1])
        rows = icd.encode_packets(apid, seq[apid] + np.arange(n), obmt, payload)
        seq[apid] += n
        parts.append(rows.reshape(-1))
        for _ in range(n):
            spans.append((offset, rows.shape[1]))
            offset += rows.shape[1]
        left -= n
    buf = np.concatenate(parts) if parts else np.empty(0, np.uint8)
    return Tm(buf, tuple(spans))


def _set_crc(buf: np.ndarray, start: int, octets: int) -> None:
    """Recompute the CRC of the packet of ``octets`` at ``start`` (where it fits in ``buf``)."""
    if octets >= icd.MIN_PACKET_OCTETS and start + octets <= buf.size:
        crc = icd.crc16(buf[start:start + octets - icd.CRC_OCTETS])
        buf[start + octets - 2], buf[start + octets - 1] = crc >> 8, crc & 0xFF


# --- mutations -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    """One way of breaking a stream: ``kind`` (:data:`MUTATION_KINDS`), where (``at`` in [0, 1) of the
    stream or of its packets), how much (``size``) and with what (``value``, also a seed for the octets)."""

    kind: str
    at: float
    size: int
    value: int


def _packet(tm_spans: tuple[tuple[int, int], ...], at: float, n: int) -> tuple[int, int] | None:
    """The packet at fraction ``at`` of the spans that still start inside a stream of ``n`` octets."""
    spans = [s for s in tm_spans if s[0] + icd.PRIMARY_HEADER_OCTETS <= n]
    return spans[min(int(at * len(spans)), len(spans) - 1)] if spans else None


def mutate(tm: Tm, m: Mutation, other: Tm) -> Tm:
    """``tm`` broken by ``m`` (``other`` is the second pass of a splice). Spans are kept as hints of
    where packets start; after a mutation that moves octets they are only approximately right."""
    buf = tm.buf.copy()
    n = buf.size
    pos = min(int(m.at * n), max(n - 1, 0))
    rng = np.random.default_rng(m.value)
    pkt = _packet(tm.spans, m.at, n)
    if m.kind == "bit_flips":
        for bit in rng.integers(0, max(n * 8, 1), 1 + m.size % 8):
            if n:
                buf[bit // 8] ^= np.uint8(0x80 >> (bit % 8))
    elif m.kind == "overwrite":
        k = min(1 + m.size % 16, n - pos)
        buf[pos:pos + k] = np.frombuffer(rng.bytes(max(k, 0)), np.uint8)
    elif m.kind == "truncate_tail":
        buf = buf[:pos]
    elif m.kind == "truncate_head":
        buf = buf[pos:]
    elif m.kind == "splice":
        cut = min(int((m.size % 997) / 997 * other.buf.size), other.buf.size)
        buf = np.concatenate([buf[:pos], other.buf[cut:]])
    elif m.kind in ("length_lie", "length_lie_crc", "huge_length") and pkt is not None:
        start, octets = pkt
        field = octets - icd.PRIMARY_HEADER_OCTETS - 1
        if m.kind == "huge_length":
            new = 0xFFFF - m.size % 64
        else:
            delta = 1 + m.size % 40
            new = (field + delta if m.value % 2 else field - delta) % 0x10000
        buf[start + LENGTH_FIELD], buf[start + LENGTH_FIELD + 1] = new >> 8, new & 0xFF
        if m.kind == "length_lie_crc":
            _set_crc(buf, start, new + 1 + icd.PRIMARY_HEADER_OCTETS)
    elif m.kind == "zero_header" and pkt is not None:
        buf[pkt[0]:pkt[0] + icd.PRIMARY_HEADER_OCTETS] = 0
    elif m.kind == "apid_change" and pkt is not None:
        start, octets = pkt
        apid = APIDS[m.size % len(APIDS)] if m.value % 3 == 0 else m.size % (icd.MAX_APID + 1)
        word0 = (int(buf[start]) << 8 | int(buf[start + 1])) & ~icd.MAX_APID | apid
        buf[start], buf[start + 1] = word0 >> 8, word0 & 0xFF
        if m.value % 2:  # a forged packet: right CRC, wrong APID
            _set_crc(buf, start, octets)
    elif m.kind == "insert_garbage":
        buf = np.concatenate([buf[:pos], np.frombuffer(rng.bytes(1 + m.size % 64), np.uint8), buf[pos:]])
    elif m.kind == "delete_span":
        buf = np.concatenate([buf[:pos], buf[pos + 1 + m.size % 256:]])
    elif m.kind == "repeat_packet" and pkt is not None:
        start, octets = pkt
        end = start + octets
        buf = np.concatenate([buf[:end], buf[start:end], buf[end:]])
    elif m.kind == "swap_packets" and pkt is not None and len(tm.spans) > 1:
        (a0, an), (b0, bn) = sorted([pkt, tm.spans[(tm.spans.index(pkt) + 1 + m.size) % len(tm.spans)]])
        if a0 != b0 and b0 + bn <= n:
            buf = np.concatenate([buf[:a0], buf[b0:b0 + bn], buf[a0 + an:b0], buf[a0:a0 + an], buf[b0 + bn:]])
    return Tm(np.ascontiguousarray(buf, dtype=np.uint8), tm.spans)


def random_mutation(rng: np.random.Generator) -> Mutation:
    """A mutation drawn with numpy (the batch path)."""
    return Mutation(MUTATION_KINDS[int(rng.integers(len(MUTATION_KINDS)))], float(rng.random()),
                    int(rng.integers(0, 2**31)), int(rng.integers(0, 2**31)))


def mutate_batch(seed: int, base: Tm, other: Tm, k: int, max_stack: int = 3) -> list[np.ndarray]:
    """``k`` mutants of ``base``, each 1-``max_stack`` random mutations deep, derived from ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(k):
        tm = base
        for _ in range(int(rng.integers(1, max_stack + 1))):
            tm = mutate(tm, random_mutation(rng), other)
        out.append(tm.buf)
    return out


@st.composite
def valid_tm(draw, max_packets: int = 40) -> Tm:
    """A valid TM stream of 0-``max_packets`` packets (the encoder's output, seeded by hypothesis)."""
    seed = draw(st.integers(0, 2**32 - 1))
    return encode_tm(np.random.default_rng(seed), draw(st.integers(0, max_packets)))


@st.composite
def mutations(draw) -> Mutation:
    """One mutation, drawn by hypothesis (so it shrinks to the simplest kind, place and size)."""
    return Mutation(draw(st.sampled_from(MUTATION_KINDS)), draw(st.floats(0.0, 1.0, exclude_max=True)),
                    draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2**31 - 1)))


@st.composite
def mutated_tm(draw, max_packets: int = 40, max_stack: int = 4) -> np.ndarray:
    """Real telemetry broken by 1-``max_stack`` hypothesis-drawn mutations (see :data:`MUTATION_KINDS`)."""
    tm = draw(valid_tm(max_packets))
    other = draw(valid_tm(max_packets))
    for m in draw(st.lists(mutations(), min_size=1, max_size=max_stack)):
        tm = mutate(tm, m, other)
    return tm.buf


@st.composite
def mutation_batches(draw, max_packets: int = 40) -> tuple[int, Tm, Tm]:
    """(seed, base pass, other pass) for :func:`mutate_batch`: one example, many mutants."""
    return draw(st.integers(0, 2**63 - 1)), draw(valid_tm(max_packets)), draw(valid_tm(max_packets))


# --- arbitrary bytes -----------------------------------------------------------------------------------


@st.composite
def arbitrary_bytes(draw, max_size: int = 4096) -> np.ndarray:
    """Any octets at all (hypothesis-drawn, so it shrinks)."""
    return np.frombuffer(draw(st.binary(max_size=max_size)), dtype=np.uint8).copy()


def random_buffers(seed: int, k: int, max_size: int = 4096) -> list[np.ndarray]:
    """``k`` buffers from ``seed``: uniform noise, noise sown with plausible primary headers (known APIDs
    and ICD lengths, wrong CRCs), and forged packets whose CRC is right but whose APID or length is not."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(k):
        buf = np.frombuffer(rng.bytes(int(rng.integers(0, max_size + 1))), np.uint8).copy()
        if i % 3 and buf.size >= icd.PRIMARY_HEADER_OCTETS:
            for pos in rng.integers(0, buf.size - icd.PRIMARY_HEADER_OCTETS + 1, 1 + buf.size // 256):
                apid = int(rng.choice(APIDS)) if rng.random() < 0.8 else int(rng.integers(0, icd.MAX_APID + 1))
                octets = icd.packet_octets(apid) if apid in icd.PAYLOADS and rng.random() < 0.8 else int(
                    rng.integers(icd.MIN_PACKET_OCTETS, 5000))
                header = [(1 << 3) | apid >> 8, apid & 0xFF, 0xC0, 0, (octets - 7) >> 8, (octets - 7) & 0xFF]
                buf[pos:pos + icd.PRIMARY_HEADER_OCTETS] = header
                if i % 3 == 2:
                    _set_crc(buf, int(pos), octets)
        out.append(buf)
    return out


@st.composite
def random_batches(draw) -> int:
    """A seed for :func:`random_buffers`."""
    return draw(st.integers(0, 2**63 - 1))


# --- fault plans ---------------------------------------------------------------------------------------

#: Every key a fault-plan TOML may hold (the packet faults, the HK anomalies and the variability plan).
PLAN_KEYS = tuple(sorted({f for f in FaultPlan.__dataclass_fields__} | set(HK_PLAN_KEYS) | set(VARIABILITY_KEYS)))


@st.composite
def toml_values(draw) -> object:
    """A TOML value of any type: numbers in and far out of every range, non-finite floats, booleans,
    strings, dates, date-times, arrays and tables."""
    scalar = st.one_of(
        st.integers(-_BIG, _BIG),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(-1.0, 2.0),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.text(max_size=8),
        st.dates(),
        st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
    )
    return draw(st.one_of(scalar, st.lists(scalar, max_size=3), st.dictionaries(st.sampled_from(PLAN_KEYS),
                                                                                 scalar, max_size=2)))


@st.composite
def fault_plan_tables(draw) -> dict[str, object]:
    """A fault-plan table: known keys (often with valid values) and sometimes an unknown key."""
    keys = draw(st.lists(st.sampled_from(PLAN_KEYS), unique=True, max_size=len(PLAN_KEYS)))
    valid = st.one_of(st.integers(0, 3), st.floats(0.0, 0.5))
    table = {k: draw(st.one_of(valid, toml_values())) for k in keys}
    if draw(st.integers(0, 9)) == 0:
        table[draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))] = 1
    return table


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return json.dumps(str(v))  # JSON string escapes are TOML basic-string escapes


def toml_text(table: dict[str, object]) -> str:
    """``table`` as TOML text (the few types :func:`toml_values` draws)."""
    return "".join(f"{k} = {_toml_value(v)}\n" for k, v in table.items())


@st.composite
def fault_plan_texts(draw) -> str:
    """The text of a fault-plan file: a drawn table as TOML, or (sometimes) any text at all."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(max_size=200))
    return toml_text(draw(fault_plan_tables()))
