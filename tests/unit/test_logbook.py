"""The operations logbook (gaiasim.sim.logbook): seeded, so the same spec gives the same bytes; its anomaly
counts are the detection scorecard's injected counts, from the same ledgers."""

from __future__ import annotations

import datetime as dt
import json

import faker.providers.date_time as faker_dates
import pyarrow as pa
import pytest

from gaiasim.sim import logbook
from gaiasim.sim.timescale import obmt_ns_from_date
from gaiasim.validate import db, scorecard

DAY_NS = logbook.NS_PER_DAY
HOUR_NS = 3_600_000_000_000
T0 = obmt_ns_from_date(dt.date(2016, 1, 16))
#: The passes of a two-day dataset (gaiasim.sim.downlink.pass_schedule): 02:00, 10:00, 18:00 each day and
#: the first pass of the day after, which brings down the last day's last six hours.
PASSES = [(f"2016-01-{16 + h // 24}T{h % 24:02d}-00", T0 + h * HOUR_NS) for h in (2, 10, 18, 26, 34, 42, 50)]


def _anomalies(rows: list[tuple[str, int]]) -> pa.Table:
    return pa.table({"kind": [k for k, _ in rows], "obmt_ns": [t for _, t in rows]},
                    schema=pa.schema([("kind", pa.string()), ("obmt_ns", pa.int64())]))


def _entries(rows: list[tuple[str, int]] = ()) -> list[dict]:
    return logbook.entries(42, dt.date(2016, 1, 16), 2, T0, PASSES, {}, _anomalies(list(rows)), [5, 6])


def test_the_logbook_does_not_depend_on_the_wall_clock(monkeypatch):
    today = _entries()
    real = faker_dates.datetime

    class _NextYear(real):
        @classmethod
        def now(cls, tz=None):
            return real.now(tz) + dt.timedelta(days=400)

    monkeypatch.setattr(faker_dates, "datetime", _NextYear)  # Faker's "now", a year on
    assert _entries() == today, "the seeded logbook changed with the date it was generated on"


def test_a_fault_in_the_pass_after_midnight_counts_in_the_day_of_its_data():
    """The bug: the logbook counted faults by the date in the TM file's name, so those of the first pass after
    midnight (the day's last hours) were left out of the day, and of the logbook altogether on its last day."""
    late_evening = T0 + 23 * HOUR_NS  # downlinked at 02:00 the next day, in 2016-01-17T02-00.tm
    last_evening = T0 + DAY_NS + 23 * HOUR_NS  # downlinked in 2016-01-18T02-00.tm, a file of no logbook day
    first, second = _entries([("bit_flip", T0 + HOUR_NS), ("bit_flip", late_evening), ("bit_flip", last_evening),
                              ("hk_excursion", T0 + DAY_NS + HOUR_NS)])
    assert first["anomalies"] == {"bit_flip": 2}
    assert second["anomalies"] == {"bit_flip": 1, "hk_excursion": 1}
    assert "2 bit flip" in first["note"] and "1 hk excursion" in second["note"]
    assert first["anomalies_counted"] == logbook.ANOMALIES_COUNTED
    # Each day lists every pass that carries its data: the next day's 02:00 pass in both.
    assert [p["file"] for p in first["passes"]] == [f"{n}.tm" for n, _ in PASSES[:4]]
    assert [p["file"] for p in second["passes"]] == [f"{n}.tm" for n, _ in PASSES[3:]]
    assert [p["station"] for p in second["passes"]] == ["Cebreros", "New Norcia", "Malargue", "Cebreros"]


def test_no_anomaly_is_dropped_at_the_ends_of_the_span():
    rows = [("packet_loss", T0 - 5), ("packet_loss", T0), ("packet_loss", T0 + 2 * DAY_NS + 5)]
    assert logbook.count_by_day(_anomalies(rows), T0, 2) == [{"packet_loss": 2}, {"packet_loss": 1}]


@pytest.mark.parametrize("fixture", ["faulty_run", "hk_run"])
def test_the_logbook_counts_what_the_scorecard_injected(fixture, request):
    """Every kind of telemetry fault (corrupted_link) and HK anomaly (hk_anomalies): the logbook's count, over
    its days, is the scorecard's injected count of that kind, and no other kind is logged."""
    dataset, run_dir = request.getfixturevalue(fixture)
    book = json.loads((dataset / "logbook.json").read_text())["logbook"]
    logged: dict[str, int] = {}
    for entry in book:
        for kind, n in entry["anomalies"].items():
            logged[kind] = logged.get(kind, 0) + n
    card = scorecard.scorecard(db.connect(run_dir, dataset))
    injected = {kind: n for kind, (_, n) in card.recall.items() if not kind.startswith("transient_")}
    assert injected, "the fault plan injected nothing to count"
    assert logged == injected
    tm_files = sorted(p.name for p in (dataset / "tm").glob("*.tm"))
    assert sorted(p["file"] for e in book for p in e["passes"]) == tm_files, "a downlink pass is not logged"
