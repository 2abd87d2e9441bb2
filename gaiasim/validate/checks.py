"""Checks as data: each is a named DuckDB query returning one number, a threshold and a requirement.

One definition serves ``gaiasim validate``, the Gherkin steps and the reports. The SQL reads the views
of :mod:`gaiasim.validate.db`; thresholds are compared in Python, never pasted into SQL.

A check with nothing to measure (no fault injected to detect, no watch-mode latency, no G bin with
enough transits) returns NULL and is reported ``n/a``, never ``pass``: its :attr:`Check.nothing_when`
says when that happens. A check that needs the truth and has none fails. A check of a rare event's rate
(:attr:`Check.rate_per`) passes only on its 95 % upper bound, and is ``n/a`` while the exposure is too small to
bound the rate within the threshold (unless the estimate alone is above it: then it fails).
"""

from __future__ import annotations

import operator
import time
from dataclasses import dataclass, field

import duckdb

from gaiasim.validate import alert_checks, bounds, db

_OPS = {"==": operator.eq, "<=": operator.le, ">=": operator.ge}

# Packets a fault removed from the stream (lost, or quarantined so their content is unusable).
_UNUSABLE = """
    SELECT apid, seq, obmt_ns FROM truth_faults WHERE kind IN ('packet_loss', 'bit_flip', 'truncated_file')
"""
# Centroid pulls of clean fits (flags 0), from the CCD-check sample (gaiasim.validate.db.SAMPLE_PAIRS:
# all of a small day, 1 transit in S of a large one). The AC pulls: the clean 2D fits (bright stars), one bin.
_AC_PULLS = """
    SELECT count(*) AS n, median(ac_pull) AS bias, 1.4826 * mad(ac_pull) AS width,
           3 * 1.2533 / sqrt(count(*)) AS bias_slack, 3 * 1.166 / sqrt(count(*)) AS width_slack
    FROM sample_pairs WHERE flags = 0 AND ac_pull IS NOT NULL
    HAVING count(*) >= 100
"""
#: Clean fits a strip needs for its timing to be judged, and faint windows on a dark sky for the fits' noise model.
_MIN_PER_STRIP = 20
_MIN_PER_CCD = 30
_MIN_FAINT_DARK = 100
#: Fitted windows of truncated transits (SM and AF) the truncated-window check needs [U].
_MIN_TRUNCATED = 30
#: The IPD's cosmic-ray flag (pipeline.ipd.FLAG_COSMIC).
_COSMIC_FLAG = 16
#: The IPD's flag of a blend's second image, masked as hits but no cosmic ray (pipeline.second_image.FLAG_SECOND_IMAGE).
_SECOND_IMAGE_FLAG = 1 << 22
#: Blended transits the second-image check needs [U].
_MIN_BLENDS = 20
# Statistical slack of a bin of n pulls: 3 standard errors of the median (1.2533 / sqrt n) and of the
# normalised MAD (1.166 / sqrt n) of a unit Gaussian, so a small day cannot fail by chance and a large
# one must meet the bound itself.
_PULL_BINS = """
    SELECT g_bin, count(*) AS n, median(al_pull) AS bias, 1.4826 * mad(al_pull) AS width,
           3 * 1.2533 / sqrt(count(*)) AS bias_slack, 3 * 1.166 / sqrt(count(*)) AS width_slack
    FROM sample_pairs WHERE flags = 0 GROUP BY g_bin HAVING count(*) >= 100
"""
#: Does the ledger fault ``f`` show up where a correct pipeline must report it? (a boolean expression)
DETECTED = """
    CASE f.kind
      WHEN 'bit_flip' THEN EXISTS (SELECT 1 FROM quarantine q WHERE q.file = f.file
                                   AND f."offset" >= q."offset" AND f."offset" < q."offset" + q.octets)
      WHEN 'truncated_file' THEN EXISTS (SELECT 1 FROM quarantine q WHERE q.file = f.file AND q.reason = 'truncated'
                                   AND f."offset" >= q."offset" AND f."offset" < q."offset" + q.octets)
      WHEN 'duplicate' THEN EXISTS (SELECT 1 FROM gaps g WHERE g.kind = 'duplicate' AND g.apid = f.apid
                                   AND g.first_seq = f.seq AND g.obmt_ns = f.obmt_ns)
      WHEN 'pass_overlap' THEN EXISTS (SELECT 1 FROM gaps g WHERE g.kind = 'duplicate' AND g.apid = f.apid
                                   AND g.first_seq = f.seq AND g.obmt_ns = f.obmt_ns)
      WHEN 'attitude_glitch' THEN EXISTS (SELECT 1 FROM hk_events e WHERE e.channel = 'attitude'
                                   AND e.kind = 'glitch' AND f.obmt_ns BETWEEN e.start_ns AND e.end_ns)
      WHEN 'late_delivery' THEN EXISTS (SELECT 1 FROM gaps g WHERE g.kind = 'out_of_order' AND g.apid = f.apid
                                   AND g.file = f.file AND
                                   CASE WHEN g.first_seq <= g.last_seq THEN f.seq BETWEEN g.first_seq AND g.last_seq
                                        ELSE f.seq >= g.first_seq OR f.seq <= g.last_seq END)
      WHEN 'packet_loss' THEN EXISTS (SELECT 1 FROM gaps g WHERE g.kind = 'gap' AND g.apid = f.apid AND
                                   CASE WHEN g.first_seq <= g.last_seq THEN f.seq BETWEEN g.first_seq AND g.last_seq
                                        ELSE f.seq >= g.first_seq OR f.seq <= g.last_seq END)
      ELSE false
    END
"""


