"""A broken SUT that loses 0.5 % of the transits (and their CCD images): every transit whose id is
divisible by 200 after a mixing hash, as a buggy hour-boundary filter might. REQ-E2E-001 must fail."""

import pyarrow as pa
import pyarrow.compute as pc
from _wrap import drop, main


def lost(t: pa.Table) -> pa.Array:
    mixed = pc.bit_wise_and(pc.multiply(t["transit_id"], 0x9E3779B1), 0x7FFFFFFF)
    return pc.not_equal(pc.remainder(mixed, 200), 0)


def bug(out):
    drop(out, "transits", lost)
    drop(out, "ccd", lost)


if __name__ == "__main__":
    main(bug)
