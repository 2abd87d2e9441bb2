"""``gaiasim fidelity RUN``: how realistic is the simulated day, measured through a run, against Gaia's
published precision curves.

A harness whose simulated instrument is better than the real one teaches its team thresholds that are
too tight. This sets what a run measured against the truth beside what Gaia achieved (docs/instrument.md):

- **per-CCD AL precision** of the AF centroids vs G (robust scatter of run minus truth, in mas), against
  Lindegren+2021 (A&A 649, A2) Fig. A.1, as digitised in astromet's ``scatteral_edr3.csv``;
- **per-transit AL precision**: the mean of a transit's AF observation-time errors times the scan rate,
  against Lindegren+2021 over the square root of the 8.86 AF CCDs a transit crosses;
- **per-transit G scatter** vs G (robust scatter of run minus truth), against PyGaia's per-transit model
  ``1.2e-3 sqrt(0.04895 z^2 + 1.8633 z + 0.0001985)`` mag, ``z = 10^(0.4 (max(G, 12) - 15))``, with
  PyGaia's calibration floor (3 mmag per CCD over sqrt 8.86 CCDs) added in quadrature;
- **per-transit BP and RP scatter**, against PyGaia's BP and RP models at each bin's median colour;
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

from gaiasim.clitable import Column, Tabular
from gaiasim.sim.instrument.focal_plane import PIXEL_AL_MAS, SCAN_RATE_ARCSEC_S

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


#: Each sampled transit's time error: the mean over its clean AF images of the observation-time errors (the
#: transit's along-scan measurement is the mean of its CCDs'), from at least 3 of them.
_PER_TRANSIT_TIMES = """(SELECT transit_id, any_value(g_mag) AS g_mag, avg(t_res_ms) AS d_ms FROM sample_pairs
    WHERE strip LIKE 'AF%' AND flags = 0 AND t_res_ms IS NOT NULL GROUP BY transit_id HAVING count(*) >= 3)"""
#: AF CCDs a transit crosses on average: 62 AF CCDs over 7 rows (PyGaia's ``_mean_num_ccds``).
AF_CCDS_PER_TRANSIT = (7.0 * 9.0 - 1.0) / 7.0
#: Scan rate, mas per ns: turns a transit's time error into an along-scan position error.
MAS_PER_NS = SCAN_RATE_ARCSEC_S * 1e-6


def lindegren2021_sigma_al_mas(g_mag: float) -> float:
    return float(np.interp(g_mag, LINDEGREN2021_G, LINDEGREN2021_SIGMA_AL_MAS))


#: PyGaia's calibration floor of the G photometry: 3 mmag per CCD transit over the sqrt(8.86) AF CCDs of a
#: transit (``pygaia.errors.photometric._eom_calibration_floor_g``), mag.
PYGAIA_G_CALIBRATION_FLOOR_MAG = 3.0e-3 / math.sqrt(AF_CCDS_PER_TRANSIT)


def pygaia_sigma_g_mag(g_mag: float) -> float:
    """PyGaia's per-transit G uncertainty (``pygaia.errors.photometric``, with its 20 % margin)."""
    z = 10.0 ** (0.4 * (max(g_mag, 12.0) - 15.0))
    return 1.2e-3 * math.sqrt(0.04895 * z * z + 1.8633 * z + 0.0001985)


def pygaia_sigma_g_floor_mag(g_mag: float) -> float:
    """The reference of the per-transit G scatter: PyGaia's per-transit model with PyGaia's own calibration
    floor added in quadrature (PyGaia adds it only to its end-of-mission errors; a day's transits carry it:
    the calibration a day starts from, and the drifts after it, are the same for all its stars). Without it
    a realistic instrument fails at the bright end: the per-transit model is photon noise alone, 0.46 mmag at
    G <= 12."""
    return math.hypot(pygaia_sigma_g_mag(g_mag), PYGAIA_G_CALIBRATION_FLOOR_MAG)


def v_minus_i(bp_rp: float) -> float:
    """V - I_C from BP - RP: Evans+2018 (A&A 616, A4) Table A.2's G - V and G - I_C polynomials
    (G - V = -0.01760 - 0.006860 x - 0.1732 x^2, G - I_C = 0.02085 + 0.7419 x - 0.09631 x^2) [U: recalled,
    not re-read]; PyGaia's BP and RP models take V - I."""
    return (0.02085 + 0.7419 * bp_rp - 0.09631 * bp_rp**2) - (-0.01760 - 0.006860 * bp_rp - 0.1732 * bp_rp**2)


