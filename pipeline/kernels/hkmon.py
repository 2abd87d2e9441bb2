"""HK monitor kernels: one state machine per channel over its time-ordered samples (pipeline.hkmon).

Array-only: samples, limits and preallocated event slots in, event count and a status code out; nothing
raises. Codes are small integers; :mod:`pipeline.hkmon` turns them into strings.
"""

from __future__ import annotations

import numba
import numpy as np

from pipeline.kernels import jit, jit_parallel

# Event kinds.
KIND_LIMIT = 0
KIND_STALE = 1
KIND_RATE = 2
# Severities: yellow = Yamcs WARNING, red = CRITICAL (docs/facts.md section 8).
SEV_YELLOW = 1
SEV_RED = 2
# Sides.
SIDE_NONE = 0
SIDE_LOW = 1
SIDE_HIGH = 2
# Status codes, per channel.
OK = 0
UNSORTED = 1  # a sample time earlier than the one before it: the channel was not processed past it
FULL = 2  # more events than slots (cannot happen with 3 slots per sample)
#: Event slots per sample: limit, stale and rate events each end at distinct samples, so 3 per sample
#: always suffice.
SLOTS_PER_SAMPLE = 3


@jit
def _emit(j, kind, sev, side, t_start, t_end, n, extreme, is_open,
          o_kind, o_sev, o_side, o_start, o_end, o_n, o_extreme, o_open):
    o_kind[j] = kind
    o_sev[j] = sev
    o_side[j] = side
    o_start[j] = t_start
    o_end[j] = t_end
    o_n[j] = n
    o_extreme[j] = extreme
    o_open[j] = is_open


@jit
def _monitor_channel(t, v, lo, hi, red_low, yellow_low, yellow_high, red_high, persistence, stale_after_ns,
                     max_rate_per_s, out_lo, out_hi,
                     o_kind, o_sev, o_side, o_start, o_end, o_n, o_extreme, o_open):
    """Events of the samples ``t[lo:hi]`` (int64 ns, non-decreasing), ``v[lo:hi]`` (float64, finite) of one
    channel, written to slots ``[out_lo, out_hi)``. Returns ``(n_events, status)``.

    - limit: a run of consecutive samples beyond the yellow limits on one side, kept when it is at least
      ``persistence`` long; red when it holds ``persistence`` consecutive samples beyond the red limit.
    - stale: a run of exactly equal values lasting ``>= stale_after_ns`` (0 disables it).
    - rate: a run of consecutive samples whose |dv/dt| from the sample before exceeds ``max_rate_per_s``
      (0 disables it), kept when at least ``persistence`` long.
    """
    j = out_lo
    # limit state: side of the current run (0 = in limits), its first sample, length, red sub-runs, extreme
    run_side = SIDE_NONE
    run_start = lo
    run_len = 0
    red_len = 0
    red_best = 0
    run_ext = 0.0
    # stale state: first sample of the current run of equal values
    st_start = lo
    # rate state: first violating sample, run length, steepest signed rate
    rt_start = lo
    rt_len = 0
    rt_ext = 0.0
    for i in range(lo, hi):
        x = v[i]
        if i > lo and t[i] < t[i - 1]:
            return j - out_lo, UNSORTED
        if j + 3 > out_hi:
            return j - out_lo, FULL
        # --- limits
        side = SIDE_NONE
        red = False
        if x > yellow_high:
            side = SIDE_HIGH
            red = x > red_high
        elif x < yellow_low:
            side = SIDE_LOW
            red = x < red_low
        if side != run_side:
            if run_side != SIDE_NONE and run_len >= persistence:
                sev = SEV_RED if red_best >= persistence else SEV_YELLOW
                _emit(j, KIND_LIMIT, sev, run_side, t[run_start], t[i - 1], run_len, run_ext, False,
                      o_kind, o_sev, o_side, o_start, o_end, o_n, o_extreme, o_open)
                j += 1
            run_side = side
            run_start = i
            run_len = 0
            red_len = 0
            red_best = 0
            run_ext = x
        if side != SIDE_NONE:
            run_len += 1
            red_len = red_len + 1 if red else 0
            red_best = max(red_best, red_len)
            if (side == SIDE_HIGH and x > run_ext) or (side == SIDE_LOW and x < run_ext):
                run_ext = x
        if i == lo:
            continue
        # --- stale
        if stale_after_ns > 0 and x != v[i - 1]:
            if t[i - 1] - t[st_start] >= stale_after_ns:
                _emit(j, KIND_STALE, SEV_YELLOW, SIDE_NONE, t[st_start], t[i - 1], i - st_start, v[i - 1], False,
                      o_kind, o_sev, o_side, o_start, o_end, o_n, o_extreme, o_open)
                j += 1
            st_start = i
        # --- rate of change
        if max_rate_per_s > 0.0:
            dt_s = (t[i] - t[i - 1]) * 1e-9
            rate = (x - v[i - 1]) / dt_s if dt_s > 0.0 else 0.0
            if dt_s > 0.0 and abs(rate) > max_rate_per_s:
                if rt_len == 0:
                    rt_start = i
                    rt_ext = rate
                elif abs(rate) > abs(rt_ext):
                    rt_ext = rate
                rt_len += 1
            else:
                if rt_len >= persistence:
                    _emit(j, KIND_RATE, SEV_YELLOW, SIDE_HIGH if rt_ext > 0.0 else SIDE_LOW, t[rt_start], t[i - 1],
                          rt_len, rt_ext, False, o_kind, o_sev, o_side, o_start, o_end, o_n, o_extreme, o_open)
                    j += 1
                rt_len = 0
    if hi <= lo:
        return 0, OK
    last = hi - 1
    # Runs still going at the end of the data: open events.
    if run_side != SIDE_NONE and run_len >= persistence:
        sev = SEV_RED if red_best >= persistence else SEV_YELLOW
        _emit(j, KIND_LIMIT, sev, run_side, t[run_start], t[last], run_len, run_ext, True,
              o_kind, o_sev, o_side, o_start, o_end, o_n, o_extreme, o_open)
        j += 1
    if stale_after_ns > 0 and t[last] - t[st_start] >= stale_after_ns:
        _emit(j, KIND_STALE, SEV_YELLOW, SIDE_NONE, t[st_start], t[last], hi - st_start, v[last], True,
              o_kind, o_sev, o_side, o_start, o_end, o_n, o_extreme, o_open)
        j += 1
    if max_rate_per_s > 0.0 and rt_len >= persistence:
        _emit(j, KIND_RATE, SEV_YELLOW, SIDE_HIGH if rt_ext > 0.0 else SIDE_LOW, t[rt_start], t[last],
              rt_len, rt_ext, True, o_kind, o_sev, o_side, o_start, o_end, o_n, o_extreme, o_open)
        j += 1
    return j - out_lo, OK


