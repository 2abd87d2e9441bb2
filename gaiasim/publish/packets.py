"""The published view of a run's alerts: one packet (a dict with the fields of the Avro schema,
``alert-<version>.avsc``) per row of the run's alerts table, completed from its transits table.

It reads only the run contract's tables (docs/run-contract.md), so it publishes the alerts of any system under
test. Beside the alerts row (every column, unchanged) a packet holds:

- ``first_utc`` / ``last_utc``: the evidence's first and last OBMT in UTC (:mod:`gaiasim.publish.utc`);
- ``g_mag_err``: the formal error of the mean G of the evidence, sqrt(sum sigma_i^2) / n from the evidence
  transits' ``g_mag_err`` (null when one of them has none);
- ``pos_err_mas``: the RMS distance of the evidence transits from the alert's position (null with fewer than
  two: one transit cannot show its own scatter);
- ``history``: the day's light curve, for a known source every transit matched to it, for a new source its
  evidence, in OBMT order, each flagged ``evidence`` or not.

A run whose alerts cite transits that its transits table does not hold breaks the contract: one
:class:`pipeline.io.InputError` names the first.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from gaiasim.publish.utc import utc_iso
from gaiasim.validate import db
from pipeline import schemas
from pipeline.io import InputError

#: Alert classes (pipeline/schemas.py ALERTS ``kind``; the Avro enum ``gaiasim.alert.Kind``).
KINDS = ("brightening", "fading", "new_source")
_MAS_PER_RAD = 180.0 / math.pi * 3.6e6
#: Transit columns a light-curve point keeps (the Avro record ``gaiasim.alert.Transit``, with ``evidence``).
HISTORY_COLUMNS = ("transit_id", "obmt_ns", "fov", "ra_deg", "dec_deg", "g_mag", "g_mag_err", "bp_mag", "bp_mag_err",
                   "rp_mag", "rp_mag_err", "flags")


def _check_run(run_dir: Path) -> dict:
    if not run_dir.is_dir():
        raise InputError(f"run folder {run_dir} not found; give a folder made by 'gaiasim run'")
    return db.read_run_info(run_dir)


def read_alerts(run_dir: Path) -> pa.Table:
    """The run's alerts table (:data:`pipeline.schemas.ALERTS`), its files in name order."""
    folder = Path(run_dir) / "alerts"
    files = sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith(".")) if folder.is_dir() else []
    if not files:
        raise InputError(f"{run_dir} has no alerts table (alerts/*.parquet); publish a run made by a pipeline that "
                         "keeps the run contract (docs/run-contract.md; check it with 'gaiasim conform')")
    parts = []
    for path in files:
        try:
            parts.append(pq.read_table(path, columns=schemas.ALERTS.names).cast(schemas.ALERTS))
        except (pa.ArrowException, KeyError, ValueError) as exc:
            raise InputError(f"{path}: not the run contract's alerts table ({str(exc).splitlines()[0]}); check the "
                             f"run with 'gaiasim conform {run_dir}'") from None
    return pa.concat_tables(parts)


def read_transits(run_dir: Path, alerts: pa.Table) -> pa.Table:
    """The rows of the run's transits table (hour partitions included) that the packets of ``alerts`` need:
    the transits of their sources and their evidence."""
    sources = pc.drop_null(alerts["source_id"]).combine_chunks()
    evidence = pc.list_flatten(alerts["transit_ids"]).combine_chunks()
    folder = Path(run_dir) / "transits"
    if not alerts.num_rows:
        return schemas.TRANSITS.empty_table()
    if not folder.is_dir():
        raise InputError(f"{run_dir} has no transits table; an alert's light curve comes from it: publish a run "
                         "that keeps the run contract (check it with 'gaiasim conform')")
    try:
        data = pads.dataset(folder, format="parquet", partitioning="hive", schema=schemas.TRANSITS)
        wanted = pc.field("source_id").isin(sources) | pc.field("transit_id").isin(evidence)
        return data.to_table(columns=[*HISTORY_COLUMNS, "source_id"], filter=wanted)
    except (pa.ArrowException, ValueError) as exc:
        raise InputError(f"{folder}: not the run contract's transits table ({str(exc).splitlines()[0]}); check the "
                         f"run with 'gaiasim conform {run_dir}'") from None


