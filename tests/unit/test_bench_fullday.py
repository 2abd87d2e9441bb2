"""The full-day procedure keeps finished stages, and says when one was measured with other code."""

from __future__ import annotations

import json

from gaiasim import bench
from gaiasim.dataset import code_version
from pipeline.version import pipeline_version


def _finished_day(tmp_path, dataset_code: str, run_code: str):
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "dataset.json").write_text(json.dumps({"code_version": dataset_code}))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(json.dumps({"pipeline_version": run_code}))
    stages = {kind: {"wall_s": w, "peak_rss_gib": 1.0} for kind, w in (("generate", 10.0), ("run", 20.0),
                                                                         ("validate", 3.0))}
    (tmp_path / "fullday.json").write_text(json.dumps({"scale": 1.0, "transits": 7, **stages}))


def test_finished_stages_are_kept_and_older_code_is_named(tmp_path, capsys):
    _finished_day(tmp_path, "0.1.0+src.olddataset00", pipeline_version())
    out = bench.full_day(tmp_path, 1.0, 2)  # every stage finished: nothing runs again
    printed = capsys.readouterr().out
    assert out["total_s"] == 33.0 and out["transits"] == 7
    assert out["generate"]["code"] == "0.1.0+src.olddataset00"
    assert f"made by code 0.1.0+src.olddataset00, the code now is {code_version()}" in printed
    assert out["run"]["code"] == pipeline_version()
    assert printed.count("note:") == 1  # the run was made by the current pipeline: no note for it


def test_current_code_gives_no_note(tmp_path, capsys):
    _finished_day(tmp_path, code_version(), pipeline_version())
    bench.full_day(tmp_path, 1.0, 2)
    assert "note:" not in capsys.readouterr().out


def test_a_stage_whose_output_was_removed_is_redone_and_so_are_the_stages_after_it(tmp_path, monkeypatch):
    """Deleting RUN to measure new pipeline code must measure it: the run and the validation of that run."""
    import shutil

    _finished_day(tmp_path, code_version(), pipeline_version())
    shutil.rmtree(tmp_path / "run")
    ran = []

    def child(argv, progress=False):
        ran.append(argv[0])
        if argv[0] == "run":
            (tmp_path / "run").mkdir()
            (tmp_path / "run" / "run.json").write_text(json.dumps({"pipeline_version": pipeline_version()}))
        return {"wall_s": 1.0, "peak_rss_octets": 2**30, "transits": 7, "checks": 21, "failed": []}

    monkeypatch.setattr(bench, "_child", child)
    out = bench.full_day(tmp_path, 1.0, 2)
    assert ran == ["run", "validate"]
    assert out["generate"]["wall_s"] == 10.0 and out["run"]["wall_s"] == 1.0 and out["validate"]["wall_s"] == 1.0
    # Each stage measured now carries the machine's speed that evening; the kept one has none to claim.
    assert out["run"]["machine_reference_s"] > 0 and out["validate"]["machine_reference_s"] > 0
    assert "machine_reference_s" not in out["generate"]


def test_cpu_steal_is_read_as_the_eighth_column_of_proc_stat(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 50 800 10 0 5 35 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n")
    real_open = open
    monkeypatch.setattr("builtins.open",
                        lambda path, *a, **k: real_open(stat if path == "/proc/stat" else path, *a, **k))
    assert bench._cpu_ticks() == (35, 1000)
    stat.write_text("cpu  1 2 3\n")  # too few columns (not Linux's format): no figure rather than a wrong one
    assert bench._cpu_ticks() is None


def test_a_day_is_run_and_its_ceiling_timed_in_turn_with_median_figures(tmp_path, monkeypatch):
    """bench_day: each run starts from no run folder (a complete one would be returned at once), is followed
    by its ceiling, and the reported ratio is the median of the pairs' ratios."""
    walls = {"run": iter([10.0, 20.0, 12.0]), "ceiling": iter([8.0, 8.0, 12.0])}
    calls = []

    def child(argv, progress=False):
        kind, folder = argv[0], tmp_path / "day-0.01-2"
        calls.append(kind)
        if kind == "generate":
            return {"transits": 1000, "wall_s": 1.0, "executor": "serial", "peak_rss_octets": 2**30,
                    "peak_rss_worker_octets": 0}
        if kind == "run":
            assert not (folder / "run").exists(), "each run must start from an empty run folder"
            (folder / "run").mkdir()
            return {"transits": 1000, "wall_s": next(walls["run"]), "peak_rss_octets": len(calls) * 2**30}
        return {"transits": 1000, "wall_s": next(walls["ceiling"])}

    monkeypatch.setattr(bench, "_child", child)
    d = bench.bench_day(tmp_path, 0.01, 2, repeats=3)
    assert calls == ["generate", "run", "ceiling", "run", "ceiling", "run", "ceiling"]
    assert d["run_vs_ceiling_each"] == [0.8, 0.4, 1.0] and d["run_vs_ceiling"] == 0.8
    assert d["run_s"] == 12.0 and d["kernels_only_s"] == 8.0  # medians
    assert d["run_peak_rss_gib"] == 6.0  # the largest of the runs' peaks
