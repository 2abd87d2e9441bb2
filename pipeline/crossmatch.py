"""Crossmatch: each transit to the best reference-catalogue source within a radius.

A simplified form of IDT's preliminary crossmatch (docs/facts.md section 4, Torra+2021): the provisional
observation-to-source match. Transits without a source within the radius are new-source candidates
(``source_id`` null and :data:`FLAG_UNMATCHED`). The index is a 3D grid on unit vectors with cells two
radius chords wide, sorted by cell key (numba), so a query looks at the 8 cells nearest to it whatever the
sky density.

The candidates within the radius are ranked by a score, not by distance alone: the squared distance in
units of the transit's position error plus the squared magnitude difference in units of the expected
scatter (:func:`candidates`). A transit's AC position is only as good as its window's AC pixel (177 mas),
so in a close pair (a few per thousand sources, many more in the bulge) the nearest source is often the
wrong one; the two differ in magnitude far more than a transit's G error. Measured on the full-scale day
(``nox -s fullday``): nearest-only matching raised 152 false alerts (2.1 per 10^6 transits, against <= 1)
from such pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.geometry import MAS_RAD
from pipeline.kernels import crossmatch as _k

#: Smallest radius whose grid keys fit 64 bits ((2 / chord + 5)^3 < 2^63 needs a chord > 9.5e-7 rad).
MIN_RADIUS_MAS = 200.0
#: Largest crossmatch radius, mas (1 deg: the sky index's cells).
MAX_RADIUS_MAS = 3.6e6
#: Transit flag: no catalogue source within the match radius (a new-source candidate).
FLAG_UNMATCHED = 1 << 16
#: Position error of a transit in the match score, mas: its AC position is the AC pixel of its window
#: (177 mas wide, so uniform within +-88 mas: 51 mas rms; the AL error is ~1 mas), plus catalogue errors.
#: On the full-scale day, 99.9 % of correct matches lie within 88 mas.
POSITION_SIGMA_MAS = 60.0
#: Magnitude scatter floor of the match score, mag, added in quadrature to the catalogue source's G scatter
#: (variables) and the transit's G error: calibration residuals and the 1 % of transits with G errors above
#: their formal ones (full-scale day: 98 % of correct matches agree within 0.04 mag).
MAG_FLOOR_MAG = 0.2


#: Grid cell size of the index, in chords of the match radius (a little over 2: see build_index).
CELL_CHORDS = 2.000001


@dataclass(frozen=True)
class SkyIndex:
    u_sorted: np.ndarray  # (n, 3) catalogue unit vectors, sorted by cell key
    keys_sorted: np.ndarray  # int64 cell keys, ascending
    order: np.ndarray  # row of the catalogue for each sorted row
    inv_h: float
    offset: int
    n: int
    radius_mas: float
    g_sorted: np.ndarray  # catalogue G, mag (NaN without magnitudes)
    g_var_sorted: np.ndarray  # catalogue G scatter^2 + MAG_FLOOR_MAG^2, mag^2


def build_index(u_ref: np.ndarray, radius_mas: float, g_mag: np.ndarray | None = None,
                g_mag_sigma: np.ndarray | None = None) -> SkyIndex:
    """Index catalogue unit vectors (n, 3) for matches within ``radius_mas``; with the sources' mean G
    and its scatter (mag) when candidates are to be ranked by magnitude too (:func:`candidates`)."""
    u_ref = np.asarray(u_ref, dtype=np.float64).reshape(-1, 3)  # any strides (a RECORD column, say)
    m = len(u_ref)
    if not MIN_RADIUS_MAS <= radius_mas < MAX_RADIUS_MAS:
        raise ValueError(f"match radius {radius_mas} mas must lie in [{MIN_RADIUS_MAS:g} mas, 1 deg)")
    # Cells two radius chords wide (and a hair more, against rounding): every source within the radius of a
    # query lies in the 2 x 2 x 2 cells nearest to it (kernels._best_two), 4 binary searches, not 9.
    h = CELL_CHORDS * 2.0 * np.sin(0.5 * radius_mas * MAS_RAD)
    inv_h = 1.0 / h
    offset = int(np.ceil(inv_h)) + 2
    n = 2 * offset + 1
    keys = np.empty(m, dtype=np.int64)
    _k._cell_keys(u_ref, inv_h, offset, n, keys)
    # The stable order of the keys: numpy's quicksort (SIMD) and then equal keys in row order, ~3x faster
    # than its stable sort on a full-scale slice's ~2 M sources (0.05 s against 0.18 s).
    order = np.argsort(keys)
    keys_sorted = np.empty(m, dtype=np.int64)
    _k._sort_ties_by_row(keys, order, keys_sorted)
    g = np.full(m, np.nan) if g_mag is None else np.asarray(g_mag)
    sigma = np.zeros(m) if g_mag_sigma is None else np.asarray(g_mag_sigma)
    u_sorted, g_sorted, g_var_sorted = np.empty((m, 3)), np.empty(m), np.empty(m)
    _k._gather_sorted(order, u_ref, g, sigma, MAG_FLOOR_MAG**2, u_sorted, g_sorted, g_var_sorted)
    return SkyIndex(u_sorted, keys_sorted, order, inv_h, offset, n, radius_mas, g_sorted, g_var_sorted)


@dataclass(frozen=True)
class Candidates:
    """The best two catalogue sources of each query, best first (column 0), by match score."""

    row: np.ndarray  # (n, 2) catalogue row, -1 where there is no such candidate
    sep_mas: np.ndarray  # (n, 2) distance, NaN where no candidate
    score: np.ndarray  # (n, 2) (distance / POSITION_SIGMA_MAS)^2 + (dG / sigma_G)^2, inf where no candidate


def candidates(index: SkyIndex, u_query: np.ndarray, g_mag: np.ndarray | None = None,
               g_mag_err: np.ndarray | None = None) -> Candidates:
    """The two best sources within the radius of each query direction.

    score = (distance / :data:`POSITION_SIGMA_MAS`)^2 + (G - G_cat)^2 / (G_err^2 + scatter_cat^2 +
    :data:`MAG_FLOOR_MAG`^2); the magnitude term counts only where the query and the index have magnitudes
    (finite), so without them the best candidate is the nearest source.
    """
    u_query = np.ascontiguousarray(u_query, dtype=np.float64).reshape(-1, 3)
    m = len(u_query)
    g = np.full(m, np.nan) if g_mag is None else np.ascontiguousarray(g_mag, dtype=np.float64)
    err = np.zeros(m) if g_mag_err is None else np.nan_to_num(np.asarray(g_mag_err, dtype=np.float64))
    best = np.empty((m, 2), dtype=np.int64)
    score = np.empty((m, 2), dtype=np.float64)
    chord2 = np.empty((m, 2), dtype=np.float64)
    inv_var_pos = 1.0 / (POSITION_SIGMA_MAS * MAS_RAD) ** 2  # chord = angle at these scales (1e-11 relative)
    chord2_radius = (2.0 * np.sin(0.5 * index.radius_mas * MAS_RAD)) ** 2
    _k._best_two(u_query, g, err * err, index.u_sorted, index.g_sorted, index.g_var_sorted, index.keys_sorted,
                 index.inv_h, index.offset, index.n, chord2_radius, inv_var_pos, best, score, chord2)
    found = best >= 0
    row = np.where(found, index.order[np.maximum(best, 0)], -1) if len(index.order) else np.full((m, 2), -1)
    # Separation from the chord (stable for small angles, unlike arccos of a cosine near 1).
    sep_mas = 2.0 * np.arcsin(np.clip(0.5 * np.sqrt(chord2), 0, 1)) / MAS_RAD
    return Candidates(row, sep_mas, score)


def nearest(index: SkyIndex, u_query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(catalogue row or -1, separation in mas or NaN) of the nearest source to each query direction."""
    c = candidates(index, u_query)
    return c.row[:, 0], c.sep_mas[:, 0]