#: An HK event ``e`` as the ledger's expected string: hk_event:<kind>:<severity>[:<side>].
HK_EXPECTED = "'hk_event:' || e.kind || ':' || e.severity || CASE WHEN e.side = '' THEN '' ELSE ':' || e.side END"

_SEQ_IN_GAP = """CASE WHEN g.first_seq <= g.last_seq THEN f.seq BETWEEN g.first_seq AND g.last_seq
                      ELSE f.seq >= g.first_seq OR f.seq <= g.last_seq END"""
# Reports that no injected fault explains, one count each (the scorecard's false alarms).
UNEXPLAINED_QUARANTINE = """
    SELECT count(*) FROM quarantine q WHERE NOT EXISTS (SELECT 1 FROM truth_faults f WHERE f.file = q.file
        AND f."offset" >= q."offset" AND f."offset" < q."offset" + q.octets)
"""
UNEXPLAINED_GAPS = f"""
    SELECT count(*) FROM gaps g WHERE g.kind = 'gap' AND NOT EXISTS (SELECT 1 FROM truth_faults f
        WHERE f.apid = g.apid AND f.kind IN ('packet_loss', 'bit_flip', 'truncated_file') AND {_SEQ_IN_GAP})
"""
UNEXPLAINED_DUPLICATES = """
    SELECT count(*) FROM gaps g WHERE g.kind = 'duplicate' AND NOT EXISTS (SELECT 1 FROM truth_faults f
        WHERE f.kind IN ('duplicate', 'pass_overlap') AND f.apid = g.apid AND f.seq = g.first_seq
        AND f.obmt_ns = g.obmt_ns)
"""
UNEXPLAINED_OUT_OF_ORDER = f"""
    SELECT count(*) FROM gaps g WHERE g.kind = 'out_of_order' AND NOT EXISTS (SELECT 1 FROM truth_faults f
        WHERE f.kind = 'late_delivery' AND f.apid = g.apid AND f.file = g.file AND {_SEQ_IN_GAP})
"""
# Counters that stalled or jumped against the packet times: no injected fault explains either.
UNEXPLAINED_COUNTER = """
    SELECT count(*) FROM gaps g WHERE g.kind IN ('stall', 'count_jump')
"""
UNEXPLAINED_GLITCHES = """
    SELECT count(*) FROM hk_events e WHERE e.channel = 'attitude' AND NOT EXISTS (SELECT 1 FROM truth_faults f
        WHERE f.kind = 'attitude_glitch' AND f.obmt_ns BETWEEN e.start_ns AND e.end_ns)
"""
UNEXPLAINED_HK_EVENTS = f"""
    SELECT count(*) FROM hk_events e WHERE e.kind IN ('limit', 'stale', 'rate') AND NOT EXISTS (
        SELECT 1 FROM truth_hk_anomalies a WHERE a.channel = e.channel AND a.start_ns = e.start_ns
        AND a.end_ns = e.end_ns AND a.expected = {HK_EXPECTED})
"""


