"""On-board video processing (VPU): the magnitude a detection is windowed by, spurious detections around
bright stars, blends below the resolution limit, window conflicts and truncated windows
(docs/crowding-and-alerts-sources.md section 1; the switches are :class:`gaiasim.sim.instrument.realism.Effects`
``onboard_mag``, ``spurious``, ``window_conflicts``, ``blends`` and ``truncated_windows``, all off in the
``ideal`` instrument, which then gives the bytes of the generator without this module).

Between the transits of a slice (phase A, :func:`gaiasim.sim.slices.find_slice_transits`) and their
windows, :func:`on_board` does what Gaia's seven VPUs, one per CCD row, do (row 1.3):

1. **On-board magnitude** (design item 1): ``G_ob = G + sigma_ob(G) z``, z a normal deviate of the
   transit's own stream (``stream_key(seed ^ VPU_MAG_STREAM, transit_id)``). The window class and the gate
   come from G_ob (row 1.2: the window geometry follows the on-board estimated G), the truth keeps the true
   G: near G 13 and 16 a star arrives sometimes in one class, sometimes in the other (``class_flip``).
2. **Spurious detections** (design item 5): local maxima in the PSF wings of a bright star (row 1.9: one
   G ~ 13 star gave 4 "ghosts"; rows 1.5, 1.20, 1.21). A source brighter than :data:`SPURIOUS_PARENT_G_MAX`
   has K ~ Poisson(n_sp(G)) of them at each transit. They are **fixed in the focal plane**: the ghosts of a
   source (their count's quantile, kind, offsets along and across scan, magnitude offsets) are drawn from the
   source's stream, not the transit's, so the FoV 1 and FoV 2 transits of one scan (nearly the same scan
   direction) put them at nearly the same sky positions, where a both-FoV rule does not remove them
   (Hodgkin+2021; docs/crowding-and-alerts-sources.md section 4 item 4). Two thirds lie on the AL or AC axis
   through the star (diffraction spikes), a third in the halo, 2 to 40 SM samples away (row 1.9), G =
   G_parent + U(5, 9) mag, kept below G 20.7. A ghost becomes an ordinary star packet, with the transit id
   of its place and time; its truth source is :data:`ARTEFACT_SOURCE_ID_BASE` + the parent's source_id
   (a reserved range: truth sources lie below 2**55, catalogue entries from 2**56), in no catalogue and no
   ``truth/sources``. ``truth/artefacts`` records each one (``spike`` or ``halo``), its parent transit and
   its offsets.
3. **Window conflicts** (design item 3): on each CCD row (one VPU), a detection whose centre lies inside
   the window of a detection of higher priority (lower G_ob, then lower transit id) gets no window
   (``lost_conflict``: no packet, not a truth transit; recorded in ``truth/artefacts`` with the detection
   that took its place, counted in the manifest). The AF CCDs are shared by both FoVs, so both conflict.
   The rule is local (a detection lost to a conflict still takes a window's place from the fainter ones
   inside its own window) [U: Gaia's own priority rules are not published, row 1.17 gives Kluter+2020's
   model]; being local it needs only the detections within one window length, so each slice resolves its
   conflicts with the detections of a :data:`HALO_NS` halo on each side and keeps its own: the result does
   not depend on slicing.
4. **Blends below the resolution limit** (design item 2; switch ``blends``): two real detections of one FoV
   and CCD row closer than (dAL / 0.23")^2 + (dAC / 0.70")^2 < 1 in field angles (row 1.7) are one
   detection. The fainter (higher G, then higher transit id) gets no window of its own: its flux is rendered
   into the brighter's window at its offset (:func:`gaiasim.sim.signal.make_windows` ``blend``), whose
   on-board G is then the pair's. The separation is measured along and across the scan, so one pair blends
   in some scans and is resolved in others. ``truth/artefacts`` records each ``blended`` detection (the
   transit id it would have had, no packet) with its partner's transit id and its offsets; ``truth/transits``
   keeps the true G of the brighter star, so a blended transit measures brighter than its source. Done
   first, before the ghosts (which stay the brighter star's) and the conflicts.
5. **Truncated windows** (design item 3; switch ``truncated_windows``): a detection that keeps its window,
   whose centre lies outside the window of a detection of higher priority that keeps one (on its CCD row,
   AC centres within half a window, :data:`WINDOW_AC_HALF_PX`) while its own window overlaps it along scan,
   loses the AL samples inside that window: they are sent as :data:`pipeline.icd.NOT_READ_ADU` (the side
   facing it: the start when it crossed first, the end when it crossed after; both when there are two)
   [U: row 1.17 gives Klüter+2020's model; Gaia's rules are not published; AC-side overlaps (AC centres 6-12
   px apart) are not truncated, and the flux of each star in the other's window is not rendered]. BP and RP
   windows are not truncated. ``truth/artefacts`` records each ``truncated`` window sent down: its samples
   kept, the side and the highest-priority window it faces. Local like the conflicts (two window lengths
   plus the faced window's own conflicts, far inside :data:`HALO_NS`).

Then the G-dependent data loss of :mod:`gaiasim.sim.onboard` applies to every window left, ghosts included.
Everything is a pure function of (seed, transit id) or (seed, source id): the same whatever the slicing.
"""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
from scipy import special

