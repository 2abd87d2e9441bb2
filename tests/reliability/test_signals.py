"""Ctrl-C and SIGTERM: the command ends with one line, ``gaiasim: interrupted; run the same command again
to resume``, and exit status 130 (SIGINT) or 143 (SIGTERM), at any moment, the imports included; it leaves
no temporary behind; and the same command then resumes to the bytes of an uninterrupted run.

The signals go to the command's whole process group, as a terminal's Ctrl-C does, so worker processes
(a process pool, a local Dask cluster) get them too and must stay silent. Interrupt times are drawn over
the measured duration of an uninterrupted command, from a fixed seed; ``GAIASIM_KILLS`` sets how many.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from gaiasim.entry import MESSAGE
from tests.reliability.test_crash_resume import GAIASIM, KILLS, SEED, clean_duration, digests

#: Exit status of a command ended by each signal (128 + the signal number, as shells report it).
STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


def interrupt_after(cmd: list[str], delay_s: float, sig: int) -> tuple[int, str]:
    """Start ``cmd`` in its own process group, send ``sig`` to the whole group after ``delay_s``; its exit
    status and standard error (exit 0 when it had finished)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(delay_s)
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


#: A signal in the first moments may reach the interpreter before it runs any code of the command (its
#: own start-up, site and .pth files: ~40 ms, several times that on a loaded machine): the system's default
#: action then ends it, silently, with the signal as its status. Only that early is it tolerated.
BEFORE_PYTHON_S = 0.15


def assert_interrupted_cleanly(status: int, err: str, sig: int, out: Path, delay_s: float = 1.0) -> bool:
    """One line and the signal's status (or a finished command); no temporary left. True when interrupted."""
    if status == 0 or (status == -sig and not err and delay_s < BEFORE_PYTHON_S):
        return False
    assert (status, err) == (STATUS[sig], MESSAGE + "\n"), f"exit {status} after {delay_s:.3f} s, stderr {err!r}"
    left = [p for p in out.rglob("*") if ".tmp-" in p.name] if out.exists() else []
    assert not left, f"temporaries left behind: {left}"
    return True


def delays(duration_s: float, n: int) -> np.ndarray:
    """Interrupt times: a third in the first 0.4 s (imports), the rest over the command's duration."""
    rng = np.random.default_rng(SEED)
    early = max(1, n // 3)
    return np.sort(np.r_[rng.uniform(0.02, 0.4, early), rng.uniform(0.4, 0.95 * duration_s, max(n - early, 1))])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_says_so_in_one_line_and_resumes_to_the_same_bytes(faulty_run, tmp_path, sig):
    dataset, _ = faulty_run
    clean, out = tmp_path / "clean", tmp_path / "interrupted"
    duration, _ = clean_duration([*GAIASIM, "run", str(dataset), "--out", str(clean)])
    interrupted = 0
    for delay in delays(duration, KILLS):
        status, err = interrupt_after([*GAIASIM, "run", str(dataset), "--out", str(out)], float(delay), sig)
        interrupted += assert_interrupted_cleanly(status, err, sig, out, float(delay))
    assert interrupted, "no interrupt landed before the run finished"
    subprocess.run([*GAIASIM, "run", str(dataset), "--out", str(out)], check=True, capture_output=True)
    want, got = digests(clean), digests(out)
    for name in ("run.json", "catalog.duckdb"):  # timings; views naming the run's own path
        want.pop(name), got.pop(name)
    assert got == want


def test_an_interrupted_generate_on_a_process_pool_is_silent_in_its_workers(tmp_path):
    spec = Path(__file__).resolve().parents[2] / "datasets" / "levels" / "tiny.toml"
    cmd = [*GAIASIM, "generate", str(spec), "--seed", "3", "--executor", "process", "--workers", "2"]
    clean, out = tmp_path / "clean", tmp_path / "interrupted"
    duration, _ = clean_duration([*cmd, "--out", str(clean)])
    interrupted = 0
    for delay in delays(duration, max(KILLS // 2, 2)):
        status, err = interrupt_after([*cmd, "--out", str(out)], float(delay), signal.SIGINT)
        if assert_interrupted_cleanly(status, err, signal.SIGINT, out, float(delay)):
            interrupted += 1
        elif status == 0:
            break
    assert interrupted, "no interrupt landed before generate finished"
    if not out.exists():
        subprocess.run([*cmd, "--out", str(out)], check=True, capture_output=True)
    assert digests(out) == digests(clean)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary folders were left behind"


def _blocked_signals(queue) -> None:
    queue.put(sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])))


def test_pool_workers_start_with_the_stop_signals_blocked_until_their_handlers_are_in():
    """A Ctrl-C reaching a pool worker while it still imports waits for quiet_worker (no traceback)."""
    from gaiasim.entry import quiet_spawn_context

    ctx = quiet_spawn_context()
    queue = ctx.Queue()
    process = ctx.Process(target=_blocked_signals, args=(queue,))
    process.start()
    blocked = queue.get(timeout=60)
    process.join(60)
    assert {int(signal.SIGINT), int(signal.SIGTERM)} <= set(blocked)
    assert not {signal.SIGINT, signal.SIGTERM} & signal.pthread_sigmask(signal.SIG_BLOCK, []), "the parent unblocked"
