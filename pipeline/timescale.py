"""OBMT -> UTC: the mission's time relation and the IAU time scales, for readers of a run (a contract module).

Every time in a run is OBMT, on-board mission time in int64 ns (the ICD's packet time). Calendar time
comes from two published relations:

1. OBMT -> TCB, Gaia's (docs/facts.md section 1, gaiaunlimited ``obmt2tcbgaia``): TCB [days since
   JD 2455197.5 = 2010-01-01T00:00] = (OBMT_rev - 1717.6256) / 4 + 1826.25, one OBMT revolution being 6 h
   exactly: one OBMT ns is one TCB ns, and OBMT at 2010-01-01T00:00 TCB is 1717.6256 rev - 1826.25 d
   (:data:`OBMT_NS_AT_2010`);
2. TCB -> UTC, the IAU's, through the SOFA routines (ERFA, via pyerfa): TCB -> TDB (``tcbtdb``, IAU 2006
   Resolution B3), TDB -> TT (``dtdb`` at the geocentre, Fairhead & Bretagnon 1990: at most 1.7 ms),
   TT -> TAI (TT = TAI + 32.184 s), TAI -> UTC (ERFA's leap-second table, IERS Bulletin C; past its end,
   ERFA's "dubious year", no further leap second is assumed). TCB - UTC was about 87 s in 2016.

Over a day, TCB - TAI is a straight line to better than 0.1 us (its rate, L_B = 1.55e-8, is 1.3 ms a day;
TDB - TT's periodic terms curve by far less): :class:`UtcRelation` holds that line for each day of a run's
span (:class:`Segment`) with the day's one possible leap second, as numpy (:meth:`UtcRelation.utc_us`) and
as DuckDB SQL (:meth:`UtcRelation.sql`, the ``utc`` columns of ``catalog.duckdb``); ERFA's chain itself is
evaluated twice a day. A leap second (23:59:60) reads as a second 23:59:59 (a TIMESTAMP has no 61st second).
"""

from __future__ import annotations

import datetime as dt
import itertools
import warnings
from dataclasses import dataclass

import numpy as np

#: OBMT (ns) at 2010-01-01T00:00 TCB: 1717.6256 rev x 6 h - 1826.25 d = -120 687 287.04 s (docs/facts.md 1).
OBMT_NS_AT_2010 = 1717_6256 * 21_600_000_000_000 // 10_000 - 1826_25 * 86_400_000_000_000 // 100
#: JD 2455197.5 = 2010-01-01T00:00, the origin of the TCB days of the relation above.
JD_2010 = 2455197.5
#: 2010-01-01T00:00 in microseconds since 1970-01-01T00:00 (14 610 days).
UNIX_US_AT_2010 = 14_610 * 86_400_000_000
NS_PER_DAY = 86_400_000_000_000
#: TT - TAI, s (IAU 1991 Resolution A4; ``erfa.tttai``).
TT_MINUS_TAI_S = 32.184
#: How far past a day's span (:func:`utc_relation`) the relation holds: the day's packets may lie up to
#: 10 minutes outside it (pipeline.ingest.DAY_MARGIN_NS). Further out, the UTC is NULL (SQL) or refused.
MARGIN_NS = 3_600_000_000_000


