"""The operations logbook: one entry per simulated day, as the SOC's daily logbook has (seeded Faker).

Each entry names the shift, the ground-station passes (Cebreros, New Norcia, Malargue: the 35 m ESTRACK
stations, docs/facts.md section 3), the day's data volume and the anomalies of the fault plan.

The anomalies are counted the way the detection scorecard (:mod:`gaiasim.validate.scorecard`) counts its
injected faults: one per row of the fault ledger (``truth/faults``) and of the HK anomaly ledger
(``truth/hk_anomalies``), each in the day its data were made (OBMT of the packet, first sample of the HK
anomaly), whichever pass brought them down. A day's last hours come down in the next day's first pass
(:mod:`gaiasim.sim.downlink`), so that pass is listed with the day whose data it carries; counting by the
date in a TM file's name instead left out every fault of that pass (a user saw 141 bit flips in the logbook
and 198 in the scorecard of the same day).
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
from faker import Faker

STATIONS = ("Cebreros", "New Norcia", "Malargue")
NS_PER_DAY = 86_400_000_000_000
#: What an entry's ``anomalies`` count, written into each entry beside them.
ANOMALIES_COUNTED = ("injected faults, one per row of the fault ledger (truth/faults) and of the HK anomaly "
                     "ledger (truth/hk_anomalies) whose data were made this day (OBMT), whichever pass downlinked "
                     "them: the detection scorecard's injected counts")


def count_by_day(anomalies: pa.Table, t0_ns: int, days: int) -> list[dict[str, int]]:
    """Per day, the rows of ``anomalies`` (columns ``kind`` and ``obmt_ns``) of each kind, kinds sorted; a
    time before the first day counts in it, one after the last in the last (none is dropped)."""
    day = pc.divide(pc.subtract(anomalies["obmt_ns"].cast(pa.int64()), t0_ns), NS_PER_DAY)  # floor for t >= t0
    day = pc.max_element_wise(pc.min_element_wise(day, days - 1), 0)
    counts = pa.table({"day": day, "kind": anomalies["kind"]}).group_by(["day", "kind"]).aggregate(
        [([], "count_all")])
    out: list[dict[str, int]] = [{} for _ in range(days)]
    for d, kind, n in sorted(zip(*(counts[c].to_pylist() for c in ("day", "kind", "count_all")), strict=True)):
        out[d][kind] = n
    return out


def entries(seed: int, first: dt.date, days: int, t0_ns: int, passes: list[tuple[str, int]],
            files_octets: dict[str, int], anomalies: pa.Table,
            transits_per_day: list[int]) -> list[dict]:
    """Logbook entries of ``days`` days from ``first`` (whose midnight is OBMT ``t0_ns``).

    ``passes``: (TM file stem, start OBMT) of every pass, in time order; a pass carries the data made since
    the previous one, and is listed with every day whose data it carries. ``anomalies``: ``kind`` and
    ``obmt_ns`` of every row of the fault and HK anomaly ledgers (module doc).
    """
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    by_day = count_by_day(anomalies, t0_ns, days)
    out = []
    for d in range(days):
        date = first + dt.timedelta(days=d)
        midnight = dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC)
        day_start, day_end = t0_ns + d * NS_PER_DAY, t0_ns + (d + 1) * NS_PER_DAY
        # Pass p carries [start of pass p - 1, start of pass p): listed when that overlaps the day.
        carried = [(p, name) for p, (name, start) in enumerate(passes)
                   if start > day_start and (p == 0 or passes[p - 1][1] < day_end)]
        counts = by_day[d]
        listed = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items())
        summary = f"telemetry anomalies: {listed}" if counts else "nominal day, no telemetry anomaly"
        out.append({
            "date": date.isoformat(),
            "operator": fake.name(),
            "soc_engineer_on_call": fake.name(),
            "passes": [{"file": f"{name}.tm", "station": STATIONS[p % len(STATIONS)],
                        "octets": files_octets.get(f"{name}.tm", 0)} for p, name in carried],
            "transits": transits_per_day[d] if d < len(transits_per_day) else 0,
            "anomalies": counts,
            "anomalies_counted": ANOMALIES_COUNTED,
            # end_datetime: Faker's default is now, which made the seeded time depend on the wall clock.
            "note": f"Shift handover at {fake.time(pattern='%H:%M', end_datetime=midnight)} UTC; {summary}.",
        })
    return out
