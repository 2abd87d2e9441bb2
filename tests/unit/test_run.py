"""The streaming run (pipeline.run): resumption to the same bytes, locking, refusal of foreign folders,
and outputs that do not depend on the chunk sizes that bound its memory."""

from __future__ import annotations

import hashlib
import json
import shutil
from functools import partial
from pathlib import Path

import duckdb
import pytest

from pipeline import hourly, ingest, io, schemas, spool
from pipeline.config import PipelineConfig
from pipeline.run import RUN_JSON, WORK, run


class Stop(Exception):
    """Stands for a crash at a chosen point of a run."""


def parquet_digests(run_dir: Path) -> dict[str, str]:
    """SHA-256 of every Parquet file a reader can see, by path inside the run."""
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*.parquet")) if WORK not in p.parts}


def stop_at(stage: str, nth: int):
    calls = {"n": 0}

    def progress(name: str, _fraction: float) -> None:
        if name == stage:
            calls["n"] += 1
            if calls["n"] == nth:
                raise Stop(f"{stage} #{nth}")

    return progress


@pytest.mark.parametrize(("stage", "nth"), [("ingest", 2), ("hours", 1), ("hours", 5), ("decode", 1)])
def test_a_stopped_run_resumes_to_the_same_bytes(faulty_run, tmp_path, stage, nth):
    dataset, clean = faulty_run
    out = tmp_path / "run"
    with pytest.raises(Stop):
        run(dataset, out, progress=stop_at(stage, nth))
    assert (out / WORK).is_dir(), "a stopped run keeps its work area for the resumption"
    info = run(dataset, out)
    assert info["status"] == "complete" and info["counts"]["balance_ok"]
    assert parquet_digests(out) == parquet_digests(clean)
    assert not (out / WORK).exists()


