"""OBMT -> UTC for published alerts, as ISO 8601 text with the leap second's 61st second.

The time relation is the run contract's (:mod:`pipeline.timescale`: OBMT -> TCB, Gaia's published relation,
then TCB -> TDB -> TT -> TAI through the IAU SOFA routines, ERFA via pyerfa); here only its last step to a
calendar time: TAI -> UTC (``erfa.taiutc``, ERFA's leap-second table, IERS Bulletin C) and ``erfa.d2dtf``,
which writes the 61st second of a leap-second day as ``23:59:60`` (as VOEvent's ``ISOTime`` wants it; the
catalogue's TIMESTAMP columns cannot, and read it as a second 23:59:59).
"""

from __future__ import annotations

import warnings

import erfa
import numpy as np

from pipeline.timescale import tai_jd

#: Decimal places of the seconds of a published time (ms: the transit times are far better, the OBMT-TCB
#: relation of docs/facts.md is not).
DECIMALS = 3


def utc_iso(obmt_ns: np.ndarray | list[int]) -> list[str]:
    """UTC of each OBMT (int64 ns) as ISO 8601 ``YYYY-MM-DDTHH:MM:SS.sss`` (no zone suffix: the scale is
    UTC, as VOEvent's ``ISOTime`` in a ``UTC-*`` coordinate system wants it)."""
    obmt = np.asarray(obmt_ns, dtype=np.int64).reshape(-1)
    if not len(obmt):
        return []
    with warnings.catch_warnings():
        # "dubious year": past ERFA's leap-second table no further leap second is assumed (pipeline.timescale)
        warnings.simplefilter("ignore", erfa.ErfaWarning)
        utc1, utc2 = erfa.taiutc(*tai_jd(obmt))
        year, month, day, hmsf = erfa.d2dtf("UTC", DECIMALS, utc1, utc2)
    return [f"{y:04d}-{mo:02d}-{d:02d}T{t['h']:02d}:{t['m']:02d}:{t['s']:02d}.{t['f']:0{DECIMALS}d}"
            for y, mo, d, t in zip(year.tolist(), month.tolist(), day.tolist(), hmsf, strict=True)]
