"""Downlink: packets of a span go down in ground-station passes, one TM file per pass.

Gaia has on average ~8 h of contact a day (docs/facts.md section 3). Here three passes a day start at
02:00, 10:00 and 18:00 on board; each pass carries every packet generated since the previous pass, so
the tail of a day arrives in the next day's first pass. Within a pass, housekeeping and attitude go
first and star packets follow by priority: bright window classes before faint ones (docs/facts.md section 3,
GDR2 doc 2.4.1), so a pass is not in time order across APIDs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pipeline import icd

#: Pass start times after midnight (on board), hours [U: real passes move with station visibility].
PASS_START_H = (2.0, 10.0, 18.0)
#: Priority of each APID within a pass: lower goes first.
PRIORITY = {icd.APID_HK: 0, icd.APID_ATTITUDE: 1, icd.APID_STAR_WC0: 2, icd.APID_STAR_WC1: 3,
            icd.APID_STAR_WC2: 4}


@dataclass(frozen=True)
class Pass:
    name: str  # TM file stem, e.g. "2016-03-01T02-00"
    start_ns: int  # packets generated before this (and after the previous pass) go down in it


def pass_schedule(date: dt.date, days: int, t0_ns: int) -> list[Pass]:
    """Passes that carry the data of ``days`` days from ``date`` (whose midnight is ``t0_ns``)."""
    passes = []
    for d in range(days + 1):
        for h in PASS_START_H:
            start = t0_ns + int((d * 24 + h) * 3600e9)
            name = (dt.datetime.combine(date, dt.time()) + dt.timedelta(days=d, hours=h)).strftime("%Y-%m-%dT%H-%M")
            passes.append(Pass(name, start))
            if d == days:  # only the first pass of the day after the span is needed
                return passes
    return passes