from gaiasim.sim import kernels_vpu as _kv
from gaiasim.sim import onboard, signal
from gaiasim.sim.instrument import focal_plane as fp
from gaiasim.sim.kernels_random import uniform_array
from pipeline import icd

#: Random streams of the on-board magnitudes (keyed by transit id) and of the ghosts (by source id).
VPU_MAG_STREAM = 0x0B6A
VPU_SPUR_STREAM = 0x5B0F

#: On-board G error, 1 sigma, mag [U; row 1.23: not published]: 0.05 mag up to G 16, rising linearly to
#: 0.3 mag at G 20.7 and flat beyond (design item 1).
SIGMA_OB_G = (16.0, 20.7)
SIGMA_OB_MAG = (0.05, 0.3)

#: Sources brighter than this make spurious detections, G mag [U; design item 5].
SPURIOUS_PARENT_G_MAX = 16.0
#: n_sp(G) = SPURIOUS_AT_13 x 10^(SPURIOUS_SLOPE (13 - G)), at most SPURIOUS_MAX (row 1.9: 4 ghosts at G ~ 13;
#: the slope and the cap [U], to be recalibrated from de Bruijne+2015 Fig. 17 panel 3, row 1.10).
SPURIOUS_AT_13 = 4.0
SPURIOUS_SLOPE = 0.3
SPURIOUS_MAX = 200
#: Fraction of ghosts on the AL or AC axis through the star (diffraction spikes); the rest lie in the halo [U].
SPIKE_FRACTION = 2.0 / 3.0
#: Distance of a ghost from its star, SM samples (2 x 2 pixels, row 1.8): at least the 3 x 3-sample working
#: window's half width, at most "a few dozen" (row 1.9; the simulations' 40 x 40-sample grid) [U].
GHOST_SAMPLES = (2.0, 40.0)
SM_SAMPLE_PX = 2
#: Where in its pixel a ghost's maximum lies, px (uniform over one pixel each way).
GHOST_JITTER_PX = 1.0
#: Magnitude of a ghost below its star's, mag [U], and the faintest detection kept (docs/facts.md 2: G 20.7).
GHOST_DG_MAG = (5.0, 9.0)
DETECTION_G_LIMIT = 20.7
#: Truth source ids of ghosts: this plus the parent's source id (truth ids < 2**55, catalogue ids >= 2**56).
ARTEFACT_SOURCE_ID_BASE = 1 << 55

#: Halo each slice adds on both sides for the ghosts and conflicts at its edges, ns: more than a ghost's
#: largest AL offset (80 px, 79 ms) plus half the longest window (9 px) (design item 3: 0.2 s).
HALO_NS = 200_000_000
#: AC half-width of every window, px (icd.WINDOW_AC_PX: 12 AC pixels, binned or not).
WINDOW_AC_HALF_PX = icd.WINDOW_AC_PX / 2
#: Resolution limit of two images of one scan along and across scan, arcsec: closer than
#: (dAL / 0.23)^2 + (dAC / 0.70)^2 < 1 they are one detection (de Bruijne+2015 abstract, for an equal double,
#: whatever its brightness; docs/crowding-and-alerts-sources.md row 1.7 [C]; applied to unequal pairs too [U]).
BLEND_AL_ARCSEC = 0.23
BLEND_AC_ARCSEC = 0.70
_BLEND_AL_NS = BLEND_AL_ARCSEC / fp.SCAN_RATE_ARCSEC_S * 1e9

KINDS = ("spike", "halo", "lost_conflict", "class_flip", "gate_flip", "blended", "truncated")
SPIKE, HALO, LOST_CONFLICT, CLASS_FLIP, GATE_FLIP, BLENDED, TRUNCATED = range(len(KINDS))
#: Sides of a truncated window (``truth/artefacts`` ``side``): the samples not read out are at its start
#: (the brighter window crossed first), at its end, or both.
SIDES = ("start", "end", "both")

