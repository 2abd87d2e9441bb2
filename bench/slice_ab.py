"""CPU per transit of the full-scale day's slices, phase A (transits, VPU) and phase C (windows, packets), one thread.

    NUMBA_NUM_THREADS=1 PYTHONPATH=TREE python bench/slice_ab.py K0 N FOLDER [SCALE]

Times slices K0 .. K0+N-1 of the packaged ``day`` level (seed 42, scale 1, population sky), after one
untimed slice that loads the compiled kernels, writing into FOLDER (put it in /dev/shm to keep the disk out
of the figure). PYTHONPATH picks the code: a ``git worktree`` of an older commit against the working tree
gives an A/B of the same sky in one session (these machines are shared and noisy: alternate them).
An older tree cut the day into 1081 slices of 80 s, this one into 541 of 160 s: give each the slices of the
same span (80-s slices 300..307 are 160-s slices 150..153; the bulge's 698..701 are 349..350).

Measured 2026-12-07 (code of 3bd95aa against ca2b682, alternated twice): 128k transits of ordinary sky 21.6
and 19.8 us a transit against 17.7 and 18.2; 2.0 M transits in the bulge 22.8 and 22.8 against 19.9 and 20.0.
Session 19 (0278abe against c71f209: the VPU's kernels, the sorts, truth/ccd in LZ4): the ordinary sky 18.48 and
18.88 against 17.82 and 18.31 (phase A 4.5-4.7 against 4.2-4.3); the bulge 20.40 against 18.03 (A 8.12 against
5.61).
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import gaiasim
from gaiasim import packaged
from gaiasim.sim import downlink, faults, slices, variability
from gaiasim.sim import generate as gen
from gaiasim.sim.instrument import realism
from gaiasim.sim.timescale import obmt_ns_from_date
from gaiasim.spec import load_spec
from pipeline import icd


def day_context(root: Path, scale: float = 1.0) -> tuple[slices.SliceContext, tuple[int, ...]]:
    """The slice context of the packaged ``day`` level at ``scale``, writing under ``root`` (emptied), and its
    slice bounds."""
    shutil.rmtree(root, ignore_errors=True)
    (root / ".work" / "transits").mkdir(parents=True)
    spec, _ = load_spec(packaged.file_or_named("levels", "day"))
    t0 = obmt_ns_from_date(spec.date)
    t1 = t0 + 86_400_000_000_000
    passes = downlink.pass_schedule(spec.date, 1, t0)
    bounds = gen.slice_bounds(t0, t1, scale)
    ctx = slices.SliceContext(spec.seed, scale, t0, t1, bounds, tuple(p.start_ns for p in passes),
                              tuple(p.name for p in passes), faults.FaultPlan(), str(root), str(root / ".work"),
                              variability.VariabilityPlan(), effects=realism.effects_named(spec.instrument),
                              sky=spec.sky)
    return ctx, bounds


#: Packet counters that start every APID at 0 and let a slice number as many packets as it needs.
FIRST = {a: 0 for a in icd.STAR_APIDS}
MANY = {a: 10**9 for a in icd.STAR_APIDS}


def render(ctx: slices.SliceContext, k: int) -> dict:
    """Phases A and C of slice ``k``: the summary of phase A."""
    summary = slices.find_slice_transits(ctx, k)
    slices.render_slice(ctx, k, FIRST, MANY, FIRST)
    return summary


def main(k0: int, n: int, root: Path, scale: float = 1.0) -> None:
    ctx, bounds = day_context(root, scale)
    render(ctx, k0 + n)  # loads the kernels: not timed
    t_a = t_c = 0.0
    transits = 0
    for k in range(k0, k0 + n):
        t = time.perf_counter()
        summary = slices.find_slice_transits(ctx, k)
        t_a += time.perf_counter() - t
        transits += sum(summary["counts"].values())
        t = time.perf_counter()
        slices.render_slice(ctx, k, FIRST, MANY, FIRST)
        t_c += time.perf_counter() - t
    span_s = (bounds[k0 + n] - bounds[k0]) / 1e9
    print(f"{Path(gaiasim.__file__).parent.parent}: {len(bounds) - 1} slices, span {span_s:.0f} s, "
          f"{transits} transits: A {t_a / transits * 1e6:.2f} + C {t_c / transits * 1e6:.2f} = "
          f"{(t_a + t_c) / transits * 1e6:.2f} us a transit")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), *map(float, sys.argv[4:5]))
