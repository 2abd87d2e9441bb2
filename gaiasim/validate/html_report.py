"""The daily report: one self-contained HTML page per run (``gaiasim report RUN --html FILE``).

Plots are matplotlib (Agg) PNGs embedded as base64 data URIs and the CSS is inline: nothing is fetched,
so the file can be mailed or archived on its own. Every string that came from data (channel names, file
names, logbook text, check notes, feature names) goes through :func:`html.escape`.

The data come the way ``gaiasim validate`` reads them: the views of :func:`gaiasim.validate.db.connect`
(hive-partitioned run tables included), :func:`checks.evaluate_all` and :func:`scorecard.scorecard`. The
overall verdict is validate's: every check passes and the detection scorecard is complete.

matplotlib is the ``report`` extra, imported lazily so the core install works without it.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io as _io
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np

from gaiasim.sim.timescale import date_from_obmt_ns, obmt_ns_from_date
from gaiasim.validate import checks, db, scorecard, trace
from pipeline import io, limits
from pipeline.io import InputError

MISSING_EXTRA = "install the report extra: pip install -e '.[report]'"
#: Points drawn in a scatter plot at most: a seeded reservoir sample (binned statistics use every row).
MAX_POINTS = 40_000
#: Rows of the alerts and HK-event tables at most (the rest are counted, not listed).
MAX_ROWS = 300
_NS_PER_HOUR = 3_600_000_000_000
_SEVERITY_COLOUR = {"yellow": "#e0a800", "red": "#d62728"}
_FOV_COLOUR = {1: "#1f77b4", 2: "#ff7f0e"}


@dataclass(frozen=True)
class Plot:
    anchor: str  # id of the section in the page
    title: str
    caption: str  # what the plot shows, in the operations team's words
    png: bytes | None  # None when there is nothing to draw (the caption says why)


def new_figure(width_in: float, height_in: float):
    """A matplotlib Figure on the Agg canvas (no pyplot: no global state, no display needed)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError(MISSING_EXTRA) from None
    fig = Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig) -> bytes:
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _day_start_ns(con: duckdb.DuckDBPyConnection) -> int:
    """OBMT at midnight (TCB ~ UTC) of the first day of the run: the origin of every time axis."""
    first = con.execute("SELECT least((SELECT min(obmt_ns) FROM transits), (SELECT min(obmt_ns) FROM hk))")\
        .fetchone()[0]
    return obmt_ns_from_date(date_from_obmt_ns(int(first))) if first is not None else 0


def _hours(obmt_ns: np.ndarray | int, t0_ns: int) -> np.ndarray:
    return (np.asarray(obmt_ns, dtype=np.int64) - t0_ns) / _NS_PER_HOUR


def _sample(sql: str) -> str:
    """``sql`` cut to at most MAX_POINTS rows, the same rows every time (seeded reservoir sample)."""
    return f"SELECT * FROM ({sql}) USING SAMPLE reservoir({MAX_POINTS} ROWS) REPEATABLE (42)"


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


# --- plots ----------------------------------------------------------------------------------------------------


def transits_per_hour(con: duckdb.DuckDBPyConnection, t0_ns: int) -> Plot:
    rows = con.execute("SELECT fov, CAST(floor((obmt_ns - ?) / ?) AS INTEGER) AS hour, count(*) FROM transits "
                       "GROUP BY ALL ORDER BY hour, fov", [t0_ns, _NS_PER_HOUR]).fetchall()
    fig = new_figure(12, 3.2)
    ax = fig.add_subplot()
    for k, fov in enumerate((1, 2)):
        hours = np.array([h for f, h, _ in rows if f == fov])
        counts = np.array([n for f, _, n in rows if f == fov])
        if hours.size:
            ax.bar(hours + 0.2 + 0.4 * k, counts, width=0.4, color=_FOV_COLOUR[fov],
                   label=f"FoV {fov} ({counts.sum()} transits)")
    if rows:
        ax.legend(loc="upper right", fontsize="small")
    else:
        _empty(ax, "no transits")
    ax.set_xlabel(f"hour since {date_from_obmt_ns(t0_ns)} 00:00 (TCB ~ UTC)")
    ax.set_ylabel("transits per hour")
    ax.set_xlim(0, max(24, max((h for _, h, _ in rows), default=0) + 1))
    ax.set_xticks(np.arange(0, ax.get_xlim()[1] + 1, 3))
    ax.grid(axis="y", alpha=0.3)
    return Plot("transits", "Transits per hour", "Transits out of the pipeline per hour, by field of view.",
                png_bytes(fig))