TRUTH_ARTEFACTS = pa.schema(
    [
        pa.field("transit_id", pa.int64(), nullable=False,
                 metadata={"doc": "the detection's transit id (lost_conflict, blended: the one it would have had; "
                                  "no packet)"}),
        pa.field("kind", pa.string(), nullable=False, metadata={"doc": "spike, halo, lost_conflict, class_flip, "
                                                                       "gate_flip, blended, truncated "
                                                                       "(gaiasim.sim.vpu.KINDS)"}),
        pa.field("source_id", pa.int64(), nullable=False,
                 metadata={"doc": "truth source; a ghost's is 2**55 + its parent's source_id"}),
        pa.field("parent_transit_id", pa.int64(), nullable=True,
                 metadata={"doc": "spike/halo: the bright transit; lost_conflict: the detection whose window "
                                  "holds its centre; blended: the transit whose window has its flux; truncated: "
                                  "the highest-priority window it faces; null for flips"}),
        pa.field("obmt_ns", pa.int64(), nullable=False, metadata={"unit": "ns", "doc": "AF1 crossing"}),
        pa.field("fov", pa.int8(), nullable=False),
        pa.field("ccd_row", pa.int8(), nullable=False),
        pa.field("ac_px", pa.int16(), nullable=False, metadata={"unit": "px"}),
        pa.field("g_mag", pa.float32(), nullable=False, metadata={"unit": "mag", "doc": "true G"}),
        pa.field("g_onboard_mag", pa.float32(), nullable=False,
                 metadata={"unit": "mag", "doc": "the on-board estimate that chose the window class and gate"}),
        pa.field("window_class", pa.int8(), nullable=False, metadata={"doc": "from g_onboard_mag"}),
        pa.field("d_al_px", pa.float32(), nullable=True,
                 metadata={"unit": "px", "doc": "AL offset from the parent (TDI periods); null for flips"}),
        pa.field("d_ac_px", pa.float32(), nullable=True,
                 metadata={"unit": "px", "doc": "AC offset from the parent; null for flips"}),
        pa.field("samples_kept", pa.int8(), nullable=True,
                 metadata={"doc": "truncated: AL samples read out of the window's WINDOW_SAMPLES; null otherwise"}),
        pa.field("side", pa.string(), nullable=True,
                 metadata={"doc": "truncated: the samples not read out lie at the window's start, end or both "
                                  "(gaiasim.sim.vpu.SIDES); null otherwise"}),
    ]
)


def active(effects) -> bool:
    """Whether any VPU effect is on (else phase A is exactly the generator's without this module)."""
    return bool(effects.onboard_mag or effects.spurious or effects.window_conflicts or effects.blends
                or effects.truncated_windows)


def sigma_onboard(g_mag: np.ndarray) -> np.ndarray:
    """1-sigma error of the on-board G estimate at true G, mag."""
    return np.interp(np.asarray(g_mag, dtype=np.float64), SIGMA_OB_G, SIGMA_OB_MAG)


def onboard_mag(seed: int, transit_id: np.ndarray, g_mag: np.ndarray) -> np.ndarray:
    """G_ob = G + sigma_ob(G) z, z from each transit's own stream (inverse normal CDF of its draw 0)."""
    tid = np.ascontiguousarray(transit_id, dtype=np.int64)
    z = special.ndtri(uniform_array(int(seed) ^ VPU_MAG_STREAM, tid, 0))
    return np.asarray(g_mag, dtype=np.float64) + sigma_onboard(g_mag) * z


def spurious_rate(g_mag: np.ndarray) -> np.ndarray:
    """Mean number of spurious detections around a star of G (0 at and below SPURIOUS_PARENT_G_MAX)."""
    g = np.asarray(g_mag, dtype=np.float64)
    rate = np.minimum(SPURIOUS_MAX, SPURIOUS_AT_13 * 10.0 ** (SPURIOUS_SLOPE * (13.0 - g)))
    return np.where(g < SPURIOUS_PARENT_G_MAX, rate, 0.0)


def _source_draws(seed: int, items: np.ndarray, n: int) -> list[np.ndarray]:
    """Draws 0 .. n-1 of the ghost stream of each item ((source_id << 8) | ghost number)."""
    items = np.ascontiguousarray(items, dtype=np.int64)
    return [uniform_array(int(seed) ^ VPU_SPUR_STREAM, items, c) for c in range(n)]


