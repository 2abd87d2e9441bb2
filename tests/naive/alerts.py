"""Plain-Python oracle of the science alerts (pipeline.alerts): rows as dicts, loops, every pair compared.

Same rules as the module docstring of :mod:`pipeline.alerts`, written the obvious way: deviations per transit,
a FoV 1 / FoV 2 pair searched among all pairs, new-source groups as connected components of a graph whose
edges are all pairs of transits within the radius (angles by atan2, not by a grid).
"""

from __future__ import annotations

import math

import pyarrow as pa

MAS_PER_RAD = 180.0 * 3600.0 * 1000.0 / math.pi
MAG_PER_SNR = 2.5 / math.log(10.0)
#: The crossmatch's flag of a transit that lost its source to another transit of its scan (pipeline.crossmatch).
MATCH_CONFLICT = 1 << 19


def _unit(ra_deg: float, dec_deg: float) -> tuple[float, float, float]:
    ra, dec = math.radians(ra_deg), math.radians(dec_deg)
    return math.cos(dec) * math.cos(ra), math.cos(dec) * math.sin(ra), math.sin(dec)


def angle_mas(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    cross = (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])
    return math.atan2(math.sqrt(sum(c * c for c in cross)), sum(x * y for x, y in zip(a, b, strict=True))) * MAS_PER_RAD


def _usable(r: dict) -> bool:
    g, e = r["g_mag"], r["g_mag_err"]
    return g is not None and e is not None and math.isfinite(g) and math.isfinite(e) and r["fov"] in (1, 2)


def _divide(d: float, s: float) -> float:
    """d / s with IEEE semantics (numpy's), where Python would raise."""
    if s != 0.0:
        return d / s
    return math.nan if d == 0.0 or math.isnan(d) else math.copysign(math.inf, d)


def _qualifies(evidence: list[dict], config) -> bool:
    if len(evidence) < config.min_transits:
        return False
    if not config.require_both_fovs:
        return True
    return any(a["fov"] != b["fov"] and abs(a["obmt_ns"] - b["obmt_ns"]) <= config.max_fov_separation_s * 1e9
               for a in evidence for b in evidence)


def _alert(kind: str, evidence: list[dict], **values) -> dict:
    ids = sorted(r["transit_id"] for r in evidence)
    times = [r["obmt_ns"] for r in evidence]
    return {"alert_id": ids[0], "kind": kind, "n_transits": len(evidence), "first_obmt_ns": min(times),
            "last_obmt_ns": max(times), "transit_ids": ids,
            "g_mag": sum(r["g_mag"] for r in evidence) / len(evidence), **values}


def raise_alerts(transits: pa.Table, catalogue: pa.Table, config) -> list[dict]:
    """The alerts as dicts with the keys of pipeline.schemas.ALERTS, sorted by alert_id."""
    catalogue_rows = {r["source_id"]: r for r in catalogue.to_pylist()}
    rows = transits.to_pylist()
    alerts = []

    by_source: dict[int, list[dict]] = {}
    for r in rows:
        if r["source_id"] is not None and r["source_id"] in catalogue_rows and _usable(r):
            by_source.setdefault(r["source_id"], []).append(r)
    for source_id, source_rows in by_source.items():
        c = catalogue_rows[source_id]
        best = None
        for kind, sign in (("brightening", -1.0), ("fading", 1.0)):
            evidence, z_sum = [], 0.0
            for r in source_rows:
                d = r["g_mag"] - c["g_mag"]
                z = _divide(d, math.sqrt(c["g_mag_sigma"] * c["g_mag_sigma"] + r["g_mag_err"] * r["g_mag_err"]))
                sep = r["match_sep_mas"]
                near = sign < 0 or (sep is not None and sep <= config.max_evidence_sep_mas)
                if sign * d >= config.min_delta_g_mag and sign * z >= config.min_significance_sigma and near:
                    evidence.append(r)
                    z_sum += z
            if _qualifies(evidence, config):
                significance = abs(z_sum) / math.sqrt(len(evidence))
                if best is None or significance > best[0]:  # a tie keeps brightening
                    best = (significance, kind, evidence)
        if best is not None:
            significance, kind, evidence = best
            alert = _alert(kind, evidence, source_id=source_id, ra_deg=c["ra_deg"], dec_deg=c["dec_deg"],
                           significance_sigma=significance)
            alert["delta_g_mag"] = alert["g_mag"] - c["g_mag"]
            alerts.append(alert)

    bright = [r for r in rows if r["source_id"] is None and not r["flags"] & MATCH_CONFLICT and _usable(r)
              and math.isfinite(r["ra_deg"]) and math.isfinite(r["dec_deg"])
              and r["g_mag"] < config.new_source_g_limit_mag]
    units = [_unit(r["ra_deg"], r["dec_deg"]) for r in bright]
    group = list(range(len(bright)))
    changed = True  # smallest-label propagation over all linked pairs until stable: connected components
    while changed:
        changed = False
        for i in range(len(bright)):
            for j in range(len(bright)):
                if group[i] != group[j] and angle_mas(units[i], units[j]) <= config.cluster_radius_mas:
                    group[i] = group[j] = min(group[i], group[j])
                    changed = True
    for label in sorted(set(group)):
        members = [k for k in range(len(bright)) if group[k] == label]
        evidence = [bright[k] for k in members]
        if not _qualifies(evidence, config):
            continue
        x, y, z = (sum(units[k][axis] for k in members) for axis in range(3))
        norm = math.sqrt(x * x + y * y + z * z)
        snr2 = sum((MAG_PER_SNR / r["g_mag_err"]) ** 2 if r["g_mag_err"] else math.inf for r in evidence)
        alerts.append(_alert("new_source", evidence, source_id=None, delta_g_mag=None,
                             ra_deg=math.degrees(math.atan2(y, x)) % 360.0, dec_deg=math.degrees(math.asin(z / norm)),
                             significance_sigma=math.sqrt(snr2)))
    return sorted(alerts, key=lambda a: a["alert_id"])
