"""Numba kernels for CCSDS space packets: CRC-16-CCITT and the stream scanner.

Array-only functions; they never raise. The public wrappers are in :mod:`pipeline.icd`.
"""

from __future__ import annotations

import numba
import numpy as np

from pipeline.kernels import jit, jit_parallel

# Reason codes of the scanner (mirrored as names in pipeline.icd.QUARANTINE_REASONS).
OK = 0
CRC_ERROR = 1
TRUNCATED = 2
BAD_HEADER = 3
UNKNOWN_APID = 4
BAD_LENGTH = 5

PRIMARY_HEADER_OCTETS = 6
CRC_OCTETS = 2


def _make_crc_table() -> np.ndarray:
    """Tables for CRC-16-CCITT, polynomial 0x1021, MSB first (ECSS-E-ST-70-41C annex B), sliced by 8.

    Row 0 is the byte-at-a-time table (the CRC of one byte from a zero register); row ``k`` is the CRC of
    a byte followed by ``k`` zero bytes. The CRC is linear, so 8 bytes from a zero register are the XOR
    of their rows (Kounavis and Berry's slicing-by-8), and the register enters through the first 2 bytes.
    """
    table = np.zeros((8, 256), dtype=np.int64)
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table[0, byte] = crc & 0xFFFF
    for k in range(1, 8):
        prev = table[k - 1]
        table[k] = ((prev << 8) & 0xFFFF) ^ table[0, prev >> 8]
    return table


CRC_TABLE = _make_crc_table()


@jit
def _crc16(buf, start, stop, table):
    """CRC-16-CCITT (init 0xFFFF, no reflection, no final XOR) of buf[start:stop]: 8 bytes per step."""
    crc = 0xFFFF
    i = start
    while i + 8 <= stop:
        crc = (table[7, (crc >> 8) ^ buf[i]] ^ table[6, (crc & 0xFF) ^ buf[i + 1]] ^ table[5, buf[i + 2]]
               ^ table[4, buf[i + 3]] ^ table[3, buf[i + 4]] ^ table[2, buf[i + 5]] ^ table[1, buf[i + 6]]
               ^ table[0, buf[i + 7]])
        i += 8
    while i < stop:
        crc = ((crc << 8) & 0xFFFF) ^ table[0, (crc >> 8) ^ buf[i]]
        i += 1
    return crc


@jit_parallel
def _crc16_rows(rows, n_octets, table, out):
    """CRC of the first ``n_octets`` of each row of a (n, L) uint8 array, into ``out``."""
    for i in numba.prange(rows.shape[0]):
        out[i] = _crc16(rows[i], 0, n_octets, table)


@jit
def _header_at(buf, pos):
    """(version/type/flag ok, apid, seq, total octets) of the primary header at ``pos``."""
    w0 = (np.int64(buf[pos]) << 8) | np.int64(buf[pos + 1])
    w1 = (np.int64(buf[pos + 2]) << 8) | np.int64(buf[pos + 3])
    w2 = (np.int64(buf[pos + 4]) << 8) | np.int64(buf[pos + 5])
    # CCSDS 133.0-B: version 0 (3 bits), type 0 = TM (1 bit), secondary header flag 1 (1 bit).
    ok = (w0 >> 11) == 0b00001
    return ok, w0 & 0x7FF, w1 & 0x3FFF, w2 + 1 + PRIMARY_HEADER_OCTETS


@jit
def _plausible_at(buf, pos, expected_octets):
    """True when a header of a known APID with its ICD length starts at ``pos`` (CRC not checked)."""
    if buf.shape[0] - pos < PRIMARY_HEADER_OCTETS:
        return False
    ok, apid, _seq, octets = _header_at(buf, pos)
    return ok and expected_octets[apid] != 0 and octets == expected_octets[apid]


@jit
def _valid_at(buf, pos, expected_octets, table):
    """True when a packet with a known APID, its expected length and a good CRC starts at ``pos``."""
    n = buf.shape[0]
    if n - pos < PRIMARY_HEADER_OCTETS:
        return False
    ok, apid, _seq, octets = _header_at(buf, pos)
    if not ok or expected_octets[apid] == 0 or octets != expected_octets[apid] or pos + octets > n:
        return False
    crc = (np.int64(buf[pos + octets - 2]) << 8) | np.int64(buf[pos + octets - 1])
    return _crc16(buf, pos, pos + octets - CRC_OCTETS, table) == crc


