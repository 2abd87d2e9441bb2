"""Crafted telemetry: CRC-valid packets whose every header and payload field is drawn from its full bit
range, mixed with values that pass the ICD, so inputs reach every stage of the pipeline and every rule of
its ingest (pipeline.icd.check_packets, the day's span, sequence counts, transit_id conflicts).

A packet is a record of :data:`FIELDS`; :func:`encode` turns records into the octets of a TM stream (each
packet's CRC computed over what precedes it: a link-level check never catches them). Hypothesis draws the
records field by field (:func:`crafted_fields`, shrinkable); the long hunt draws thousands of records per
example with numpy from one drawn seed (:func:`random_fields`), with the same mixture of values.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from pipeline import icd

#: One crafted packet, field by field: the CCSDS primary header (version 3 bits, type 1, secondary-header
#: flag 1, APID 11, sequence flags 2, count 14, data length 16: ``length_ok`` puts the ICD's length there),
#: the secondary header's OBMT (64), the star payload's transit_id (64), window class (8) and gate (8), the
#: attitude quaternion (4 x 64 bits) and the seed of every other payload octet.
FIELDS = np.dtype([
    ("apid", "u2"), ("version", "u1"), ("type", "u1"), ("sec_flag", "u1"), ("seq_flags", "u1"), ("seq", "u2"),
    ("length_ok", "?"), ("length", "u2"), ("obmt_ns", "u8"), ("transit_id", "u8"), ("window_class", "u1"),
    ("gate", "u1"), ("q", "f8", (4,)), ("seed", "u4"),
])
#: Longest packet body drawn for a length field that lies (a 16-bit field allows 65536 octets; longer bodies
#: only slow the hunt down).
MAX_LYING_OCTETS = 4096
_KNOWN = sorted(icd.PAYLOADS)


def encode(fields: np.ndarray) -> np.ndarray:
    """The octets of the crafted packets ``fields`` (records of :data:`FIELDS`), one after the other."""
    parts = []
    for f in fields:
        apid = int(f["apid"])
        known = apid in icd.PAYLOADS
        octets = icd.packet_octets(apid) if known and f["length_ok"] else \
            min(int(f["length"]) + 1 + icd.PRIMARY_HEADER_OCTETS, MAX_LYING_OCTETS)
        octets = max(octets, icd.MIN_PACKET_OCTETS)
        rng = np.random.default_rng(int(f["seed"]))
        p = np.frombuffer(rng.bytes(octets), np.uint8).copy()
        word0 = (int(f["version"]) & 7) << 13 | (int(f["type"]) & 1) << 12 | (int(f["sec_flag"]) & 1) << 11 | apid
        word1 = (int(f["seq_flags"]) & 3) << 14 | (int(f["seq"]) & 0x3FFF)
        length = octets - icd.PRIMARY_HEADER_OCTETS - 1 if f["length_ok"] else int(f["length"])
        p[:6] = np.frombuffer(np.array([word0, word1, length], ">u2").tobytes(), np.uint8)
        p[6:14] = np.frombuffer(np.array([f["obmt_ns"]], ">u8").tobytes(), np.uint8)
        payload = icd.PAYLOADS.get(apid)
        if known and payload.itemsize + 16 == octets:
            if apid in icd.STAR_APIDS:
                for name, dtype in (("transit_id", ">u8"), ("window_class", "u1"), ("gate", "u1")):
                    at = 14 + payload.fields[name][1]
                    raw = np.array([f[name]], dtype).view(np.uint8)
                    p[at:at + raw.size] = raw
            elif apid == icd.APID_ATTITUDE:
                p[14:46] = np.array(f["q"], ">f8").view(np.uint8)
        crc = icd.crc16(p[:-2])
        p[-2:] = (crc >> 8, crc & 0xFF)
        parts.append(p)
    return np.concatenate(parts) if parts else np.empty(0, np.uint8)


def _consistent_tid(obmt_ns: int, fov: int, row: int, ac: int) -> int:
    return int(icd.encode_transit_id(np.array([obmt_ns], np.int64), np.array([fov]), np.array([row]),
                                     np.array([ac]))[0])


@st.composite
def crafted_fields(draw, span_ns: tuple[int, int], max_packets: int = 40) -> np.ndarray:
    """1-``max_packets`` crafted packets, each field drawn by hypothesis from its full bit range or from
    the values the ICD allows (so both the rules and the stages behind them are reached)."""
    n = draw(st.integers(1, max_packets))
    out = np.zeros(n, FIELDS)
    in_day = st.integers(span_ns[0], span_ns[0] + 7_200_000_000_000)
    for i in range(n):
        r = out[i]
        r["apid"] = draw(st.one_of(st.sampled_from(_KNOWN), st.integers(0, icd.MAX_APID)))
        r["version"] = draw(st.one_of(st.just(0), st.integers(0, 7)))
        r["type"] = draw(st.one_of(st.just(0), st.integers(0, 1)))
        r["sec_flag"] = draw(st.one_of(st.just(1), st.integers(0, 1)))
        r["seq_flags"] = draw(st.one_of(st.just(3), st.integers(0, 3)))
        r["seq"] = draw(st.integers(0, icd.SEQ_COUNT_MODULO - 1))
        r["length_ok"] = draw(st.booleans().map(lambda b: b or draw(st.integers(0, 3)) > 0))
        r["length"] = draw(st.integers(0, 0xFFFF))
        t = draw(st.one_of(in_day, in_day, st.integers(0, 2**64 - 1)))
        r["obmt_ns"] = t
        fov, row = draw(st.integers(1, 2)), draw(st.integers(1, 7))
        ac = draw(st.integers(*icd.TRANSIT_ID_AC_PX))
        r["transit_id"] = draw(st.one_of(st.just(_consistent_tid(min(t, 2**62), fov, row, ac)),
                                         st.integers(0, 2**64 - 1)))
        wc = icd.STAR_APIDS.index(int(r["apid"])) if int(r["apid"]) in icd.STAR_APIDS else 0
        r["window_class"] = draw(st.one_of(st.just(wc), st.integers(0, 255)))
        r["gate"] = draw(st.one_of(st.sampled_from(sorted(icd.GATES)), st.integers(0, 255)))
        unit = draw(st.tuples(*[st.floats(-1, 1)] * 4).filter(lambda v: sum(x * x for x in v) > 0.01))
        norm = sum(x * x for x in unit) ** 0.5
        r["q"] = draw(st.one_of(st.just(tuple(x / norm for x in unit)),
                                st.tuples(*[st.floats(allow_nan=True, allow_infinity=True)] * 4)))
        r["seed"] = draw(st.integers(0, 2**32 - 1))
    return out


def random_fields(rng: np.random.Generator, n: int, span_ns: tuple[int, int]) -> np.ndarray:
    """``n`` crafted packets drawn with numpy, with the mixture of :func:`crafted_fields` (the long hunt)."""
    out = np.zeros(n, FIELDS)

    def mix(valid: np.ndarray, anything: np.ndarray, p_valid: float) -> np.ndarray:
        return np.where(rng.random(n) < p_valid, valid, anything)

    out["apid"] = mix(rng.choice(_KNOWN, n), rng.integers(0, icd.MAX_APID + 1, n), 0.9)
    out["version"] = mix(np.zeros(n), rng.integers(0, 8, n), 0.95)
    out["type"] = mix(np.zeros(n), rng.integers(0, 2, n), 0.95)
    out["sec_flag"] = mix(np.ones(n), rng.integers(0, 2, n), 0.95)
    out["seq_flags"] = mix(np.full(n, 3), rng.integers(0, 4, n), 0.95)
    # Counts: runs of consecutive counts per APID (as on board) with the occasional jump, repeat or any value.
    base = rng.integers(0, icd.SEQ_COUNT_MODULO, icd.MAX_APID + 1)
    step = mix(np.ones(n, np.int64), rng.integers(0, icd.SEQ_COUNT_MODULO, n), 0.9)
    for i in range(n):
        base[out["apid"][i]] = (base[out["apid"][i]] + step[i]) % icd.SEQ_COUNT_MODULO
        out["seq"][i] = base[out["apid"][i]]
    out["length_ok"] = rng.random(n) < 0.95
    out["length"] = rng.integers(0, 0x10000, n)
    in_day = span_ns[0] + np.sort(rng.integers(0, 7_200_000_000_000, n))
    out["obmt_ns"] = mix(in_day.astype(np.uint64), rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False), 0.95)
    t = np.minimum(out["obmt_ns"], np.uint64(2**62)).astype(np.int64)
    tid = icd.encode_transit_id(t, rng.integers(1, 3, n), rng.integers(1, 8, n),
                                rng.integers(icd.TRANSIT_ID_AC_PX[0], icd.TRANSIT_ID_AC_PX[1] + 1, n))
    out["transit_id"] = mix(tid.astype(np.uint64), rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False), 0.9)
    star = np.isin(out["apid"], icd.STAR_APIDS)
    wc = np.where(star, np.searchsorted(np.array(icd.STAR_APIDS), out["apid"]), 0)
    out["window_class"] = mix(wc, rng.integers(0, 256, n), 0.95)
    out["gate"] = mix(rng.choice(sorted(icd.GATES), n), rng.integers(0, 256, n), 0.95)
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    raw = rng.integers(0, 2**64, (n, 4), dtype=np.uint64, endpoint=False).view(np.float64)
    out["q"] = np.where((rng.random(n) < 0.9)[:, None], q, raw)
    out["seed"] = rng.integers(0, 2**32, n)
    return out
