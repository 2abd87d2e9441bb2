"""The ground segment's instrument geometry (the simulator has its own, gaiasim/sim/instrument/focal_plane.py;
tests pin both to the published values).

This is the part of the instrument model that the ground segment knows a priori (like the focal-plane
layout in Gaia's calibration database): the basic angle, the CCD rows, the strips along scan and the
pixel scale, plus the quaternion algebra that turns field angles into sky directions.

Frames (docs/facts.md section 1):
- SRS, the scanning reference system: z is the spin axis, x bisects the two lines of sight. The
  preceding field of view (FoV 1) looks at field angle phi = +basic_angle/2, the following one (FoV 2)
  at phi = -basic_angle/2. The spacecraft spins positively about z, so a fixed star's phi decreases
  with time and it crosses FoV 1 first and FoV 2 one basic angle (about 106.5 min) later.
- ICRS unit vectors (x towards ra = 0, z towards the north celestial pole).
- Quaternions are scalar-last ``(x, y, z, w)`` as in Gaia's attitude tables, and rotate SRS vectors
  into ICRS: ``u_icrs = q * u_srs * conj(q)``.

All functions are vectorised numpy (arrays of shape (n, 3) or (n, 4)); they never raise on data.
"""

from __future__ import annotations

import numpy as np

ARCSEC_RAD = np.pi / (180.0 * 3600.0)
MAS_RAD = ARCSEC_RAD / 1000.0

# GaiaParams BASICANGLE_DEGREE (PLM-386/SCI-120); docs/facts.md section 1.
BASIC_ANGLE_RAD = np.deg2rad(106.5)
# Nominal inertial scan rate, commanded_scan_law (GEDR3 doc 13.4.1); docs/facts.md section 1.
SCAN_RATE_RAD_S = 59.9641857803 * ARCSEC_RAD
# Pixel size on the sky from 10 x 30 um pixels at 35 m focal length [D]; docs/facts.md section 2.
PIXEL_AL_RAD = 58.933 * MAS_RAD
PIXEL_AC_RAD = 176.80 * MAS_RAD
# TDI period = AL pixel / scan rate = 0.98280 ms [D]; docs/facts.md section 2.
TDI_PERIOD_NS = round(PIXEL_AL_RAD / SCAN_RATE_RAD_S * 1e9)
# One CCD = 4500 TDI lines: 4.4226 s [D]; docs/facts.md section 2.
CCD_LINES = 4500
CCD_COLUMNS = 1966
# AC pixel coordinate mu runs 13.5-1979.5: 14 prescan pixels (GEDR3 doc 3.3.2); docs/facts.md section 2.
AC_PRESCAN_PX = 14
N_CCD_ROWS = 7
# Active AC width of one FoV, GaiaParams FOV_AC_ACTIVE = 0.67586 deg; rows are 1966 px wide each
# (7 x 1966 x 176.8 mas = 0.6758 deg), so the gaps between rows are neglected here.
ROW_WIDTH_RAD = CCD_COLUMNS * PIXEL_AC_RAD
ZETA_MIN_RAD = -0.5 * N_CCD_ROWS * ROW_WIDTH_RAD

# Strips along scan, in the order a star crosses them. FoV 1 images are confirmed in SM1, FoV 2 in SM2.
STRIPS = ("SM1", "SM2", "AF1", "AF2", "AF3", "AF4", "AF5", "AF6", "AF7", "AF8", "AF9", "BP", "RP")
AF_STRIPS = tuple(f"AF{k}" for k in range(1, 10))
# CCD row 4 has a wavefront sensor in place of AF1: 62 AF CCDs (Lindegren+2021, A&A 649, A2, Table 2). Its
# AF1 window in a star packet is empty (all samples 0 ADU).
WFS_ROW, WFS_STRIP = 4, "AF1"
# Along-scan pitch of the strips in TDI lines: a CCD (4500 lines) plus the inter-CCD gap. The gap is a
# placeholder [U]: 435 lines (4.85 s per strip) put 13 strips in 1.17 deg AL (GaiaParams FOV_AL
# 1.16761 deg). The CCDs sit at fixed places on the focal plane: their times follow from the pixel scale.
STRIP_PITCH_TDI_LINES = 4935
STRIP_PITCH_NS = STRIP_PITCH_TDI_LINES * TDI_PERIOD_NS
# Offset of each strip's centre line from AF1's, in ns (AF1 is the field-angle origin, eta = 0).
STRIP_OFFSET_NS = {name: (i - 2) * STRIP_PITCH_NS for i, name in enumerate(STRIPS)}


def fov_phi_rad(fov: np.ndarray) -> np.ndarray:
    """Field angle phi of the line of sight of FoV 1 (+basic angle / 2) or FoV 2 (-basic angle / 2)."""
    return np.where(np.asarray(fov) == 1, 0.5 * BASIC_ANGLE_RAD, -0.5 * BASIC_ANGLE_RAD)


def ccd_row_of_zeta(zeta_rad: np.ndarray) -> np.ndarray:
    """CCD row 1..7 seen at across-scan field angle zeta; 0 outside the focal plane."""
    row = np.floor((np.asarray(zeta_rad) - ZETA_MIN_RAD) / ROW_WIDTH_RAD).astype(np.int64) + 1
    return np.where((row >= 1) & (row <= N_CCD_ROWS), row, 0)


def ac_px_of_zeta(zeta_rad: np.ndarray, ccd_row: np.ndarray) -> np.ndarray:
    """AC pixel coordinate (prescan included, 14..1979) of zeta within its CCD row."""
    row_start = ZETA_MIN_RAD + (np.asarray(ccd_row) - 1) * ROW_WIDTH_RAD
    col = np.floor((np.asarray(zeta_rad) - row_start) / PIXEL_AC_RAD).astype(np.int64)
    return np.clip(col, 0, CCD_COLUMNS - 1) + AC_PRESCAN_PX


