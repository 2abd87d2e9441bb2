"""Truth tables of a dataset (what really happened), written as Parquet parts under ``truth/<table>/``."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from gaiasim.sim.catalogue import TRUTH_CATALOGUE_LINKS
from gaiasim.sim.faults import TRUTH_FAULTS
from gaiasim.sim.hk_faults import TRUTH_HK_ANOMALIES
from gaiasim.sim.instrument.realism import TRUTH_ATTITUDE_EVENTS, TRUTH_INSTRUMENT
from gaiasim.sim.signal import TRUTH_CCD
from gaiasim.sim.sky import TRUTH_SOURCES
from gaiasim.sim.source_physics import TRUTH_SKY_PIXELS, TRUTH_SOURCE_PHYSICS
from gaiasim.sim.variability import TRUTH_TRANSIENTS
from gaiasim.sim.vpu import TRUTH_ARTEFACTS
from pipeline.io import write_table

TRUTH_TRANSITS = pa.schema(
    [
        pa.field("transit_id", pa.int64(), nullable=False),
        pa.field("source_id", pa.int64(), nullable=False),
        pa.field("obmt_ns", pa.int64(), nullable=False, metadata={"unit": "ns", "doc": "AF1 crossing"}),
        pa.field("fov", pa.int8(), nullable=False),
        pa.field("ccd_row", pa.int8(), nullable=False),
        pa.field("ac_px", pa.int16(), nullable=False, metadata={"unit": "px"}),
        pa.field("zeta_rad", pa.float64(), nullable=False, metadata={"unit": "rad"}),
        pa.field("g_mag", pa.float32(), nullable=False, metadata={"unit": "mag", "doc": "at the transit"}),
        pa.field("bp_mag", pa.float32(), nullable=False, metadata={"unit": "mag", "doc": "G_BP at the transit"}),
        pa.field("rp_mag", pa.float32(), nullable=False, metadata={"unit": "mag", "doc": "G_RP at the transit"}),
        pa.field("window_class", pa.int8(), nullable=False),
        pa.field("gate", pa.int8(), nullable=False),
        pa.field("apid", pa.int32(), nullable=False),
        pa.field("seq", pa.int32(), nullable=False),
        pa.field("file", pa.string(), nullable=False, metadata={"doc": "TM file of the transit's packet"}),
    ]
)

TRUTH_ATTITUDE = pa.schema(
    [
        pa.field("obmt_ns", pa.int64(), nullable=False, metadata={"unit": "ns", "doc": "an attitude packet's time"}),
        *(pa.field(f"q_{c}", pa.float64(), nullable=False,
                   metadata={"doc": "real attitude quaternion (SRS to ICRS, scalar last); the packet carries the "
                                    "on-board estimate"}) for c in "xyzw"),
        pa.field("onboard_error_mas", pa.float64(), nullable=False,
                 metadata={"unit": "mas", "doc": "angle between the packet's estimate and the real attitude"}),
    ]
)

#: Every truth table, by name (the folder under truth/ and the view truth_<name>).
TRUTH_TABLES: dict[str, pa.Schema] = {
    "sources": TRUTH_SOURCES,
    "transits": TRUTH_TRANSITS,
    "ccd": TRUTH_CCD,
    "faults": TRUTH_FAULTS,
    "transients": TRUTH_TRANSIENTS,
    "hk_anomalies": TRUTH_HK_ANOMALIES,
    "instrument": TRUTH_INSTRUMENT,
    "attitude": TRUTH_ATTITUDE,
    "attitude_events": TRUTH_ATTITUDE_EVENTS,
    "catalogue_links": TRUTH_CATALOGUE_LINKS,
    "artefacts": TRUTH_ARTEFACTS,  # the on-board VPU's (vpu.py); none with the ideal instrument
    "source_physics": TRUTH_SOURCE_PHYSICS,  # these two: the galaxy sky only (source_physics.py)
    "sky_pixels": TRUTH_SKY_PIXELS,
}


#: Codec of a truth table when not zstd: the per-CCD truth (~630 M rows and 18 GB on the full day, written by
#: the slices on the generator's critical path) in LZ4: 80-90 against 126-139 ns a row to write (a 986 k-row
#: part, 3 tries each, best of 3), for 24.1 against 22.0 octets a row. (The harness's own choice, made as the
#: pipeline made it for its per-hour tables: the two share the Parquet writer, not their codecs.)
TRUTH_CODECS: dict[str, str] = {"ccd": "lz4"}


def write_part(folder: Path, name: str, table: pa.Table) -> Path:
    """Write one part of a truth table (atomic; schema checked against :data:`TRUTH_TABLES`); its path."""
    path = Path(folder) / f"part-{name}.parquet"
    write_table(table, TRUTH_TABLES[Path(folder).name], path, TRUTH_CODECS.get(Path(folder).name, "zstd"))
    return path
