"""Executors (gaiasim.executors): the same day, byte for byte, whatever runs its slice tasks, and one-line
errors for an executor that cannot be had."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gaiasim import dataset as ds
from gaiasim import executors
from gaiasim.cli import main
from gaiasim.executors import SerialExecutor, make_executor
from gaiasim.sim import generate as gen
from gaiasim.sim.timescale import obmt_ns_from_date
from gaiasim.spec import SpecError, make_spec

SPEC = make_spec(scale=1e-5, seed=42)  # the tiny level: about 700 transits
#: A faulty downlink: late deliveries and pass overlaps write into the next pass's spools too.
PLAN = Path(__file__).resolve().parents[2] / "datasets" / "faults" / "corrupted_link.toml"
#: Transits per slice here: a handful of slices, so that workers share them out.
SMALL_SLICES = 150


class _RetriedExecutor(SerialExecutor):
    """Runs every task twice, as a Dask task is run again when its worker is lost: the second attempt
    must leave the same files as one."""

    def submit(self, fn, /, *args, **kwargs):
        fn(*args, **kwargs)
        return super().submit(fn, *args, **kwargs)


def _generate(out: Path, executor) -> dict:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gen, "TRANSITS_PER_SLICE", SMALL_SLICES)
        with executor:
            return gen.generate(SPEC, out, PLAN, executor=executor)


@pytest.fixture(scope="module")
def serial_day(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("executors") / "serial"
    return out, _generate(out, make_executor("serial"))


@pytest.mark.parametrize("kind", ["process", "dask", "retried"])
def test_every_executor_writes_the_same_bytes(kind, serial_day, tmp_path):
    if kind == "dask":
        pytest.importorskip("distributed")
        executor = make_executor("dask", workers=2, processes=False)
    elif kind == "process":
        executor = make_executor("process", workers=2)
    else:
        executor = _RetriedExecutor()
    serial, expected = serial_day
    assert expected["counts"]["slices"] >= 4, "the day was meant to be cut into several slices"
    manifest = _generate(tmp_path / kind, executor)
    assert manifest["counts"] == expected["counts"]
    files, reference = ds.read_manifest(tmp_path / kind)["files"], ds.read_manifest(serial)["files"]
    differ = sorted(name for name in reference.keys() | files.keys() if reference.get(name) != files.get(name))
    assert not differ, f"{kind} executor: {len(differ)} of {len(reference)} files differ from serial: {differ[:5]}"
    assert ds.verify(tmp_path / kind) == [], "files on disk beyond or against the manifest"


def test_dask_executor_closes_its_client_and_cluster():
    pytest.importorskip("distributed")
    with make_executor("dask", workers=1, processes=False) as executor:
        assert executor.submit(sum, [1, 2, 3]).result() == 6
    assert executor.client.status == "closed"
    assert executor._cluster.status.name == "closed"


def test_unknown_executor_is_a_spec_error():
    with pytest.raises(SpecError, match="use one of serial, threads, process, dask"):
        make_executor("cluster")


def test_thread_executor_runs_each_task_with_one_numba_thread():
    import numba

    with make_executor("threads", workers=2) as pool:
        assert pool.submit(numba.get_num_threads).result() == 1
        assert pool._max_workers == 2


def test_run_picks_threads_only_with_several_cores_and_a_layer_that_allows_them(monkeypatch):
    monkeypatch.setattr(executors, "threads_can_overlap", lambda: True)
    assert executors.auto_run_executor(2) == "threads"
    assert executors.auto_run_executor(1) == "serial"
    monkeypatch.setattr(executors, "threads_can_overlap", lambda: False)
    assert executors.auto_run_executor(2) == "serial"
    with pytest.raises(SpecError, match=r"install tbb \(pip install tbb\) or use --executor serial"):
        make_executor("threads")


def test_scheduler_without_dask_executor_is_a_spec_error():
    with pytest.raises(SpecError, match="--executor dask"):
        make_executor("process", scheduler="tcp://127.0.0.1:8786")


def test_missing_dask_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(SpecError, match=r"install the dask extra: pip install -e '\.\[dask\]'"):
        make_executor("dask")


def test_unreachable_scheduler_is_one_error_line_and_exit_2(monkeypatch, tmp_path):
    pytest.importorskip("distributed")
    monkeypatch.setattr(executors, "DASK_CONNECT_TIMEOUT_S", 0.5)
    result = CliRunner().invoke(main, ["generate", "--scale", "1e-5", "--out", str(tmp_path / "d"),
                                       "--executor", "dask", "--scheduler", "tcp://127.0.0.1:1"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gaiasim: error: cannot reach the Dask scheduler"), lines
    assert not (tmp_path / "d").exists()


def test_unknown_executor_on_the_command_line_exits_2(tmp_path):
    result = CliRunner().invoke(main, ["generate", "--scale", "1e-5", "--out", str(tmp_path / "d"),
                                       "--executor", "threads"])
    assert result.exit_code == 2
    assert "'threads' is not one of 'auto', 'serial', 'process', 'dask'" in result.stderr


def test_generate_picks_a_process_pool_only_when_every_worker_gets_several_slices():
    per_worker = gen.AUTO_PROCESS_SLICES_PER_WORKER
    assert gen.auto_executor(make_spec(scale=1e-3, seed=1), 2) == "serial"  # ~70 k transits: one slice
    spec = make_spec(scale=5e-2, seed=1)
    t0 = obmt_ns_from_date(spec.date)
    n = len(gen.slice_bounds(t0, t0 + 86_400_000_000_000, spec.scale)) - 1
    assert n >= 2 * per_worker
    assert gen.auto_executor(spec, 1) == "serial"
    assert gen.auto_executor(spec, 2) == "process"
    assert gen.auto_executor(spec, n // per_worker) == "process"
    assert gen.auto_executor(spec, n // per_worker + 1) == "serial"  # the pool's start-up would not pay
    assert gen.auto_executor(make_spec(scale=1e-3, seed=1, days=12), 2) == "process"  # 8 slices over 12 days


def test_a_local_cluster_whose_start_fails_is_started_again(monkeypatch):
    pytest.importorskip("distributed")
    import distributed

    from gaiasim import executors

    real, calls = distributed.LocalCluster, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("Cluster failed to start: a loaded machine")
        return real(*args, **kwargs)

    monkeypatch.setattr(distributed, "LocalCluster", flaky)
    with make_executor("dask", workers=1, processes=False) as executor:
        assert executor.submit(sum, [1, 2]).result() == 3
    assert len(calls) == 2
    calls.clear()
    monkeypatch.setattr(distributed, "LocalCluster", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no")))
    with pytest.raises(SpecError, match=f"failed to start {executors.LOCAL_CLUSTER_TRIES} times"):
        make_executor("dask", workers=1, processes=False)
