"""Numba kernels of the crossmatch: a sorted 3D grid over unit vectors and a nearest-neighbour query."""

from __future__ import annotations

import numba
import numpy as np

from pipeline.kernels import jit, jit_parallel


@jit
def _cell_key(x, y, z, inv_h, offset, n):
    ix = np.int64(np.floor(x * inv_h)) + offset
    iy = np.int64(np.floor(y * inv_h)) + offset
    iz = np.int64(np.floor(z * inv_h)) + offset
    return (ix * n + iy) * n + iz


@jit
def _cell_keys(u, inv_h, offset, n, out):
    for i in range(u.shape[0]):
        out[i] = _cell_key(u[i, 0], u[i, 1], u[i, 2], inv_h, offset, n)


@jit_parallel
def _nearest(u_query, u_ref_sorted, keys_sorted, inv_h, offset, n, cos_radius, best_index, best_cos):
    """For each query direction, the sorted-reference row of the nearest direction within the radius.

    The grid cell size h is at least the match radius (as a chord), so the 27 cells around the query's
    cell hold every candidate. Rows with no candidate get -1.
    """
    for i in numba.prange(u_query.shape[0]):
        x, y, z = u_query[i, 0], u_query[i, 1], u_query[i, 2]
        ix = np.int64(np.floor(x * inv_h)) + offset
        iy = np.int64(np.floor(y * inv_h)) + offset
        iz = np.int64(np.floor(z * inv_h)) + offset
        best = -1
        best_c = cos_radius
        for dx in range(-1, 2):
            for dy in range(-1, 2):
                for dz in range(-1, 2):
                    key = ((ix + dx) * n + (iy + dy)) * n + (iz + dz)
                    j = np.searchsorted(keys_sorted, key)
                    while j < keys_sorted.shape[0] and keys_sorted[j] == key:
                        c = x * u_ref_sorted[j, 0] + y * u_ref_sorted[j, 1] + z * u_ref_sorted[j, 2]
                        if c >= best_c:
                            best_c = c
                            best = j
                        j += 1
        best_index[i] = best
        best_cos[i] = best_c
