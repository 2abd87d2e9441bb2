"""Slow, obvious references for the CCSDS kernels (pipeline.kernels.ccsds): the CRC bit by bit and a
pure-Python scanner of well-formed streams.

Neither shares code with the pipeline: the header is read with ``int.from_bytes`` and the CRC is the
textbook shift register (ECSS-E-ST-70-41C annex B), one bit at a time.
"""

from __future__ import annotations

import numpy as np

#: CRC-16-CCITT polynomial x^16 + x^12 + x^5 + 1 (ECSS-E-ST-70-41C annex B).
CRC_POLY = 0x1021
CRC_INIT = 0xFFFF
PRIMARY_HEADER_OCTETS = 6
CRC_OCTETS = 2


def crc16_bitwise(data: bytes) -> int:
    """CRC-16-CCITT (poly 0x1021, init 0xFFFF, MSB first, no reflection, no final XOR) of ``data``."""
    crc = CRC_INIT
    for byte in bytes(data):
        for bit in range(7, -1, -1):
            feedback = ((crc >> 15) & 1) ^ ((byte >> bit) & 1)
            crc = (crc << 1) & 0xFFFF
            if feedback:
                crc ^= CRC_POLY
    return crc


def scan_well_formed(data: bytes) -> list[tuple[int, int, int, int]]:
    """(offset, octets, apid, seq) of each packet of a stream made only of good packets.

    Same contract as ``pipeline.icd.scan_stream`` restricted to streams where every packet is intact:
    the rows tile the stream. Raises ``ValueError`` on anything else (it is an oracle, not a scanner).
    """
    data = bytes(data)
    rows = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < PRIMARY_HEADER_OCTETS:
            raise ValueError(f"stream ends inside a primary header at {pos}")
        word0 = int.from_bytes(data[pos : pos + 2], "big")
        word1 = int.from_bytes(data[pos + 2 : pos + 4], "big")
        # CCSDS 133.0-B: packet data length = octets after the primary header - 1.
        octets = int.from_bytes(data[pos + 4 : pos + 6], "big") + 1 + PRIMARY_HEADER_OCTETS
        if word0 >> 11 != 0b00001:
            raise ValueError(f"not a TM packet with a secondary header at {pos}")
        if pos + octets > len(data):
            raise ValueError(f"packet at {pos} runs past the end of the stream")
        body = data[pos : pos + octets - CRC_OCTETS]
        if crc16_bitwise(body) != int.from_bytes(data[pos + octets - CRC_OCTETS : pos + octets], "big"):
            raise ValueError(f"bad CRC at {pos}")
        rows.append((pos, octets, word0 & 0x7FF, word1 & 0x3FFF))
        pos += octets
    return rows


def as_index(rows: list[tuple[int, int, int, int]], dtype: np.dtype) -> np.ndarray:
    """The rows of :func:`scan_well_formed` as a structured array of ``dtype`` (status 0 = OK)."""
    out = np.zeros(len(rows), dtype=dtype)
    for i, (offset, octets, apid, seq) in enumerate(rows):
        out[i] = (offset, octets, apid, seq, 0)
    return out
