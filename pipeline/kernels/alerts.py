"""Numba kernel of the science alerts: friends-of-friends clustering of unmatched transits on the sky."""

from __future__ import annotations

import numpy as np

from pipeline.kernels import jit


@jit
def _root(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]  # path halving
        i = parent[i]
    return i


@jit
def _friends_of_friends(u_sorted, keys_sorted, inv_h, offset, n, chord2, label):
    """Connected components of "closer than the radius" over unit vectors sorted by grid cell key.

    Same grid as :func:`pipeline.kernels.crossmatch._best_two` (cells at least one radius wide: the 27 cells
    around a point hold all its neighbours). Two points are linked when their chord squared is <= ``chord2``.
    Writes, for every point, the smallest sorted row of its component: union by smaller root keeps every
    root the smallest row of its component.
    """
    m = u_sorted.shape[0]
    parent = np.arange(m)
    for i in range(m):
        x, y, z = u_sorted[i, 0], u_sorted[i, 1], u_sorted[i, 2]
        ix = np.int64(np.floor(x * inv_h)) + offset
        iy = np.int64(np.floor(y * inv_h)) + offset
        iz = np.int64(np.floor(z * inv_h)) + offset
        for dx in range(-1, 2):
            for dy in range(-1, 2):
                for dz in range(-1, 2):
                    key = ((ix + dx) * n + (iy + dy)) * n + (iz + dz)
                    j = np.searchsorted(keys_sorted, key)
                    while j < m and keys_sorted[j] == key:
                        if j > i:
                            ex = x - u_sorted[j, 0]
                            ey = y - u_sorted[j, 1]
                            ez = z - u_sorted[j, 2]
                            if ex * ex + ey * ey + ez * ez <= chord2:
                                a = _root(parent, i)
                                b = _root(parent, j)
                                if a < b:
                                    parent[b] = a
                                elif b < a:
                                    parent[a] = b
                        j += 1
    for i in range(m):
        label[i] = _root(parent, i)
