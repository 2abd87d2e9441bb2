"""The harness judges the system under test through the run contract alone: the import rules of
pyproject.toml ([tool.importlinter], run by nox -s lint) hold, and every pipeline module is classified."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = {c["id"]: c for c in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
             ["contracts"]}
#: The builtin adapter's entry points: what gaiasim.sut and gaiasim.executors call to run the pipeline.
BUILTIN_ADAPTER = {"pipeline.run", "pipeline.watch", "pipeline.config", "pipeline.executor", "pipeline.version"}


def _pipeline_modules() -> set[str]:
    names = set()
    for path in (REPO / "pipeline").glob("*.py"):
        if path.stem != "__init__":
            names.add(f"pipeline.{path.stem}")
    return names | {"pipeline.kernels", "pipeline.data"}


def test_the_import_rules_hold():
    done = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
                           "sys.exit(lint_imports(no_logo=True, no_cache=True))"],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_every_pipeline_module_is_contract_builtin_adapter_or_forbidden_to_the_harness():
    contract = set(CONTRACTS["contract-stands-alone"]["source_modules"])
    forbidden = set(CONTRACTS["harness-judges-the-contract"]["forbidden_modules"])
    modules = _pipeline_modules()
    assert not contract & forbidden and not BUILTIN_ADAPTER & (contract | forbidden)
    unclassified = modules - contract - forbidden - BUILTIN_ADAPTER
    assert not unclassified, f"classify these in pyproject.toml [tool.importlinter]: {sorted(unclassified)}"
    # What the contract modules must not import: everything of the pipeline that is not the contract.
    assert set(CONTRACTS["contract-stands-alone"]["forbidden_modules"]) >= modules - contract - {"pipeline.kernels"}


def test_a_harness_import_of_pipeline_internals_breaks_the_rules(tmp_path):
    """The rule can fail: a copy of the tree whose comparison imports the pipeline's geometry breaks it."""
    import shutil

    for name in ("gaiasim", "pipeline", "steps"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    compare = tmp_path / "gaiasim" / "compare.py"
    compare.write_text(compare.read_text().replace("from pipeline import io, schemas",
                                                   "from pipeline import geometry, io, schemas"))
    done = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
                           "sys.exit(lint_imports(no_logo=True, no_cache=True))"],
                          cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "gaiasim.compare -> pipeline.geometry" in done.stdout, done.stdout[-3000:]
