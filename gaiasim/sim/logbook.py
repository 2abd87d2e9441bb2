"""The operations logbook: one entry per simulated day, as the SOC's daily logbook has (seeded Faker).

Each entry names the shift, the ground-station passes (Cebreros, New Norcia, Malargue: the 35 m ESTRACK
stations, docs/facts.md section 3), the day's data volume and the anomalies of the fault plan.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from faker import Faker

STATIONS = ("Cebreros", "New Norcia", "Malargue")


def entries(seed: int, first: dt.date, days: int, pass_names: list[str], files_octets: dict[str, int],
            faults: list[tuple[str, str]], transits_per_day: list[int]) -> list[dict]:
    """Logbook entries of ``days`` days from ``first``; ``faults`` are (kind, TM file) of the ledger."""
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    out = []
    for d in range(days):
        date = first + dt.timedelta(days=d)
        midnight = dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC)
        passes = [p for p in pass_names if p.startswith(date.isoformat())]
        files = {f"{p}.tm" for p in passes}
        anomalies = dict(Counter(kind for kind, file in faults if file in files))
        listed = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in anomalies.items())
        summary = f"telemetry anomalies: {listed}" if anomalies else "nominal day, no telemetry anomaly"
        out.append({
            "date": date.isoformat(),
            "operator": fake.name(),
            "soc_engineer_on_call": fake.name(),
            "passes": [{"file": f"{p}.tm", "station": STATIONS[i % len(STATIONS)],
                        "octets": files_octets.get(f"{p}.tm", 0)} for i, p in enumerate(passes)],
            "transits": transits_per_day[d] if d < len(transits_per_day) else 0,
            "anomalies": anomalies,
            # end_datetime: Faker's default is now, which made the seeded time depend on the wall clock.
            "note": f"Shift handover at {fake.time(pattern='%H:%M', end_datetime=midnight)} UTC; {summary}.",
        })
    return out
