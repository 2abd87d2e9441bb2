"""The ``gaiasim`` command: generate, run (batch or --watch), conform, alerts, validate, fidelity, query, verify, icd,
demo, replay, compare, baseline, report, history, metrics, campaign, trace.

Errors an operator must fix are one line on stderr and exit status 2; a failed validation, and a run that
breaks the run contract (the list of violations), exit 1.
Long work shows a progress bar on a terminal and stays quiet otherwise.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import duckdb
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from gaiasim import clitable, packaged
from gaiasim import conform as conformance
from gaiasim import dataset as ds
from gaiasim import demo as demo_mod
from gaiasim import sut as suts
from gaiasim.clitable import Column, Tabular
from gaiasim.spec import SpecError, load_spec, make_spec, resolve_faults
from gaiasim.validate import checks, day_trends, db, report, scorecard
from gaiasim.validate import history as hist
from pipeline import io
from pipeline.io import InputError

err = Console(stderr=True)
stdout = clitable.console()


def _fail(message: str) -> None:
    click.echo(f"gaiasim: error: {message}", err=True)
    sys.exit(2)


def _errors(fn: Callable) -> Callable:
    """Turn the errors an operator must fix into one line and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (SpecError, InputError) as exc:
            _fail(str(exc))
        except (conformance.NonConforming, suts.SUTFailed) as exc:
            click.echo(f"gaiasim: error: {exc}", err=True)
            sys.exit(1)
        except duckdb.Error as exc:
            _fail(f"query failed: {db.error_line(exc)}")
        except BrokenPipeError:  # the reader went away (| head): stop quietly, as a Unix tool does
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            _fail(f"{where}{exc.strerror or exc}; check the path and free disk space, "
                  "then run the same command again")

    return wrapper