def sky_map(con: duckdb.DuckDBPyConnection) -> Plot:
    pts = con.execute(_sample("SELECT ra_deg, dec_deg, fov FROM transits")).fetchnumpy()
    alerts = con.execute("SELECT ra_deg, dec_deg FROM alerts").fetchnumpy()
    total = con.execute("SELECT count(*) FROM transits").fetchone()[0]
    fig = new_figure(12, 5.6)
    ax = fig.add_subplot(projection="mollweide")

    def lon(ra_deg: np.ndarray) -> np.ndarray:  # RA 0..360 -> -pi..pi, RA 180 at the edges
        return np.radians((np.asarray(ra_deg, dtype=np.float64) + 180.0) % 360.0 - 180.0)

    size = 3 if len(pts["fov"]) > 5000 else 10  # a sparse day's dots must still show
    for fov in (1, 2):
        sel = pts["fov"] == fov
        ax.scatter(lon(pts["ra_deg"][sel]), np.radians(pts["dec_deg"][sel]), s=size, alpha=0.6, lw=0,
                   color=_FOV_COLOUR[fov], label=f"FoV {fov}", rasterized=True)
    if len(alerts["ra_deg"]):
        ax.scatter(lon(alerts["ra_deg"]), np.radians(alerts["dec_deg"]), s=60, marker="*", color="#d62728",
                   edgecolor="k", lw=0.5, label=f"alerts ({len(alerts['ra_deg'])})", zorder=3)
    ticks = np.arange(-150, 151, 30)
    ax.set_xticks(np.radians(ticks))
    ax.set_xticklabels([f"{t % 360}°" for t in ticks], fontsize="small", color="0.3")
    ax.tick_params(axis="y", labelsize="small")
    ax.grid(alpha=0.3)
    ax.set_xlabel("RA (ICRS)")
    ax.set_ylabel("Dec (ICRS)")
    if total:
        ax.legend(loc="lower right", fontsize="small", markerscale=2, bbox_to_anchor=(1.08, -0.08))
    shown = f"a sample of {MAX_POINTS:,} of the {total:,}" if total > MAX_POINTS else f"all {total:,}"
    return Plot("sky", "Sky map", f"Where the day's transits fell ({shown} transits), Mollweide projection; "
                "stars mark the science alerts.", png_bytes(fig))


def _hk_ylim(data_lo: float, data_hi: float, lim: limits.ChannelLimits | None) -> tuple[float, float]:
    """Data range, widened to the yellow band unless the band dwarfs the data (a star rate of 0.3 Hz
    against a 20000 Hz limit would flatten the trace to a line: then the title states the limits)."""
    lo, hi = data_lo, data_hi
    if lim is not None and (lim.yellow_high - lim.yellow_low) <= 100 * max(hi - lo, 1e-12):
        lo, hi = min(lo, lim.yellow_low), max(hi, lim.yellow_high)
    pad = 0.06 * (hi - lo) if hi > lo else max(abs(hi) * 0.01, 1e-3)
    return lo - pad, hi + pad


