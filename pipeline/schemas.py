"""Every table the pipeline reads or writes, defined once, with units and docs in field metadata.

Parquet writers refuse a table whose schema differs (:func:`pipeline.io.write_table`); DuckDB views,
tests and steps derive their column lists from here.

Coordinates: ``al_px`` is the along-scan image centre in pixels (TDI lines) inside its window,
measured from the centre of the window's first sample (so an image centred in an n-sample window has
``al_px = (n - 1) / 2``). Simulated and measured ``al_px`` use this same frame.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

#: Field metadata key of the columns that hold an OBMT (ns; pipeline.timescale gives their UTC).
TIMESCALE = "timescale"


def _f(name: str, typ: pa.DataType, unit: str, doc: str, nullable: bool = False, obmt: bool = False) -> pa.Field:
    metadata = {"unit": unit, "doc": doc} | ({TIMESCALE: "OBMT"} if obmt else {})
    return pa.field(name, typ, nullable=nullable, metadata=metadata)


def obmt_columns(schema: pa.Schema) -> list[str]:
    """The columns of ``schema`` that hold an OBMT (field metadata ``timescale`` = ``OBMT``), in order."""
    return [f.name for f in schema if (f.metadata or {}).get(TIMESCALE.encode()) == b"OBMT"]


TRANSITS = pa.schema(
    [
        _f("transit_id", pa.int64(), "", "Gaia transit id: OBMT/204800 ns, FoV, CCD row, AC pixel (docs/facts.md 1)"),
        _f("obmt_ns", pa.int64(), "ns", "on-board mission time of the AF1 crossing, from the AF fits", obmt=True),
        _f("fov", pa.int8(), "", "field of view: 1 preceding, 2 following"),
        _f("ccd_row", pa.int8(), "", "CCD row 1..7"),
        _f("ac_px", pa.int16(), "px", "AC pixel coordinate in AF1 (prescan included)"),
        _f("window_class", pa.int8(), "", "window class 0, 1, 2 (by onboard magnitude)"),
        _f("gate", pa.int8(), "", "TDI gate (0 = ungated)"),
        _f("ra_deg", pa.float64(), "deg", "ICRS right ascension from attitude and field angles"),
        _f("dec_deg", pa.float64(), "deg", "ICRS declination from attitude and field angles"),
        _f("source_id", pa.int64(), "", "matched catalogue source (null when unmatched)", nullable=True),
        _f("match_sep_mas", pa.float32(), "mas", "distance to the matched source", nullable=True),
        _f("g_mag", pa.float32(), "mag", "G magnitude from the AF fluxes", nullable=True),
        _f("g_mag_err", pa.float32(), "mag", "formal error of g_mag", nullable=True),
        _f("bp_mag", pa.float32(), "mag", "G_BP from the BP spectrum (null: its flux was not positive)", nullable=True),
        _f("bp_mag_err", pa.float32(), "mag", "formal error of bp_mag", nullable=True),
        _f("rp_mag", pa.float32(), "mag", "G_RP from the RP spectrum (null: its flux was not positive)", nullable=True),
        _f("rp_mag_err", pa.float32(), "mag", "formal error of rp_mag", nullable=True),
        _f("n_af_ok", pa.int8(), "", "AF windows with a good fit"),
        _f("flags", pa.int32(), "", "quality flags (OR of the CCD flags, plus transit flags)"),
    ]
)

#: The CCD strips of a star's windows, in the order of a star packet's windows (the ICD's): the values of
#: the ``strip`` column, dictionary-encoded (compact in memory and in Parquet).
CCD_STRIPS = ("SM1", "SM2", "AF1", "AF2", "AF3", "AF4", "AF5", "AF6", "AF7", "AF8", "AF9")
STRIP_TYPE = pa.dictionary(pa.int8(), pa.string())
_CCD_STRIPS = pa.array(CCD_STRIPS)


def ccd_strips(fov: np.ndarray) -> pa.DictionaryArray:
    """The strip column of the CCD rows of transits in ``fov``: per transit SM1 (FoV 1) or SM2 (FoV 2),
    then AF1..AF9, in the order of the rows of a star packet's windows."""
    index = np.tile(np.arange(1, 11, dtype=np.int8), (len(fov), 1))
    index[:, 0] = np.where(np.asarray(fov) == 1, 0, 1)
    return pa.DictionaryArray.from_arrays(pa.array(index.ravel(), pa.int8()), _CCD_STRIPS)


