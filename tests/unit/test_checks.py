"""Validation checks (gaiasim.validate.checks): every check passes on good runs, or says n/a where it has
nothing to measure (never pass); and every check has a tampering case in which it must fire (the table
:data:`TAMPERS`, which must name every check)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from gaiasim.validate import checks, db
from pipeline import schemas
from tests.runs import rewrite_table

#: The checks each good run has nothing to measure for (n/a), and why: no injected HK anomaly, no telemetry
#: fault, no transient, a batch run (no watch-mode latencies), too few bright 2D windows (seed 8), too few blends
#: (a toy sky at scale 4e-5).
EXPECTED_NA = {
    "demo_run": {"hk_anomalies_reported", "faults_detected", "alerts_recall", "file_latency", "alert_latency",
                 "no_false_alerts", "second_images_recognised"},
    "faulty_run": {"hk_anomalies_reported", "alerts_recall", "file_latency", "alert_latency", "no_false_alerts",
                   "second_images_recognised"},
    "transient_run": {"hk_anomalies_reported", "faults_detected", "file_latency", "alert_latency", "no_false_alerts",
                      "second_images_recognised"},
    "hk_run": {"faults_detected", "alerts_recall", "file_latency", "alert_latency", "centroid_ac_pulls",
               "no_false_alerts", "second_images_recognised"},
}
#: Checks that a small day leaves n/a with a value: a rate of rare events its exposure cannot bound (REQ-ALR-002).
INSUFFICIENT_EXPOSURE = {"no_false_alerts"}


def evaluate(run_dir: Path, dataset: Path, name: str, rerun: list[str] | None = None) -> checks.Result:
    con = db.connect(run_dir, dataset)
    try:
        if rerun is not None:
            con.execute("CREATE TABLE rerun_differences (name VARCHAR)")
            for n in rerun:
                con.execute("INSERT INTO rerun_differences VALUES (?)", [n])
        return checks.evaluate(con, checks.get(name), db.has_truth(con))
    finally:
        con.close()


@pytest.mark.parametrize("which", sorted(EXPECTED_NA))
def test_every_check_passes_on_a_good_run_or_has_nothing_to_measure(request, which):
    dataset, run_dir = request.getfixturevalue(which)
    con = db.connect(run_dir, dataset)
    results = {r.check.name: r for r in checks.evaluate_all(con, db.has_truth(con))}
    failed = {n: f"{r.value} {r.check.unit}, required {r.check.op} {r.check.threshold}" for n, r in results.items()
              if r.failed}
    assert not failed, f"checks failing on the {which}: {failed}"
    na = {n for n, r in results.items() if r.status == "n/a"}
    assert na == EXPECTED_NA[which], f"n/a on the {which}: {sorted(na)}, expected {sorted(EXPECTED_NA[which])}"
    for name in na - INSUFFICIENT_EXPOSURE:
        assert results[name].value is None and results[name].note.startswith("nothing to measure: "), results[name]
    for name in na & INSUFFICIENT_EXPOSURE:
        assert results[name].value == 0.0 and results[name].note.startswith("insufficient exposure: "), results[name]


def test_a_determinism_check_without_differences_passes(demo_run):
    dataset, run_dir = demo_run
    assert evaluate(run_dir, dataset, "determinism", rerun=[]).status == "pass"


# --- tampering: every check has a case where it must fire ------------------------------------------------


@dataclass(frozen=True)
class Tamper:
    """How to damage a good run so that one check must fail."""

    fixture: str  # the good run it starts from
    what: str  # the damage, in words
    table: str | None = None  # an output table to rewrite ...
    change: Callable[[pa.Table], pa.Table] | None = None  # ... as change(table)
    run_info: Callable[[dict], None] | None = None  # an edit of run.json
    dataset: Callable[[Path], None] | None = None  # damage to a copy of the dataset
    rerun: tuple[str, ...] | None = None  # rerun differences (the determinism check)
    extra: Callable[[Path], None] | None = None  # anything else done to the run copy


def _set_column(t: pa.Table, name: str, values) -> pa.Table:
    i = t.schema.get_field_index(name)
    return t.set_column(i, t.schema.field(i), pa.array(values, t.schema.field(i).type))


def _shift(name: str, by: float) -> Callable[[pa.Table], pa.Table]:
    def change(t: pa.Table) -> pa.Table:
        i = t.schema.get_field_index(name)
        return t.set_column(i, t.schema.field(i), pc.add(t[name], pa.scalar(by, t.schema.field(i).type)))
    return change


def _scale(name: str, by: float) -> Callable[[pa.Table], pa.Table]:
    def change(t: pa.Table) -> pa.Table:
        i = t.schema.get_field_index(name)
        return t.set_column(i, t.schema.field(i), pc.multiply(t[name], pa.scalar(by, t.schema.field(i).type)))
    return change


def _one_strip_brighter(strip: str, by: float) -> Callable[[pa.Table], pa.Table]:
    def change(t: pa.Table) -> pa.Table:
        i = t.schema.get_field_index("flux_e")
        factor = pc.if_else(pc.equal(t["strip"].cast(pa.string()), strip), by, 1.0)
        return t.set_column(i, t.schema.field(i), pc.multiply(t["flux_e"], factor).cast(pa.float32()))
    return change


def _flags(cosmic: bool) -> Callable[[pa.Table], pa.Table]:
    """Every CCD row flagged as hit by a cosmic ray (or none)."""
    def change(t: pa.Table) -> pa.Table:
        flags = t["flags"].to_numpy()
        return _set_column(t, "flags", flags | 16 if cosmic else flags & ~16)
    return change


def _wrong_sources(t: pa.Table) -> pa.Table:
    # The unmatched transits (sources missing from the catalogue) stay unmatched.
    src = t["source_id"].to_pylist()
    matched = [i for i, s in enumerate(src) if s is not None]
    for i in np.random.default_rng(1).choice(matched, size=max(1, len(src) // 100), replace=False):
        src[i] += 1  # a source id no real match has
    return _set_column(t, "source_id", src)


def _match_the_unmatched(t: pa.Table) -> pa.Table:
    """Every unmatched transit (the spurious detections around bright stars among them) given a catalogue source."""
    src = t["source_id"].to_pylist()
    some = next(s for s in src if s is not None)
    return _set_column(t, "source_id", [some if s is None else s for s in src])


def _class_from_measured_g(t: pa.Table) -> pa.Table:
    """Window classes taken from the measured G (not the packet's, which the on-board G chose)."""
    g = t["g_mag"].to_numpy(zero_copy_only=False)
    recomputed = np.searchsorted([13.0, 16.0], np.nan_to_num(g, nan=99.0), side="right")
    return _set_column(t, "window_class", np.where(np.isfinite(g), recomputed, t["window_class"].to_numpy()))


def _truncated_centres_off(t: pa.Table) -> pa.Table:
    """The centres of truncated windows (pipeline.transits.FLAG_TRUNCATED) 1 px off, towards where a fit that
    takes the samples not read out (0 ADU) for signal drags them."""
    from pipeline.transits import FLAG_TRUNCATED

    truncated = (t["flags"].to_numpy() & FLAG_TRUNCATED) != 0
    assert truncated.any(), "the good run has no truncated window to damage"
    return _set_column(t, "al_px", t["al_px"].to_numpy() - np.where(truncated, 1.0, 0.0))


def _invented_transit(t: pa.Table) -> pa.Table:
    extra = t.slice(0, 1)
    return pa.concat_tables([t, _set_column(extra, "transit_id", pc.add(extra["transit_id"], 1))])


def _invented_alert(t: pa.Table) -> pa.Table:
    row = {**t.slice(0, 1).to_pylist()[0], "alert_id": 1, "transit_ids": [1]}
    return pa.concat_tables([t, pa.Table.from_pylist([row], schema=schemas.ALERTS)])


def _drop_alerts_of_the_largest_class(run: Path) -> None:
    """A pipeline that misses one class of transients: the alerts finding the class with the most detectable
    transients are deleted (gaiasim.validate.alert_checks)."""
    from gaiasim.validate import alert_checks

    con = db.connect(run)
    try:
        (largest,) = con.execute(f"SELECT class FROM truth_transients SEMI JOIN ({alert_checks.DETECTABLE}) d "
                                 "USING (transient_id) GROUP BY class ORDER BY count(*) DESC, class LIMIT 1").fetchone()
        gone = {a for (a,) in con.execute(f"SELECT f.alert_id FROM ({alert_checks._FOUND}) f JOIN truth_transients i "
                                          "USING (transient_id) WHERE i.class = ?", [largest]).fetchall()}
    finally:
        con.close()
    assert gone, f"no alert finds a {largest} transient to delete"
    rewrite_table(run, "alerts", lambda t: t.filter(pa.array([a not in gone for a in t["alert_id"].to_pylist()])))


def _fake_quarantine(t: pa.Table) -> pa.Table:
    fake = pa.table({"file": ["fake.tm"], "offset": [0], "octets": [48], "apid": [100], "seq": [0],
                     "reason": ["crc_error"], "raw": [b"\x00" * 48]}, schema=schemas.QUARANTINE)
    return pa.concat_tables([t, fake])


def _spurious_hk_event(t: pa.Table) -> pa.Table:
    row = {"channel": "bus_voltage_v", "kind": "limit", "severity": "red", "side": "high", "start_ns": 1,
           "end_ns": 2, "n_samples": 1, "extreme_value": 99.0, "open": False}
    return pa.concat_tables([t, pa.Table.from_pylist([row], schema=schemas.HK_EVENTS)])


def _latency(kind: str, seconds: float) -> Callable[[Path], None]:
    """A watch-mode latency table with one row of ``kind`` that took ``seconds``."""
    def add(run: Path) -> None:
        row = {"kind": kind, "name": "x", "arrived_utc_ns": 0, "written_utc_ns": int(seconds * 1e9),
               "latency_s": seconds}
        (run / "latency").mkdir()
        pq.write_table(pa.Table.from_pylist([row], schema=schemas.LATENCY), run / "latency" / "part-0000.parquet")
    return add


def _drop_input(info: dict) -> None:
    first = sorted(k for k in info["inputs"] if k.startswith("tm/"))[0]
    del info["inputs"][first]


def _lose_a_packet(info: dict) -> None:
    info["counts"]["packets_used"] -= 1


def _unrecognised_blends(dataset: Path) -> None:
    """The truth given 25 blends (truth_artefacts kind blended) in transits of G < 18 whose windows the run saw
    as single stars: none is flagged as holding a second image."""
    from gaiasim.sim.vpu import TRUTH_ARTEFACTS

    transits = pq.read_table(dataset / "truth" / "transits").sort_by("transit_id").to_pylist()
    hosts = [t for t in transits if t["g_mag"] < 18][:25]
    assert len(hosts) == 25, "the good run has too few transits of G < 18 to blend"
    rows = [{"transit_id": t["transit_id"] + 1, "kind": "blended", "source_id": t["source_id"] + 1,
             "parent_transit_id": t["transit_id"], "obmt_ns": t["obmt_ns"], "fov": t["fov"], "ccd_row": t["ccd_row"],
             "ac_px": t["ac_px"], "g_mag": t["g_mag"] + 0.5, "g_onboard_mag": t["g_mag"],
             "window_class": t["window_class"], "d_al_px": 3.0, "d_ac_px": 0.0, "samples_kept": None, "side": None}
            for t in hosts]
    (dataset / "truth" / "artefacts").mkdir(exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=TRUTH_ARTEFACTS),
                   dataset / "truth" / "artefacts" / "part-tampered.parquet")


