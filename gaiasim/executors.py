"""Executors for per-slice tasks: the standard ``concurrent.futures`` interface.

- ``serial``: in-process, one task after the other (tests, debugging); numba kernels use every core.
- ``threads``: in-process, a task per thread (one per core), one numba thread each: the run's hours
  overlap their single-threaded stages instead of leaving cores idle (``auto`` for ``gaiasim run``).
- ``process``: a local process pool (spawned workers, one numba thread each).
- ``dask``: a Dask distributed client's executor (optional extra ``dask``): a local cluster, or the
  cluster of a running scheduler. Its workers must see the dataset's folder (a shared filesystem) and
  have gaiasim installed.

Every executor is a context manager; leaving it shuts it down (and closes a Dask client and cluster).
"""

from __future__ import annotations

import os
from concurrent.futures import Executor, Future, ProcessPoolExecutor

from gaiasim.entry import quiet_spawn_context, quiet_worker, silent_children
from gaiasim.spec import SpecError
from pipeline.executor import SerialExecutor, ThreadExecutor, one_numba_thread, threads_can_overlap

__all__ = ["EXECUTORS", "DaskExecutor", "SerialExecutor", "ThreadExecutor", "auto_run_executor", "make_executor"]

EXECUTORS = ("serial", "threads", "process", "dask")
#: Seconds to wait for a Dask scheduler before telling the operator it cannot be reached.
DASK_CONNECT_TIMEOUT_S = 10.0


class _InOneNumbaThread:
    """``func`` called with one numba thread in the thread that runs it.

    numba's thread count is per thread: a Dask worker runs tasks in its own thread pool, so a worker
    plugin or ``client.run`` (which run on the worker's event-loop thread) would not reach them. The
    ``func`` attribute lets Dask name the task after the wrapped function.
    """

    def __init__(self, func) -> None:
        self.func = func

    def __call__(self, *args, **kwargs):
        one_numba_thread()
        return self.func(*args, **kwargs)


class DaskExecutor(Executor):
    """``distributed.Client.get_executor()`` that owns its client (and local cluster): shutting it down
    closes them. Tasks are submitted impure (they write files: never deduplicated or cached by Dask)."""

    def __init__(self, client, cluster=None) -> None:
        self.client = client
        self._cluster = cluster
        self._executor = client.get_executor(pure=False)

    def submit(self, fn, /, *args, **kwargs) -> Future:
        return self._executor.submit(_InOneNumbaThread(fn), *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        try:
            self._executor.shutdown(wait=wait and not cancel_futures)
        finally:
            self.client.close()
            if self._cluster is not None:
                self._cluster.close()


#: Tries at starting a local Dask cluster: on a loaded machine its start has failed now and then ("Cluster
#: closed without starting up", seen in a test session; not reproduced in 12 tries on a loaded 2-core machine).
LOCAL_CLUSTER_TRIES = 3


def _local_cluster(distributed, n_workers: int, processes: bool):
    """A local cluster of ``n_workers`` single-threaded workers, started again if its start fails."""
    for attempt in range(LOCAL_CLUSTER_TRIES):
        try:
            return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=processes,
                                            dashboard_address=None)
        except RuntimeError as exc:
            if attempt == LOCAL_CLUSTER_TRIES - 1:
                raise SpecError(f"a local Dask cluster failed to start {LOCAL_CLUSTER_TRIES} times ({exc}); use "
                                "--executor process or threads, or start a scheduler and pass --scheduler") from None
    raise AssertionError("unreachable")


def _dask_executor(workers: int | None, scheduler: str | None, processes: bool) -> DaskExecutor:
    try:
        import distributed
    except ImportError:
        raise SpecError("--executor dask needs Dask: install the dask extra: pip install -e '.[dask]'") from None
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout=DASK_CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, ValueError) as exc:  # timeout (OSError) or a malformed address (ValueError)
            raise SpecError(f"cannot reach the Dask scheduler at {scheduler!r} ({exc}); start it ('dask "
                            f"scheduler') or give its address as tcp://HOST:PORT") from None
        return DaskExecutor(client)
    # One thread per worker: a slice task is mostly single-threaded numpy, and numba gets one thread too.
    # Its processes write no standard error of their own (a Ctrl-C would make each print a traceback):
    # the command alone reports an interrupt (gaiasim.entry); task errors come back through the futures.
    with silent_children():
        cluster = _local_cluster(distributed, workers or os.cpu_count() or 1, processes)
    try:
        client = distributed.Client(cluster, set_as_default=False)
    except BaseException:
        cluster.close()
        raise
    return DaskExecutor(client, cluster)


def _process_worker_init() -> None:
    """A pool worker: one numba thread, and ended silently by the Ctrl-C its terminal sends the whole
    process group (the command itself prints the one line, gaiasim.entry)."""
    quiet_worker()
    one_numba_thread()


def make_executor(kind: str = "serial", workers: int | None = None, scheduler: str | None = None,
                  processes: bool = True) -> Executor:
    """An executor by name, to use as a context manager.

    ``serial``; ``threads`` (``workers`` threads, default one per core); ``process`` (``workers``
    processes, default one per core); ``dask``: the executor of a
    client of the scheduler at ``scheduler``, or of a new local cluster of ``workers`` single-threaded
    workers (in-process threads when ``processes`` is false: fast to start, for tests). A missing Dask,
    an unreachable scheduler or an unknown kind raise :class:`~gaiasim.spec.SpecError` (one line).
    """
    if scheduler and kind != "dask":
        raise SpecError(f"a scheduler address is only used by the dask executor, not {kind!r}; add --executor dask")
    if kind == "serial":
        return SerialExecutor()
    if kind == "threads":
        if not threads_can_overlap():
            raise SpecError("numba's workqueue threading layer cannot run kernels on several threads at once; "
                            "install tbb (pip install tbb) or use --executor serial")
        return ThreadExecutor(workers)
    if kind == "process":
        return ProcessPoolExecutor(max_workers=workers, mp_context=quiet_spawn_context(),
                                   initializer=_process_worker_init)
    if kind == "dask":
        return _dask_executor(workers, scheduler, processes)
    raise SpecError(f"unknown executor {kind!r}; use one of {', '.join(EXECUTORS)}")


def auto_run_executor(workers: int | None) -> str:
    """What ``gaiasim run --executor auto`` picks: ``threads`` with 2 cores or more (a scale-0.1 run then
    used 1.87 cores instead of 1.61: 182 s of CPU in 97.4 s against 225 s in 139.5 s), ``serial`` on one
    core or where numba's threading layer cannot overlap kernels (:func:`threads_can_overlap`)."""
    n = workers or os.cpu_count() or 1
    return "threads" if n >= 2 and threads_can_overlap() else "serial"
