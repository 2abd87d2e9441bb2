"""The per-CCD calibration a previous cycle measured, as IDT takes it from the calibration database.

A dataset may carry ``calibration/ccd.parquet`` (:data:`pipeline.layout.CCD_CALIBRATION`, schema
:data:`pipeline.schemas.CCD_CALIBRATION`): corrections to the nominal instrument of
:mod:`pipeline.calibration` and :mod:`pipeline.geometry` for each CCD and field of view. When it is there
the IPD converts each window with its CCD's gain, offset and read noise, divides fluxes by its
throughput and moves observation times by its along-scan displacement; without it every correction is
the identity (:data:`NOMINAL`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import geometry, schemas
from pipeline.io import InputError, sha256_file
from pipeline.layout import CCD_CALIBRATION

#: Columns of the tables: SM1, SM2, AF1..AF9 (a window's SM column is SM1 in FoV 1 and SM2 in FoV 2).
STRIPS = ("SM1", "SM2", *geometry.AF_STRIPS)
_SHAPE = (2, geometry.N_CCD_ROWS, len(STRIPS))
_VALUES = ("gain_factor", "bias_offset_adu", "read_noise_factor", "throughput", "al_offset_mas", "al_rotation_mas")
_IDENTITY = {"gain_factor": 1.0, "bias_offset_adu": 0.0, "read_noise_factor": 1.0, "throughput": 1.0,
             "al_offset_mas": 0.0, "al_rotation_mas": 0.0}


@dataclass(frozen=True, eq=False)
class CcdCalibration:
    """Per-CCD corrections as arrays of shape (FoV 2, row 7, strip 11) over :data:`STRIPS`."""

    tables: dict[str, np.ndarray]
    sha256: str = ""  # of the file it was read from ('' for the nominal)

    def window_index(self, fov: np.ndarray, row: np.ndarray) -> np.ndarray:
        """(m, 10) flat indices into the tables of the SM and AF1..AF9 windows of transits in ``fov``, ``row``."""
        f = np.asarray(fov, dtype=np.int64) - 1
        r = np.asarray(row, dtype=np.int64) - 1
        cols = np.empty((len(f), 10), dtype=np.int64)
        cols[:, 0] = f
        cols[:, 1:] = np.arange(2, 11)
        return ((f * _SHAPE[1] + r) * _SHAPE[2])[:, None] + cols

    def at(self, name: str, index: np.ndarray) -> np.ndarray:
        return np.take(self.tables[name], index)

    def al_offset_px(self, index: np.ndarray, ac_px: np.ndarray) -> np.ndarray:
        """(m, 10) along-scan displacement of each window's CCD at the transit's AC pixel, AL pixels."""
        ac_norm = (np.asarray(ac_px, dtype=np.float64) - geometry.AC_PRESCAN_PX - 0.5 * geometry.CCD_COLUMNS) \
            / (0.5 * geometry.CCD_COLUMNS)
        mas = self.at("al_offset_mas", index) + self.at("al_rotation_mas", index) * ac_norm[:, None]
        return mas * (geometry.MAS_RAD / geometry.PIXEL_AL_RAD)


NOMINAL = CcdCalibration({name: np.full(_SHAPE, value) for name, value in _IDENTITY.items()})


def load(dataset: Path) -> CcdCalibration:
    """The dataset's CCD calibration, or :data:`NOMINAL` when it has none; one :class:`InputError` naming
    the problem for a damaged file, a wrong schema, a CCD missing or given twice, or a value that is not a
    finite number (a factor must be positive)."""
    path = Path(dataset) / CCD_CALIBRATION
    if not path.exists():
        return NOMINAL
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc}); regenerate the dataset") from None
    missing = [f.name for f in schemas.CCD_CALIBRATION if f.name not in table.column_names]
    if missing:
        raise InputError(f"{path}: columns {', '.join(missing)} missing (docs/run-contract.md, CCD calibration)")
    try:
        table = table.select(schemas.CCD_CALIBRATION.names).cast(schemas.CCD_CALIBRATION)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"{path}: a column has the wrong type ({exc}); see docs/run-contract.md") from None
    cols = table.to_pydict()
    tables = {name: np.full(_SHAPE, np.nan) for name in _VALUES}
    seen = set()
    for i, (fov, row, strip) in enumerate(zip(cols["fov"], cols["ccd_row"], cols["strip"], strict=True)):
        if fov not in (1, 2) or row is None or not 1 <= row <= _SHAPE[1] or strip not in STRIPS \
                or (strip == "SM1" and fov == 2) or (strip == "SM2" and fov == 1) \
                or (row == geometry.WFS_ROW and strip == geometry.WFS_STRIP):
            raise InputError(f"{path}: row {i}: no CCD fov={fov} ccd_row={row} strip={strip!r}")
        key = (fov, row, strip)
        if key in seen:
            raise InputError(f"{path}: CCD fov={fov} ccd_row={row} strip={strip} is given twice")
        seen.add(key)
        for name in _VALUES:
            value = cols[name][i]
            bad = value is None or not np.isfinite(value) or (name.endswith(("factor", "throughput")) and value <= 0)
            if bad:
                raise InputError(f"{path}: CCD fov={fov} ccd_row={row} strip={strip}: {name} = {value!r} is not a "
                                 f"{'positive ' if name.endswith(('factor', 'throughput')) else ''}finite number")
            tables[name][fov - 1, row - 1, STRIPS.index(strip)] = value
    expected = 2 * _SHAPE[1] * (len(STRIPS) - 1) - 2  # every CCD but the wavefront sensor, in both FoVs
    if len(seen) != expected:
        raise InputError(f"{path}: {len(seen)} CCDs calibrated, {expected} expected (every CCD of every row and "
                         "field of view)")
    for name, value in _IDENTITY.items():  # the cells no window reads (SM2 in FoV 1, SM1 in FoV 2, the WFS)
        np.nan_to_num(tables[name], copy=False, nan=value)
    return CcdCalibration(tables, sha256_file(path))