def _remove_truth_file(dataset: Path) -> None:
    # A file of the manifest is missing: its actual SHA-256 is NULL (only IS DISTINCT FROM sees it).
    next((dataset / "truth" / "ccd").rglob("*.parquet")).unlink()


TAMPERS: dict[str, Tamper] = {
    "hk_anomalies_reported": Tamper("hk_run", "the HK events deleted", "hk_events", lambda t: t.slice(0, 0)),
    "no_spurious_hk_events": Tamper("demo_run", "an HK limit event invented", "hk_events", _spurious_hk_event),
    "packet_conservation": Tamper("faulty_run", "one packet missing from the balance", run_info=_lose_a_packet),
    "manifest_integrity": Tamper("demo_run", "a truth file of the manifest deleted", dataset=_remove_truth_file),
    "run_inputs_match": Tamper("demo_run", "a TM file of the dataset not read", run_info=_drop_input),
    "determinism": Tamper("demo_run", "a table differing when rerun", rerun=("transits",)),
    "transits_complete": Tamper("demo_run", "a transit dropped", "transits", lambda t: t.slice(1)),
    "no_spurious_transits": Tamper("demo_run", "a transit invented", "transits", _invented_transit),
    "centroid_pull_bias": Tamper("demo_run", "centroids shifted 0.5 px", "ccd", _shift("al_px", 0.5)),
    "centroid_pull_width": Tamper("demo_run", "centroid errors doubled", "ccd", _scale("al_px_err", 2.0)),
    "centroid_ac_pulls": Tamper("demo_run", "AC centres shifted 0.5 px", "ccd", _shift("ac_px", 0.5)),
    "ccd_times": Tamper("demo_run", "CCD observation times 0.5 ms late", "ccd", _shift("obmt_ns", 500_000)),
    "fit_noise_model": Tamper("demo_run", "fits' chi-square 20 % low (noise over-estimated)", "ccd",
                              _scale("chi2", 0.8)),
    "cosmics_flagged": Tamper("demo_run", "no cosmic-ray flag set", "ccd", _flags(cosmic=False)),
    "cosmics_not_invented": Tamper("demo_run", "every window flagged cosmic", "ccd", _flags(cosmic=True)),
    "crossmatch_correct": Tamper("demo_run", "1 % of transits matched to a wrong source", "transits", _wrong_sources),
    "spurious_rejected": Tamper("demo_run", "every unmatched transit matched to a catalogue source", "transits",
                                _match_the_unmatched),
    "class_by_onboard_g": Tamper("demo_run", "window classes taken from the measured G", "transits",
                                 _class_from_measured_g),
    "truncated_centroid": Tamper("demo_run", "truncated windows' centres 1 px off", "ccd", _truncated_centres_off),
    "second_images_recognised": Tamper("demo_run", "25 blends the run did not see", dataset=_unrecognised_blends),
    "photometry_bias": Tamper("demo_run", "G 0.05 mag too bright", "transits", _shift("g_mag", -0.05)),
    "ccd_photometry": Tamper("demo_run", "every AF5 flux 5 % high", "ccd", _one_strip_brighter("AF5", 1.05)),
    "bp_rp_photometry_bias": Tamper("demo_run", "BP 0.05 mag too bright", "transits", _shift("bp_mag", -0.05)),
    "faults_detected": Tamper("faulty_run", "the quarantine emptied", "quarantine", lambda t: t.slice(0, 0)),
    "no_false_alarms": Tamper("demo_run", "a quarantine row no fault explains", "quarantine", _fake_quarantine),
    "alerts_recall": Tamper("transient_run", "the alerts of the class with the most detectable transients deleted",
                            extra=_drop_alerts_of_the_largest_class),
    "no_false_alerts": Tamper("transient_run", "an alert invented", "alerts", _invented_alert),
    "file_latency": Tamper("demo_run", "a TM file's outputs 61 s after its arrival", extra=_latency("file", 61.0)),
    "alert_latency": Tamper("demo_run", "an alert 61 s after its file", extra=_latency("alert", 61.0)),
}