class LocalPath(click.Path):
    """A local path argument or option: a URI (``s3://bucket/x``, ``gs://...``) is refused in one line before
    anything is created, instead of becoming a folder named ``s3:``; object storage is pipeline.storage's
    (docs/run-contract.md, "Object storage"), not yet wired into the commands."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and re.match(r"[A-Za-z][A-Za-z0-9+.-]+://", value):
            name = param.opts[0] if isinstance(param, click.Option) else getattr(param, "human_readable_name", "it")
            _fail(f"{value}: {name} takes a local path; this command does not read or write object storage yet "
                  "(docs/run-contract.md, 'Object storage'): copy the data to a local folder")
        return super().convert(value, param, ctx)


@contextmanager
def _progress(label: str) -> Iterator[Callable[[str, float], None]]:
    """A progress callback: a rich bar on a terminal, nothing otherwise."""
    if not err.is_terminal:
        yield lambda _stage, _fraction: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err,
                  transient=True) as bar:
        task = bar.add_task(label, total=1.0)
        yield lambda stage, fraction: bar.update(task, completed=fraction, description=f"{label}: {stage}")


def _set_threads(workers: int | None) -> None:
    """Use at most ``workers`` threads in the numba kernels (default: every core)."""
    if workers:
        import numba

        numba.set_num_threads(min(workers, numba.config.NUMBA_NUM_THREADS))


def _executor_options(tasks: str, auto: str = "", kinds: tuple[str, ...] = ("serial", "process", "dask")) -> Callable:
    """--workers, --executor and --scheduler: where a command's ``tasks`` run (any choice, same bytes).
    With ``auto`` (what the command then picks), ``auto`` is a choice and the default."""

    threads = "threads" in kinds
    threads_note = " (threads: several at once)" if threads else ""

    def decorate(fn: Callable) -> Callable:
        fn = click.option("--scheduler", help="Dask scheduler address (tcp://HOST:PORT) for --executor dask; "
                          "default: a local cluster of --workers processes")(fn)
        fn = click.option("--executor", type=click.Choice([*(["auto"] if auto else []), *kinds]),
                          default="auto" if auto else "serial", show_default=True,
                          help=f"where the {tasks} run: this process{threads_note}, a local process pool, or Dask "
                          f"distributed (same bytes){'; auto: ' + auto if auto else ''}")(fn)
        return click.option("--workers", type=click.IntRange(1, 256), default=None,
                            help=f"threads for the numba kernels; with --executor {'threads, ' if threads else ''}"
                            "process or dask: task threads or worker processes (one numba thread each)")(fn)

    return decorate


def _minutes(t) -> str:
    return f"{t:%Y-%m-%d %H:%M}"


def _format_option(what: str) -> Callable:
    return click.option("--format", "fmt", type=click.Choice(clitable.FORMATS), default="table", show_default=True,
                        help=f"{what}: a table in the terminal's width (80 columns when piped), CSV or JSON")


def _sut_options(fn: Callable) -> Callable:
    """--sut and --sut-timeout: which system under test runs (gaiasim.sut)."""
    fn = click.option("--sut-timeout", "sut_timeout", type=click.FloatRange(min=0, min_open=True), default=None,
                      help=f"seconds a cmd or venv SUT may run (default {suts.DEFAULT_TIMEOUT_S:g})")(fn)
    return click.option("--sut", "sut_spec", default="builtin", show_default=True,
                        help=f"system under test: {suts.SPEC_HELP}")(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(ds.code_version(), prog_name="gaiasim")
def main() -> None:
    """Simulation and validation harness for a Gaia-like daily telemetry pipeline."""


@main.command()
@click.argument("spec", required=False)
@click.option("--scale", type=float, help="fraction of the real sky density (1.0 ~ 70 M transits a day)")
@click.option("--seed", type=int, help="random seed (same seed and spec -> same bytes)")
@click.option("--date", "date_", type=str, help="first day, YYYY-MM-DD")
@click.option("--days", type=int, help="consecutive days with the same sky")
@click.option("--faults", help="fault plan: a TOML file, or the name of a packaged plan (corrupted_link, "
              "hk_anomalies, transients, calibration_drift, none)")
@click.option("--out", type=LocalPath(path_type=Path), help="dataset folder to create")
@click.option("--dry-run", is_flag=True, help="print the expected counts and bytes, write nothing")
@_executor_options("time slices", auto="a process pool when every worker gets 4 slices or more, else this process")
@_errors
def generate(spec, scale, seed, date_, days, faults, out, dry_run, workers, executor, scheduler) -> None:
    """Generate a dataset: TM files, reference catalogue and truth.

    Either from SPEC: a spec TOML, or the name of a packaged level (tiny, small, medium, day), or from
    --scale/--seed/--date options; options given with a SPEC override its values.
    """
    from gaiasim.sim.generate import generate as run_generate

    values = {k: v for k, v in (("scale", scale), ("seed", seed), ("date", date_), ("days", days)) if v is not None}
    if spec is not None:
        base, faults_path = load_spec(packaged.file_or_named("levels", spec))
        day = make_spec(**{**base.to_json(), **values})
    else:
        day, faults_path = make_spec(**values), None
    if faults is not None:
        faults_path = resolve_faults(str(packaged.file_or_named("faults", faults)), Path.cwd())
    if dry_run:
        from gaiasim.sim.generate import dry_run as estimate

        e = estimate(day)
        click.echo(f"{day.date} +{day.days - 1} days at scale {day.scale:g}: about {e['transits']:.3g} transits, "
                   f"{e['tm_octets'] / 1e9:.3g} GB of TM ({e['octets_per_transit']:.0f} octets per transit) in "
                   f"{e['tm_files']} TM files, {e['slices']} slices (estimated from scale {e['sample_scale']:g})")
        return
    if out is None:
        raise SpecError("--out is required: give the dataset folder to create (or use --dry-run)")
    _set_threads(workers)
    from gaiasim.executors import make_executor
    from gaiasim.sim.generate import auto_executor

    if executor == "auto":
        executor = auto_executor(day, workers or os.cpu_count() or 1)
    with make_executor(executor, workers, scheduler) as pool, _progress("generate") as progress:
        manifest = run_generate(day, out, faults_path, progress, pool)
    c = manifest["counts"]
    click.echo(f"dataset {out}: {c['transits']} transits of {c['sources']} sources in {c['tm_files']} TM files, "
               f"{c['faults']} faults injected")


@main.command(name="run")
@click.argument("dataset", type=LocalPath(path_type=Path))
@click.option("--out", required=True, type=LocalPath(path_type=Path),
              help="run folder to create (or to resume: a stopped run of the same inputs carries on)")
@_executor_options("hours", auto="with 2 cores or more, an hour per core at a time on threads of this "
                  "process, else this process", kinds=("serial", "threads", "process", "dask"))
@click.option("--watch", "inbox", type=LocalPath(path_type=Path), default=None,
              help="process the TM files arriving in this folder instead of DATASET/tm (catalogue from DATASET)")
@click.option("--poll", "poll_s", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="with --watch: seconds between looks at the inbox")
@click.option("--until-idle", "idle_s", type=click.FloatRange(min=0), default=None,
              help="with --watch: stop when no file came for this many seconds (default: watch until Ctrl-C)")
@click.option("--max-files", type=click.IntRange(min=1), default=None, help="with --watch: stop after N files")
@_sut_options
@_format_option("the run's counts")
@_errors
def run_cmd(dataset, out, workers, executor, scheduler, inbox, poll_s, idle_s, max_files, sut_spec,
            sut_timeout, fmt) -> None:
    """Run the daily pipeline (or any system under test: --sut) over DATASET into a run folder."""
    system = suts.parse(sut_spec, timeout_s=sut_timeout)
    if not Path(dataset).is_dir():
        raise InputError(f"dataset {dataset} not found; give a folder made by 'gaiasim generate'")
    tm = Path(dataset) / "tm"
    if inbox is None and tm.is_dir() and not any(tm.glob("*.tm")):  # an empty day would 'pass' with nothing
        raise InputError(f"dataset {dataset} has no TM files in tm/ (an empty day); regenerate the dataset or "
                         "check its downlink")
    _set_threads(workers)
    if isinstance(system, suts.Venv):
        system.install(on_message=lambda message: click.echo(f"gaiasim: {message}", err=True))
    if inbox is not None:
        def announce(stage: str, _fraction: float) -> None:
            if stage == "watch":
                click.echo(f"{out}: outputs updated", err=True)

        info = system.watch(dataset, inbox, out, poll_s=poll_s, idle_exit_s=idle_s, max_files=max_files,
                            progress=announce)
    elif system.adapter != "builtin":
        with _progress(f"run ({system.spec})") as progress:
            info = system.run(dataset, out, progress)
    else:
        from gaiasim.executors import auto_run_executor, make_executor

        if executor == "auto":
            executor = auto_run_executor(workers)
        with make_executor(executor, workers, scheduler) as pool, _progress("run") as progress:
            info = system.run(dataset, out, progress, pool)
    for warning in info.get("warnings", []):
        click.echo(f"gaiasim: warning: {warning}", err=True)
    c = info.get("counts")
    if fmt != "table":
        rows = sorted((c or {}).items())
        if fmt == "json":
            click.echo(json.dumps({"run": str(out), "status": info.get("status"), "counts": dict(rows)}, indent=1))
        else:
            clitable.emit(Tabular("", [Column("count"), Column("value")], rows), fmt, stdout)
        return
    if not c:
        click.echo(f"run {out}: no TM file has arrived yet")
        return
    click.echo(f"run {out}: {c['transits']} transits ({c['transits_matched']} matched), "
               f"{c['packets_read']} packets read = {c['packets_used']} used + {c['duplicates_dropped']} duplicates "
               f"+ {c['packets_quarantined']} quarantined")


def _judgeable(run_dir: Path, dataset: Path | None = None, truth: bool = False) -> None:
    """Refuse a run that is missing, unfinished or being written (exit 2), or that breaks the run contract
    (exit 1, every violation listed): validate, compare and report judge runs through the contract alone.
    ``truth``: the command judges against the truth, so a dataset that is not where the run says (moved,
    deleted) is one line naming it and --dataset, not a list of failed checks."""
    info = db.read_run_info(run_dir)
    where = dataset or info.get("dataset")
    if truth and where and not (Path(where) / "tm").is_dir():
        named = "--dataset" if dataset else f"{run_dir}/run.json"
        raise InputError(f"truth not found at {where} (the dataset {named} names: moved or deleted?); "
                         "pass --dataset with the folder 'gaiasim generate' made")
    conformance.require(run_dir, dataset)


@main.command()
@click.argument("run_dir", type=LocalPath(path_type=Path))
@click.option("--dataset", type=LocalPath(path_type=Path), help="the dataset the run read (default: run.json's)")
@_errors
def conform(run_dir, dataset) -> None:
    """Check RUN_DIR against the run contract (docs/run-contract.md): layout, every Parquet file's schema and
    partitions, run.json against its JSON Schema, counts against the tables, input SHA-256 against the
    dataset. Lists every violation; exit 1 if any."""
    violations, summary = conformance.check(run_dir, dataset)
    for v in violations:
        click.echo(str(v))
    if violations:
        click.echo(f"{run_dir}: {len(violations)} violation(s) of the run contract", err=True)
        sys.exit(1)
    click.echo(f"{run_dir} keeps the run contract: {summary.tables} tables in {summary.files} Parquet files "
               f"({sum(summary.rows.values())} rows), run.json, {summary.inputs} inputs")


@main.command(name="alerts")
@click.argument("run_dir", type=LocalPath(path_type=Path))
@click.option("--avro", "avro_path", type=LocalPath(path_type=Path),
              help="Avro container file of every alert (with --split: a folder, one <alert_id>.avro per alert)")
@click.option("--split", is_flag=True, help="one Avro file per alert, in the folder --avro names")
@click.option("--voevent", "voevent_dir", type=LocalPath(path_type=Path),
              help="folder for the VOEvent 2.0 XML of each alert (<alert_id>.xml)")
@click.option("--role", type=click.Choice(["test", "observation", "prediction", "utility"]), default="test",
              show_default=True, help="VOEvent role (simulated data: test)")
@_errors
def alerts_cmd(run_dir, avro_path, split, voevent_dir, role) -> None:
    """Publish RUN_DIR's science alerts (its alerts table, completed from its transits) as Avro packets
    (schema gaiasim.alert, docs/alerts.md) and/or VOEvent 2.0 XML."""
    from gaiasim.publish import avro, packets, voevent

    if avro_path is None and voevent_dir is None:
        raise InputError("nothing to write: give --avro FILE, --voevent DIR or both")
    if split and avro_path is None:
        raise InputError("--split needs --avro FOLDER: the folder for one Avro file per alert")
    found = packets.from_run(run_dir, f"gaiasim {ds.code_version()}")
    written = []
    if avro_path is not None:
        if split:
            avro.write_split(found, avro_path)
            written.append(f"{avro_path}/ ({len(found)} Avro files, schema {avro.SCHEMA_VERSION})")
        else:
            avro.write(found, avro_path)
            written.append(f"{avro_path} (Avro, schema {avro.SCHEMA_VERSION})")
    if voevent_dir is not None:
        voevent.write_all(found, voevent_dir, role)
        written.append(f"{voevent_dir}/ ({len(found)} VOEvent 2.0 files, role {role})")
    click.echo(f"{len(found)} alerts written: {'; '.join(written)}")


def _results_view(results: list[checks.Result]) -> Tabular:
    """The checks as a table: the statement of each check when the width allows, and under the table that of
    every failed one."""
    rows = [(r.check.requirement, r.check.name, r.value, f"{r.check.op} {r.check.threshold:g} {r.check.unit}".strip(),
             r.status, r.check.statement) for r in results]
    notes = [f"{r.check.requirement} FAIL: {r.check.statement}" + (f" ({r.note})" if r.note else "")
             for r in results if r.failed]
    return Tabular("validation", [Column("requirement"), Column("check", drop=2),
                                  Column("measured", text=lambda v: "n/a" if v is None else f"{v:.4g}"),
                                  Column("required", fold=True), Column("result"),
                                  Column("statement", fold=True, drop=3)], rows, notes)


@main.command()
@click.argument("run_dir", type=LocalPath(path_type=Path))
@click.option("--dataset", type=LocalPath(path_type=Path), help="dataset with the truth (default: the run's)")
@click.option("--junit", type=LocalPath(path_type=Path), help="write JUnit XML here")
@click.option("--json", "json_path", type=LocalPath(path_type=Path), help="write JSON results here")
@click.option("--history", type=LocalPath(path_type=Path), default=None,
              help="results database to append to (default $GAIASIM_HISTORY or ~/.local/share/gaiasim/)")
@click.option("--no-history", is_flag=True, help="do not append the results to the results database")
@click.option("--determinism", is_flag=True, help="also run the pipeline again and compare every output table")
@_format_option("the results (json: what --json writes)")
@_errors
def validate(run_dir, dataset, junit, json_path, history, no_history, determinism, fmt) -> None:
    """Run every check and the detection scorecard on RUN_DIR against its dataset's truth; exit 1 on any
    failure or any injected fault left undetected. A run that breaks the run contract is refused first
    (exit 1, the list of violations)."""
    _judgeable(run_dir, dataset, truth=True)
    con = db.connect(run_dir, dataset)
    truth = db.has_truth(con)
    if determinism:
        from gaiasim.workspace import rerun_differences

        con.execute("CREATE TABLE rerun_differences (name VARCHAR)")
        differ = rerun_differences(run_dir)
        if differ:
            con.executemany("INSERT INTO rerun_differences VALUES (?)", [(name,) for name in differ])
    results = checks.evaluate_all(con, truth, rerun=determinism)
    card = scorecard.scorecard(con) if truth else None
    if fmt == "json":
        click.echo(json.dumps(report.to_json(results, run_dir, card), indent=1))
    else:
        clitable.emit(_results_view(results), fmt, stdout)
        if card is not None and fmt == "table":
            clitable.emit(_scorecard_view(card), fmt, stdout)
    if junit:
        report.write_junit(results, junit)
    if json_path:
        report.write_json(results, run_dir, json_path, card)
    if not no_history:
        path = history or hist.default_path()
        hist.append(path, db.read_run_info(run_dir), run_dir, results, card,
                    on_wait=lambda message: click.echo(f"gaiasim: {message}", err=True))
    failed = [r for r in results if r.failed]
    scorecard_ok = card is None or card.passed
    click.echo(f"{checks.tally(results)}; detection scorecard {'complete' if scorecard_ok else 'INCOMPLETE'}",
               err=fmt != "table")
    sys.exit(1 if failed or not scorecard_ok else 0)


def _scorecard_view(card: scorecard.Scorecard) -> Tabular:
    rows = [("injected fault", kind, d, n, f"{d / n:.1%}" if n else "n/a") for kind, (d, n) in card.recall.items()]
    rows += [("false alarms", name, fa, None, "") for name, fa in card.false_alarms.items()]
    return Tabular("detection scorecard", [Column("of"), Column("kind"), Column("detected / reported"),
                                           Column("injected", text=lambda v: "" if v is None else str(v)),
                                           Column("recall")], rows)


def _print_relation(rel, fmt: str) -> None:
    if rel is None:  # a statement without a result (CREATE VIEW ...)
        return
    # As the DuckDB shell does: when the width cannot hold every column, the rightmost are left out (named
    # under the table); numbers and ids are never broken, text folds.
    columns = [Column(name, fold=str(kind) == "VARCHAR", drop=i)
               for i, (name, kind) in enumerate(zip(rel.columns, rel.types, strict=True))]
    clitable.emit(Tabular("", columns, rel.fetchall()), fmt, stdout)


def _run_sql(con, sql: str, fmt: str, unrestricted: bool) -> None:
    """Every statement of ``sql`` (split by DuckDB's parser), each result printed."""
    for statement in db.statements(sql, unrestricted):
        try:
            _print_relation(con.sql(statement), fmt)
        except duckdb.PermissionException as exc:
            raise InputError(f"query failed: {db.error_line(exc)}; gaiasim query reads only the run and its "
                             "dataset: pass --unrestricted to read other files") from None


def _interactive(con, fmt: str, unrestricted: bool) -> None:
    """The SQL prompt (gaiasim.shell): line editing and history, statements split by DuckDB's parser."""
    from gaiasim import shell

    shell.prompt(con, lambda sql: _run_sql(con, sql, fmt, unrestricted), say=click.echo,
                 error=lambda line: click.echo(line, err=True))


@main.command()
@click.argument("run_dir", type=LocalPath(path_type=Path))
@click.argument("sql", required=False)
@_format_option("the results")
@click.option("--unrestricted", is_flag=True,
              help="allow any SQL: reading and writing any file (COPY, EXPORT), ATTACH, INSTALL/LOAD, SET; by "
              "default a query reads the run and its dataset and nothing else")
@_errors
def query(run_dir, sql, fmt, unrestricted) -> None:
    """Answer SQL over a run (transits, ccd, quarantine, gaps, hk, hk_events, alerts, run_counts) and its
    truth (truth_*). Without SQL: an interactive prompt on a terminal, else the statements on stdin.
    Read-only unless --unrestricted."""
    con = db.connect(run_dir, read_only=not unrestricted)
    if sql is not None:
        _run_sql(con, sql, fmt, unrestricted)
    elif sys.stdin.isatty():
        _interactive(con, fmt, unrestricted)
    else:
        _run_sql(con, sys.stdin.read(), fmt, unrestricted)


@main.command()
@click.option("--features", "features_dir", type=LocalPath(path_type=Path), default=Path("features"),
              show_default=True, help="folder of the Gherkin features")
@click.option("--cucumber", type=LocalPath(path_type=Path),
              help="report with the last results: Cucumber Messages (.ndjson) or Cucumber JSON")
@click.option("--out", type=LocalPath(path_type=Path), help="write the matrix (Markdown) here")
@_errors
def trace(features_dir, cucumber, out) -> None:
    """Requirement traceability matrix: requirement -> scenarios (one row per outline example) -> last result."""
    from gaiasim.validate import trace as tr

    if not Path(features_dir).is_dir():
        raise InputError(f"features folder {features_dir} not found; run from the repository or pass --features")
    text = tr.markdown(tr.matrix(features_dir, cucumber))
    if cucumber and (lost := tr.orphans(features_dir, cucumber)):
        click.echo(f"gaiasim: note: {len(lost)} result(s) in {cucumber} match no scenario of {features_dir} "
                   f"(renamed, moved or deleted since?): " + ", ".join(f"{o.uri}:{o.line}" for o in lost), err=True)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
    click.echo(text, nl=False)


@main.command(name="report")
@click.argument("run_dir", type=LocalPath(path_type=Path))
@click.option("--html", "html_path", required=True, type=LocalPath(path_type=Path), help="HTML file to write")
@click.option("--dataset", type=LocalPath(path_type=Path), help="dataset with the truth (default: the run's)")
@click.option("--features", "features_dir", type=LocalPath(path_type=Path), default=Path("features"),
              show_default=True, help="Gherkin features, for the traceability matrix")
@click.option("--cucumber", type=LocalPath(path_type=Path),
              help="report with the last results: Cucumber Messages (.ndjson) or Cucumber JSON")
@click.option("--history", type=LocalPath(path_type=Path), default=None,
              help="results database with the previous days and the approvals (default $GAIASIM_HISTORY or "
                   "~/.local/share/gaiasim/)")
@click.option("--trend-days", type=click.IntRange(1, 1000), default=day_trends.TREND_DAYS, show_default=True,
              help="previous validations each check is compared with")
@_errors
def report_cmd(run_dir, html_path, dataset, features_dir, cucumber, history, trend_days) -> None:
    """Daily report of RUN_DIR: one self-contained HTML page (plots with the day's anomalies, checks, trends
    against the previous days, scorecard, alerts, logbook)."""
    from gaiasim.validate import html_report, report_plots

    report_plots.require_matplotlib()
    _judgeable(run_dir, dataset, truth=True)
    html_report.write(run_dir, html_path, dataset=dataset, features=features_dir, cucumber=cucumber, history=history,
                      trend_days=trend_days)
    click.echo(f"report {html_path}")


@main.command(name="history")
@click.option("--db", "db_path", type=LocalPath(path_type=Path), default=None,
              help="results database (default $GAIASIM_HISTORY or ~/.local/share/gaiasim/history.duckdb)")
@click.option("--requirement", help="only this requirement, e.g. REQ-IPD-001")
@click.option("--campaign", help="only the validations of this campaign")
@click.option("--plot", type=LocalPath(path_type=Path), help="write a trend plot (PNG) here")
@_format_option("the trends")
@_errors
def history_cmd(db_path, requirement, campaign, plot, fmt) -> None:
    """Pass rate and metric over time of every requirement in the results database."""
    series = hist.trends(db_path or hist.default_path(), requirement, campaign)
    verdict = {True: "pass", False: "FAIL", None: "n/a"}
    rows = [(t.requirement, t.check_name, t.campaign, t.runs, t.pass_rate, t.values[-1], f"{t.op} {t.threshold:g}",
             verdict[t.passed[-1]], t.values[-5:] if fmt == "json" else ", ".join(
                 "n/a" if v is None else f"{v:.3g}" for v in t.values[-5:]), t.recorded_at[-1]) for t in series]
    campaigns = any(t.campaign for t in series)
    clitable.emit(Tabular("validation history", [
        Column("requirement"), Column("check", drop=1), Column("campaign", fold=True, drop=4 if campaigns else 9,
                                                                     text=lambda v: v or ""),
        Column("runs"), Column("passed", text=lambda v: "n/a" if v is None else f"{v:.0%}"),
        Column("value", text=lambda v: "n/a" if v is None else f"{v:.4g}"), Column("required", fold=True),
        Column("last"), Column("recent values", fold=True, drop=3),
        Column("last recorded", drop=2, text=_minutes)], rows,
        ["passed: the share of runs that passed; value and last: the last run's; recent values: the last five, "
         "oldest first; times in UTC"]), fmt, stdout)
    if plot:
        hist.plot_trends(series, plot)
        click.echo(f"trend plot {plot}")


@main.command(name="metrics")
@click.option("--db", "db_path", type=LocalPath(path_type=Path), default=None,
              help="results database (default $GAIASIM_HISTORY or ~/.local/share/gaiasim/history.duckdb)")
@click.option("--requirement", help="only this requirement, e.g. REQ-IPD-001")
@click.option("--campaign", help="only the validations of this campaign")
@click.option("--latest", is_flag=True,
              help="only the latest validation of each campaign, without timestamps (a node_exporter textfile "
                   "collector); default: every validation, timestamped (promtool backfill)")
@click.option("--run", "run_dirs", multiple=True, type=LocalPath(path_type=Path),
              help="also the stage times and memory of this validated run's run.json (repeatable)")
@click.option("--out", type=LocalPath(path_type=Path), default=None,
              help="write here, atomically (a textfile collector's NAME.prom); default: standard output")
@_errors
def metrics(db_path, requirement, campaign, latest, run_dirs, out) -> None:
    """The results database as OpenMetrics text, for Prometheus and Grafana (docs/metrics.md)."""
    from gaiasim.validate import openmetrics

    path = db_path or hist.default_path()
    rows = hist.records(path, requirement, campaign)
    if latest:
        rows = openmetrics.latest(rows)
    stages = {}
    for run_dir in run_dirs:
        run = str(Path(run_dir).resolve())
        if not any(r.run == run for r in rows):
            raise InputError(f"{run_dir} has no validation among those exported from {path}"
                             f"{' (the latest of each campaign)' if latest else ''}: validate it first "
                             "('gaiasim validate RUN'), or leave out --run")
        stages[run] = db.read_run_info(run_dir)
    text = openmetrics.render(openmetrics.samples(rows, stages, timestamps=not latest))
    if out is None:
        click.echo(text, nl=False)
        return
    io.write_bytes(text.encode(), out)
    validations = len({(r.recorded_at, r.run, r.campaign) for r in rows})
    points = sum(not line.startswith("#") for line in text.splitlines())
    click.echo(f"metrics {out}: {points} samples of {validations} validation{'s' * (validations != 1)}")


@main.command()
@click.argument("run_dir", type=LocalPath(path_type=Path))
@click.option("--dataset", type=LocalPath(path_type=Path), help="dataset with the truth (default: the run's)")
@click.option("--json", "json_path", type=LocalPath(path_type=Path), help="write the rows as JSON here")
@click.option("--plot", "plot_path", type=LocalPath(path_type=Path),
              help="write a PNG of the curves here (report extra)")
@_format_option("the rows (CSV: the precision rows only, one table; JSON: every section, as --json writes)")
@_errors
def fidelity(run_dir, dataset, json_path, plot_path, fmt) -> None:
    """How realistic the simulated day is, as RUN_DIR measures it against the truth: per-CCD AL precision
    and per-transit G scatter vs G beside Gaia's published curves, and the AL pull width (error
    inflation) per G bin; the crossmatch's correct fraction for isolated sources and per separation and
    magnitude-difference bin for close pairs; the science alerts' recall per class and amplitude with 95 %
    lower bounds, and the false-alert rate with its upper bound; and, for the galaxy sky, its star counts,
    colours and reddening beside the published numbers (docs/sky.md section 8b)."""
    from gaiasim.validate import alert_recall, report_plots, sky_fidelity, xm_pairs
    from gaiasim.validate import fidelity as fid

    if plot_path:
        report_plots.require_matplotlib()
    _judgeable(run_dir, dataset, truth=True)
    con = db.connect(run_dir, dataset, integrity=False)
    if not db.has_truth(con):
        raise InputError(f"{run_dir}: no truth found for its dataset; pass --dataset with the folder "
                         "'gaiasim generate' made")
    db.cache_sample_pairs(con)
    rows = fid.measure(con)
    crossmatch = xm_pairs.measure(con)
    recall, false_alerts = alert_recall.measure(con), alert_recall.false_alerts(con)
    sky_rows = sky_fidelity.measure(con, sky_fidelity.dataset_scale(dataset or db.read_run_info(run_dir)["dataset"]))
    doc = {**fid.to_json(rows), "crossmatch": xm_pairs.to_json(crossmatch), "sky": sky_fidelity.to_json(sky_rows),
           "alerts": alert_recall.to_json(recall, false_alerts)}
    if fmt == "json":  # one document with every section (a CSV holds one table: the precision rows)
        click.echo(json.dumps(doc, indent=1))
    else:
        clitable.emit(fid.view(rows), fmt, stdout)
    if fmt == "table":
        clitable.emit(xm_pairs.view(crossmatch), fmt, stdout)
        if recall:  # a day with transients seen in both fields of view
            clitable.emit(alert_recall.view(recall, false_alerts), fmt, stdout)
        if any(r.measured is not None for r in sky_rows):  # a toy sky's are all n/a
            clitable.emit(sky_fidelity.view(sky_rows), fmt, stdout)
    if json_path:
        io.write_bytes((json.dumps(doc, indent=1) + "\n").encode(), Path(json_path))
    if plot_path:
        io.write_bytes(fid.plot(rows), Path(plot_path))
        click.echo(f"fidelity plot {plot_path}")


@main.command()
@click.argument("folder", type=LocalPath(path_type=Path))
@_format_option("the files that differ")
@_errors
def verify(folder, fmt) -> None:
    """Recompute every SHA-256 of a dataset against its manifest; exit 1 naming what differs."""
    problems = [p.split(": ", 1) for p in ds.verify(folder)]
    files = len(ds.read_manifest(folder)["files"])
    if fmt == "json":
        click.echo(json.dumps({"dataset": str(folder), "files": files, "intact": not problems,
                               "problems": [{"file": f, "problem": why} for f, why in problems]}, indent=1))
    elif fmt == "csv":
        clitable.emit(Tabular("", [Column("file"), Column("problem")], problems), fmt, stdout)
    else:
        for name, why in problems:
            click.echo(f"{folder}/{name}: {why}", err=True)
    if problems:
        sys.exit(1)
    if fmt == "table":
        click.echo(f"{folder}: all {files} files match the manifest")


@main.command(name="icd")
@click.option("--xtce", "xtce_path", type=LocalPath(path_type=Path, allow_dash=True),
              help="write the ICD as an XTCE 1.2 document to this file ('-': standard output); docs/xtce.md")
@click.option("--flat", is_flag=True, help="with --xtce: each array element its own parameter, for decoders "
              "without XTCE arrays (space_packet_parser 6)")
@_format_option("the packets")
@_errors
def icd_cmd(xtce_path, flat, fmt) -> None:
    """The telemetry ICD (pipeline/icd.py): every APID with its length and fields, or with --xtce its XTCE
    description for other decoders."""
    from gaiasim import xtce

    if flat and xtce_path is None:
        raise InputError("--flat shapes the XTCE document: give it with --xtce FILE")
    if xtce_path is not None:
        data = xtce.to_bytes(flat)
        if str(xtce_path) == "-":
            click.echo(data, nl=False)  # bytes: to the binary standard output
            return
        io.write_bytes(data, xtce_path)
        click.echo(f"{xtce_path}: XTCE 1.2, {len(xtce.packets())} packets, {len(xtce.parameters(flat))} "
                   f"parameters{' (arrays flattened)' if flat else ''}")
        return
    columns = [Column("APID"), Column("packet"), Column("octets"), Column("rate"), Column("fields", fold=True)]
    clitable.emit(Tabular("telemetry ICD (pipeline/icd.py; gaiasim icd --xtce FILE for XTCE)", columns,
                          xtce.summary_rows()), fmt, stdout)


@main.command()
@click.option("--out", type=LocalPath(path_type=Path), help="folder for the demo (default: a temporary one)")
@_sut_options
@_errors
def demo(out, sut_spec, sut_timeout) -> None:
    """Generate the embedded demo day, run the pipeline (or any system under test: --sut), validate, and
    print a summary."""
    system = suts.parse(sut_spec, timeout_s=sut_timeout)
    with tempfile.TemporaryDirectory(prefix="gaiasim-demo-") as tmp:
        root = Path(out) if out else Path(tmp)
        with _progress("demo") as progress:
            summary = demo_mod.run_demo(root, progress, system)
        stdout.print(demo_mod.summary_table(summary))
        clitable.emit(_results_view(summary.results), "table", stdout)
        if out:
            run_dir = root / "run"
            click.echo(f'demo outputs kept in {root}: try  gaiasim query {run_dir} "select count(*) from transits"')
    sys.exit(1 if any(r.failed for r in summary.results) else 0)


@main.command()
@click.argument("run_a", type=LocalPath(path_type=Path))
@click.argument("run_b", type=LocalPath(path_type=Path))
@click.option("--tolerances", type=LocalPath(path_type=Path), default=None,
              help="tolerance TOML (default datasets/compare/tolerances.toml)")
@click.option("--json", "json_path", type=LocalPath(path_type=Path),
              help="write the comparison as JSON here (what 'gaiasim baseline approve' takes)")
@click.option("--history", type=LocalPath(path_type=Path), default=None,
              help="results database with the approvals (default $GAIASIM_HISTORY or ~/.local/share/gaiasim/)")
@click.option("--no-approvals", is_flag=True, help="fail on any difference, approved or not")
@_format_option("the comparison (json: what --json writes)")
@_errors
def compare(run_a, run_b, tolerances, json_path, history, no_approvals, fmt) -> None:
    """Compare two runs table by table: RUN_A the operational baseline, RUN_B the candidate. Exit 1 when
    rows are missing on either side or values differ beyond tolerance, unless these very differences
    between these very two runs were approved ('gaiasim baseline approve')."""
    from gaiasim import compare as cmp
    from gaiasim.validate import approvals

    for run_dir in (run_a, run_b):
        _judgeable(run_dir)
    result = cmp.compare_runs(run_a, run_b, cmp.load_tolerances(tolerances))
    if fmt != "json":
        clitable.emit(cmp.summary_view(result), fmt, stdout)
    examples = cmp.examples_view(result)
    if examples is not None and fmt == "table":
        clitable.emit(examples, fmt, stdout)
    diff = cmp.to_json(result)
    approval = None
    if result.differs and not no_approvals:
        approval = approvals.find(history or hist.default_path(), diff)
    diff["approval"] = None if approval is None else approval.to_json()
    if json_path:
        io.write_bytes((json.dumps(diff, indent=1) + "\n").encode(), Path(json_path))
    if fmt == "json":
        click.echo(json.dumps(diff, indent=1))
    differ = [t.table for t in result.tables if t.differs]
    say = functools.partial(click.echo, err=fmt != "table")  # csv and json keep stdout for the data
    if not differ:
        say("runs agree within tolerance")
    elif approval is not None:
        say(f"runs differ in {', '.join(differ)}: these differences were {approval.line()}")
    else:
        review = f"review {json_path}, then: gaiasim baseline approve {json_path} --reason TEXT" if json_path else \
            "write them with --json DIFF to review and approve them"
        say(f"runs differ in {', '.join(differ)} (not approved; {review})")
    sys.exit(1 if differ and approval is None else 0)


@main.group()
def baseline() -> None:
    """Reviewed baselines: approve a comparison's differences, list the approvals."""


@baseline.command("approve")
@click.argument("diff", type=LocalPath(path_type=Path))
@click.option("--reason", required=True, help="why the differences are right (recorded with your name)")
@click.option("--history", type=LocalPath(path_type=Path), default=None,
              help="results database (default $GAIASIM_HISTORY or ~/.local/share/gaiasim/history.duckdb)")
@_errors
def baseline_approve(diff, reason, history) -> None:
    """Approve the differences in DIFF (written by 'gaiasim compare --json'): who ($GAIASIM_APPROVER or the
    login name), why, and the hashes of both runs and of the differences go into the results database; the
    same comparison then passes."""
    from gaiasim.validate import approvals

    done = approvals.approve(history or hist.default_path(), approvals.read_diff(diff), reason)
    click.echo(f"differences in {done.tables} between {done.baseline_run} and {done.candidate_run} "
               f"{done.line()}")


@baseline.command("list")
@click.option("--history", type=LocalPath(path_type=Path), default=None,
              help="results database (default $GAIASIM_HISTORY or ~/.local/share/gaiasim/history.duckdb)")
@_format_option("the approvals")
@_errors
def baseline_list(history, fmt) -> None:
    """Every approval on record, latest first."""
    from gaiasim.validate import approvals

    rows = [(a.approved_at, a.approved_by, a.reason, a.tables, a.baseline_run, a.baseline_sut, a.candidate_run,
             a.candidate_sut) for a in approvals.listing(history or hist.default_path())]
    clitable.emit(Tabular("approved baseline differences", [
        Column("approved (UTC)", text=_minutes), Column("by"), Column("reason", fold=True),
        Column("tables", fold=True, drop=1),
        Column("baseline", fold=True, drop=2), Column("baseline sut", fold=True, drop=4),
        Column("candidate", fold=True, drop=2), Column("candidate sut", fold=True, drop=4)], rows,
        [] if rows else ["no approval on record"]), fmt, stdout)


@main.command()
@click.argument("dataset", type=LocalPath(path_type=Path))
@click.option("--inbox", required=True, type=LocalPath(path_type=Path), help="folder to deliver the TM files into")
@click.option("--speed", required=True, help="times real time (a number > 0, e.g. 3600: 8 h in 8 s), or max")
@_format_option("the delivery log")
@_errors
def replay(dataset, inbox, speed, fmt) -> None:
    """Deliver DATASET's TM files into an inbox at the end of their passes, at --speed x real time (each
    copied to .NAME.part, then renamed to NAME); one line per file, then the delivery log."""
    from gaiasim import replay as rp

    log = rp.replay(dataset, inbox, rp.parse_speed(speed),
                    on_delivery=lambda d, i, n: click.echo(rp.progress_line(d, i, n)))
    clitable.emit(rp.log_view(log), fmt, stdout)


@main.command()
@click.argument("spec")
@click.option("--out", required=True, type=LocalPath(path_type=Path), help="campaign folder (a rerun resumes it)")
@click.option("--cache", type=LocalPath(path_type=Path), default=None,
              help="datasets and clean runs, reusable by other campaigns (default OUT/cache)")
@click.option("--history", type=LocalPath(path_type=Path), default=None,
              help="results database to append to (default $GAIASIM_HISTORY or ~/.local/share/gaiasim/)")
@click.option("--sut", "sut_spec", default=None,
              help=f"system under test, instead of the spec's [sut] (default builtin): {suts.SPEC_HELP}")
@click.option("--sut-timeout", "sut_timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="seconds a cmd or venv SUT may run per day (instead of the spec's [sut] timeout_s)")
@_errors
def campaign(spec, out, cache, history, sut_spec, sut_timeout) -> None:
    """Run the campaign SPEC (a TOML file, or a packaged campaign: e2e, rehearsal): per day generate,
    replay, run, validate, compare; then the feature tags; write OUT/campaign.json and campaign.md. Exit 1
    unless every day is green."""
    from gaiasim import campaign as cp

    plan = cp.CampaignSpec.load(packaged.file_or_named("campaigns", spec))
    if sut_spec is not None or sut_timeout is not None:
        plan = dataclasses.replace(plan, sut=sut_spec or plan.sut, sut_timeout_s=sut_timeout or plan.sut_timeout_s)
    with _progress(f"campaign {plan.name}") as progress:
        summary = cp.run_campaign(plan, out, progress, cache=cache, history=history,
                                  on_day=lambda day: click.echo(cp.day_line(day)))
    f = summary["features"]
    features = (f"features -m \"{f['expression']}\" {'passed' if f['passed'] else 'FAILED'}" if f.get("ran")
                else f"features not run ({f.get('note', '')})")
    click.echo(f"campaign {plan.name}: {'GREEN' if summary['green'] else 'RED'}, {summary['days_green']} of "
               f"{len(summary['days'])} days green; {features}; {summary['wall_s']:.0f} s; "
               f"report {Path(summary['out']) / 'campaign.md'}")
    sys.exit(0 if summary["green"] else 1)
