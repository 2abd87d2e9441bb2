"""Properties of the ICD encoder and the stream scanner (pipeline.icd, pipeline.kernels.ccsds).

Encode then scan then decode is the identity; the numba CRC equals the bitwise reference and the
standard library's binascii.crc_hqx; every single-bit and every burst error of up to 16 bits is caught
(CRC-16 guarantees both); the scanner never raises and its rows always tile the buffer.
"""

from __future__ import annotations

import binascii

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline import icd
from tests.naive.ccsds import as_index, crc16_bitwise, scan_well_formed
from tests.strategies import apids, chunks, packet_streams, payloads, stream_bytes

TRUNCATED = next(code for code, name in icd.QUARANTINE_REASONS.items() if name == "truncated")


def assert_tiles(index: np.ndarray, n_octets: int) -> None:
    """Rows are contiguous, non-empty, start at 0 and their octets sum to the buffer length."""
    assert index.dtype == icd.PACKET_INDEX
    if n_octets == 0:
        assert len(index) == 0, f"{len(index)} rows for an empty buffer"
        return
    assert index["offset"][0] == 0, f"first row at offset {index['offset'][0]}, not 0"
    assert np.all(index["octets"] > 0), f"empty rows at offsets {index['offset'][index['octets'] <= 0]}"
    ends = index["offset"] + index["octets"]
    assert np.array_equal(index["offset"][1:], ends[:-1]), "rows are not contiguous"
    assert int(index["octets"].sum()) == n_octets, f"rows cover {index['octets'].sum()} of {n_octets} octets"
    known = set(icd.QUARANTINE_REASONS) | {icd.STATUS_OK}
    assert set(index["status"].tolist()) <= known, f"unknown status codes {set(index['status'].tolist()) - known}"


def ok_rows_overlapping(index: np.ndarray, first: int, last: int) -> np.ndarray:
    """Good rows that contain any octet in [first, last]."""
    ok = index[index["status"] == icd.STATUS_OK]
    return ok[(ok["offset"] <= last) & (ok["offset"] + ok["octets"] > first)]


# --- encode / scan / decode ------------------------------------------------------------------------


@given(packet_streams(min_chunks=1, max_chunks=4, min_packets=0))
def test_encode_scan_decode_is_identity(stream):
    buf, spans = stream_bytes(stream)
    index = icd.scan_stream(buf)
    assert_tiles(index, buf.size)
    assert np.all(index["status"] == icd.STATUS_OK), f"statuses {index['status']} for an intact stream"
    assert [(int(r["offset"]), int(r["octets"])) for r in index] == spans
    # Per APID, the decoded packets come back in stream order with every field intact.
    for apid in {c.apid for c in stream}:
        mine = [c for c in stream if c.apid == apid]
        got = icd.decode_packets(buf, index, apid)
        n = sum(len(c.payload) for c in mine)
        assert len(got) == n, f"APID {apid}: {len(got)} packets decoded, {n} encoded"
        # Bytes, not values: NaN payloads must survive too (np.concatenate would also go native-endian).
        want_payload = b"".join(c.payload.tobytes() for c in mine)
        assert got["payload"].tobytes() == want_payload, f"APID {apid}: payload bytes differ"
        assert np.array_equal(got["obmt_ns"], np.concatenate([c.obmt_ns for c in mine]))
        seq = np.concatenate([c.seq for c in mine]) % icd.SEQ_COUNT_MODULO
        assert np.array_equal(got["word1"] & 0x3FFF, seq)
        assert np.all(got["word0"] & 0x7FF == apid)


@given(packet_streams(min_chunks=1, max_chunks=4, min_packets=0))
def test_scanner_equals_naive_scanner_on_intact_streams(stream):
    buf, _ = stream_bytes(stream)
    expected = as_index(scan_well_formed(buf.tobytes()), icd.PACKET_INDEX)
    got = icd.scan_stream(buf)
    assert got.tolist() == expected.tolist()


