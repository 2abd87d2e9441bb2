"""Procedural sky: sources are a deterministic function of (seed, sky pixel).

A day only materialises the pixels that its scans cross (:func:`pixels_near`), so a full-scale day never
holds the 1.8e9-source sky in memory. The pixelisation is an equal-area "igloo": ``N_Z`` bands of equal
height in z = sin(dec), each cut into ``N_RA`` equal cells, so every pixel has the same area
(41 253 deg^2 / (N_Z x N_RA) ~ 0.0625 deg^2, about a quarter of a degree across at the equator: small
against the 0.7 deg field of view, so little is materialised that no scan crosses) and uniform positions
inside a pixel are uniform on the sphere. Each pixel's sources come from its own counter-based random
stream (:mod:`gaiasim.sim.kernels_sky`), so they do not depend on which other pixels are materialised.

Counts follow Gaia's (docs/facts.md section 7): 1.81e9 sources with G at scale 1 (DR3), magnitudes from the
cumulative N(<G) table, denser towards the Galactic plane and bulge.
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa

from gaiasim.sim import kernels_sky as _ks
from gaiasim.sim.instrument.focal_plane import radec_from_unit, unit_from_radec

N_Z = 720
N_RA = 916
N_PIXELS = N_Z * N_RA
SKY_DEG2 = 4.0 * np.pi * (180.0 / np.pi) ** 2
PIXEL_DEG2 = SKY_DEG2 / N_PIXELS
#: Sources with a G magnitude in Gaia DR3 (docs/facts.md section 7, [C]).
N_SOURCES_SCALE1 = 1_811_709_771
#: source_id = pixel << SOURCE_ID_SHIFT | running number, like Gaia's HEALPix-prefixed ids.
SOURCE_ID_SHIFT = 35

#: Cumulative counts N(<G) over the whole sky (docs/facts.md section 7; [U] values recalled there, the
#: bright end and the 20.7 detection limit (docs/facts.md section 2) added here as [U] anchors).
CUMULATIVE_COUNTS = (
    (3.0, 2.0e2),
    (6.0, 5.0e3),
    (9.0, 1.5e5),
    (12.0, 3.0e6),
    (13.0, 8.0e6),
    (15.0, 4.0e7),
    (17.0, 1.8e8),
    (19.0, 6.0e8),
    (20.0, 1.05e9),
    (20.7, 1.811709771e9),
)

# Galactic pole and node in ICRS (J2000; Hipparcos definition) for the density model.
_NGP_RA_DEG, _NGP_DEC_DEG, _GC_RA_DEG, _GC_DEC_DEG = 192.85948, 27.12825, 266.40510, -28.93617
#: Plane-to-pole contrast and scale height of the density model [U] (docs/facts.md section 7: 10-100x).
DISC_SCALE_SIN_B = 0.12
DISC_CONTRAST = 30.0
BULGE_CONTRAST = 60.0
BULGE_RADIUS_DEG = 12.0

TRUTH_SOURCES = pa.schema(
    [
        pa.field("source_id", pa.int64(), nullable=False),
        pa.field("pixel", pa.int32(), nullable=False, metadata={"doc": "igloo sky pixel (sky.py)"}),
        pa.field("ra_deg", pa.float64(), nullable=False, metadata={"unit": "deg"}),
        pa.field("dec_deg", pa.float64(), nullable=False, metadata={"unit": "deg"}),
        pa.field("g_mag", pa.float32(), nullable=False, metadata={"unit": "mag"}),
        pa.field("bp_rp", pa.float32(), nullable=False, metadata={"unit": "mag"}),
    ]
)


def pixel_of_unit(u: np.ndarray) -> np.ndarray:
    """Igloo pixel index of ICRS unit vectors (n, 3)."""
    u = np.asarray(u, dtype=np.float64)
    band = np.clip(np.floor((u[..., 2] + 1.0) * 0.5 * N_Z).astype(np.int64), 0, N_Z - 1)
    ra = np.arctan2(u[..., 1], u[..., 0]) % (2.0 * np.pi)
    cell = np.clip(np.floor(ra / (2.0 * np.pi) * N_RA).astype(np.int64), 0, N_RA - 1)
    return band * N_RA + cell


def _pixel_bounds(pixel: int) -> tuple[float, float, float, float]:
    band, cell = divmod(int(pixel), N_RA)
    z0 = -1.0 + 2.0 * band / N_Z
    ra0 = 2.0 * np.pi * cell / N_RA
    return z0, z0 + 2.0 / N_Z, ra0, ra0 + 2.0 * np.pi / N_RA


def _galactic_weight(u: np.ndarray) -> np.ndarray:
    """Relative source density at directions ``u``: isotropic halo + exponential disc + bulge [U]."""
    ngp = unit_from_radec(_NGP_RA_DEG, _NGP_DEC_DEG)
    gc = unit_from_radec(_GC_RA_DEG, _GC_DEC_DEG)
    sin_b = np.abs(u @ ngp)
    cos_gc = np.clip(u @ gc, -1.0, 1.0)
    bulge = np.exp(-0.5 * (np.rad2deg(np.arccos(cos_gc)) / BULGE_RADIUS_DEG) ** 2)
    return 1.0 + DISC_CONTRAST * np.exp(-sin_b / DISC_SCALE_SIN_B) + BULGE_CONTRAST * bulge


def pixel_centres() -> np.ndarray:
    band, cell = np.divmod(np.arange(N_PIXELS), N_RA)
    z = -1.0 + (2.0 * band + 1.0) / N_Z
    ra = 2.0 * np.pi * (cell + 0.5) / N_RA
    r = np.sqrt(1.0 - z * z)
    return np.stack([r * np.cos(ra), r * np.sin(ra), z], axis=-1)


def mean_sources_per_pixel(scale: float) -> np.ndarray:
    """Expected number of sources in every pixel at ``scale`` (the sum is 1.81e9 x scale)."""
    w = _galactic_weight(pixel_centres())
    return w / w.sum() * N_SOURCES_SCALE1 * scale


#: BP-RP distribution: a broad Gaussian, clipped [U]; refined with the sky model later.
COLOUR_MEAN, COLOUR_SIGMA, COLOUR_RANGE = 1.0, 0.45, (-0.4, 4.0)
#: Separates the sky's random streams from the other users of the seed.
_SKY_STREAM = 0x5CA1AB1E


@functools.cache
def mean_sources_per_pixel_cached(scale: float) -> np.ndarray:
    """:func:`mean_sources_per_pixel`, computed once per process and scale."""
    return mean_sources_per_pixel(scale)


#: Sky models a spec's ``sky`` key may name: this module's N(<G) table, or the population model of
#: :mod:`gaiasim.sim.galaxy` (docs/sky.md).
MODELS = ("toy", "galaxy")


def expected_sources(pixels: np.ndarray, scale: float, model: str = "toy") -> np.ndarray:
    """Expected sources of each of ``pixels`` at ``scale`` under sky ``model``."""
    if model == "galaxy":
        from gaiasim.sim import galaxy  # not at the top: galaxy builds on this module

        return galaxy.expected_sources(pixels, scale)
    return mean_sources_per_pixel_cached(scale)[np.asarray(pixels, dtype=np.int64)]


def materialise(seed: int, pixels: np.ndarray, scale: float, model: str = "toy") -> pa.Table:
    """All sources of ``pixels`` at ``scale``: deterministic in (seed, pixel), independent of the others."""
    if model == "galaxy":
        from gaiasim.sim import galaxy

        return galaxy.materialise(seed, pixels, scale)
    if model != "toy":
        raise ValueError(f"sky = {model!r}: unknown sky model; use one of {', '.join(MODELS)}")
    pixels = np.unique(np.asarray(pixels, dtype=np.int64))
    key = int(seed) ^ _SKY_STREAM
    counts = np.empty(len(pixels), dtype=np.int64)
    _ks._count_sources(key, pixels, mean_sources_per_pixel_cached(float(scale)), counts)
    offsets = np.zeros(len(pixels) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    n = int(offsets[-1])
    z, ra, g, bp_rp = (np.empty(n) for _ in range(4))
    g_anchor, n_anchor = np.array(CUMULATIVE_COUNTS).T
    _ks._fill_sources(key, pixels, offsets, N_Z, N_RA, np.log10(n_anchor), g_anchor, COLOUR_MEAN, COLOUR_SIGMA,
                      *COLOUR_RANGE, z, ra, g, bp_rp)
    r = np.sqrt(1.0 - z * z)
    ra_deg, dec_deg = radec_from_unit(np.stack([r * np.cos(ra), r * np.sin(ra), z], axis=-1))
    pixel_of = np.repeat(pixels, counts)
    return pa.table(
        {
            "source_id": (pixel_of << SOURCE_ID_SHIFT) + (np.arange(n) - np.repeat(offsets[:-1], counts)),
            "pixel": pixel_of.astype(np.int32),
            "ra_deg": ra_deg,
            "dec_deg": dec_deg,
            "g_mag": g.astype(np.float32),
            "bp_rp": bp_rp.astype(np.float32),
        },
        schema=TRUTH_SOURCES,
    )


def pixels_near(directions: np.ndarray) -> np.ndarray:
    """Unique pixels containing any of the sampled ``directions`` (n, 3)."""
    return np.unique(pixel_of_unit(directions))
