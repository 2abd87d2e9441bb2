"""The profiling scripts of bench/ still run against the code they measure, on a small day.

bench/render_profile.py once kept a copy of the renderer's loop and its old signature, and failed with a
TypeError long after the kernels had changed; nothing ran it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _run(script: str, *args: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd, env={**os.environ, "NUMBA_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_render_profile_times_the_renderers_on_a_slice_and_checksums_their_output(tmp_path):
    out = _run("render_profile.py", "0", "--scale", "0.0005", "--repeats", "1", cwd=tmp_path)
    assert re.search(r"slice 0 of the day level at scale 0.0005: [1-9]\d* transits", out), out
    for name in ("_render_windows", "_render_spectra"):
        assert re.search(rf"{name}: [1-9]\d* samples in [1-9]\d* calls, \d+\.\d ns a sample, .* sha256 [0-9a-f]{{12}}",
                         out), out


def test_slice_ab_gives_the_cpu_per_transit_of_its_slices(tmp_path):
    out = _run("slice_ab.py", "0", "1", str(tmp_path / "slices"), "0.002", cwd=tmp_path)
    assert re.search(r"\d slices, span \d+ s, [1-9]\d* transits: A \d+\.\d\d \+ C \d+\.\d\d = \d+\.\d\d us a transit",
                     out), out
    assert not (tmp_path / "slices").exists()  # it cleans up after itself
