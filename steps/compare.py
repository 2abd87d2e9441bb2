"""Steps of the baseline comparison: a candidate build's run of a day against the operational one."""

from __future__ import annotations

from pathlib import Path

from pytest_bdd import then, when

from gaiasim import compare, workspace


@when("a candidate build of the pipeline processes the same day", target_fixture="candidate_run_dir")
def _(dataset: Path, tmp_path: Path) -> Path:
    # A workspace of its own: a fresh run of the same dataset, next to the cached baseline run.
    return workspace.run_for(dataset, root=tmp_path / "candidate")


@when("the candidate's outputs are compared with the operational baseline", target_fixture="comparison")
def _(run_dir: Path, candidate_run_dir: Path) -> compare.Comparison:
    return compare.compare_runs(run_dir, candidate_run_dir)


@then("no output table differs beyond tolerance")
def _(comparison: compare.Comparison) -> None:
    differ = {t.table: {"only_in_baseline_rows": t.only_in_a, "only_in_candidate_rows": t.only_in_b,
                        "columns_rows_beyond_tolerance": {d.column: d.n_differ for d in t.columns}}
              for t in comparison.tables if t.differs}
    assert not differ, f"output tables that differ between baseline and candidate: {differ}"