def test_every_check_has_a_tampering_case():
    assert sorted(TAMPERS) == sorted(c.name for c in checks.CHECKS)


def tampered(request, tmp_path: Path, tamper: Tamper) -> tuple[Path, Path]:
    """(dataset, run) copies of the tamper's good run with its damage done."""
    dataset, run_dir = request.getfixturevalue(tamper.fixture)
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    if tamper.table:
        rewrite_table(run, tamper.table, tamper.change)
    if tamper.run_info:
        info = json.loads((run / "run.json").read_text())
        tamper.run_info(info)
        (run / "run.json").write_text(json.dumps(info))
    if tamper.extra:
        tamper.extra(run)
    if tamper.dataset:
        shutil.copytree(dataset, tmp_path / "dataset")
        dataset = tmp_path / "dataset"
        tamper.dataset(dataset)
    return dataset, run


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_each_check_fires_when_the_outputs_are_damaged(request, tmp_path, name):
    tamper = TAMPERS[name]
    dataset, run_dir = request.getfixturevalue(tamper.fixture)
    rerun = list(tamper.rerun) if tamper.rerun is not None else None
    before = evaluate(run_dir, dataset, name, rerun=[] if rerun is not None else None)
    assert before.status in ("pass", "n/a"), f"{name} already fails on the {tamper.fixture}: {before}"
    dataset, run = tampered(request, tmp_path, tamper)
    after = evaluate(run, dataset, name, rerun=rerun)
    assert after.failed, f"{name} = {after.value} {after.check.unit} ({after.status}) after: {tamper.what}"