@jit_parallel
def _monitor_channels(t, v, bounds, limits, persistence, stale_after_ns, max_rate_per_s):
    """Monitor every channel in parallel.

    ``t`` int64 (n,) ns and ``v`` float64 (n,) sorted by (channel, time); channel ``k`` owns samples
    ``[bounds[k], bounds[k + 1])``. Per channel: ``limits`` float64 (c, 4) red_low, yellow_low, yellow_high,
    red_high; ``persistence`` int64 (c,); ``stale_after_ns`` int64 (c,), 0 = off; ``max_rate_per_s``
    float64 (c,), 0 = off. Channel ``k`` writes its events to slots starting at ``3 * bounds[k]``.
    Returns ``(kind, severity, side, start_ns, end_ns, n_samples, extreme, open, counts, status)``.
    """
    n = t.shape[0]
    c = bounds.shape[0] - 1
    cap = SLOTS_PER_SAMPLE * n
    o_kind = np.zeros(cap, dtype=np.int8)
    o_sev = np.zeros(cap, dtype=np.int8)
    o_side = np.zeros(cap, dtype=np.int8)
    o_start = np.zeros(cap, dtype=np.int64)
    o_end = np.zeros(cap, dtype=np.int64)
    o_n = np.zeros(cap, dtype=np.int64)
    o_extreme = np.zeros(cap, dtype=np.float64)
    o_open = np.zeros(cap, dtype=np.bool_)
    counts = np.zeros(c, dtype=np.int64)
    status = np.zeros(c, dtype=np.int8)
    for k in numba.prange(c):
        lo = bounds[k]
        hi = bounds[k + 1]
        m, s = _monitor_channel(
            t, v, lo, hi, limits[k, 0], limits[k, 1], limits[k, 2], limits[k, 3], persistence[k],
            stale_after_ns[k], max_rate_per_s[k], SLOTS_PER_SAMPLE * lo, SLOTS_PER_SAMPLE * hi,
            o_kind, o_sev, o_side, o_start, o_end, o_n, o_extreme, o_open,
        )  # fmt: skip
        counts[k] = m
        status[k] = s
    return o_kind, o_sev, o_side, o_start, o_end, o_n, o_extreme, o_open, counts, status
