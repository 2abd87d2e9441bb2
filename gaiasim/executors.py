"""Executors for per-slice tasks: the standard ``concurrent.futures`` interface.

- ``serial``: in-process, one task after the other (tests, debugging); numba kernels use every core.
- ``process``: a local process pool (spawned workers, one numba thread each).
- ``dask``: a Dask distributed client's executor (optional extra; see issue on scale-out).
"""

from __future__ import annotations

from concurrent.futures import Executor, Future, ProcessPoolExecutor
from multiprocessing import get_context


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


def _one_numba_thread() -> None:
    import numba

    numba.set_num_threads(1)


def make_executor(kind: str = "serial", workers: int | None = None) -> Executor:
    """An executor by name: ``serial`` or ``process`` (``workers`` processes)."""
    if kind == "serial":
        return SerialExecutor()
    if kind == "process":
        return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                   initializer=_one_numba_thread)
    raise ValueError(f"unknown executor {kind!r}; use serial or process")