@given(chunks(min_packets=1, max_packets=3))
def test_header_fields_follow_ccsds_133(chunk):
    rows = chunk.encode()
    octets = icd.packet_octets(chunk.apid)
    assert rows.shape == (len(chunk.payload), octets)
    word0 = (rows[:, 0].astype(int) << 8) | rows[:, 1]
    word1 = (rows[:, 2].astype(int) << 8) | rows[:, 3]
    length = (rows[:, 4].astype(int) << 8) | rows[:, 5]
    assert np.all(word0 >> 11 == 0b00001), "version 0, type TM, secondary header present"
    assert np.all(word0 & 0x7FF == chunk.apid)
    assert np.all(word1 >> 14 == icd.SEQ_FLAGS_UNSEGMENTED)
    assert np.all(word1 & 0x3FFF == chunk.seq % icd.SEQ_COUNT_MODULO)
    # CCSDS 133.0-B: packet data length = octets after the primary header - 1.
    assert np.all(length == octets - icd.PRIMARY_HEADER_OCTETS - 1)
    for row in rows:
        assert crc16_bitwise(row[:-2].tobytes()) == int.from_bytes(row[-2:].tobytes(), "big")


@pytest.mark.parametrize("seq", [0, 1, 16382, 16383, 16384, 16385, 32767, 32768, 2**20 + 5])
def test_sequence_count_wraps_at_16384_in_the_header(seq):
    rows = icd.encode_packets(icd.APID_HK, np.array([seq]), np.array([7], np.uint64), np.zeros(1, icd.HK_PAYLOAD))
    index = icd.scan_stream(rows.reshape(-1))
    assert index["seq"].tolist() == [seq % 16384]
    assert (int(rows[0, 2]) << 8 | int(rows[0, 3])) == (0b11 << 14) | (seq % 16384)


@given(st.integers(0, 2**31 - 1))
def test_sequence_count_wraps_for_any_count(seq):
    rows = icd.encode_packets(icd.APID_ATTITUDE, np.array([seq]), np.array([1], np.uint64),
                              np.zeros(1, icd.ATTITUDE_PAYLOAD))
    assert icd.scan_stream(rows.reshape(-1))["seq"].tolist() == [seq % icd.SEQ_COUNT_MODULO]


# --- CRC -----------------------------------------------------------------------------------------------


def test_crc_check_value():
    # CRC-16/CCITT-FALSE check value (init 0xFFFF, no reflection, no final XOR) of "123456789".
    data = np.frombuffer(b"123456789", dtype=np.uint8)
    assert icd.crc16(data) == 0x29B1
    assert crc16_bitwise(b"123456789") == 0x29B1


def test_crc_of_nothing_is_the_initial_value():
    assert icd.crc16(np.empty(0, np.uint8)) == 0xFFFF == crc16_bitwise(b"")


@given(st.binary(max_size=4096))
def test_numba_crc_equals_bitwise_crc(data):
    assert icd.crc16(np.frombuffer(data, dtype=np.uint8)) == crc16_bitwise(data)


@given(st.binary(max_size=4096))
def test_crc_equals_the_standard_librarys_crc_hqx(data):
    # binascii.crc_hqx is CRC-16-CCITT MSB first with no reflection and no final XOR, from the given register.
    assert icd.crc16(np.frombuffer(data, dtype=np.uint8)) == binascii.crc_hqx(data, 0xFFFF)


# --- error detection -----------------------------------------------------------------------------------


@st.composite
def streams_with_bit(draw):
    stream = draw(packet_streams(min_chunks=1, max_chunks=3, min_packets=1))
    buf, spans = stream_bytes(stream)
    return buf, spans, draw(st.integers(0, buf.size * 8 - 1))


