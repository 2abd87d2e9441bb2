"""The daily report's plots (:mod:`gaiasim.validate.html_report`): matplotlib figures on the Agg canvas,
returned as PNG bytes, from the views of :func:`gaiasim.validate.db.connect`.

matplotlib is the ``report`` extra: imported inside :func:`new_figure` only, so importing this module (and
the core install) works without it; a missing matplotlib is an :class:`InputError` saying how to install it.
Scatter plots draw a seeded reservoir sample of at most MAX_POINTS rows; binned statistics use every row.
"""

from __future__ import annotations

import io as _io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np

from gaiasim.sim.timescale import date_from_obmt_ns, obmt_ns_from_date
from gaiasim.validate import checks
from gaiasim.validate.anomalies import CATEGORIES, TIMELINE, Timeline
from pipeline import limits
from pipeline.io import InputError

MISSING_EXTRA = "install the report extra: pip install -e '.[report]'"
#: Points drawn in a scatter plot at most: a seeded reservoir sample (binned statistics use every row).
MAX_POINTS = 40_000
NS_PER_HOUR = 3_600_000_000_000
_SEVERITY_COLOUR = {"yellow": "#e0a800", "red": "#d62728"}
_FOV_COLOUR = {1: "#1f77b4", 2: "#ff7f0e"}
#: Colour of each anomaly category on the time plots (gaiasim.validate.anomalies.TIMELINE).
_ANOMALY_COLOUR = {"attitude glitch": "#9467bd", "HK limit violation": "#d62728", "HK stale channel": "#8c564b",
                   "HK rate of change": "#e377c2", "data gap (lost packets)": "#2ca02c", "downlink pass": "0.3"}
#: An event shorter than this is drawn as a line, a longer one as a span, h.
MIN_SPAN_H = 0.05


@dataclass(frozen=True)
class Plot:
    anchor: str  # id of the section in the page
    title: str
    caption: str  # what the plot shows, in the operations team's words
    png: bytes | None  # None when there is nothing to draw (the caption says why)
    marks: tuple[str, ...] = ()  # the legend of the marks drawn (anomalies), as read back from the figure


def require_matplotlib() -> None:
    """Refuse (one line naming the extra) when matplotlib is not installed."""
    try:
        import matplotlib.backends.backend_agg
        import matplotlib.figure  # noqa: F401
    except ImportError:
        raise InputError(MISSING_EXTRA) from None


