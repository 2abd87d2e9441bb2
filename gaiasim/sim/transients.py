"""Science-alert transients: the classes Gaia Science Alerts publish, each with its light curve, at the DR3 rate.

Sources: docs/crowding-and-alerts-sources.md section 3 ("3.N" below is row N of its table 3.1, "3.2 item N" its
proposed design). Tags: [C] confirmed, [D] derived, [U] unconfirmed placeholder.

**Classes and mix** (3.2 item 2, every share [U] but the SN subtypes [C 3.13]): supernovae (Ia 65 %, II 28 %,
Ibc 7 %), AGN / nuclear, CV / dwarf nova, YSO (EXor, FUor, UXor-like fader), microlensing (10 % binary lens,
3.18) and "other" (long-period variables, Be stars: rises and dips). Each event is one of the three kinds of
Gaia Science Alerts (``kind``): a known source that brightens or fades, or a new source (a supernova at least
:data:`NUCLEAR_OFFSET_ARCSEC` from its host's centre, 3.2 item 3). The alert a correct pipeline raises
(``alert_kind``) is its kind, but new_source when the reference catalogue lacks the source (:func:`with_catalogue`).

**Light curves** (3.2 item 3). Every class but microlensing has one shape ``s(tau)`` in [0, 1], tau = t - peak:
a rise of ``rise_d`` days with flux growing as ``((tau + rise) / rise)^2`` (no rise when ``rise_d`` is 0), then
a plateau of ``plateau_d`` days declining at ``plateau_mag_per_d`` (null: endless), then a decline of
``decline_mag_per_d`` (null: none). The event's flux relative to its host's is ``X = X_peak s`` (brightening:
G = G_host - 2.5 log10(1 + X)) or ``D = D_peak s`` (fading: G = G_host - 2.5 log10(1 - D)); a new source has
G = G_peak - 2.5 log10(s). Microlensing is Paczynski's curve, ``X = f_s (A(u) - 1)``,
``u^2 = u0^2 + (tau / tE)^2``, plus for a binary lens a Gaussian caustic spike ``f_s A_c exp(-(t - t_c)^2 / 2 w^2)``
(3.2 item 3: "a second short spike"). An event lasts from ``start_ns`` to ``end_ns``: from the start of its rise
until its excess falls below :data:`EXCESS_END` of the host's flux (a new source: until it fades below
:data:`DETECTION_LIMIT_G_MAG`).

**Parameters** are hashes of (seed, transient_id) (:func:`hashed_uniform`), so an event is the same whatever else
the day holds; only its host and time come from the day.

**Rate** (3.6 [D]): :data:`ALERTS_PER_DAY` x :data:`EVENTS_PER_ALERT` x scale x boost events a day, Poisson, so
that about ALERTS_PER_DAY x scale x boost a day are detectable (3.2 item 1), each day's drawn from its own
stream keyed by (seed, calendar day) (:func:`rate_events`): a multi-day dataset holds the events of each of its
days, whatever the slicing. Each event is in progress at a uniform instant of its day, at a uniform phase of its
light curve, on a host drawn from the sources of the sky pixels the day's scans cross (weighted per class, 3.2
item 1: Galactic classes by source density, microlensing by its square, extragalactic ones away from the dense
sky), whether or not the host is observed. So most events are not seen in both fields of view with |dG| >= 1 mag
(faint supernovae, late phases, hosts between scans): the truth flags those that are (``detectable``,
:func:`with_detectability`). The boost is recorded in the manifest; recall and false alerts do not depend on it.

**Focused events** (``transients = N``, :func:`place_on_pairs`): N events of the mix on sources the day observes
in both fields of view (fading ones on hosts bright enough to stay visible, :data:`FOCUSED_FADING_MAX_G`), in the
mix's proportions of alert kinds with each kind at least once (:func:`focused_ids`), that pair of transits near
the event's peak (where its flux excess is at least :data:`FOCUSED_NEAR_PEAK` of its largest), for focused
tests: the spread of peak amplitudes stays. The
``step`` mix is the idealised events of earlier versions (|dG| uniform in 1-3 mag for the whole event, new sources
at G 12-18.5), for tests of a pipeline's thresholds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
from scipy.special import ndtr, ndtri

from gaiasim.sim import sky
from gaiasim.sim.catalogue import CataloguePlan
from gaiasim.sim.instrument import focal_plane as geometry
from gaiasim.spec import SpecError

NS_PER_DAY = 86_400_000_000_000
KINDS = ("brightening", "fading", "new_source")
MIXES = ("realistic", "step")

#: DR3 science alerts per day: 2,612 alerts in the 1,038 days from 2014-07-25 to 2017-05-28 (3.5 [C], 3.6 [D]).
ALERTS_PER_DAY = 2.5
#: Events per alert: the rate's events that the truth flags detectable (seen in both FoVs with |dG| >= 1 mag, or
#: as a new source at G <= 19) are 6.0 % of them: 149 of 2482 events on 5 days (seeds 1-5, scale 1e-3, boost 2e5,
#: 2016-01-16) [D]. So the events number ALERTS_PER_DAY x this a day (x scale x boost), and those a correct
#: pipeline can alert on about ALERTS_PER_DAY (3.2 item 1: "alerts the pipeline can legitimately raise number
#: about 2.5 a day x scale"); tests/unit/test_transients.py keeps the fraction within 40 % of this.
EVENTS_PER_ALERT = 16.7
#: Alert classes and their shares of the events [U] (3.2 item 2: placeholders until the Hodgkin+2021
#: classification figure or the GSA index is read).
CLASS_SHARES = {"supernova": 0.45, "agn": 0.15, "cv": 0.12, "yso": 0.08, "microlensing": 0.07, "other": 0.13}
#: Subclasses: (name, share within the class, alert kind). SN subtypes [C 3.13]; binary lenses 10 % (3.18,
#: secondary); the YSO and "other" splits [U]. A supernova's kind follows its offset from its host (3.2 item 3).
SUBCLASSES: dict[str, tuple[tuple[str, float, str], ...]] = {
    "supernova": (("Ia", 0.65, "brightening"), ("II", 0.28, "brightening"), ("Ibc", 0.07, "brightening")),
    "agn": (("nuclear", 1.0, "brightening"),),
    "cv": (("dwarf_nova", 1.0, "brightening"),),
    "yso": (("exor", 0.4, "brightening"), ("fuor", 0.1, "brightening"), ("fader", 0.5, "fading")),
    "microlensing": (("single", 0.9, "brightening"), ("binary", 0.1, "brightening")),
    "other": (("rise", 0.5, "brightening"), ("dip", 0.5, "fading")),
}
#: Events end when their flux excess (or deficit) falls below this fraction of the host's: 0.011 mag [U].
EXCESS_END = 0.01
#: Onboard detection limit, mag (docs/facts.md section 2): a new or fading source fainter makes no transit.
DETECTION_LIMIT_G_MAG = 20.7
#: No event makes a source brighter than this, mag [U]: brighter saturates the AF windows even with gates
#: (gaiasim.sim.signal.GATE_BY_G). Sources this bright are 1e-4 of the sky (docs/facts.md section 7).
G_FLOOR_MAG = 8.0

# --- light-curve parameters ([U] unless tagged) -------------------------------------------------------------------
#: SN Ia rise to peak, days: 10.5-20.5 over 56 SNe Ia (Zheng+2017, 3.17 [C]); decline after peak [U] (3.2 item 3).
SN_IA_RISE_D = (10.5, 20.5)
SN_IA_DECLINE_MAG_D = (0.03, 0.1)
#: SN II: rise, plateau length and slope (3.2 item 3 [U]); decline after the plateau [U].
SN_II_RISE_D = (5.0, 15.0)
SN_II_PLATEAU_D = (80.0, 120.0)
SN_II_PLATEAU_MAG_D = 0.01
SN_II_DECLINE_MAG_D = (0.05, 0.15)
#: SN Ibc: rise and decline [U] (3.13 gives only their share).
SN_IBC_RISE_D = (10.0, 20.0)
SN_IBC_DECLINE_MAG_D = (0.05, 0.1)
#: Peak G of a supernova: counts rising as 10^(0.6 G) (uniform in volume [D]) between these, mag (3.2 item 3: "peak
#: G lands in 14-20"; the faint end at the detection limit, so faint events near it abound).
SN_PEAK_G_MAG = (14.0, DETECTION_LIMIT_G_MAG)
#: A supernova's offset from its host: an exponential disc of this scale length, capped, arcsec [U] (3.2 item 3).
#: Closer than NUCLEAR_OFFSET_ARCSEC it is a brightening of the host (Gaia14aaa, 3.16; 3.2 item 3 says 0.3 [U]),
#: else a new source: the separation below which the reference catalogue holds two sources as one
#: (gaiasim.sim.catalogue.CataloguePlan.merge_arcsec, 0.4 [U], between the 0.23 AL and 0.70 AC resolution of an
#: equal pair, row 1.7), so the event is unresolved from its host exactly where the host's entry would be. Within
#: 1 arcsec of galaxy centres GSA's completeness drops (3.2): new sources a little further out may be matched to
#: their host by a pipeline (measured in docs/alerts.md).
SN_OFFSET_SCALE_ARCSEC = 1.0
SN_OFFSET_MAX_ARCSEC = 5.0
NUCLEAR_OFFSET_ARCSEC = CataloguePlan.merge_arcsec
#: Microlensing: u0 ~ U(0, 1); tE log-normal (median 30 d, sigma_ln 0.8) truncated to 5-300 d [U] (3.19 [C] keeps
#: 20-300 d); source flux fraction f_s ~ U(0.2, 1) [U]; binary-lens caustic spike at U(-1, 1) tE from the peak,
#: Gaussian width 0.5-2 d, extra magnification 1-10 [U] (3.18: "a second short spike").
ML_TE_MEDIAN_D, ML_TE_SIGMA_LN, ML_TE_RANGE_D = 30.0, 0.8, (5.0, 300.0)
ML_BLEND_RANGE = (0.2, 1.0)
ML_CAUSTIC_WIDTH_D = (0.5, 2.0)
ML_CAUSTIC_MAGNIFICATION = (1.0, 10.0)
#: Dwarf novae: amplitude 2-6 mag, outbursts lasting 3-20 d (3.20, 3.21, secondary); a 1-d rise (3.2 item 3), then a
#: decline that brings the excess back to 0.1 mag at the outburst's end [D]. One outburst per event.
CV_AMPLITUDE_MAG = (2.0, 6.0)
CV_DURATION_D = (3.0, 20.0)
CV_RISE_D = 1.0
#: EXor bursts: 1-4 mag over weeks to months (3.22, secondary; 3.2 item 3); rise, plateau and decline [U].
EXOR_AMPLITUDE_MAG = (1.0, 4.0)
EXOR_RISE_D = (5.0, 30.0)
EXOR_PLATEAU_D = (14.0, 90.0)
EXOR_DECLINE_D = (10.0, 60.0)
#: FUor: 4-6 mag rise over months, then a plateau lasting decades (3.22, 3.2 item 3): capped here [U].
FUOR_AMPLITUDE_MAG = (4.0, 6.0)
FUOR_RISE_D = (30.0, 300.0)
FUOR_PLATEAU_D = 3650.0
#: UXor-like faders: 1-3 mag dimming over days to months (3.2 item 3 [U]): ingress, minimum, egress.
FADER_AMPLITUDE_MAG = (1.0, 3.0)
FADER_INGRESS_D = (1.0, 30.0)
FADER_MINIMUM_D = (0.0, 30.0)
FADER_EGRESS_D = (1.0, 30.0)
#: AGN / nuclear: 0.5-2 mag over 30-300 d (3.2 item 3 [U]); as long to decline.
AGN_AMPLITUDE_MAG = (0.5, 2.0)
AGN_RISE_D = (30.0, 300.0)
#: Other (long-period variables, Be stars): 0.5-3 mag rises or dips over 10-200 d [U].
OTHER_AMPLITUDE_MAG = (0.5, 3.0)
OTHER_RISE_D = (10.0, 200.0)

# --- the step mix (earlier versions' events) -----------------------------------------------------------------------
#: The event starts this long before the first transit of its pair, and ends this long after the last, ns [U].
STEP_LEAD_NS = (60_000_000_000, NS_PER_DAY)
STEP_TAIL_NS = (60_000_000_000, 30 * NS_PER_DAY)
#: G during a step event stays in this range, mag [U]; |dG| of brightening and fading step events [U].
STEP_G_RANGE_MAG = (8.0, 20.0)
STEP_DELTA_G_MAG = (1.0, 3.0)
#: G of new step sources, mag [U]: brighter than the new-source limit of an alert pipeline (~19, 3.9); their
#: distance from the host, arcsec [U] (> 4x a 500 mas crossmatch radius, > 10 AC pixels).
STEP_NEW_G_MAG = (12.0, 18.5)
STEP_NEW_OFFSET_ARCSEC = (2.0, 5.0)
STEP_NEW_FRACTION = 1.0 / 3.0

# --- placement -----------------------------------------------------------------------------------------------------
#: Longest time between the FoV 1 and FoV 2 transits of one scan, ns: one scan sees a source in both FoVs 106.5 min
#: apart (basic angle / scan rate, docs/facts.md section 1); 2 h keeps that pair only.
MAX_PAIR_GAP_NS = 7_200_000_000_000
#: Focused new sources' hosts keep this far from the AC edge of the field at their transits, so the new source
#: (within 0.1 s of its host, so in the same scans) is in the field whenever its host is.
NEW_SOURCE_MAX_OFFSET_ARCSEC = max(SN_OFFSET_MAX_ARCSEC, STEP_NEW_OFFSET_ARCSEC[1])
#: New sources get source_id = pixel << 35 | NEW_SOURCE_ID_BIT | transient_id: sky.materialise numbers a pixel's
#: sources from 0 and never reaches 2**33 (gaiasim.sim.catalogue uses bit 33), so these ids never collide.
NEW_SOURCE_ID_BIT = 1 << 34
#: transient_id of the rate's events: this bit, the calendar day (13 bits) and the event's number that day (20
#: bits), all below 2**34; focused events are numbered from 0.
RATE_ID_BIT = 1 << 33
MAX_EVENTS_PER_DAY = (1 << 20) - 1
#: A focused event's pair of transits falls where its flux excess (or deficit) is at least this fraction of its
#: largest [U], found on a grid of this many times over the event.
FOCUSED_NEAR_PEAK = 0.8
FOCUSED_GRID = 2001
#: A focused fading event's host is no fainter than this, so that the largest dip of its classes leaves it above
#: the detection limit (a fainter host fading makes no transit to alert on).
FOCUSED_FADING_MAX_G = DETECTION_LIMIT_G_MAG - max(FADER_AMPLITUDE_MAG[1], OTHER_AMPLITUDE_MAG[1])
#: Candidate host pixels tried per event before a day without a free source for it gives it up (sparse skies).
HOST_TRIES = 256

# --- detectability (the alert checks' subset, REQ-ALR-001) ---------------------------------------------------------
#: |dG| at both transits of a FoV 1 / FoV 2 pair for a known source's event to count (the issue's "|dG| >= 1 mag").
DETECTABLE_DELTA_G_MAG = 1.0
#: G at both transits of a pair for a new source to count: the pre-launch detection limit, about G 19 (3.9,
#: secondary).
DETECTABLE_NEW_G_MAG = 19.0


def _meta(doc: str, unit: str = "") -> dict:
    return {"doc": doc, **({"unit": unit} if unit else {})}


TRUTH_TRANSIENTS = pa.schema(
    [
        pa.field("transient_id", pa.int64(), nullable=False),
        pa.field("origin", pa.string(), nullable=False,
                 metadata=_meta("rate (the DR3 rate x scale x boost) or focused (the plan's transients = N)")),
        pa.field("kind", pa.string(), nullable=False,
                 metadata=_meta("what the source does: brightening, fading, new_source (appears)")),
        pa.field("alert_kind", pa.string(), nullable=False,
                 metadata=_meta("the alert a correct pipeline raises: kind, but new_source for an event on a source "
                                "the reference catalogue lacks")),
        pa.field("class", pa.string(), nullable=False,
                 metadata=_meta("supernova, agn, cv, yso, microlensing, other; step (the step mix)")),
        pa.field("subclass", pa.string(), nullable=False, metadata=_meta("Ia, II, Ibc, exor, fuor, fader, ...")),
        pa.field("source_id", pa.int64(), nullable=False, metadata=_meta("the source that changes (or appears)")),
        pa.field("host_source_id", pa.int64(), nullable=False,
                 metadata=_meta("the source the event was placed on (itself unless new_source)")),
        pa.field("ra_deg", pa.float64(), nullable=False, metadata={"unit": "deg"}),
        pa.field("dec_deg", pa.float64(), nullable=False, metadata={"unit": "deg"}),
        pa.field("offset_arcsec", pa.float32(), nullable=True,
                 metadata=_meta("supernova or new source: distance from the host's centre", "arcsec")),
        pa.field("g_quiescent_mag", pa.float32(), nullable=True,
                 metadata=_meta("mean G outside the event (null for new sources)", "mag")),
        pa.field("delta_g_mag", pa.float32(), nullable=True,
                 metadata=_meta("G change at the peak, < 0 brightening (null for new sources)", "mag")),
        pa.field("peak_g_mag", pa.float32(), nullable=False,
                 metadata=_meta("G at the peak (faintest if fading)", "mag")),
        pa.field("peak_ns", pa.int64(), nullable=False, metadata=_meta("OBMT of the peak", "ns")),
        pa.field("start_ns", pa.int64(), nullable=False, metadata=_meta("OBMT, inclusive", "ns")),
        pa.field("end_ns", pa.int64(), nullable=False, metadata=_meta("OBMT, exclusive", "ns")),
        pa.field("rise_d", pa.float32(), nullable=True, metadata=_meta("rise to the peak (0: none)", "d")),
        pa.field("plateau_d", pa.float32(), nullable=True,
                 metadata=_meta("plateau after the peak (null: endless)", "d")),
        pa.field("plateau_mag_per_d", pa.float32(), nullable=True, metadata=_meta("decline on the plateau", "mag/d")),
        pa.field("decline_mag_per_d", pa.float32(), nullable=True,
                 metadata=_meta("decline after the plateau (null: none)", "mag/d")),
        pa.field("te_d", pa.float32(), nullable=True, metadata=_meta("microlensing: Einstein time tE", "d")),
        pa.field("u0", pa.float32(), nullable=True, metadata=_meta("microlensing: impact parameter")),
        pa.field("blend_fraction", pa.float32(), nullable=True, metadata=_meta("microlensing: source flux fraction")),
        pa.field("caustic_ns", pa.int64(), nullable=True,
                 metadata=_meta("binary lens: OBMT of the caustic spike", "ns")),
        pa.field("caustic_width_d", pa.float32(), nullable=True, metadata=_meta("binary lens: spike width", "d")),
        pa.field("caustic_magnification", pa.float32(), nullable=True,
                 metadata=_meta("binary lens: extra magnification at the spike")),
        pa.field("pair_delta_g_mag", pa.float32(), nullable=True,
                 metadata=_meta("known source: over its FoV 1 / FoV 2 pairs of one scan during the event, the largest "
                                "smaller |dG| of a pair (null: no pair)", "mag")),
        pa.field("pair_g_mag", pa.float32(), nullable=True,
                 metadata=_meta("over its pairs, the smallest fainter G of a pair (null: no pair)", "mag")),
        pa.field("detectable", pa.bool_(), nullable=False,
                 metadata=_meta("a FoV 1 / FoV 2 pair of one scan during the event with |dG| >= 1 mag at both (an "
                                "alert_kind new_source: G <= 19 at both)")),
    ]
)


# --- hashing -------------------------------------------------------------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (Steele, Lea and Flood 2014) on uint64 arrays: a bijective bit mixer."""
    x = (x + _GOLDEN).astype(np.uint64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hashed_uniform(seed: int, ids: np.ndarray, stream: int) -> np.ndarray:
    """U[0, 1) draws, a deterministic function of (seed, id, stream) for each id."""
    key = _splitmix64(np.full(1, int(seed) % 2**64, dtype=np.uint64)) ^ np.uint64(stream)
    h = _splitmix64(_splitmix64(key) ^ np.asarray(ids, dtype=np.int64).astype(np.uint64))
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


# --- the events' own parameters ------------------------------------------------------------------------------------

# Streams of hashed_uniform, one per parameter.
(_S_CLASS, _S_SUB, _S_AMP, _S_RISE, _S_PLATEAU, _S_DECLINE, _S_OFFSET, _S_PA, _S_PHASE, _S_TE, _S_U0, _S_FS,
 _S_C_AT, _S_C_W, _S_C_A, _S_PEAK, _S_COLOUR, _S_KIND) = range(100, 118)
_MODEL_FLOATS = ("offset_arcsec", "rise_d", "plateau_d", "plateau_mag_per_d", "decline_mag_per_d", "te_d", "u0",
                 "blend_fraction", "caustic_offset_d", "caustic_width_d", "caustic_magnification", "amplitude_mag",
                 "sn_peak_g_mag")


def _between(u: np.ndarray, lo_hi: tuple[float, float]) -> np.ndarray:
    return lo_hi[0] + u * (lo_hi[1] - lo_hi[0])


def _pick(u: np.ndarray, shares: list[float]) -> np.ndarray:
    """Index of the share each uniform ``u`` falls in."""
    edges = np.cumsum(shares)
    return np.minimum(np.searchsorted(edges / edges[-1], u, side="right"), len(shares) - 1)


def draw_models(seed: int, ids: np.ndarray, mix: str = "realistic") -> dict[str, np.ndarray]:
    """Class, subclass, kind and light-curve parameters of the events ``ids``, hashed from (seed, id): arrays keyed
    by TRUTH_TRANSIENTS column (NaN where a parameter does not apply), plus ``amplitude_mag`` (|dG| at the peak of a
    shape-model event on a known source), ``sn_peak_g_mag`` (peak G of a supernova or a new step source),
    ``caustic_offset_d`` and ``offset_pa_rad``."""
    if mix not in MIXES:
        raise SpecError(f"transient_mix = {mix!r}: must be one of {', '.join(MIXES)}")
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids)

    def u(stream: int) -> np.ndarray:
        return hashed_uniform(seed, ids, stream)

    out: dict[str, np.ndarray] = {name: np.full(n, np.nan) for name in _MODEL_FLOATS}
    out["offset_pa_rad"] = 2.0 * np.pi * u(_S_PA)
    if mix == "step":
        new = u(_S_KIND) < STEP_NEW_FRACTION
        kind = np.where(new, "new_source", np.where(u(_S_SUB) < 0.5, "brightening", "fading")).astype(object)
        out.update({"class": np.full(n, "step", dtype=object), "subclass": kind, "kind": kind,
                    "amplitude_mag": np.where(new, np.nan, _between(u(_S_AMP), STEP_DELTA_G_MAG)),
                    "sn_peak_g_mag": np.where(new, _between(u(_S_PEAK), STEP_NEW_G_MAG), np.nan),
                    "offset_arcsec": np.where(new, _between(u(_S_OFFSET), STEP_NEW_OFFSET_ARCSEC), np.nan),
                    "rise_d": np.zeros(n)})
        return out
    names = list(CLASS_SHARES)
    cls = np.array(names, dtype=object)[_pick(u(_S_CLASS), list(CLASS_SHARES.values()))]
    sub = np.empty(n, dtype=object)
    kind = np.empty(n, dtype=object)
    us = u(_S_SUB)
    for c, options in SUBCLASSES.items():
        m = cls == c
        j = _pick(us[m], [share for _, share, _ in options])
        sub[m] = np.array([name for name, _, _ in options], dtype=object)[j]
        kind[m] = np.array([k for _, _, k in options], dtype=object)[j]
    ua, ur, up, ud = u(_S_AMP), u(_S_RISE), u(_S_PLATEAU), u(_S_DECLINE)

    def put(mask: np.ndarray, **values) -> None:
        for name, v in values.items():
            out[name][mask] = np.broadcast_to(np.asarray(v, dtype=np.float64), mask.shape)[mask]

    # Supernovae: shape by subtype; peak G from uniform-in-volume counts; offset from an exponential disc.
    sn = cls == "supernova"
    put(sub == "Ia", rise_d=_between(ur, SN_IA_RISE_D), plateau_d=0.0, plateau_mag_per_d=0.0,
        decline_mag_per_d=_between(ud, SN_IA_DECLINE_MAG_D))
    put(sub == "II", rise_d=_between(ur, SN_II_RISE_D), plateau_d=_between(up, SN_II_PLATEAU_D),
        plateau_mag_per_d=SN_II_PLATEAU_MAG_D, decline_mag_per_d=_between(ud, SN_II_DECLINE_MAG_D))
    put(sub == "Ibc", rise_d=_between(ur, SN_IBC_RISE_D), plateau_d=0.0, plateau_mag_per_d=0.0,
        decline_mag_per_d=_between(ud, SN_IBC_DECLINE_MAG_D))
    lo, hi = (10.0 ** (0.6 * g) for g in SN_PEAK_G_MAG)
    put(sn, sn_peak_g_mag=np.log10(lo + u(_S_PEAK) * (hi - lo)) / 0.6)
    offset = np.minimum(disc_radius(u(_S_OFFSET)) * SN_OFFSET_SCALE_ARCSEC, SN_OFFSET_MAX_ARCSEC)
    put(sn, offset_arcsec=offset)
    kind[sn & (offset >= NUCLEAR_OFFSET_ARCSEC)] = "new_source"
    # Microlensing: Paczynski, blended, and for binary lenses a caustic spike.
    ml = cls == "microlensing"
    a, b = (np.log(t / ML_TE_MEDIAN_D) / ML_TE_SIGMA_LN for t in ML_TE_RANGE_D)
    put(ml, te_d=ML_TE_MEDIAN_D * np.exp(ML_TE_SIGMA_LN * ndtri(ndtr(a) + u(_S_TE) * (ndtr(b) - ndtr(a)))),
        u0=u(_S_U0), blend_fraction=_between(u(_S_FS), ML_BLEND_RANGE))
    put(sub == "binary", caustic_offset_d=(2.0 * u(_S_C_AT) - 1.0) * out["te_d"],
        caustic_width_d=_between(u(_S_C_W), ML_CAUSTIC_WIDTH_D),
        caustic_magnification=_between(u(_S_C_A), ML_CAUSTIC_MAGNIFICATION))
    # Dwarf novae: the amplitude, then the outburst's duration sets the decline.
    amp = _between(ua, CV_AMPLITUDE_MAG)
    put(cls == "cv", amplitude_mag=amp, rise_d=CV_RISE_D, plateau_d=0.0, plateau_mag_per_d=0.0,
        decline_mag_per_d=(amp + 2.5) / (_between(ud, CV_DURATION_D) - CV_RISE_D))
    # YSOs.
    amp = _between(ua, EXOR_AMPLITUDE_MAG)
    put(sub == "exor", amplitude_mag=amp, rise_d=_between(ur, EXOR_RISE_D), plateau_d=_between(up, EXOR_PLATEAU_D),
        plateau_mag_per_d=0.0, decline_mag_per_d=(amp + 2.5) / _between(ud, EXOR_DECLINE_D))
    put(sub == "fuor", amplitude_mag=_between(ua, FUOR_AMPLITUDE_MAG), rise_d=_between(ur, FUOR_RISE_D),
        plateau_d=FUOR_PLATEAU_D, plateau_mag_per_d=0.0)
    amp = _between(ua, FADER_AMPLITUDE_MAG)
    put(sub == "fader", amplitude_mag=amp, rise_d=_between(ur, FADER_INGRESS_D),
        plateau_d=_between(up, FADER_MINIMUM_D), plateau_mag_per_d=0.0,
        decline_mag_per_d=(amp + 2.5) / _between(ud, FADER_EGRESS_D))
    # AGN and the others: a rise, and a decline as long.
    for mask, amp_range, rise_range in ((cls == "agn", AGN_AMPLITUDE_MAG, AGN_RISE_D),
                                        (cls == "other", OTHER_AMPLITUDE_MAG, OTHER_RISE_D)):
        amp, rise = _between(ua, amp_range), _between(ur, rise_range)
        put(mask, amplitude_mag=amp, rise_d=rise, plateau_d=0.0, plateau_mag_per_d=0.0,
            decline_mag_per_d=(amp + 2.5) / rise)
    out.update({"class": cls, "subclass": sub, "kind": kind})
    return out


