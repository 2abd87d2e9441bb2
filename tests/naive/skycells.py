"""Plain numpy reference of ``pipeline.skycells.cells_within`` (the four corners of each position's box
through ``cell_of``, then ``np.unique``), as the pipeline computed it before its numba kernel; and the whole rows of
cells a box as wide as a cell spans."""

from __future__ import annotations

import numpy as np

from pipeline.skycells import CELL_DEG, N_DEC, N_RA, cell_of


def cells_within_naive(ra_deg: np.ndarray, dec_deg: np.ndarray, radius_deg: float) -> np.ndarray:
    ra, dec = np.asarray(ra_deg, dtype=np.float64), np.asarray(dec_deg, dtype=np.float64)
    lo, hi = dec - radius_deg, dec + radius_deg
    cos_edge = np.cos(np.radians(np.minimum(np.maximum(np.abs(lo), np.abs(hi)), 90.0)))
    dra = np.minimum(radius_deg / np.maximum(cos_edge, 1e-12), 180.0)
    out = [cell_of(ra + s_ra * dra, d) for s_ra in (-1.0, 1.0) for d in (lo, hi)]
    rows = np.unique(np.concatenate(out) // N_RA) if len(ra) else np.empty(0, np.int64)
    polar = rows[(rows == 0) | (rows == N_DEC - 1)]
    out += [p * N_RA + np.arange(N_RA) for p in polar]
    # A box as wide as a cell: the whole rows of cells between its lowest and highest corner.
    for i in np.flatnonzero((2.0 * dra >= CELL_DEG) | (2.0 * radius_deg >= CELL_DEG)):
        first, last = (int(cell_of(ra[i], d) // N_RA) for d in (lo[i], hi[i]))
        out += [np.arange(first * N_RA, (last + 1) * N_RA)]
    return np.unique(np.concatenate(out)) if len(ra) else np.empty(0, np.int64)
