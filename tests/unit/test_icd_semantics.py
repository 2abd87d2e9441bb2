"""The ICD's content rules (pipeline.icd.check_packets) and the transit_id layout, pinned to the published
values: a sound packet (header, length, CRC good) whose content breaks the ICD is caught, rule by rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline import icd, schemas

#: transit_id keeps 42 bits of OBMT / 204800 ns (GDR3 documentation section 20.9.1).
OBMT_NS_MAX = (1 << 42) * 204_800 - 1
T0_NS = 69_911_112_960_000_000
WC2 = icd.APID_STAR_WC2


def test_the_transit_id_layout_is_gaias():
    # GDR3 documentation section 20.9.1; AC pixels 14..1979 (GEDR3 documentation section 3.3.2).
    assert icd.TRANSIT_ID_OBMT_QUANTUM_NS == 204_800
    assert (icd.TRANSIT_ID_TIME_SHIFT, icd.TRANSIT_ID_TIME_BITS) == (17, 42)
    assert icd.TRANSIT_ID_AC_PX == (14, 1979)
    assert icd.encode_transit_id(np.array([204_800 * 3]), np.array([2]), np.array([5]), np.array([100]))[0] == (
        (3 << 17) | (1 << 15) | (5 << 12) | 100)
    assert icd.GATES == {0, 5, 7, 9}


@given(st.lists(st.tuples(st.integers(0, OBMT_NS_MAX), st.sampled_from([1, 2]), st.integers(1, 7),
                          st.integers(14, 1979)), min_size=1, max_size=20))
def test_transit_id_round_trip(items):
    obmt, fov, row, ac = (np.array(c, dtype=np.int64) for c in zip(*items, strict=True))
    tid = icd.encode_transit_id(obmt, fov, row, ac)
    assert np.all(tid >= 0)
    d_obmt, d_fov, d_row, d_ac = icd.decode_transit_id(tid)
    assert np.array_equal(d_obmt, obmt // 204_800 * 204_800)
    assert np.array_equal(d_fov, fov) and np.array_equal(d_row, row) and np.array_equal(d_ac, ac)


def test_transit_ids_order_by_time_first():
    tid = icd.encode_transit_id(np.array([0, 204_800]), np.array([2, 1]), np.array([7, 1]), np.array([1979, 14]))
    assert tid[0] < tid[1]


def star_packet(apid: int = icd.APID_STAR_WC2, obmt_ns: int = T0_NS + 123_456, fov: int = 1, row: int = 4,
                ac_px: int = 500, **payload) -> np.ndarray:
    """One sound star packet (octets) whose fields are all valid unless overridden."""
    p = np.zeros(1, icd.PAYLOADS[apid])
    p["transit_id"] = icd.encode_transit_id(np.array([obmt_ns]), np.array([fov]), np.array([row]), np.array([ac_px]))
    p["window_class"] = icd.STAR_APIDS.index(apid)
    for name, value in payload.items():
        p[name] = value
    return icd.encode_packets(apid, np.array([7]), np.array([obmt_ns], dtype=np.uint64), p)[0]


def status_of(packet: np.ndarray, apid: int) -> str:
    status = icd.check_packets(packet, np.array([0]), apid)[0]
    return "ok" if status == icd.STATUS_OK else icd.QUARANTINE_REASONS[int(status)]


@pytest.mark.parametrize("apid", icd.STAR_APIDS)
def test_a_valid_star_packet_of_every_window_class_passes(apid):
    assert status_of(star_packet(apid), apid) == "ok"
    for gate in sorted(icd.GATES):
        assert status_of(star_packet(apid, gate=gate), apid) == "ok"
    for fov, row, ac in ((1, 1, 14), (2, 7, 1979)):
        assert status_of(star_packet(apid, fov=fov, row=row, ac_px=ac), apid) == "ok"


def with_tid(packet: np.ndarray, apid: int, change) -> np.ndarray:
    """The packet with its transit_id changed by ``change(tid) -> tid`` and its CRC recomputed."""
    record = packet.copy().view(icd.packet_dtype(apid))
    record["payload"]["transit_id"] = change(int(record["payload"]["transit_id"][0]))
    octets = record.view(np.uint8)
    crc = icd.crc16(octets[:-2])
    octets[-2:] = (crc >> 8, crc & 0xFF)
    return octets


@pytest.mark.parametrize(("name", "make", "reason"), [
    ("window class of another APID", lambda: star_packet(window_class=1), "bad_window_class"),
    ("window class 255", lambda: star_packet(window_class=255), "bad_window_class"),
    ("gate 200", lambda: star_packet(gate=200), "bad_gate"),
    ("gate 3", lambda: star_packet(gate=3), "bad_gate"),
    ("FoV bits 2 (FoV 3)", lambda: with_tid(star_packet(), WC2, lambda t: t | (2 << 15)), "bad_transit_id"),
    ("FoV bits 3 (FoV 4)", lambda: with_tid(star_packet(), WC2, lambda t: t | (3 << 15)), "bad_transit_id"),
    ("CCD row 0", lambda: star_packet(row=0), "bad_transit_id"),
    ("AC pixel 13 (prescan)", lambda: star_packet(ac_px=13), "bad_transit_id"),
    ("AC pixel 1980", lambda: star_packet(ac_px=1980), "bad_transit_id"),
    ("bit 63 set", lambda: with_tid(star_packet(), WC2, lambda t: t | (1 << 63)), "bad_transit_id"),
    ("OBMT 0", lambda: with_tid(star_packet(obmt_ns=0), WC2, lambda t: t | ((T0_NS // 204_800) << 17)),
     "time_mismatch"),
    ("OBMT one quantum after its transit_id", lambda: with_tid(star_packet(), WC2, lambda t: t - (1 << 17)),
     "time_mismatch"),
])
def test_each_content_rule_of_a_star_packet_fires(name, make, reason):
    assert status_of(make(), icd.APID_STAR_WC2) == reason, name


def attitude_packet(q) -> np.ndarray:
    p = np.zeros(1, icd.ATTITUDE_PAYLOAD)
    p["q"] = q
    return icd.encode_packets(icd.APID_ATTITUDE, np.array([1]), np.array([T0_NS], dtype=np.uint64), p)[0]


@pytest.mark.parametrize(("q", "ok"), [
    ([0, 0, 0, 1], True), ([0.5, 0.5, 0.5, 0.5], True), ([0, 0, 0, 1 + 5e-7], True),
    ([0, 0, 0, 1 + 2e-6], False), ([0, 0, 0, 0], False), ([np.nan, 0, 0, 1], False), ([np.inf, 0, 0, 1], False),
    ([1e200, 1e200, 0, 0], False),
])
def test_an_attitude_must_be_a_finite_unit_quaternion(q, ok):
    assert (status_of(attitude_packet(q), icd.APID_ATTITUDE) == "ok") == ok


def test_housekeeping_values_must_be_finite():
    p = np.zeros(2, icd.HK_PAYLOAD)
    p["value"][1, 3] = np.nan
    rows = icd.encode_packets(icd.APID_HK, np.array([1, 2]), np.array([T0_NS, T0_NS], dtype=np.uint64), p)
    assert icd.check_packets(rows.reshape(-1), np.array([0, rows.shape[1]]), icd.APID_HK).tolist() == [
        icd.STATUS_OK, icd.BAD_HK_VALUE]


def test_the_quarantine_schema_documents_every_reason():
    doc = schemas.QUARANTINE.field("reason").metadata[b"doc"].decode()
    assert all(name in doc for name in icd.QUARANTINE_REASONS.values())
    assert len(set(icd.QUARANTINE_REASONS.values())) == len(icd.QUARANTINE_REASONS)
