"""Interface control document: the telemetry format shared by the spacecraft model and the ground segment.

Every packet is a CCSDS Space Packet (CCSDS 133.0-B-2):

====================  ======  ==============================================================
field                 octets  content
====================  ======  ==============================================================
primary header        6       version 0 (3 bits) | type 0 = TM (1) | secondary header flag 1 (1)
                              | APID (11) || sequence flags 0b11 (2) | sequence count (14, per
                              APID, wraps at 16384) || data length = octets after this header - 1
secondary header      8       OBMT, on-board mission time, ns (uint64)
payload               varies  one structured record per APID (below)
packet error control  2       CRC-16-CCITT (poly 0x1021, init 0xFFFF, no reflection, no final XOR;
                              ECSS-E-ST-70-41C) over every preceding octet of the packet
====================  ======  ==============================================================

Everything is big-endian. Gaia's real APIDs and star-packet layouts are not public (docs/facts.md section 3,
[U]); the values here are this project's own, with Gaia's structure: one astrometric star packet per
transit (like SP1), attitude and housekeeping packets. Samples are 16-bit ADC words (docs/facts.md section 2,
[U] word size).

Window classes (docs/facts.md section 2, Rowell+2021): WC0 for G < 13, WC1 for 13 <= G < 16 (18 AL samples),
WC2 for G >= 16 (12 AL samples). WC1 and WC2 AF windows are 1D: each AL sample is 12 AC pixels binned
on chip. WC0 AF windows are 2D and unbinned: 18 AL x 12 AC pixels, ``af_adu[strip, al, ac]``. The SM
window stays 1D (18 AL samples, AC-binned) in every class: the real SM is read 2 x 2 binned (a sample
geometry unlike the AF's 1 x 1 pixels) and serves detection and a first AL estimate, so the 1D fit
suffices there and the packet stays smaller. Each window class has its own APID and a fixed length, so
a decoder views a run of packets as one structured array.

Encode and decode are array functions (bytes in, arrays out) with no file I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.kernels import ccsds as _k

# --- primary header constants (CCSDS 133.0-B) ---------------------------------------------------------
PRIMARY_HEADER_OCTETS = _k.PRIMARY_HEADER_OCTETS
SECONDARY_HEADER_OCTETS = 8
CRC_OCTETS = _k.CRC_OCTETS
#: The packet error control's CRC-16-CCITT (ECSS-E-ST-70-41C annex B): polynomial (x^16 implied) and initial
#: register, no reflection, no final XOR (the kernels' table, pipeline.kernels.ccsds; tests pin crc16 to them).
CRC_POLYNOMIAL = 0x1021
CRC_INIT = 0xFFFF
SEQ_COUNT_MODULO = 1 << 14
SEQ_FLAGS_UNSEGMENTED = 0b11
MAX_APID = (1 << 11) - 1

# --- APIDs (this project's values; Gaia's are not public) --------------------------------------------
APID_HK = 100
APID_ATTITUDE = 200
APID_STAR_WC0 = 300
APID_STAR_WC1 = 301
APID_STAR_WC2 = 302
STAR_APIDS = (APID_STAR_WC0, APID_STAR_WC1, APID_STAR_WC2)

# --- star packets -------------------------------------------------------------------------------------
N_AF = 9
#: AL samples per window, by window class (docs/facts.md section 2).
WINDOW_SAMPLES = {0: 18, 1: 18, 2: 12}
#: AC samples per AF window, by window class: 12 unbinned AC pixels for the 2D WC0 windows, 1 (the 12 AC
#: pixels binned into each AL sample) for the 1D ones (docs/facts.md section 2).
WINDOW_AC_SAMPLES = {0: 12, 1: 1, 2: 1}
#: AC pixels on chip under every window (binned into one sample in 1D windows; docs/facts.md section 2).
WINDOW_AC_PX = 12
#: BP and RP spectra: 60 AL samples each (docs/facts.md section 2, [U]).
SPECTRUM_SAMPLES = 60
#: G boundaries of the window classes (docs/facts.md section 2).
WINDOW_CLASS_G_MAX = (13.0, 16.0)
#: Largest 16-bit ADC value: a sample at this value is saturated.
ADC_MAX_ADU = 65535
#: A sample not read out is sent as this value: the AF1 window of CCD row 4 (the wavefront sensor's place) and
#: the AL samples of a truncated window that face a brighter detection's window (docs/icd.md section 4.3, "Samples
#: not read out"). The biased video chain never digitises it: its offset is about 1000 ADU (docs/instrument.md
#: section 3), so a read sample at 0 ADU would need -3900 e- of noise, hundreds of times the read noise [D].
NOT_READ_ADU = 0


def star_payload_dtype(window_class: int) -> np.dtype:
    """Payload of an astrometric star packet of ``window_class``.

    - ``transit_id``: Gaia's bit layout (OBMT / 204800 ns, FoV, CCD row, AC pixel in AF1; docs/facts.md 1).
    - ``gate``: TDI gate in use (0 = none): sets the integration time (see :data:`GATE_INTEGRATION_S`).
    - ``sm_adu``: the sky-mapper window (SM1 for FoV 1, SM2 for FoV 2), AL samples, ADU (always 1D).
    - ``af_adu``: AF1..AF9 windows, ADU: (9, AL samples) for 1D classes, (9, 18 AL, 12 AC) for WC0. In CCD
      row 4 the wavefront sensor takes AF1's place: that window's samples are all 0 (no CCD, no image).
    - A sample at :data:`NOT_READ_ADU` (0) in ``sm_adu`` or ``af_adu`` was not read out: the wavefront
      sensor's place, or, in a truncated window, the AL samples at its start or end that face a brighter
      detection's window (the same AL samples in the SM and every AF window of the packet).
    - ``bp_adu`` / ``rp_adu``: BP and RP spectra, AL samples, ADU.
    """
    n = WINDOW_SAMPLES[window_class]
    n_ac = WINDOW_AC_SAMPLES[window_class]
    af_shape = (N_AF, n, n_ac) if n_ac > 1 else (N_AF, n)
    return np.dtype(
        [
            ("transit_id", ">u8"),
            ("window_class", "u1"),
            ("gate", "u1"),
            ("sm_adu", ">u2", (n,)),
            ("af_adu", ">u2", af_shape),
            ("bp_adu", ">u2", (SPECTRUM_SAMPLES,)),
            ("rp_adu", ">u2", (SPECTRUM_SAMPLES,)),
        ]
    )


#: Integration time per CCD by gate (s). Ungated: 4500 TDI lines x 0.9828 ms = 4.4226 s; gate 5 limits
#: integration to 32 ms (Riello+2018 Fig. 3). The other gates and the G at which they open are [U]
#: placeholders with the spacing halving towards the serial register (Crowley+2016 Fig. 2).
GATE_INTEGRATION_S = {0: 4.4226, 9: 1.1057, 7: 0.2764, 5: 0.032}
#: The gates a star packet may name (any other value breaks the ICD).
GATES = frozenset(GATE_INTEGRATION_S)

# --- transit_id: Gaia's bit layout (GDR3 documentation section 20.9.1) ---------------------------------
#: | bits 17-58: OBMT / 204800 ns | bits 15-16: FoV - 1 | bits 12-14: CCD row | bits 0-11: AC pixel |
#: Bits 59-63 are zero. The OBMT field is the transit's AF1 crossing time, which is also the star packet's
#: secondary-header time: ``packet OBMT // 204800 == transit_id >> 17``.
TRANSIT_ID_OBMT_QUANTUM_NS = 204_800
TRANSIT_ID_TIME_SHIFT = 17
TRANSIT_ID_TIME_BITS = 42
#: Valid FoV (1 preceding, 2 following) and CCD row (1..7) values of a transit_id.
TRANSIT_ID_FOVS = (1, 2)
TRANSIT_ID_ROWS = (1, 7)
#: Valid AC pixels: Gaia's AC coordinate counts 14 prescan pixels, then 1966 columns (GEDR3 documentation
#: section 3.3.2), so a transit's AF1 AC pixel lies in 14..1979.
TRANSIT_ID_AC_PX = (14, 14 + 1966 - 1)


def encode_transit_id(obmt_ns: np.ndarray, fov: np.ndarray, ccd_row: np.ndarray, ac_px: np.ndarray) -> np.ndarray:
    """Gaia's transit_id: OBMT / 204800 ns << 17 | FoV - 1 << 15 | row << 12 | AC pixel in AF1."""
    obmt_units = np.asarray(obmt_ns, dtype=np.int64) // TRANSIT_ID_OBMT_QUANTUM_NS
    return (
        (obmt_units << TRANSIT_ID_TIME_SHIFT)
        | ((np.asarray(fov, dtype=np.int64) - 1) << 15)
        | (np.asarray(ccd_row, dtype=np.int64) << 12)
        | (np.asarray(ac_px, dtype=np.int64) & 0xFFF)
    )


