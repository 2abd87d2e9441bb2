"""A workspace caches datasets and runs by spec hash, so feature runs never regenerate what they have.

Layout: ``<root>/datasets/<spec-hash>/`` and ``<root>/runs/<dataset-hash>/``. Both are created
atomically (by ``generate`` and ``run``), so an entry that exists is complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from gaiasim.sim.generate import generate
from gaiasim.spec import DaySpec, SpecError, load_spec, make_spec
from gaiasim.validate import checks, db
from pipeline.run import RUN_JSON, run

#: The repository's datasets/ folder (levels and fault plans).
DATASETS = Path(__file__).resolve().parents[1] / "datasets"


def default_root() -> Path:
    """``$GAIASIM_WORKSPACE`` or ``~/.cache/gaiasim``."""
    return Path(os.environ.get("GAIASIM_WORKSPACE", Path.home() / ".cache" / "gaiasim"))


def level_spec(level: str, seed: int | None = None, faults: str | None = None) -> tuple[DaySpec, Path | None]:
    """The spec of a dataset level (datasets/levels/<level>.toml), optionally with another seed and a
    fault plan named after datasets/faults/<faults>.toml."""
    path = DATASETS / "levels" / f"{level}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in (DATASETS / "levels").glob("*.toml"))
        raise SpecError(f"unknown dataset level {level!r}; known levels: {', '.join(known)}")
    spec, faults_path = load_spec(path)
    if faults:
        faults_path = DATASETS / "faults" / f"{faults}.toml"
        if not faults_path.is_file():
            known = sorted(p.stem for p in (DATASETS / "faults").glob("*.toml"))
            raise SpecError(f"unknown fault plan {faults!r}; known plans: {', '.join(known)}")
    if seed is not None:
        spec = make_spec(**{**spec.to_json(), "seed": seed})
    return spec, faults_path


def _key(spec: DaySpec, faults_path: Path | None) -> str:
    h = hashlib.sha256(spec.digest().encode())
    if faults_path:
        h.update(faults_path.read_bytes())
    return h.hexdigest()[:16]


def dataset_for(level: str, seed: int | None = None, faults: str | None = None, root: Path | None = None) -> Path:
    """The dataset of a level (generated once, then reused)."""
    spec, faults_path = level_spec(level, seed, faults)
    folder = (root or default_root()) / "datasets" / _key(spec, faults_path)
    if not folder.is_dir():
        generate(spec, folder, faults_path)
    return folder


def run_for(dataset: Path, root: Path | None = None) -> Path:
    """The pipeline run over ``dataset`` (run once, then reused; a partial run is redone)."""
    folder = (root or default_root()) / "runs" / Path(dataset).name
    if not (folder / RUN_JSON).is_file():
        shutil.rmtree(folder, ignore_errors=True)
        run(dataset, folder)
    return folder


def check(run_dir: Path, name: str) -> checks.Result:
    """Evaluate the check called ``name`` on a run against its dataset's truth."""
    con = db.connect(run_dir)
    return checks.evaluate(con, checks.get(name), db.has_truth(con))