def hk_channels(con: duckdb.DuckDBPyConnection, table: limits.LimitTable | None, t0_ns: int) -> Plot:
    channels = [r[0] for r in con.execute("SELECT DISTINCT channel FROM hk ORDER BY channel").fetchall()]
    events = con.execute("SELECT channel, severity, start_ns, end_ns FROM hk_events "
                         "ORDER BY channel, start_ns").fetchall()
    ncols = 2
    nrows = max(1, math.ceil(len(channels) / ncols))
    fig = new_figure(12, 2.3 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True)
    for ax in axes.flat[len(channels):]:
        ax.set_visible(False)
    if not channels:
        axes[0, 0].set_visible(True)
        _empty(axes[0, 0], "no housekeeping samples")
    min_span_h = 0.05  # an event of one sample is drawn 3 min wide, so it stays visible
    for ax, channel in zip(axes.flat, channels, strict=False):
        d = con.execute("SELECT obmt_ns, value FROM hk WHERE channel = ? ORDER BY obmt_ns", [channel]).fetchnumpy()
        x, y = _hours(d["obmt_ns"], t0_ns), np.asarray(d["value"], dtype=np.float64)
        ax.plot(x, y, lw=0.6, color="#1f4e79")
        lim = table.get(channel) if table is not None else None
        finite = y[np.isfinite(y)]
        if finite.size:
            ax.set_ylim(*_hk_ylim(float(finite.min()), float(finite.max()), lim))
        title = channel
        if lim is not None:
            for value, colour in ((lim.yellow_low, "yellow"), (lim.yellow_high, "yellow"), (lim.red_low, "red"),
                                  (lim.red_high, "red")):
                ax.axhline(value, color=_SEVERITY_COLOUR[colour], ls="--", lw=0.9)
            title += f"   yellow [{lim.yellow_low:g}, {lim.yellow_high:g}]  red [{lim.red_low:g}, {lim.red_high:g}]"
        n_events = 0
        for ch, severity, start, end in events:
            if ch == channel:
                a, b = _hours(start, t0_ns), _hours(end, t0_ns)
                ax.axvspan(a, max(b, a + min_span_h), color=_SEVERITY_COLOUR.get(severity, "0.5"), alpha=0.3, lw=0)
                n_events += 1
        if n_events:
            title += f"   ({n_events} event{'s' if n_events > 1 else ''})"
        ax.set_title(title, fontsize="small", loc="left")
        ax.tick_params(labelsize="small")
        ax.grid(alpha=0.25)
    for ax in axes[-1]:
        ax.set_xlabel("hour (TCB ~ UTC)", fontsize="small")
    return Plot("hk", "Housekeeping", "Every HK channel with its yellow and red limits (dashed, "
                "datasets/limits/hk_limits.toml); shaded spans are the HK events the monitor raised "
                "(yellow or red by severity).", png_bytes(fig))


