"""Systems under test: any pipeline in the dock, behind one seam (identity, run, watch).

A SUT spec names one:

- ``builtin`` (the default): this package's pipeline, in this process, with its ``PipelineConfig``;
- ``cmd:<command line>``: any executable; ``{dataset}``, ``{out}`` and ``{inbox}`` in the command line are
  replaced by the paths (``{out}`` is required: the run folder it must write, docs/run-contract.md; an
  argument that is only ``{inbox}`` is left out of a batch run, so one command line serves both modes);
- ``venv:<wheel, sdist, requirement or git ref>``: another release of this pipeline, installed once into its
  own cached virtual environment and run as a separate process (``python -m gaiasim run``).

Whatever the adapter, the run folder must keep the run contract: a command that exits non-zero, runs past
its timeout or writes a run that breaks the contract fails (:class:`SUTFailed`, exit status 1), and the
folder it wrote is moved aside to ``<out>.failed`` with its logs, so ``<out>`` never holds half a run. A
command's stdout and stderr are kept in ``<out>/sut/``. The identity (adapter, version or digest,
configuration) keys the caches and is recorded in run.json (``sut``) and in the results database.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shlex
import shutil
import signal
import string
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gaiasim import conform
from pipeline import io, layout
from pipeline.config import PipelineConfig

Progress = Callable[[str, float], None]
#: Seconds a command SUT may take over one run (a full day takes ~12 min on 2 cores); ``--sut-timeout``.
DEFAULT_TIMEOUT_S = 4 * 3600.0
#: Placeholders a command line may hold.
PLACEHOLDERS = ("dataset", "out", "inbox")
#: Where a command's stdout and stderr are kept, inside the run folder.
LOGS = "sut"
SPEC_HELP = ("builtin, cmd:<command line with {dataset} and {out}> or venv:<wheel, sdist, requirement or git "
             "ref>")


def _noop(_stage: str, _fraction: float) -> None:
    return None


class SUTFailed(Exception):
    """The system under test failed (exit status 1): it crashed, ran out of time or broke the contract."""


class SUT(Protocol):
    spec: str
    adapter: str

    def identity(self) -> str: ...

    def can_watch(self) -> bool: ...

    def run(self, dataset: Path, out: Path, progress: Progress = _noop, executor: Executor | None = None) -> dict: ...

    def watch(self, dataset: Path, inbox: Path, out: Path, *, poll_s: float, idle_exit_s: float | None,
              max_files: int | None, progress: Progress = _noop) -> dict: ...


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "big") + p)
    return h.hexdigest()[:12]


def _record(sut: SUT, out: Path, info: dict) -> dict:
    """run.json of ``out`` with the SUT that made it (``sut``), written back atomically (not rewritten when
    it says so already: a finished run is left as it is)."""
    made_by = {"spec": sut.spec, "adapter": sut.adapter, "identity": sut.identity()}
    if info.get("sut") == made_by:
        return info
    info = {**info, "sut": made_by}
    io.write_json(info, Path(out) / layout.RUN_JSON)
    return info


@dataclass(frozen=True)
class Builtin:
    """This package's pipeline, in process."""

    config: PipelineConfig = field(default_factory=PipelineConfig)
    spec: str = "builtin"
    adapter: str = "builtin"

    def identity(self) -> str:
        from pipeline.version import pipeline_version

        config = json.dumps(self.config.to_json(), sort_keys=True).encode()
        default = self.config == PipelineConfig()
        return f"builtin:{pipeline_version()}" + ("" if default else f":config-{_digest(config)}")

    def can_watch(self) -> bool:
        return True

    def run(self, dataset: Path, out: Path, progress: Progress = _noop, executor: Executor | None = None) -> dict:
        from pipeline.run import run

        return _record(self, out, run(dataset, out, self.config, progress, executor))

    def watch(self, dataset: Path, inbox: Path, out: Path, *, poll_s: float, idle_exit_s: float | None,
              max_files: int | None, progress: Progress = _noop) -> dict:
        from pipeline.watch import watch

        info = watch(dataset, inbox, out, self.config, poll_s=poll_s, idle_exit_s=idle_exit_s, max_files=max_files,
                     progress=progress)
        return _record(self, out, info) if info.get("counts") else info


