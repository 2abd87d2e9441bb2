"""Numba kernels of the crossmatch: a sorted 3D grid over unit vectors, a best-two-candidates query and a
brightest-within-the-radius query."""

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


@jit
def _sort_ties_by_row(keys, order, keys_sorted):
    """Given ``order`` sorting ``keys`` (any sort), write ``keys_sorted`` and put each run of equal keys in
    ascending row order: ``order`` is then the stable argsort of ``keys``."""
    n = order.shape[0]
    for i in range(n):
        keys_sorted[i] = keys[order[i]]
    i = 0
    while i < n:
        j = i + 1
        while j < n and keys_sorted[j] == keys_sorted[i]:
            j += 1
        if j - i > 1:
            order[i:j] = np.sort(order[i:j])
        i = j


@jit
def _gather_sorted(order, u, g, sigma, floor2, u_sorted, g_sorted, g_var_sorted):
    """Rows of the catalogue (unit vectors, G and its scatter as scatter^2 + ``floor2``) in index order."""
    for i in range(order.shape[0]):
        r = order[i]
        u_sorted[i, 0] = u[r, 0]
        u_sorted[i, 1] = u[r, 1]
        u_sorted[i, 2] = u[r, 2]
        g_sorted[i] = g[r]
        s = np.float64(sigma[r])
        g_var_sorted[i] = s * s + floor2


@jit
def _lower_cells(x, y, z, inv_h, offset):
    """The lower of the 2 grid cells to look at along each axis for the query (x, y, z): the query's own, or
    the one below it when the query lies in the lower half of its cell."""
    fx, fy, fz = np.floor(x * inv_h), np.floor(y * inv_h), np.floor(z * inv_h)
    return (np.int64(fx) + offset - (1 if x * inv_h - fx < 0.5 else 0),
            np.int64(fy) + offset - (1 if y * inv_h - fy < 0.5 else 0),
            np.int64(fz) + offset - (1 if z * inv_h - fz < 0.5 else 0))


@jit_parallel
def _best_two(u_query, g_query, g_var_query, u_ref_sorted, g_ref_sorted, g_var_ref_sorted, keys_sorted, inv_h,
              offset, n, chord2_radius, inv_var_pos, rows, scores, chord2):
    """For each query direction, the two best sorted-reference rows within the radius, by score.

    score = chord^2 * inv_var_pos + (g_query - g_ref)^2 / (g_var_query + g_var_ref), the magnitude term only
    where both magnitudes are finite (else position alone ranks). The grid cell size h is at least twice the
    match radius (as a chord), so along each axis a candidate lies in the query's cell or in the neighbour on
    the side of the cell's half the query is in: 2 x 2 x 2 cells hold every candidate. Within the radius
    means a squared chord of at most ``chord2_radius``: exact to rounding, where a cosine test (dot product
    against cos(radius)) resolves angles near 1 only to ~3 mas (sqrt of the float64 epsilon). On a tie the
    earlier sorted row wins. Missing candidates get row -1, score inf, chord2 NaN.
    """
    for i in numba.prange(u_query.shape[0]):
        x, y, z = u_query[i, 0], u_query[i, 1], u_query[i, 2]
        ix, iy, iz = _lower_cells(x, y, z, inv_h, offset)
        g = g_query[i]
        b0, b1 = -1, -1
        s0, s1 = np.inf, np.inf
        c0, c1 = np.nan, np.nan
        for dx in range(2):
            for dy in range(2):
                # The 2 cells iz, iz+1 of a column have consecutive keys: one binary search per column.
                first = ((ix + dx) * n + (iy + dy)) * n + iz
                j = np.searchsorted(keys_sorted, first)
                while j < keys_sorted.shape[0] and keys_sorted[j] <= first + 1:
                    rx, ry, rz = u_ref_sorted[j, 0], u_ref_sorted[j, 1], u_ref_sorted[j, 2]
                    c2 = (x - rx) ** 2 + (y - ry) ** 2 + (z - rz) ** 2
                    if c2 <= chord2_radius:
                        s = c2 * inv_var_pos
                        dg = g - g_ref_sorted[j]
                        if np.isfinite(dg):
                            s += dg * dg / (g_var_query[i] + g_var_ref_sorted[j])
                        if s < s0 or (s == s0 and j < b0):
                            b1, s1, c1 = b0, s0, c0
                            b0, s0, c0 = j, s, c2
                        elif s < s1 or (s == s1 and j < b1):
                            b1, s1, c1 = j, s, c2
                    j += 1
        rows[i, 0], rows[i, 1] = b0, b1
        scores[i, 0], scores[i, 1] = s0, s1
        chord2[i, 0], chord2[i, 1] = c0, c1


@jit_parallel
def _brightest_within(u_query, u_ref_sorted, g_ref_sorted, keys_sorted, inv_h, offset, n, chord2_radius, rows):
    """For each query direction, the sorted-reference row of the brightest source (least finite G) within the
    radius, -1 where there is none; on a tie of G the nearer one, then the earlier sorted row. The same
    2 x 2 x 2 cells and squared-chord test as :func:`_best_two`."""
    for i in numba.prange(u_query.shape[0]):
        x, y, z = u_query[i, 0], u_query[i, 1], u_query[i, 2]
        ix, iy, iz = _lower_cells(x, y, z, inv_h, offset)
        best, g_best, c_best = -1, np.inf, np.inf
        for dx in range(2):
            for dy in range(2):
                first = ((ix + dx) * n + (iy + dy)) * n + iz
                j = np.searchsorted(keys_sorted, first)
                while j < keys_sorted.shape[0] and keys_sorted[j] <= first + 1:
                    g = g_ref_sorted[j]
                    if np.isfinite(g) and g <= g_best:
                        c2 = ((x - u_ref_sorted[j, 0]) ** 2 + (y - u_ref_sorted[j, 1]) ** 2
                              + (z - u_ref_sorted[j, 2]) ** 2)
                        if c2 <= chord2_radius and (g < g_best or c2 < c_best or (c2 == c_best and j < best)):
                            best, g_best, c_best = j, g, c2
                    j += 1
        rows[i] = best
