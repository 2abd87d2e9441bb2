"""On-board mission time (OBMT) <-> TCB and calendar dates.

OBMT is kept as int64 nanoseconds. docs/facts.md section 1 (gaiaunlimited ``obmt2tcbgaia``):

    TCB [days since JD 2455197.5] = (OBMT_rev - 1717.6256) / 4 + 1826.25,  1 OBMT rev = 6 h exactly.

One OBMT nanosecond is therefore one TCB nanosecond, and the two differ by a constant offset.
JD 2455197.5 is 2010-01-01T00:00 (also J2010.0), so TCB days count from that midnight.

Calendar dates are treated as TCB dates: UTC differs from TCB by about a minute (leap seconds
plus TT - UTC plus the TCB rate), far below what a daily simulation cares about.
"""

from __future__ import annotations

import datetime

import numpy as np

#: One OBMT revolution: exactly 6 h (docs/facts.md section 1: 4 rev/day in ``obmt2tcbgaia``).
OBMT_REV_NS = 21_600_000_000_000
NS_PER_DAY = 86_400_000_000_000
#: Julian date of the TCB day origin used by the formula above (2010-01-01T00:00, J2010.0).
TCB_ORIGIN_JD = 2455197.5
TCB_ORIGIN_DATE = datetime.date(2010, 1, 1)
#: J2000.0 = JD 2451545.0; the Sun formula in docs/facts.md counts days from it.
J2000_JD = 2451545.0
#: Days from J2000.0 to the TCB origin: 2455197.5 - 2451545.0 [D].
TCB_ORIGIN_DAYS_SINCE_J2000 = TCB_ORIGIN_JD - J2000_JD
#: OBMT at the TCB origin: 1717.6256 rev * 6 h - 1826.25 d = -120 687 287.04 s exactly [D].
OBMT_NS_AT_TCB_ORIGIN = 1717_6256 * OBMT_REV_NS // 10_000 - 1826_25 * NS_PER_DAY // 100


def obmt_ns_from_tcb_days(tcb_days: np.ndarray | float) -> np.ndarray:
    """OBMT (int64 ns) at ``tcb_days`` days since 2010-01-01T00:00 TCB, rounded to the ns."""
    return OBMT_NS_AT_TCB_ORIGIN + np.round(np.asarray(tcb_days, dtype=np.float64) * NS_PER_DAY).astype(
        np.int64
    )


def tcb_days_from_obmt_ns(obmt_ns: np.ndarray | int) -> np.ndarray:
    """TCB days since 2010-01-01T00:00 (JD 2455197.5) at OBMT ``obmt_ns`` (int64 ns); float64."""
    # Integer subtraction first, so the float conversion only sees the (smaller) TCB offset.
    tcb_ns = np.asarray(obmt_ns, dtype=np.int64) - OBMT_NS_AT_TCB_ORIGIN
    return tcb_ns / NS_PER_DAY


def days_since_j2000_from_obmt_ns(obmt_ns: np.ndarray | int) -> np.ndarray:
    """Days since J2000.0 (JD 2451545.0, TCB taken as TT) at OBMT ``obmt_ns``; float64."""
    return tcb_days_from_obmt_ns(obmt_ns) + TCB_ORIGIN_DAYS_SINCE_J2000


def obmt_ns_from_date(date: datetime.date) -> int:
    """OBMT (ns) at midnight starting ``date``, taking the date as a TCB date (UTC ~ TCB, see module doc)."""
    if not isinstance(date, datetime.date) or isinstance(date, datetime.datetime):
        raise ValueError(
            f"date must be a datetime.date (not {type(date).__name__}); use .date() on datetimes"
        )
    return OBMT_NS_AT_TCB_ORIGIN + (date - TCB_ORIGIN_DATE).days * NS_PER_DAY


def date_from_obmt_ns(obmt_ns: int) -> datetime.date:
    """The (TCB) calendar date that contains OBMT ``obmt_ns`` (a scalar)."""
    days = (int(obmt_ns) - OBMT_NS_AT_TCB_ORIGIN) // NS_PER_DAY
    return TCB_ORIGIN_DATE + datetime.timedelta(days=days)
