"""Every bad input the ``gaiasim`` command can meet (the README's bad-inputs table): exit status 2, exactly one line
on stderr naming the problem, and nothing that existed before changed (the dataset, the run, the inputs),
nothing new left behind.

Each case runs in its own folder (the working directory), where ``day`` and ``run1`` are links to the
demo day's dataset and run; a case that needs a broken dataset builds it there from a copy.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from gaiasim.cli import main
from gaiasim.spec import SpecError, load_spec

Setup = Callable[[Path], None]


@dataclass(frozen=True)
class BadInput:
    name: str  # pytest id
    what: str  # the bad input, in the operator's words (the README's bad-inputs table)
    args: tuple[str, ...]  # the command line after 'gaiasim', paths relative to the case folder
    word: str  # what the error line must name
    setup: Setup | None = None  # builds the case's inputs in its folder


def _text(name: str, content: str) -> Setup:
    return lambda folder: (folder / name).write_text(content)


def _dataset_copy(folder: Path) -> Path:
    copy = folder / "broken"
    shutil.copytree(folder / "day", copy)
    return copy


def _without_tm(folder: Path) -> None:
    shutil.rmtree(_dataset_copy(folder) / "tm")


def _empty_tm(folder: Path) -> None:
    for f in (_dataset_copy(folder) / "tm").glob("*.tm"):
        f.unlink()


def _catalogue_without_ra(folder: Path) -> None:
    for f in (_dataset_copy(folder) / "catalogue").rglob("*.parquet"):
        pq.write_table(pq.read_table(f).drop_columns(["ra_deg"]), f)


def _catalogue_with_text_ra(folder: Path) -> None:
    for f in (_dataset_copy(folder) / "catalogue").rglob("*.parquet"):
        table = pq.read_table(f)
        i = table.schema.get_field_index("ra_deg")
        pq.write_table(table.set_column(i, "ra_deg", pa.array(["12h30m"] * table.num_rows)), f)


def _dotdot(folder: Path) -> None:
    (folder / "specs").mkdir()
    (folder / "plan.toml").write_text("bit_flip = 0.01\n")
    (folder / "specs" / "spec.toml").write_text('faults = "../plan.toml"\n')


def _escaping_link(folder: Path) -> None:
    outside = folder / "elsewhere"
    outside.mkdir()
    (outside / "plan.toml").write_text("bit_flip = 0.01\n")
    (folder / "specs").mkdir()
    (folder / "specs" / "plan.toml").symlink_to(outside / "plan.toml")
    (folder / "specs" / "spec.toml").write_text('faults = "plan.toml"\n')


def _tm_link_out(folder: Path) -> None:
    tm = _dataset_copy(folder) / "tm"
    first = sorted(tm.glob("*.tm"))[0]
    first.unlink()
    first.symlink_to("/etc/hostname")


def _tm_fifo(folder: Path) -> None:
    os.mkfifo(_dataset_copy(folder) / "tm" / "2016-01-16T01-00.tm")


def _catalogue_link_out(folder: Path) -> None:
    outside = folder / "elsewhere.parquet"
    part = sorted((_dataset_copy(folder) / "catalogue").rglob("*.parquet"))[0]
    shutil.copyfile(part, outside)
    part.unlink()
    part.symlink_to(outside)


def _calibration_missing_ccds(folder: Path) -> None:
    path = _dataset_copy(folder) / "calibration" / "ccd.parquet"
    pq.write_table(pq.read_table(path).slice(3), path)


def _without_manifest(folder: Path) -> None:
    (_dataset_copy(folder) / "dataset.json").unlink()


def _manifest_without_files(folder: Path) -> None:
    (folder / "fake").mkdir()
    (folder / "fake" / "dataset.json").write_text('{"files": ["tm/a.tm"]}\n')


def _occupied(folder: Path) -> None:
    (folder / "busy").mkdir()
    (folder / "busy" / "notes.txt").write_text("an operator's notes\n")


CASES = [
    BadInput("malformed-toml", "malformed TOML spec", ("generate", "spec.toml", "--out", "new"), "not valid TOML",
             _text("spec.toml", "scale = = 1e-5\n")),
    BadInput("unknown-spec-key", "unknown spec key", ("generate", "spec.toml", "--out", "new"), "'colour'",
             _text("spec.toml", "colour = 3\n")),
    BadInput("negative-scale", "negative scale", ("generate", "spec.toml", "--out", "new"), "scale = -1e-05",
             _text("spec.toml", "scale = -1e-5\n")),
    BadInput("unknown-sky", "unknown sky model in the spec", ("generate", "spec.toml", "--out", "new"),
             "sky = 'galactic'", _text("spec.toml", 'sky = "galactic"\n')),
    BadInput("unknown-instrument", "unknown instrument in the spec", ("generate", "spec.toml", "--out", "new"),
             "instrument = 'perfect'", _text("spec.toml", 'instrument = "perfect"\n')),
    BadInput("drift-out-of-range", "calibration drift out of range in the fault plan",
             ("generate", "--faults", "plan.toml", "--out", "new"), "focus_drift = -0.1",
             _text("plan.toml", "focus_drift = -0.1\n")),
    BadInput("scale-above-1", "scale > 1", ("generate", "--scale", "2", "--out", "new"), "scale = 2"),
    BadInput("date-out-of-range", "date out of range (before the science period)",
             ("generate", "spec.toml", "--out", "new"), "date = 2013-01-01", _text("spec.toml", "date = 2013-01-01\n")),
    BadInput("days-run-past-the-end", "days running past the end of the mission",
             ("generate", "--date", "2025-01-15", "--days", "2", "--out", "new"), "date = 2025-01-15"),
    BadInput("missing-spec", "missing spec file", ("generate", "absent.toml", "--out", "new"), "absent.toml"),
    BadInput("unknown-level", "unknown level name", ("generate", "tinny", "--out", "new"), "tinny"),
    BadInput("unknown-plan", "unknown fault plan name", ("generate", "tiny", "--faults", "corupted_link", "--out",
                                                         "new"), "corupted_link"),
    BadInput("missing-fault-plan", "missing fault plan file (--faults)",
             ("generate", "--faults", "absent.toml", "--out", "new"), "absent.toml"),
    BadInput("missing-fault-plan-of-spec", "missing fault plan file named by the spec",
             ("generate", "spec.toml", "--out", "new"), "absent.toml", _text("spec.toml", 'faults = "absent.toml"\n')),
    BadInput("unknown-fault-plan-key", "unknown fault plan key", ("generate", "--faults", "plan.toml", "--out", "new"),
             "'bit_flips'", _text("plan.toml", "bit_flips = 0.01\n")),
    BadInput("fault-fraction-too-big", "fault plan value out of range",
             ("generate", "--faults", "plan.toml", "--out", "new"), "bit_flip = 0.9",
             _text("plan.toml", "bit_flip = 0.9\n")),
    BadInput("spec-faults-escape-dotdot", "spec naming a fault plan outside its folder ('..')",
             ("generate", "specs/spec.toml", "--out", "new"), "outside the spec's folder",
             _dotdot),
    BadInput("spec-faults-absolute", "spec naming a fault plan by an absolute path",
             ("generate", "spec.toml", "--out", "new"), "outside the spec's folder",
             _text("spec.toml", 'faults = "/etc/hostname"\n')),
    BadInput("spec-faults-symlink-out", "spec naming a fault plan through a link out of its folder",
             ("generate", "specs/spec.toml", "--out", "new"), "outside the spec's folder", _escaping_link),
    BadInput("spec-name-is-a-path", "spec name that is a path", ("generate", "spec.toml", "--out", "new"), "name = ",
             _text("spec.toml", 'name = "../../x"\n')),
    BadInput("generate-into-existing", "existing non-empty --out folder (generate)", ("generate", "--out", "day"),
             "already exists"),
    BadInput("run-missing-dataset", "missing dataset folder", ("run", "nowhere", "--out", "new"), "nowhere"),
    BadInput("run-dataset-without-tm", "dataset without tm/", ("run", "broken", "--out", "new"), "no tm/",
             _without_tm),
    BadInput("run-empty-day", "empty day (tm/ holds no TM files)", ("run", "broken", "--out", "new"), "no TM files",
             _empty_tm),
    BadInput("run-catalogue-missing-column", "wrong catalogue schema (a column missing)",
             ("run", "broken", "--out", "new"), "'ra_deg' is missing", _catalogue_without_ra),
    BadInput("run-catalogue-wrong-type", "wrong catalogue schema (a column of the wrong type)",
             ("run", "broken", "--out", "new"), "wrong schema", _catalogue_with_text_ra),
    BadInput("run-tm-link-out", "a TM file that is a link out of the dataset", ("run", "broken", "--out", "new"),
             "outside the dataset", _tm_link_out),
    BadInput("run-tm-fifo", "a FIFO (or device) in tm/", ("run", "broken", "--out", "new"), "FIFO", _tm_fifo),
    BadInput("run-catalogue-link-out", "a catalogue file that is a link out of the dataset",
             ("run", "broken", "--out", "new"), "outside the dataset", _catalogue_link_out),
    BadInput("run-calibration-missing-ccds", "a CCD calibration product missing CCDs",
             ("run", "broken", "--out", "new"), "135 CCDs calibrated, 138 expected", _calibration_missing_ccds),
    BadInput("run-without-manifest", "dataset without dataset.json (no day span)", ("run", "broken", "--out", "new"),
             "dataset.json", _without_manifest),
    BadInput("run-into-non-empty", "existing non-empty --out folder (run)", ("run", "day", "--out", "busy"),
             "--out folder", _occupied),
    BadInput("query-sql-error", "SQL error in gaiasim query", ("query", "run1", "select nope from transits"),
             "query failed"),
    BadInput("query-writes-a-file", "SQL that writes a file (COPY, EXPORT) in gaiasim query",
             ("query", "run1", "copy (select 1) to 'run1/x.csv'"), "read-only"),
    BadInput("query-attaches", "SQL that attaches a database or changes a setting in gaiasim query",
             ("query", "run1", "attach 'new.db'"), "--unrestricted"),
    BadInput("query-reads-outside", "SQL that reads a file outside the run and its dataset",
             ("query", "run1", "select * from read_csv('/etc/passwd')"), "reads only the run and its dataset"),
    BadInput("query-missing-run", "query on a missing run folder", ("query", "nowhere", "select 1"), "run.json"),
    BadInput("query-not-a-run", "query on a folder that is not a run", ("query", "day", "select 1"), "run.json"),
    BadInput("validate-missing-run", "validate a missing run folder", ("validate", "nowhere", "--no-history"),
             "run.json"),
    BadInput("run-unknown-sut", "unknown SUT spec", ("run", "day", "--out", "new", "--sut", "java:idt.jar"),
             "unknown SUT spec 'java:idt.jar'"),
    BadInput("run-sut-command-missing", "a SUT command that does not exist",
             ("run", "day", "--out", "new", "--sut", "cmd:idt-daily {dataset} {out}"), "'idt-daily' not found"),
    BadInput("run-sut-without-out", "a SUT command line without {out}",
             ("run", "day", "--out", "new", "--sut", "cmd:idt-daily {dataset}"), "has no {out}"),
    BadInput("run-sut-unknown-placeholder", "a SUT command line with an unknown placeholder",
             ("run", "day", "--out", "new", "--sut", "cmd:idt-daily {dataset} {out} {date}"), "{date}"),
    BadInput("run-sut-wheel-missing", "a venv SUT whose wheel does not exist",
             ("run", "day", "--out", "new", "--sut", "venv:dist/gaiasim-9.9.9-py3-none-any.whl"), "not found"),
    BadInput("conform-missing-run", "conform a missing run folder", ("conform", "nowhere"), "not found"),
    BadInput("approve-missing-diff", "approve a comparison that does not exist",
             ("baseline", "approve", "absent.json", "--reason", "expected"), "absent.json"),
    BadInput("approve-not-a-diff", "approve a file that is not a comparison",
             ("baseline", "approve", "run1/run.json", "--reason", "expected"), "not a comparison"),
    BadInput("verify-not-a-dataset", "verify a folder that is not a dataset", ("verify", "run1"), "dataset.json"),
    BadInput("verify-manifest-without-files", "verify a dataset whose dataset.json has no table of files",
             ("verify", "fake"), "'files'", _manifest_without_files),
]


_HELD: list[int] = []  # lock descriptors held for the test session, as another gaiasim run would


def _run_in_progress(folder: Path) -> None:
    """``active``: a run folder another process is writing into (it holds the folder's lock)."""
    (folder / "active").mkdir()
    fd = os.open(folder / "active" / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _HELD.append(fd)


def _stopped_run(folder: Path) -> None:
    """``partial``: a copy of the demo run whose run.json says it stopped before it completed."""
    shutil.copytree(folder / "run1", folder / "partial")
    info = json.loads((folder / "partial" / "run.json").read_text())
    (folder / "partial" / "run.json").write_text(json.dumps({**info, "status": "running"}))


def _run_being_written(folder: Path) -> None:
    """``partial``, its folder locked by another process, as a run in progress holds it."""
    _stopped_run(folder)
    fd = os.open(folder / "partial" / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _HELD.append(fd)


CASES += [
    BadInput("validate-stopped-run", "validate a run that stopped before it completed",
             ("validate", "partial", "--no-history"), "stopped before it completed", _stopped_run),
    BadInput("validate-run-in-progress", "validate a run still being written", ("validate", "partial", "--no-history"),
             "is writing it now", _run_being_written),
    BadInput("run-concurrent", "a second run into a folder a run is writing (locked)",
             ("run", "day", "--out", "active"), "in use by another gaiasim run", _run_in_progress),
    BadInput("run-into-another-run", "a run into the folder of another day's run", ("run", "day2", "--out", "run1"),
             "other inputs", lambda folder: (folder / "day2").symlink_to(_second_day(), target_is_directory=True)),
]


def _second_day() -> Path:
    """The faulty demo day (another dataset than ``day``), made once per session by the fixture below."""
    return _SECOND_DAY[0]


_SECOND_DAY: list[Path] = []


@pytest.fixture(autouse=True)
def _second_dataset(faulty_run):
    _SECOND_DAY[:] = [faulty_run[0]]


def tree_digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (links followed), and every folder, by relative path."""
    out = {}
    for root, dirs, files in os.walk(folder, followlinks=True):
        for d in dirs:
            out[str(Path(root, d).relative_to(folder)) + "/"] = "dir"
        for f in files:
            path = Path(root, f)
            if path.is_file():
                out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:  # a FIFO or a link to nothing: never read (a FIFO would block)
                out[str(path.relative_to(folder))] = f"not a file: {path.lstat().st_mode:o}"
    return out


@pytest.fixture
def case_folder(tmp_path, demo_run, monkeypatch) -> Path:
    """A folder with ``day`` and ``run1`` linked to the demo dataset and run; the working directory."""
    dataset, run_dir = demo_run
    folder = tmp_path / "case"
    folder.mkdir()
    (folder / "day").symlink_to(dataset, target_is_directory=True)
    (folder / "run1").symlink_to(run_dir, target_is_directory=True)
    monkeypatch.chdir(folder)
    return folder


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_exits_2_with_one_line_and_changes_nothing(case_folder, case):
    if case.setup:
        case.setup(case_folder)
    before = tree_digest(case_folder)
    result = CliRunner().invoke(main, list(case.args))
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output} {result.exception!r}"
    assert len(lines) == 1, f"expected one error line, got {lines}"
    assert lines[0].startswith("gaiasim: error: "), lines[0]
    assert case.word in lines[0], f"{case.word!r} not in {lines[0]!r}"
    after = tree_digest(case_folder)
    changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    assert not changed, f"{case.what}: existing files changed: {changed}"
    assert after.keys() == before.keys(), (f"{case.what}: left behind {sorted(after.keys() - before.keys())}, "
                                           f"removed {sorted(before.keys() - after.keys())}")


def test_spec_fault_plan_inside_its_folder_still_loads(tmp_path):
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "p.toml").write_text("bit_flip = 0.01\n")
    (tmp_path / "spec.toml").write_text('faults = "plans/../plans/p.toml"\n')
    _spec, faults = load_spec(tmp_path / "spec.toml")
    assert faults == (tmp_path / "plans" / "p.toml").resolve()


@pytest.mark.parametrize("name", ["a/b", "..", ".hidden", "", "x" * 65, "day\n1", "C:\\x"])
def test_spec_name_must_be_a_label(tmp_path, name):
    (tmp_path / "spec.toml").write_text(f"name = {json.dumps(name)}\n")  # JSON escapes are TOML's
    with pytest.raises(SpecError, match="name = "):
        load_spec(tmp_path / "spec.toml")


def test_verify_never_reads_a_file_a_tampered_manifest_names_outside_the_dataset(demo_run, tmp_path, monkeypatch):
    from gaiasim import dataset as ds

    copy = tmp_path / "dataset"
    shutil.copytree(demo_run[0], copy)
    secret = tmp_path / "secret.txt"
    secret.write_text("not the dataset's\n")
    manifest = json.loads((copy / "dataset.json").read_text())
    manifest["files"]["../secret.txt"] = hashlib.sha256(secret.read_bytes()).hexdigest()
    manifest["files"][str(secret)] = "0" * 64
    (copy / "dataset.json").write_text(json.dumps(manifest))
    read = []
    real = ds.io.sha256_file
    monkeypatch.setattr(ds.io, "sha256_file", lambda path, *a: read.append(Path(path).resolve()) or real(path, *a))
    result = CliRunner().invoke(main, ["verify", str(copy)])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert sorted(lines) == sorted(f"{copy}/{n}: outside the dataset (a manifest must name the dataset's own files)"
                                   for n in ("../secret.txt", str(secret))), lines
    assert secret.resolve() not in read, "verify read a file outside the dataset"
    assert read and all(p.is_relative_to(copy.resolve()) for p in read)


def test_the_readme_table_lists_every_case_and_only_them():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### Bad inputs"):]
    section = section[:min(section.index("\n## "), section.index("\n### ", 1))]  # up to the next heading
    rows = [line.split(" | ")[0].lstrip("| ").strip() for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| input") and not line.startswith("| ---")]
    assert sorted(rows) == sorted(c.what for c in CASES)