@dataclass(frozen=True)
class Check:
    name: str  # short identifier
    requirement: str  # REQ-<AREA>-<NNN>
    statement: str  # one line, in the operations team's words
    sql: str  # returns one row, one number: the measured value
    op: str  # how the value must compare with the threshold: ==, <= or >=
    threshold: float
    unit: str = ""
    needs_truth: bool = True
    needs_rerun: bool = False  # reads ``rerun_differences``: only with ``gaiasim validate --determinism``
    nothing_when: str = ""  # when the SQL returns NULL: there is nothing to measure (the check is n/a)
    #: A rate of rare events (> 0: per this many units of exposure). The SQL returns (events, exposure); the value
    #: is events / exposure x rate_per. Op "<=": it passes when the Poisson 95 % upper bound of the rate
    #: (gaiasim.validate.bounds.poisson_upper) is within the threshold, fails when the value itself is above it,
    #: and is n/a in between (insufficient exposure), or with no exposure.
    rate_per: float = 0.0
    exposure_unit: str = ""
    #: A fraction of counted things (non-empty: what is counted). The SQL returns (successes, trials); the value is
    #: their ratio, judged against the threshold as it stands, and the note gives the counts and the one-sided
    #: 95 % Clopper-Pearson bounds (gaiasim.validate.bounds), saying so when a failing fraction's upper bound still
    #: holds the threshold (too few trials to show the requirement broken); no trial: n/a.
    fraction_of: str = ""


