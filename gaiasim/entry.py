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

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

MESSAGE = "gaiasim: interrupted; run the same command again to resume"
_PARENT: list[int] = []
#: This process's own standard error, kept aside (:func:`silent_children` points fd 2 elsewhere for a while).
_STDERR: list[int] = []
#: What the command's process does before it ends, where the module is loaded: remove the temporaries it
#: is writing; run the finalizers a normal exit would (temporary folders are removed, and a process pool's
#: semaphores unlinked: else its resource tracker warns of leaked semaphores on the terminal).
_CLEANUPS = (("pipeline.io", "remove_temporaries"), ("multiprocessing.util", "_run_finalizers", 0),
             ("weakref", "finalize._exitfunc"))


def _stop(signum: int, _frame) -> None:
    """End the process now with status 128 + signal number; one line from the command's own process (a
    worker process sharing its terminal ends silently)."""
    if os.getpid() in _PARENT:
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
        os.write(_STDERR[0] if _STDERR else 2, (MESSAGE + "\n").encode())
    os._exit(128 + signum)


def install() -> None:
    """Handle SIGINT and SIGTERM as the module doc says, in this process (the command's own)."""
    _PARENT[:] = [os.getpid()]
    _STDERR[:] = [os.dup(2)]
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop)


def quiet_worker() -> None:
    """In a worker process: SIGINT and SIGTERM end it at once and silently (the command prints the line)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop)


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


def main() -> None:
    install()
    from gaiasim.cli import main as cli

    cli()
