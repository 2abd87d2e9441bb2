"""Slow, obvious reference for the HK monitor (pipeline.hkmon): plain Python loops over runs of samples.

Same contract as ``pipeline.hkmon.check_hk_limits`` (see its module docstring), written as "find each
run, then decide": classify every sample, cut the series into maximal runs, keep the runs that are long
enough. It shares no code with the pipeline's state machine.
"""

from __future__ import annotations


def _runs(labels: list) -> list[tuple[int, int]]:
    """(first, last) index of each maximal run of equal, non-None labels."""
    out = []
    i = 0
    while i < len(labels):
        if labels[i] is None:
            i += 1
            continue
        j = i
        while j + 1 < len(labels) and labels[j + 1] == labels[i]:
            j += 1
        out.append((i, j))
        i = j + 1
    return out


def _longest(flags: list[bool]) -> int:
    best = cur = 0
    for f in flags:
        cur = cur + 1 if f else 0
        best = max(best, cur)
    return best


def monitor_channel(t: list[int], v: list[float], lim) -> list[dict]:
    """Events of one channel's samples, already in time order (``lim`` a ``ChannelLimits``)."""
    n = len(t)
    events = []
    p = lim.persistence
    # limits
    side = ["high" if x > lim.yellow_high else "low" if x < lim.yellow_low else None for x in v]
    for i, j in _runs(side):
        if j - i + 1 < p:
            continue
        run = v[i : j + 1]
        if side[i] == "high":
            red = [x > lim.red_high for x in run]
            extreme = max(run)
        else:
            red = [x < lim.red_low for x in run]
            extreme = min(run)
        events.append(dict(kind="limit", severity="red" if _longest(red) >= p else "yellow", side=side[i],
                           start_ns=t[i], end_ns=t[j], n_samples=j - i + 1, extreme_value=extreme, open=j == n - 1))
    # stale: runs of one exact value
    stale_ns = round(lim.stale_after_s * 1e9)
    if stale_ns > 0:
        group = []
        g = 0
        for k in range(n):
            if k > 0 and v[k] != v[k - 1]:
                g += 1
            group.append(g)
        for i, j in _runs(group):
            if t[j] - t[i] >= stale_ns:
                events.append(dict(kind="stale", severity="yellow", side="", start_ns=t[i], end_ns=t[j],
                                   n_samples=j - i + 1, extreme_value=v[i], open=j == n - 1))
    # rate of change: sample k is too steep when the step ending on it is
    if lim.max_rate_per_s > 0.0:
        rates: list[float | None] = [None]
        for k in range(1, n):
            dt_s = (t[k] - t[k - 1]) * 1e-9
            r = (v[k] - v[k - 1]) / dt_s if dt_s > 0.0 else 0.0
            rates.append(r if dt_s > 0.0 and abs(r) > lim.max_rate_per_s else None)
        steep = [None if r is None else True for r in rates]
        for i, j in _runs(steep):
            if j - i + 1 < p:
                continue
            worst = max(rates[i : j + 1], key=abs)  # the first of equal magnitudes
            events.append(dict(kind="rate", severity="yellow", side="high" if worst > 0 else "low", start_ns=t[i],
                               end_ns=t[j], n_samples=j - i + 1, extreme_value=worst, open=j == n - 1))
    return events


def check_hk_limits(obmt_ns, channel, value, limits) -> list[dict]:
    """Every event of the long-format samples, channel by channel; channels without limits are skipped."""
    samples = sorted(zip((str(c) for c in channel), (int(x) for x in obmt_ns), (float(x) for x in value),
                         strict=True), key=lambda s: (s[0], s[1]))
    out = []
    for name in sorted({s[0] for s in samples}):
        if name not in limits:
            continue
        mine = [s for s in samples if s[0] == name and s[2] == s[2] and abs(s[2]) != float("inf")]
        for e in monitor_channel([s[1] for s in mine], [s[2] for s in mine], limits[name]):
            out.append({"channel": name, **e})
    return out