def _binned(x: np.ndarray, y: np.ndarray, min_n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per 1-mag bin of ``x``: centre, median and normalised MAD of ``y`` (bins of at least ``min_n``)."""
    bins = np.floor(x)
    out = []
    for b in np.unique(bins):
        v = y[bins == b]
        if v.size >= min_n:
            med = np.median(v)
            out.append((b + 0.5, med, 1.4826 * np.median(np.abs(v - med))))
    arr = np.array(out, dtype=np.float64).reshape(-1, 3)
    return arr[:, 0], arr[:, 1], arr[:, 2]


def centroid_pulls(con: duckdb.DuckDBPyConnection) -> Plot:
    # The same clean-fit join as the checks' pulls (checks._PULLS), with the continuous G of the source.
    pts = con.execute(_sample("""
        SELECT t.g_mag, (c.al_px - tc.al_px) / c.al_px_err AS pull
        FROM ccd c JOIN truth_ccd tc USING (transit_id, strip) JOIN truth_transits t USING (transit_id)
        WHERE c.flags = 0""")).fetchnumpy()
    # The bins REQ-IPD-001/002 judge, computed by the check's own query over every row.
    bins = con.execute(f"SELECT g_bin, n, bias, width FROM ({checks._PULL_BINS}) ORDER BY g_bin").fetchnumpy()
    fig = new_figure(12, 4.0)
    ax = fig.add_subplot()
    g, pull = np.asarray(pts["g_mag"], dtype=np.float64), np.asarray(pts["pull"], dtype=np.float64)
    if g.size:
        ax.scatter(g, np.clip(pull, -6, 6), s=2, alpha=0.25, lw=0, color="0.35", rasterized=True,
                   label="pull of one CCD image (clipped at ±6)")
        ax.axhline(0, color="k", lw=0.8)
        for s in (-1, 1):
            ax.axhline(s, color="k", lw=0.6, ls=":")
        if len(bins["g_bin"]):
            ax.errorbar(bins["g_bin"] + 0.5, bins["bias"], yerr=bins["width"], fmt="o", color="#d62728",
                        capsize=3, label="median ± normalised MAD per G bin (the check's bins)")
        ax.legend(loc="lower left", fontsize="small", markerscale=4)
        ax.set_ylim(-6.5, 6.5)
    else:
        _empty(ax, "no clean CCD fit joined to truth")
    ax.set_xlabel("G (truth, mag)")
    ax.set_ylabel("AL centroid pull (fit - truth) / error")
    ax.grid(alpha=0.25)
    return Plot("pulls", "Centroid pulls vs G", "Along-scan centroid pulls of clean CCD fits against truth: "
                "unbiased (REQ-IPD-001) with unit width (REQ-IPD-002) in every G bin of at least 100 images.",
                png_bytes(fig))


def photometry_residuals(con: duckdb.DuckDBPyConnection) -> Plot:
    pts = con.execute(_sample("""
        SELECT t.g_mag AS g_true, r.g_mag - t.g_mag AS dg, r.bp_mag - t.bp_mag AS dbp, r.rp_mag - t.rp_mag AS drp
        FROM transits r JOIN truth_transits t USING (transit_id) WHERE r.g_mag IS NOT NULL""")).fetchnumpy()
    fig = new_figure(12, 4.0)
    axes = fig.subplots(1, 2, sharex=True)
    g = np.asarray(pts["g_true"], dtype=np.float64)
    panels = ((axes[0], (("dg", "G", "0.35"),), "REQ-PHOT-001: |median| <= 0.01 mag", 0.01),
              (axes[1], (("dbp", "BP", "#1f77b4"), ("drp", "RP", "#d62728")), "REQ-PHOT-002: |median| <= 0.02 mag",
               0.02))
    for ax, series, label, bound in panels:
        spread = []
        for key, name, colour in series:
            d = np.asarray(pts[key], dtype=np.float64)
            ok = np.isfinite(d)
            if not ok.any():
                continue
            ax.scatter(g[ok], d[ok], s=3, alpha=0.25, lw=0, color=colour, rasterized=True)
            centre, median, _ = _binned(g[ok], d[ok], 20)
            ax.plot(centre, median, "o-", color=colour, mec="k", mew=0.5, ms=5, label=f"{name}: median per G bin")
            spread.append(np.percentile(np.abs(d[ok]), 99))
        ax.axhspan(-bound, bound, color="#2ca02c", alpha=0.2, lw=0, label=label)
        ax.axhline(0, color="k", lw=0.8)
        if spread:
            lim = max(max(spread) * 1.1, 3 * bound)
            ax.set_ylim(-lim, lim)
            ax.legend(loc="upper left", fontsize="small")
        else:
            _empty(ax, "no photometry joined to truth")
        ax.set_xlabel("G (truth, mag)")
        ax.grid(alpha=0.25)
    axes[0].set_ylabel("transit G - true G (mag)")
    axes[1].set_ylabel("transit BP/RP - true (mag)")
    return Plot("photometry", "Photometric residuals vs G", "Transit magnitudes against truth; dots are single "
                "transits, lines the median of each 1-mag bin of at least 20 transits (the checks' statistic), "
                "the green band the requirement.", png_bytes(fig))


# --- HTML -----------------------------------------------------------------------------------------------------

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1b1b; margin: 0;
       background: #f4f5f7; }
main { max-width: 1240px; margin: 0 auto; padding: 16px 24px 48px; }
header { background: #1f2a44; color: #fff; padding: 16px 24px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header .meta { color: #c8d0e0; font-size: 13px; word-break: break-all; }
nav { margin-top: 10px; font-size: 13px; }
nav a { color: #9cc3ff; margin-right: 14px; text-decoration: none; }
section { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; margin: 16px 0; padding: 12px 18px; }
h2 { font-size: 17px; margin: 4px 0 8px; }
p.caption, p.note { color: #555; margin: 4px 0 8px; }
img { max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { border-bottom: 1px solid #e3e6ea; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f0f2f5; position: sticky; top: 0; }
td.nowrap { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr:nth-child(even) td { background: #fafbfc; }
.verdict { display: inline-block; padding: 3px 12px; border-radius: 4px; font-weight: 700; color: #fff; }
.PASS, .pass, .passed { color: #1a7f37; font-weight: 600; }
.FAIL, .fail, .failed { color: #cf222e; font-weight: 600; }
.warn { color: #9a6700; font-weight: 600; }
.verdict.PASS { background: #1a7f37; color: #fff; } .verdict.FAIL { background: #cf222e; color: #fff; }
.grid { display: flex; flex-wrap: wrap; gap: 24px; }
.bar { background: #4a7bd0; height: 10px; display: inline-block; vertical-align: middle; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; margin: 6px 0; }
dt { color: #555; } dd { margin: 0; }
"""


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: object, fmt: str = ".4g") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, fmt) if isinstance(value, float) else str(value)


