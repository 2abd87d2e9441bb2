"""The in-process executor (``concurrent.futures`` interface) of the pipeline's per-hour tasks, and of
the simulator's per-slice tasks (``gaiasim.executors`` adds the process pool and Dask)."""

from __future__ import annotations

from concurrent.futures import Executor, Future


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