def test_a_complete_run_is_not_redone(faulty_run, tmp_path):
    dataset, clean = faulty_run
    out = tmp_path / "run"
    shutil.copytree(clean, out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
    info = run(dataset, out)
    assert info["status"] == "complete"
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")} == before


def test_a_run_folder_in_use_is_refused(faulty_run, tmp_path):
    dataset, _ = faulty_run
    out = tmp_path / "run"
    with io.locked_folder(out), pytest.raises(io.InputError, match="in use by another gaiasim run"):
        run(dataset, out)


def test_a_folder_holding_another_run_is_refused(faulty_run, tmp_path):
    dataset, clean = faulty_run
    out = tmp_path / "run"
    shutil.copytree(clean, out)
    digests = parquet_digests(out)
    with pytest.raises(io.InputError, match="other inputs"):
        run(dataset, out, PipelineConfig(match_radius_mas=400.0))
    assert parquet_digests(out) == digests


def test_a_folder_holding_something_else_is_refused(faulty_run, tmp_path):
    dataset, _ = faulty_run
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(io.InputError, match="not empty"):
        run(dataset, out)
    assert (out / "notes.txt").read_text() == "mine"


def test_outputs_do_not_depend_on_the_chunk_sizes(faulty_run, tmp_path, monkeypatch):
    dataset, clean = faulty_run
    monkeypatch.setattr(spool, "scan_file", partial(ingest.scan_file, chunk_octets=100_000))
    monkeypatch.setattr(hourly, "IPD_CHUNK_TRANSITS", 7)
    out = tmp_path / "run"
    run(dataset, out)
    con = duckdb.connect()
    for name in schemas.RUN_TABLES:
        cols = ", ".join(f'"{c}"' for c in schemas.RUN_TABLES[name].names)
        a = f"SELECT {cols} FROM read_parquet('{clean / name}/**/*.parquet', hive_partitioning = true)"
        b = f"SELECT {cols} FROM read_parquet('{out / name}/**/*.parquet', hive_partitioning = true)"
        assert con.sql(f"SELECT count(*) FROM (({a}) EXCEPT ALL ({b}))").fetchall() == [(0,)], name
        assert con.sql(f"SELECT count(*) FROM (({b}) EXCEPT ALL ({a}))").fetchall() == [(0,)], name


def test_transits_are_partitioned_by_obmt_hour(faulty_run):
    _, clean = faulty_run
    hours = sorted(p.name for p in (clean / "transits").iterdir())
    assert len(hours) > 1 and all(h.startswith("hour=") for h in hours)
    # The hour is that of the packet's time; the fitted transit time may lie a few seconds off it.
    rows = duckdb.sql(f"SELECT DISTINCT obmt_ns BETWEEN hour * 3600000000000 - 60e9 AND (hour + 1) * 3600000000000"
                      f" + 60e9 FROM read_parquet('{clean / 'transits'}/**/*.parquet', hive_partitioning = true)"
                      ).fetchall()
    assert rows == [(True,)]
    assert (clean / RUN_JSON).is_file()


@pytest.mark.parametrize("kind", ["threads", "process", "dask"])
def test_hours_on_any_executor_give_the_same_bytes(faulty_run, tmp_path, kind):
    from gaiasim.executors import make_executor

    if kind == "dask":
        pytest.importorskip("distributed")
    dataset, clean = faulty_run
    out = tmp_path / "run"
    with make_executor(kind, 2, processes=False) as pool:
        run(dataset, out, executor=pool)
    assert parquet_digests(out) == parquet_digests(clean)


@pytest.mark.parametrize("stage", ["ingest", "hours"])
def test_progress_follows_the_tasks_a_pool_finishes(faulty_run, tmp_path, stage):
    """Tasks go to a pool largest first; the progress of a stage must count what is done, not wait for the
    first file or hour in time order (a small one, so done last: progress then stalled all stage long)."""
    from pipeline.executor import ThreadExecutor

    dataset, _clean = faulty_run
    out = tmp_path / "run"
    done_at_calls = []

    def progress(name: str, _fraction: float) -> None:
        if name == stage:
            folder = out / WORK / ("files" if stage == "ingest" else "hours")
            done_at_calls.append(len(list(folder.glob("*.json"))))

    with ThreadExecutor(1) as pool:  # one task at a time, in submission order
        run(dataset, out, progress=progress, executor=pool)
    assert len(done_at_calls) >= 3
    assert done_at_calls == list(range(1, len(done_at_calls) + 1))


def test_an_hour_cut_into_slices_gives_the_same_rows(faulty_run, tmp_path, monkeypatch):
    dataset, clean = faulty_run
    monkeypatch.setattr(hourly, "SLICE_TRANSITS", 10)  # every hour of the tiny day in several slices
    out = tmp_path / "run"
    run(dataset, out)
    assert any(p.name == "part-1.parquet" for p in (out / "transits").rglob("*.parquet"))
    con = duckdb.connect()
    for name in ("transits", "ccd", "quarantine", "hk", "hk_events", "alerts"):
        cols = ", ".join(f'"{c}"' for c in schemas.RUN_TABLES[name].names)
        a = f"SELECT {cols} FROM read_parquet('{clean / name}/**/*.parquet', hive_partitioning = true)"
        b = f"SELECT {cols} FROM read_parquet('{out / name}/**/*.parquet', hive_partitioning = true)"
        assert con.sql(f"SELECT count(*) FROM (({a}) EXCEPT ALL ({b}))").fetchall() == [(0,)], name
        assert con.sql(f"SELECT count(*) FROM (({b}) EXCEPT ALL ({a}))").fetchall() == [(0,)], name
    # Gaps: the same packets reported, though an out-of-order span may now end at a slice's edge.
    totals = "SELECT apid, kind, sum(count) FROM read_parquet('{}/gaps/*.parquet') GROUP BY ALL ORDER BY ALL"
    assert con.sql(totals.format(out)).fetchall() == con.sql(totals.format(clean)).fetchall()


def test_a_missing_lsf_calibration_table_stops_the_run_before_it_writes(tmp_path, monkeypatch):
    from pipeline import lsf

    monkeypatch.setattr(lsf, "TABLE_ERROR", io.InputError("LSF calibration table x.csv: No such file; restore it"))
    with pytest.raises(io.InputError, match="LSF calibration table"):
        run(tmp_path / "anything", tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_first_pass_stopped_inside_a_file_is_redone_from_its_start(faulty_run, tmp_path, monkeypatch):
    # The first pass writes each file's packet references hour by hour into a parts folder as the chunks
    # come (bounded memory); a pass killed inside the file leaves that folder behind. Resumed, the file
    # starts over from a clean folder and the run ends with the clean run's bytes.
    dataset, _ = faulty_run
    out = tmp_path / "run"

    def scan_then_die(*args, **kwargs):
        for chunk in ingest.scan_file(*args, **kwargs):
            if any((out / WORK / "files").glob("*.parts/*.bin")):
                raise Stop("inside a file, after some of its star packets")
            yield chunk

    monkeypatch.setattr(spool, "scan_file", partial(scan_then_die, chunk_octets=100_000))
    with pytest.raises(Stop):
        run(dataset, out)
    parts = list((out / WORK / "files").glob("*.parts"))
    assert parts and any(parts[0].iterdir()), "the stopped pass left hour parts"
    (parts[0] / "999999.bin").write_bytes(b"junk of a killed pass")
    small_chunks = partial(ingest.scan_file, chunk_octets=100_000)  # as the stopped pass (part names follow)
    monkeypatch.setattr(spool, "scan_file", small_chunks)
    info = run(dataset, out)
    assert info["status"] == "complete" and info["counts"]["balance_ok"]
    run(dataset, tmp_path / "clean")  # uninterrupted, with the same chunks
    assert parquet_digests(out) == parquet_digests(tmp_path / "clean")


def test_the_hk_limit_table_and_alert_thresholds_come_through_the_config(demo_run, tmp_path):
    """The pipeline's own configuration files are read through PipelineConfig: another limit table (a red
    high limit below the nominal FPA temperature) makes its run report limit events the default does not."""
    from pipeline.config import PipelineConfig
    from pipeline.data import packaged

    dataset, run_dir = demo_run
    table = packaged("hk_limits.toml").read_text().replace("yellow_high = 170.0\nred_high = 175.0",
                                                           "yellow_high = 150.0\nred_high = 151.0", 1)
    assert "red_high = 151.0" in table
    (tmp_path / "limits.toml").write_text(table.replace("red_low = 155.0\nyellow_low = 160.0",
                                                        "red_low = 140.0\nyellow_low = 145.0", 1))
    config = PipelineConfig(hk_limits_path=str(tmp_path / "limits.toml"))
    config.check()
    info = run(dataset, tmp_path / "run", config)
    assert json.loads((run_dir / RUN_JSON).read_text())["counts"]["hk_limit_events"] == 0
    assert info["counts"]["hk_limit_events"] >= 1
    assert info["config"]["hk_limits_path"] == str(tmp_path / "limits.toml")
    with pytest.raises(ValueError, match=r"alerts_path = 'nope\.toml': no such file"):
        PipelineConfig(alerts_path="nope.toml").check()
