"""The operations logbook (gaiasim.sim.logbook): seeded, so the same spec gives the same bytes."""

from __future__ import annotations

import datetime as dt

import faker.providers.date_time as faker_dates

from gaiasim.sim import logbook


def _entries() -> list[dict]:
    return logbook.entries(42, dt.date(2016, 1, 16), 2, ["2016-01-16T02-00", "2016-01-17T02-00"], {}, [], [5, 6])


def test_the_logbook_does_not_depend_on_the_wall_clock(monkeypatch):
    today = _entries()
    real = faker_dates.datetime

    class _NextYear(real):
        @classmethod
        def now(cls, tz=None):
            return real.now(tz) + dt.timedelta(days=400)

    monkeypatch.setattr(faker_dates, "datetime", _NextYear)  # Faker's "now", a year on
    assert _entries() == today, "the seeded logbook changed with the date it was generated on"

