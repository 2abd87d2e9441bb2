"""ns a sample of the simulator's window and spectrum renderers, on the inputs of a real slice, one thread.

    NUMBA_NUM_THREADS=1 python bench/render_profile.py [K] [--scale S] [--repeats N]

Generates slice K (default 150, ordinary sky; 349 is the bulge's densest) of the packaged ``day`` level (seed
42, population sky, scale 1 unless --scale) once, with the three renderers of ``gaiasim.sim.kernels_signal``
wrapped to record their arguments. Then it calls each renderer again on every recorded call, best of N: ns a
rendered sample (a sample of a 1D window, a pixel of a 2D window, a BP or RP spectrum sample). The inputs are
what ``signal.make_windows`` passes, so the script follows the kernels' signatures instead of copying them.

For an A/B, run it with PYTHONPATH pointing at a ``git worktree`` of another commit, each tree with its own
NUMBA_CACHE_DIR (numba's cache does not see changes to the modules a kernel calls), alternating them: these
machines are shared and noisy. The checksum beside each renderer says whether both render the same bytes.

Measured 2026-12-07, slice 150 (36,777 transits), one thread, best of three runs alternated: 4f1858b against
the samplers inlined into the renderers (2783a18): 1D windows 42.1 -> 36.5 ns a sample, 2D windows 31.0 -> 25.8,
spectra 28.8 -> 23.7; the same ADU checksums. That inlining cost ~12 s of cold compilation in every process and
did not show on the whole full day; with only the Poisson sampler's helpers inlined (the code now, on the sky of
1e9a057, so other checksums): 1D windows 38.6-39.7 against 40.3-41.4, spectra 27.3-28.0 against 28.3-28.6.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import shutil
import tempfile
import time
from pathlib import Path

import numba
from slice_ab import day_context, render

from gaiasim.sim import kernels_signal

RENDERERS = ("_render_windows", "_render_windows_2d", "_render_spectra")


def record(ctx, k: int) -> tuple[dict, dict[str, list[tuple]]]:
    """Generate slice ``k`` with the renderers wrapped: (phase A's summary, the arguments of every call per
    renderer). Every renderer's last argument is the ADU array it fills."""
    calls: dict[str, list[tuple]] = {name: [] for name in RENDERERS}
    originals = {name: getattr(kernels_signal, name) for name in RENDERERS}

    def recorder(name):
        def call(*args):
            calls[name].append(args)
            return originals[name](*args)
        return call

    for name in RENDERERS:
        setattr(kernels_signal, name, recorder(name))
    try:
        summary = render(ctx, k)
    finally:
        for name, kernel in originals.items():
            setattr(kernels_signal, name, kernel)
    return summary, calls


def time_calls(name: str, calls: list[tuple], repeats: int) -> tuple[float, int, str]:
    """(best seconds of ``repeats`` passes over ``calls``, samples rendered a pass, sha256 of the ADU)."""
    kernel = getattr(kernels_signal, name)
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        for args in calls:
            kernel(*args)
        best = min(best, time.perf_counter() - t)
    digest = hashlib.sha256()
    for args in calls:
        digest.update(args[-1].tobytes())
    return best, sum(args[-1].size for args in calls), digest.hexdigest()[:12]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("slice", type=int, nargs="?", default=150)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    numba.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="render-profile-"))
    try:
        ctx, _ = day_context(root, args.scale)
        summary, calls = record(ctx, args.slice)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"slice {args.slice} of the day level at scale {args.scale:g}: {sum(summary['counts'].values())} "
          f"transits; best of {args.repeats}, one thread")
    for name in RENDERERS:
        if not calls[name]:
            print(f"  {name}: not called")
            continue
        seconds, samples, digest = time_calls(name, calls[name], args.repeats)
        print(f"  {name}: {samples} samples in {len(calls[name])} calls, {seconds / samples * 1e9:.1f} ns a sample, "
              f"{seconds:.3f} s, ADU sha256 {digest}")


if __name__ == "__main__":
    main()
