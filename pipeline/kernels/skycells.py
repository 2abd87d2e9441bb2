"""Numba kernel of the sky cells (pipeline.skycells): the cells a set of match circles touches."""

from __future__ import annotations

import math

from pipeline.kernels import jit


@jit
def _mark_cells(ra_deg, lo_deg, hi_deg, dra_deg, cell_deg, n_ra, n_dec, marked):
    """Set ``marked[c]`` for the cells of the 4 corners (ra -+ dra, lo and hi) of each position's box, and
    for every cell of a polar row of cells that a corner falls in (row 0 or ``n_dec - 1``). The cell of
    (ra, dec) is ``row * n_ra + col`` with ``row = clip(floor((dec + 90) / cell_deg), 0, n_dec - 1)`` and
    ``col = floor((ra mod 360) / cell_deg) mod n_ra``, as ``pipeline.skycells.cell_of`` computes it."""
    for i in range(ra_deg.shape[0]):
        for s in (-1.0, 1.0):
            col = math.floor(((ra_deg[i] + s * dra_deg[i]) % 360.0) / cell_deg) % n_ra
            for d in (lo_deg[i], hi_deg[i]):
                row = min(max(math.floor((d + 90.0) / cell_deg), 0.0), n_dec - 1.0)
                r = int(row)
                marked[r * n_ra + col] = True
                if r == 0 or r == n_dec - 1:
                    marked[r * n_ra:(r + 1) * n_ra] = True