@dataclass(frozen=True)
class Command:
    """Any executable that reads a dataset (or an inbox) and writes a run folder."""

    template: str
    timeout_s: float = DEFAULT_TIMEOUT_S
    spec: str = ""
    adapter: str = "cmd"
    #: Overrides the identity (a venv SUT runs through a command whose path is an implementation detail).
    fixed_identity: str = ""

    def __post_init__(self) -> None:
        where = f"SUT spec {self.spec or 'cmd:' + self.template!r}"
        try:
            tokens = shlex.split(self.template)
            names = {name for tok in tokens for _, name, _, _ in string.Formatter().parse(tok) if name is not None}
        except ValueError as exc:
            raise io.InputError(f"{where}: cannot read the command line ({exc}); quote it as a shell would") from None
        if not tokens:
            raise io.InputError(f"{where}: no command; give cmd:<command line with {{dataset}} and {{out}}>")
        unknown = sorted(names - set(PLACEHOLDERS))
        if unknown:
            raise io.InputError(f"{where}: unknown placeholder {{{unknown[0]}}}; the placeholders are "
                                "{dataset}, {out} and {inbox}")
        if "out" not in names:
            raise io.InputError(f"{where}: the command line has no {{out}}; the SUT must be told where to write "
                                "its run folder")

    def _tokens(self) -> list[str]:
        return shlex.split(self.template)

    def identity(self) -> str:
        if self.fixed_identity:
            return self.fixed_identity
        parts = [self.template.encode()]
        for tok in self._tokens():  # the scripts it runs: an edited script is another SUT
            path = Path(tok)
            if "{" not in tok and path.is_file() and path.stat().st_size < 64 << 20:
                parts.append(path.read_bytes())
        return f"cmd:{_digest(*parts)}"

    def can_watch(self) -> bool:
        """A command watches an inbox when its command line says where: ``{inbox}``."""
        return "inbox" in {name for tok in self._tokens() for _, name, _, _ in string.Formatter().parse(tok)}

    def argv(self, **paths: Path) -> list[str]:
        """The command line with the placeholders replaced (in a batch run, an argument that is only
        ``{inbox}`` is left out, so one command line serves both modes); refuses a command that cannot be
        started."""
        tokens = [tok for tok in self._tokens() if "inbox" in paths or tok != "{inbox}"]
        argv = [tok.format(**{k: str(paths.get(k, "")) for k in PLACEHOLDERS}) for tok in tokens]
        exe = argv[0]
        found = shutil.which(exe) if os.sep not in exe else (exe if os.access(exe, os.X_OK) and Path(exe).is_file()
                                                             else None)
        if found is None:
            raise io.InputError(f"SUT command {exe!r} not found or not executable (SUT spec {self.spec!r}); give a "
                                "program on PATH or the path of an executable file")
        return argv

    def run(self, dataset: Path, out: Path, progress: Progress = _noop, executor: Executor | None = None) -> dict:
        dataset, out = Path(dataset).resolve(), Path(out).resolve()
        done = finished(self, out, dataset)
        if done is not None:
            return done
        argv = self.argv(dataset=dataset, out=out)
        progress("run", 0.0)
        self._execute(argv, out)
        progress("run", 1.0)
        return self._accept(out, dataset)

    def watch(self, dataset: Path, inbox: Path, out: Path, *, poll_s: float, idle_exit_s: float | None,
              max_files: int | None, progress: Progress = _noop) -> dict:
        """The command watches ``{inbox}`` itself and must stop once the day's files are in (its own
        idle rule); it runs under the same timeout."""
        dataset, inbox, out = Path(dataset).resolve(), Path(inbox).resolve(), Path(out).resolve()
        if not self.can_watch():
            raise io.InputError(f"SUT spec {self.spec!r} has no {{inbox}}: it cannot run in watch mode; give a "
                                "command line with {inbox}")
        argv = self.argv(dataset=dataset, out=out, inbox=inbox)
        self._execute(argv, out)
        return self._accept(out, dataset)

    def _execute(self, argv: list[str], out: Path) -> None:
        _require_empty(out)
        logs = out.with_name(f".{out.name}.sut-logs")
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True)
        start = time.monotonic()
        with (logs / "stdout.log").open("wb") as so, (logs / "stderr.log").open("wb") as se:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=so, stderr=se, start_new_session=True)
            _RUNNING[proc.pid] = (proc, out, logs)
            try:
                rc = proc.wait(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                _stop(proc)
                self._failed(out, logs, f"ran past its timeout of {self.timeout_s:g} s (--sut-timeout)")
            except BaseException:  # an exception in this thread: the SUT goes with the harness
                stop_running()
                raise
            finally:
                _RUNNING.pop(proc.pid, None)
        if rc != 0:
            self._failed(out, logs, f"exited with status {rc} after {time.monotonic() - start:.1f} s")
        out.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(out / LOGS, ignore_errors=True)
        os.replace(logs, out / LOGS)

    def _failed(self, out: Path, logs: Path, what: str) -> None:
        """Move what the command wrote aside (``<out>.failed``, with its logs) and raise."""
        failed = _move_aside(out)
        last = _last_line(logs / "stderr.log")
        os.replace(logs, failed / LOGS)
        raise SUTFailed(f"SUT {self.spec} {what}" + (f" (last stderr line: {last!r})" if last else "")
                        + f"; what it wrote and its logs are in {failed}")

    def _accept(self, out: Path, dataset: Path) -> dict:
        violations, _ = conform.check(out, dataset)
        if violations:  # moved aside with its logs: <out> never holds a run the harness would refuse
            raise conform.NonConforming(_move_aside(out), violations)
        return _record(self, out, json.loads((out / layout.RUN_JSON).read_text()))


#: The command SUTs running now, by pid: (process, run folder, logs folder).
_RUNNING: dict[int, tuple[subprocess.Popen, Path, Path]] = {}


def stop_running() -> None:
    """Stop every command SUT this process runs (each in a session of its own, so a Ctrl-C at the terminal
    does not reach it) and move what it wrote aside to ``<out>.failed``, with its logs: a rerun starts
    clean. Called by :mod:`gaiasim.entry` when the command is interrupted."""
    for pid in list(_RUNNING):
        proc, out, logs = _RUNNING.pop(pid)
        _stop(proc, wait_s=2.0)
        failed = _move_aside(out)
        if logs.is_dir():
            os.replace(logs, failed / LOGS)


def _move_aside(out: Path) -> Path:
    """``<out>.failed``, holding what was in ``out`` (replacing an older one); ``out`` is gone."""
    failed = out.with_name(f"{out.name}.failed")
    shutil.rmtree(failed, ignore_errors=True)
    if out.is_dir():
        os.replace(out, failed)
    failed.mkdir(parents=True, exist_ok=True)
    return failed


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else ""


def _stop(proc: subprocess.Popen, wait_s: float = 10.0) -> None:
    """Stop a command and everything it started (its own session): SIGTERM, then SIGKILL after ``wait_s``. The
    leader's exit is not enough: its children get the signal too but may not have run yet on a busy machine, so
    the whole group is waited for (a member left a zombie by a container's non-reaping init still counts, and
    costs the wait)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            proc.wait()
            return
        if _group_ends(proc, time.monotonic() + wait_s):
            return


def _group_ends(proc: subprocess.Popen, deadline: float) -> bool:
    """Whether the command's process group is gone before ``deadline`` (its leader reaped)."""
    try:
        proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return False
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.01)
    return False


