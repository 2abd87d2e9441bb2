"""The reference catalogue given to the pipeline: the sky as a previous cycle saw it.

Mean positions and magnitudes with catalogue errors (PyGaia end-of-mission error models, docs/facts.md
section 5), partitioned by sky region (declination band), in the pipeline's CATALOGUE schema.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from gaiasim import dataset as ds
from gaiasim.sim.instrument.focal_plane import MAS_RAD, radec_from_unit, unit_from_radec
from gaiasim.sim.sky import N_RA
from pipeline import schemas

#: Igloo bands per catalogue partition (sky region): 18 regions of 40 bands.
BANDS_PER_REGION = 40
#: Release whose precision the catalogue has: PyGaia t_factor for DR3 (docs/facts.md section 5).
T_FACTOR = 1.0


def position_sigma_mas(g_mag: np.ndarray) -> np.ndarray:
    """Catalogue position error: 0.75 x the PyGaia parallax error (docs/facts.md section 5)."""
    z = 10.0 ** (0.4 * (np.maximum(g_mag, 13.0) - 15.0))
    return 0.75 * np.sqrt(40.0 + 800.0 * z + 30.0 * z * z) * T_FACTOR / 1000.0


def g_transit_sigma_mag(g_mag: np.ndarray) -> np.ndarray:
    """Per-transit G scatter, PyGaia photometric model with its 20 % margin (docs/facts.md section 5)."""
    z = 10.0 ** (0.4 * (np.maximum(g_mag, 12.0) - 15.0))
    return 1.2e-3 * np.sqrt(0.04895 * z * z + 1.8633 * z + 0.0001985)


def observe(sources: pa.Table, rng: np.random.Generator) -> pa.Table:
    """The catalogue's view of ``sources``: positions and G perturbed by their errors."""
    g = sources["g_mag"].to_numpy().astype(np.float64)
    u = unit_from_radec(sources["ra_deg"].to_numpy(), sources["dec_deg"].to_numpy())
    # Perturb the direction by a 2D Gaussian of sigma per axis: add a tangent vector and renormalise.
    sigma_rad = position_sigma_mas(g) * MAS_RAD
    tangent = rng.normal(0.0, 1.0, u.shape) * sigma_rad[:, None]
    tangent -= np.sum(tangent * u, axis=1, keepdims=True) * u
    ra, dec = radec_from_unit(u + tangent)
    sigma_g = g_transit_sigma_mag(g) / np.sqrt(70.0)  # mean of ~70 transits (docs/facts.md section 1)
    return pa.table(
        {
            "source_id": sources["source_id"].to_numpy(),
            "ra_deg": ra,
            "dec_deg": dec,
            "g_mag": (g + rng.normal(0.0, 1.0, len(g)) * sigma_g).astype(np.float32),
            "g_mag_sigma": g_transit_sigma_mag(g).astype(np.float32),
        },
        schema=schemas.CATALOGUE,
    )


def write(folder: Path, sources: pa.Table, rng: np.random.Generator, part: int = 0) -> None:
    """Write the catalogue of ``sources`` as hive-partitioned Parquet: ``region=NN/part-<part>.parquet``."""
    table = observe(sources, rng)
    region = sources["pixel"].to_numpy() // N_RA // BANDS_PER_REGION
    for r in np.unique(region) if len(region) else [0]:
        path = folder / f"region={r:02d}" / f"part-{part:05d}.parquet"
        ds.write_table(table.filter(pa.array(region == r)), schemas.CATALOGUE, path)