def disc_radius(u: np.ndarray) -> np.ndarray:
    """Radius, in scale lengths, at cumulative fraction ``u`` of an exponential disc: P(<r) = 1 - (1 + r) e^-r
    (bisection on [0, 60] to 2^-60 of the interval)."""
    u = np.asarray(u, dtype=np.float64)
    lo, hi = np.zeros(u.shape), np.full(u.shape, 60.0)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = 1.0 - (1.0 + mid) * np.exp(-mid) < u
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


# --- light curves --------------------------------------------------------------------------------------------------

def shape(tau_d: np.ndarray, rise_d: np.ndarray, plateau_d: np.ndarray, plateau_mag_per_d: np.ndarray,
          decline_mag_per_d: np.ndarray) -> np.ndarray:
    """The light-curve shape s in [0, 1] at ``tau_d`` days from the peak (the module doc); NaN ``plateau_d``: an
    endless plateau, NaN ``decline_mag_per_d``: no decline. The caller keeps tau inside the event."""
    tau = np.asarray(tau_d, dtype=np.float64)
    rise = np.asarray(rise_d, dtype=np.float64)
    plateau = np.where(np.isnan(plateau_d), np.inf, plateau_d)
    slope = np.nan_to_num(np.asarray(plateau_mag_per_d, dtype=np.float64))
    decline = np.nan_to_num(np.asarray(decline_mag_per_d, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        rising = np.where(rise > 0, np.clip((tau + rise) / rise, 0.0, 1.0) ** 2, 1.0)
        after = np.where(np.isfinite(plateau), np.maximum(tau - plateau, 0.0), 0.0)
        mags = slope * np.minimum(tau, plateau) + decline * after
    return np.where(tau < 0, rising, 10.0 ** (-0.4 * mags))


def paczynski(u: np.ndarray) -> np.ndarray:
    """Point-lens magnification A(u) = (u^2 + 2) / (u sqrt(u^2 + 4)) (Paczynski 1986)."""
    u = np.maximum(np.asarray(u, dtype=np.float64), 1e-9)
    return (u * u + 2.0) / (u * np.sqrt(u * u + 4.0))


def u_of_magnification(a: np.ndarray) -> np.ndarray:
    """The inverse of :func:`paczynski`: u^2 = 2 (a / sqrt(a^2 - 1) - 1)."""
    a = np.maximum(np.asarray(a, dtype=np.float64), 1.0 + 1e-12)
    return np.sqrt(2.0 * (a / np.sqrt(a * a - 1.0) - 1.0))


def lensing_excess(t_ns: np.ndarray, peak_ns: np.ndarray, te_d: np.ndarray, u0: np.ndarray, blend: np.ndarray,
                   caustic_ns: np.ndarray, caustic_width_d: np.ndarray, caustic_mag: np.ndarray) -> np.ndarray:
    """Microlensing flux excess over the host's, X = f_s (A(u) - 1) plus the caustic spike (NaN caustic: none)."""
    t = np.asarray(t_ns, dtype=np.int64)
    tau = (t - np.asarray(peak_ns, dtype=np.int64)) / NS_PER_DAY
    x = blend * (paczynski(np.sqrt(u0 * u0 + (tau / te_d) ** 2)) - 1.0)
    has = np.isfinite(caustic_mag) & np.isfinite(caustic_ns)
    dc = (t - np.where(has, caustic_ns, 0.0).astype(np.int64)) / NS_PER_DAY
    spike = blend * caustic_mag * np.exp(-0.5 * (dc / caustic_width_d) ** 2)
    return x + np.where(has, spike, 0.0)


_CURVE_FLOATS = ("g_quiescent_mag", "delta_g_mag", "peak_g_mag", "rise_d", "plateau_d", "plateau_mag_per_d",
                 "decline_mag_per_d", "te_d", "u0", "blend_fraction", "caustic_ns", "caustic_width_d",
                 "caustic_magnification")


def curve_params(transients: pa.Table) -> dict[str, np.ndarray]:
    """The columns the light curves read, as numpy arrays (floats with NaN for nulls)."""
    cols = {name: transients[name].to_numpy().astype(np.float64) for name in _CURVE_FLOATS}
    for name in ("peak_ns", "start_ns", "end_ns"):
        cols[name] = transients[name].to_numpy()
    for name in ("kind", "class"):
        cols[name] = transients[name].to_numpy(zero_copy_only=False)
    return cols


def delta_g_at(p: dict[str, np.ndarray], t_ns: np.ndarray) -> np.ndarray:
    """For each time ``t_ns``, with ``p`` the :func:`curve_params` of its event (taken per time): the G change of a
    known source, or the G of a new source (NaN where fainter than the detection limit). Meant for times inside
    [start_ns, end_ns); the caller masks the rest."""
    t = np.asarray(t_ns, dtype=np.int64)
    s = shape((t - p["peak_ns"]) / NS_PER_DAY, p["rise_d"], p["plateau_d"], p["plateau_mag_per_d"],
              p["decline_mag_per_d"])
    new = p["kind"] == "new_source"
    peak = np.nan_to_num(p["delta_g_mag"])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = np.where(p["class"] == "microlensing",
                     lensing_excess(t, p["peak_ns"], p["te_d"], p["u0"], p["blend_fraction"], p["caustic_ns"],
                                    p["caustic_width_d"], p["caustic_magnification"]),
                     (10.0 ** (-0.4 * peak) - 1.0) * s)
        brighten = -2.5 * np.log10(1.0 + np.maximum(np.nan_to_num(x), 0.0))
        fade = -2.5 * np.log10(np.maximum(1.0 - (1.0 - 10.0 ** (-0.4 * peak)) * s, 1e-6))
        g_new = p["peak_g_mag"] - 2.5 * np.log10(s)
    g_new = np.where((s > 0) & (g_new <= DETECTION_LIMIT_G_MAG), g_new, np.nan)
    return np.where(new, g_new, np.where(p["kind"] == "fading", fade, brighten))


def _support(m: dict[str, np.ndarray], delta_g: np.ndarray, peak_g: np.ndarray, new: np.ndarray,
             fading: np.ndarray, ml: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(days before, days after) its peak that each event lasts (the module doc)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        dg = np.nan_to_num(delta_g)
        x_peak = np.where(fading, 1.0 - 10.0 ** (-0.4 * dg), 10.0 ** (-0.4 * dg) - 1.0)
        s_end = np.where(new, 10.0 ** (-0.4 * (DETECTION_LIMIT_G_MAG - peak_g)), EXCESS_END / x_peak)
        fall_mag = np.maximum(-2.5 * np.log10(np.clip(np.nan_to_num(s_end, nan=1.0), 1e-30, 1.0)), 0.0)
        plateau = np.nan_to_num(m["plateau_d"])
        slope = np.nan_to_num(m["plateau_mag_per_d"])
        decline = m["decline_mag_per_d"]
        declines = np.isfinite(decline) & (decline > 0)
        after = np.where(declines, plateau + np.maximum(fall_mag - slope * plateau, 0.0) / np.where(declines, decline,
                                                                                                      1.0), plateau)
        before = np.nan_to_num(m["rise_d"])
        # Microlensing: until f_s (A - 1) < EXCESS_END, and the caustic spike within 5 widths of its time.
        half = m["te_d"] * np.sqrt(np.maximum(u_of_magnification(1.0 + EXCESS_END / m["blend_fraction"]) ** 2
                                              - m["u0"] ** 2, 0.0))
        has_spike = np.isfinite(m["caustic_offset_d"])
        spike = np.where(has_spike, 5.0 * m["caustic_width_d"], 0.0)
        c_at = np.nan_to_num(m["caustic_offset_d"])
        before = np.where(ml, np.maximum(np.nan_to_num(half), spike - c_at), before)
        after = np.where(ml, np.maximum(np.nan_to_num(half), spike + c_at), after)
    return np.maximum(before, 0.0), np.maximum(after, 1.0 / 24.0)


def build(seed: int, ids: np.ndarray, origin: str, models: dict[str, np.ndarray], sources: pa.Table,
          host: np.ndarray, anchor_ns: np.ndarray, phase: np.ndarray | Callable[[np.ndarray], np.ndarray],
          window: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[pa.Table, pa.Table]:
    """The events ``ids`` (``models`` from :func:`draw_models`) on rows ``host`` of ``sources``
    (:data:`gaiasim.sim.sky.TRUTH_SOURCES`), each in progress at ``anchor_ns`` at ``phase`` (0: its start, 1: its
    end; or a function of the events' spans in ns giving it) of its light curve, or over ``window`` = (start_ns,
    end_ns) with its peak at the start (the step mix): (TRUTH_TRANSIENTS rows, not yet flagged detectable; the new
    sources, as sky rows)."""
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids)
    kind = models["kind"].astype(str)
    cls = models["class"].astype(str)
    new, fading, ml = kind == "new_source", kind == "fading", cls == "microlensing"
    g_host = sources["g_mag"].to_numpy().astype(np.float64)[host]
    # The G change at the peak.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        delta = np.where(fading, models["amplitude_mag"], -models["amplitude_mag"])
        sn_on_host = (cls == "supernova") & ~new
        delta = np.where(sn_on_host, -2.5 * np.log10(1.0 + 10.0 ** (-0.4 * (models["sn_peak_g_mag"] - g_host))),
                         delta)
        c_u = np.sqrt(models["u0"] ** 2 + (np.nan_to_num(models["caustic_offset_d"]) / models["te_d"]) ** 2)
        spike = np.nan_to_num(models["caustic_magnification"])
        x_ml = models["blend_fraction"] * np.maximum(paczynski(models["u0"]) - 1.0, paczynski(c_u) - 1.0 + spike)
        delta = np.where(ml, -2.5 * np.log10(1.0 + x_ml), delta)
    delta = np.maximum(delta, G_FLOOR_MAG - g_host)  # no brighter than the floor (NaN stays NaN: new sources)
    peak_g = np.where(new, models["sn_peak_g_mag"], g_host + delta)
    if window is not None:
        start, end = (np.asarray(w, dtype=np.int64) for w in window)
        peak = start
    else:
        before, after = _support(models, np.where(new, np.nan, delta), peak_g, new, fading, ml)
        span_ns = np.round((before + after) * NS_PER_DAY).astype(np.int64)
        phase = phase(span_ns) if callable(phase) else np.asarray(phase, dtype=np.float64)
        start = np.asarray(anchor_ns, dtype=np.int64) - np.round(phase * span_ns).astype(np.int64)
        peak = start + np.round(before * NS_PER_DAY).astype(np.int64)
        end = start + span_ns + 1
    has_caustic = np.isfinite(models["caustic_offset_d"])
    caustic = peak + np.round(np.nan_to_num(models["caustic_offset_d"]) * NS_PER_DAY).astype(np.int64)
    # New sources, at their offset from the host, at a uniform position angle.
    u_host = geometry.unit_from_radec(sources["ra_deg"].to_numpy()[host], sources["dec_deg"].to_numpy()[host])
    rho = np.where(new, np.nan_to_num(models["offset_arcsec"]), 0.0) * geometry.ARCSEC_RAD
    u_new = offset_directions(u_host, rho, models["offset_pa_rad"])
    pixel = sky.pixel_of_unit(u_new)
    new_id = (pixel << sky.SOURCE_ID_SHIFT) | NEW_SOURCE_ID_BIT | ids
    ra_new, dec_new = geometry.radec_from_unit(u_new)
    host_id = sources["source_id"].to_numpy()[host]
    z = ndtri(np.clip(hashed_uniform(seed, ids, _S_COLOUR), 1e-12, 1.0 - 1e-12))
    colour = np.clip(sky.COLOUR_MEAN + sky.COLOUR_SIGMA * z, *sky.COLOUR_RANGE)

    def nullable(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
        values = np.asarray(values, dtype=np.float64)
        invalid = np.isnan(values) if mask is None else (mask | np.isnan(values))
        return pa.array(np.nan_to_num(values).astype(np.float32), mask=invalid)

    table = pa.table(
        {
            "transient_id": ids,
            "origin": np.full(n, origin),
            "kind": kind,
            "alert_kind": kind,
            "class": cls,
            "subclass": models["subclass"].astype(str),
            "source_id": np.where(new, new_id, host_id),
            "host_source_id": host_id,
            "ra_deg": np.where(new, ra_new, sources["ra_deg"].to_numpy()[host]),
            "dec_deg": np.where(new, dec_new, sources["dec_deg"].to_numpy()[host]),
            "offset_arcsec": nullable(models["offset_arcsec"]),
            "g_quiescent_mag": nullable(g_host, new),
            "delta_g_mag": nullable(delta, new),
            "peak_g_mag": peak_g.astype(np.float32),
            "peak_ns": peak,
            "start_ns": start,
            "end_ns": end,
            **{name: nullable(models[name]) for name in ("rise_d", "plateau_d", "plateau_mag_per_d",
                                                          "decline_mag_per_d", "te_d", "u0", "blend_fraction")},
            "caustic_ns": pa.array(caustic, mask=~has_caustic),
            "caustic_width_d": nullable(models["caustic_width_d"]),
            "caustic_magnification": nullable(models["caustic_magnification"]),
            "pair_delta_g_mag": pa.nulls(n, pa.float32()),
            "pair_g_mag": pa.nulls(n, pa.float32()),
            "detectable": np.zeros(n, dtype=bool),
        },
        schema=TRUTH_TRANSIENTS,
    )
    extra = pa.table(
        {
            "source_id": new_id[new],
            "pixel": pixel[new].astype(np.int32),
            "ra_deg": ra_new[new],
            "dec_deg": dec_new[new],
            "g_mag": peak_g[new].astype(np.float32),
            "bp_rp": colour[new].astype(np.float32),
        },
        schema=sky.TRUTH_SOURCES,
    )
    return table, extra


def offset_directions(u: np.ndarray, rho_rad: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Directions at angle ``rho_rad`` from the unit vectors ``u`` (n, 3), at position angle ``angle``."""
    u = np.asarray(u, dtype=np.float64).reshape(-1, 3)
    pole = np.where(np.abs(u[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    a = np.cross(u, pole)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b = np.cross(u, a)
    angle = np.asarray(angle, dtype=np.float64)[:, None]
    rho = np.asarray(rho_rad, dtype=np.float64)[:, None]
    v = u * np.cos(rho) + np.sin(rho) * (np.cos(angle) * a + np.sin(angle) * b)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def g_mag_at(g_mag: np.ndarray, obmt_ns: np.ndarray, source_id: np.ndarray, transients: pa.Table) -> np.ndarray:
    """G of each transit (float64, mag) given its ``g_mag`` without any event, changed by its source's event when
    that is active at ``obmt_ns`` (start_ns <= t < end_ns). A new source has its event's G, NaN outside its event or
    fainter than the detection limit (it makes no transit then: drop those); a fading source fainter than the
    detection limit (and than it is without the event) is NaN too. No event makes G brighter than
    :data:`G_FLOOR_MAG`."""
    g = np.asarray(g_mag, dtype=np.float64)
    obmt_ns = np.asarray(obmt_ns, dtype=np.int64)
    source_id = np.asarray(source_id, dtype=np.int64)
    if transients.num_rows == 0 or len(g) == 0:
        return g
    ev_id = transients["source_id"].to_numpy()
    order = np.argsort(ev_id, kind="stable")
    ev_id = ev_id[order]
    if np.any(ev_id[1:] == ev_id[:-1]):
        raise ValueError("transients must have one event per source; give the table made by place_on_pairs or "
                         "rate_events")
    j = np.clip(np.searchsorted(ev_id, source_id), 0, len(ev_id) - 1)
    has = np.flatnonzero(ev_id[j] == source_id)
    out = g.copy()
    if not len(has):
        return out
    p = {k: v[order[j[has]]] for k, v in curve_params(transients).items()}
    t = obmt_ns[has]
    active = (t >= p["start_ns"]) & (t < p["end_ns"])
    change = delta_g_at(p, t)
    g_has = g[has]
    known = np.maximum(g_has + change, np.minimum(g_has, G_FLOOR_MAG))
    gone = (p["kind"] == "fading") & (known > np.maximum(DETECTION_LIMIT_G_MAG, g_has))
    known = np.where(gone, np.nan, known)
    out[has] = np.where(p["kind"] == "new_source", np.where(active, change, np.nan), np.where(active, known, g_has))
    return out


# --- where and when ------------------------------------------------------------------------------------------------

def rate_count(seed: int, ordinal: int, scale: float, boost: float) -> tuple[np.random.Generator, int]:
    """The generator of calendar day ``ordinal``'s rate events (keyed by the seed and the day only) and their number,
    Poisson with mean :func:`events_per_day`."""
    rng = np.random.default_rng([int(seed), 0x7A5, int(ordinal)])
    n = int(rng.poisson(events_per_day(scale, boost)))
    if n > MAX_EVENTS_PER_DAY:
        raise SpecError(f"transient_boost = {boost!r}: {n} transients in one day at scale {scale:g}, more than "
                        f"{MAX_EVENTS_PER_DAY}; lower the boost")
    return rng, n


def events_per_day(scale: float, boost: float) -> float:
    """Mean number of the rate's events a day: :data:`ALERTS_PER_DAY` x :data:`EVENTS_PER_ALERT` x scale x boost."""
    return ALERTS_PER_DAY * EVENTS_PER_ALERT * float(scale) * float(boost)


def pixel_weights(cls: str, density: np.ndarray) -> np.ndarray:
    """Relative chance of each crossed pixel (``density``: its expected sources) to host an event of ``cls`` (3.2
    item 1 [U]): Galactic classes follow the sources, microlensing their square (the optical depth), extragalactic
    classes (supernovae, AGN) are uniform on the sky but suppressed where it is denser than its median (extinction)."""
    d = np.asarray(density, dtype=np.float64)
    if cls in ("supernova", "agn"):
        return np.minimum(1.0, np.median(d) / np.maximum(d, 1e-300))
    return d * d if cls == "microlensing" else d


def rate_events(seed: int, scale: float, boost: float, days: list[tuple[int, int, int]],
                crossed: Callable[[int, int], np.ndarray], sky_model: str = "toy") -> tuple[pa.Table, pa.Table]:
    """The rate's events of ``days`` ((calendar ordinal, t0_ns, t1_ns) each): per day (:func:`rate_count`),
    events in progress at uniform instants of the day, at uniform phases, on hosts of the pixels
    ``crossed(t0_ns, t1_ns)`` (class-weighted, :func:`pixel_weights`; the source uniform within the pixel; each host
    once). An event for which :data:`HOST_TRIES` pixels hold no free source is dropped (very sparse skies).
    (TRUTH_TRANSIENTS, new sources), not yet flagged detectable."""
    tables, extras = [], []
    used: set[int] = set()
    for ordinal, t0, t1 in days:
        rng, n = rate_count(seed, ordinal, scale, boost)
        if n == 0:
            continue
        ids = RATE_ID_BIT | ((int(ordinal) & 0x1FFF) << 20) | np.arange(n, dtype=np.int64)
        models = draw_models(seed, ids)
        anchor = t0 + (rng.random(n) * (t1 - t0)).astype(np.int64)
        pixels = np.asarray(crossed(t0, t1), dtype=np.int64)
        density = sky.expected_sources(pixels, scale, sky_model)
        candidates = np.zeros((n, HOST_TRIES), dtype=np.int64)
        for cls in CLASS_SHARES:
            m = models["class"] == cls
            if m.any():
                w = pixel_weights(cls, density)
                candidates[m] = rng.choice(pixels, size=(int(m.sum()), HOST_TRIES), p=w / w.sum())
        row, sources = _choose_hosts(seed, scale, sky_model, candidates, rng.random((n, HOST_TRIES)), used)
        keep = np.flatnonzero(row >= 0)
        if not len(keep):
            continue
        table, extra = build(seed, ids[keep], "rate", {k: v[keep] for k, v in models.items()}, sources, row[keep],
                             anchor[keep], hashed_uniform(seed, ids[keep], _S_PHASE))
        tables.append(table)
        extras.append(extra)
    if not tables:
        return TRUTH_TRANSIENTS.empty_table(), sky.TRUTH_SOURCES.empty_table()
    return pa.concat_tables(tables), pa.concat_tables(extras)


def _choose_hosts(seed: int, scale: float, sky_model: str, candidates: np.ndarray, pick: np.ndarray,
                  used: set[int]) -> tuple[np.ndarray, pa.Table]:
    """For each event (row of ``candidates``), the source at fraction ``pick`` of the list of its first candidate
    pixel whose source so picked exists and is not ``used`` (which it then uses): (row of each event's host in the
    returned sources, -1: none found; the sources). Pixels are materialised a round of candidates at a time: a
    dense sky needs one round."""
    n, tries = candidates.shape
    host_id = np.full(n, -1, dtype=np.int64)
    todo = list(range(n))
    have: dict[int, list[int]] = {}
    for k in range(tries):
        if not todo:
            break
        need = sorted({int(candidates[e, k]) for e in todo} - set(have))
        if need:
            got = sky.materialise(seed, np.array(need, dtype=np.int64), scale, sky_model)
            pix, sid = got["pixel"].to_numpy(), got["source_id"].to_numpy()
            for p in need:
                have[p] = sid[pix == p].tolist()
        left = []
        for e in todo:
            pool = have[int(candidates[e, k])]
            source = pool[min(int(pick[e, k] * len(pool)), len(pool) - 1)] if pool else None
            if source is not None and source not in used:
                host_id[e] = source
                used.add(source)
            else:
                left.append(e)
        todo = left
    found = host_id >= 0
    sources = sky.materialise(seed, np.unique(host_id[found] >> sky.SOURCE_ID_SHIFT), scale, sky_model)
    sid = sources["source_id"].to_numpy()
    order = np.argsort(sid)
    row = np.full(n, -1, dtype=np.int64)
    row[found] = order[np.searchsorted(sid, host_id[found], sorter=order)]
    return row, sources


def _pairs(source_index: np.ndarray, obmt_ns: np.ndarray, fov: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, ...]:
    """(source, t_first, t_last) of every pair of consecutive transits of one source in different FoVs at most
    :data:`MAX_PAIR_GAP_NS` apart, both ``ok``."""
    order = np.lexsort((obmt_ns, source_index))
    s, t, f, g = source_index[order], obmt_ns[order], fov[order], ok[order]
    pair = (s[1:] == s[:-1]) & (f[1:] != f[:-1]) & (t[1:] - t[:-1] <= MAX_PAIR_GAP_NS) & g[1:] & g[:-1]
    i = np.flatnonzero(pair)
    return s[i], t[i], t[i + 1]


def focused_ids(key: int, n_events: int) -> np.ndarray:
    """Ids of ``n_events`` focused events of the realistic mix whose kinds follow the mix's shares (largest
    remainders, and every kind at least once from 3 events on, so that a focused test sees every kind of alert):
    the first ids of each kind in the order 0, 1, 2, ... (parameters hashed from (key, id) as ever)."""
    pool = np.arange(max(64, 40 * n_events), dtype=np.int64)
    kind = draw_models(key, pool)["kind"].astype(str)
    share = np.array([np.mean(kind == k) for k in KINDS])
    quota = np.floor(share * n_events).astype(int)
    quota[np.argsort(-(share * n_events - quota), kind="stable")[:n_events - quota.sum()]] += 1
    if n_events >= len(KINDS):
        while (quota == 0).any():
            quota[np.argmax(quota)] -= 1
            quota[np.argmin(quota)] += 1
    return np.sort(np.concatenate([pool[kind == k][:q] for k, q in zip(KINDS, quota, strict=True)]))


def place_on_pairs(n_events: int, mix: str, rng: np.random.Generator, sources: pa.Table, t0_ns: int, t1_ns: int,
                   source_index: np.ndarray, obmt_ns: np.ndarray, fov: np.ndarray,
                   zeta_rad: np.ndarray | None = None, exclude: np.ndarray | None = None) -> tuple[pa.Table, pa.Table]:
    """``n_events`` focused events of ``mix`` in the day [t0_ns, t1_ns), each on its own host (none of the source ids
    ``exclude``) that the day observes in FoV 1 and FoV 2 within :data:`MAX_PAIR_GAP_NS`, with that pair inside the
    event (at a uniform phase; the step mix: the event starts 1 min-1 d before the pair and ends 1 min-30 d after).
    ``source_index`` (row of ``sources``), ``obmt_ns``, ``fov`` and optionally ``zeta_rad`` describe the day's
    transits: with ``zeta_rad``, a new source's host is observed clear of the field's AC edge. Parameters hash
    from (a key drawn from ``rng``, event number); hosts and times come from ``rng``. (TRUTH_TRANSIENTS, new
    sources), not yet flagged detectable."""
    if n_events == 0:
        return TRUTH_TRANSIENTS.empty_table(), sky.TRUTH_SOURCES.empty_table()
    source_index = np.asarray(source_index, dtype=np.int64)
    obmt_ns = np.asarray(obmt_ns, dtype=np.int64)
    fov = np.asarray(fov)
    if not len(source_index) == len(obmt_ns) == len(fov):
        raise ValueError("source_index, obmt_ns and fov must have one value per transit")
    ok = (obmt_ns >= t0_ns) & (obmt_ns < t1_ns)
    clear = ok.copy()
    if zeta_rad is not None:
        margin = NEW_SOURCE_MAX_OFFSET_ARCSEC * geometry.ARCSEC_RAD
        zeta_rad = np.asarray(zeta_rad, dtype=np.float64)
        clear &= (zeta_rad >= geometry.ZETA_MIN_RAD + margin) & (zeta_rad < -geometry.ZETA_MIN_RAD - margin)
    key = int(rng.integers(0, 2**63))
    ids = np.arange(n_events, dtype=np.int64) if mix == "step" else focused_ids(key, n_events)
    models = draw_models(key, ids, mix)
    kinds = models["kind"].astype(str)
    g_src = sources["g_mag"].to_numpy().astype(np.float64)
    taken = np.isin(sources["source_id"].to_numpy(), np.asarray(exclude if exclude is not None else [], np.int64))
    step = mix == "step"
    everyone = np.ones(len(g_src), dtype=bool)
    able = {"brightening": g_src - STEP_DELTA_G_MAG[1] >= STEP_G_RANGE_MAG[0] if step else everyone,
            "fading": g_src + STEP_DELTA_G_MAG[1] <= STEP_G_RANGE_MAG[1] if step else g_src <= FOCUSED_FADING_MAX_G,
            "new_source": everyone}
    # Pairs of any transits (known sources' events), and of transits clear of the field's edge (new sources').
    pair_sets = {}
    for name, mask in (("known", ok), ("new", clear)):
        s, a, b = _pairs(source_index, obmt_ns, fov, mask)
        hosts, first, count = np.unique(s, return_index=True, return_counts=True)
        pair_sets[name] = (a, b, hosts, first, count, rng.permutation(len(hosts)))
    used = taken.copy()
    host = np.empty(n_events, dtype=np.int64)
    pair_t0 = np.empty(n_events, dtype=np.int64)
    pair_t1 = np.empty(n_events, dtype=np.int64)
    cursor = {(name, k): 0 for name in pair_sets for k in KINDS}
    for e, kind in enumerate(kinds):
        name = "new" if kind == "new_source" else "known"
        a, b, hosts, first, count, order = pair_sets[name]
        c = cursor[(name, kind)]
        while c < len(order) and (used[hosts[order[c]]] or not able[kind][hosts[order[c]]]):
            c += 1
        cursor[(name, kind)] = c
        if c == len(order):
            n_able = int(np.sum(able[kind][hosts] & ~taken[hosts]))
            raise SpecError(
                f"transients = {n_events}: this day has too few sources observed in both fields of view "
                f"({len(hosts)}, of which {n_able} can host a {kind} event); lower it or raise the scale")
        h = order[c]
        used[hosts[h]] = True
        host[e] = hosts[h]
        pick = first[h] + rng.integers(0, count[h])
        pair_t0[e], pair_t1[e] = a[pick], b[pick]
    if step:
        start = pair_t0 - rng.integers(*STEP_LEAD_NS, size=n_events)
        end = pair_t1 + rng.integers(*STEP_TAIL_NS, size=n_events) + 1
        return build(key, ids, "focused", models, sources, host, start, np.zeros(n_events), window=(start, end))
    # The pair near the event's peak: at a uniform time where the event's excess (or deficit) of flux is at least
    # FOCUSED_NEAR_PEAK of its largest, so that a focused event shows its amplitude (the mix's spread of peak
    # amplitudes, including those below detectability, is kept).
    table, extra = build(key, ids, "focused", models, sources, host, np.zeros(n_events, np.int64), np.zeros(n_events))
    start, end = table["start_ns"].to_numpy(), table["end_ns"].to_numpy()
    grid = start[:, None] + ((end - 1 - start)[:, None] * np.linspace(0.0, 1.0, FOCUSED_GRID)[None, :]).astype(np.int64)
    p = {k: np.repeat(v, FOCUSED_GRID) for k, v in curve_params(table).items()}
    value = delta_g_at(p, grid.ravel()).reshape(n_events, FOCUSED_GRID)
    new = (table["kind"].to_numpy(zero_copy_only=False) == "new_source")[:, None]
    with np.errstate(invalid="ignore", over="ignore"):
        flux = np.nan_to_num(np.where(new, 10.0 ** (-0.4 * value), np.abs(1.0 - 10.0 ** (-0.4 * value))))
    near = flux >= FOCUSED_NEAR_PEAK * flux.max(axis=1, keepdims=True)
    choice = np.array([rng.choice(np.flatnonzero(row)) for row in near])
    mid = (pair_t0 + pair_t1) // 2
    shift = mid - grid[np.arange(n_events), choice]
    # Keep both transits of the pair inside the event (it lasts at least an hour; a pair spans up to 2 h).
    shift = np.clip(shift, pair_t1 - (end - 1), pair_t0 - start)
    for name in ("peak_ns", "start_ns", "end_ns", "caustic_ns"):
        i = table.schema.get_field_index(name)
        col = table[name]
        table = table.set_column(i, table.schema.field(i), pa.array(col.fill_null(0).to_numpy() + shift,
                                                                    mask=col.is_null().to_numpy()))
    return table, extra


# --- detectability -------------------------------------------------------------------------------------------------

def with_detectability(transients: pa.Table, source_id: np.ndarray, obmt_ns: np.ndarray, fov: np.ndarray) -> pa.Table:
    """``transients`` with ``pair_delta_g_mag``, ``pair_g_mag`` and ``detectable`` set from the transits
    ``source_id``, ``obmt_ns``, ``fov`` (those of their sources, or more). Over the FoV 1 / FoV 2 pairs of an
    event's source inside the event and at most :data:`MAX_PAIR_GAP_NS` apart: the best pair's smaller |dG| (known
    sources) and the best pair's fainter G (G = quiescent G + dG for a known source, its variability aside). An
    event is detectable when the first reaches :data:`DETECTABLE_DELTA_G_MAG`, or, when its ``alert_kind`` is
    new_source, the second is within :data:`DETECTABLE_NEW_G_MAG`."""
    n = transients.num_rows
    if n == 0:
        return transients
    source_id = np.asarray(source_id, dtype=np.int64)
    obmt_ns = np.asarray(obmt_ns, dtype=np.int64)
    fov = np.asarray(fov)
    ev_source = transients["source_id"].to_numpy()
    order = np.argsort(ev_source, kind="stable")
    pos = np.clip(np.searchsorted(ev_source[order], source_id), 0, n - 1)
    mine = ev_source[order][pos] == source_id
    row = order[pos[mine]]
    t, f = obmt_ns[mine], fov[mine]
    p = {k: v[row] for k, v in curve_params(transients).items()}
    inside = (t >= p["start_ns"]) & (t < p["end_ns"])
    value = delta_g_at(p, t)  # dG (known sources) or G (new sources)
    new_rows = p["kind"] == "new_source"
    g_at = np.where(new_rows, value, p["g_quiescent_mag"] + value)
    scores = {"dg": np.where(new_rows, np.nan, np.abs(value)), "g": -g_at}  # larger is more detectable
    best = {name: np.full(n, np.nan) for name in scores}
    for e in np.unique(row[inside]):
        m = inside & (row == e)
        t1, t2 = t[m & (f == 1)], t[m & (f == 2)]
        if not (len(t1) and len(t2)):
            continue
        close = np.abs(t1[:, None] - t2[None, :]) <= MAX_PAIR_GAP_NS
        for name, score in scores.items():
            both = np.minimum(score[m & (f == 1)][:, None], score[m & (f == 2)][None, :])
            both = np.where(close & np.isfinite(both), both, -np.inf)
            if np.isfinite(both.max()):
                best[name][e] = both.max()
    as_new = transients["alert_kind"].to_numpy(zero_copy_only=False) == "new_source"
    pair_dg, pair_g = best["dg"], -best["g"]
    with np.errstate(invalid="ignore"):
        detectable = np.where(as_new, pair_g <= DETECTABLE_NEW_G_MAG, pair_dg >= DETECTABLE_DELTA_G_MAG)
    out = transients
    for name, values in (("pair_delta_g_mag", pair_dg), ("pair_g_mag", pair_g)):
        i = out.schema.get_field_index(name)
        out = out.set_column(i, out.schema.field(i), pa.array(np.nan_to_num(values).astype(np.float32),
                                                              mask=np.isnan(values)))
    i = out.schema.get_field_index("detectable")
    return out.set_column(i, out.schema.field(i), pa.array(detectable.astype(bool)))


def with_catalogue(transients: pa.Table, missing_source_ids: np.ndarray, source_id: np.ndarray,
                   obmt_ns: np.ndarray, fov: np.ndarray) -> pa.Table:
    """``transients`` with ``alert_kind`` new_source for the events on sources the reference catalogue lacks
    (``missing_source_ids``: a brightening of an uncatalogued source is a source new to the catalogue), and their
    detectability judged again at the transits ``source_id``, ``obmt_ns``, ``fov`` (:func:`with_detectability`)."""
    missing = np.isin(transients["source_id"].to_numpy(), np.asarray(missing_source_ids, dtype=np.int64))
    if not missing.any():
        return transients
    kind = transients["kind"].to_numpy(zero_copy_only=False)
    i = transients.schema.get_field_index("alert_kind")
    out = transients.set_column(i, transients.schema.field(i), pa.array(np.where(missing, "new_source", kind)))
    return with_detectability(out, source_id, obmt_ns, fov)
