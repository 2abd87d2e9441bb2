"""SQL of the science-alert checks (REQ-ALR-001, REQ-ALR-002), for :data:`gaiasim.validate.checks.CHECKS`.

Both read the views ``alerts`` (pipeline.schemas.ALERTS), ``transits``, ``truth_transits`` and
``truth_transients`` (gaiasim.sim.variability.TRUTH_TRANSIENTS). An alert *finds* a transient when it has
the transient's kind and its evidence holds a transit of the transient's source observed during the event.
A transient is *observable* when its source reached the ground in FoV 1 and in FoV 2 within 2 h (one scan:
the FoVs see a source 106.5 min apart, docs/facts.md section 1) during the event: Gaia Science Alerts need both
FoVs (docs/facts.md section 6), and a transit lost on board (gaiasim.sim.onboard) cannot be alerted on.
"""

from __future__ import annotations

# (alert_id, transient_id) of every alert that finds an injected transient.
_FOUND = """
    SELECT DISTINCT e.alert_id, i.transient_id
    FROM (SELECT alert_id, kind, unnest(transit_ids) AS transit_id FROM alerts) e
    JOIN truth_transits t USING (transit_id)
    JOIN truth_transients i ON i.source_id = t.source_id AND i.kind = e.kind
                            AND t.obmt_ns >= i.start_ns AND t.obmt_ns < i.end_ns
"""

# Transients with |dG| >= 1 mag (and new sources) whose source was seen in both FoVs in one scan during the event.
_INJECTED = """
    WITH seen AS (SELECT i.transient_id, t.fov, t.obmt_ns FROM truth_transients i
                  JOIN truth_transits t ON t.source_id = i.source_id
                                       AND t.obmt_ns >= i.start_ns AND t.obmt_ns < i.end_ns)
    SELECT DISTINCT a.transient_id FROM seen a JOIN seen b USING (transient_id)
    JOIN truth_transients i USING (transient_id)
    WHERE a.fov = 1 AND b.fov = 2 AND abs(a.obmt_ns - b.obmt_ns) <= 7200000000000
      AND (i.delta_g_mag IS NULL OR abs(i.delta_g_mag) >= 1.0)
"""

#: REQ-ALR-001: fraction of the observable injected transients with |dG| >= 1 mag (and of the observable new
#: sources) that an alert finds; NULL on a day without any (nothing to find: n/a).
RECALL_SQL = f"""
    SELECT 1.0 * (SELECT count(DISTINCT transient_id) FROM ({_FOUND}) f SEMI JOIN ({_INJECTED}) i USING (transient_id))
           / nullif((SELECT count(*) FROM ({_INJECTED}) i), 0)
"""

#: Alerts that find no injected transient (the scorecard's false alerts).
FALSE_ALERT_COUNT_SQL = f"""
    SELECT count(*) FROM alerts a WHERE a.alert_id NOT IN (SELECT alert_id FROM ({_FOUND}) f)
"""

#: REQ-ALR-002: alerts that find no injected transient, per 10^6 transits of the run (NULL without transits).
FALSE_ALERTS_SQL = f"""
    SELECT 1e6 * ({FALSE_ALERT_COUNT_SQL}) / nullif((SELECT count(*) FROM transits), 0)
"""

#: Every observable injected transient (see the module doc) and whether an alert finds it: (kind, detected).
TRANSIENT_DETECTION_SQL = f"""
    SELECT 'transient_' || i.kind AS kind, i.transient_id IN (SELECT transient_id FROM ({_FOUND}) f) AS detected
    FROM truth_transients i SEMI JOIN ({_INJECTED}) o USING (transient_id)
"""
