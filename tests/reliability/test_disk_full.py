"""Disk full and read-only output: ``gaiasim run`` stops with one clear line (exit 2), leaves nothing
half-written, and the same command completes once there is room, with the bytes of a clean run.

Needs a small tmpfs (mounting one needs root: skipped elsewhere)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gaiasim.cli import main
from pipeline import io
from tests.reliability.test_crash_resume import assert_no_partial_file_visible, digests


def _mount(path: Path, options: str) -> bool:
    path.mkdir(exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs (a demo run needs more), unmounted afterwards."""
    disk = tmp_path / "disk"
    if not _mount(disk, "size=3m"):
        pytest.skip("mounting a tmpfs needs root")
    yield disk
    if subprocess.run(["umount", str(disk)], capture_output=True).returncode:
        subprocess.run(["umount", "--lazy", str(disk)], check=False)  # busy: detach now, free when unused


def run_cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("gaiasim: error:"), lines
    return lines[0]


def test_a_full_disk_stops_the_run_cleanly_and_a_rerun_after_freeing_space_completes(faulty_run, small_disk):
    dataset, clean = faulty_run
    out = small_disk / "run"
    line = one_error_line(run_cli("run", dataset, "--out", out))
    assert "No space left on device" in line and "run the same command again" in line
    assert_no_partial_file_visible(out)
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name], "a temporary file was left behind"
    subprocess.run(["mount", "-o", "remount,size=200m", str(small_disk)], check=True)  # space freed
    result = run_cli("run", dataset, "--out", out)
    assert result.exit_code == 0, result.output
    want, got = digests(clean), digests(out)
    for name in ("run.json", "catalog.duckdb"):  # timings; views naming the run's own path
        want.pop(name), got.pop(name)
    assert got == want


def test_a_read_only_output_is_one_clear_line(faulty_run, small_disk):
    dataset, _ = faulty_run
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    line = one_error_line(run_cli("run", dataset, "--out", small_disk / "run"))
    assert "Read-only file system" in line
    assert not any(small_disk.iterdir())


def test_generate_on_a_disk_too_small_is_refused_up_front(small_disk):
    spec = Path(__file__).resolve().parents[2] / "datasets" / "levels" / "small.toml"
    line = one_error_line(run_cli("generate", spec, "--out", small_disk / "day"))
    assert "not enough disk" in line
    assert not any(small_disk.iterdir())


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_while_a_pass_appends_its_parts_is_an_output_error():
    """The first pass appends packet references to per-hour work files; a full disk there is the same
    one clear line as anywhere else (it was an OSError without a file name, reported as ': No space...')."""
    with pytest.raises(io.OutputError, match=r"cannot write /dev/full: No space left on device; .*run the same "
                                             r"command again"):
        io.append_bytes(np.arange(4), Path("/dev/full"))


def test_a_short_write_is_a_full_disk_even_when_space_was_freed_since(tmp_path):
    """numpy's short write has no errno; by the time the reason is looked up the run may have freed room."""
    error = io._output_error(tmp_path / "part.npy", OSError("2878 requested and 1189 written"))
    line = str(error)
    assert "cannot write" in line and "run the same command again" in line
    assert "No space left on device (a short write: 2878 requested and 1189 written;" in line
    other = io._output_error(tmp_path / "part.npy", OSError("something else"))
    assert "No space" not in str(other) and "something else" in str(other)
