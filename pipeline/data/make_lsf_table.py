"""Write ``lsf_af.csv`` beside this file: the AF line spread function (LSF) calibration table of the pipeline.

Gaia's IDT fits each window with an LSF from the calibration database (docs/facts.md section 4). Ours is a
table of the normalised LSF against ``u``, the along-scan offset from the image centre in units of the
LSF width (``Calibration.lsf_sigma_px``): ``cdf`` (the fraction of the image flux below ``u``), ``pdf``
(its derivative) and ``dpdf_du``. The pipeline interpolates it (cubic Hermite, ``pipeline.lsf``). This
script writes the instrument the simulator renders, a Gaussian of width ~1 AL pixel (de Bruijne+2015,
A&A 576, A74, Fig. 5; docs/facts.md section 5), so a calibration error is something a test injects on purpose.

Run ``python pipeline/data/make_lsf_table.py`` after changing it (``--check`` exits 1 when the
committed table differs from what this script writes).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

TABLE = Path(__file__).with_name("lsf_af.csv")
#: Grid: u from -U_MAX to +U_MAX in steps of 1 / STEPS_PER_UNIT (cubic Hermite error ~1e-11 of the flux).
U_MAX = 8
STEPS_PER_UNIT = 128

HEADER = f"""\
# Gaia AF line spread function (LSF) calibration table for gaiasim's pipeline (pipeline.lsf).
# u: along-scan offset from the image centre in LSF widths (Calibration.lsf_sigma_px, ~1 AL pixel;
#    de Bruijne+2015, A&A 576, A74, Fig. 5; docs/facts.md section 5).
# cdf: fraction of the image flux below u; pdf = d cdf / du; dpdf_du = d pdf / du.
# A sample centred at k (AL px) gets the fraction cdf((k + 0.5 - kappa) / sigma) - cdf((k - 0.5 - kappa) / sigma)
# of an image centred at kappa. Outside the table: cdf 0 or 1, pdf 0.
# Grid: uniform, step 1/{STEPS_PER_UNIT}, |u| <= {U_MAX}. Written by pipeline/data/make_lsf_table.py.
u,cdf,pdf,dpdf_du
"""


def rows() -> list[str]:
    out = []
    for i in range(-U_MAX * STEPS_PER_UNIT, U_MAX * STEPS_PER_UNIT + 1):
        u = i / STEPS_PER_UNIT
        pdf = math.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)
        cdf = 0.5 * math.erfc(-u / math.sqrt(2.0))  # erfc keeps the far left tail's relative precision
        out.append(f"{u!r},{cdf!r},{pdf!r},{-u * pdf!r}")
    return out


def text() -> str:
    return HEADER + "\n".join(rows()) + "\n"


def same_table(a: str, b: str) -> bool:
    """Same header and values to 1e-14 (libm's exp and erfc may differ in the last bit between platforms)."""
    la, lb = a.splitlines(), b.splitlines()
    if len(la) != len(lb):
        return False
    for x, y in zip(la, lb, strict=True):
        if x.startswith(("#", "u,")) or y.startswith(("#", "u,")):
            if x != y:
                return False
            continue
        if not all(math.isclose(float(p), float(q), rel_tol=1e-14, abs_tol=1e-300)
                   for p, q in zip(x.split(","), y.split(","), strict=True)):
            return False
    return True


def main(argv: list[str]) -> int:
    if argv[1:] == ["--check"]:
        if not same_table(TABLE.read_text(), text()):
            print(f"{TABLE} differs from what {Path(__file__).name} writes; run it to update", file=sys.stderr)
            return 1
        return 0
    TABLE.write_text(text())
    print(f"wrote {TABLE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
