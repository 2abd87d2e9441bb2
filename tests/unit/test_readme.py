"""Every command and SQL example of the README runs, so the README cannot rot.

The README's fenced ``bash`` and ``sql`` blocks are read from the file itself and run as a reader would,
with one change: the examples write to ``/tmp``, the test points them at a folder of its own.

- The first two commands (install and demo, install and test) are what CI itself runs (``.ci/run`` runs the
  test command; ``.ci/wheel`` the demo from the wheel), not run again here.
- "A 5-minute tour", the dry run, every SQL example (against the tour's ``/tmp/bad-run``), "Rehearsals" and
  "Formats for the operations centre", in that order in one folder, as a reader runs them top to bottom.
- "Testing your own pipeline" in a fresh folder; its last line, the e2e campaign (two minutes), is marked
  ``slow`` (``nox -s readme`` runs every example, that one included).

The ``gaiasim`` that runs is the one on ``PATH``, else the one beside this Python. The tests are marked
``readme``, which the default run leaves out (three minutes of commands on 2 cores): CI runs them against
the wheel, installed outside the checkout and first on ``PATH`` (``.ci/wheel``), and ``nox -s readme``
against this tree.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.readme

README = Path(__file__).resolve().parents[2] / "README.md"
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
TIMEOUT_S = 900


def blocks() -> list[tuple[str, str, str]]:
    """(section heading, language, text) of every fenced block of the README, in order."""
    text = README.read_text()
    out = []
    for m in _BLOCK.finditer(text):
        headings = re.findall(r"^## (.+)$", text[: m.start()], re.MULTILINE)
        out.append((headings[-1] if headings else "", m.group(1), m.group(2)))
    return out


def section(heading: str, language: str = "bash") -> list[str]:
    found = [text for h, lang, text in blocks() if h == heading and lang == language]
    assert found, f"the README has no {language} block under '## {heading}'"
    return found


def _env(folder: Path) -> dict[str, str]:
    env = dict(os.environ, GAIASIM_HISTORY=str(folder / "history.duckdb"), NO_COLOR="1")
    if shutil.which("gaiasim") is None:
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_bash(script: str, folder: Path) -> subprocess.CompletedProcess:
    """``script`` with /tmp pointed at ``folder``, under ``set -eu``, waiting for what it started in the
    background; fails the test with the output on any error."""
    script = script.replace("/tmp/", f"{folder}/")
    done = subprocess.run(["bash", "-c", f"set -eu\n{script}\nwait"], cwd=folder, env=_env(folder),
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, \
        f"exit {done.returncode}\n{script}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    return done


def gaiasim(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["gaiasim", *args], cwd=folder, env=_env(folder), capture_output=True, text=True,
                          timeout=TIMEOUT_S)


def test_the_readme_starts_with_the_two_commands_ci_runs():
    first, second = blocks()[:2]
    assert first[2].strip().endswith("gaiasim demo")
    assert second[2].strip().endswith("python -m pytest -n auto")
    ci = (README.parent / ".ci" / "run").read_text()
    assert "pip install --quiet -e '.[test]' && python -m pytest -n auto" in ci, "CI runs the README's test command"


def test_the_tour_the_queries_and_the_rehearsal_run_as_written(tmp_path):
    for script in section("A 5-minute tour"):
        run_bash(script, tmp_path)
    for sql_block in section("Querying a run", "sql"):
        for statement in duckdb.extract_statements(sql_block):
            text = statement.query.strip()
            done = gaiasim(tmp_path, "query", str(tmp_path / "bad-run"), "--format", "csv", "--", text)
            assert done.returncode == 0, f"{text}\n{done.stderr}"
            rows = list(csv.reader(io.StringIO(done.stdout, newline="")))
            if "should be empty" in text:  # its comment, which DuckDB keeps with the statement
                assert rows[1:] == [], f"{text}: {rows[1:6]}"
            else:
                assert rows[1:], f"{text}: no rows"
    rehearsal = run_bash(section("Rehearsals: replay, watch, compare, report, history")[0], tmp_path)
    assert (tmp_path / "day.html").is_file()
    assert "runs agree within tolerance" in rehearsal.stdout, "the watch ends with the batch run's bytes"
    run_bash(section("Formats for the operations centre")[0], tmp_path)
    assert (tmp_path / "icd.xml").is_file() and (tmp_path / "alerts.avro").is_file()
    assert (tmp_path / "gaiasim.prom").read_text().rstrip().endswith("# EOF")


def _own_pipeline_script() -> str:
    (script,) = section("Testing your own pipeline")
    return script


def test_testing_your_own_pipeline_runs_as_written(tmp_path):
    script = _own_pipeline_script()
    fast = "\n".join(line for line in script.splitlines() if not line.startswith("gaiasim campaign "))
    assert fast != script, "the block's campaign line moved: keep this test's split in step"
    run_bash(fast, tmp_path)
    assert (tmp_path / "diff.json").is_file()


@pytest.mark.slow
def test_testing_your_own_pipeline_with_its_campaign(tmp_path):
    run_bash(_own_pipeline_script(), tmp_path)
    assert (tmp_path / "campaign" / "campaign.json").is_file()