def ghost_offsets(seed: int, source_id: np.ndarray, g_mag: np.ndarray) -> dict[str, np.ndarray]:
    """The ghosts of parent transits (true G ``g_mag``) of sources ``source_id``: for each ghost its parent's
    row (``parent``), kind (SPIKE or HALO), AL and AC offsets (px; a spike's within half a pixel of its axis)
    and G offset (mag).

    Ghost j of a source is drawn from item ``(source_id << 8) | j`` (j < SPURIOUS_MAX < 255), its count from
    item ``(source_id << 8) | 255``: the pattern is the source's, the count a quantile of Poisson(n_sp(G)) at
    the source's quantile, so every transit of a source shows the same first ghosts."""
    from scipy import stats  # here, not at the top: ~0.5 s of every gaiasim command's start-up otherwise

    source_id = np.asarray(source_id, dtype=np.int64)
    rate = spurious_rate(g_mag)
    (u_count,) = _source_draws(seed, (source_id << 8) | 255, 1)
    count = np.where(rate > 0, stats.poisson.ppf(u_count, np.maximum(rate, 1e-300)), 0)
    count = np.minimum(np.nan_to_num(count), SPURIOUS_MAX).astype(np.int64)
    parent = np.repeat(np.arange(len(source_id)), count)
    j = np.arange(len(parent)) - np.repeat(np.cumsum(count) - count, count)
    u_kind, u_axis, u_r, u_angle, u_dg, u_al, u_ac = _source_draws(seed, (source_id[parent] << 8) | j, 7)
    spike = u_kind < SPIKE_FRACTION
    r_px = SM_SAMPLE_PX * (GHOST_SAMPLES[0] + u_r * (GHOST_SAMPLES[1] - GHOST_SAMPLES[0]))
    # Spikes: along AL or AC, either side; the halo: any direction. Each local maximum lies anywhere in its
    # pixel (GHOST_JITTER_PX): a spike on the AC axis never shares its star's crossing time to the ns.
    angle = np.where(spike, 0.5 * np.pi * np.floor(4.0 * u_axis), 2.0 * np.pi * u_angle)
    d_al = np.rint(r_px * np.cos(angle) * 1e6) / 1e6 + GHOST_JITTER_PX * (u_al - 0.5)
    d_ac = np.rint(r_px * np.sin(angle) * 1e6) / 1e6 + GHOST_JITTER_PX * (u_ac - 0.5)
    return {"parent": parent, "kind": np.where(spike, SPIKE, HALO).astype(np.int8), "d_al_px": d_al,
            "d_ac_px": d_ac, "d_g_mag": GHOST_DG_MAG[0] + u_dg * (GHOST_DG_MAG[1] - GHOST_DG_MAG[0])}


def _reach(t: np.ndarray, group: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order, lo, hi): the detections sorted by ``group`` (a CCD row, or FoV and row), then by time ``t``, and
    for each position p the positions [lo[p], hi[p]) of the detections of its group within ``reach`` of it
    along scan, itself included (what the pair rules of :mod:`gaiasim.sim.kernels_vpu` walk)."""
    order = np.lexsort((t, group))
    ts, gs = t[order], np.asarray(group)[order]
    lo, hi = np.empty(len(t), np.int64), np.empty(len(t), np.int64)
    edges = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1], True]) if len(t) else np.zeros(1, np.int64)
    for first, last in itertools.pairwise(edges):
        seg = ts[first:last]
        lo[first:last] = first + np.searchsorted(seg, seg - reach, side="left")
        hi[first:last] = first + np.searchsorted(seg, seg + reach, side="right")
    return order, lo, hi


def _rank(key: np.ndarray, transit_id: np.ndarray) -> np.ndarray:
    """Priority rank: 0 the highest (the lowest ``key``, then the lowest transit id)."""
    rank = np.empty(len(key), dtype=np.int64)
    rank[np.lexsort((transit_id, key))] = np.arange(len(key))
    return rank


def _best(i: np.ndarray, j: np.ndarray, rank: np.ndarray, n: int) -> np.ndarray:
    """For each detection, the highest-priority ``j`` of its pairs (i, j), -1 when it has none."""
    best = np.full(n, -1, dtype=np.int64)
    order = np.argsort(-rank[j], kind="stable")  # the last written wins: write in decreasing rank
    best[i[order]] = j[order]
    return best


_HALF_AL_NS = np.array([icd.WINDOW_SAMPLES[c] for c in sorted(icd.WINDOW_SAMPLES)]) * fp.TDI_PERIOD_NS / 2


def conflicts(obmt_ns: np.ndarray, ccd_row: np.ndarray, ac_pos_px: np.ndarray, window_class: np.ndarray,
              g_onboard: np.ndarray, transit_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Detections whose centre lies inside the window of a detection of higher priority on the same CCD row:
    (lost, index of the highest-priority such detection or -1).

    A window spans WINDOW_SAMPLES[class] TDI periods along scan and WINDOW_AC_PX pixels across, centred on its
    detection; "inside" is strictly within half of each. Priority: lower ``g_onboard``, then lower transit id.
    ``ac_pos_px``: the AC position in pixels (any origin common to the row)."""
    n = len(obmt_ns)
    if n < 2:
        return np.zeros(n, dtype=bool), np.full(n, -1, dtype=np.int64)
    t = np.asarray(obmt_ns, dtype=np.int64)
    rank = _rank(g_onboard, transit_id)
    blocker = np.empty(n, dtype=np.int64)
    _kv.best_in_reach(_kv.CONFLICT, *_reach(t, np.asarray(ccd_row), float(_HALF_AL_NS.max())), rank, t,
                      np.asarray(ac_pos_px, np.float64), _HALF_AL_NS[np.asarray(window_class, np.int64)],
                      np.array([WINDOW_AC_HALF_PX]), blocker)
    return blocker >= 0, blocker


