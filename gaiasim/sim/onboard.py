"""On-board losses: dead time and transits that never reach the ground.

PyGaia's N_obs table assumes 6.2 % dead time, and realistic data loss is ~10 % (G < 13) to ~20 %
(G ~ 20) (PyGaia `errorFactorVariationBeta.txt` header; docs/instrument.md). The 10-20 % is the total,
dead time included: outside the dead intervals a transit is lost with the probability that makes the two
together give it (:func:`loss_probability`), so the loss is counted once. A transit lost on board never
becomes a packet, so it is not in the truth transits either; the manifest counts them.
"""

from __future__ import annotations

import numba
import numpy as np

from gaiasim.sim.jit import jit_parallel
from gaiasim.sim.kernels_random import stream_key, uniform

DEAD_TIME_FRACTION = 0.062
DEAD_INTERVALS_PER_DAY = 3
#: Total on-board loss, dead time included: 10 % up to G = 13, rising linearly to 20 % at G = 20 and beyond.
LOSS_G = (13.0, 20.0)
LOSS_P = (0.10, 0.20)
_LOSS_STREAM = 0x105E
DAY_NS = 86_400_000_000_000


def dead_intervals(seed: int, t0_ns: int, t1_ns: int) -> np.ndarray:
    """(n, 2) [start, end) OBMT intervals without observations in [t0, t1): a few per day, each day's
    drawn from its own stream (so multi-day datasets agree with single days)."""
    out = []
    length = int(DEAD_TIME_FRACTION * DAY_NS / DEAD_INTERVALS_PER_DAY)
    third = DAY_NS // DEAD_INTERVALS_PER_DAY
    for day in range(t0_ns // DAY_NS, (t1_ns - 1) // DAY_NS + 1):
        rng = np.random.default_rng([seed, 8, day])
        for j in range(DEAD_INTERVALS_PER_DAY):
            start = day * DAY_NS + j * third + int(rng.integers(0, third - length))
            out.append((start, start + length))
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def in_dead_time(obmt_ns: np.ndarray, intervals: np.ndarray) -> np.ndarray:
    i = np.searchsorted(intervals[:, 0], obmt_ns, side="right") - 1
    return (i >= 0) & (obmt_ns < intervals[np.maximum(i, 0), 1])


def total_loss(g_mag: np.ndarray) -> np.ndarray:
    """Fraction of the transits of magnitude ``g_mag`` that never reach the ground, dead time included."""
    return np.interp(g_mag, LOSS_G, LOSS_P)


def loss_probability(g_mag: np.ndarray) -> np.ndarray:
    """Probability that a transit outside the dead time is lost: (1 - dead) (1 - p) = 1 - total."""
    return 1.0 - (1.0 - total_loss(g_mag)) / (1.0 - DEAD_TIME_FRACTION)


@jit_parallel
def _uniforms(seed, transit_id, out):
    for i in numba.prange(transit_id.shape[0]):
        out[i] = uniform(stream_key(seed, transit_id[i]), 0)


def lost(seed: int, transit_id: np.ndarray, g_mag: np.ndarray) -> np.ndarray:
    """Which transits are lost on board: a draw from each transit's own stream, so the answer does not
    depend on how the day is sliced."""
    u = np.empty(len(transit_id))
    _uniforms(int(seed) ^ _LOSS_STREAM, np.ascontiguousarray(transit_id, dtype=np.int64), u)
    return u < loss_probability(g_mag)
