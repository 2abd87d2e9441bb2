"""``gaiasim fidelity RUN``: how realistic is the simulated day, measured through a run, against Gaia's
published precision curves.

A harness whose simulated instrument is better than the real one teaches its team thresholds that are
too tight. This sets what a run measured against the truth beside what Gaia achieved (docs/instrument.md):

- **per-CCD AL precision** of the AF centroids vs G (robust scatter of run minus truth, in mas), against
  Lindegren+2021 (A&A 649, A2) Fig. A.1, as digitised in astromet's ``scatteral_edr3.csv``;
- **per-transit G scatter** vs G (robust scatter of run minus truth), against PyGaia's per-transit model
  ``1.2e-3 sqrt(0.04895 z^2 + 1.8633 z + 0.0001985)`` mag, ``z = 10^(0.4 (max(G, 12) - 15))``;
- **AL centroid pulls** per G bin: their robust width is the error-inflation factor (Gaia's formal
  errors under-estimate the scatter; a perfect simulated instrument gives 1.0 by construction).

The transits per source against ecliptic latitude need years of scanning, not a day: ``nox -s bench``
measures them (``bench_scanning_law``). Robust scatter = 1.4826 x the median absolute deviation. Rows
read the sampled pairs of :mod:`gaiasim.validate.db`, so a full day stays in bounded memory.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import duckdb
import numpy as np
from rich.table import Table

from gaiasim.sim.instrument.focal_plane import PIXEL_AL_MAS

#: Lindegren+2021 Fig. A.1 (astromet scatteral_edr3.csv): AL precision of one CCD observation, mas, vs G.
LINDEGREN2021_G = (6.0, 8.0, 10.0, 12.0, 13.0, 14.0, 15.0, 16.4, 17.4, 17.8, 18.3, 18.8, 19.4, 19.9, 20.4, 20.8, 21.0)
LINDEGREN2021_SIGMA_AL_MAS = (0.19, 0.21, 0.16, 0.14, 0.14, 0.18, 0.25, 0.49, 0.80, 1.04, 1.38, 1.95, 2.98, 4.56,
                              6.21, 8.46, 10.0)
#: Integer G at which the per-CCD precision is compared, and the half-width of each bin, mag.
AL_G = tuple(range(12, 21))
#: 0.5-mag bins of the per-transit G scatter: [lo, lo + 0.5).
PHOT_BINS = tuple(np.arange(12.0, 20.5, 0.5))
#: Fewest measurements a bin needs to be reported.
MIN_PER_BIN = 30


def lindegren2021_sigma_al_mas(g_mag: float) -> float:
    return float(np.interp(g_mag, LINDEGREN2021_G, LINDEGREN2021_SIGMA_AL_MAS))


def pygaia_sigma_g_mag(g_mag: float) -> float:
    """PyGaia's per-transit G uncertainty (``pygaia.errors.photometric``, with its 20 % margin)."""
    z = 10.0 ** (0.4 * (max(g_mag, 12.0) - 15.0))
    return 1.2e-3 * math.sqrt(0.04895 * z * z + 1.8633 * z + 0.0001985)


@dataclass(frozen=True)
class Row:
    quantity: str
    g_lo: float  # G bin [g_lo, g_hi)
    g_hi: float
    n: int
    measured: float
    reference: float | None  # None: no published curve (pulls: 1 is the honest-error value)
    unit: str

    @property
    def ratio(self) -> float | None:
        return None if self.reference is None else self.measured / self.reference


def _robust(con: duckdb.DuckDBPyConnection, expr: str, table: str, where: str) -> tuple[int, float]:
    n, mad = con.execute(f"SELECT count(*), 1.4826 * mad({expr}) FROM {table} WHERE {where}").fetchall()[0]
    return int(n), (math.nan if mad is None else float(mad))


