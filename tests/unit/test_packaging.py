"""What the wheel ships: every package of the source tree, the harness's datasets/ (levels, fault plans,
campaigns, tolerances, runbooks) as ``gaiasim/datasets`` and the pipeline's own configuration as
``pipeline.data``, all found by name wherever gaiasim is installed. (CI builds the wheel, installs it into a
fresh environment outside the checkout and runs the demo from there: .ci/run.)"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from gaiasim import packaged
from gaiasim.cli import main
from gaiasim.spec import SpecError
from pipeline import alerts, limits, lsf
from pipeline.data import packaged as pipeline_data

REPO = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def _folder(package: str) -> Path:
    """The source folder of ``package`` (gaiasim.datasets.* are mapped onto datasets/)."""
    for mapped, folder in SETUPTOOLS["package-dir"].items():
        if package == mapped or package.startswith(mapped + "."):
            return REPO / folder / package[len(mapped) + 1:].replace(".", "/")
    return REPO / package.replace(".", "/")


def test_every_package_of_the_source_tree_is_in_the_wheel():
    code = {".".join(p.parent.relative_to(REPO).parts) for top in ("gaiasim", "pipeline")
            for p in (REPO / top).rglob("__init__.py")}
    data = {"gaiasim.datasets"} | {f"gaiasim.datasets.{p.name}" for p in (REPO / "datasets").iterdir() if p.is_dir()}
    assert set(SETUPTOOLS["packages"]) == code | data


def test_every_data_file_matches_a_package_data_pattern():
    shipped = [p for p in SETUPTOOLS["packages"] if p.startswith("gaiasim.datasets.") or p == "pipeline.data"]
    for package in shipped:
        folder, patterns = _folder(package), SETUPTOOLS["package-data"].get(package, [])
        data = [p.name for p in folder.iterdir() if p.is_file() and p.suffix in (".toml", ".csv", ".ipynb")]
        assert data, f"no data files in {folder}"
        missing = [name for name in data if not any(fnmatch.fnmatch(name, pat) for pat in patterns)]
        assert not missing, f"{package}: not shipped: {missing}; add a pattern to [tool.setuptools.package-data]"
    loose = [p.name for p in (REPO / "datasets").iterdir() if p.is_file()]
    assert not loose, f"files directly in datasets/ are not shipped: {loose}; put them in a subfolder"


def test_the_pipeline_reads_its_configuration_as_package_data():
    for source in (lsf.LSF_TABLE_PATH, limits.default_limits_path(), alerts.DEFAULT_CONFIG_PATH):
        assert Path(str(source)).parent == REPO / "pipeline" / "data"
        assert source.is_file()
    assert pipeline_data("hk_limits.toml").read_text() == (REPO / "pipeline/data/hk_limits.toml").read_text()


def test_levels_plans_and_campaigns_are_found_by_name():
    assert packaged.DATASETS == REPO / "datasets"  # a source checkout
    assert {"tiny", "small", "medium", "day"} <= set(packaged.names("levels"))
    assert packaged.named("faults", "corrupted_link") == REPO / "datasets" / "faults" / "corrupted_link.toml"
    assert packaged.file_or_named("campaigns", "e2e") == REPO / "datasets" / "campaigns" / "e2e.toml"
    assert packaged.file_or_named("levels", "my/small.toml") == Path("my/small.toml")  # a path stays a path
    known = r"known: calibration_drift, corrupted_link, .*transients$"
    with pytest.raises(SpecError, match=r"^unknown fault plan 'corupted_link'; " + known):
        packaged.named("faults", "corupted_link")
    with pytest.raises(SpecError, match=r"; known: e2e, rehearsal \(or give the path of a TOML file\)$"):
        packaged.file_or_named("campaigns", "nightly")


def test_generate_takes_a_level_and_a_plan_by_name():
    result = CliRunner().invoke(main, ["generate", "tiny", "--faults", "corrupted_link", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "transits" in result.output
    result = CliRunner().invoke(main, ["generate", "tinny", "--dry-run"])
    assert result.exit_code == 2
    assert result.stderr.strip() == ("gaiasim: error: unknown dataset level 'tinny'; known: day, medium, small, "
                                     "tiny (or give the path of a TOML file)")
