"""The ``gaiasim`` command's entry point: signal handling first, then the CLI.

Ctrl-C (SIGINT) or SIGTERM, at any moment, imports included, ends the command with one line on stderr,
``gaiasim: interrupted; run the same command again to resume``, and exit status 130 (SIGINT) or 143
(SIGTERM), as shells report a process ended by those signals. The process ends at once (``os._exit``):
its worker threads are in the middle of tasks that would otherwise be waited for. Nothing is lost by
that: every file is written under a temporary name and renamed (the temporaries being written are
removed first), so the same command resumes and ends with the bytes of an uninterrupted one (the run,
a generation, a campaign; ``tests/reliability/test_signals.py``).

This module imports only the standard library, so the handlers are in place before anything slow loads.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.context import SpawnContext, SpawnProcess

MESSAGE = "gaiasim: interrupted; run the same command again to resume"
_PARENT: list[int] = []
#: This process's own standard error, kept aside (:func:`silent_children` points fd 2 elsewhere for a while).
_STDERR: list[int] = []
#: What the command's process does before it ends, where the module is loaded: remove the temporaries it
#: is writing; stop a system under test it is running (its own session: the terminal's signal misses it)
#: and move what it wrote aside; run the finalizers a normal exit would (temporary folders are removed,
#: and a process pool's semaphores unlinked: else its resource tracker warns of leaked semaphores).
_CLEANUPS = (("pipeline.io", "remove_temporaries"), ("gaiasim.sut", "stop_running"),
             ("multiprocessing.util", "_run_finalizers", 0),
             ("weakref", "finalize._exitfunc"))


def _stop(signum: int, _frame) -> None:
    """End the process now with status 128 + signal number; one line from the command's own process (a
    worker process sharing its terminal ends silently)."""
    if os.getpid() in _PARENT:
        _cleanup()
        os.write(_STDERR[0] if _STDERR else 2, (MESSAGE + "\n").encode())
    os._exit(128 + signum)


def install() -> None:
    """Handle SIGINT and SIGTERM as the module doc says, in this process (the command's own)."""
    _PARENT[:] = [os.getpid()]
    _STDERR[:] = [os.dup(2)]
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop)


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def quiet_worker() -> None:
    """In a worker process: SIGINT and SIGTERM end it at once and silently (the command prints the line).
    A worker started by :func:`quiet_spawn_context` starts with them blocked; they are unblocked here, once
    the handlers are in place (one that came meanwhile is handled now)."""
    for sig in _STOP_SIGNALS:
        signal.signal(sig, _stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


class _QuietSpawnProcess(SpawnProcess):
    """A spawned worker that starts with SIGINT and SIGTERM blocked (a child inherits the signal mask
    through fork and exec) and /dev/null as its standard error (:func:`silent_children`, as a local Dask
    cluster's): a Ctrl-C during its start-up, before its initializer has run :func:`quiet_worker`, waits
    instead of printing a KeyboardInterrupt traceback, and a worker whose command has just ended prints
    nothing of its own (its task errors reach the command through the futures)."""

    @staticmethod
    def _Popen(process_obj):
        before = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)  # this thread only, for the start
        try:
            with silent_children():
                return SpawnProcess._Popen(process_obj)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)


class _QuietSpawnContext(SpawnContext):
    Process = _QuietSpawnProcess


def quiet_spawn_context() -> SpawnContext:
    """The spawn context for process pools whose initializer calls :func:`quiet_worker`."""
    return _QuietSpawnContext()


@contextmanager
def silent_children() -> Iterator[None]:
    """Processes started in the block get /dev/null as their standard error (this process's is restored
    after): a local Dask cluster's processes, which a Ctrl-C in the terminal (sent to the whole process
    group) would otherwise make print tracebacks of their own. Their task errors still reach the command
    through its futures; the command alone prints the one line (to its own standard error, kept aside)."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _cleanup() -> None:
    for cleanup in _CLEANUPS:
        module = sys.modules.get(cleanup[0])
        if module is not None:
            try:
                fn = module
                for name in cleanup[1].split("."):
                    fn = getattr(fn, name)
                fn(*cleanup[2:])
            except Exception:  # never let a cleanup hide the line and the status
                pass


def _status(code: object) -> int:
    """The exit status ``sys.exit(code)`` would give (a message is printed, as Python does)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def main() -> None:
    """Run the CLI with the handlers in place, then end the process with the command's status.

    Once the command is done, the exit functions run here, with the handlers still in place, and the
    process ends at once (``os._exit``): the interpreter's own teardown resets the signal handlers and
    then spends a few hundred milliseconds freeing numba, DuckDB and Arrow, a window in which Ctrl-C would
    end the command silently with status -2. Where a thread of the command still runs (none should), the
    interpreter's normal exit waits for it instead."""
    install()
    from gaiasim.cli import main as cli

    try:
        cli()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    status = _status(code)
    atexit._run_exitfuncs()  # multiprocessing's and weakref.finalize's among them
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)