def test_values_of_some_tampers_are_exact(request, tmp_path):
    """The checks count what was damaged, not just fire."""
    for name, want in (("transits_complete", 1.0), ("no_spurious_transits", 1.0), ("no_false_alarms", 1.0),
                       ("manifest_integrity", 1.0), ("run_inputs_match", 1.0), ("packet_conservation", 1.0),
                       ("photometry_bias", pytest.approx(0.05, abs=0.01)),
                       ("bp_rp_photometry_bias", pytest.approx(0.05, abs=0.01))):
        folder = tmp_path / name
        folder.mkdir()
        dataset, run = tampered(request, folder, TAMPERS[name])
        assert evaluate(run, dataset, name).value == want, name


def test_bp_magnitudes_left_out_count_as_faint_not_as_missing(request, tmp_path):
    """A transit without a BP magnitude had no positive BP flux: a pipeline that leaves out the faintest
    60 % of the BP magnitudes (what a flux near zero does to the faint red stars) must fail, not be judged
    on the brighter 40 % that remain."""
    def drop_faint_bp(t: pa.Table) -> pa.Table:
        bp = t["bp_mag"].to_numpy(zero_copy_only=False)
        g = np.floor(t["g_mag"].to_numpy(zero_copy_only=False))
        keep = np.ones(len(bp), bool)
        for g_bin in np.unique(g[np.isfinite(g)]):
            rows = np.flatnonzero(g == g_bin)
            keep[rows[np.argsort(-bp[rows])][: int(0.6 * len(rows))]] = False
        return _set_column(t, "bp_mag", [float(b) if k else None for b, k in zip(bp, keep, strict=True)])

    dataset, run = tampered(request, tmp_path, Tamper("demo_run", "faint BP magnitudes left out", "transits",
                                                      drop_faint_bp))
    result = evaluate(run, dataset, "bp_rp_photometry_bias")
    assert result.failed and result.value == float("inf"), result