def measure(con: duckdb.DuckDBPyConnection) -> list[Row]:
    """The fidelity rows of a run connected with its truth (:func:`gaiasim.validate.db.connect`)."""
    rows: list[Row] = []
    af = "strip LIKE 'AF%' AND flags = 0 AND al_res_px IS NOT NULL"
    for g in AL_G:
        lo, hi = g - 0.5, g + 0.5
        n, sigma_px = _robust(con, "al_res_px", "sample_pairs", f"{af} AND g_mag >= {lo} AND g_mag < {hi}")
        if n >= MIN_PER_BIN:
            rows.append(Row("AL per AF CCD", lo, hi, n, sigma_px * PIXEL_AL_MAS,
                            lindegren2021_sigma_al_mas(g), "mas"))
    for lo in PHOT_BINS:
        hi = lo + 0.5
        n, sigma = _robust(con, "d_g", "phot_pairs", f"d_g IS NOT NULL AND g_true >= {lo} AND g_true < {hi}")
        if n >= MIN_PER_BIN:
            rows.append(Row("G per transit", lo, hi, n, sigma, pygaia_sigma_g_mag(lo + 0.25), "mag"))
    for g in AL_G:
        n, width = _robust(con, "al_pull", "sample_pairs", f"{af} AND g_bin = {g}")
        if n >= MIN_PER_BIN:
            rows.append(Row("AL pull width", g, g + 1, n, width, None, ""))
    return rows


def table(rows: list[Row]) -> Table:
    out = Table(title="fidelity: the simulated day as the run measures it (robust scatter of run - truth), "
                      "against Gaia")
    for col in ("quantity", "G", "n", "measured", "Gaia", "ratio"):
        out.add_column(col, justify="left" if col == "quantity" else "right")
    for r in rows:
        out.add_row(r.quantity, f"{r.g_lo:g}-{r.g_hi:g}", str(r.n), f"{r.measured:.4g} {r.unit}".strip(),
                    "-" if r.reference is None else f"{r.reference:.4g} {r.unit}".strip(),
                    "-" if r.ratio is None else f"{r.ratio:.2f}")
    return out


def to_json(rows: list[Row]) -> dict:
    return {"rows": [{**asdict(r), "ratio": r.ratio} for r in rows],
            "sources": {"AL per AF CCD": "Lindegren+2021 (A&A 649, A2) Fig. A.1 (astromet scatteral_edr3)",
                        "G per transit": "PyGaia errors.photometric, per-transit G model (20 % margin)",
                        "AL pull width": "none: 1 is honest formal errors; Gaia's under-estimate the scatter"}}


def plot(rows: list[Row]) -> bytes:
    """A PNG: the measured AL precision per CCD and G scatter per transit against G beside Gaia's curves
    (log scale), and the AL pull widths beside 1. Needs the ``report`` extra (matplotlib)."""
    from gaiasim.validate.report_plots import new_figure, png_bytes

    fig = new_figure(12.0, 3.6)
    panels = fig.subplots(1, 3)
    g_grid = np.arange(12.0, 21.01, 0.1)
    curves = {"AL per AF CCD": (LINDEGREN2021_G, LINDEGREN2021_SIGMA_AL_MAS, "Lindegren+2021 Fig. A.1", "mas"),
              "G per transit": (g_grid, [pygaia_sigma_g_mag(g) for g in g_grid], "PyGaia per-transit model", "mag")}
    for ax, (quantity, (g_ref, ref, label, unit)) in zip(panels[:2], curves.items(), strict=True):
        mine = [r for r in rows if r.quantity == quantity]
        ax.plot(g_ref, ref, color="0.4", label=label)
        ax.plot([(r.g_lo + r.g_hi) / 2 for r in mine], [r.measured for r in mine], "o", color="#1f77b4",
                label="this run")
        ax.set_yscale("log")
        ax.set_xlim(11.5, 21.0)
        ax.set_xlabel("G (mag)")
        ax.set_ylabel(f"robust scatter ({unit})")
        ax.set_title(quantity)
        ax.legend(fontsize="small")
    pulls = [r for r in rows if r.quantity == "AL pull width"]
    ax = panels[2]
    ax.axhline(1.0, color="0.4", linestyle="--", label="honest formal errors")
    ax.plot([(r.g_lo + r.g_hi) / 2 for r in pulls], [r.measured for r in pulls], "o", color="#1f77b4",
            label="this run")
    ax.set_xlabel("G (mag)")
    ax.set_ylabel("robust width of (run - truth) / error")
    ax.set_title("AL pull width (error inflation)")
    ax.legend(fontsize="small")
    return png_bytes(fig)
