"""The daily report: one self-contained HTML page per run (``gaiasim report RUN --html FILE``).

Plots (:mod:`gaiasim.validate.report_plots`) are matplotlib (Agg) PNGs embedded as base64 data URIs and the
CSS is inline: nothing is fetched, so the file can be mailed or archived on its own. Every string that came
from data (channel names, file names, logbook text, check notes, feature names) goes through
:func:`html.escape`.

The data come the way ``gaiasim validate`` reads them: the views of :func:`gaiasim.validate.db.connect`
(hive-partitioned run tables included), :func:`checks.evaluate_all` and :func:`scorecard.scorecard`. The
overall verdict is validate's: every check passes and the detection scorecard is complete.

matplotlib is the ``report`` extra, imported lazily so the core install works without it.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import duckdb

from gaiasim.sim.timescale import date_from_obmt_ns
from gaiasim.validate import anomalies as an
from gaiasim.validate import approvals, checks, day_trends, db, fidelity, scorecard, trace
from gaiasim.validate import history as hist
from gaiasim.validate import report_plots as rp
from gaiasim.validate.report_plots import MISSING_EXTRA
from pipeline import io, limits
from pipeline.io import InputError

__all__ = ["MISSING_EXTRA", "build", "read_logbook", "write"]

#: Rows of the alerts and HK-event tables at most (the rest are counted, not listed).
MAX_ROWS = 300


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
.na { color: #57606a; font-style: italic; }
.verdict.PASS { background: #1a7f37; color: #fff; } .verdict.FAIL { background: #cf222e; color: #fff; }
.grid { display: flex; flex-wrap: wrap; gap: 24px; }
.bar { background: #4a7bd0; height: 10px; display: inline-block; vertical-align: middle; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; margin: 6px 0; }
dt { color: #555; } dd { margin: 0; }
img.spark { display: inline; vertical-align: middle; }
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


def _plot_html(plot: rp.Plot) -> str:
    if plot.png is None:
        return _section(plot.anchor, plot.title, f'<p class="note">{_esc(plot.caption)}</p>')
    data = base64.b64encode(plot.png).decode("ascii")
    alt = plot.title + (f"; marked: {', '.join(plot.marks)}" if plot.marks else "")  # the legend of the marks
    return _section(plot.anchor, plot.title, f'<p class="caption">{_esc(plot.caption)}</p>'
                    f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">')


def _verdict_class(_col: int, value: object) -> str:
    return {"pass": "pass", "FAIL": "fail", "n/a": "na", "passed": "passed", "failed": "failed"}.get(str(value), "")


def _checks_html(results: list[checks.Result]) -> str:
    rows = [(r.check.requirement, r.check.name, r.check.statement,
             "n/a" if r.value is None else f"{_num(r.value)} {r.check.unit}".strip(),
             f"{r.check.op} {r.check.threshold:g}", r.status, r.note) for r in results]
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


def _anomalies_html(timeline: an.Timeline, t0_ns: int, truth: bool) -> str:
    """The anomalies of the time plots one by one with their times, then every kind of anomaly counted (first
    and last time), so none is left out."""
    source = ("what the run reported, what the fault ledgers injected and the downlink passes" if truth else
              "what the run reported and the downlink passes (no truth linked: pass --dataset for the ledgers)")
    listed = timeline.items
    rows = [(m.category, m.source, _utc(m.start_ns, t0_ns), _utc(m.end_ns, t0_ns) if m.end_ns != m.start_ns else "",
             m.detail) for m in listed[:MAX_ROWS]]
    out = (f'<p class="caption">The anomalies marked on the time plots ({_esc(source)}), in time order.</p>'
           + (_table(("anomaly", "source", "start (TCB)", "end (TCB)", "detail"), rows, nowrap=(2, 3))
              if rows else '<p class="note">No attitude glitch, HK event, data gap or downlink pass.</p>'))
    shown = min(len(listed), MAX_ROWS)
    left = sum(t.count for (c, _), t in timeline.totals.items() if c in an.TIMELINE) - shown
    if left:
        out += f'<p class="note">{left} more not listed: every kind is counted below.</p>'
    if timeline.totals:
        out += ("<h3>every anomaly, by kind</h3>"
                + _table(("anomaly", "source", "count", "first (TCB)", "last (TCB)"),
                         [(c, src, t.count, _utc(t.first_ns, t0_ns), _utc(t.last_ns, t0_ns))
                          for (c, src), t in sorted(timeline.totals.items())], numeric=(2,), nowrap=(3, 4)))
    return out


def _trends_html(results: list[checks.Result], card: scorecard.Scorecard | None,
                 previous: day_trends.PreviousDays) -> str:
    """Every check and recall today beside the previous days', with a sparkline and a mark (day_trends)."""
    if not previous.runs:
        return (f'<p class="note">No previous days: the results database {_esc(previous.database)} holds no '
                f"validation {_esc(previous.chosen)} to compare this run with.</p>")
    rows = day_trends.compare(results, card, previous)
    body = []
    for t in rows:
        before = [v for v in t.previous if v is not None]
        if before or t.today is not None:
            png = base64.b64encode(rp.sparkline(t.previous, t.today, bool(t.flag), t.threshold)).decode("ascii")
            spark = f'<td><img class="spark" alt="trend of {_esc(t.metric)}" src="data:image/png;base64,{png}"></td>'
        else:
            spark = '<td class="na">no value on any day</td>'
        mark = f'<span class="fail">&#9650; {_esc(t.flag)}</span>' if t.flag else ""
        cells = [_esc(t.requirement), _esc(t.metric),
                 f'<td class="num">{_esc("n/a" if t.today is None else f"{_num(t.today)} {t.unit}".strip())}</td>',
                 f'<td class="num">{_esc(f"{_num(min(before))} .. {_num(max(before))}" if before else "n/a")}</td>',
                 f'<td class="num">{len(before)}</td>',
                 spark,
                 f"<td>{mark}</td>"]
        body.append("<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in cells) + "</tr>")
    first, last = previous.recorded_at[0], previous.recorded_at[-1]
    head = "".join(f"<th>{h}</th>" for h in ("requirement", "metric", "today", "previous range", "days",
                                             "trend (previous days, today last)", "mark"))
    return (f'<p class="caption">This run against {len(previous.runs)} previous day(s): the latest validation '
            f"of each run, the last {previous.days} at most, {_esc(previous.chosen)} in {_esc(previous.database)}"
            f" (validated {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC). &#9650; marks a "
            "value outside the previous days' range, or moved from their median by more than "
            f"{day_trends.MOVE_OF_MARGIN:g} of the median's margin to the threshold; in the sparklines the "
            "previous days' range is shaded and the threshold dashed (when in view). A day no different from "
            f"{len(previous.runs)} previous ones still falls outside their range with probability "
            f"2/{len(previous.runs) + 1} (continuous values): the fewer the days, the more marks mean nothing.</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


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


def _logbook_counts_html(entries: list[dict], card: scorecard.Scorecard | None) -> str:
    """The logbook's anomaly counts (over its days) beside the scorecard's injected counts, kind by kind."""
    if card is None:
        return ""
    logged: dict[str, int] = {}
    for e in entries:
        for kind, n in (e.get("anomalies") or {}).items():
            logged[kind] = logged.get(kind, 0) + int(n)
    # Transients are science events, not telemetry anomalies: the logbook does not log them.
    injected = {kind: n for kind, (_, n) in card.recall.items() if not kind.startswith("transient_")}
    rows = [(kind, logged.get(kind, 0), injected.get(kind, 0),
             "agree" if logged.get(kind, 0) == injected.get(kind, 0) else "DIFFER")
            for kind in sorted(set(logged) | set(injected))]
    if not rows:
        return '<p class="note">Neither the logbook nor the scorecard counts an injected anomaly.</p>'
    definition = entries[0].get("anomalies_counted")
    note = (f"The logbook counts {_esc(definition)}." if definition else
            "This logbook was written by an older gaiasim, which counted only the faults in the TM files named "
            "with the day's date: the day's last hours come down in the next day's first pass, whose faults it "
            "left out (and it never counted HK anomalies). Regenerate the dataset for a logbook that counts what "
            "the scorecard counts.")
    return ("<h3>anomaly counts: logbook and scorecard</h3>"
            f'<p class="caption">{note}</p>'
            + _table(("anomaly kind", "logbook", "scorecard: injected", ""), rows, numeric=(1, 2),
                     classes=lambda i, v: ("pass" if v == "agree" else "fail") if i == 3 else ""))


def _logbook_html(entries: list[dict], passed: bool, card: scorecard.Scorecard | None = None) -> str:
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
    return "".join(parts) + _logbook_counts_html(entries, card)


def _trace_html(features: Path | None, cucumber: Path | None) -> str:
    if features is None or not Path(features).is_dir():
        return f'<p class="note">No features folder at {_esc(features)}: pass --features.</p>'
    rows = trace.matrix(Path(features), cucumber)
    source = f"last results from {cucumber}" if cucumber else "no Cucumber report given (--cucumber): not run"
    return (f'<p class="caption">{_esc(source)}.</p>'
            + _table(("requirement", "feature", "scenario", "last result"), rows, classes=_verdict_class))


def _fidelity_html(con, truth: bool) -> str:
    if not truth:
        return '<p class="note">No truth linked to this run (pass --dataset): nothing to measure.</p>'
    rows = fidelity.measure(con)
    return ('<p class="caption">Robust scatter of run minus truth beside Gaia\'s published curves '
            "(Lindegren+2021 Fig. A.1; PyGaia's per-transit G model); the pull width is the error-inflation "
            "factor (gaiasim fidelity).</p>"
            + _table(("quantity", "G", "n", "measured", "Gaia", "ratio"),
                     [(r.quantity, f"{r.g_lo:g}-{r.g_hi:g}", r.n, f"{r.measured:.4g} {r.unit}".strip(),
                       "-" if r.reference is None else f"{r.reference:.4g} {r.unit}".strip(),
                       "-" if r.ratio is None else f"{r.ratio:.2f}") for r in rows], numeric=(2, 3, 4, 5)))


def _approvals_html(found: list) -> str:
    if not found:
        return '<p class="note">No approved difference involves this run (gaiasim baseline approve).</p>'
    return _table(("approved (UTC)", "by", "reason", "tables", "baseline", "candidate"),
                  [(f"{a.approved_at:%Y-%m-%d %H:%M}", a.approved_by, a.reason, a.tables,
                    f"{a.baseline_run} ({a.baseline_sut or '?'})", f"{a.candidate_run} ({a.candidate_sut or '?'})")
                   for a in found])


def build(run_dir: Path, dataset: Path | None = None, features: Path | None = None, cucumber: Path | None = None,
          limits_path: Path | None = None, history: Path | None = None,
          trend_days: int = day_trends.TREND_DAYS) -> str:
    """The report of ``run_dir`` as one HTML string (its dataset's truth found as ``gaiasim validate`` does);
    the previous days it is compared with (the last ``trend_days``) and the approved baseline differences that
    involve it come from the results database ``history``."""
    rp.new_figure(1, 1)  # fail before any work when matplotlib is missing
    info = db.read_run_info(run_dir)
    con = db.connect(run_dir, dataset)
    truth = db.has_truth(con)
    results = checks.evaluate_all(con, truth)
    card = scorecard.scorecard(con) if truth else None
    passed = not any(r.failed for r in results) and (card is None or card.passed)
    table = limits.load_limit_table(limits_path or limits.default_limits_path())
    t0 = rp.day_start_ns(con)
    marks = an.collect(con, truth)
    plots = [rp.transits_per_hour(con, t0, marks), rp.sky_map(con), rp.hk_channels(con, table, t0, marks)]
    if truth:
        plots += [rp.centroid_pulls(con), rp.photometry_residuals(con)]
    else:
        plots += [rp.Plot("pulls", "Centroid pulls vs G", "No truth linked to this run (pass --dataset).", None)]
    root = Path(dataset) if dataset else Path(info["dataset"]) if info.get("dataset") else None
    verdict = "PASS" if passed else "FAIL"
    state = "not computed (no truth)" if card is None else "complete" if card.passed else "INCOMPLETE"
    sections = [
        ("summary", "Summary", f'<p><span class="verdict {verdict}">{verdict}</span> &nbsp; {checks.tally(results)}; '
         f"detection scorecard {state}.</p>"),
        *[(p.anchor, p.title, None) for p in plots],
        ("checks", "Validation checks", _checks_html(results)),
        ("scorecard", "Detection scorecard", _scorecard_html(card)),
        ("fidelity", "Fidelity of the simulated day", _fidelity_html(con, truth)),
        ("alerts", "Science alerts", _alerts_html(con, t0)),
        ("hk-events", "HK and attitude events", _hk_events_html(con, t0)),
        ("anomalies", "Anomalies of the day", _anomalies_html(marks, t0, truth)),
        ("trends", "Trends against the previous days",
         _trends_html(results, card, day_trends.previous_days(history or hist.default_path(), run_dir, trend_days))),
        ("run", "Pipeline run", _run_html(info)),
        ("approvals", "Approved baseline differences",
         _approvals_html(approvals.for_run(history or hist.default_path(), run_dir))),
        ("logbook", "Operations logbook", _logbook_html(read_logbook(root), passed, card)),
        ("trace", "Requirement traceability", _trace_html(features, cucumber)),
    ]
    by_anchor = {p.anchor: p for p in plots}
    body = "".join(_plot_html(by_anchor[a]) if part is None else _section(a, t, part) for a, t, part in sections)
    nav = "".join(f'<a href="#{_esc(a)}">{_esc(t)}</a>' for a, t, _ in sections)
    title = f"gaiasim daily report {date_from_obmt_ns(t0) if t0 else ''}: {verdict}"
    meta = " &middot; ".join(_esc(part) for part in (
        f"run {run_dir}", f"dataset {root}", f"pipeline {info.get('pipeline_version', '?')}",
        f"system under test {(info.get('sut') or {}).get('identity', '?')}",
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