def blends(obmt_ns: np.ndarray, fov: np.ndarray, ccd_row: np.ndarray, zeta_rad: np.ndarray, g_mag: np.ndarray,
           transit_id: np.ndarray) -> np.ndarray:
    """For each detection, the one whose window gets its flux, -1 when it keeps its own (the primary).

    Two detections of one FoV and CCD row closer than the resolution limit, (dAL / :data:`BLEND_AL_ARCSEC`)^2 +
    (dAC / :data:`BLEND_AC_ARCSEC`)^2 < 1 (dAL from their crossing times at the scan rate, dAC from their
    field angles), are one detection: the fainter (higher ``g_mag``, then higher transit id) goes into the
    brightest such neighbour, and a chain (a neighbour itself blended into a brighter one) ends at its first
    detection that keeps its window."""
    n = len(obmt_ns)
    into = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return into
    t = np.asarray(obmt_ns, dtype=np.int64)
    zeta = np.asarray(zeta_rad, dtype=np.float64)
    rank = _rank(g_mag, transit_id)
    _kv.best_in_reach(_kv.BLEND, *_reach(t, np.asarray(fov, np.int64) * 8 + np.asarray(ccd_row, np.int64),
                                         _BLEND_AL_NS), rank, t, zeta, np.zeros(n),
                      np.array([BLEND_AL_ARCSEC, BLEND_AC_ARCSEC, fp.SCAN_RATE_ARCSEC_S, fp.ARCSEC_RAD]), into)
    while True:  # follow chains to their end (priority falls along one: it ends)
        chained = (into >= 0) & (into[np.maximum(into, 0)] >= 0)
        if not chained.any():
            return into
        into[chained] = into[into[chained]]