def _tcb_jd(obmt_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TCB as a two-part Julian date (whole days apart from the day fraction keep ns resolution)."""
    days, rest = np.divmod(np.asarray(obmt_ns, dtype=np.int64) - OBMT_NS_AT_2010, NS_PER_DAY)
    return JD_2010 + days.astype(np.float64), rest / NS_PER_DAY


def _tai_of_tcb(tcb1: np.ndarray, tcb2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import erfa

    tdb1, tdb2 = erfa.tcbtdb(tcb1, tcb2)
    tt1, tt2 = erfa.tdbtt(tdb1, tdb2, erfa.dtdb(tdb1, tdb2, 0.0, 0.0, 0.0, 0.0))
    return erfa.tttai(tt1, tt2)


def tai_jd(obmt_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TAI of each OBMT as a two-part Julian date, through the chain above (what a UTC calendar date and
    time comes from with ``erfa.taiutc``, leap seconds included)."""
    return _tai_of_tcb(*_tcb_jd(np.asarray(obmt_ns, dtype=np.int64).reshape(-1)))


def tcb_minus_tai_us(obmt_ns: np.ndarray) -> np.ndarray:
    """TCB - TAI at each OBMT, microseconds (float64)."""
    tcb1, tcb2 = _tcb_jd(obmt_ns)
    tai1, tai2 = _tai_of_tcb(tcb1, tcb2)
    return ((tcb1 - tai1) + (tcb2 - tai2)) * 86_400e6


def _utc_date(obmt_ns: int) -> dt.date:
    import erfa

    tai1, tai2 = _tai_of_tcb(*_tcb_jd(np.array([obmt_ns])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)  # "dubious year": no leap second assumed past the table
        utc1, utc2 = erfa.taiutc(tai1, tai2)
        y, m, d, _ = erfa.d2dtf("UTC", 0, utc1, utc2)
    return dt.date(int(y[0]), int(m[0]), int(d[0]))


def tai_minus_utc_s(date: dt.date) -> int:
    """TAI - UTC (whole seconds since 1972) at the start of the UTC ``date`` (``erfa.dat``)."""
    import erfa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)
        return round(float(erfa.dat(date.year, date.month, date.day, 0.0)))


def _obmt_of_tai(date: dt.date, tai_minus_midnight_s: float) -> int:
    """OBMT (ns) of the instant whose TAI is ``date``'s 00:00 (as a TAI clock reads it) plus
    ``tai_minus_midnight_s`` seconds."""
    import erfa

    utc1, utc2 = erfa.dtf2d("UTC", date.year, date.month, date.day, 0, 0, 0.0)
    tai1, tai2 = erfa.utctai(utc1, utc2)
    tai2 = tai2 + (tai_minus_midnight_s - tai_minus_utc_s(date)) / 86_400  # utctai gave midnight + TAI-UTC
    tt1, tt2 = erfa.taitt(tai1, tai2)
    tdb1, tdb2 = erfa.tttdb(tt1, tt2, erfa.dtdb(tt1, tt2, 0.0, 0.0, 0.0, 0.0))
    tcb1, tcb2 = erfa.tdbtcb(tdb1, tdb2)
    days = round(float(tcb1) - JD_2010)
    return OBMT_NS_AT_2010 + days * NS_PER_DAY + round((float(tcb1) - JD_2010 - days + float(tcb2)) * NS_PER_DAY)


@dataclass(frozen=True)
class Segment:
    """UTC of the OBMTs in [``start_ns``, ``end_ns``] (at most a day): TCB - TAI a straight line from
    ``tcb_minus_tai_us[0]`` at ``start_ns`` to ``tcb_minus_tai_us[1]`` at ``end_ns``; TAI - UTC
    ``tai_minus_utc_s[0]`` before ``leap_ns``, ``tai_minus_utc_s[1]`` from it (without a leap second both are
    equal and ``leap_ns`` is ``end_ns`` + 1)."""

    start_ns: int
    end_ns: int
    tcb_minus_tai_us: tuple[int, int]
    leap_ns: int
    tai_minus_utc_s: tuple[int, int]

    def utc_us(self, t: np.ndarray) -> np.ndarray:
        (d0, d1), (a0, a1) = self.tcb_minus_tai_us, self.tai_minus_utc_s
        drift = (d1 - d0) * (t - self.start_ns) // (self.end_ns - self.start_ns)
        leap = np.where(t >= self.leap_ns, a1, a0).astype(np.int64) * 1_000_000
        return UNIX_US_AT_2010 + (t - OBMT_NS_AT_2010) // 1000 - (d0 + drift) - leap

    def sql(self, column: str) -> str:
        # The same integer arithmetic as utc_us: every operand of a division is non-negative inside the
        # segment, so DuckDB's and numpy's integer divisions agree; every product is below 2**63 (at most
        # 1e4 us x 9.4e13 ns).
        (d0, d1), (a0, a1) = self.tcb_minus_tai_us, self.tai_minus_utc_s
        return (f"WHEN {column} BETWEEN {self.start_ns} AND {self.end_ns} THEN make_timestamp("
                f"{UNIX_US_AT_2010} + ({column} + {-OBMT_NS_AT_2010}) // 1000 - {d0} "
                f"- {d1 - d0} * ({column} - {self.start_ns}) // {self.end_ns - self.start_ns} "
                f"- CASE WHEN {column} >= {self.leap_ns} THEN {a1 * 1_000_000} ELSE {a0 * 1_000_000} END)")


@dataclass(frozen=True)
class UtcRelation:
    """UTC of the OBMTs in [``start_ns``, ``end_ns``]: one :class:`Segment` a day, end to end."""

    segments: tuple[Segment, ...]

    @property
    def start_ns(self) -> int:
        return self.segments[0].start_ns

    @property
    def end_ns(self) -> int:
        return self.segments[-1].end_ns

    def utc_us(self, obmt_ns: np.ndarray) -> np.ndarray:
        """UTC as int64 microseconds since 1970 (rounded down): ``datetime64[us]`` once viewed as one."""
        t = np.asarray(obmt_ns, dtype=np.int64)
        if t.size and (t.min() < self.start_ns or t.max() > self.end_ns):
            raise ValueError(f"OBMT outside [{self.start_ns}, {self.end_ns}] ns, the span this relation holds for")
        which = np.searchsorted([seg.start_ns for seg in self.segments], t, side="right") - 1
        out = np.empty(t.shape, dtype=np.int64)
        for k, seg in enumerate(self.segments):
            mask = which == k
            out[mask] = seg.utc_us(t[mask])
        return out

    def sql(self, column: str) -> str:
        """DuckDB SQL (1.1 and later): the UTC of the OBMT column ``column`` as a TIMESTAMP (us, rounded
        down; NULL outside the span), the arithmetic of :meth:`utc_us`."""
        return f"CASE {' '.join(seg.sql(column) for seg in self.segments)} END"


def _segment(start: int, end: int) -> Segment:
    d0, d1 = (round(float(v)) for v in tcb_minus_tai_us(np.array([start, end])))
    if not 0 <= d1 - d0 < 10_000:  # TCB - TAI grows by 1.3 ms a day
        raise ValueError(f"TCB - TAI goes from {d0} to {d1} us over OBMT {start}..{end} ns: not a day's")
    first, last = _utc_date(start), _utc_date(end)
    a0 = tai_minus_utc_s(first)
    leap_ns, a1 = end + 1, a0
    day = first
    while day < last:  # a leap second ends the UTC day before a date whose TAI - UTC differs
        day += dt.timedelta(days=1)
        if tai_minus_utc_s(day) != a0:
            a1 = tai_minus_utc_s(day)
            # From the start of the leap second (TAI = midnight + a0), UTC is TAI - a1: 23:59:59 again.
            leap_ns = _obmt_of_tai(day, float(a0))
            break
    return Segment(start, end, (d0, d1), leap_ns, (a0, a1))


def utc_relation(span_ns: tuple[int, int]) -> UtcRelation:
    """The OBMT -> UTC relation over a run's OBMT span [start, end) (a day or several), widened by
    :data:`MARGIN_NS` each side: a :class:`Segment` a day."""
    start, end = int(span_ns[0]) - MARGIN_NS, int(span_ns[1]) + MARGIN_NS
    if start <= OBMT_NS_AT_2010 or end <= start:
        raise ValueError(f"OBMT span {list(span_ns)} ns: not a span of days after 2010-01-01")
    bounds = [*range(start, end, NS_PER_DAY), end + 1]
    return UtcRelation(tuple(_segment(a, b - 1) for a, b in itertools.pairwise(bounds)))