CCD = pa.schema(
    [
        _f("transit_id", pa.int64(), "", "transit this CCD image belongs to"),
        _f("strip", STRIP_TYPE, "", "SM1, SM2, AF1..AF9"),
        _f("obmt_ns", pa.int64(), "ns", "observation time: the image crossing the CCD's fiducial line (the "
           "window's reference time plus the fitted centre; null without a centre)", nullable=True, obmt=True),
        # float32: 2e-6 px (0.1 mas) resolution, 1000 times below the smallest formal error, and 3 GB less
        # for a full-scale day's 780 M rows.
        _f("al_px", pa.float32(), "px", "fitted AL image centre in the window frame (module doc)"),
        _f("al_px_err", pa.float32(), "px", "formal error of al_px (inverse Fisher information)"),
        _f("flux_e", pa.float32(), "e-", "fitted image flux"),
        _f("flux_e_err", pa.float32(), "e-", "formal error of flux_e"),
        _f("bg_e", pa.float32(), "e-", "fitted background per sample"),
        _f("chi2", pa.float32(), "", "reduced chi-square of the fit"),
        _f("flags", pa.int32(), "", "fit flags (pipeline.ipd FLAG_*)"),
        _f("ac_px", pa.float32(), "px", "fitted AC image centre in the window frame (2D windows; null for 1D)",
           nullable=True),
        _f("ac_px_err", pa.float32(), "px", "formal error of ac_px (inverse Fisher information)", nullable=True),
    ]
)

QUARANTINE = pa.schema(
    [
        _f("file", pa.string(), "", "TM file name"),
        _f("offset", pa.int64(), "octet", "offset of the first octet in the file"),
        _f("octets", pa.int64(), "octet", "length of the quarantined span"),
        _f("apid", pa.int32(), "", "APID read from the header at offset (may be corrupt)"),
        _f("seq", pa.int32(), "", "sequence count read from the header at offset (may be corrupt)"),
        _f("reason", pa.string(), "", "why the packet is unusable: a key of pipeline.icd.QUARANTINE_REASONS "
           "(crc_error, truncated, bad_header, unknown_apid, bad_length, bad_window_class, bad_gate, "
           "bad_transit_id, time_mismatch, bad_attitude, bad_hk_value, outside_day, conflict, transit_conflict)"),
        _f("raw", pa.binary(), "", "the raw octets"),
    ]
)

GAPS = pa.schema(
    [
        _f("apid", pa.int32(), "", "APID"),
        _f("kind", pa.string(), "", "gap (packets missing), duplicate (dropped copy), out_of_order, stall (a count "
           "repeated at a later time), count_jump (counts that disagree with the packet times; "
           "pipeline.ingest.classify_steps)"),
        _f("first_seq", pa.int32(), "", "first sequence count concerned"),
        _f("last_seq", pa.int32(), "", "last sequence count concerned (wraps at 16384)"),
        _f("count", pa.int64(), "", "number of packets missing, dropped or out of order"),
        _f("obmt_ns", pa.int64(), "ns", "OBMT of the packet where the anomaly was seen", obmt=True),
        _f("file", pa.string(), "", "TM file of the packet where the anomaly was seen"),
    ]
)

HK = pa.schema(
    [
        _f("obmt_ns", pa.int64(), "ns", "sample time", obmt=True),
        _f("channel", pa.string(), "", "channel mnemonic (pipeline.icd.HK_CHANNELS)"),
        _f("value", pa.float64(), "", "calibrated value, unit in the channel name"),
    ]
)

CATALOGUE = pa.schema(
    [
        _f("source_id", pa.int64(), "", "catalogue source id"),
        _f("ra_deg", pa.float64(), "deg", "ICRS right ascension (with catalogue errors)"),
        _f("dec_deg", pa.float64(), "deg", "ICRS declination (with catalogue errors)"),
        _f("g_mag", pa.float32(), "mag", "mean G magnitude"),
        _f("g_mag_sigma", pa.float32(), "mag", "scatter of the G magnitude"),
    ]
)

