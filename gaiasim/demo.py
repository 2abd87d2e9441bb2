"""``gaiasim demo``: the embedded demo day, end to end (generate, run, validate) with a summary."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from gaiasim import sut as suts
from gaiasim.sim.generate import generate
from gaiasim.spec import DaySpec, make_spec
from gaiasim.validate import checks, db

#: The demo day: about 3,000 transits of 2016-01-16 (the embedded default of ``gaiasim demo``).
DEMO_SPEC: DaySpec = make_spec(name="demo", seed=42, scale=4e-5, date=dt.date(2016, 1, 16))

SUMMARY_SQL = """
SELECT
  (SELECT count(*) FROM truth_sources) AS sources,
  (SELECT count(*) FROM truth_transits) AS truth_transits,
  (SELECT count(*) FROM transits) AS transits_out,
  (SELECT value FROM run_counts WHERE key = 'packets_read') AS packets_read,
  (SELECT value FROM run_counts WHERE key = 'packets_quarantined') AS packets_quarantined,
  (SELECT median(abs(c.al_px - t.al_px)) FROM ccd c JOIN truth_ccd t USING (transit_id, strip)
    WHERE c.flags = 0) AS median_abs_al_residual_px,
  (SELECT median(abs(r.g_mag - t.g_mag)) FROM transits r JOIN truth_transits t USING (transit_id))
    AS median_abs_g_residual_mag
"""


@dataclass(frozen=True)
class DemoSummary:
    values: dict[str, float]
    results: list[checks.Result]


def run_demo(root: Path, progress: Callable[[str, float], None], system: suts.SUT | None = None) -> DemoSummary:
    """Generate the demo day into ``root/dataset``, run ``system`` (default: the builtin pipeline) over it
    into ``root/run`` and validate it."""
    root = Path(root)
    generate(DEMO_SPEC, root / "dataset", None, lambda s, f: progress(f"generate {s}", 0.5 * f))
    (system or suts.Builtin()).run(root / "dataset", root / "run", lambda s, f: progress(f"run {s}", 0.5 + 0.45 * f))
    con = db.connect(root / "run")
    rel = con.sql(SUMMARY_SQL)
    values = dict(zip(rel.columns, rel.fetchall()[0], strict=True))
    results = checks.evaluate_all(con, db.has_truth(con))
    progress("done", 1.0)
    return DemoSummary(values, results)


def summary_table(summary: DemoSummary) -> Table:
    table = Table(title=f"gaiasim demo: {DEMO_SPEC.date}, scale {DEMO_SPEC.scale:g}, seed {DEMO_SPEC.seed}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key, value in summary.values.items():
        table.add_row(key.replace("_", " "), f"{value:.4g}" if isinstance(value, float) else str(value))
    table.add_row("checks", checks.tally(summary.results))
    return table
