"""Executors for per-slice tasks: the standard ``concurrent.futures`` interface.

- ``serial``: in-process, one task after the other (tests, debugging); numba kernels use every core.
- ``process``: a local process pool (spawned workers, one numba thread each).
- ``dask``: a Dask distributed client's executor (optional extra; see issue on scale-out).
"""

from __future__ import annotations

from concurrent.futures import Executor, Future, ProcessPoolExecutor
from multiprocessing import get_context


class SerialExecutor(Executor):
    """Runs each task at submission, in this process."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller through the future, as executors do
            future.set_exception(exc)
        return future


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