def brightest(index: SkyIndex, u_query: np.ndarray) -> np.ndarray:
    """The catalogue row of the brightest source (least finite G) within the index's radius of each query
    direction, -1 where there is none (on a tie of G the nearer one). The index needs the sources' G."""
    u_query = np.ascontiguousarray(u_query, dtype=np.float64).reshape(-1, 3)
    best = np.empty(len(u_query), dtype=np.int64)
    chord2_radius = (2.0 * np.sin(0.5 * index.radius_mas * MAS_RAD)) ** 2
    _k._brightest_within(u_query, index.u_sorted, index.g_sorted, index.keys_sorted, index.inv_h, index.offset,
                         index.n, chord2_radius, best)
    return np.where(best >= 0, index.order[np.maximum(best, 0)], -1) if len(index.order) else np.full(len(best), -1)


#: Transit flag: another transit of the same scan took this one's best candidate (it then has its second
#: candidate, or is left unmatched: see :func:`resolve_conflicts`).
FLAG_MATCH_CONFLICT = 1 << 19
#: Two transits of one source in one field of view this close in time belong to the same scan, ns (a
#: source crosses the focal plane once per scan, in ~50 s; the next scan of a FoV comes 6 h later).
SCAN_WINDOW_NS = 60_000_000_000


def _scan_winners(row: np.ndarray, score: np.ndarray, fov: np.ndarray, obmt_ns: np.ndarray) -> np.ndarray:
    """Of the transits of one scan (same FoV, within :data:`SCAN_WINDOW_NS`) holding the same catalogue row,
    the one with the lowest score (the earliest on a tie) wins; returns the rows with the losers set to -1."""
    row = row.copy()
    m = np.flatnonzero(row >= 0)
    if len(m) < 2:
        return row
    order = m[np.lexsort((obmt_ns[m], fov[m], row[m]))]
    r, f, t = row[order], fov[order], obmt_ns[order]
    new_scan = np.r_[True, (r[1:] != r[:-1]) | (f[1:] != f[:-1]) | (t[1:] - t[:-1] > SCAN_WINDOW_NS)]
    scan = np.cumsum(new_scan)
    best = np.lexsort((t, score[order], scan))  # per scan: best score, then earliest
    winner = np.zeros(len(order), dtype=bool)
    winner[best[np.r_[True, scan[best][1:] != scan[best][:-1]]]] = True
    row[order[~winner]] = -1
    return row


def resolve_conflicts(c: Candidates, fov: np.ndarray, obmt_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                                      np.ndarray]:
    """Within a scan a source is seen once: of the transits of one scan matched to the same source the best
    score keeps it; each loser then takes its second candidate if no transit of the scan holds that one
    (the best score among losers wanting it wins), else it is left unmatched (a new-source candidate).

    Returns (catalogue row or -1, separation in mas or NaN, lost its first candidate).
    """
    first = _scan_winners(c.row[:, 0], c.score[:, 0], fov, obmt_ns)
    lost = (c.row[:, 0] >= 0) & (first < 0)
    # Second round: the winners keep their sources (score -1 beats every loser's); losers compete for seconds.
    trial = np.where(lost, c.row[:, 1], first)
    final = _scan_winners(trial, np.where(lost, c.score[:, 1], -1.0), fov, obmt_ns)
    second = lost & (final >= 0)
    sep = np.where(second, c.sep_mas[:, 1], np.where(final >= 0, c.sep_mas[:, 0], np.nan))
    return final, sep, lost