def zeta_of_ac_px(ac_px: np.ndarray, ccd_row: np.ndarray) -> np.ndarray:
    """Across-scan field angle of the centre of AC pixel ``ac_px`` in ``ccd_row`` (inverse of the above)."""
    row_start = ZETA_MIN_RAD + (np.asarray(ccd_row) - 1) * ROW_WIDTH_RAD
    return row_start + (np.asarray(ac_px) - AC_PRESCAN_PX + 0.5) * PIXEL_AC_RAD


# --- quaternions (scalar last) -----------------------------------------------------------------------


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b of scalar-last quaternions (broadcasting over leading axes)."""
    ax, ay, az, aw = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bx, by, bz, bw = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        axis=-1,
    )


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors ``v`` (..., 3) by unit quaternions ``q`` (..., 4): q * v * conj(q)."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    qv = q[..., :3]
    t = 2.0 * np.cross(qv, v)
    return v + q[..., 3:4] * t + np.cross(qv, t)


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    q = np.array(q, dtype=np.float64, copy=True)
    q[..., :3] *= -1.0
    return q


def quat_from_matrix(m: np.ndarray) -> np.ndarray:
    """Scalar-last unit quaternions from rotation matrices (..., 3, 3), w >= 0 (Shepperd's method)."""
    m = np.asarray(m, dtype=np.float64)
    tr = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    cand = np.stack(
        [
            np.stack([1 + 2 * m[..., 0, 0] - tr, m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0],
                      m[..., 2, 1] - m[..., 1, 2]], axis=-1),
            np.stack([m[..., 0, 1] + m[..., 1, 0], 1 + 2 * m[..., 1, 1] - tr, m[..., 1, 2] + m[..., 2, 1],
                      m[..., 0, 2] - m[..., 2, 0]], axis=-1),
            np.stack([m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1], 1 + 2 * m[..., 2, 2] - tr,
                      m[..., 1, 0] - m[..., 0, 1]], axis=-1),
            np.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1],
                      1 + tr], axis=-1),
        ],
        axis=-2,
    )
    # Pick the numerically largest of the four candidate forms for each matrix.
    best = np.argmax(np.stack([m[..., 0, 0], m[..., 1, 1], m[..., 2, 2], tr], axis=-1), axis=-1)
    q = np.take_along_axis(cand, best[..., None, None], axis=-2)[..., 0, :]
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., 3:4] < 0, -q, q)


def interpolate_attitude(t_ns: np.ndarray, q: np.ndarray, t_query_ns: np.ndarray) -> np.ndarray:
    """Normalised linear interpolation of attitude samples (sorted times) at ``t_query_ns``.

    Outside the sampled span the end samples are held. At 1 Hz sampling and 60 arcsec/s the
    interpolation error is below 1 micro-arcsecond, far under the pixel scale.
    """
    t_ns = np.asarray(t_ns, dtype=np.int64)
    tq = np.asarray(t_query_ns, dtype=np.int64)
    q = np.asarray(q, dtype=np.float64)
    if len(t_ns) == 1:
        return np.repeat(q[:1], len(tq), axis=0)
    i = np.clip(np.searchsorted(t_ns, tq, side="right") - 1, 0, len(t_ns) - 2)
    span = (t_ns[i + 1] - t_ns[i]).astype(np.float64)
    f = np.clip((tq - t_ns[i]).astype(np.float64) / np.where(span > 0, span, 1.0), 0.0, 1.0)[:, None]
    q0, q1 = q[i], q[i + 1]
    q1 = np.where(np.sum(q0 * q1, axis=1, keepdims=True) < 0, -q1, q1)
    out = (1.0 - f) * q0 + f * q1
    return out / np.linalg.norm(out, axis=1, keepdims=True)


# --- directions ------------------------------------------------------------------------------------


def unit_from_radec(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra, dec = np.deg2rad(ra_deg), np.deg2rad(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def radec_from_unit(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    u = np.asarray(u, dtype=np.float64)
    ra = np.rad2deg(np.arctan2(u[..., 1], u[..., 0])) % 360.0
    dec = np.rad2deg(np.arcsin(np.clip(u[..., 2], -1.0, 1.0)))
    return ra, dec


def srs_direction(phi_rad: np.ndarray, zeta_rad: np.ndarray) -> np.ndarray:
    """Unit vector in SRS at field angles (phi, zeta)."""
    phi, zeta = np.asarray(phi_rad), np.asarray(zeta_rad)
    return np.stack([np.cos(zeta) * np.cos(phi), np.cos(zeta) * np.sin(phi), np.sin(zeta)], axis=-1)


def field_angles(q: np.ndarray, u_icrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Field angles (phi, zeta) in SRS of ICRS directions ``u_icrs`` under attitude ``q``."""
    s = quat_rotate(quat_conjugate(q), u_icrs)
    return np.arctan2(s[..., 1], s[..., 0]), np.arcsin(np.clip(s[..., 2], -1.0, 1.0))


def sky_direction(q: np.ndarray, fov: np.ndarray, zeta_rad: np.ndarray, eta_rad: np.ndarray) -> np.ndarray:
    """ICRS direction seen in ``fov`` at along-scan offset ``eta`` from AF1 and across-scan ``zeta``."""
    return quat_rotate(q, srs_direction(fov_phi_rad(fov) + np.asarray(eta_rad), zeta_rad))