CHECKS: tuple[Check, ...] = (
    Check(
        "hk_anomalies_reported", "REQ-HK-001",
        "every injected HK limit violation and stale channel is reported by exactly one event of its channel, "
        "kind, severity and side, over the same samples",
        f"""
        SELECT CASE WHEN count(*) > 0 THEN count(*) FILTER (WHERE reported <> 1) END FROM (
            SELECT (SELECT count(*) FROM hk_events e WHERE e.channel = a.channel AND e.start_ns = a.start_ns
                    AND e.end_ns = a.end_ns AND a.expected = {HK_EXPECTED}) AS reported
            FROM truth_hk_anomalies a)
        """,
        "==", 0, "anomalies", nothing_when="no HK anomaly was injected",
    ),
    Check(
        "no_spurious_hk_events", "REQ-HK-002",
        "no HK limit, stale or rate event is reported outside the injected HK anomalies",
        f"SELECT CASE WHEN (SELECT count(*) FROM hk) > 0 THEN ({UNEXPLAINED_HK_EVENTS}) END",
        "==", 0, "events", nothing_when="the run holds no housekeeping sample to monitor",
    ),
    Check(
        "packet_conservation", "REQ-ING-001",
        "every packet read is used, dropped as a counted duplicate or quarantined with a reason",
        """
        WITH c AS (SELECT key, value FROM run_counts)
        SELECT CASE WHEN (SELECT value FROM c WHERE key = 'packets_read') > 0 THEN
               abs((SELECT value FROM c WHERE key = 'packets_read') - (SELECT value FROM c WHERE key = 'packets_used')
                   - (SELECT value FROM c WHERE key = 'duplicates_dropped')
                   - (SELECT value FROM c WHERE key = 'packets_quarantined'))
             + abs((SELECT count(*) FROM quarantine) - (SELECT value FROM c WHERE key = 'packets_quarantined'))
             + abs((SELECT count(*) FROM gaps WHERE kind = 'duplicate')
                   - (SELECT value FROM c WHERE key = 'duplicates_dropped')) END
        """,
        "==", 0, "packets", needs_truth=False, nothing_when="the run read no packet",
    ),
    Check(
        "manifest_integrity", "REQ-VAL-001",
        "every file of the dataset matches the SHA-256 of its manifest, none is missing or extra",
        """SELECT CASE WHEN count(*) > 0 THEN count(*) FILTER (WHERE manifest_sha256 IS DISTINCT FROM actual_sha256)
                   END FROM dataset_files""",
        "==", 0, "files", nothing_when="the manifest lists no file",
    ),
    Check(
        "run_inputs_match", "REQ-VAL-002",
        "the pipeline read exactly the dataset's TM files, as the manifest records them",
        """
        SELECT CASE WHEN (SELECT count(*) FROM dataset_files WHERE name LIKE 'tm/%')
                         + (SELECT count(*) FROM run_inputs WHERE name LIKE 'tm/%') > 0 THEN
               (SELECT count(*) FROM run_inputs r LEFT JOIN dataset_files d ON d.name = r.name
                WHERE r.name LIKE 'tm/%' AND d.manifest_sha256 IS DISTINCT FROM r.sha256)
             + (SELECT count(*) FROM dataset_files d WHERE d.name LIKE 'tm/%'
                AND d.name NOT IN (SELECT name FROM run_inputs)) END
        """,
        "==", 0, "files", nothing_when="neither the manifest nor the run names a TM file",
    ),
    Check(
        "determinism", "REQ-E2E-003",
        "the pipeline run again over the same dataset writes the same bytes in every output table",
        "SELECT count(*) FROM rerun_differences",
        "==", 0, "tables", needs_truth=False, needs_rerun=True,
    ),
    Check(
        "transits_complete", "REQ-E2E-001",
        "every transit of the day comes out exactly once, unless the fault ledger says its packet was lost",
        f"""
        WITH expected AS (SELECT transit_id FROM truth_transits t
                          ANTI JOIN ({_UNUSABLE}) u ON u.apid = t.apid AND u.seq = t.seq AND u.obmt_ns = t.obmt_ns),
             out AS (SELECT transit_id, count(*) AS n FROM transits GROUP BY transit_id)
        SELECT CASE WHEN (SELECT count(*) FROM expected) + (SELECT count(*) FROM out) > 0 THEN
               (SELECT count(*) FROM expected ANTI JOIN out USING (transit_id))
             + (SELECT count(*) FROM out WHERE n > 1) END
        """,
        "==", 0, "transits", nothing_when="the day holds no transit, in the truth or the outputs",
    ),
    Check(
        "no_spurious_transits", "REQ-E2E-002",
        "no transit comes out that the spacecraft did not observe",
        """SELECT CASE WHEN (SELECT count(*) FROM transits) > 0 THEN
                   (SELECT count(*) FROM transits ANTI JOIN truth_transits USING (transit_id)) END""",
        "==", 0, "transits", nothing_when="the run output no transit",
    ),
    Check(
        "centroid_pull_bias", "REQ-IPD-001",
        "in no G bin is the centroid pull bias significantly (3 sigma) above 0.05",
        f"SELECT max(abs(bias) - bias_slack) FROM ({_PULL_BINS})",
        "<=", 0.05, "sigma", nothing_when="no G bin holds 100 clean centroids",
    ),
    Check(
        "centroid_pull_width", "REQ-IPD-002",
        "in no G bin is the centroid pull width significantly (3 sigma) more than 10 % off 1",
        f"SELECT max(abs(width - 1) - width_slack) FROM ({_PULL_BINS})",
        "<=", 0.10, "", nothing_when="no G bin holds 100 clean centroids",
    ),
    Check(
        "centroid_ac_pulls", "REQ-IPD-003",
        "the across-scan centres of bright-star 2D windows are unbiased and their errors honest (3 sigma)",
        f"""SELECT greatest(max(abs(bias) - bias_slack) / 0.05, max(abs(width - 1) - width_slack) / 0.10)
            FROM ({_AC_PULLS})""",
        "<=", 1.0, "of the bound", nothing_when="fewer than 100 clean 2D windows (bright stars)",
    ),
    Check(
        "cosmics_flagged", "REQ-IPD-004",
        "at least 80 % of the windows hit by a cosmic ray of more than 1000 e- are flagged",
        f"""SELECT avg(CASE WHEN (flags & {_COSMIC_FLAG}) != 0 THEN 1.0 ELSE 0.0 END)
            FROM sample_pairs WHERE cosmic_e > 1000""",
        ">=", 0.8, "fraction", nothing_when="no window was hit by a cosmic ray of more than 1000 e-",
    ),
    Check(
        "cosmics_not_invented", "REQ-IPD-005",
        "at most 1 in 1000 windows without a cosmic ray is flagged as hit",
        f"""SELECT avg(CASE WHEN (flags & {_COSMIC_FLAG}) != 0 THEN 1.0 ELSE 0.0 END)
            FROM sample_pairs WHERE cosmic_e = 0""",
        "<=", 1e-3, "fraction", nothing_when="no window is free of cosmic rays",
    ),
    Check(
        "ccd_times", "REQ-IPD-006",
        "in no CCD strip are the observation times off the truth by more than 0.1 ms (median of clean fits)",
        # 0.1 ms is 0.1 pixel (6 mas) of image motion: above the CCDs' uncalibrated geometry (a few mas,
        # docs/instrument.md section 4), far below a 1 % error in the pixel scale (49 ms from one strip to
        # the next) or 10 ms in the strips' timing.
        f"""SELECT max(abs(m)) FROM (
                SELECT strip, median(t_res_ms) AS m FROM sample_pairs
                WHERE flags = 0 AND t_res_ms IS NOT NULL GROUP BY strip HAVING count(*) >= {_MIN_PER_STRIP})""",
        "<=", 0.1, "ms", nothing_when=f"no CCD strip holds {_MIN_PER_STRIP} clean fits",
    ),
    Check(
        "fit_noise_model", "REQ-IPD-007",
        "faint-star fits on a dark sky know their noise: the mean reduced chi-square of their clean AF windows "
        "is significantly (3 sigma) no more than 0.03 off 1",
        # Faint (G >= 19) 1D windows (12 samples, 9 degrees of freedom: a reduced chi-square of standard
        # deviation sqrt(2/9)) on at most 60 e- of background per sample: read noise is a quarter to a half
        # of their variance there, while LSF or calibration mismatch, which raises bright stars' chi2, is far
        # below the photon noise. Measured 1.00-1.02 on nominal small days; 0.92 with the AF2-9 read noise
        # 20 % too high (docs/instrument.md section 6).
        f"""SELECT CASE WHEN count(*) >= {_MIN_FAINT_DARK}
                        THEN abs(avg(chi2) - 1) - 3 * sqrt(2.0 / 9.0) / sqrt(count(*)) END
            FROM sample_pairs
            WHERE flags = 0 AND strip LIKE 'AF%' AND window_class > 0 AND g_mag >= 19 AND bg_true_e <= 60""",
        "<=", 0.03, "", nothing_when=f"fewer than {_MIN_FAINT_DARK} clean faint windows on a dark sky",
    ),
    Check(
        "crossmatch_correct", "REQ-XM-001",
        "at least 99.9 % of transits are matched to the right source",
        # Right: matched to a catalogue entry linked to the transit's true source (truth_catalogue_links: the
        # catalogue has its own ids; a merged entry is right for each of its sources), or unmatched when the
        # catalogue lacks that source (missing, or new). Counted as a semi and an anti join on the links, not a
        # left join of every transit to the truth and the catalogue (a full day's query ran out of DuckDB's
        # 8 GB that way).
        """
        WITH pairs AS (
            SELECT r.source_id AS got, t.source_id AS want FROM transits r JOIN truth_transits t USING (transit_id))
        SELECT ((SELECT count(*) FROM pairs p SEMI JOIN truth_catalogue_links l
                 ON l.catalogue_source_id = p.got AND l.source_id = p.want)
                + (SELECT count(*) FROM pairs p ANTI JOIN truth_catalogue_links l
                   ON l.source_id = p.want AND l.catalogue_source_id IS NOT NULL WHERE p.got IS NULL))
               / nullif((SELECT count(*) FROM pairs), 0)
        """,
        ">=", 0.999, "fraction", nothing_when="no transit of the run is in the truth",
    ),
    Check(
        "spurious_rejected", "REQ-XM-002",
        "at least 99 % of the spurious detections around bright stars are neither matched to a catalogue source "
        "nor the evidence of an alert",
        # The on-board ghosts of gaiasim.sim.vpu (truth_artefacts kind spike or halo; docs/crowding-and-alerts-
        # sources.md section 1.3): each came down as an ordinary star packet, and a new source made of one would
        # be a false alert that the both-FoV rule does not stop (they recur in both FoVs of a scan).
        """
        WITH s AS (SELECT r.transit_id, r.source_id FROM truth_artefacts a JOIN transits r USING (transit_id)
                   WHERE a.kind IN ('spike', 'halo')),
             evidence AS (SELECT DISTINCT unnest(transit_ids) AS transit_id FROM alerts)
        SELECT 1.0 * (SELECT count(*) FROM s ANTI JOIN evidence e USING (transit_id) WHERE s.source_id IS NULL)
               / nullif((SELECT count(*) FROM s), 0)
        """,
        ">=", 0.99, "fraction", nothing_when="no spurious detection of the day reached the run",
    ),
    Check(
        "class_by_onboard_g", "REQ-IPD-008",
        "every transit whose on-board magnitude put it in another window class than its true G keeps the class "
        "of its packet",
        # gaiasim.sim.vpu: the window class follows the on-board G estimate; near G 13 and 16 a star arrives in
        # one class or the other (truth_artefacts kind class_flip). A pipeline taking the class from its own or
        # the catalogue's G would fit a window with the wrong geometry.
        """
        SELECT 1.0 * count(*) FILTER (WHERE r.window_class = t.window_class) / nullif(count(*), 0)
        FROM truth_artefacts a JOIN transits r USING (transit_id) JOIN truth_transits t USING (transit_id)
        WHERE a.kind = 'class_flip'
        """,
        ">=", 1.0, "fraction", nothing_when="no transit of the run changed window class by its on-board magnitude",
    ),
    Check(
        "truncated_centroid", "REQ-IPD-009",
        "the along-scan centres of truncated windows are unbiased: their median pull is significantly (3 sigma) "
        "no more than 0.1 off 0",
        # gaiasim.sim.vpu: a window overlapping a brighter one's loses the AL samples facing it, sent as 0 ADU
        # (pipeline.icd.NOT_READ_ADU; truth_artefacts kind truncated). Fitted with those samples masked, its
        # centre stays unbiased; a pipeline reading them as signal pulls it by several sigma. Every fitted
        # window of a truncated transit (SM and AF), selected by the truth, whatever the run's flags [U].
        f"""
        SELECT CASE WHEN count(*) >= {_MIN_TRUNCATED} THEN abs(median(p.al_pull)) - 3 * 1.2533 / sqrt(count(*)) END
        FROM truth_artefacts a JOIN sample_pairs p USING (transit_id)
        WHERE a.kind = 'truncated' AND p.al_pull IS NOT NULL
        """,
        "<=", 0.1, "sigma", nothing_when=f"fewer than {_MIN_TRUNCATED} fitted windows of truncated transits",
    ),
    Check(
        "second_images_recognised", "REQ-IPD-010",
        "at least 90 % of the transits of G < 19 whose window holds a blended companion within 2 mag and at least "
        "2 px along scan are flagged as holding a second image",
        # gaiasim.sim.vpu: a fainter star closer than the resolution limit is rendered into the brighter's window
        # (truth_artefacts kind blended, d_al_px its offset; its brightest companion counts). Its light recurs at
        # one offset in every window, where a cosmic ray hits one: a pipeline that takes it for cosmic rays
        # invents them (REQ-IPD-005) and no one learns the transit is a blend. Companions closer than 2 px or
        # more than 2 mag fainter hardly stand out of the one-star fit [U]. Measured on the population sky's
        # scale-0.05 day (seed 5): 0.976 (249 of 255 transits; G 19-20 primaries 0.79, G 20-21 0.55, left out).
        f"""
        WITH b AS (SELECT parent_transit_id AS transit_id, arg_min(d_al_px, g_mag) AS d_al, min(g_mag) AS g2
                   FROM truth_artefacts WHERE kind = 'blended' GROUP BY parent_transit_id)
        SELECT CASE WHEN count(*) >= {_MIN_BLENDS}
                    THEN avg(CASE WHEN (r.flags & {_SECOND_IMAGE_FLAG}) != 0 THEN 1.0 ELSE 0.0 END) END
        FROM b JOIN truth_transits t USING (transit_id) JOIN transits r USING (transit_id)
        WHERE abs(b.d_al) >= 2 AND b.g2 - t.g_mag < 2 AND t.g_mag < 19
        """,
        ">=", 0.9, "fraction", nothing_when=f"fewer than {_MIN_BLENDS} transits of G < 19 with a blended companion "
                                           "within 2 mag, at least 2 px along scan",
    ),
    Check(
        "photometry_bias", "REQ-PHOT-001",
        "in every G bin the transit G magnitudes are unbiased to 0.01 mag",
        # Read from phot_pairs (gaiasim.validate.db.PHOT_PAIRS: every transit of a small day, up to
        # 250 000-500 000 per G bin of a large one).
        """
        SELECT max(abs(b)) FROM (
            SELECT g_bin, median(d_g) AS b FROM phot_pairs
            WHERE d_g IS NOT NULL GROUP BY g_bin HAVING count(*) >= 20)
        """,
        "<=", 0.01, "mag", nothing_when="no G bin holds 20 transits with a G",
    ),
    Check(
        "ccd_photometry", "REQ-PHOT-003",
        "no CCD's fluxes are significantly (3 sigma) more than 1 % off the other AF CCDs of the same transits",
        # Each clean AF flux of a transit (G 13-19, at least 6 clean AF fluxes) against the mean log flux of
        # that transit's AF CCDs; per CCD and FoV the median of those log ratios, less 3 standard errors of
        # a median (1.2533 x 1.4826 MAD / sqrt n). Needs no truth flux: a CCD whose gain or throughput moved
        # after its calibration stands out from its neighbours. A 3 % gain jump early in the day gives
        # ~2 %; calibration errors (0.15-0.2 %) and CTI differences stay far below 1 %.
        f"""
        WITH af AS (SELECT transit_id, fov, ccd_row, strip, ln(flux_e) AS lf FROM sample_pairs
                    WHERE flags = 0 AND strip LIKE 'AF%' AND g_mag >= 13 AND g_mag < 19 AND flux_e > 0),
             per_transit AS (SELECT transit_id, avg(lf) AS mean_lf FROM af GROUP BY transit_id HAVING count(*) >= 6),
             per_ccd AS (SELECT fov, ccd_row, strip, median(lf - mean_lf) AS d,
                                1.2533 * 1.4826 * mad(lf - mean_lf) / sqrt(count(*)) AS se
                         FROM af JOIN per_transit USING (transit_id) GROUP BY fov, ccd_row, strip
                         HAVING count(*) >= {_MIN_PER_CCD})
        SELECT max(abs(d) - 3 * se) FROM per_ccd
        """,
        "<=", 0.01, "", nothing_when=f"no CCD holds {_MIN_PER_CCD} clean fluxes of G 13-19 transits",
    ),
    Check(
        "bp_rp_photometry_bias", "REQ-PHOT-002",
        "in every G bin the transit BP and RP magnitudes are unbiased to 0.02 mag",
        # A bin is judged where its median is known to a quarter of the threshold (standard error of a
        # median: 1.2533 sigma / sqrt(n), sigma = 1.4826 MAD): in a tiny day's faint bins the median's own
        # noise equals the threshold and would fail a correct pipeline by chance. A transit output without a
        # BP (RP) magnitude had a flux that was not positive: it ranks as fainter than any magnitude, so the
        # median is the median flux's (leaving those out biased the faint red stars' bins bright by 0.15-0.4
        # mag on the population sky); a bin that loses half its magnitudes fails.
        """
        SELECT greatest(max(abs(b_bp)), max(abs(b_rp))) FROM (
            SELECT g_bin, median(coalesce(d_bp, 'inf'::DOUBLE)) AS b_bp, median(coalesce(d_rp, 'inf'::DOUBLE)) AS b_rp,
                   1.2533 * 1.4826 * greatest(mad(coalesce(d_bp, 'inf'::DOUBLE)), mad(coalesce(d_rp, 'inf'::DOUBLE)))
                   / sqrt(count(*)) AS se_mag
            FROM phot_pairs GROUP BY g_bin HAVING count(*) >= 20)
        WHERE se_mag <= 0.005 OR isinf(b_bp) OR isinf(b_rp)
        """,
        "<=", 0.02, "mag", nothing_when="no G bin holds enough transits to know its median to 0.005 mag",
    ),
    Check(
        "faults_detected", "REQ-ING-002",
        "every fault injected into the telemetry is reported (quarantine, gap or duplicate)",
        f"SELECT CASE WHEN count(*) > 0 THEN count(*) FILTER (WHERE NOT ({DETECTED})) END FROM truth_faults f",
        "==", 0, "faults", nothing_when="no telemetry fault was injected",
    ),
    Check(
        "no_false_alarms", "REQ-ING-003",
        "no quarantine row, gap, duplicate, stalled or jumping counter is reported that no injected fault explains",
        f"""
        SELECT ({UNEXPLAINED_QUARANTINE}) + ({UNEXPLAINED_GAPS}) + ({UNEXPLAINED_DUPLICATES})
             + ({UNEXPLAINED_OUT_OF_ORDER}) + ({UNEXPLAINED_COUNTER}) + ({UNEXPLAINED_GLITCHES})
        """,
        "==", 0, "reports",
    ),
    Check(
        "alerts_recall", "REQ-ALR-001",
        "at least 95 % of the transients seen in both fields of view with |dG| >= 1 mag (new sources: G <= 19) "
        "raise an alert of their kind",
        alert_checks.RECALL_COUNTS_SQL,
        ">=", 0.95, "fraction",
        nothing_when="no transient was seen in both fields of view with |dG| >= 1 mag (or as a new source at G <= 19)",
        fraction_of="detectable transients",
    ),
    Check(
        "no_false_alerts", "REQ-ALR-002",
        "at most 1 alert per 10^6 transits that no transient explains, shown by the 95 % upper bound",
        alert_checks.FALSE_ALERT_EXPOSURE_SQL,
        "<=", 1.0, "alerts per 10^6 transits", nothing_when="the run output no transit", rate_per=1e6,
        exposure_unit="transits",
    ),
    # Near real time (watch mode; a batch run has no latencies: n/a): the seed's daily pipeline keeps up with
    # the downlink, and its science alerts "cannot wait". The 60 s budgets are ours.
    Check(
        "file_latency", "REQ-OPS-001",
        "in watch mode every TM file's outputs are written within 60 s of its arrival",
        "SELECT max(latency_s) FROM latency WHERE kind = 'file'",
        "<=", 60.0, "s", needs_truth=False, nothing_when="not a watch-mode run: no file latency",
    ),
    Check(
        "alert_latency", "REQ-OPS-002",
        "in watch mode every alert is written within 60 s of the arrival of the file that completed its evidence",
        "SELECT max(latency_s) FROM latency WHERE kind = 'alert'",
        "<=", 60.0, "s", needs_truth=False, nothing_when="no alert was raised in watch mode",
    ),
)


