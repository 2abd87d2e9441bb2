"""A broken SUT whose along-scan centroids are biased by +0.05 px (a wrong LSF origin, say).
REQ-IPD-001 (centroid pulls unbiased) must fail."""

import pyarrow as pa
import pyarrow.compute as pc
from _wrap import main

from tests.runs import rewrite_table

BIAS_PX = 0.05


def biased(t: pa.Table) -> pa.Table:
    i = t.schema.get_field_index("al_px")
    return t.set_column(i, t.schema.field(i), pc.add(t["al_px"], pa.scalar(BIAS_PX, pa.float32())))


if __name__ == "__main__":
    main(lambda out: rewrite_table(out, "ccd", biased))
