"""Science-alert recall per class and per amplitude, with Clopper-Pearson 95 % lower bounds, and the false-alert
rate with its Poisson 95 % upper bound (docs/crowding-and-alerts-sources.md section 3.3); a table of
``gaiasim fidelity`` and of ``python -m gaiasim.bench --only alerts``.

The rows read gaiasim.validate.alert_checks: a transient is *found* when an alert of its alert_kind holds a
transit of its source during the event; *detectable* as the truth flags it (a FoV 1 / FoV 2 pair of one scan with
|dG| >= 1 mag at both, a new source at G <= 19), the subset of REQ-ALR-001.

- per class: the detectable transients, found, the recall and its 95 % lower bound (59 detectable events all
  found are the fewest whose bound reaches 0.95; a class with fewer cannot show the target, whatever it finds);
- per amplitude at the best pair (events seen in both FoVs, detectable or not): known sources by |dG| (0.3-0.5,
  0.5-1, 1-2, >= 2 mag, section 3.3), new sources by G (<= 17, 17-18, 18-19, > 19 mag): the recall curve across
  the detectability threshold;
- the false alerts: alerts no transient explains, per 10^6 transits, with the upper bound REQ-ALR-002 passes on.

Nothing here gates a validation: REQ-ALR-001 and REQ-ALR-002 do.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import duckdb

from gaiasim.clitable import Column, Tabular
from gaiasim.validate import alert_checks, bounds

#: The recall REQ-ALR-001 asks of the detectable transients (gaiasim.validate.checks).
TARGET = 0.95
#: |dG| bins of known sources' events, mag (section 3.3), and G bins of new sources, mag.
DG_EDGES_MAG = (0.3, 0.5, 1.0, 2.0, math.inf)
NEW_G_EDGES_MAG = (-math.inf, 17.0, 18.0, 19.0, math.inf)


@dataclass(frozen=True)
class Row:
    group: str  # "class", "|dG|" (known sources, seen in both FoVs) or "G new" (new sources, seen in both FoVs)
    bin: str  # the class, or the bin
    n: int
    found: int
    lower: float | None  # Clopper-Pearson 95 % lower bound of the recall (None without events)
    target: float | None  # None: reported only

    @property
    def recall(self) -> float | None:
        return self.found / self.n if self.n else None

    @property
    def shown(self) -> bool | None:
        """Does the lower bound reach the target (None: no target)?"""
        return None if self.target is None or self.lower is None else self.lower >= self.target


@dataclass(frozen=True)
class FalseAlerts:
    alerts: int  # alerts no transient explains
    transits: int  # the run's transits: the exposure
    per_million: float | None
    upper_per_million: float | None  # Poisson 95 % upper bound


def _row(group: str, name: str, n: int, found: int, target: float | None) -> Row:
    return Row(group, name, n, found, bounds.clopper_pearson_lower(found, n) if n else None, target)


def _bin_name(lo: float, hi: float) -> str:
    return f">= {lo:g}" if math.isinf(hi) else (f"<= {hi:g}" if math.isinf(lo) else f"{lo:g}-{hi:g}")


def measure(con: duckdb.DuckDBPyConnection) -> list[Row]:
    """The rows of a run connected with its truth (:func:`gaiasim.validate.db.connect`): one per class with
    detectable transients (and "all"), one per amplitude bin with transients seen in both FoVs."""
    outcomes = con.execute(f"SELECT class, alert_kind, detectable, pair_delta_g_mag, pair_g_mag, found "
                           f"FROM ({alert_checks.TRANSIENT_OUTCOMES_SQL}) ORDER BY class").fetchall()
    rows: list[Row] = []
    detectable = [o for o in outcomes if o[2]]
    for cls in sorted({o[0] for o in detectable}):
        mine = [o for o in detectable if o[0] == cls]
        rows.append(_row("class", cls, len(mine), sum(o[5] for o in mine), TARGET))
    if detectable:
        rows.append(_row("class", "all", len(detectable), sum(o[5] for o in detectable), TARGET))
    for group, edges, pick in (("|dG|", DG_EDGES_MAG, lambda o: o[3] if o[1] != "new_source" else None),
                               ("G new", NEW_G_EDGES_MAG, lambda o: o[4] if o[1] == "new_source" else None)):
        for lo, hi in itertools.pairwise(edges):
            mine = [o for o in outcomes if pick(o) is not None and lo <= pick(o) < hi]
            if mine:
                rows.append(_row(group, _bin_name(lo, hi), len(mine), sum(o[5] for o in mine), None))
    return rows


def false_alerts(con: duckdb.DuckDBPyConnection) -> FalseAlerts:
    """The alerts no transient explains against the run's transits (REQ-ALR-002's numbers)."""
    k, n = con.execute(alert_checks.FALSE_ALERT_EXPOSURE_SQL).fetchall()[0]
    if not n:
        return FalseAlerts(int(k), 0, None, None)
    return FalseAlerts(int(k), int(n), 1e6 * k / n, 1e6 * bounds.poisson_upper(int(k)) / n)


def _fraction(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def view(rows: list[Row], false: FalseAlerts | None = None) -> Tabular:
    """The rows as ``gaiasim fidelity`` prints them (or as CSV / JSON); the false alerts in a note."""
    notes = []
    if false is not None and false.transits:
        notes.append(f"false alerts: {false.alerts} in {false.transits} transits = {false.per_million:.3g} per 10^6 "
                     f"transits, 95 % upper bound {false.upper_per_million:.3g} (REQ-ALR-002: <= 1)")
    return Tabular("science alerts: recall of the detectable transients per class (target 0.95 on the 95 % lower "
                   "bound), and of those seen in both fields of view per |dG| (known sources) or G (new sources)",
                   [Column("by"), Column("bin"), Column("n"), Column("found"),
                    Column("recall", text=_fraction), Column("95 % low", text=_fraction),
                    Column("target", drop=1, text=lambda v: "-" if v is None else f"{v:g}"),
                    Column("shown", text=lambda v: "-" if v is None else ("yes" if v else "no"))],
                   [(r.group, r.bin, r.n, r.found, r.recall, r.lower, r.target, r.shown) for r in rows], notes)


def to_json(rows: list[Row], false: FalseAlerts | None = None) -> dict:
    return {"recall": [{**asdict(r), "recall": r.recall, "shown": r.shown} for r in rows],
            "false_alerts": None if false is None else asdict(false)}
