"""pipeline.timescale: OBMT -> UTC over a day, as numpy and as the SQL of catalog.duckdb's ``utc`` columns,
against ERFA's full chain evaluated at every instant (and the IAU's defining constants)."""

from __future__ import annotations

import datetime as dt
import warnings

import duckdb
import erfa
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gaiasim.sim import timescale as sim_timescale
from pipeline import timescale as ts

#: IAU 2006 Resolution B3: TDB = TCB - L_B (JD_TCB - T_0) 86400 s + TDB_0 (TT and TDB differ by < 1.7 ms).
L_B = 1.550519768e-8
T_0 = 2443144.5003725
#: Leap-second days (IERS Bulletin C): TAI - UTC before and after the UTC midnight that starts the date.
LEAPS = {dt.date(2012, 7, 1): (34, 35), dt.date(2015, 7, 1): (35, 36), dt.date(2017, 1, 1): (36, 37)}


def _day(date: dt.date) -> tuple[int, int]:
    start = sim_timescale.obmt_ns_from_date(date)
    return start, start + ts.NS_PER_DAY


def _reference_us(obmt_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UTC (us since 1970, rounded down) of each OBMT by ERFA's chain, each instant on its own, with its
    calendar second (60 inside a leap second)."""
    tcb1, tcb2 = ts._tcb_jd(obmt_ns)
    tdb1, tdb2 = erfa.tcbtdb(tcb1, tcb2)
    tt1, tt2 = erfa.tdbtt(tdb1, tdb2, erfa.dtdb(tdb1, tdb2, 0.0, 0.0, 0.0, 0.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)  # "dubious year": past the leap-second table
        utc1, utc2 = erfa.taiutc(*erfa.tttai(tt1, tt2))
        y, m, d, hmsf = erfa.d2dtf("UTC", 6, utc1, utc2)
    out, seconds = [], []
    for yy, mm, dd, (h, mi, s, f) in zip(y.tolist(), m.tolist(), d.tolist(), hmsf.tolist(), strict=True):
        midnight = (dt.datetime(yy, mm, dd) - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)
        out.append(midnight + ((h * 60 + mi) * 60 + s) * 1_000_000 + f)
        seconds.append(s)
    return np.array(out, dtype=np.int64), np.array(seconds)


def test_the_contract_holds_the_mission_s_relation():
    assert ts.OBMT_NS_AT_2010 == -120_687_287_040_000_000  # 1717.6256 rev x 6 h - 1826.25 d
    # The simulator has its own (the harness and the system under test share only the contract), pinned to
    # the same published value: 1717.6256 rev x 6 h - 1826.25 d.
    assert sim_timescale.OBMT_NS_AT_TCB_ORIGIN == -120_687_287_040_000_000


def test_tcb_minus_utc_in_2016_is_the_iau_s():
    """2016-01-16T00:00 TCB: TCB - UTC = (TAI - UTC) + 32.184 s + L_B (JD - T_0) 86400 s - TDB_0 + (TDB - TT)."""
    start, end = _day(dt.date(2016, 1, 16))
    relation = ts.utc_relation((start, end))
    utc_us = int(relation.utc_us(np.array([start]))[0])
    tcb_us = ts.UNIX_US_AT_2010 + (start - ts.OBMT_NS_AT_2010) // 1000
    expected_s = 36 + ts.TT_MINUS_TAI_S + L_B * (2457403.5 - T_0) * 86400
    assert abs((tcb_us - utc_us) / 1e6 - expected_s) < 2e-3
    assert np.datetime64(utc_us, "us").astype(str).startswith("2016-01-15T23:58:32.71")


@given(day=st.dates(dt.date(2010, 1, 2), dt.date(2030, 12, 31)), days=st.integers(1, 31),
       at=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8))
def test_the_lines_of_the_days_are_erfa_s_chain(day, days, at):
    start, _ = _day(day)
    relation = ts.utc_relation((start, start + days * ts.NS_PER_DAY))  # a run of 1 to 31 days (gaiasim.spec)
    span = relation.end_ns - relation.start_ns
    t = np.array([relation.start_ns, relation.end_ns, *(relation.start_ns + int(a * span) for a in at)])
    want, seconds = _reference_us(t)
    got = relation.utc_us(t)
    ok = seconds != 60
    assert np.all(np.abs(got - want)[ok] <= 2), (got - want)


@pytest.mark.parametrize("date", sorted(LEAPS))
def test_a_leap_second_reads_as_a_second_23_59_59(date):
    for day in (date - dt.timedelta(days=1), date):  # the TCB days that hold the leap second
        relation = ts.utc_relation(_day(day))
        segment = next((seg for seg in relation.segments if seg.leap_ns <= seg.end_ns), None)
        if segment is None:
            continue
        assert segment.tai_minus_utc_s == LEAPS[date]
        t = segment.leap_ns + np.arange(-4, 6) * 250_000_000  # -1 s .. +1.25 s around its start
        got = relation.utc_us(t)
        want, seconds = _reference_us(t)
        assert np.all(np.abs(got - want)[seconds != 60] <= 2)
        inside = seconds == 60
        assert inside.sum() == 4 and np.all(np.abs(got - want + 1_000_000)[inside] <= 2)
        midnight = (dt.datetime.combine(date, dt.time()) - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)
        assert np.all((got[inside] >= midnight - 1_000_002) & (got[inside] < midnight))  # on its own day
        break
    else:
        pytest.fail(f"no TCB day around {date} holds its leap second")


@pytest.mark.parametrize("day", [dt.date(2016, 1, 16), dt.date(2016, 12, 31), dt.date(2017, 1, 1)])
def test_the_sql_is_the_numpy(day):
    relation = ts.utc_relation((_day(day)[0], _day(day)[1] + ts.NS_PER_DAY))  # two days: three segments
    edges = [t for seg in relation.segments for t in (seg.start_ns, seg.end_ns, min(seg.leap_ns, seg.end_ns) - 1,
                                                      min(seg.leap_ns, seg.end_ns))]
    inside = np.array([*edges, (relation.start_ns + relation.end_ns) // 2])
    values = [*inside.tolist(), relation.start_ns - 1, relation.end_ns + 1, None]
    with duckdb.connect() as con:
        con.execute("CREATE TABLE t (obmt_ns BIGINT)")
        con.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
        got = con.sql(f"SELECT {relation.sql('obmt_ns')} AS utc FROM t").fetchall()
    want = [np.datetime64(int(v), "us").astype(dt.datetime) for v in relation.utc_us(inside)]
    assert [r[0] for r in got] == [*want, None, None, None]


def test_utc_us_refuses_an_obmt_outside_its_span():
    relation = ts.utc_relation(_day(dt.date(2016, 1, 16)))
    with pytest.raises(ValueError, match="outside"):
        relation.utc_us(np.array([relation.end_ns + 1]))