def _distance_mas(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Angular distance (haversine: accurate at the mas distances of the evidence)."""
    ra1, dec1, ra2, dec2 = map(math.radians, (ra1, dec1, ra2, dec2))
    h = math.sin(0.5 * (dec2 - dec1)) ** 2 + math.cos(dec1) * math.cos(dec2) * math.sin(0.5 * (ra2 - ra1)) ** 2
    return 2.0 * math.asin(min(1.0, math.sqrt(h))) * _MAS_PER_RAD


def _g_mag_err(evidence: list[dict]) -> float | None:
    errors = [t["g_mag_err"] for t in evidence]
    if not errors or any(e is None or not math.isfinite(e) for e in errors):
        return None
    return _float32(math.sqrt(sum(e * e for e in errors)) / len(errors))


def _pos_err_mas(alert: dict, evidence: list[dict]) -> float | None:
    if len(evidence) < 2:
        return None
    d2 = [_distance_mas(alert["ra_deg"], alert["dec_deg"], t["ra_deg"], t["dec_deg"]) ** 2 for t in evidence]
    return _float32(math.sqrt(sum(d2) / len(d2)))


def _float32(x: float) -> float:
    """``x`` as the Avro ``float`` it is published as (a packet equals what a reader of it gets back)."""
    return float(np.float32(x))


def packets(alerts: pa.Table, transits: pa.Table, pipeline_version: str, publisher: str,
            where: str = "the run") -> list[dict]:
    """One packet per row of ``alerts`` (:data:`pipeline.schemas.ALERTS`), in its order, from the rows of the
    run's ``transits`` (:data:`pipeline.schemas.TRANSITS`) that :func:`read_transits` gives."""
    rows = alerts.to_pylist()
    points = transits.select([*HISTORY_COLUMNS, "source_id"]).to_pylist()
    by_id = {p["transit_id"]: p for p in points}
    by_source = defaultdict(list)
    for p in points:
        if p["source_id"] is not None:
            by_source[p["source_id"]].append(p)
    times = utc_iso(np.array([t for a in rows for t in (a["first_obmt_ns"], a["last_obmt_ns"])], dtype=np.int64))
    out = []
    for i, alert in enumerate(rows):
        if alert["kind"] not in KINDS:
            raise InputError(f"{where}: alert {alert['alert_id']} has kind {alert['kind']!r}, not one of "
                             f"{', '.join(KINDS)} (docs/run-contract.md); fix the system under test")
        missing = [t for t in alert["transit_ids"] if t not in by_id]
        if missing:
            raise InputError(f"{where}: alert {alert['alert_id']} cites transit {missing[0]}, which the transits "
                             "table does not hold; the run breaks the run contract: fix the system under test")
        evidence = [by_id[t] for t in alert["transit_ids"]]
        curve = by_source[alert["source_id"]] if alert["source_id"] is not None else []
        chosen = set(alert["transit_ids"])
        curve = {p["transit_id"]: p for p in [*curve, *evidence]}.values()
        history = [{**{k: p[k] for k in HISTORY_COLUMNS}, "evidence": p["transit_id"] in chosen}
                   for p in sorted(curve, key=lambda p: (p["obmt_ns"], p["transit_id"]))]
        out.append({
            "publisher": publisher,
            "pipeline_version": pipeline_version,
            **alert,
            "pos_err_mas": _pos_err_mas(alert, evidence),
            "g_mag_err": _g_mag_err(evidence),
            "first_utc": times[2 * i],
            "last_utc": times[2 * i + 1],
            "history": history,
        })
    return out


def from_run(run_dir: Path, publisher: str) -> list[dict]:
    """The packets of a finished run's alerts (refuses a missing or unfinished run, or one without an
    alerts table, with one :class:`InputError`)."""
    run_dir = Path(run_dir)
    info = _check_run(run_dir)
    alerts = read_alerts(run_dir)
    return packets(alerts, read_transits(run_dir, alerts), str(info.get("pipeline_version", "")), publisher,
                   where=str(run_dir))