def _require_empty(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise io.InputError(f"run folder {out} is not empty; choose a new --out folder or remove it")


def finished(sut: SUT, out: Path, dataset: Path) -> dict | None:
    """run.json of ``out`` when it holds this SUT's finished run of ``dataset`` (reused, not run again)."""
    try:
        info = json.loads((out / layout.RUN_JSON).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    same = (info.get("sut", {}).get("identity") == sut.identity() and info.get("status") == "complete"
            and info.get("dataset") == str(dataset))
    if not same:
        return None
    return info if not conform.check(out, dataset)[0] else None


def cache_root() -> Path:
    """``$GAIASIM_WORKSPACE`` or ``~/.cache/gaiasim``: where venv SUTs are installed (``suts/``)."""
    return Path(os.environ.get("GAIASIM_WORKSPACE", Path.home() / ".cache" / "gaiasim"))


@dataclass(frozen=True)
class Venv:
    """Another release of this pipeline, in a virtual environment of its own (installed once, cached)."""

    target: str
    timeout_s: float = DEFAULT_TIMEOUT_S
    spec: str = ""
    adapter: str = "venv"
    root: Path | None = None

    def __post_init__(self) -> None:
        if not self.target.strip():
            raise io.InputError(f"SUT spec {self.spec!r}: nothing to install; give venv:<wheel, sdist, requirement or "
                                "git ref>")
        looks_like_file = self.target.endswith((".whl", ".tar.gz", ".zip")) or os.sep in self.target
        if looks_like_file and "+" not in self.target.split(os.sep)[0] and not Path(self.target).is_file():
            raise io.InputError(f"SUT spec {self.spec!r}: {self.target} not found; give a wheel or sdist that exists, "
                                "a requirement (gaiasim==0.1.0) or a git ref (git+https://...)")

    def _key(self) -> str:
        path = Path(self.target)
        if path.is_file():
            with path.open("rb") as f:
                return "file-" + hashlib.file_digest(f, "sha256").hexdigest()[:16]
        return "req-" + hashlib.sha256(self.target.encode()).hexdigest()[:16]

    def identity(self) -> str:
        return f"venv:{self._key()}"

    def env(self) -> Path:
        return (self.root or cache_root()) / "suts" / self._key()

    def can_watch(self) -> bool:
        return True

    def python(self) -> Path:
        return self.env() / "bin" / "python"

    def install(self, on_message: Callable[[str], None] = lambda _m: None) -> Path:
        """The environment, installed on first use (under a lock: concurrent users wait, then share it)."""
        env = self.env()
        marker = env / "gaiasim-sut.json"
        if marker.is_file():
            return env
        env.parent.mkdir(parents=True, exist_ok=True)
        with open(env.parent / f".{env.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if marker.is_file():
                return env
            shutil.rmtree(env, ignore_errors=True)
            target = str(Path(self.target).resolve()) if Path(self.target).is_file() else self.target
            on_message(f"installing SUT {self.spec} into {env} (once)")
            uv = shutil.which("uv")
            steps = ([[uv, "venv", "--quiet", "--python", sys.executable, str(env)],
                      [uv, "pip", "install", "--quiet", "--python", str(env / "bin" / "python"), target]] if uv else
                     [[sys.executable, "-m", "venv", str(env)],
                      [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                       target]])
            for step in steps:
                done = subprocess.run(step, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    shutil.rmtree(env, ignore_errors=True)
                    last = (done.stderr.strip().splitlines() or ["?"])[-1]
                    raise io.InputError(f"cannot install SUT {self.spec}: {Path(step[0]).name} failed ({last}); "
                                        "check the wheel, requirement or git ref and the network")
            version = subprocess.run([str(env / "bin" / "python"), "-c", "from pipeline.version import "
                                      "pipeline_version; print(pipeline_version())"],
                                     capture_output=True, text=True, check=False)
            if version.returncode != 0:
                shutil.rmtree(env, ignore_errors=True)
                raise io.InputError(f"SUT {self.spec} installed no gaiasim pipeline (import pipeline failed); give a "
                                    "gaiasim wheel, sdist, requirement or git ref")
            io.write_json({"target": self.target, "pipeline_version": version.stdout.strip()}, marker)
        return env

    def _command(self, watch: bool) -> Command:
        py = shlex.quote(str(self.python()))
        line = f"{py} -m gaiasim run {{dataset}} --out {{out}}"
        if watch:
            line += " --watch {inbox}"
        return Command(line, self.timeout_s, self.spec, "venv", self.identity())

    def run(self, dataset: Path, out: Path, progress: Progress = _noop, executor: Executor | None = None) -> dict:
        done = finished(self, Path(out).resolve(), Path(dataset).resolve())
        if done is not None:
            return done
        self.install()
        return self._command(False).run(dataset, out, progress)

    def watch(self, dataset: Path, inbox: Path, out: Path, *, poll_s: float, idle_exit_s: float | None,
              max_files: int | None, progress: Progress = _noop) -> dict:
        self.install()
        cmd = self._command(True)
        extra = f" --poll {poll_s:g}" + (f" --until-idle {idle_exit_s:g}" if idle_exit_s is not None else "") + \
            (f" --max-files {max_files}" if max_files else "")
        return Command(cmd.template + extra, cmd.timeout_s, cmd.spec, cmd.adapter, cmd.fixed_identity).watch(
            dataset, inbox, out, poll_s=poll_s, idle_exit_s=idle_exit_s, max_files=max_files, progress=progress)


def parse(spec: str | None, config: PipelineConfig | None = None, timeout_s: float | None = None) -> SUT:
    """The SUT a spec names (:data:`SPEC_HELP`); ``config`` applies to the builtin pipeline only."""
    spec = (spec or "builtin").strip()
    timeout = DEFAULT_TIMEOUT_S if timeout_s is None else float(timeout_s)
    if not timeout > 0:
        raise io.InputError(f"SUT timeout {timeout_s!r}: must be a number of seconds > 0")
    if spec == "builtin":
        return Builtin(config or PipelineConfig())
    if config is not None and config != PipelineConfig():
        raise io.InputError(f"SUT spec {spec!r}: pipeline configuration overrides apply to the builtin pipeline "
                            "only; give them to the external SUT itself")
    kind, sep, rest = spec.partition(":")
    if sep and kind == "cmd":
        return Command(rest, timeout, spec)
    if sep and kind == "venv":
        return Venv(rest.strip(), timeout, spec)
    raise io.InputError(f"unknown SUT spec {spec!r}; give {SPEC_HELP}")