#: A dataset's CCD calibration (``calibration/ccd.parquet``, docs/run-contract.md): what a previous
#: calibration cycle measured of each CCD, as corrections to the nominal instrument (the reader's own
#: gains, offsets, read noises and geometry). One row per CCD and field of view that sees it: SM1 for FoV 1,
#: SM2 for FoV 2, AF1..AF9 for both (not AF1 of row 4, the wavefront sensor): 138 rows.
CCD_CALIBRATION = pa.schema(
    [
        _f("fov", pa.int8(), "", "field of view: 1 preceding, 2 following"),
        _f("ccd_row", pa.int8(), "", "CCD row 1..7"),
        _f("strip", pa.string(), "", "SM1, SM2, AF1..AF9"),
        _f("gain_factor", pa.float64(), "", "gain over the nominal gain"),
        _f("bias_offset_adu", pa.float64(), "ADU", "electronic offset minus the nominal offset"),
        _f("read_noise_factor", pa.float64(), "", "read noise over the nominal read noise of the strip"),
        _f("throughput", pa.float64(), "", "response over the nominal (fluxes divide by it)"),
        _f("al_offset_mas", pa.float64(), "mas", "along-scan displacement of the CCD from its nominal place "
           "(images cross it that much later) at its AC centre"),
        _f("al_rotation_mas", pa.float64(), "mas", "further along-scan displacement at the CCD's last AC column "
           "(linear across the CCD: its rotation)"),
    ]
)

HK_EVENTS = pa.schema(
    [
        _f("channel", pa.string(), "", "HK channel mnemonic (pipeline.icd.HK_CHANNELS), or attitude"),
        _f("kind", pa.string(), "", "limit, stale, rate (pipeline.hkmon); glitch (attitude, pipeline.attitude)"),
        _f("severity", pa.string(), "", "yellow (WARNING) or red (CRITICAL; wins when an excursion reaches both)"),
        _f("side", pa.string(), "", "low or high ('' for stale; for rate: falling or rising)"),
        _f("start_ns", pa.int64(), "ns", "OBMT of the first sample of the event", obmt=True),
        _f("end_ns", pa.int64(), "ns", "OBMT of the last sample of the event (the last sample when open)", obmt=True),
        _f("n_samples", pa.int64(), "", "samples in the event"),
        _f("extreme_value", pa.float64(), "", "worst value (channel unit; for rate: steepest dv/dt, unit/s)"),
        _f("open", pa.bool_(), "", "still going at the end of the data"),
    ]
)

ALERTS = pa.schema(
    [
        _f("alert_id", pa.int64(), "", "smallest transit_id of the evidence (unique within a day)"),
        _f("kind", pa.string(), "", "brightening, fading or new_source (pipeline.alerts)"),
        _f("source_id", pa.int64(), "", "catalogue source that changed (null for a new source)", nullable=True),
        _f("ra_deg", pa.float64(), "deg", "ICRS right ascension: catalogue, or mean of the evidence for new sources"),
        _f("dec_deg", pa.float64(), "deg", "ICRS declination: catalogue, or mean of the evidence for new sources"),
        _f("g_mag", pa.float32(), "mag", "mean G of the evidence transits"),
        _f("delta_g_mag", pa.float32(), "mag", "g_mag - catalogue G, < 0 brightening (null for new)", nullable=True),
        _f("significance_sigma", pa.float32(), "sigma", "combined significance of the evidence (pipeline.alerts)"),
        _f("n_transits", pa.int32(), "", "number of evidence transits"),
        _f("first_obmt_ns", pa.int64(), "ns", "OBMT of the first evidence transit", obmt=True),
        _f("last_obmt_ns", pa.int64(), "ns", "OBMT of the last evidence transit", obmt=True),
        _f("transit_ids", pa.list_(pa.int64()), "", "the evidence: transits that deviate, ascending"),
    ]
)

#: Output tables of a run, by folder name.
#: Watch mode's latencies (``<run>/latency/``, only in runs made with ``gaiasim run --watch``): wall-clock
#: times, so it is kept out of :data:`RUN_TABLES` (whose content depends only on the inputs).
LATENCY = pa.schema(
    [
        _f("kind", pa.string(), "", "'file': TM file arrival -> its outputs written; 'alert': arrival of the "
           "file that completed an alert's evidence -> the alert written"),
        _f("name", pa.string(), "", "TM file name, or the alert_id"),
        _f("arrived_utc_ns", pa.int64(), "ns", "arrival (the file's modification time in the inbox), since 1970"),
        _f("written_utc_ns", pa.int64(), "ns", "outputs written, since 1970"),
        _f("latency_s", pa.float64(), "s", "written - arrived"),
    ]
)

RUN_TABLES: dict[str, pa.Schema] = {
    "transits": TRANSITS,
    "ccd": CCD,
    "quarantine": QUARANTINE,
    "gaps": GAPS,
    "hk": HK,
    "alerts": ALERTS,
    "hk_events": HK_EVENTS,
}
