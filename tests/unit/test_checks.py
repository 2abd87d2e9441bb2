"""Validation checks (gaiasim.validate.checks): all pass on good runs, and each fires when the outputs
are damaged the way it is meant to catch."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from gaiasim.validate import checks, db
from pipeline import schemas
from tests.runs import rewrite_table


def mutated_run(run_dir: Path, tmp_path: Path, table: str, change: Callable[[pa.Table], pa.Table]) -> Path:
    """A copy of ``run_dir`` with ``<table>`` rewritten as ``change(table)``."""
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    rewrite_table(copy, table, change)
    return copy


def evaluate(run_dir: Path, dataset: Path, name: str) -> checks.Result:
    con = db.connect(run_dir, dataset)
    try:
        return checks.evaluate(con, checks.get(name), db.has_truth(con))
    finally:
        con.close()


@pytest.mark.parametrize("which", ["demo_run", "faulty_run", "transient_run"])
@pytest.mark.parametrize("name", [c.name for c in checks.CHECKS if not c.needs_rerun])
def test_every_check_passes_on_a_good_run(request, which, name):
    dataset, run_dir = request.getfixturevalue(which)
    result = evaluate(run_dir, dataset, name)
    assert result.value is not None and not np.isnan(result.value), f"{name} could not be measured"
    assert result.passed, f"{name} = {result.value} {result.check.unit}, required {result.check.op} " \
                          f"{result.check.threshold} on the {which}"


def test_the_faulty_run_has_faults_to_detect(faulty_run):
    dataset, _run_dir = faulty_run
    kinds = set(pq.read_table(dataset / "truth" / "faults")["kind"].to_pylist())
    assert kinds == {"packet_loss", "bit_flip", "duplicate", "truncated_file", "late_delivery", "pass_overlap",
                     "attitude_glitch"}


def test_dropped_transit_fails_transits_complete(demo_run, tmp_path):
    dataset, run_dir = demo_run
    copy = mutated_run(run_dir, tmp_path, "transits", lambda t: t.slice(1))
    result = evaluate(copy, dataset, "transits_complete")
    assert not result.passed and result.value == 1.0, f"transits_complete = {result.value} transits"
    assert evaluate(copy, dataset, "no_spurious_transits").passed


def test_duplicated_transit_fails_transits_complete(demo_run, tmp_path):
    dataset, run_dir = demo_run
    copy = mutated_run(run_dir, tmp_path, "transits", lambda t: pa.concat_tables([t, t.slice(0, 1)]))
    result = evaluate(copy, dataset, "transits_complete")
    assert not result.passed and result.value == 1.0


def test_invented_transit_fails_no_spurious_transits(demo_run, tmp_path):
    dataset, run_dir = demo_run

    def invent(t: pa.Table) -> pa.Table:
        extra = t.slice(0, 1)
        tid = pc.add(extra["transit_id"], 1)
        return pa.concat_tables([t, extra.set_column(0, schemas.TRANSITS.field("transit_id"), tid)])

    result = evaluate(mutated_run(run_dir, tmp_path, "transits", invent), dataset, "no_spurious_transits")
    assert not result.passed and result.value == 1.0


def test_shifted_centroids_fail_centroid_pull_bias(demo_run, tmp_path):
    dataset, run_dir = demo_run

    def shift(t: pa.Table) -> pa.Table:
        i = t.schema.get_field_index("al_px")
        return t.set_column(i, t.schema.field(i), pc.add(t["al_px"], pa.scalar(0.5, t.schema.field(i).type)))

    copy = mutated_run(run_dir, tmp_path, "ccd", shift)
    result = evaluate(copy, dataset, "centroid_pull_bias")
    assert not result.passed, f"centroid_pull_bias = {result.value} sigma after a 0.5 px shift"


def test_inflated_errors_fail_centroid_pull_width(demo_run, tmp_path):
    dataset, run_dir = demo_run

    def inflate(t: pa.Table) -> pa.Table:
        i = t.schema.get_field_index("al_px_err")
        return t.set_column(i, t.schema.field(i), pc.multiply(t["al_px_err"], pa.scalar(2.0, pa.float32())))

    result = evaluate(mutated_run(run_dir, tmp_path, "ccd", inflate), dataset, "centroid_pull_width")
    assert not result.passed, f"centroid_pull_width = {result.value} with errors twice too large"


def test_one_percent_wrong_sources_fail_crossmatch_correct(demo_run, tmp_path):
    dataset, run_dir = demo_run
    rng = np.random.default_rng(1)

    def corrupt(t: pa.Table) -> pa.Table:
        src = t["source_id"].to_numpy(zero_copy_only=False).copy()
        pick = rng.choice(len(src), size=max(1, len(src) // 100), replace=False)
        src[pick] = src[pick] + 1  # a source id no real match has
        i = t.schema.get_field_index("source_id")
        return t.set_column(i, t.schema.field(i), pa.array(src, pa.int64()))

    result = evaluate(mutated_run(run_dir, tmp_path, "transits", corrupt), dataset, "crossmatch_correct")
    assert not result.passed and result.value < 0.995, f"crossmatch_correct = {result.value}"


def test_biased_magnitudes_fail_photometry_bias(demo_run, tmp_path):
    dataset, run_dir = demo_run

    def brighten(t: pa.Table) -> pa.Table:
        i = t.schema.get_field_index("g_mag")
        return t.set_column(i, t.schema.field(i), pc.subtract(t["g_mag"], pa.scalar(0.05, pa.float32())))

    result = evaluate(mutated_run(run_dir, tmp_path, "transits", brighten), dataset, "photometry_bias")
    assert not result.passed and result.value == pytest.approx(0.05, abs=0.01)


def test_dropped_quarantine_fails_faults_detected(faulty_run, tmp_path):
    dataset, run_dir = faulty_run
    copy = mutated_run(run_dir, tmp_path, "quarantine", lambda t: t.slice(0, 0))
    result = evaluate(copy, dataset, "faults_detected")
    assert not result.passed and result.value > 0
    assert not evaluate(copy, dataset, "packet_conservation").passed


def test_fake_quarantine_row_fails_no_false_alarms(demo_run, tmp_path):
    dataset, run_dir = demo_run
    fake = pa.table({"file": ["fake.tm"], "offset": [0], "octets": [48], "apid": [100], "seq": [0],
                     "reason": ["crc_error"], "raw": [b"\x00" * 48]}, schema=schemas.QUARANTINE)
    copy = mutated_run(run_dir, tmp_path, "quarantine", lambda t: pa.concat_tables([t, fake]))
    result = evaluate(copy, dataset, "no_false_alarms")
    assert not result.passed and result.value == 1.0


def test_missing_truth_fails_instead_of_passing(demo_run, tmp_path):
    _dataset, run_dir = demo_run
    con = db.connect(run_dir, tmp_path)  # no dataset.json there: no truth
    assert not db.has_truth(con)
    results = checks.evaluate_all(con, db.has_truth(con))
    needs = [r for r in results if r.check.needs_truth]
    assert needs and all(not r.passed and r.value is None for r in needs)
    assert all(r.passed for r in results if not r.check.needs_truth)


def test_check_names_are_unique_and_get_finds_them():
    names = [c.name for c in checks.CHECKS]
    assert len(names) == len(set(names))
    assert all(checks.get(n).name == n for n in names)
    with pytest.raises(KeyError, match="no check named"):
        checks.get("nope")


def test_deleted_alert_fails_alerts_recall(transient_run, tmp_path):
    dataset, run_dir = transient_run
    assert evaluate(run_dir, dataset, "alerts_recall").value == 1.0
    copy = mutated_run(run_dir, tmp_path, "alerts", lambda t: t.slice(1))
    assert not evaluate(copy, dataset, "alerts_recall").passed


def test_invented_alert_fails_no_false_alerts(transient_run, tmp_path):
    dataset, run_dir = transient_run

    def invent(t: pa.Table) -> pa.Table:
        row = {**t.slice(0, 1).to_pylist()[0], "alert_id": 1, "transit_ids": [1]}
        return pa.concat_tables([t, pa.Table.from_pylist([row], schema=schemas.ALERTS)])

    copy = mutated_run(run_dir, tmp_path, "alerts", invent)
    assert not evaluate(copy, dataset, "no_false_alerts").passed


def test_a_bp_offset_fails_bp_rp_photometry_bias(demo_run, tmp_path):
    dataset, run_dir = demo_run
    assert evaluate(run_dir, dataset, "bp_rp_photometry_bias").passed

    def brighter_bp(t: pa.Table) -> pa.Table:
        i = t.schema.get_field_index("bp_mag")
        return t.set_column(i, t.schema.field(i), pc.subtract(t["bp_mag"], pa.scalar(0.05, pa.float32())))

    result = evaluate(mutated_run(run_dir, tmp_path, "transits", brighter_bp), dataset, "bp_rp_photometry_bias")
    assert not result.passed and abs(result.value - 0.05) < 0.01, result.value


def test_ccd_checks_of_a_large_day_read_a_whole_transit_sample(demo_run, monkeypatch):
    dataset, run_dir = demo_run
    assert db.ccd_sampling(0) == db.ccd_sampling(db.CCD_ROWS_CHECKED) == 1
    assert db.ccd_sampling(700_000_000) == 35  # a full-scale day's 700 M CCD rows
    con = db.connect(run_dir, dataset)
    n_ccd = con.execute("SELECT count(*) FROM ccd").fetchall()[0][0]
    assert con.execute("SELECT count(*) FROM sample_ccd").fetchall()[0][0] == n_ccd  # a small day: every row
    # As if the day were 4 times larger: n_ccd / (n_ccd // 4 + 1) lies in (3, 4] whatever n_ccd modulo 4.
    monkeypatch.setattr(db, "CCD_ROWS_CHECKED", n_ccd // 4 + 1)
    con = db.connect(run_dir, dataset)
    every = con.execute("SELECT ccd_every FROM sampling").fetchall()[0][0]
    assert every == 4
    n_tr, n_sampled, rows_per = con.execute("""
        SELECT (SELECT count(DISTINCT transit_id) FROM ccd), (SELECT count(DISTINCT transit_id) FROM sample_ccd),
               (SELECT max(abs(n - 10)) FROM (SELECT count(*) AS n FROM sample_ccd GROUP BY transit_id))
    """).fetchall()[0]
    assert abs(n_sampled - n_tr / every) < 5 * (n_tr / every) ** 0.5, (n_sampled, n_tr)
    assert rows_per == 0, "a sampled transit keeps all of its 10 CCD rows"
    same = con.execute("""SELECT count(*) FROM sample_truth_ccd t ANTI JOIN sample_ccd USING (transit_id)
                          WHERE transit_id IN (SELECT transit_id FROM ccd)""").fetchall()[0][0]
    assert same == 0, "run and truth are sampled on the same transits"
    for name in ("centroid_pull_bias", "cosmics_not_invented"):
        assert checks.evaluate(con, checks.get(name), True).passed
