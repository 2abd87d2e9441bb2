"""SQL of the science-alert checks (REQ-ALR-001, REQ-ALR-002), for :data:`gaiasim.validate.checks.CHECKS`.

They read the views ``alerts`` (pipeline.schemas.ALERTS), ``transits``, ``truth_transits`` and
``truth_transients`` (gaiasim.sim.transients.TRUTH_TRANSIENTS).

- An alert *finds* a transient when it has the transient's ``alert_kind`` (its kind, but new_source for an
  event on a source the reference catalogue lacks) and its evidence holds a transit of the transient's source
  observed during the event.
- An alert is *explained* when its evidence holds a transit of any transient's source during the event,
  whatever the kind: a transient raised under the wrong kind is a miss of the recall, not a false alert, and
  an alert on an event below the detectability threshold is no false alert either. A *false alert* is one no
  transient explains (the metric does not depend on how many transients were injected).
- A transient is *detectable* when the simulator flagged it so (``detectable``: seen in FoV 1 and FoV 2 of one
  scan during the event with |dG| >= 1 mag at both transits, an alert_kind new_source at G <= 19) and its source
  reached the ground in both FoVs within 2 h during the event (one scan: the FoVs see a source 106.5 min apart,
  docs/facts.md section 1; the truth's transits are the simulator's, so on a generated day this holds for every
  flagged transient; it keeps the checks right on hand-made truths). Gaia Science Alerts need both FoVs
  (docs/facts.md section 6), and a transit lost on board (gaiasim.sim.onboard) cannot be alerted on.
"""

from __future__ import annotations

# (alert_id, transient_id) of every alert that finds an injected transient (its kind, its source, in the event).
_FOUND = """
    SELECT DISTINCT e.alert_id, i.transient_id
    FROM (SELECT alert_id, kind, unnest(transit_ids) AS transit_id FROM alerts) e
    JOIN truth_transits t USING (transit_id)
    JOIN truth_transients i ON i.source_id = t.source_id AND i.alert_kind = e.kind
                            AND t.obmt_ns >= i.start_ns AND t.obmt_ns < i.end_ns
"""

# Alerts whose evidence holds a transit of a transient's source during the event, whatever the kind.
_EXPLAINED = """
    SELECT DISTINCT e.alert_id
    FROM (SELECT alert_id, unnest(transit_ids) AS transit_id FROM alerts) e
    JOIN truth_transits t USING (transit_id)
    JOIN truth_transients i ON i.source_id = t.source_id AND t.obmt_ns >= i.start_ns AND t.obmt_ns < i.end_ns
"""

# Detectable transients whose source was seen in both FoVs in one scan during the event.
DETECTABLE = """
    WITH seen AS (SELECT i.transient_id, t.fov, t.obmt_ns FROM truth_transients i
                  JOIN truth_transits t ON t.source_id = i.source_id
                                       AND t.obmt_ns >= i.start_ns AND t.obmt_ns < i.end_ns
                  WHERE i.detectable)
    SELECT DISTINCT a.transient_id FROM seen a JOIN seen b USING (transient_id)
    WHERE a.fov = 1 AND b.fov = 2 AND abs(a.obmt_ns - b.obmt_ns) <= 7200000000000
"""

#: REQ-ALR-001: (detectable transients an alert of their alert_kind finds, detectable transients); the check judges
#: their ratio and reports its bounds (gaiasim.validate.checks.Check.fraction_of); none detectable: n/a.
RECALL_COUNTS_SQL = f"""
    SELECT (SELECT count(DISTINCT transient_id) FROM ({_FOUND}) f SEMI JOIN ({DETECTABLE}) i USING (transient_id)),
           (SELECT count(*) FROM ({DETECTABLE}) i)
"""

#: Alerts that no transient explains (the scorecard's false alerts).
FALSE_ALERT_COUNT_SQL = f"""
    SELECT count(*) FROM alerts a WHERE a.alert_id NOT IN (SELECT alert_id FROM ({_EXPLAINED}) f)
"""

#: Alerts no transient explains per 10^6 transits of the run (NULL without transits).
FALSE_ALERTS_SQL = f"""
    SELECT 1e6 * ({FALSE_ALERT_COUNT_SQL}) / nullif((SELECT count(*) FROM transits), 0)
"""

#: REQ-ALR-002: (false alerts, transits of the run: the exposure); the check turns them into a rate per 10^6
#: transits with its Poisson 95 % upper bound (gaiasim.validate.checks.Check.rate_per).
FALSE_ALERT_EXPOSURE_SQL = f"""
    SELECT ({FALSE_ALERT_COUNT_SQL}), (SELECT count(*) FROM transits)
"""

#: Every detectable transient and whether an alert of its alert_kind finds it: (kind, detected), kind as
#: ``transient_<class>`` (the scorecard's recall per class).
TRANSIENT_DETECTION_SQL = f"""
    SELECT 'transient_' || i.class AS kind, i.transient_id IN (SELECT transient_id FROM ({_FOUND}) f) AS detected
    FROM truth_transients i SEMI JOIN ({DETECTABLE}) o USING (transient_id)
"""

#: Every transient seen in both FoVs in one scan during the event (detectable or not): its class, alert_kind,
#: detectability, best pair's |dG| and G, and whether an alert of its alert_kind finds it: the rows of the recall
#: report (gaiasim.validate.alert_recall).
TRANSIENT_OUTCOMES_SQL = f"""
    WITH seen AS (SELECT i.transient_id, t.fov, t.obmt_ns FROM truth_transients i
                  JOIN truth_transits t ON t.source_id = i.source_id
                                       AND t.obmt_ns >= i.start_ns AND t.obmt_ns < i.end_ns),
         paired AS (SELECT DISTINCT a.transient_id FROM seen a JOIN seen b USING (transient_id)
                    WHERE a.fov = 1 AND b.fov = 2 AND abs(a.obmt_ns - b.obmt_ns) <= 7200000000000)
    SELECT i.class, i.alert_kind, i.detectable, i.pair_delta_g_mag, i.pair_g_mag,
           i.transient_id IN (SELECT transient_id FROM ({_FOUND}) f) AS found
    FROM truth_transients i SEMI JOIN paired USING (transient_id)
"""
