"""Brute-force oracle of the crossmatch (pipeline.crossmatch): every query against every source."""

from __future__ import annotations

import numpy as np

MAS_PER_RAD = 180.0 * 3600.0 * 1000.0 / np.pi


def angular_distance_mas(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Angle between unit vectors (broadcasting), in mas, via atan2(|u x v|, u . v) (stable at 0 and pi)."""
    cross = np.linalg.norm(np.cross(u, v), axis=-1)
    dot = np.sum(u * v, axis=-1)
    return np.arctan2(cross, dot) * MAS_PER_RAD


def nearest_brute_force(u_ref: np.ndarray, u_query: np.ndarray, radius_mas: float) -> tuple[np.ndarray, np.ndarray]:
    """(row of the nearest source within ``radius_mas`` or -1, all-pairs distance matrix in mas)."""
    u_ref = np.asarray(u_ref, dtype=np.float64).reshape(-1, 3)
    u_query = np.asarray(u_query, dtype=np.float64).reshape(-1, 3)
    dist = angular_distance_mas(u_query[:, None, :], u_ref[None, :, :])
    row = np.full(len(u_query), -1, dtype=np.int64)
    for i in range(len(u_query)):
        for j in range(len(u_ref)):
            if dist[i, j] <= radius_mas and (row[i] < 0 or dist[i, j] < dist[i, row[i]]):
                row[i] = j
    return row, dist


def best_two_brute_force(u_ref: np.ndarray, g_ref: np.ndarray, g_var_ref: np.ndarray, u_query: np.ndarray,
                         g_query: np.ndarray, g_var_query: np.ndarray, radius_mas: float,
                         position_sigma_mas: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows (n, 2) of the two lowest match scores within ``radius_mas``, -1 when fewer; scores (n, 2)).

    score = (distance / position_sigma_mas)^2 + (g - g_ref)^2 / (g_var + g_var_ref), the magnitude term
    only where both magnitudes are finite; every query against every source, ranked by a sort.
    """
    dist = angular_distance_mas(u_query[:, None, :], u_ref[None, :, :])
    rows = np.full((len(u_query), 2), -1, dtype=np.int64)
    scores = np.full((len(u_query), 2), np.inf)
    for i in range(len(u_query)):
        ranked = []
        for j in range(len(u_ref)):
            if dist[i, j] <= radius_mas:
                s = (dist[i, j] / position_sigma_mas) ** 2
                if np.isfinite(g_query[i]) and np.isfinite(g_ref[j]):
                    s += (g_query[i] - g_ref[j]) ** 2 / (g_var_query[i] + g_var_ref[j])
                ranked.append((s, j))
        for k, (s, j) in enumerate(sorted(ranked)[:2]):
            rows[i, k], scores[i, k] = j, s
    return rows, scores


def brightest_brute_force(u_ref: np.ndarray, g_ref: np.ndarray, u_query: np.ndarray,
                          radius_mas: float) -> np.ndarray:
    """Row of the brightest source (least finite G, then the nearest) within ``radius_mas`` of each query,
    -1 when none: every query against every source."""
    dist = angular_distance_mas(u_query[:, None, :], u_ref[None, :, :])
    rows = np.full(len(u_query), -1, dtype=np.int64)
    for i in range(len(u_query)):
        within = [(g_ref[j], dist[i, j], j) for j in range(len(u_ref))
                  if dist[i, j] <= radius_mas and np.isfinite(g_ref[j])]
        if within:
            rows[i] = min(within)[2]
    return rows


def sorted_index_naive(u_ref: np.ndarray, radius_mas: float, g_mag: np.ndarray, g_mag_sigma: np.ndarray,
                       mag_floor_mag: float, cell_chords: float) -> tuple[np.ndarray, ...]:
    """What ``pipeline.crossmatch.build_index`` sorts, the plain way: grid key of each source (cells
    ``cell_chords`` radius chords wide), numpy's stable argsort, fancy indexing. Returns (keys, order, u, g,
    g_var), sorted."""
    u = np.asarray(u_ref, dtype=np.float64).reshape(-1, 3)
    h = cell_chords * 2.0 * np.sin(0.5 * radius_mas * np.pi / (180.0 * 3600.0 * 1000.0))
    offset = int(np.ceil(1.0 / h)) + 2
    n = 2 * offset + 1
    ijk = np.floor(u * (1.0 / h)).astype(np.int64) + offset
    keys = (ijk[:, 0] * n + ijk[:, 1]) * n + ijk[:, 2]
    order = np.argsort(keys, kind="stable")
    sigma = np.asarray(g_mag_sigma, dtype=np.float64)[order]
    return keys[order], order, u[order], np.asarray(g_mag, dtype=np.float64)[order], sigma * sigma + mag_floor_mag**2
