"""Focal-plane geometry and frames of the simulated spacecraft (docs/instrument.md, section 1-2).

Frames: SRS (scanning reference system) has z along the spin axis and x bisecting the two lines of sight;
the preceding field of view (FoV 1) looks at field angle phi = +basic angle / 2, the following one
(FoV 2) at -basic angle / 2, and the spin is positive about z, so a star crosses FoV 1 first. ICRS unit
vectors: x towards ra = 0, z towards the north celestial pole. Quaternions are scalar-last ``(x, y, z, w)``
and rotate SRS vectors into ICRS: ``u_icrs = q * u_srs * conj(q)``.
"""

from __future__ import annotations

import math

import numpy as np

# --- published values, in the units of their sources ----------------------------------------------

#: Basic angle between the two lines of sight, deg (GaiaParams BASICANGLE_DEGREE; PLM-386/SCI-120).
BASIC_ANGLE_DEG = 106.5
#: Nominal inertial scan rate, arcsec/s (commanded scan law, Gaia EDR3 documentation section 13.4.1).
SCAN_RATE_ARCSEC_S = 59.9641857803
#: Pixel on the sky, mas: 10 um x 30 um pixels at a 35 m focal length (Gaia Collaboration 2016, A&A 595,
#: A1; the EDR3 documentation section 3.3.2 gives 58.9 x 176.8 mas).
PIXEL_AL_MAS = 58.933
PIXEL_AC_MAS = 176.80
#: CCD format: 4500 TDI lines along scan, 1966 columns across, 14 prescan pixels (the AC coordinate
#: runs 13.5-1979.5; EDR3 documentation section 3.3.2; Crowley+2016, A&A 595, A6).
CCD_TDI_LINES = 4500
CCD_COLUMNS = 1966
AC_PRESCAN_PX = 14
#: CCD rows of the astrometric field (Crowley+2016 Fig. 1).
N_ROWS = 7
#: Strips a star image crosses, in order (Crowley+2016 Fig. 1): the sky mappers (FoV 1 confirmed in SM1,
#: FoV 2 in SM2), the astrometric field and the photometers.
STRIPS = ("SM1", "SM2", "AF1", "AF2", "AF3", "AF4", "AF5", "AF6", "AF7", "AF8", "AF9", "BP", "RP")
AF_STRIPS = STRIPS[2:11]
#: The wavefront sensor takes the place of AF1 in CCD row 4: 62 AF CCDs, not 63 (Lindegren+2021, A&A 649,
#: A2, Table 2). Transits in row 4 have no AF1 window: the ICD's AF1 samples of row 4 are all 0 ADU.
WFS_ROW, WFS_STRIP = 4, "AF1"
#: Along-scan pitch of the strips, in TDI lines: one CCD (4500 lines) plus the gap between CCDs. The gap
#: is not published [U]: 435 lines (4.85 s a strip) put 13 strips in 1.17 deg along scan (GaiaParams
#: FOV_AL = 1.16761 deg). In lines, not seconds: the CCDs sit at fixed places on the focal plane, and the
#: time between them follows from the pixel scale and the scan rate.
STRIP_PITCH_TDI_LINES = 4935

# --- derived -----------------------------------------------------------------------------------------

MAS_RAD = math.pi / (180.0 * 3600.0 * 1000.0)
ARCSEC_RAD = 1000.0 * MAS_RAD
BASIC_ANGLE_RAD = math.radians(BASIC_ANGLE_DEG)
SCAN_RATE_RAD_S = SCAN_RATE_ARCSEC_S * ARCSEC_RAD
PIXEL_AL_RAD = PIXEL_AL_MAS * MAS_RAD
PIXEL_AC_RAD = PIXEL_AC_MAS * MAS_RAD
#: TDI period: the time an image takes to move one AL pixel, ns (58.933 mas / 59.964 arcsec/s = 0.98280 ms).
TDI_PERIOD_NS = round(PIXEL_AL_MAS / SCAN_RATE_ARCSEC_S * 1e6)
#: Across-scan extent of one CCD row and of the astrometric field (the gaps between rows neglected:
#: 7 x 1966 x 176.8 mas = 0.6758 deg, GaiaParams FOV_AC_ACTIVE = 0.67586 deg), rad.
ROW_WIDTH_RAD = CCD_COLUMNS * PIXEL_AC_RAD
ZETA_MIN_RAD = -0.5 * N_ROWS * ROW_WIDTH_RAD
ZETA_MAX_RAD = -ZETA_MIN_RAD
#: Time between the centre lines of consecutive strips, ns (4.8502 s).
STRIP_PITCH_NS = STRIP_PITCH_TDI_LINES * TDI_PERIOD_NS
#: Time offset of each strip's centre line from AF1's (the origin of along-scan field angle), ns.
STRIP_OFFSET_NS = {name: (i - STRIPS.index("AF1")) * STRIP_PITCH_NS for i, name in enumerate(STRIPS)}