@jit
def _scan_from(buf, pos, row, max_rows, expected_octets, min_octets, table, offset, octets, apid, seq, status):
    """Split ``buf[pos:]`` into rows (written from ``row`` on) until its end or ``max_rows`` rows;
    returns (next row, next position).

    Each row is either a good packet (status OK) or a quarantined span of bytes with a reason code.
    Rows tile the buffer exactly: sum(octets) == len(buf), so nothing is ever silently dropped.
    ``expected_octets[apid]`` is the ICD length of each known APID (0 = unknown).
    """
    n = buf.shape[0]
    stop = row + max_rows
    while pos < n and row < stop:
        offset[row] = pos
        apid[row] = -1
        seq[row] = -1
        if n - pos < PRIMARY_HEADER_OCTETS:
            octets[row] = n - pos
            status[row] = TRUNCATED
            row += 1
            pos = n
            break
        ok, a, s, length = _header_at(buf, pos)
        apid[row] = a
        seq[row] = s
        plausible = ok and length >= min_octets
        if plausible and pos + length <= n:
            crc = (np.int64(buf[pos + length - 2]) << 8) | np.int64(buf[pos + length - 1])
            if _crc16(buf, pos, pos + length - CRC_OCTETS, table) == crc:
                octets[row] = length
                if expected_octets[a] == 0:
                    status[row] = UNKNOWN_APID
                elif expected_octets[a] != length:
                    status[row] = BAD_LENGTH
                else:
                    status[row] = OK
                pos += length
                row += 1
                continue
            # A bit flip inside an otherwise intact packet: the next packet (possibly one cut short by
            # the end of the file) starts right after it.
            nxt = pos + length
            if nxt == n or n - nxt < PRIMARY_HEADER_OCTETS or _valid_at(buf, nxt, expected_octets, table) or (
                _plausible_at(buf, nxt, expected_octets) and nxt + _header_at(buf, nxt)[3] > n
            ):
                octets[row] = length
                status[row] = CRC_ERROR
                pos = nxt
                row += 1
                continue
        # Lost sync: quarantine everything up to the next offset where a valid packet starts.
        q = pos + 1
        while q < n and not _valid_at(buf, q, expected_octets, table):
            q += 1
        octets[row] = q - pos
        if plausible and q < pos + length:
            status[row] = TRUNCATED  # the next packet (or the end of the file) came before this one ended
        elif plausible:
            status[row] = CRC_ERROR
        else:
            status[row] = BAD_HEADER
        pos = q
        row += 1
    return row, pos


@jit
def _walk(buf, pos, expected_octets, offsets, lengths):
    """Follow the length fields from ``pos`` while each header is a known APID with its ICD length that
    fits in the buffer (CRC not checked); returns how many such packets were found."""
    n = buf.shape[0]
    k = 0
    while k < offsets.shape[0] and n - pos >= PRIMARY_HEADER_OCTETS:
        ok, a, _s, length = _header_at(buf, pos)
        if not ok or expected_octets[a] == 0 or length != expected_octets[a] or pos + length > n:
            break
        offsets[k] = pos
        lengths[k] = length
        k += 1
        pos += length
    return k


@jit
def _crc_ok_at(buf, offset, length, table):
    """True when the packet of ``length`` octets at ``offset`` ends with the CRC of its other octets."""
    end = offset + length
    stored = (np.int64(buf[end - 2]) << 8) | np.int64(buf[end - 1])
    return _crc16(buf, offset, end - CRC_OCTETS, table) == stored


@jit_parallel
def _crc_ok(buf, offsets, lengths, k, table, ok):
    """CRC check of the ``k`` packets at ``offsets`` (parallel)."""
    for i in numba.prange(k):
        ok[i] = _crc_ok_at(buf, offsets[i], lengths[i], table)


@jit
def _crc_ok_serial(buf, offsets, lengths, k, table, ok):
    """:func:`_crc_ok` in one thread, for a few packets: a parallel launch costs more than it saves."""
    for i in range(k):
        ok[i] = _crc_ok_at(buf, offsets[i], lengths[i], table)


@jit_parallel
def _gather(buf, offsets, octets, out):
    """Copy ``octets`` bytes at each of ``offsets`` into the rows of ``out`` (n, octets)."""
    for i in numba.prange(offsets.shape[0]):
        o = offsets[i]
        for j in range(octets):
            out[i, j] = buf[o + j]