@dataclass(frozen=True)
class Result:
    check: Check
    value: float | None  # None when the check could not run, or had nothing to measure
    passed: bool | None  # None: nothing to measure (n/a), neither a pass nor a failure
    note: str = ""
    seconds: float = field(default=0.0, compare=False)  # wall time of the check's query (JUnit's time)

    @property
    def status(self) -> str:
        """``pass``, ``FAIL`` or ``n/a``."""
        return "n/a" if self.passed is None else "pass" if self.passed else "FAIL"

    @property
    def failed(self) -> bool:
        return self.passed is False


def tally(results: list[Result]) -> str:
    """'N of M checks passed' and how many failed and had nothing to measure (n/a)."""
    n = {status: sum(r.status == status for r in results) for status in ("pass", "FAIL", "n/a")}
    return (f"{n['pass']} of {len(results)} checks passed" + (f", {n['FAIL']} failed" if n["FAIL"] else "")
            + (f", {n['n/a']} n/a (nothing to measure)" if n["n/a"] else ""))


def get(name: str) -> Check:
    """The check called ``name``."""
    for check in CHECKS:
        if check.name == name:
            return check
    raise KeyError(f"no check named {name!r}; known: {', '.join(c.name for c in CHECKS)}")


def evaluate(con: duckdb.DuckDBPyConnection, check: Check, truth: bool = True) -> Result:
    """Run one check; a check that needs truth fails (not silently passes) when truth is missing; one with
    nothing to measure is n/a (``passed`` None), with :attr:`Check.nothing_when` as its note."""
    if check.needs_truth and not truth:
        return Result(check, None, False, "no truth tables: link the run to its dataset")
    start = time.perf_counter()
    row = con.execute(check.sql).fetchall()[0]
    seconds = time.perf_counter() - start
    if check.rate_per:
        return _rate_result(check, row, seconds)
    if check.fraction_of:
        return _fraction_result(check, row, seconds)
    value = row[0]
    if value is None:
        return Result(check, None, None, f"nothing to measure: {check.nothing_when}", seconds)
    value = float(value)
    return Result(check, value, bool(_OPS[check.op](value, check.threshold)), seconds=seconds)


