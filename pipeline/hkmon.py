"""Payload-health monitoring: housekeeping samples checked against a limit table -> ``hk_events``.

Three checks per channel (limits from :mod:`pipeline.limits`, conventions in docs/facts.md section 8):

- ``limit``: the value is beyond a yellow limit (WARNING) or a red limit (CRITICAL), strictly below a low
  limit or strictly above a high one. An event is raised after ``persistence`` consecutive out-of-limit
  samples on one side (COSMOS persistence); it starts at the first of them and ends at the last
  out-of-limit sample before the value comes back within limits (or crosses to the other side).
  **Escalation**: a yellow excursion that goes red within the same excursion is ONE event with severity
  red (the highest severity wins, as in Yamcs). Red needs ``persistence`` consecutive red samples too;
  a shorter red blip inside a yellow excursion leaves it yellow. ``extreme_value`` is the farthest value
  reached on the event's side.
- ``stale``: the value stays exactly unchanged for ``>= stale_after_s`` (``start_ns`` = first sample with
  that value, ``end_ns`` = last); severity yellow, side ``''``, ``extreme_value`` = the stuck value.
- ``rate``: ``|dv/dt|`` between consecutive samples exceeds ``max_rate_per_s`` for ``persistence``
  consecutive samples (a sample counts when the step that ends on it is too steep); severity yellow,
  side ``high`` (rising) or ``low`` (falling) by the steepest step, ``extreme_value`` = that rate (unit/s).

An event whose run reaches the last sample of its channel is ``open`` (``end_ns`` = the last sample).
Non-finite values are dropped before the checks, with a log warning. Samples of channels without limits
are skipped, with a log warning.
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa

from pipeline import schemas
from pipeline.kernels import hkmon as _k
from pipeline.limits import LimitTable

log = logging.getLogger(__name__)

KINDS = {_k.KIND_LIMIT: "limit", _k.KIND_STALE: "stale", _k.KIND_RATE: "rate"}
SEVERITIES = {_k.SEV_YELLOW: "yellow", _k.SEV_RED: "red"}
SIDES = {_k.SIDE_NONE: "", _k.SIDE_LOW: "low", _k.SIDE_HIGH: "high"}


def _lookup(codes: np.ndarray, names: dict[int, str]) -> np.ndarray:
    table = np.array([names.get(i, "") for i in range(max(names) + 1)], dtype=object)
    return table[codes.astype(np.int64)]


def check_hk_limits(obmt_ns: np.ndarray, channel: np.ndarray, value: np.ndarray, limits: LimitTable) -> pa.Table:
    """HK events (:data:`pipeline.schemas.HK_EVENTS`) of the samples ``(obmt_ns, channel, value)`` (long
    format, any order: int64 ns, channel names, float values) against ``limits``; see the module docstring.
    """
    obmt_ns = np.asarray(obmt_ns)
    value = np.asarray(value)
    channel = np.asarray(channel, dtype=object)
    if not np.issubdtype(obmt_ns.dtype, np.integer):
        raise TypeError(f"obmt_ns must be integer nanoseconds, got {obmt_ns.dtype}; use .astype(np.int64)")
    if not np.issubdtype(value.dtype, np.floating):
        raise TypeError(f"value must be floating point, got {value.dtype}; use .astype(np.float64)")
    if not (obmt_ns.ndim == value.ndim == channel.ndim == 1) or not (len(obmt_ns) == len(value) == len(channel)):
        raise ValueError(f"obmt_ns, channel and value must be 1-D of one length, got shapes {obmt_ns.shape}, "
                         f"{channel.shape}, {value.shape}")
    names, code = np.unique(channel.astype(str), return_inverse=True)
    return _check(obmt_ns.astype(np.int64), [str(n) for n in names], code.astype(np.int64).ravel(),
                  value.astype(np.float64), limits)


def check_hk_table(hk: pa.Table, limits: LimitTable) -> pa.Table:
    """:func:`check_hk_limits` of an ``hk`` table (:data:`pipeline.schemas.HK`, long format)."""
    missing = [name for name in schemas.HK.names if name not in hk.column_names]
    if missing:
        raise ValueError(f"hk table has no column {missing[0]!r}; give a table of schema pipeline.schemas.HK")
    encoded = hk["channel"].combine_chunks().cast(pa.string()).dictionary_encode()
    return _check(
        hk["obmt_ns"].to_numpy().astype(np.int64),
        [str(n) for n in encoded.dictionary.to_pylist()],
        encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64),
        hk["value"].to_numpy().astype(np.float64),
        limits,
    )


def _check(obmt_ns: np.ndarray, names: list[str], code: np.ndarray, value: np.ndarray,
           limits: LimitTable) -> pa.Table:
    """Events of samples whose channel is ``names[code]``: sort by (channel, time), call the kernel, build
    the table."""
    if not isinstance(limits, LimitTable):
        raise TypeError(f"limits must be a pipeline.limits.LimitTable, got {type(limits).__name__}; "
                        "use pipeline.limits.load_limit_table(path)")
    monitored = np.array([n in limits for n in names], dtype=bool)
    present = np.bincount(code, minlength=len(names)) > 0
    if (present & ~monitored).any():
        log.warning("HK channels without limits are not monitored: %s",
                    ", ".join(n for n, m, p in zip(names, monitored, present, strict=True) if p and not m))
    finite = np.isfinite(value)
    if not finite.all():
        log.warning("%d non-finite HK values dropped before the limit checks", int((~finite).sum()))
    keep = np.flatnonzero(finite & monitored[code]) if len(names) else np.empty(0, np.int64)
    order = keep[np.lexsort((obmt_ns[keep], code[keep]))]
    t, v, c = obmt_ns[order], value[order], code[order]
    bounds = np.searchsorted(c, np.arange(len(names) + 1)).astype(np.int64)

    chl = [limits[n] if m else None for n, m in zip(names, monitored, strict=True)]
    lim = np.array([[p.red_low, p.yellow_low, p.yellow_high, p.red_high] if p else [0.0] * 4 for p in chl],
                   dtype=np.float64).reshape(len(names), 4)
    persistence = np.array([p.persistence if p else 1 for p in chl], dtype=np.int64)
    stale_ns = np.array([round(p.stale_after_s * 1e9) if p else 0 for p in chl], dtype=np.int64)
    rate = np.array([p.max_rate_per_s if p else 0.0 for p in chl], dtype=np.float64)

    kind, sev, side, start, end, n, extreme, is_open, counts, status = _k._monitor_channels(
        np.ascontiguousarray(t), np.ascontiguousarray(v), bounds, lim, persistence, stale_ns, rate)
    # The samples are sorted here and the kernel has room for every event, so a status is a kernel bug.
    if status.any():
        raise RuntimeError(f"HK monitor kernel status {status.tolist()} for channels {names}")
    slots = np.concatenate([np.arange(_k.SLOTS_PER_SAMPLE * bounds[k], _k.SLOTS_PER_SAMPLE * bounds[k] + counts[k])
                            for k in range(len(names))] + [np.empty(0, np.int64)]).astype(np.int64)
    ch = np.repeat(np.array(names, dtype=object), counts).astype(str)
    kind_name = _lookup(kind[slots], KINDS).astype(str)
    ordering = np.lexsort((kind_name, ch, start[slots]))
    slots, ch, kind_name = slots[ordering], ch[ordering], kind_name[ordering]
    return pa.table(
        {
            "channel": pa.array(ch.tolist(), pa.string()),
            "kind": pa.array(kind_name.tolist(), pa.string()),
            "severity": pa.array(_lookup(sev[slots], SEVERITIES).tolist(), pa.string()),
            "side": pa.array(_lookup(side[slots], SIDES).tolist(), pa.string()),
            "start_ns": start[slots],
            "end_ns": end[slots],
            "n_samples": n[slots],
            "extreme_value": extreme[slots],
            "open": is_open[slots],
        },
        schema=schemas.HK_EVENTS,
    )
