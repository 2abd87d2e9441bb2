"""The daily operations runbook (datasets/runbooks/daily_ops_checks.ipynb), executed with papermill on the
demo day: it completes on the good run and fails, naming REQ-E2E-001, on a copy of it that lost a transit.

papermill and ipykernel are the ``runbook`` extra, kept out of ``test`` (about 15 s more on a fresh pip
install): without them the notebook tests skip; ``nox -s runbook`` installs the extra and runs them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gaiasim.validate import checks, db, history, scorecard
from gaiasim.validate.report_plots import day_start_ns
from tests.runs import rewrite_table

RUNBOOKS = Path(__file__).resolve().parents[2] / "datasets" / "runbooks"
NOTEBOOK = RUNBOOKS / "daily_ops_checks.ipynb"
#: A kernelspec of this interpreter, in a scratch Jupyter path: a python3 kernelspec of the user's (or
#: another environment's) could start an interpreter without gaiasim.
KERNEL = "gaiasim-runbook-test"


def test_library_calls_leave_the_connection_free_for_queries(demo_run):
    """The runbook runs con.sql(...) right after has_truth and day_start_ns: DuckDB 2 refuses a new relation
    while an earlier result of the connection is unfinished."""
    _, run_dir = demo_run
    con = db.connect(run_dir)
    try:
        assert db.has_truth(con)
        assert con.sql("SELECT 1").fetchall() == [(1,)]
        assert day_start_ns(con) > 0
        assert con.sql("SELECT 2").fetchall() == [(2,)]
    finally:
        con.close()


def test_the_notebook_is_what_its_script_writes():
    nbformat = pytest.importorskip("nbformat", reason="the runbook extra: pip install -e '.[runbook]'")
    done = subprocess.run([sys.executable, str(RUNBOOKS / "make_daily_ops_checks.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit the notebook without outputs"
    assert [c.id for c in code if "parameters" in c.metadata.get("tags", [])] == [code[0].id] == ["parameters"]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    pytest.importorskip("papermill", reason="the runbook extra: pip install -e '.[runbook]' (or nox -s runbook)")
    pytest.importorskip("ipykernel", reason="the runbook extra: pip install -e '.[runbook]' (or nox -s runbook)")
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "gaiasim runbook test", "language": "python"}))
    with pytest.MonkeyPatch.context() as patch:  # nothing written under the home folder
        patch.setenv("JUPYTER_PATH", str(root))
        patch.setenv("JUPYTER_RUNTIME_DIR", str(root / "runtime"))
        patch.setenv("IPYTHONDIR", str(root / "ipython"))
        yield KERNEL


def execute(kernel: str, out: Path, **parameters: str):
    import papermill

    return papermill.execute_notebook(str(NOTEBOOK), str(out), parameters=parameters, kernel_name=kernel,
                                      progress_bar=False, log_output=False, cwd=str(out.parent),
                                      execution_timeout=300)


def cell_text(nb, cell_id: str) -> str:
    """What a cell of an executed notebook printed (streams, plain-text displays, errors)."""
    cell = next(c for c in nb.cells if c.get("id") == cell_id)
    parts = []
    for o in cell.outputs:
        if o.output_type == "stream":
            parts.append(o.text)
        elif o.output_type == "error":
            parts.append(f"{o.ename}: {o.evalue}")
        else:
            parts.append(o.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def test_runbook_is_green_on_the_demo_day(demo_run, kernel, tmp_path):
    _, run_dir = demo_run
    # A results database holding today's validation, for the trends cell.
    con = db.connect(run_dir)
    results = checks.evaluate_all(con, db.has_truth(con))
    history.append(tmp_path / "history.duckdb", db.read_run_info(run_dir), run_dir, results, scorecard.scorecard(con))
    con.close()
    nb = execute(kernel, tmp_path / "out.ipynb", run_dir=str(run_dir), history_db=str(tmp_path / "history.duckdb"))
    assert f"{checks.tally(results)}; detection scorecard complete" in cell_text(nb, "checks")
    assert "REQ-E2E-001" in cell_text(nb, "trends") and "skipped" not in cell_text(nb, "trends")
    assert f"green day: {checks.tally(results)}" in cell_text(nb, "verdict")


def test_runbook_fails_naming_the_requirement_on_a_day_that_lost_a_transit(demo_run, kernel, tmp_path):
    import papermill

    _, run_dir = demo_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    rewrite_table(copy, "transits", lambda t: t.slice(1))  # the first transit is gone
    with pytest.raises(papermill.PapermillExecutionError) as failure:
        execute(kernel, tmp_path / "out.ipynb", run_dir=str(copy), history_db=str(tmp_path / "none.duckdb"))
    assert failure.value.ename == "AssertionError"
    assert "REQ-E2E-001 (transits_complete): measured 1 transits, must be == 0" in failure.value.evalue
    # Every cell before the verdict ran: the day is red on its checks, not on a broken runbook.
    import nbformat

    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert "red day: 1 of" in cell_text(nb, "verdict")
    assert [c.id for c in nb.cells if any(o.output_type == "error" for o in c.get("outputs", []))] == ["verdict"]