def new_figure(width_in: float, height_in: float, layout: str | None = "constrained"):
    """A matplotlib Figure on the Agg canvas (no pyplot: no global state, no display needed)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig) -> bytes:
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def day_start_ns(con: duckdb.DuckDBPyConnection) -> int:
    """OBMT at midnight (TCB ~ UTC) of the first day of the run: the origin of every time axis."""
    first = con.execute("SELECT least((SELECT min(obmt_ns) FROM transits), (SELECT min(obmt_ns) FROM hk))")\
        .fetchall()[0][0]  # fetched to the end: leaves the connection free for con.sql(...) (DuckDB 2)
    return obmt_ns_from_date(date_from_obmt_ns(int(first))) if first is not None else 0


def _hours(obmt_ns: np.ndarray | int, t0_ns: int) -> np.ndarray:
    return (np.asarray(obmt_ns, dtype=np.int64) - t0_ns) / NS_PER_HOUR


def _sample(sql: str) -> str:
    """``sql`` cut to at most MAX_POINTS rows, the same rows every time (seeded reservoir sample)."""
    return f"SELECT * FROM ({sql}) USING SAMPLE reservoir({MAX_POINTS} ROWS) REPEATABLE (42)"


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


# --- plots ----------------------------------------------------------------------------------------------------


def _marks_legend(fig) -> tuple[str, ...]:
    """The labels of the figure-level legend (the anomaly marks), read back from the drawn figure."""
    return tuple(t.get_text() for legend in fig.legends for t in legend.get_texts())


#: Categories also marked across the transits plot itself (few a day); every category has its row in the strip.
_ACROSS = ("attitude glitch", "HK limit violation", "HK stale channel", "HK rate of change", "downlink pass")


def _spans(ax, start_h: np.ndarray, end_h: np.ndarray, colour: str, y: tuple[float, float] | None = None):
    """Spans over [start, end] across ``ax``, or over ``y`` (data units); those shorter than MIN_SPAN_H as
    lines, all in one collection (a day may have thousands). Returns an artist drawn (a legend handle)."""
    short = end_h - start_h < MIN_SPAN_H
    handle = None
    if short.any():
        lines = dict(color=colour, lw=1.1, alpha=0.8, zorder=1)
        handle = (ax.vlines(start_h[short], 0, 1, transform=ax.get_xaxis_transform(), **lines) if y is None
                  else ax.vlines(start_h[short], *y, **lines))
    for a, b in zip(start_h[~short], end_h[~short], strict=True):
        handle = (ax.axvspan(a, b, color=colour, alpha=0.3, lw=0, zorder=0) if y is None
                  else ax.fill_between([a, b], *y, color=colour, alpha=0.6, lw=0))
    return handle


def mark_anomalies(ax, strip, timeline: Timeline, t0_ns: int) -> tuple[list, list[str]]:
    """Mark the anomalies of :data:`TIMELINE` on a time plot ``ax`` and its ``strip`` below (hours since
    ``t0_ns``). The strip has a row per category: what the run reported as ticks or spans in the lower half,
    what the ledgers injected as triangles above them, the downlink passes as dashed ticks. Across ``ax``, the
    reported attitude glitches and HK events as lines or spans, and the passes dashed with their TM file's
    name. Returns the legend's handles and labels (with every anomaly's count, and how many are drawn when
    the timeline kept only the first of them)."""
    handles, labels = [], []
    top = ax.get_xaxis_transform()  # x in data, y in axes fraction
    anomalies = [a for a in timeline.items if a.timed]
    rows = [c for c in TIMELINE if any(a.category == c for a in anomalies)]
    for row, category in enumerate(rows):
        colour = _ANOMALY_COLOUR[category]
        for source in ("reported", "injected", "downlink"):
            items = [a for a in anomalies if a.category == category and a.source == source]
            if not items:
                continue
            start = _hours(np.array([a.start_ns for a in items]), t0_ns)
            end = _hours(np.array([a.end_ns for a in items]), t0_ns)
            if source == "injected":
                handle, = strip.plot(start, np.full(len(start), row + 0.2), "v", color=colour, ms=6, mec="k",
                                     mew=0.4, ls="none")
            elif source == "downlink":
                handle = strip.vlines(start, row - 0.4, row + 0.4, color=colour, ls="--", lw=0.9)
                for x, a in zip(start, items, strict=True):
                    ax.axvline(x, color=colour, ls="--", lw=0.9, zorder=1)
                    ax.text(x, 0.96, a.detail.rsplit("/", 1)[-1], transform=top, rotation=90, ha="right",
                            va="top", fontsize="x-small", color=colour, zorder=6)  # above the FoV legend
            else:
                handle = _spans(strip, start, end, colour, (row - 0.4, row))
                if category in _ACROSS:
                    _spans(ax, start, end, colour)
            handles.append(handle)
            total = timeline.total(category, source)
            noun = ("pass" if total == 1 else "passes") if source == "downlink" else source
            labels.append(f"{category}: {total} {noun}" + (f" (first {len(items)} drawn)" if total > len(items)
                                                            else ""))
    strip.set_yticks(range(len(rows)), rows, fontsize="small")
    strip.set_ylim(len(rows) - 0.5, -0.5)
    strip.grid(axis="x", alpha=0.3)
    return handles, labels


def transits_per_hour(con: duckdb.DuckDBPyConnection, t0_ns: int, timeline: Timeline | None = None) -> Plot:
    rows = con.execute("SELECT fov, CAST(floor((obmt_ns - ?) / ?) AS INTEGER) AS hour, count(*) FROM transits "
                       "GROUP BY ALL ORDER BY hour, fov", [t0_ns, NS_PER_HOUR]).fetchall()
    timed = [a for a in timeline.items if a.timed and a.category in TIMELINE] if timeline else []
    n_rows = len({a.category for a in timed})
    fig = new_figure(12, 3.2 + (0.6 + 0.3 * n_rows if timed else 0))
    if timed:
        ax, strip = fig.subplots(2, 1, sharex=True, height_ratios=(3.2, 0.3 * n_rows + 0.2))
    else:
        ax, strip = fig.add_subplot(), None
    for k, fov in enumerate((1, 2)):
        hours = np.array([h for f, h, _ in rows if f == fov])
        counts = np.array([n for f, _, n in rows if f == fov])
        if hours.size:
            ax.bar(hours + 0.2 + 0.4 * k, counts, width=0.4, color=_FOV_COLOUR[fov],
                   label=f"FoV {fov} ({counts.sum()} transits)", zorder=2)
    if rows:
        ax.legend(loc="upper right", fontsize="small")
    else:
        _empty(ax, "no transits")
    if strip is not None:
        handles, labels = mark_anomalies(ax, strip, timeline, t0_ns)
        fig.legend(handles, labels, loc="outside lower center", ncols=4, fontsize="small")
    last_h = max([h + 1 for _, h, _ in rows] + [float(_hours(a.end_ns, t0_ns)) + 0.5 for a in timed], default=0)
    (strip if strip is not None else ax).set_xlabel(f"hour since {date_from_obmt_ns(t0_ns)} 00:00 (TCB ~ UTC)")
    ax.set_ylabel("transits per hour")
    ax.set_xlim(0, max(24, last_h))
    ax.set_xticks(np.arange(0, ax.get_xlim()[1] + 1, 3))
    ax.grid(axis="y", alpha=0.3)
    caption = "Transits out of the pipeline per hour, by field of view."
    if timed:
        caption += (" Below, a row per kind of anomaly: what the run reported (ticks, or spans when longer than "
                    "3 min) and what the fault ledgers injected (triangles); the attitude glitches and HK events "
                    "the run reported are also drawn across the plot, and the downlink passes dashed at the pass "
                    "start their TM file names. Listed with their times under Anomalies of the day.")
    return Plot("transits", "Transits per hour", caption, png_bytes(fig), _marks_legend(fig))


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


def hk_channels(con: duckdb.DuckDBPyConnection, table: limits.LimitTable | None, t0_ns: int,
                timeline: Timeline | None = None) -> Plot:
    """Every HK channel with its limits, the events the run reported (shaded by severity) and the anomalies
    the HK ledger injected into it (hatched, from ``timeline``)."""
    channels = [r[0] for r in con.execute("SELECT DISTINCT channel FROM hk ORDER BY channel").fetchall()]
    events = con.execute("SELECT channel, kind, severity, start_ns, end_ns FROM hk_events "
                         "ORDER BY channel, start_ns").fetchall()
    injected = [a for a in (timeline.items if timeline else ()) if a.source == "injected" and a.channel is not None
                and a.timed]
    ncols = 2
    nrows = max(1, math.ceil(len(channels) / ncols))
    fig = new_figure(12, 2.3 * nrows + 0.4 + (0.5 if events or injected else 0))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True)
    for ax in axes.flat[len(channels):]:
        ax.set_visible(False)
    if not channels:
        axes[0, 0].set_visible(True)
        _empty(axes[0, 0], "no housekeeping samples")
    legend: dict[str, object] = {}  # label -> a handle drawn with that style
    reported: dict[tuple[str, str], int] = {}
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
        for ch, kind, severity, start, end in events:
            if ch == channel:
                a, b = _hours(start, t0_ns), _hours(end, t0_ns)
                span = ax.axvspan(a, max(b, a + MIN_SPAN_H), color=_SEVERITY_COLOUR.get(severity, "0.5"), alpha=0.3,
                                  lw=0)
                key = (CATEGORIES.get(("reported", kind), kind), severity)
                reported[key] = reported.get(key, 0) + 1
                legend.setdefault(key, span)
                n_events += 1
        for item in (i for i in injected if i.channel == channel):
            a, b = _hours(item.start_ns, t0_ns), _hours(item.end_ns, t0_ns)
            legend.setdefault(item.category, ax.axvspan(a, max(b, a + MIN_SPAN_H), fill=False, hatch="///",
                                                        edgecolor="k", lw=0.8, alpha=0.7))
        if n_events:
            title += f"   ({n_events} event{'s' if n_events > 1 else ''})"
        ax.set_title(title, fontsize="small", loc="left")
        ax.tick_params(labelsize="small")
        ax.grid(alpha=0.25)
    for ax in axes[-1]:
        ax.set_xlabel("hour (TCB ~ UTC)", fontsize="small")
    labels, handles = [], []
    for (category, severity), n in sorted(reported.items()):
        labels.append(f"{category}, {severity}: {n} reported")
        handles.append(legend[(category, severity)])
    shown = [i for i in injected if i.channel in channels]
    for category in sorted({i.category for i in shown}):
        labels.append(f"{category}: {sum(i.category == category for i in shown)} injected")
        handles.append(legend[category])
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize="small")
    return Plot("hk", "Housekeeping", "Every HK channel with its yellow and red limits (dashed, "
                "pipeline/data/hk_limits.toml); shaded spans are the HK events the monitor raised "
                "(yellow or red by severity), hatched spans the anomalies the HK ledger injected (with truth).",
                png_bytes(fig), _marks_legend(fig))


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
    # The clean fits' pulls the checks read (gaiasim.validate.db.SAMPLE_PAIRS), with the continuous G of the source.
    pts = con.execute(_sample("SELECT g_mag, al_pull AS pull FROM sample_pairs WHERE flags = 0")).fetchnumpy()
    # The bins REQ-IPD-001/002 judge, computed by the check's own query over every row.
    bins = con.execute(f"SELECT g_bin, n, bias, width FROM ({checks._PULL_BINS}) ORDER BY g_bin").fetchnumpy()
    fig = new_figure(12, 4.0)
    ax = fig.add_subplot()
    g, pull = np.asarray(pts["g_mag"], dtype=np.float64), np.asarray(pts["pull"], dtype=np.float64)
    if g.size:
        ax.scatter(g, np.clip(pull, -6, 6), s=2, alpha=0.25, lw=0, color="0.35", rasterized=True)
        ax.scatter([], [], s=12, color="0.35", label="pull of one CCD image (clipped at ±6)")  # legend proxy
        ax.axhline(0, color="k", lw=0.8)
        for s in (-1, 1):
            ax.axhline(s, color="k", lw=0.6, ls=":")
        if len(bins["g_bin"]):
            ax.errorbar(bins["g_bin"] + 0.5, bins["bias"], yerr=bins["width"], fmt="o", color="#d62728",
                        capsize=3, label="median ± normalised MAD per G bin (the check's bins)")
        ax.legend(loc="lower left", fontsize="small")
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


def sparkline(previous: Sequence[float | None], today: float | None, marked: bool, threshold: float) -> bytes:
    """A small PNG of one metric: the previous days (grey, oldest left; their range shaded), today last (red
    when marked), the threshold dashed when it lies within the values' span."""
    fig = new_figure(1.9, 0.45, layout=None)  # one axes placed by hand: nothing to lay out
    ax = fig.add_axes((0.02, 0.08, 0.96, 0.84))
    ax.set_axis_off()
    x = np.arange(len(previous), dtype=np.float64)
    y = np.array([np.nan if v is None else v for v in previous], dtype=np.float64)
    ok = np.isfinite(y)
    if ok.any():
        ax.axhspan(np.min(y[ok]), np.max(y[ok]), color="0.85", lw=0)
        ax.plot(x[ok], y[ok], "-", color="0.55", lw=0.9)
        ax.plot(x[ok], y[ok], "o", color="0.4", ms=2.2)
    values = list(y[ok]) + ([today] if today is not None and math.isfinite(today) else [])
    if today is not None and math.isfinite(today):
        ax.plot([len(previous)], [today], "o", color="#cf222e" if marked else "#1f4e79", ms=4.5, mec="k", mew=0.4)
    if values:
        lo, hi = min(values), max(values)
        pad = 0.15 * (hi - lo) if hi > lo else max(abs(hi) * 0.05, 1e-3)
        ax.set_ylim(lo - pad, hi + pad)
        if lo - pad <= threshold <= hi + pad:
            ax.axhline(threshold, color="#d62728", ls="--", lw=0.7)
    ax.set_xlim(-0.5, len(previous) + 0.5)
    return png_bytes(fig)
