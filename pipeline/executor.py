"""The in-process executors (``concurrent.futures`` interface) of the pipeline's per-hour tasks, and of
the simulator's per-slice tasks (``gaiasim.executors`` adds the process pool and Dask).

- :class:`SerialExecutor`: one task after the other, each using every core through numba's threads.
- :class:`ThreadExecutor`: several tasks at once on threads of this process, one numba thread each. A
  task's numpy, pyarrow and Python stages (crossmatch, positions, Parquet) are single-threaded and would
  leave the other cores idle under the serial executor; two tasks at once keep them busy instead.
"""

from __future__ import annotations

import os
from concurrent.futures import Executor, Future, ThreadPoolExecutor

import numba
import numpy as np

from pipeline.kernels import jit_parallel


class _LazyFuture(Future):
    """A future that runs its task in this process the first time its result is asked for."""

    def __init__(self, fn, args, kwargs) -> None:
        super().__init__()
        self._task = (fn, args, kwargs)

    def result(self, timeout=None):
        if self._task is not None:
            fn, args, kwargs = self._task
            self._task = None
            try:
                self.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # handed to the caller through the future, as executors do
                self.set_exception(exc)
        return super().result(timeout)


class SerialExecutor(Executor):
    """Runs each task in this process, in submission order, when its result is asked for (so progress
    can be reported between tasks)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        return _LazyFuture(fn, args, kwargs)


def one_numba_thread() -> None:
    """Run this thread's numba kernels on one thread (numba's thread count is per thread): for a task
    sharing the cores with other tasks."""
    numba.set_num_threads(1)


class ThreadExecutor(ThreadPoolExecutor):
    """Tasks on ``workers`` threads of this process (default one per core), each running numba kernels on
    one thread. Needs a numba threading layer that allows parallel regions from several threads at once
    (:func:`threads_can_overlap`)."""

    def __init__(self, workers: int | None = None) -> None:
        super().__init__(max_workers=workers or os.cpu_count() or 1, thread_name_prefix="task",
                         initializer=one_numba_thread)


@jit_parallel
def _touch(x):
    total = 0.0
    for i in numba.prange(x.shape[0]):
        total += x[i]
    return total


def threads_can_overlap() -> bool:
    """Whether numba kernels may run from several threads at once: its ``omp`` and ``tbb`` threading
    layers allow it, ``workqueue`` (the fallback when neither library is installed) aborts the process.
    The layer is chosen at the first parallel launch, so this launches a trivial kernel first."""
    _touch(np.zeros(2))
    try:
        return numba.threading_layer() in ("omp", "tbb")
    except ValueError:  # NUMBA_DISABLE_JIT: no layer, kernels are Python and hold the GIL
        return True