@given(streams_with_bit())
def test_every_single_bit_flip_is_caught(case):
    buf, spans, bit = case
    bad = buf.copy()
    bad[bit // 8] ^= np.uint8(0x80 >> (bit % 8))
    index = icd.scan_stream(bad)
    assert_tiles(index, bad.size)
    hit = ok_rows_overlapping(index, bit // 8, bit // 8)
    assert len(hit) == 0, f"bit {bit} flipped, yet the packet at {hit['offset']} came back OK"
    # The other packets are untouched, so they must still be found where they were.
    flipped_at = next(o for o, n in spans if o <= bit // 8 < o + n)
    ok = {(int(r["offset"]), int(r["octets"])) for r in index[index["status"] == icd.STATUS_OK]}
    missing = [(o, n) for o, n in spans if o != flipped_at and (o, n) not in ok]
    assert not missing, f"intact packets at {missing} were lost after a flip at octet {bit // 8}"


@st.composite
def streams_with_burst(draw):
    stream = draw(packet_streams(min_chunks=1, max_chunks=3, min_packets=1))
    buf, _ = stream_bytes(stream)
    length = draw(st.integers(1, 16))
    start = draw(st.integers(0, buf.size * 8 - length))
    # A burst of length L: the first and the last bit are in error, those between arbitrary.
    inner = draw(st.integers(0, (1 << max(length - 2, 0)) - 1)) if length > 2 else 0
    pattern = 1 | (inner << 1) | (1 << (length - 1))
    return buf, start, length, pattern


@given(streams_with_burst())
def test_every_burst_of_up_to_16_bits_is_caught(case):
    buf, start, length, pattern = case
    bad = buf.copy()
    for k in range(length):
        if pattern >> k & 1:
            bit = start + k
            bad[bit // 8] ^= np.uint8(0x80 >> (bit % 8))
    index = icd.scan_stream(bad)
    assert_tiles(index, bad.size)
    first, last = start // 8, (start + length - 1) // 8
    hit = ok_rows_overlapping(index, first, last)
    assert len(hit) == 0, f"burst of {length} bits at bit {start}: packet at {hit['offset']} came back OK"


@given(st.binary(max_size=2048))
def test_scanner_never_raises_and_tiles_arbitrary_bytes(data):
    buf = np.frombuffer(data, dtype=np.uint8)
    index = icd.scan_stream(buf)
    assert_tiles(index, buf.size)
    # Every good row really is a good packet.
    for row in index[index["status"] == icd.STATUS_OK]:
        packet = data[row["offset"] : row["offset"] + row["octets"]]
        assert row["octets"] == icd.EXPECTED_OCTETS[row["apid"]]
        assert crc16_bitwise(packet[:-2]) == int.from_bytes(packet[-2:], "big")


@given(packet_streams(min_chunks=1, max_chunks=3, min_packets=1), st.binary(max_size=64), st.integers(0, 100))
def test_garbage_between_packets_is_quarantined_and_packets_survive(stream, garbage, where):
    buf, spans = stream_bytes(stream)
    cut = spans[where % len(spans)][0]
    bad = np.concatenate([buf[:cut], np.frombuffer(garbage, np.uint8), buf[cut:]])
    index = icd.scan_stream(bad)
    assert_tiles(index, bad.size)
    ok = {(int(r["offset"]), int(r["octets"])) for r in index[index["status"] == icd.STATUS_OK]}
    shifted = [(o if o < cut else o + len(garbage), n) for o, n in spans]
    assert set(shifted) <= ok, f"packets lost around {len(garbage)} garbage octets at {cut}"


@st.composite
def truncated_streams(draw):
    stream = draw(packet_streams(min_chunks=1, max_chunks=3, min_packets=1))
    buf, spans = stream_bytes(stream)
    k = draw(st.integers(0, len(spans) - 1))
    offset, octets = spans[k]
    cut = draw(st.integers(offset + 1, offset + octets - 1))
    return buf, spans, k, cut


@given(truncated_streams())
def test_truncation_mid_packet_gives_a_truncated_row_and_keeps_earlier_packets(case):
    buf, spans, k, cut = case
    index = icd.scan_stream(buf[:cut])
    assert_tiles(index, cut)
    ok = index[index["status"] == icd.STATUS_OK]
    assert [(int(r["offset"]), int(r["octets"])) for r in ok] == spans[:k]
    tail = index[index["status"] != icd.STATUS_OK]
    assert len(tail) == 1, f"{len(tail)} quarantine rows for one truncated packet"
    assert tail["status"][0] == TRUNCATED, f"reason {icd.QUARANTINE_REASONS[int(tail['status'][0])]}"
    assert (tail["offset"][0], tail["octets"][0]) == (spans[k][0], cut - spans[k][0])


# --- argument checks ---------------------------------------------------------------------------------


@given(apids(), st.integers(1, 3), st.data())
def test_encoder_refuses_a_payload_of_another_dtype(apid, n, data):
    other = data.draw(st.sampled_from([a for a in icd.PAYLOADS if icd.PAYLOADS[a] != icd.PAYLOADS[apid]]))
    payload = data.draw(payloads(other, n))
    with pytest.raises(ValueError, match=f"APID {apid}"):
        icd.encode_packets(apid, np.arange(n), np.arange(n, dtype=np.uint64), payload)


def test_unknown_apid_and_2d_buffer_are_refused():
    with pytest.raises(ValueError, match="unknown APID 7"):
        icd.packet_dtype(7)
    with pytest.raises(ValueError, match="1-D"):
        icd.scan_stream(np.zeros((2, 16), np.uint8))
