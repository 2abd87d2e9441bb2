"""Crossmatch: each transit to the nearest reference-catalogue source within a radius.

A simplified form of IDT's preliminary crossmatch (FACTS.md section 4, Torra+2021): the provisional
observation-to-source match. Transits without a source within the radius are new-source candidates
(``source_id`` null and :data:`FLAG_UNMATCHED`). The index is a 3D grid on unit vectors with cells one
radius wide, sorted by cell key (numba), so a query looks at 27 cells whatever the sky density.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.geometry import MAS_RAD
from pipeline.kernels import crossmatch as _k

#: Smallest radius whose grid keys fit 64 bits ((2 / chord + 5)^3 < 2^63 needs a chord > 9.5e-7 rad).
MIN_RADIUS_MAS = 200.0
#: Transit flag: no catalogue source within the match radius (a new-source candidate).
FLAG_UNMATCHED = 1 << 16


@dataclass(frozen=True)
class SkyIndex:
    u_sorted: np.ndarray  # (n, 3) catalogue unit vectors, sorted by cell key
    keys_sorted: np.ndarray  # int64 cell keys, ascending
    order: np.ndarray  # row of the catalogue for each sorted row
    inv_h: float
    offset: int
    n: int
    radius_mas: float


def build_index(u_ref: np.ndarray, radius_mas: float) -> SkyIndex:
    """Index catalogue unit vectors (n, 3) for matches within ``radius_mas``."""
    u_ref = np.ascontiguousarray(u_ref, dtype=np.float64).reshape(-1, 3)
    if not MIN_RADIUS_MAS <= radius_mas < 3.6e6:
        raise ValueError(f"match radius {radius_mas} mas must lie in [{MIN_RADIUS_MAS:g} mas, 1 deg)")
    h = 2.0 * np.sin(0.5 * radius_mas * MAS_RAD)  # chord of the radius
    inv_h = 1.0 / h
    offset = int(np.ceil(inv_h)) + 2
    n = 2 * offset + 1
    keys = np.empty(len(u_ref), dtype=np.int64)
    _k._cell_keys(u_ref, inv_h, offset, n, keys)
    order = np.argsort(keys, kind="stable")
    return SkyIndex(np.ascontiguousarray(u_ref[order]), keys[order], order, inv_h, offset, n, radius_mas)


def nearest(index: SkyIndex, u_query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(catalogue row or -1, separation in mas or NaN) of the nearest source to each query direction."""
    u_query = np.ascontiguousarray(u_query, dtype=np.float64).reshape(-1, 3)
    best = np.empty(len(u_query), dtype=np.int64)
    best_cos = np.empty(len(u_query), dtype=np.float64)
    cos_radius = np.cos(index.radius_mas * MAS_RAD)
    _k._nearest(u_query, index.u_sorted, index.keys_sorted, index.inv_h, index.offset, index.n, cos_radius,
                best, best_cos)
    found = best >= 0
    row = np.where(found, index.order[np.maximum(best, 0)], -1) if len(index.order) else np.full(len(best), -1)
    # Separation from the chord (stable for small angles, unlike arccos of a cosine near 1).
    chord = np.linalg.norm(u_query - index.u_sorted[np.maximum(best, 0)], axis=1) if len(index.order) else best_cos
    sep_mas = np.where(found, 2.0 * np.arcsin(np.clip(0.5 * chord, 0, 1)) / MAS_RAD, np.nan)
    return row, sep_mas


#: Transit flag: another transit of the same scan matched the same source more closely (left unmatched).
FLAG_MATCH_CONFLICT = 1 << 19
#: Two transits of one source in one field of view this close in time belong to the same scan, ns (a
#: source crosses the focal plane once per scan, in ~50 s; the next scan of a FoV comes 6 h later).
SCAN_WINDOW_NS = 60_000_000_000


def resolve_conflicts(row: np.ndarray, sep_mas: np.ndarray, fov: np.ndarray, obmt_ns: np.ndarray) -> np.ndarray:
    """Within a scan a source is seen once: of the transits of one scan (same FoV, within
    :data:`SCAN_WINDOW_NS`) matched to the same catalogue row, keep the closest (the earliest on a tie).

    Returns the rows with the losers set to -1 (they become new-source candidates).
    """
    row = np.asarray(row, dtype=np.int64).copy()
    m = np.flatnonzero(row >= 0)
    if len(m) < 2:
        return row
    order = m[np.lexsort((obmt_ns[m], fov[m], row[m]))]
    r, f, t = row[order], fov[order], obmt_ns[order]
    new_scan = np.r_[True, (r[1:] != r[:-1]) | (f[1:] != f[:-1]) | (t[1:] - t[:-1] > SCAN_WINDOW_NS)]
    scan = np.cumsum(new_scan)
    best = np.lexsort((t, sep_mas[order], scan))  # per scan: closest, then earliest
    winner = np.zeros(len(order), dtype=bool)
    winner[best[np.r_[True, scan[best][1:] != scan[best][:-1]]]] = True
    row[order[~winner]] = -1
    return row