def _table(headers: Iterable[str], rows: Iterable[Sequence[object]], numeric: Iterable[int] = (),
           classes: Callable[[int, object], str] | None = None, nowrap: Iterable[int] = ()) -> str:
    """An HTML table; every cell escaped. ``numeric``: columns right-aligned; ``nowrap``: columns kept on one
    line (time stamps); ``classes(col, value)``: a CSS class for a cell (its value decides, e.g. pass/fail)."""
    numeric, nowrap = set(numeric), set(nowrap)
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            cls = " ".join(c for c in ("num" if i in numeric else "", "nowrap" if i in nowrap else "",
                                       classes(i, v) if classes else "") if c)
            cells.append(f"<td{f' class={chr(34)}{cls}{chr(34)}' if cls else ''}>{_esc(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{_esc(anchor)}"><h2>{_esc(title)}</h2>{body}</section>'


def _plot_html(plot: Plot) -> str:
    if plot.png is None:
        return _section(plot.anchor, plot.title, f'<p class="note">{_esc(plot.caption)}</p>')
    data = base64.b64encode(plot.png).decode("ascii")
    return _section(plot.anchor, plot.title, f'<p class="caption">{_esc(plot.caption)}</p>'
                    f'<img alt="{_esc(plot.title)}" src="data:image/png;base64,{data}">')


def _verdict_class(_col: int, value: object) -> str:
    return {"pass": "pass", "FAIL": "fail", "passed": "passed", "failed": "failed"}.get(str(value), "")


def _checks_html(results: list[checks.Result]) -> str:
    rows = [(r.check.requirement, r.check.name, r.check.statement,
             "n/a" if r.value is None else f"{_num(r.value)} {r.check.unit}".strip(),
             f"{r.check.op} {r.check.threshold:g}", "pass" if r.passed else "FAIL", r.note) for r in results]
    return _table(("requirement", "check", "statement", "measured", "required", "result", "note"), rows,
                  numeric=(3, 4), classes=_verdict_class)


def _scorecard_html(card: scorecard.Scorecard | None) -> str:
    if card is None:
        return '<p class="note">No truth linked to this run: no scorecard (pass --dataset).</p>'
    recall = [(kind, d, n, f"{d / n:.1%}" if n else "n/a", "pass" if d == n else "FAIL")
              for kind, (d, n) in card.recall.items()]
    alarms = [(kind, n, "pass" if n == 0 else "FAIL") for kind, n in card.false_alarms.items()]
    verdict = "complete" if card.passed else "INCOMPLETE"
    return (f'<p>Detection scorecard <span class="{"pass" if card.passed else "fail"}">{verdict}</span>.</p>'
            '<div class="grid"><div><h3>injected faults</h3>'
            + (_table(("fault kind", "detected", "injected", "recall", "result"), recall, numeric=(1, 2, 3),
                      classes=_verdict_class) if recall else '<p class="note">no fault injected</p>')
            + "</div><div><h3>false alarms</h3>"
            + _table(("kind of report", "unexplained", "result"), alarms, numeric=(1,), classes=_verdict_class)
            + "</div></div>")


def _utc(obmt_ns: int | None, t0_ns: int) -> str:
    """OBMT as a TCB (~ UTC) time stamp, to the second."""
    if obmt_ns is None:
        return ""
    when = dt.datetime.combine(date_from_obmt_ns(t0_ns), dt.time()) + dt.timedelta(
        microseconds=(int(obmt_ns) - t0_ns) // 1000)
    return when.strftime("%Y-%m-%d %H:%M:%S")


def _limited(rows: list, what: str) -> str:
    return f'<p class="note">{len(rows) - MAX_ROWS} more {what} not listed.</p>' if len(rows) > MAX_ROWS else ""


def _alerts_html(con: duckdb.DuckDBPyConnection, t0_ns: int) -> str:
    rows = con.execute("SELECT alert_id, kind, source_id, ra_deg, dec_deg, g_mag, delta_g_mag, significance_sigma, "
                       "n_transits, first_obmt_ns, last_obmt_ns FROM alerts ORDER BY first_obmt_ns, alert_id")\
        .fetchall()
    if not rows:
        return '<p class="note">No science alert raised.</p>'
    shown = [(a, k, "new" if s is None else s, f"{ra:.5f}", f"{dec:+.5f}", f"{g:.2f}",
              "" if dg is None else f"{dg:+.2f}", f"{sig:.1f}", n, _utc(t1, t0_ns), _utc(t2, t0_ns))
             for a, k, s, ra, dec, g, dg, sig, n, t1, t2 in rows[:MAX_ROWS]]
    return (f"<p>{len(rows)} alert(s).</p>"
            + _table(("alert id", "kind", "source", "RA (deg)", "Dec (deg)", "G (mag)", "ΔG (mag)", "significance",
                      "transits", "first (TCB)", "last (TCB)"), shown, numeric=(0, 2, 3, 4, 5, 6, 7, 8),
                     nowrap=(9, 10))
            + _limited(rows, "alerts"))


def _hk_events_html(con: duckdb.DuckDBPyConnection, t0_ns: int) -> str:
    rows = con.execute("SELECT channel, kind, severity, side, start_ns, end_ns, n_samples, extreme_value, open "
                       "FROM hk_events ORDER BY start_ns, channel").fetchall()
    if not rows:
        return '<p class="note">No HK or attitude event raised.</p>'
    shown = [(c, k, s, side, _utc(a, t0_ns), _utc(b, t0_ns), n, _num(x), "open" if o else "")
             for c, k, s, side, a, b, n, x, o in rows[:MAX_ROWS]]
    severity = {"yellow": "warn", "red": "fail"}
    return (_table(("channel", "kind", "severity", "side", "start (TCB)", "end (TCB)", "samples", "extreme", ""),
                     shown, numeric=(6, 7), nowrap=(4, 5),
                     classes=lambda i, v: severity.get(str(v), "") if i == 2 else "")
            + _limited(rows, "events"))


def _run_html(info: dict) -> str:
    counts = sorted(info.get("counts", {}).items())
    timings = list(info.get("timings_s", {}).items())
    longest = max((float(t) for _, t in timings), default=0.0) or 1.0
    timing_rows = "".join(
        f'<tr><td>{_esc(stage)}</td><td class="num">{float(t):.3f}</td>'
        f'<td><span class="bar" style="width:{200 * float(t) / longest:.0f}px"></span></td></tr>'
        for stage, t in timings)
    total = sum(float(t) for _, t in timings)
    return ('<div class="grid"><div><h3>stage timings</h3>'
            f"<table><thead><tr><th>stage</th><th>s</th><th></th></tr></thead><tbody>{timing_rows}"
            f'<tr><td><b>total</b></td><td class="num"><b>{total:.3f}</b></td><td></td></tr></tbody></table></div>'
            "<div><h3>counts</h3>" + _table(("count", "value"), counts, numeric=(1,)) + "</div></div>")


def read_logbook(dataset: Path | None) -> list[dict]:
    """The dataset's logbook entries (``logbook.json``), or none when the dataset or its logbook is absent."""
    if dataset is None:
        return []
    try:
        return list(json.loads((Path(dataset) / "logbook.json").read_text()).get("logbook", []))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except json.JSONDecodeError as exc:
        raise InputError(f"{dataset}/logbook.json is not valid JSON ({exc}); regenerate the dataset") from None


def _logbook_html(entries: list[dict], passed: bool) -> str:
    if not entries:
        return '<p class="note">No operations logbook (the dataset is not at hand or has no logbook.json).</p>'
    parts = []
    verdict = "PASS" if passed else "FAIL"
    for e in entries:
        anomalies = e.get("anomalies") or {}
        listed = ", ".join(f"{n} {kind}" for kind, n in anomalies.items()) or "none"
        parts.append(
            f"<h3>{_esc(e.get('date', ''))}</h3><dl>"
            f"<dt>operator</dt><dd>{_esc(e.get('operator', ''))}</dd>"
            f"<dt>SOC engineer on call</dt><dd>{_esc(e.get('soc_engineer_on_call', ''))}</dd>"
            f"<dt>transits</dt><dd>{_esc(e.get('transits', ''))}</dd>"
            f"<dt>telemetry anomalies</dt><dd>{_esc(listed)}</dd>"
            f"<dt>note</dt><dd>{_esc(e.get('note', ''))}</dd>"
            f'<dt>pipeline verdict</dt><dd><span class="{verdict}">{verdict}</span></dd></dl>'
            + _table(("downlink pass (TM file)", "station", "octets"),
                     [(p.get("file", ""), p.get("station", ""), f"{int(p.get('octets', 0)):,}")
                      for p in e.get("passes", [])], numeric=(2,)))
    return "".join(parts)


def _trace_html(features: Path | None, cucumber: Path | None) -> str:
    if features is None or not Path(features).is_dir():
        return f'<p class="note">No features folder at {_esc(features)}: pass --features.</p>'
    rows = trace.matrix(Path(features), cucumber)
    source = f"last results from {cucumber}" if cucumber else "no Cucumber report given (--cucumber): not run"
    return (f'<p class="caption">{_esc(source)}.</p>'
            + _table(("requirement", "feature", "scenario", "last result"), rows, classes=_verdict_class))


def build(run_dir: Path, dataset: Path | None = None, features: Path | None = None, cucumber: Path | None = None,
          limits_path: Path | None = None) -> str:
    """The report of ``run_dir`` as one HTML string (its dataset's truth found as ``gaiasim validate`` does)."""
    new_figure(1, 1)  # fail before any work when matplotlib is missing
    info = db.read_run_info(run_dir)
    con = db.connect(run_dir, dataset)
    truth = db.has_truth(con)
    results = checks.evaluate_all(con, truth)
    card = scorecard.scorecard(con) if truth else None
    passed = all(r.passed for r in results) and (card is None or card.passed)
    table = limits.load_limit_table(limits_path or limits.default_limits_path())
    t0 = _day_start_ns(con)
    plots = [transits_per_hour(con, t0), sky_map(con), hk_channels(con, table, t0)]
    if truth:
        plots += [centroid_pulls(con), photometry_residuals(con)]
    else:
        plots += [Plot("pulls", "Centroid pulls vs G", "No truth linked to this run (pass --dataset).", None)]
    root = Path(dataset) if dataset else Path(info["dataset"]) if info.get("dataset") else None
    verdict = "PASS" if passed else "FAIL"
    n_ok = sum(r.passed for r in results)
    state = "not computed (no truth)" if card is None else "complete" if card.passed else "INCOMPLETE"
    sections = [
        ("summary", "Summary", f'<p><span class="verdict {verdict}">{verdict}</span> &nbsp; {n_ok} of {len(results)} '
         f"checks passed; detection scorecard {state}.</p>"),
        *[(p.anchor, p.title, None) for p in plots],
        ("checks", "Validation checks", _checks_html(results)),
        ("scorecard", "Detection scorecard", _scorecard_html(card)),
        ("alerts", "Science alerts", _alerts_html(con, t0)),
        ("hk-events", "HK and attitude events", _hk_events_html(con, t0)),
        ("run", "Pipeline run", _run_html(info)),
        ("logbook", "Operations logbook", _logbook_html(read_logbook(root), passed)),
        ("trace", "Requirement traceability", _trace_html(features, cucumber)),
    ]
    by_anchor = {p.anchor: p for p in plots}
    body = "".join(_plot_html(by_anchor[a]) if part is None else _section(a, t, part) for a, t, part in sections)
    nav = "".join(f'<a href="#{_esc(a)}">{_esc(t)}</a>' for a, t, _ in sections)
    title = f"gaiasim daily report {date_from_obmt_ns(t0) if t0 else ''}: {verdict}"
    meta = " &middot; ".join(_esc(part) for part in (
        f"run {run_dir}", f"dataset {root}", f"pipeline {info.get('pipeline_version', '?')}",
        f"status {info.get('status', '?')}"))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_esc(title)}</title>'
            f"<style>{_CSS}</style></head><body><header><h1>{_esc(title)}</h1>"
            f'<div class="meta">{meta}</div><nav>{nav}</nav></header><main>{body}</main></body></html>\n')


def write(run_dir: Path, out: Path, **options) -> Path:
    """Write the report of ``run_dir`` to ``out`` (atomically); options as :func:`build`."""
    text = build(run_dir, **options)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    io.write_bytes(text.encode("utf-8"), out)
    return out