def test_a_pipeline_that_matched_by_truth_id_fails_the_crossmatch(demo_run, tmp_path):
    """The catalogue has its own ids (truth/catalogue_links ties them to the truth): transits carrying their
    true source's id are wrong matches, each one."""
    dataset, run_dir = demo_run
    truth = pq.read_table(dataset / "truth" / "transits", columns=["transit_id", "source_id"]).to_pydict()
    true_source = dict(zip(truth["transit_id"], truth["source_id"], strict=True))

    def by_truth_id(t: pa.Table) -> pa.Table:
        return _set_column(t, "source_id", [true_source.get(i) for i in t["transit_id"].to_pylist()])

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    rewrite_table(run, "transits", by_truth_id)
    result = evaluate(run, dataset, "crossmatch_correct")
    assert result.failed and result.value < 0.1, result


def test_a_check_with_nothing_to_measure_is_na_not_pass(demo_run, tmp_path):
    """A day whose run output no transit: the transit checks have nothing to measure."""
    dataset, run_dir = demo_run
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    for table in ("transits", "ccd"):
        rewrite_table(run, table, lambda t: t.slice(0, 0))
    con = db.connect(run, dataset)
    results = {r.check.name: r for r in checks.evaluate_all(con, True)}
    for name in ("no_spurious_transits", "centroid_pull_bias", "centroid_pull_width", "ccd_times", "fit_noise_model",
                 "ccd_photometry",
                 "cosmics_flagged",
                 "cosmics_not_invented", "photometry_bias", "bp_rp_photometry_bias", "crossmatch_correct",
                 "no_false_alerts", "spurious_rejected", "class_by_onboard_g", "truncated_centroid"):
        assert results[name].status == "n/a", f"{name}: {results[name]}"
    assert results["transits_complete"].failed, "the truth's transits are all missing"


