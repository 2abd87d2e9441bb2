"""A workspace caches datasets and runs by spec hash, so feature runs never regenerate what they have.

Layout: ``<root>/datasets/<spec-and-code-hash>/`` and ``<root>/runs/<dataset-hash>-<SUT-identity-hash>/``.
A dataset is created atomically (by ``generate``), so one that exists is complete; a run of the builtin
pipeline that was stopped is resumed, a command SUT's is made again. The code hash and the system under
test's identity (:mod:`gaiasim.sut`: adapter, version or digest, configuration) make a changed simulator
or SUT start afresh.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gaiasim import dataset as ds
from gaiasim import packaged, replay
from gaiasim import sut as suts
from gaiasim.sim.generate import generate
from gaiasim.spec import DaySpec, load_spec, make_spec
from gaiasim.validate import checks, db
from gaiasim.validate.scorecard import Scorecard
from gaiasim.validate.scorecard import scorecard as score
from pipeline import schemas
from pipeline.io import sha256_file

#: ``$GAIASIM_WORKSPACE`` or ``~/.cache/gaiasim`` (shared with the venv SUTs' environments).
default_root = suts.cache_root


def level_spec(level: str, seed: int | None = None, faults: str | None = None,
               days: int | None = None) -> tuple[DaySpec, Path | None]:
    """The spec of a dataset level (datasets/levels/<level>.toml), optionally with another seed, another
    number of days and a fault plan named after datasets/faults/<faults>.toml."""
    spec, faults_path = load_spec(packaged.named("levels", level))
    if faults:
        faults_path = packaged.named("faults", faults)
    overrides = {k: v for k, v in (("seed", seed), ("days", days)) if v is not None}
    if overrides:
        spec = make_spec(**{**spec.to_json(), **overrides})
    return spec, faults_path


def _key(spec: DaySpec, faults_path: Path | None) -> str:
    """A dataset's cache key: its spec, its fault plan and the simulator's code (a changed simulator
    makes new datasets instead of reusing old ones)."""
    h = hashlib.sha256(spec.digest().encode() + ds.code_version().encode())
    if faults_path:
        h.update(faults_path.read_bytes())
    return h.hexdigest()[:16]


def dataset_for(level: str, seed: int | None = None, faults: str | None = None, root: Path | None = None,
                days: int | None = None) -> Path:
    """The dataset of a level (generated once, then reused)."""
    spec, faults_path = level_spec(level, seed, faults, days)
    folder = (root or default_root()) / "datasets" / _key(spec, faults_path)
    if not folder.is_dir():
        generate(spec, folder, faults_path)
    return folder


def _sut_key(system: suts.SUT) -> str:
    return hashlib.sha256(system.identity().encode()).hexdigest()[:12]


def run_for(dataset: Path, root: Path | None = None, system: suts.SUT | None = None) -> Path:
    """The run over ``dataset`` by ``system`` (default: the builtin pipeline), made once, then reused;
    a changed SUT makes a run of its own. A stopped builtin run is resumed; what a command SUT left
    unfinished is removed and made again."""
    system = system or suts.Builtin()
    folder = (root or default_root()) / "runs" / f"{Path(dataset).name}-{_sut_key(system)}"
    if system.adapter != "builtin" and folder.exists() and suts.finished(system, folder, dataset) is None:
        shutil.rmtree(folder)
    system.run(dataset, folder)  # returns at once when the run is complete
    return folder


def watched_run_for(dataset: Path, speed: float, root: Path | None = None, system: suts.SUT | None = None) -> Path:
    """A fresh run of ``dataset`` by ``system`` (default: the builtin pipeline) in watch mode while its pass
    files are replayed into an inbox at ``speed`` x real time (``gaiasim replay`` + ``gaiasim run
    --watch``); the run folder."""
    system = system or suts.Builtin()
    folder = (root or default_root()) / "watched" / Path(dataset).name
    inbox = folder.with_name(f"{folder.name}-inbox")
    for path in (folder, inbox):
        shutil.rmtree(path, ignore_errors=True)
    inbox.mkdir(parents=True)
    n_files = len(list((Path(dataset) / "tm").glob("*.tm")))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay") as pool:
        delivering = pool.submit(replay.replay, dataset, inbox, speed)
        system.watch(dataset, inbox, folder, max_files=n_files, poll_s=0.05, idle_exit_s=120.0)
        delivering.result()
    return folder


def regeneration_differences(dataset: Path) -> list[str]:
    """Generate ``dataset``'s spec again into a scratch folder; the files whose SHA-256 differ."""
    manifest = ds.read_manifest(dataset)
    spec = make_spec(**manifest["spec"])
    plan = Path(manifest["faults_plan"]) if manifest.get("faults_plan") else None
    with tempfile.TemporaryDirectory(dir=Path(dataset).parent) as tmp:
        generate(spec, Path(tmp) / "again", plan)
        theirs = ds.read_manifest(Path(tmp) / "again")["files"]
    return sorted(name for name in set(manifest["files"]) | set(theirs)
                  if manifest["files"].get(name) != theirs.get(name))


def rerun_differences(run_dir: Path, system: suts.SUT | None = None) -> list[str]:
    """Run ``system`` (default: the one run.json names, else the builtin pipeline) again over ``run_dir``'s
    dataset into a scratch folder; the output tables whose Parquet bytes differ (run.json is left out: it
    holds timings)."""
    info = db.read_run_info(run_dir)
    system = system or suts.parse((info.get("sut") or {}).get("spec"))
    with tempfile.TemporaryDirectory(dir=Path(run_dir).parent) as tmp:
        system.run(Path(info["dataset"]), Path(tmp) / "again")
        differ = [name for name in schemas.RUN_TABLES
                  if _digests(Path(run_dir) / name) != _digests(Path(tmp) / "again" / name)]
    return differ


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(Path(folder).rglob("*.parquet"))}


def scorecard(run_dir: Path) -> Scorecard:
    """The detection scorecard of a run against its dataset's fault ledger."""
    return score(db.connect(run_dir))


def check(run_dir: Path, name: str) -> checks.Result:
    """Evaluate the check called ``name`` on a run against its dataset's truth."""
    con = db.connect(run_dir)
    return checks.evaluate(con, checks.get(name), db.has_truth(con))