def truncations(obmt_ns: np.ndarray, window_ns: np.ndarray, ccd_row: np.ndarray, ac_pos_px: np.ndarray,
                window_class: np.ndarray, g_onboard: np.ndarray, transit_id: np.ndarray,
                has_window: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The AL samples of each window not read out because they lie in the window of a detection of higher
    priority on its CCD row: (at its start, at its end, the highest-priority such detection or -1).

    A window of class c has WINDOW_SAMPLES[c] AL samples; sample k is centred ``(k - (n - 1) / 2)`` TDI periods
    after its ``window_ns`` (the transit id's time) and is not read out when that centre lies in
    [w - n' / 2, w + n' / 2) TDI periods of a window (centre w, n' samples) that has higher priority (lower
    ``g_onboard``, then lower transit id), keeps a window (``has_window``), has its AC centre within
    :data:`WINDOW_AC_HALF_PX` of this one's and does not hold this one's centre (``obmt_ns`` at least half its
    length away along scan: that one would be lost, :func:`conflicts`). A window after it loses its start,
    one before it its end. Integer arithmetic (in half TDI periods): exact."""
    n = len(obmt_ns)
    cut = np.zeros((n, 2), dtype=np.int64)
    faces = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return cut[:, 0], cut[:, 1], faces
    t = np.asarray(obmt_ns, dtype=np.int64)
    w = np.asarray(window_ns, dtype=np.int64)
    rank = _rank(g_onboard, transit_id)
    length = np.array([icd.WINDOW_SAMPLES[c] for c in sorted(icd.WINDOW_SAMPLES)])[np.asarray(window_class, np.int64)]
    _kv.truncation_cuts(*_reach(t, np.asarray(ccd_row), 2 * float(_HALF_AL_NS.max())
                                + 2 * icd.TRANSIT_ID_OBMT_QUANTUM_NS), t, w, np.asarray(ac_pos_px, np.float64),
                        _HALF_AL_NS[np.asarray(window_class, np.int64)], length, rank,
                        np.asarray(has_window, dtype=np.bool_), WINDOW_AC_HALF_PX, np.int64(fp.TDI_PERIOD_NS), cut,
                        faces)
    return cut[:, 0], cut[:, 1], faces


_ARRAYS = ("transit_id", "kind", "source_id", "parent_transit_id", "obmt_ns", "fov", "ccd_row", "ac_px", "g_mag",
           "g_onboard_mag", "window_class", "d_al_px", "d_ac_px", "samples_kept", "side")
#: The arrays of a window's blend partner and truncation that :func:`on_board` adds to its windows (for
#: :func:`gaiasim.sim.signal.make_windows` ``blend`` and ``not_read``): no partner is NaN, no truncation 0.
WINDOW_EXTRAS = ("blend_g_mag", "blend_bp_rp", "blend_d_al_px", "blend_d_ac_px", "cut_start", "cut_end")


def _artefact_rows(kind: int | np.ndarray, tr: dict, sel: np.ndarray, parent: np.ndarray, d_al: np.ndarray,
                   d_ac: np.ndarray, kept: np.ndarray | None = None, side: np.ndarray | None = None
                   ) -> dict[str, np.ndarray]:
    m = len(sel)
    none = np.full(m, -1, np.int8)
    return {"transit_id": tr["transit_id"][sel], "kind": np.broadcast_to(np.asarray(kind, np.int8), (m,)).copy(),
            "source_id": tr["source_id"][sel], "parent_transit_id": np.asarray(parent, np.int64),
            "obmt_ns": tr["obmt_ns"][sel], "fov": tr["fov"][sel], "ccd_row": tr["ccd_row"][sel],
            "ac_px": tr["ac_px"][sel], "g_mag": tr["g_mag"][sel], "g_onboard_mag": tr["g_onboard_mag"][sel],
            "window_class": tr["window_class"][sel], "d_al_px": np.asarray(d_al, np.float64),
            "d_ac_px": np.asarray(d_ac, np.float64),
            "samples_kept": none if kept is None else np.asarray(kept, np.int8),
            "side": none if side is None else np.asarray(side, np.int8)}


def _blend(tr: dict[str, np.ndarray], ts: int, te: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The detections of ``tr`` less those blended into a brighter one (:func:`blends`), each primary with its
    partner's light (:data:`WINDOW_EXTRAS` ``blend_*``; several partners: their summed flux at their
    flux-weighted offset, the brightest one's colour [U: three stars within 0.23 arcsec are rare]), and the
    blended detections of [ts, te) with their primary's transit id and offsets (px)."""
    n = len(tr["transit_id"])
    into = blends(tr["obmt_ns"], tr["fov"], tr["ccd_row"], tr["zeta_rad"], tr["g_mag"], tr["transit_id"])
    sec = np.flatnonzero(into >= 0)
    prim = into[sec]
    d_al = (tr["obmt_ns"][sec] - tr["obmt_ns"][prim]) / fp.TDI_PERIOD_NS
    d_ac = (tr["zeta_rad"][sec] - tr["zeta_rad"][prim]) / fp.PIXEL_AC_RAD
    flux = 10.0 ** (-0.4 * tr["g_mag"][sec])
    total = np.zeros(n)
    np.add.at(total, prim, flux)
    w_al, w_ac = np.zeros(n), np.zeros(n)
    np.add.at(w_al, prim, flux * d_al)
    np.add.at(w_ac, prim, flux * d_ac)
    brightest = _best(prim, sec, _rank(tr["g_mag"], tr["transit_id"]), n)
    has = total > 0
    safe = np.where(has, total, 1.0)
    extras = {"blend_g_mag": np.where(has, -2.5 * np.log10(safe), np.nan),
              "blend_bp_rp": np.where(has, tr["bp_rp"][np.maximum(brightest, 0)], np.nan),
              "blend_d_al_px": np.where(has, w_al / safe, np.nan), "blend_d_ac_px": np.where(has, w_ac / safe, np.nan),
              "cut_start": np.zeros(n, np.int8), "cut_end": np.zeros(n, np.int8)}
    mine = (tr["obmt_ns"][sec] >= ts) & (tr["obmt_ns"][sec] < te)
    blended = {**_take(tr, sec[mine]), "parent_transit_id": tr["transit_id"][prim[mine]], "d_al_px": d_al[mine],
               "d_ac_px": d_ac[mine]}
    keep = into < 0
    return {**_take(tr, keep), **{k: v[keep] for k, v in extras.items()}}, blended


def _held(ids: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Which ``ids`` occur in ``among``: ``np.isin``'s answer from one sort of ``among`` and a binary search
    (isin sorts both arrays and then their concatenation: ~0.6 us a transit of the full-scale day)."""
    held = np.sort(among)
    if not len(held):
        return np.zeros(len(ids), dtype=bool)
    return held[np.minimum(np.searchsorted(held, ids), len(held) - 1)] == ids


def _take(tr: dict, sel: np.ndarray) -> dict:
    return {k: v[sel] for k, v in tr.items()}


def on_board(seed: int, effects, tr: dict[str, np.ndarray], ts: int, te: int, dead: np.ndarray
             ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, int]]:
    """The VPU of slice [ts, te): from its detections (and a :data:`HALO_NS` halo each side) to its windows.

    ``tr``: the detections outside dead time, one per transit id, in (time, transit id) order, with
    ``obmt_ns, fov, zeta_rad, source_id, g_mag, bp_rp, transit_id, ccd_row, ac_px``. ``dead``: the dead
    intervals (ghosts falling there are not detected). Returns the windows of [ts, te) in the same order with
    ``window_class``, ``gate`` and :data:`WINDOW_EXTRAS` added (after the G-dependent data loss), their
    ``truth/artefacts`` rows (arrays of :data:`TRUTH_ARTEFACTS` columns, ``kind`` and ``side`` as codes of
    :data:`KINDS` and :data:`SIDES`), and the counts of the slice: ``lost_on_board`` (data loss),
    ``lost_conflict``, ``spurious`` (ghosts sent down), ``blended`` and ``truncated`` (windows sent down).
    """
    n_real = len(tr["transit_id"])
    tr = {**tr, "parent_transit_id": np.full(n_real, -1, np.int64), "kind": np.full(n_real, -1, np.int8),
          "d_al_px": np.full(n_real, np.nan), "d_ac_px": np.full(n_real, np.nan)}
    blended = None
    if effects.blends:
        tr, blended = _blend(tr, ts, te)
    else:
        tr.update({k: np.full(n_real, np.nan) for k in WINDOW_EXTRAS[:4]})
    tr.update(cut_start=np.zeros(len(tr["transit_id"]), np.int8), cut_end=np.zeros(len(tr["transit_id"]), np.int8))
    if effects.spurious:
        bright = np.flatnonzero(tr["g_mag"] < SPURIOUS_PARENT_G_MAX)
        gh = ghost_offsets(seed, tr["source_id"][bright], tr["g_mag"][bright])
        p = bright[gh["parent"]]
        g = tr["g_mag"][p] + gh["d_g_mag"]
        t = tr["obmt_ns"][p] + np.rint(gh["d_al_px"] * fp.TDI_PERIOD_NS).astype(np.int64)
        zeta = tr["zeta_rad"][p] + gh["d_ac_px"] * fp.PIXEL_AC_RAD
        row = fp.ccd_row_of_zeta(zeta)
        # Detected if bright enough, on the parent's CCD row (its VPU), outside dead time.
        ok = (g < DETECTION_G_LIMIT) & (row == tr["ccd_row"][p]) & ~onboard.in_dead_time(t, dead)
        p, g, t, zeta, row = p[ok], g[ok], t[ok], zeta[ok], row[ok]
        ac_px = fp.ac_px_of_zeta(zeta, row)
        m = len(p)
        ghost = {"obmt_ns": t, "fov": tr["fov"][p], "zeta_rad": zeta,
                 "source_id": ARTEFACT_SOURCE_ID_BASE + tr["source_id"][p], "g_mag": g, "bp_rp": tr["bp_rp"][p],
                 "transit_id": icd.encode_transit_id(t, tr["fov"][p], row, ac_px), "ccd_row": row.astype(np.int8),
                 "ac_px": ac_px.astype(np.int16), "parent_transit_id": tr["transit_id"][p], "kind": gh["kind"][ok],
                 "d_al_px": gh["d_al_px"][ok], "d_ac_px": gh["d_ac_px"][ok],
                 **{k: np.full(m, np.nan) for k in WINDOW_EXTRAS[:4]}, "cut_start": np.zeros(m, np.int8),
                 "cut_end": np.zeros(m, np.int8)}
        # A ghost whose transit id a real detection holds is not seen; of ghosts sharing one, the brightest.
        order = np.lexsort((ghost["g_mag"], ghost["transit_id"]))
        first = order[np.r_[True, ghost["transit_id"][order][1:] != ghost["transit_id"][order][:-1]]] \
            if len(order) else order
        first = first[~_held(ghost["transit_id"][first], tr["transit_id"])]
        ghost = {k: v[first] for k, v in ghost.items()}
        tr = {k: np.concatenate([v, ghost[k].astype(v.dtype)]) for k, v in tr.items()}
        order = np.lexsort((tr["transit_id"], tr["obmt_ns"]))
        tr = _take(tr, order)
    # The on-board magnitude of a blend is the pair's (one image).
    g_seen = tr["g_mag"]
    if effects.blends:
        pair = np.isfinite(tr["blend_g_mag"])
        g_seen = np.where(pair, -2.5 * np.log10(10.0 ** (-0.4 * tr["g_mag"]) + 10.0 ** (-0.4 * np.where(
            pair, tr["blend_g_mag"], 99.0))), tr["g_mag"])
    tr["g_onboard_mag"] = onboard_mag(seed, tr["transit_id"], g_seen) if effects.onboard_mag else g_seen
    tr["window_class"] = signal.window_class_of(tr["g_onboard_mag"])
    tr["gate"] = signal.gate_of(tr["g_onboard_mag"])
    in_slice = (tr["obmt_ns"] >= ts) & (tr["obmt_ns"] < te)
    rows: list[dict[str, np.ndarray]] = []
    if blended is not None and len(blended["transit_id"]):  # the detection whose window took its light
        order = np.argsort(tr["transit_id"], kind="stable")
        at = order[np.searchsorted(tr["transit_id"], blended["parent_transit_id"], sorter=order)]
        blended.update(g_onboard_mag=tr["g_onboard_mag"][at], window_class=tr["window_class"][at])
        rows.append(_artefact_rows(BLENDED, blended, np.arange(len(at)), blended["parent_transit_id"],
                                   blended["d_al_px"], blended["d_ac_px"]))
    n_blended = len(rows[0]["transit_id"]) if rows else 0
    ac_pos = (tr["zeta_rad"] - fp.ZETA_MIN_RAD) / fp.PIXEL_AC_RAD
    n_conflict = 0
    if effects.window_conflicts:
        lost, blocker = conflicts(tr["obmt_ns"], tr["ccd_row"], ac_pos, tr["window_class"], tr["g_onboard_mag"],
                                  tr["transit_id"])
        sel = np.flatnonzero(lost & in_slice)
        b = blocker[sel]
        rows.append(_artefact_rows(LOST_CONFLICT, tr, sel, tr["transit_id"][b],
                                   (tr["obmt_ns"][sel] - tr["obmt_ns"][b]) / fp.TDI_PERIOD_NS, ac_pos[sel] - ac_pos[b]))
        n_conflict = len(sel)
        tr, in_slice, ac_pos = _take(tr, ~lost), in_slice[~lost], ac_pos[~lost]
    faced = None
    if effects.truncated_windows:
        window_ns = icd.decode_transit_id(tr["transit_id"])[0]
        start, end, faces = truncations(tr["obmt_ns"], window_ns, tr["ccd_row"], ac_pos, tr["window_class"],
                                        tr["g_onboard_mag"], tr["transit_id"], np.ones(len(ac_pos), bool))
        tr["cut_start"], tr["cut_end"] = start.astype(np.int8), end.astype(np.int8)
        f = np.maximum(faces, 0)  # the window each one faces: its id and offsets (before the data loss)
        faced = (np.where(faces >= 0, tr["transit_id"][f], -1), (tr["obmt_ns"] - tr["obmt_ns"][f]) / fp.TDI_PERIOD_NS,
                 ac_pos - ac_pos[f])
    gone = onboard.lost(seed, tr["transit_id"], tr["g_mag"])
    n_lost = int(np.sum(gone & in_slice))
    kept = ~gone & in_slice
    tr = _take(tr, kept)
    ghosts = np.flatnonzero(tr["kind"] >= 0)
    rows.append(_artefact_rows(tr["kind"][ghosts], tr, ghosts, tr["parent_transit_id"][ghosts],
                               tr["d_al_px"][ghosts], tr["d_ac_px"][ghosts]))
    n_truncated = 0
    if faced is not None:
        face_tid, face_al, face_ac = (v[kept] for v in faced)
        sel = np.flatnonzero(face_tid >= 0)
        n = np.array([icd.WINDOW_SAMPLES[c] for c in sorted(icd.WINDOW_SAMPLES)])[tr["window_class"][sel]]
        lo, hi = tr["cut_start"][sel].astype(np.int64), tr["cut_end"][sel].astype(np.int64)
        side = np.where((lo > 0) & (hi > 0), SIDES.index("both"), np.where(lo > 0, SIDES.index("start"),
                                                                           SIDES.index("end")))
        rows.append(_artefact_rows(TRUNCATED, tr, sel, face_tid[sel], face_al[sel], face_ac[sel],
                                   np.maximum(n - lo - hi, 0), side))
        n_truncated = len(sel)
    true_class, true_gate = signal.window_class_of(tr["g_mag"]), signal.gate_of(tr["g_mag"])
    for kind, flipped in ((CLASS_FLIP, true_class != tr["window_class"]),
                          (GATE_FLIP, (true_class == tr["window_class"]) & (true_gate != tr["gate"]))):
        sel = np.flatnonzero(flipped)
        rows.append(_artefact_rows(kind, tr, sel, np.full(len(sel), -1), np.full(len(sel), np.nan),
                                   np.full(len(sel), np.nan)))
    artefacts = {k: np.concatenate([r[k] for r in rows]) for k in _ARRAYS}
    out = {k: tr[k] for k in ("obmt_ns", "fov", "zeta_rad", "source_id", "g_mag", "bp_rp", "transit_id", "ccd_row",
                              "ac_px", "window_class", "gate", *WINDOW_EXTRAS)}
    return out, artefacts, {"lost_on_board": n_lost, "lost_conflict": n_conflict, "spurious": len(ghosts),
                            "blended": n_blended, "truncated": n_truncated}


def artefact_table(arrays: dict[str, np.ndarray]) -> pa.Table:
    """The ``truth/artefacts`` part of arrays from :func:`on_board` (``kind`` codes to names, nulls)."""
    kinds = np.array(KINDS, dtype=object)
    parent = arrays["parent_transit_id"]
    cols = {name: arrays[name] for name in _ARRAYS}
    cols["kind"] = kinds[arrays["kind"].astype(np.int64)] if len(parent) else np.empty(0, object)
    cols["parent_transit_id"] = pa.array(parent, pa.int64(), mask=parent < 0)
    kept, side = arrays["samples_kept"], arrays["side"].astype(np.int64)
    cols["samples_kept"] = pa.array(kept, pa.int8(), mask=kept < 0)
    cols["side"] = pa.array(np.array(SIDES, dtype=object)[np.maximum(side, 0)] if len(side) else np.empty(0, object),
                            pa.string(), mask=side < 0)
    for name in ("d_al_px", "d_ac_px"):
        cols[name] = pa.array(arrays[name].astype(np.float32), pa.float32(), mask=np.isnan(arrays[name]))
    return pa.table({f.name: cols[f.name] if isinstance(cols[f.name], pa.Array)
                     else pa.array(cols[f.name], f.type) for f in TRUTH_ARTEFACTS}, schema=TRUTH_ARTEFACTS)