def test_a_pipeline_that_fits_samples_not_read_out_fails_the_truncated_centroids(demo_run, tmp_path, monkeypatch):
    """The real damage: the built-in pipeline run again over the demo day without masking the samples not
    read out (as if they were 0 ADU of signal, -3900 e-) drags the centres of truncated windows by sigmas."""
    import pipeline.icd
    from pipeline.run import run

    dataset, run_dir = demo_run
    assert evaluate(run_dir, dataset, "truncated_centroid").status == "pass"
    monkeypatch.setattr(pipeline.icd, "NOT_READ_ADU", -1)  # no uint16 sample equals it: nothing masked
    run(dataset, tmp_path / "run")
    result = evaluate(tmp_path / "run", dataset, "truncated_centroid")
    assert result.failed and result.value > 1.0, result


# --- other rules ----------------------------------------------------------------------------------------


def test_the_faulty_run_has_faults_to_detect(faulty_run):
    dataset, _run_dir = faulty_run
    kinds = set(pq.read_table(dataset / "truth" / "faults")["kind"].to_pylist())
    assert kinds == {"packet_loss", "bit_flip", "duplicate", "truncated_file", "late_delivery", "pass_overlap",
                     "attitude_glitch"}


def test_missing_truth_fails_instead_of_passing(demo_run, tmp_path):
    _dataset, run_dir = demo_run
    con = db.connect(run_dir, tmp_path)  # no dataset.json there: no truth
    assert not db.has_truth(con)
    results = checks.evaluate_all(con, db.has_truth(con))
    needs = [r for r in results if r.check.needs_truth]
    assert needs and all(r.failed and r.value is None for r in needs)
    assert not any(r.failed for r in results if not r.check.needs_truth)


def test_check_names_are_unique_and_get_finds_them():
    names = [c.name for c in checks.CHECKS]
    assert len(names) == len(set(names))
    assert all(checks.get(n).name == n for n in names)
    with pytest.raises(KeyError, match="no check named"):
        checks.get("nope")


def test_every_check_says_when_it_has_nothing_to_measure():
    assert all(c.nothing_when for c in checks.CHECKS if c.name != "no_false_alarms" and c.name != "determinism")


