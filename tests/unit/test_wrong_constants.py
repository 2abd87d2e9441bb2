"""A wrong constant in the system under test must turn validation red.

Each case copies the pipeline's source tree, changes one constant of its instrument knowledge (never the
simulator's: the two share no code), runs the copy as a command SUT over a small day and validates it.
Cases the checks cannot see yet are strict xfails: the day they are caught, the test says so and the
marker goes. Measured at 8ddaea4 on the small day, seed 42: a 1 % gain error gives a G bias of
0.0110 mag, a 1 % flux zero-point error (0.0108 mag) 0.0110 mag too (REQ-PHOT-001 allows 0.01); a 1 % AL pixel scale
and 20 % more AF read noise leave every check green.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from gaiasim import sut, workspace
from gaiasim.cli import main

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Mutant:
    file: str  # in pipeline/
    old: str
    new: str
    breaks: frozenset[str]  # requirements that must fail


MUTANTS = {
    "none": Mutant("calibration.py", "", "", frozenset()),
    "gain+1%": Mutant("calibration.py", "gain_adu_per_e: float = 0.258", "gain_adu_per_e: float = 0.26058",
                      frozenset({"REQ-PHOT-001"})),
    "zero-point+1%": Mutant("calibration.py", "zero_point_g_mag: float = 25.6874", "zero_point_g_mag: float = 25.6982",
                            frozenset({"REQ-PHOT-001"})),
    "pixel-scale+1%": Mutant("geometry.py", "PIXEL_AL_RAD = 58.933 * MAS_RAD", "PIXEL_AL_RAD = 59.522 * MAS_RAD",
                             frozenset({"REQ-IPD-006"})),
    "af-read-noise+20%": Mutant("calibration.py", "{name: 4.3 for name in geometry.AF_STRIPS[1:]}",
                                "{name: 5.16 for name in geometry.AF_STRIPS[1:]}", frozenset({"REQ-IPD-007"})),
    "strip-timing+10ms": Mutant("geometry.py", "STRIP_PITCH_TDI_LINES = 4935", "STRIP_PITCH_TDI_LINES = 4945",
                                frozenset({"REQ-IPD-006"})),
}
NOT_YET: dict[str, str] = {}


@pytest.fixture(scope="module")
def small_day(tmp_path_factory) -> Path:
    return workspace.dataset_for("small", 42, root=tmp_path_factory.mktemp("workspace"))


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A copy of the pipeline's sources; each case edits one file and puts it back (numba's cache of the
    copy's kernels is kept between cases: they are compiled once)."""
    root = tmp_path_factory.mktemp("mutant")
    shutil.copytree(REPO / "pipeline", root / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=NOT_YET[n]))
                                  if n in NOT_YET else n for n in MUTANTS])
def test_a_wrong_pipeline_constant_turns_validation_red(name, small_day, tree, tmp_path):
    mutant = MUTANTS[name]
    source = tree / "pipeline" / mutant.file
    original = source.read_text()
    assert mutant.old in original, f"{mutant.old!r} is no longer in pipeline/{mutant.file}: update the case"
    try:
        source.write_text(original.replace(mutant.old, mutant.new))
        script = shlex.quote(str(REPO / "tests" / "suts" / "mutant.py"))
        system = sut.parse(f"cmd:{shlex.quote(sys.executable)} {script} {shlex.quote(str(tree))} {{dataset}} {{out}}")
        system.run(small_day, tmp_path / "run")
    finally:
        source.write_text(original)
    junit = tmp_path / "validation.xml"
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "run"), "--no-history", "--junit", str(junit)])
    failed = {c.get("classname") for c in ET.parse(junit).getroot().iter("testcase") if c.find("failure") is not None}
    if not mutant.breaks:
        assert result.exit_code == 0 and not failed, f"the unchanged copy fails {failed}"
    elif mutant.breaks == {"any"}:
        assert failed, f"{name}: every check passed"
    else:
        assert mutant.breaks <= failed, f"{name}: failed {sorted(failed)}, expected {sorted(mutant.breaks)}"