def fov_phi_rad(fov: np.ndarray) -> np.ndarray:
    """Along-scan field angle of the line of sight of FoV 1 (+basic angle / 2) or FoV 2 (-basic angle / 2)."""
    return np.where(np.asarray(fov) == 1, 0.5 * BASIC_ANGLE_RAD, -0.5 * BASIC_ANGLE_RAD)


def ccd_row_of_zeta(zeta_rad: np.ndarray) -> np.ndarray:
    """CCD row (1..7) at across-scan field angle ``zeta_rad``; 0 off the focal plane."""
    row = 1 + np.floor((np.asarray(zeta_rad) - ZETA_MIN_RAD) / ROW_WIDTH_RAD).astype(np.int64)
    return np.where((row >= 1) & (row <= N_ROWS), row, 0)


def ac_px_of_zeta(zeta_rad: np.ndarray, ccd_row: np.ndarray) -> np.ndarray:
    """AC pixel coordinate (prescan included: 14..1979) of ``zeta_rad`` in ``ccd_row``."""
    first = ZETA_MIN_RAD + (np.asarray(ccd_row) - 1) * ROW_WIDTH_RAD
    column = np.floor((np.asarray(zeta_rad) - first) / PIXEL_AC_RAD).astype(np.int64)
    return AC_PRESCAN_PX + np.clip(column, 0, CCD_COLUMNS - 1)


def zeta_of_ac_px(ac_px: np.ndarray, ccd_row: np.ndarray) -> np.ndarray:
    """Across-scan field angle of the centre of AC pixel ``ac_px`` of ``ccd_row`` (inverse of the above)."""
    first = ZETA_MIN_RAD + (np.asarray(ccd_row) - 1) * ROW_WIDTH_RAD
    return first + (np.asarray(ac_px) - AC_PRESCAN_PX + 0.5) * PIXEL_AC_RAD


# --- frames ------------------------------------------------------------------------------------------


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` of scalar-last quaternions (broadcast over leading axes)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    av, aw = a[..., :3], a[..., 3:]
    bv, bw = b[..., :3], b[..., 3:]
    vector = aw * bv + bw * av + np.cross(av, bv)
    scalar = aw * bw - np.sum(av * bv, axis=-1, keepdims=True)
    return np.concatenate([vector, scalar], axis=-1)


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``v`` rotated by the unit quaternions ``q``: the vector part of ``q * (v, 0) * conj(q)``."""
    q, v = np.asarray(q, dtype=np.float64), np.asarray(v, dtype=np.float64)
    v4 = np.concatenate([v, np.zeros((*v.shape[:-1], 1))], axis=-1)
    conj = q * np.array([-1.0, -1.0, -1.0, 1.0])
    return quat_multiply(quat_multiply(q, v4), conj)[..., :3]


def unit_from_radec(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """ICRS unit vectors of (ra, dec) in degrees."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    cos_dec = np.cos(dec)
    return np.stack([cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)], axis=-1)


def radec_from_unit(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ra in [0, 360), dec) in degrees of ICRS vectors ``u`` (normalised here)."""
    u = np.asarray(u, dtype=np.float64)
    x, y, z = u[..., 0], u[..., 1], u[..., 2]
    ra = np.degrees(np.arctan2(y, x)) % 360.0
    dec = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return ra, dec


def srs_direction(phi_rad: np.ndarray, zeta_rad: np.ndarray) -> np.ndarray:
    """SRS unit vector at field angles (phi, zeta)."""
    phi, zeta = np.asarray(phi_rad), np.asarray(zeta_rad)
    return np.stack([np.cos(zeta) * np.cos(phi), np.cos(zeta) * np.sin(phi), np.sin(zeta)], axis=-1)