def _rate_result(check: Check, row: tuple, seconds: float) -> Result:
    """A rate check's result from its (events, exposure) (see :attr:`Check.rate_per`): thresholds compared here."""
    events, exposure = row[0], row[1]
    if not exposure:
        return Result(check, None, None, f"nothing to measure: {check.nothing_when}", seconds)
    k, n = int(events), float(exposure)
    value = k / n * check.rate_per
    upper = bounds.poisson_upper(k) / n * check.rate_per
    counted = (f"{k} in {n:.4g} {check.exposure_unit}: {value:.3g} {check.unit}, 95 % upper bound "
               f"{upper:.3g}".strip())
    if _OPS[check.op](upper, check.threshold):
        return Result(check, value, True, counted, seconds)
    if not _OPS[check.op](value, check.threshold):
        return Result(check, value, False, counted, seconds)
    return Result(check, value, None, f"insufficient exposure: {n:.4g} {check.exposure_unit} bound the rate only to "
                                      f"{upper:.3g} {check.unit} ({counted})", seconds)


def _fraction_result(check: Check, row: tuple, seconds: float) -> Result:
    """A fraction check's result from its (successes, trials) (see :attr:`Check.fraction_of`)."""
    k, n = int(row[0] or 0), int(row[1] or 0)
    if not n:
        return Result(check, None, None, f"nothing to measure: {check.nothing_when}", seconds)
    value = k / n
    lower, upper = bounds.clopper_pearson_lower(k, n), bounds.clopper_pearson_upper(k, n)
    passed = bool(_OPS[check.op](value, check.threshold))
    note = f"{k} of {n} {check.fraction_of}: one-sided 95 % bounds {lower:.3g} and {upper:.3g}"
    if not passed and lower <= check.threshold <= upper:
        note += f"; too few to show it below {check.threshold:g}: the bounds still hold it"
    return Result(check, value, passed, note, seconds)


def evaluate_all(con: duckdb.DuckDBPyConnection, truth: bool = True, rerun: bool = False) -> list[Result]:
    """Every check; those that need a second pipeline run only when ``rerun`` (it doubles the cost)."""
    if truth:
        db.cache_sample_pairs(con)  # seven checks read them: join the run and the truth once
    return [evaluate(con, c, truth) for c in CHECKS if rerun or not c.needs_rerun]