def pygaia_sigma_bp_rp_mag(band: str, g_mag: float, bp_rp: float) -> float:
    """PyGaia's per-transit BP or RP uncertainty (``pygaia.errors.photometric``; its code applies no margin
    to these two) at G and colour BP - RP, ``z`` floored at G = 11."""
    z = 10.0 ** (0.4 * (max(g_mag, 11.0) - 15.0))
    x = v_minus_i(bp_rp)
    if band == "BP":
        a = -0.000562 * x**3 + 0.044390 * x * x + 0.355123 * x + 1.043270
        b = -0.000400 * x**3 + 0.018878 * x * x + 0.195768 * x + 1.465592
        c = +0.000262 * x**3 + 0.060769 * x * x - 0.205807 * x - 1.866968
    else:
        a = -0.007597 * x**3 + 0.114126 * x * x - 0.636628 * x + 1.615927
        b = -0.003803 * x**3 + 0.057112 * x * x - 0.318499 * x + 1.783906
        c = -0.001923 * x**3 + 0.027352 * x * x - 0.091569 * x - 3.042268
    return 1.0e-3 * math.sqrt(10.0**a * z * z + 10.0**b * z + 10.0**c)


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
            rows.append(Row("G per transit", lo, hi, n, sigma, pygaia_sigma_g_floor_mag(lo + 0.25), "mag"))
    for g in AL_G:
        lo, hi = g - 0.5, g + 0.5
        n, sigma_ms = _robust(con, "d_ms", _PER_TRANSIT_TIMES, f"g_mag >= {lo} AND g_mag < {hi}")
        if n >= MIN_PER_BIN:
            rows.append(Row("AL per transit", lo, hi, n, sigma_ms * 1e6 * MAS_PER_NS,
                            lindegren2021_sigma_al_mas(g) / math.sqrt(AF_CCDS_PER_TRANSIT), "mas"))
    for band, column in (("BP", "d_bp"), ("RP", "d_rp")):
        for lo in PHOT_BINS:
            hi = lo + 0.5
            where = f"{column} IS NOT NULL AND g_true >= {lo} AND g_true < {hi}"
            n, sigma = _robust(con, column, "phot_pairs", where)
            if n >= MIN_PER_BIN:
                (colour,) = con.execute(f"SELECT median(bp_rp_true) FROM phot_pairs WHERE {where}").fetchone()
                rows.append(Row(f"{band} per transit", lo, hi, n, sigma,
                                pygaia_sigma_bp_rp_mag(band, lo + 0.25, float(colour)), "mag"))
    for g in AL_G:
        n, width = _robust(con, "al_pull", "sample_pairs", f"{af} AND g_bin = {g}")
        if n >= MIN_PER_BIN:
            rows.append(Row("AL pull width", g, g + 1, n, width, None, ""))
    return rows


def view(rows: list[Row]) -> Tabular:
    """The rows as the command prints them (or as CSV / JSON)."""
    return Tabular("fidelity: the simulated day as the run measures it (robust scatter of run - truth), against Gaia",
                   [Column("quantity", fold=True), Column("G"), Column("n"), Column("measured"), Column("Gaia"),
                    Column("unit"), Column("ratio", text=lambda v: "-" if v is None else f"{v:.2f}")],
                   [(r.quantity, f"{r.g_lo:g}-{r.g_hi:g}", r.n, r.measured, r.reference, r.unit, r.ratio)
                    for r in rows])


def to_json(rows: list[Row]) -> dict:
    return {"rows": [{**asdict(r), "ratio": r.ratio} for r in rows],
            "sources": {"AL per AF CCD": "Lindegren+2021 (A&A 649, A2) Fig. A.1 (astromet scatteral_edr3)",
                        "AL per transit": "Lindegren+2021 Fig. A.1 over sqrt(8.86 AF CCDs a transit)",
                        "G per transit": "PyGaia errors.photometric, per-transit G model (20 % margin) with PyGaia's "
                                         "calibration floor (3 mmag per CCD over sqrt 8.86) in quadrature",
                        "BP per transit": "PyGaia errors.photometric, per-transit BP model at the bin's median "
                                          "colour (V-I from BP-RP: Evans+2018 Table A.2)",
                        "RP per transit": "PyGaia errors.photometric, per-transit RP model, likewise",
                        "AL pull width": "none: 1 is honest formal errors; Gaia's under-estimate the scatter"}}


def plot(rows: list[Row]) -> bytes:
    """A PNG: the measured AL precision per CCD and G scatter per transit against G beside Gaia's curves
    (log scale), and the AL pull widths beside 1. Needs the ``report`` extra (matplotlib)."""
    from gaiasim.validate.report_plots import new_figure, png_bytes

    fig = new_figure(12.0, 3.6)
    panels = fig.subplots(1, 3)
    g_grid = np.arange(12.0, 21.01, 0.1)
    per_ccd = [lindegren2021_sigma_al_mas(g) for g in g_grid]
    panels_of = (
        (panels[0], "mas", "AL precision", (
            ("AL per AF CCD", per_ccd, "Lindegren+2021 per CCD", "#1f77b4"),
            ("AL per transit", [v / math.sqrt(AF_CCDS_PER_TRANSIT) for v in per_ccd], "per transit", "#2ca02c"))),
        (panels[1], "mag", "photometry per transit", (
            ("G per transit", [pygaia_sigma_g_floor_mag(g) for g in g_grid], "PyGaia G (with its floor)", "0.35"),
            ("BP per transit", [pygaia_sigma_bp_rp_mag("BP", g, 1.0) for g in g_grid], "PyGaia BP (BP-RP 1)",
             "#1f77b4"),
            ("RP per transit", [pygaia_sigma_bp_rp_mag("RP", g, 1.0) for g in g_grid], "PyGaia RP (BP-RP 1)",
             "#d62728"))),
    )
    for ax, unit, title, series in panels_of:
        for quantity, ref, label, colour in series:
            mine = [r for r in rows if r.quantity == quantity]
            ax.plot(g_grid, ref, color=colour, alpha=0.6, label=label)
            ax.plot([(r.g_lo + r.g_hi) / 2 for r in mine], [r.measured for r in mine], "o", color=colour,
                    label=f"{quantity}: this run")
        ax.set_yscale("log")
        ax.set_xlim(11.5, 21.0)
        ax.set_xlabel("G (mag)")
        ax.set_ylabel(f"robust scatter ({unit})")
        ax.set_title(title)
        ax.legend(fontsize="x-small")
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
