"""Instrument geometry (pipeline.geometry): focal-plane coordinates, quaternions."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pipeline import geometry as g

AC_PX_MAX = g.AC_PRESCAN_PX + g.CCD_COLUMNS - 1


def rotation_matrix(q: np.ndarray) -> np.ndarray:
    """Textbook rotation matrix of a scalar-last unit quaternion (x, y, z, w)."""
    x, y, z, w = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


@st.composite
def unit_quaternions(draw) -> np.ndarray:
    v = draw(hnp.arrays(np.float64, 4, elements=st.floats(-1.0, 1.0)).filter(lambda a: np.linalg.norm(a) > 0.1))
    return v / np.linalg.norm(v)


@st.composite
def unit_vectors(draw) -> np.ndarray:
    v = draw(hnp.arrays(np.float64, 3, elements=st.floats(-1.0, 1.0)).filter(lambda a: np.linalg.norm(a) > 0.1))
    return v / np.linalg.norm(v)


def test_every_ac_pixel_of_every_row_round_trips():
    row = np.repeat(np.arange(1, g.N_CCD_ROWS + 1), g.CCD_COLUMNS)
    ac = np.tile(np.arange(g.AC_PRESCAN_PX, AC_PX_MAX + 1), g.N_CCD_ROWS)
    zeta = g.zeta_of_ac_px(ac, row)
    assert np.array_equal(g.ccd_row_of_zeta(zeta), row)
    assert np.array_equal(g.ac_px_of_zeta(zeta, row), ac)
    assert np.all(np.diff(zeta) > 0), "zeta grows with row and AC pixel"


# The last few ULPs below the upper edge round onto it in (zeta - ZETA_MIN_RAD) / ROW_WIDTH_RAD and come
# out as row 0 ("outside"): 1e-12 rad (0.2 uas) is kept clear of the edges.
@given(st.floats(g.ZETA_MIN_RAD + 1e-12, -g.ZETA_MIN_RAD - 1e-12))
def test_zeta_round_trips_within_half_a_pixel(zeta):
    row = g.ccd_row_of_zeta(np.array([zeta]))
    assert 1 <= row[0] <= g.N_CCD_ROWS
    ac = g.ac_px_of_zeta(np.array([zeta]), row)
    back = g.zeta_of_ac_px(ac, row)
    assert abs(back[0] - zeta) <= 0.5 * g.PIXEL_AC_RAD * (1 + 1e-9)


def test_zeta_outside_the_focal_plane_has_no_row():
    edge = -g.ZETA_MIN_RAD
    assert g.ccd_row_of_zeta(np.array([g.ZETA_MIN_RAD - 1e-6, edge + 1e-6, 0.1, -0.1])).tolist() == [0, 0, 0, 0]


@given(unit_quaternions(), unit_vectors())
def test_quat_rotate_equals_rotation_matrix(q, v):
    assert np.allclose(g.quat_rotate(q, v), rotation_matrix(q) @ v, atol=1e-12)


@given(unit_quaternions())
def test_quat_from_matrix_inverts_rotation_matrix(q):
    back = g.quat_from_matrix(rotation_matrix(q))
    want = q if q[3] >= 0 else -q
    assert back[3] >= 0
    # When w is ~0, q and -q both have w >= 0 up to rounding: compare as rotations.
    assert np.allclose(back, want, atol=1e-9) or np.allclose(rotation_matrix(back), rotation_matrix(q), atol=1e-9)


@given(unit_quaternions(), unit_quaternions(), unit_vectors())
def test_quat_multiply_composes_rotations(a, b, v):
    assert np.allclose(g.quat_rotate(g.quat_multiply(a, b), v), g.quat_rotate(a, g.quat_rotate(b, v)), atol=1e-12)
    assert np.allclose(g.quat_rotate(g.quat_conjugate(a), g.quat_rotate(a, v)), v, atol=1e-12)


@given(unit_quaternions(), st.sampled_from([1, 2]), st.floats(g.ZETA_MIN_RAD, -g.ZETA_MIN_RAD),
       st.floats(-0.02, 0.02))
def test_field_angles_invert_sky_direction(q, fov, zeta, eta):
    u = g.sky_direction(q, np.array([fov]), np.array([zeta]), np.array([eta]))
    assert np.allclose(np.linalg.norm(u, axis=-1), 1.0)
    phi, zeta_back = g.field_angles(q, u)
    assert np.allclose(phi, g.fov_phi_rad(fov) + eta, atol=1e-12)
    assert np.allclose(zeta_back, zeta, atol=1e-12)


def test_fovs_are_one_basic_angle_apart():
    assert np.isclose(g.fov_phi_rad(1) - g.fov_phi_rad(2), np.deg2rad(106.5))


@given(st.integers(0, 2**32 - 1), st.integers(2, 50))
def test_interpolate_attitude_at_sample_times_returns_the_samples(seed, n):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.integers(1, 2_000_000_000, n)).astype(np.int64)
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    out = g.interpolate_attitude(t, q, t)
    # q and -q are the same attitude: compare the rotations they make.
    for i in range(n):
        assert np.allclose(rotation_matrix(out[i]), rotation_matrix(q[i]), atol=1e-12), f"sample {i} of {n}"
    assert np.allclose(np.abs(np.sum(out * q, axis=1)), 1.0, atol=1e-12)


def test_interpolate_attitude_holds_the_end_samples_and_is_halfway_between():
    q0 = g.quat_from_matrix(np.eye(3))
    angle = 0.1
    q1 = np.array([0.0, 0.0, np.sin(angle / 2), np.cos(angle / 2)])  # rotation about z by 0.1 rad
    t = np.array([0, 1_000_000_000])
    out = g.interpolate_attitude(t, np.stack([q0, q1]), np.array([-5, 500_000_000, 2_000_000_000]))
    assert np.allclose(out[0], q0) and np.allclose(out[2], q1)
    half = np.array([0.0, 0.0, np.sin(angle / 4), np.cos(angle / 4)])
    assert np.allclose(out[1], half, atol=1e-12), "nlerp of two close quaternions is the half rotation"


def test_radec_unit_round_trip():
    rng = np.random.default_rng(11)
    ra, dec = rng.uniform(0, 360, 100), rng.uniform(-89.9, 89.9, 100)
    ra_b, dec_b = g.radec_from_unit(g.unit_from_radec(ra, dec))
    assert np.allclose(dec_b, dec, atol=1e-10)
    assert np.allclose((ra_b - ra + 180) % 360 - 180, 0, atol=1e-9)