def decode_transit_id(transit_id: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of :func:`encode_transit_id`: (obmt_ns quantised, fov, ccd_row, ac_px)."""
    tid = np.asarray(transit_id).astype(np.int64)
    units = (tid >> TRANSIT_ID_TIME_SHIFT) & ((1 << TRANSIT_ID_TIME_BITS) - 1)
    return units * TRANSIT_ID_OBMT_QUANTUM_NS, 1 + ((tid >> 15) & 0x3), (tid >> 12) & 0x7, tid & 0xFFF

# --- attitude and housekeeping packets -----------------------------------------------------------------
#: Attitude: quaternion (scalar last, SRS -> ICRS) and inertial rate about SRS x, y, z (rad/s).
ATTITUDE_PAYLOAD = np.dtype([("q", ">f8", (4,)), ("rate_rad_s", ">f8", (3,))])


@dataclass(frozen=True)
class HkChannel:
    name: str  # channel mnemonic, unit as suffix
    unit: str
    description: str


#: Housekeeping channels, in payload order (docs/facts.md section 8).
HK_CHANNELS: tuple[HkChannel, ...] = (
    HkChannel("fpa_temp_sm1_k", "K", "FPA temperature next to SM1 row 1 (nominal 160-170 K)"),
    HkChannel("fpa_temp_af5_k", "K", "FPA temperature next to AF5 row 4"),
    HkChannel("fpa_temp_rvs3_k", "K", "FPA temperature next to RVS3 row 5"),
    HkChannel("video_offset_af_adu", "ADU", "mean AF video-chain offset from prescan bursts"),
    HkChannel("bus_voltage_v", "V", "payload module bus voltage"),
    HkChannel("vpu_current_a", "A", "video processing units supply current"),
    HkChannel("star_rate_fov1_hz", "1/s", "stars detected per second in FoV 1 (AOCS statistics)"),
    HkChannel("star_rate_fov2_hz", "1/s", "stars detected per second in FoV 2 (AOCS statistics)"),
)
HK_PAYLOAD = np.dtype([("value", ">f4", (len(HK_CHANNELS),))])

#: Packet cadence of the periodic APIDs, ns: attitude at 1 Hz (docs/facts.md section 3), housekeeping every 10 s
#: (this project's value; real HK channels are sampled from 1 s to minutes). Star packets come one per
#: transit, at no fixed rate (and none in on-board dead time).
PERIOD_NS = {APID_HK: 10_000_000_000, APID_ATTITUDE: 1_000_000_000}
#: An attitude quaternion is a unit quaternion to this tolerance (a float64 product of unit quaternions
#: stays within ~1e-15 of 1; anything further is not an attitude).
ATTITUDE_NORM_TOLERANCE = 1e-6

PAYLOADS: dict[int, np.dtype] = {
    APID_HK: HK_PAYLOAD,
    APID_ATTITUDE: ATTITUDE_PAYLOAD,
    APID_STAR_WC0: star_payload_dtype(0),
    APID_STAR_WC1: star_payload_dtype(1),
    APID_STAR_WC2: star_payload_dtype(2),
}


@dataclass(frozen=True)
class FieldDoc:
    unit: str  # "" for a count, code or other dimensionless value
    description: str


#: Unit and meaning of the packet fields after the primary header and of every payload field of
#: :data:`PAYLOADS` (the housekeeping ``value`` holds :data:`HK_CHANNELS` in order): descriptions generated
#: from the ICD (``gaiasim icd --xtce``) read them here.
FIELD_DOCS: dict[str, FieldDoc] = {
    "obmt_ns": FieldDoc("ns", "secondary header: OBMT, on-board mission time of the packet; of a star packet, its "
                        "transit's AF1 crossing (transit_id >> 17 = OBMT // 204800)"),
    "crc": FieldDoc("", f"packet error control: CRC-16-CCITT (poly {CRC_POLYNOMIAL:#06x}, init {CRC_INIT:#06x}, no "
                    "reflection, no final XOR; ECSS-E-ST-70-41C) over every preceding octet of the packet"),
    "transit_id": FieldDoc("", "Gaia transit_id: OBMT / 204800 ns (bits 17-58), FoV - 1 (15-16), CCD row (12-14), "
                           "AC pixel in AF1 (0-11); bits 59-63 zero (GDR3 documentation section 20.9.1)"),
    "window_class": FieldDoc("", f"window class, the APID's: 0 (G < {WINDOW_CLASS_G_MAX[0]:g}), 1 "
                             f"({WINDOW_CLASS_G_MAX[0]:g} <= G < {WINDOW_CLASS_G_MAX[1]:g}) or 2 "
                             f"(G >= {WINDOW_CLASS_G_MAX[1]:g})"),
    "gate": FieldDoc("", f"TDI gate in use (0 = none), one of {', '.join(map(str, sorted(GATES)))}: sets the "
                     "integration time"),
    "sm_adu": FieldDoc("ADU", f"sky-mapper window (SM1 for FoV 1, SM2 for FoV 2): AL samples, {WINDOW_AC_PX} AC "
                       f"pixels binned; a sample at {NOT_READ_ADU} was not read out (a truncated window)"),
    "af_adu": FieldDoc("ADU", "AF1..AF9 windows: [strip, AL sample] (AC-binned) or, in window class 0, [strip, AL "
                       "sample, AC pixel]; in CCD row 4 AF1's samples are all 0 (the wavefront sensor's place); a "
                       f"sample at {NOT_READ_ADU} was not read out (NOT_READ_ADU: the wavefront sensor's place, or "
                       "the AL samples of a truncated window that face a brighter window)"),
    "bp_adu": FieldDoc("ADU", "BP spectrum: AL samples"),
    "rp_adu": FieldDoc("ADU", "RP spectrum: AL samples"),
    "q": FieldDoc("", "attitude quaternion SRS -> ICRS, scalar last (x, y, z, w)"),
    "rate_rad_s": FieldDoc("rad/s", "inertial rate about SRS x, y, z"),
    "value": FieldDoc("", "housekeeping channels in HK_CHANNELS order"),
}


def packet_dtype(apid: int) -> np.dtype:
    """The whole packet of ``apid`` as one big-endian structured dtype (header, OBMT, payload, CRC)."""
    if apid not in PAYLOADS:
        raise ValueError(f"unknown APID {apid}; the ICD defines {sorted(PAYLOADS)}")
    return np.dtype(
        [
            ("word0", ">u2"),
            ("word1", ">u2"),
            ("data_length", ">u2"),
            ("obmt_ns", ">u8"),
            ("payload", PAYLOADS[apid]),
            ("crc", ">u2"),
        ]
    )


def packet_octets(apid: int) -> int:
    return packet_dtype(apid).itemsize


#: ICD length of every APID (0 = not in the ICD), indexed by APID: the scanner's length check.
EXPECTED_OCTETS = np.zeros(MAX_APID + 1, dtype=np.int64)
for _apid in PAYLOADS:
    EXPECTED_OCTETS[_apid] = packet_octets(_apid)
MIN_PACKET_OCTETS = PRIMARY_HEADER_OCTETS + SECONDARY_HEADER_OCTETS + CRC_OCTETS

# --- scanning a stream ------------------------------------------------------------------------------------
STATUS_OK = _k.OK
# Packets whose structure is sound (header, length, CRC) but whose content breaks the ICD (check_packets).
BAD_WINDOW_CLASS = 6
BAD_GATE = 7
BAD_TRANSIT_ID = 8
TIME_MISMATCH = 9
BAD_ATTITUDE = 10
BAD_HK_VALUE = 11
# Sound packets the receiver cannot use (assigned by the ground segment's ingest, not by this module).
OUTSIDE_DAY = 12
CONFLICT = 13
TRANSIT_CONFLICT = 14
#: Reason code of every quarantine row (the ``reason`` column of the quarantine table), with its meaning.
QUARANTINE_REASONS = {
    _k.CRC_ERROR: "crc_error",  # the packet error control does not match its octets
    _k.TRUNCATED: "truncated",  # the stream ends inside the packet
    _k.BAD_HEADER: "bad_header",  # not a TM primary header (version, type, flags): resynchronised past it
    _k.UNKNOWN_APID: "unknown_apid",  # an APID the ICD does not define
    _k.BAD_LENGTH: "bad_length",  # the length field disagrees with the APID's packet length
    BAD_WINDOW_CLASS: "bad_window_class",  # a star packet's window class is not the one of its APID
    BAD_GATE: "bad_gate",  # a star packet's gate is none of GATES
    BAD_TRANSIT_ID: "bad_transit_id",  # FoV, CCD row or AC pixel out of range, or bits 59-63 set
    TIME_MISMATCH: "time_mismatch",  # a star packet's OBMT is not the time its transit_id encodes
    BAD_ATTITUDE: "bad_attitude",  # a quaternion or rate not finite, or a quaternion not of unit norm
    BAD_HK_VALUE: "bad_hk_value",  # a housekeeping value that is not finite
    OUTSIDE_DAY: "outside_day",  # OBMT outside the day being processed (and its margin)
    CONFLICT: "conflict",  # same APID, sequence count and OBMT as another packet, different octets
    TRANSIT_CONFLICT: "transit_conflict",  # same transit_id as another star packet
}


def crc16(data: np.ndarray) -> int:
    """CRC-16-CCITT of a uint8 array (poly 0x1021, init 0xFFFF, no reflection, no final XOR)."""
    data = np.ascontiguousarray(data, dtype=np.uint8)
    return int(_k._crc16(data, 0, data.shape[0], _k.CRC_TABLE))


def encode_packets(apid: int, seq_count: np.ndarray, obmt_ns: np.ndarray, payload: np.ndarray) -> np.ndarray:
    """Encode n packets of one APID; returns a (n, octets) uint8 array (one packet per row).

    ``seq_count`` is taken modulo 16384; ``payload`` must have the ICD payload dtype of ``apid``.
    """
    dtype = packet_dtype(apid)
    payload = np.asarray(payload)
    if payload.dtype != PAYLOADS[apid]:
        raise ValueError(f"payload dtype for APID {apid} must be icd.PAYLOADS[{apid}], got {payload.dtype}")
    n = payload.shape[0]
    packets = np.zeros(n, dtype=dtype)
    packets["word0"] = (1 << 11) | apid  # version 0, type TM, secondary header present
    packets["word1"] = (SEQ_FLAGS_UNSEGMENTED << 14) | (np.asarray(seq_count, dtype=np.int64) % SEQ_COUNT_MODULO)
    packets["data_length"] = dtype.itemsize - PRIMARY_HEADER_OCTETS - 1
    packets["obmt_ns"] = obmt_ns
    packets["payload"] = payload
    rows = packets.view(np.uint8).reshape(n, dtype.itemsize)
    crc = np.empty(n, dtype=np.uint16)
    _k._crc16_rows(rows, dtype.itemsize - CRC_OCTETS, _k.CRC_TABLE, crc)
    rows[:, -2] = crc >> 8
    rows[:, -1] = crc & 0xFF
    return rows


#: Packets the scanner's fast path walks at first after an anomaly (then twice as many each time).
FAST_PATH_MIN_PACKETS = 16
#: Fewest packets whose CRCs are checked in parallel (a parallel launch costs more than a few CRCs).
PARALLEL_CRC_MIN_PACKETS = 256

PACKET_INDEX = np.dtype(
    [("offset", "i8"), ("octets", "i8"), ("apid", "i4"), ("seq", "i4"), ("status", "i1")]
)


def scan_stream(buf: np.ndarray) -> np.ndarray:
    """Split a TM byte stream into rows of :data:`PACKET_INDEX`: good packets and quarantined spans.

    Never raises on data: corrupt, truncated or unknown bytes come back as rows whose ``status`` is a
    key of :data:`QUARANTINE_REASONS`. The rows tile the buffer exactly (``octets`` sum to its length).
    """
    buf = np.ascontiguousarray(buf, dtype=np.uint8)
    if buf.ndim != 1:
        raise ValueError("scan_stream expects a 1-D uint8 buffer; use np.frombuffer(data, np.uint8)")
    # A quarantined span is always followed by a good packet or the end, so rows <= 2 n / min + 2.
    size = buf.shape[0]
    cap = 2 * (size // MIN_PACKET_OCTETS) + 2
    offset = np.empty(cap, np.int64)
    octets = np.empty(cap, np.int64)
    apid = np.empty(cap, np.int32)
    seq = np.empty(cap, np.int32)
    status = np.empty(cap, np.int8)
    walk_off = np.empty(size // MIN_PACKET_OCTETS + 1, np.int64)
    walk_len = np.empty_like(walk_off)
    crc_ok = np.empty(len(walk_off), np.bool_)
    row, pos = 0, 0
    # The walk takes at most ``batch`` packets: after an anomaly it starts small and doubles while the
    # packets are good. Walking (and CRC-checking) the whole rest of the buffer after every anomaly made
    # the scan quadratic in damaged streams (1 % corrupt packets: 13 MB in 3 s instead of 0.08 s).
    batch = FAST_PATH_MIN_PACKETS
    while pos < size:
        # Fast path: follow the length fields while the headers look right, check those CRCs in parallel,
        # and take every packet up to the first bad one.
        limit = min(batch, len(walk_off))
        k = _k._walk(buf, pos, EXPECTED_OCTETS, walk_off[:limit], walk_len[:limit])
        if k:
            check = _k._crc_ok if k >= PARALLEL_CRC_MIN_PACKETS else _k._crc_ok_serial
            check(buf, walk_off, walk_len, k, _k.CRC_TABLE, crc_ok)
            good = k if crc_ok[:k].all() else int(np.argmin(crc_ok[:k]))
            if good:
                o, n_oct = walk_off[:good], walk_len[:good]
                offset[row:row + good], octets[row:row + good] = o, n_oct
                apid[row:row + good] = ((buf[o].astype(np.int32) << 8) | buf[o + 1]) & MAX_APID
                seq[row:row + good] = ((buf[o + 2].astype(np.int32) << 8) | buf[o + 3]) & (SEQ_COUNT_MODULO - 1)
                status[row:row + good] = STATUS_OK
                row += good
                pos = int(o[-1] + n_oct[-1])
                if pos >= size:
                    break
            if good == limit:  # the walk stopped at its limit, not at an anomaly: walk on, further
                batch = min(2 * batch, len(walk_off))
                continue
        batch = FAST_PATH_MIN_PACKETS
        # Anything else: one row of the careful scanner (resynchronisation, quarantine reasons).
        row, pos = _k._scan_from(buf, pos, row, 1, EXPECTED_OCTETS, MIN_PACKET_OCTETS, _k.CRC_TABLE, offset,
                                 octets, apid, seq, status)
    n = row
    out = np.empty(n, dtype=PACKET_INDEX)
    out["offset"], out["octets"], out["apid"] = offset[:n], octets[:n], apid[:n]
    out["seq"], out["status"] = seq[:n], status[:n]
    return out


#: Octet offsets in a packet of the secondary header's OBMT and of the payload fields checked below.
_OBMT_AT = PRIMARY_HEADER_OCTETS
_PAYLOAD_AT = PRIMARY_HEADER_OCTETS + SECONDARY_HEADER_OCTETS


def _field(buf: np.ndarray, offsets: np.ndarray, at: int, dtype: str, count: int = 1) -> np.ndarray:
    """``count`` big-endian values of ``dtype`` at octet ``at`` of each packet starting at ``offsets``:
    shape (n,) for one value, (n, count) for several, in native byte order."""
    size = np.dtype(dtype).itemsize * count
    octets = buf[np.asarray(offsets, dtype=np.int64)[:, None] + (at + np.arange(size))]
    values = np.ascontiguousarray(octets).view(dtype).astype(np.dtype(dtype).newbyteorder("="))
    return values.reshape(-1) if count == 1 else values.reshape(-1, count)


def gather_field(buf: np.ndarray, offsets: np.ndarray, name: str) -> np.ndarray:
    """Star-packet payload field ``name`` (a scalar field: transit_id, window_class or gate) of the
    packets at ``offsets``, native byte order."""
    dtype, at = PAYLOADS[APID_STAR_WC2].fields[name][:2]  # the same place in every window class
    return _field(buf, offsets, _PAYLOAD_AT + at, dtype.str)


def packet_obmt_ns(buf: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """OBMT (ns) of the packets at ``offsets``: the secondary header's 8 octets, as int64 (an OBMT of
    2^63 ns or more, which no mission reaches, reads as negative)."""
    return _field(buf, offsets, _OBMT_AT, ">i8")


def check_packets(buf: np.ndarray, offsets: np.ndarray, apid: int, obmt_ns: np.ndarray | None = None) -> np.ndarray:
    """Status of each sound packet of ``apid`` at ``offsets`` (scanned OK: header, length and CRC good)
    against the content rules of the ICD: :data:`STATUS_OK` or the code of the first rule it breaks.

    - star packets: window class = the APID's; gate in :data:`GATES`; transit_id with FoV 1-2, CCD row
      1-7, AC pixel in :data:`TRANSIT_ID_AC_PX` and bits 59-63 clear; OBMT // 204800 = transit_id >> 17
      (``obmt_ns``: the packets' OBMT, :func:`packet_obmt_ns`, when the caller has it already);
    - attitude: finite quaternion of unit norm (:data:`ATTITUDE_NORM_TOLERANCE`) and finite rates;
    - housekeeping: finite values.
    Never raises on data.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    status = np.full(len(offsets), STATUS_OK, dtype=np.int8)

    def fail(code: int, bad: np.ndarray) -> None:
        status[(status == STATUS_OK) & bad] = code

    if apid in STAR_APIDS:
        payload = PAYLOADS[apid]
        wc = _field(buf, offsets, _PAYLOAD_AT + payload.fields["window_class"][1], "u1")
        gate = _field(buf, offsets, _PAYLOAD_AT + payload.fields["gate"][1], "u1")
        tid = _field(buf, offsets, _PAYLOAD_AT + payload.fields["transit_id"][1], ">u8")
        obmt = (packet_obmt_ns(buf, offsets) if obmt_ns is None else np.asarray(obmt_ns)).view(np.uint64)
        fov_bits, row, ac = (tid >> np.uint64(15)) & np.uint64(3), (tid >> np.uint64(12)) & np.uint64(7), \
            tid & np.uint64(0xFFF)
        fail(BAD_WINDOW_CLASS, wc != STAR_APIDS.index(apid))
        fail(BAD_GATE, ~np.isin(gate, sorted(GATES)))
        fail(BAD_TRANSIT_ID, ((tid >> np.uint64(TRANSIT_ID_TIME_SHIFT + TRANSIT_ID_TIME_BITS)) != 0)
             | (fov_bits > TRANSIT_ID_FOVS[1] - 1) | (row < TRANSIT_ID_ROWS[0]) | (row > TRANSIT_ID_ROWS[1])
             | (ac < TRANSIT_ID_AC_PX[0]) | (ac > TRANSIT_ID_AC_PX[1]))
        fail(TIME_MISMATCH, obmt // np.uint64(TRANSIT_ID_OBMT_QUANTUM_NS) != tid >> np.uint64(TRANSIT_ID_TIME_SHIFT))
    elif apid == APID_ATTITUDE:
        q = _field(buf, offsets, _PAYLOAD_AT + ATTITUDE_PAYLOAD.fields["q"][1], ">f8", 4)
        rate = _field(buf, offsets, _PAYLOAD_AT + ATTITUDE_PAYLOAD.fields["rate_rad_s"][1], ">f8", 3)
        with np.errstate(over="ignore", invalid="ignore"):
            norm_off = np.abs(np.sqrt((q * q).sum(axis=1)) - 1.0)
        fail(BAD_ATTITUDE, ~(np.isfinite(q).all(axis=1) & np.isfinite(rate).all(axis=1)
                             & (norm_off <= ATTITUDE_NORM_TOLERANCE)))
    elif apid == APID_HK:
        values = _field(buf, offsets, _PAYLOAD_AT, ">f4", len(HK_CHANNELS))
        fail(BAD_HK_VALUE, ~np.isfinite(values).all(axis=1))
    return status


def decode_packets(buf: np.ndarray, index: np.ndarray, apid: int) -> np.ndarray:
    """Good packets of ``apid`` listed in ``index`` (from :func:`scan_stream`), as a structured array."""
    sel = index[(index["apid"] == apid) & (index["status"] == STATUS_OK)]
    return gather_packets(buf, sel["offset"], apid)


def gather_packets(buf: np.ndarray, offsets: np.ndarray, apid: int) -> np.ndarray:
    """The packets of ``apid`` starting at ``offsets`` in ``buf`` (already checked), as a structured array."""
    dtype = packet_dtype(apid)
    rows = np.empty((len(offsets), dtype.itemsize), dtype=np.uint8)
    _k._gather(np.ascontiguousarray(buf, dtype=np.uint8), np.ascontiguousarray(offsets, dtype=np.int64),
               dtype.itemsize, rows)
    return rows.view(dtype).reshape(len(offsets))
