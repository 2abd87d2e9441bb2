"""The attitude kernels against their numpy references (tests/naive/attitude.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gaiasim.sim import kernels_scanlaw
from gaiasim.sim.attitude import AttitudeError
from tests.naive import attitude as naive

# OBMT in ns: from the epoch to ~30 years (the mission is ~10).
TIMES = hnp.arrays(np.int64, st.integers(0, 300), elements=st.integers(0, 10**18))


@settings(deadline=None, max_examples=60)
@given(st.integers(0, 2**32 - 1), TIMES)
def test_error_quaternions_equal_the_numpy_reference(seed, obmt_ns):
    error = AttitudeError(seed)
    fast = error.error_quats(obmt_ns)
    slow = naive.error_quats(error, obmt_ns)
    assert fast.shape == (len(obmt_ns), 4)
    # Rotations of ~1e-4 rad: components agree to 1e-14 absolute (2e-9 arcsec; the kernel reduces the
    # phase without fmod, ~1e-11 of a cycle apart at t ~ 1e17 ns).
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-15)


def test_error_rotations_have_the_documented_size():
    error = AttitudeError(5)
    t = np.linspace(0, 30 * 86_400e9, 200_000).astype(np.int64)
    q = error.error_quats(t)
    angle = 2.0 * np.arcsin(np.linalg.norm(q[:, :3], axis=1))
    rms_per_axis = np.sqrt(np.mean(angle**2) / 3.0)
    assert 0.7 * error.amplitude * np.sqrt(6 / 2) < rms_per_axis < 1.3 * error.amplitude * np.sqrt(6 / 2)


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@settings(deadline=None, max_examples=60)
@given(st.integers(0, 2**32 - 1), st.integers(0, 300))
def test_realised_field_angles_equal_the_numpy_reference(seed, n):
    """Random attitudes, small error rotations and directions (poles and the phi = +-pi cut included)."""
    rng = np.random.default_rng(seed)
    q_nsl = _unit(rng.normal(size=(n, 4)))
    q_err = _unit(np.c_[rng.normal(0, 1e-4, (n, 3)), np.ones(n)])
    u = _unit(rng.normal(size=(n, 3)))
    u[: n // 10] = [0.0, 0.0, 1.0]
    phi, zeta = kernels_scanlaw.realised_field_angles(q_nsl, q_err, u)
    phi_ref, zeta_ref = naive.realised_field_angles(q_nsl, q_err, u)
    # The same operations in the same order: equal to rounding (and bit-identical on this machine).
    np.testing.assert_allclose(zeta, zeta_ref, rtol=0, atol=1e-15)
    np.testing.assert_allclose(np.cos(phi), np.cos(phi_ref), rtol=0, atol=1e-15)
    np.testing.assert_allclose(np.sin(phi), np.sin(phi_ref), rtol=0, atol=1e-15)


@settings(deadline=None, max_examples=60)
@example(0, 423_538_847_696_576_272, 400_000_000_000, 10)  # 2.03e-15 apart at 13 years of OBMT
@given(st.integers(0, 2**32 - 1), st.integers(0, 5 * 10**17), st.integers(1, 400 * 10**9), st.integers(1, 300))
def test_interpolated_error_equals_the_direct_one(seed, t_lo_ns, span_ns, n):
    """AttitudeError.near (cubic Hermite between 1-s nodes) against error_quats, anywhere in its span,
    its ends included; a time outside the span is refused."""
    error = AttitudeError(seed)
    near = error.near(t_lo_ns, t_lo_ns + span_ns)
    t = np.r_[np.random.default_rng(seed).integers(t_lo_ns, t_lo_ns + span_ns, n), t_lo_ns, t_lo_ns + span_ns]
    # 1e-16 rad of interpolation error (attitude.NODE_STEP_NS) and the direct form's rounding: t / P is
    # ~1e-16 t / P cycles off, up to 1.2e-14 over 6 terms up to 5e17 ns (16 years of OBMT; the mission is
    # ~10), in 20,000 random cases. 3e-14 of a quaternion component is 1e-8 arcsec.
    np.testing.assert_allclose(near(t), error.error_quats(t), rtol=0, atol=3e-14)
    with pytest.raises(ValueError, match="outside"):
        near(np.array([t_lo_ns + span_ns + 2 * 10**9]))
