"""Attitude monitoring: find downlinked attitude samples that disagree with their neighbours.

The attitude changes smoothly (the scan at ~60 arcsec/s plus slow control errors), so each sample must
lie on the rotation between the samples ``window`` seconds before and after it. A corrupted attitude
solution (a glitch: a jump of arcseconds or more) stands out by its distance to that interpolation; the
glitched samples are reported as events and left out of the attitude used for sky positions.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline import geometry, schemas

#: Distance of a sample to its neighbours' interpolation above which it is a glitch, arcsec. Over a
#: chord of up to 2 x 30 s the smooth attitude departs from linear interpolation by < 0.01 arcsec.
GLITCH_THRESHOLD_ARCSEC = 1.0
#: Neighbour pairs (i - j, i + j) used to predict sample i; the median of their predictions' distances
#: ignores a pair with an end inside a glitch, for glitches of up to :data:`MAX_GLITCH_SAMPLES` samples.
PAIR_OFFSETS = (10, 15, 20, 25, 30)
MAX_GLITCH_SAMPLES = 8


def rotation_angle_rad(q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Angle of the rotation between unit quaternions (scalar last); accurate for tiny angles."""
    d = np.minimum(np.linalg.norm(q1 - q2, axis=-1), np.linalg.norm(q1 + q2, axis=-1))
    return 4.0 * np.arcsin(np.clip(0.5 * d, 0.0, 1.0))


def find_glitches(t_ns: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Boolean mask of attitude samples (sorted by time) that are glitches."""
    t_ns = np.asarray(t_ns, dtype=np.int64)
    q = np.asarray(q, dtype=np.float64)
    n = len(t_ns)
    bad = np.zeros(n, dtype=bool)
    w = max(PAIR_OFFSETS)
    if n < 2 * w + 1:
        return bad
    i = np.arange(w, n - w)
    distances = []
    for j in PAIR_OFFSETS:
        lo, hi = i - j, i + j
        f = ((t_ns[i] - t_ns[lo]) / np.maximum(t_ns[hi] - t_ns[lo], 1))[:, None]
        q_hi = np.where(np.sum(q[lo] * q[hi], axis=1, keepdims=True) < 0, -q[hi], q[hi])
        predicted = (1.0 - f) * q[lo] + f * q_hi
        predicted /= np.linalg.norm(predicted, axis=1, keepdims=True)
        distances.append(rotation_angle_rad(q[i], predicted))
    bad[i] = np.median(np.array(distances), axis=0) > GLITCH_THRESHOLD_ARCSEC * geometry.ARCSEC_RAD
    return bad


def glitch_events(t_ns: np.ndarray, bad: np.ndarray) -> pa.Table:
    """One ``hk_events`` row (channel ``attitude``, kind ``glitch``, severity red) per run of glitched
    samples."""
    edges = np.diff(np.concatenate([[0], bad.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    n = len(starts)
    return pa.table(
        {
            "channel": ["attitude"] * n,
            "kind": ["glitch"] * n,
            "severity": ["red"] * n,
            "side": [""] * n,
            "start_ns": np.asarray(t_ns)[starts].astype(np.int64),
            "end_ns": np.asarray(t_ns)[ends - 1].astype(np.int64),
            "n_samples": (ends - starts).astype(np.int64),
            "extreme_value": np.full(n, np.nan),
            "open": np.zeros(n, dtype=bool),
        },
        schema=schemas.HK_EVENTS,
    )
