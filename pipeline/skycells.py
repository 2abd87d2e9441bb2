"""The reference catalogue cut into sky cells, so an hour of transits loads only the sky it crossed.

A full-scale catalogue (tens of millions of sources) does not fit the run's memory budget next to its
sky index; an hour of scanning crosses two great-circle strips, a few percent of the sky. The catalogue
is streamed once into the run's work area, each batch sorted by cell (``.work/catalogue/<b>.npy``, with
each source's unit vector, and the row range of every cell in ``bounds.npy``), and a slice of an hour
loads the cells within the
match radius of its transits (:func:`cells_within`: the match radius is far smaller than a cell, so
that is the transit's own cell, and a neighbour only for a transit next to a cell edge). Cells are
1 x 1 deg in (ra, dec) (:data:`CELL_DEG`); the two polar rows are taken whole, where cells of constant ra
width shrink to nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import geometry, io, schemas
from pipeline.kernels import skycells as _k

#: Cell size. 1 deg: a slice of an hour (then 200,000 transits, :data:`pipeline.hourly.SLICE_TRANSITS`) loaded
#: 0.48 M sources on average and 2.51 M at most (in the bulge) at scale 1, where 2 deg cells loaded 0.76 M and
#: 4.12 M (0.5 deg cells: 0.34 M and 1.42 M, but 4x the cell bounds, ~64 MB at scale 1); the most sources a slice
#: loads, ~120 bytes each with the crossmatch index, grows with the scale (the cells' margin around a slice's
#: strips holds more sources), and with it the run's peak memory. Measured from the transits of the scale-0.195
#: population-sky day (12.3 M transits, its catalogue scaled x5.13 for scale 1). (An older measurement: 10 deg
#: cells and their neighbours held ~8 M sources, ~1 GB with the index.)
CELL_DEG = 1.0
N_RA = int(360 / CELL_DEG)
N_DEC = int(180 / CELL_DEG)
#: A slice keeps, of the cells it loads, the sources of the fine cells of this size within reach of its
#: transits (:func:`footprint`). A slice in the bulge spans a fraction of a degree of scan: its 1 deg cells
#: held up to 2.5 M sources at scale 1 (~120 bytes each with the crossmatch index), its scan strips a few
#: times fewer. Every source within reach of a transit is kept, so the crossmatch is the same.
FOOTPRINT_DEG = 0.1
#: Rows of a cell's sources judged against the footprint at a time (bounds the temporaries).
FILTER_ROWS = 1 << 18
#: One catalogue source, as the work area stores it: the columns of :data:`pipeline.schemas.CATALOGUE` and
#: its unit vector (ICRS), computed once in the split. Computed per slice instead, the trigonometry of a
#: full-scale slice's ~2 M sources took 0.16 s, a third of building its crossmatch index.
RECORD = np.dtype([("source_id", "i8"), ("ra_deg", "f8"), ("dec_deg", "f8"), ("g_mag", "f4"),
                   ("g_mag_sigma", "f4"), ("u", "f8", (3,))])
#: Version of the split's files (:data:`RECORD` and the bounds); a split of another layout is redone.
LAYOUT = 3
#: Rows per batch read from the catalogue (bounds the memory of the split).
BATCH_ROWS = 1 << 20
INDEX = "index.json"
BOUNDS = "bounds.npy"


def catalogue_files(dataset: Path) -> list[Path]:
    folder = Path(dataset) / "catalogue"
    files = sorted(folder.rglob("*.parquet")) if folder.is_dir() else []
    if not files:
        raise io.InputError(f"{dataset} has no reference catalogue (catalogue/*.parquet); regenerate the dataset")
    return io.require_regular_files(files, Path(dataset))


def batches(dataset: Path):
    """The catalogue in batches of at most :data:`BATCH_ROWS`, checked against
    :data:`pipeline.schemas.CATALOGUE`. File by file and row group by row group: a dataset scanner over
    all files held ~1.1 GB of Arrow buffers at full scale (42 M sources); this holds one row group."""
    for path in catalogue_files(dataset):
        try:
            parquet = pq.ParquetFile(path)
        except (OSError, pa.ArrowInvalid) as exc:
            raise io.InputError(f"catalogue file {path.name} is not readable Parquet ({exc}); "
                                "regenerate the dataset") from None
        names = parquet.schema_arrow.names
        missing = [f.name for f in schemas.CATALOGUE if f.name not in names]
        if missing:
            raise io.InputError(f"catalogue has the wrong schema: column {missing[0]!r} is missing "
                                f"(expected {', '.join(schemas.CATALOGUE.names)})")
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=schemas.CATALOGUE.names):
            try:
                yield pa.Table.from_batches([batch]).cast(schemas.CATALOGUE)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise io.InputError(f"catalogue has the wrong schema: {exc}") from None


def check(dataset: Path) -> int:
    """Read the whole catalogue once (bounded memory) to refuse a bad one before anything is written;
    returns its number of sources."""
    return sum(t.num_rows for t in batches(dataset))


def cell_of(ra_deg: np.ndarray, dec_deg: np.ndarray, cell_deg: float | None = None) -> np.ndarray:
    """Cell number of each position (dec row * columns + ra column) on the grid of ``cell_deg`` cells (None:
    the catalogue's :data:`CELL_DEG`; or :data:`FOOTPRINT_DEG`)."""
    cell_deg = CELL_DEG if cell_deg is None else cell_deg
    n_ra, n_dec = round(360 / cell_deg), round(180 / cell_deg)
    row = np.clip(np.floor((np.asarray(dec_deg) + 90.0) / cell_deg), 0, n_dec - 1).astype(np.int64)
    col = np.floor(np.mod(np.asarray(ra_deg), 360.0) / cell_deg).astype(np.int64) % n_ra
    return row * n_ra + col


def _marked(ra_deg: np.ndarray, dec_deg: np.ndarray, radius_deg: float, cell_deg: float) -> np.ndarray:
    """Boolean mask over the cells of size ``cell_deg`` (rows of dec, columns of ra) holding a point within
    ``radius_deg`` of one of the positions: see :func:`cells_within`."""
    n_ra, n_dec = round(360 / cell_deg), round(180 / cell_deg)
    ra, dec = np.asarray(ra_deg, dtype=np.float64), np.asarray(dec_deg, dtype=np.float64)
    lo, hi = dec - radius_deg, dec + radius_deg
    cos_edge = np.cos(np.radians(np.minimum(np.maximum(np.abs(lo), np.abs(hi)), 90.0)))
    dra = np.minimum(radius_deg / np.maximum(cos_edge, 1e-12), 180.0)
    marked = np.zeros(n_ra * n_dec, dtype=np.bool_)
    _k._mark_cells(np.ravel(ra), np.ravel(lo), np.ravel(hi), np.ravel(dra), cell_deg, n_ra, n_dec, marked)
    # A box as wide as a cell (a radius of half a cell, or a position next to a pole) may have cells between
    # its corners: it takes the whole rows of cells it spans instead (rare: never for the pipeline's radii
    # away from the polar rows).
    wide = np.ravel((2.0 * dra >= cell_deg) | (2.0 * radius_deg >= cell_deg))
    if wide.any():
        rows = np.clip(np.floor((np.stack([np.ravel(lo)[wide], np.ravel(hi)[wide]]) + 90.0) / cell_deg), 0, n_dec - 1)
        for first, last in set(zip(rows[0].astype(int).tolist(), rows[1].astype(int).tolist(), strict=True)):
            marked[first * n_ra:(last + 1) * n_ra] = True
    return marked


def cells_within(ra_deg: np.ndarray, dec_deg: np.ndarray, radius_deg: float) -> np.ndarray:
    """Every cell holding a point within ``radius_deg`` (much less than a cell) of one of the positions
    (finite), sorted: the cells of the corners of each position's (ra, dec) box of half-width
    ``radius_deg`` (in ra ``radius_deg / cos dec``), which covers the circle; a box reaching a polar row of
    cells (or 90 deg of latitude) takes the whole row. Loading only these, instead of every neighbour of
    the cells the positions fall in, reads 2-3x fewer catalogue sources for a scan strip. The cells are
    marked by a numba kernel (a full-scale slice's 200,000 positions: 4 corners each, no sort)."""
    return np.flatnonzero(_marked(ra_deg, dec_deg, radius_deg, CELL_DEG))


def footprint(ra_deg: np.ndarray, dec_deg: np.ndarray, radius_deg: float) -> np.ndarray:
    """The fine cells (:data:`FOOTPRINT_DEG`) within ``radius_deg`` of the positions, as a boolean mask for
    :func:`load_records` ``near``: like :func:`cells_within`, on the fine grid."""
    return _marked(ra_deg, dec_deg, radius_deg, FOOTPRINT_DEG)


def split(dataset: Path, work: Path) -> dict:
    """Write the catalogue into ``work/catalogue`` by cell (once: a finished split is kept); its index:
    ``sources``, ``cell_deg`` and ``cell_bounds`` (int64 (batches, cells + 1): the rows of cell ``c`` in
    batch ``b`` are ``cell_bounds[b, c]:cell_bounds[b, c + 1]``; kept in ``bounds.npy`` beside the
    index, as JSON lists of 16,201 numbers a batch took ~0.6 s to write and read back at scale 1e-2)."""
    folder = work / "catalogue"
    try:
        index = json.loads((folder / INDEX).read_text())
        # A split made with other cells or an older layout (bounds in the JSON, no unit vectors) is redone.
        if index.get("cell_deg") == CELL_DEG and index.get("bounds") == BOUNDS and index.get("layout") == LAYOUT:
            return {**index, "cell_bounds": np.load(folder / BOUNDS)}
    except (FileNotFoundError, json.JSONDecodeError, ValueError):
        pass
    parts, total = [], 0
    for b, table in enumerate(batches(dataset)):
        rec = np.empty(table.num_rows, RECORD)
        for name in schemas.CATALOGUE.names:
            rec[name] = table[name].to_numpy(zero_copy_only=False)
        rec["u"] = geometry.unit_from_radec(rec["ra_deg"], rec["dec_deg"])
        cells = cell_of(rec["ra_deg"], rec["dec_deg"])
        order = np.argsort(cells, kind="stable")
        io.write_npy(rec[order], folder / f"{b:05d}.npy")
        parts.append(np.searchsorted(cells[order], np.arange(N_RA * N_DEC + 1)))
        total += table.num_rows
    bounds = np.array(parts, dtype=np.int64).reshape(len(parts), N_RA * N_DEC + 1)
    io.write_npy(bounds, folder / BOUNDS)
    index = {"sources": total, "cell_deg": CELL_DEG, "bounds": BOUNDS, "layout": LAYOUT}
    io.write_json(index, folder / INDEX)  # last: its presence says the split is complete
    return {**index, "cell_bounds": bounds}


def load_records(work: Path, index: dict, cells: np.ndarray | None = None, near: np.ndarray | None = None
                 ) -> np.ndarray:
    """The catalogue sources in ``cells`` (all of them when None; sorted), in batch and cell order, as
    :data:`RECORD`; with ``near`` (a :func:`footprint` mask) only those in its fine cells. Neighbouring cells
    of a batch are contiguous in its file: each run of them is one copy into the result."""
    bounds = np.asarray(index["cell_bounds"])
    if cells is None:
        lo, hi = bounds[:, :1], bounds[:, -1:]
    else:
        cells = np.asarray(cells, dtype=np.int64)
        lo, hi = bounds[:, cells], bounds[:, cells + 1]
    out = np.empty(int((hi - lo).sum()) if near is None else 0, RECORD)  # with near: the parts kept
    parts, at = [], 0
    for b in range(len(bounds)):
        # Runs of consecutive row ranges: a range starting where the previous one ended joins it.
        keep = hi[b] > lo[b]
        starts, stops = lo[b][keep], hi[b][keep]
        if not len(starts):
            continue
        new_run = np.r_[True, starts[1:] != stops[:-1]]
        run_lo, run_hi = starts[new_run], stops[np.r_[new_run[1:], True]]
        rec = np.load(work / "catalogue" / f"{b:05d}.npy", mmap_mode="r")
        for a, z in zip(run_lo.tolist(), run_hi.tolist(), strict=True):
            if near is None:
                out[at:at + z - a] = rec[a:z]
                at += z - a
                continue
            for first in range(a, z, FILTER_ROWS):
                block = rec[first:min(first + FILTER_ROWS, z)]
                parts.append(np.array(block[near[cell_of(block["ra_deg"], block["dec_deg"], FOOTPRINT_DEG)]]))
    return np.concatenate(parts) if parts else out


def table(records: np.ndarray) -> pa.Table:
    """:data:`RECORD` rows as a :data:`pipeline.schemas.CATALOGUE` table."""
    return pa.table({name: records[name] for name in schemas.CATALOGUE.names}, schema=schemas.CATALOGUE)



def sources(work: Path, index: dict, source_ids: np.ndarray) -> pa.Table:
    """The catalogue rows of ``source_ids`` (read batch by batch)."""
    wanted = np.unique(np.asarray(source_ids, dtype=np.int64))
    parts = []
    for b in range(len(index["cell_bounds"])):
        rec = np.load(work / "catalogue" / f"{b:05d}.npy", mmap_mode="r")
        parts.append(np.array(rec[np.isin(rec["source_id"], wanted)]))
    return table(np.concatenate(parts) if parts else np.empty(0, RECORD))