def test_tally_names_passes_failures_and_na():
    c = checks.get("photometry_bias")
    results = [checks.Result(c, 0.0, True), checks.Result(c, 1.0, False), checks.Result(c, None, None)]
    assert checks.tally(results) == "1 of 3 checks passed, 1 failed, 1 n/a (nothing to measure)"


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
               (SELECT count(*) FROM (SELECT s.n, c.n AS whole FROM
                    (SELECT transit_id, count(*) AS n FROM sample_ccd GROUP BY transit_id) s JOIN
                    (SELECT transit_id, count(*) AS n FROM ccd GROUP BY transit_id) c USING (transit_id))
                WHERE n <> whole)
    """).fetchall()[0]
    assert abs(n_sampled - n_tr / every) < 5 * (n_tr / every) ** 0.5, (n_sampled, n_tr)
    assert rows_per == 0, "a sampled transit keeps all of its CCD rows (10; 9 in the wavefront sensor's row)"
    same = con.execute("""SELECT count(*) FROM sample_truth_ccd t ANTI JOIN sample_ccd USING (transit_id)
                          WHERE transit_id IN (SELECT transit_id FROM ccd)""").fetchall()[0][0]
    assert same == 0, "run and truth are sampled on the same transits"
    for name in ("centroid_pull_bias", "cosmics_not_invented"):
        assert checks.evaluate(con, checks.get(name), True).passed


def test_photometry_checks_of_a_large_day_read_a_bounded_sample_of_each_g_bin(demo_run, monkeypatch):
    dataset, run_dir = demo_run
    con = db.connect(run_dir, dataset)
    sizes = dict(con.execute("SELECT floor(g_mag), count(*) FROM truth_transits GROUP BY 1").fetchall())
    matched = con.execute("SELECT count(*) FROM transits JOIN truth_transits USING (transit_id)").fetchall()[0][0]
    assert con.execute("SELECT count(*) FROM phot_pairs").fetchall()[0][0] == matched  # a small day: all
    cap = max(sizes.values()) // 4  # as if the day were 4 times larger than this cap in its fullest bin
    monkeypatch.setattr(db, "PHOT_TRANSITS_PER_BIN", cap)
    con = db.connect(run_dir, dataset)
    kept = dict(con.execute("SELECT g_bin, count(*) FROM phot_pairs GROUP BY g_bin").fetchall())
    for g_bin, n in sizes.items():
        every = max(1, n // cap)
        if every == 1:
            assert kept.get(g_bin, 0) <= n and kept.get(g_bin, 0) >= 0.9 * n, "a small bin is read whole"
        else:
            assert kept[g_bin] < 2 * cap + 5 * (n / every) ** 0.5, (g_bin, kept[g_bin], n, cap)
            assert abs(kept[g_bin] - n / every) < 5 * (n / every) ** 0.5 + 0.1 * n / every, (g_bin, kept[g_bin])
    first = con.execute("SELECT sum(d_g) FROM phot_pairs").fetchall()[0][0]
    again = db.connect(run_dir, dataset).execute("SELECT sum(d_g) FROM phot_pairs").fetchall()[0][0]
    assert first == again, "the sample is the same transits every time"
    for name in ("photometry_bias", "bp_rp_photometry_bias"):
        assert checks.evaluate(con, checks.get(name), True).status in ("pass", "n/a")


@pytest.mark.parametrize(("found", "detectable", "status", "note"), [
    (19, 20, "pass", "19 of 20 detectable transients: one-sided 95 % bounds 0.784 and 0.997"),
    (1, 2, "FAIL", "1 of 2 detectable transients: one-sided 95 % bounds 0.0253 and 0.975; too few to show it below "
                   "0.95: the bounds still hold it"),
    (40, 60, "FAIL", "40 of 60 detectable transients: one-sided 95 % bounds 0.554 and 0.767"),
    (0, 0, "n/a", "nothing to measure: no transient was seen"),
])
def test_the_recall_is_judged_as_measured_and_says_its_counts_and_bounds(found, detectable, status, note):
    """The bounds are scipy.stats.beta's quantiles (Beta(k, n - k + 1) at 5 %, Beta(k + 1, n - k) at 95 %)."""
    import duckdb

    recall = checks.get("alerts_recall")
    con = duckdb.connect(":memory:")
    result = checks.evaluate(con, dataclasses.replace(recall, sql=f"SELECT {found}, {detectable}"))
    assert result.status == status
    assert result.note.startswith(note)
    assert result.value == (found / detectable if detectable else None)
