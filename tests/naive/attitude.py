"""Slow, obvious reference for ``gaiasim.sim.attitude`` (tests only): the attitude error with numpy."""

from __future__ import annotations

import numpy as np


def rotation_vector(error, obmt_ns: np.ndarray) -> np.ndarray:
    """(n, 3) rotation vectors (rad) of ``error`` (an ``AttitudeError``): its sum of sinusoids per axis."""
    t = np.asarray(obmt_ns, dtype=np.float64)[:, None, None]
    return error.amplitude * np.sin(2.0 * np.pi * (t % error.period_ns) / error.period_ns + error.phase).sum(axis=2)


def error_quats(error, obmt_ns: np.ndarray) -> np.ndarray:
    """(n, 4) quaternions (x, y, z, w) of the rotations by those vectors: axis sin(angle / 2), cos(angle / 2)."""
    r = rotation_vector(error, obmt_ns)
    angle = np.linalg.norm(r, axis=1, keepdims=True)
    axis = np.divide(r, angle, out=np.zeros_like(r), where=angle > 0)
    return np.concatenate([axis * np.sin(0.5 * angle), np.cos(0.5 * angle)], axis=1)


def realised_field_angles(q_nsl: np.ndarray, q_err: np.ndarray, u_icrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Field angles (phi, zeta) of ``u_icrs`` under the attitudes ``q_nsl * q_err``, with pipeline.geometry."""
    from pipeline import geometry

    return geometry.field_angles(geometry.quat_multiply(q_nsl, q_err), u_icrs)
