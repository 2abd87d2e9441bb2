"""Housekeeping anomalies: limit violations and stale channels injected into the simulated HK samples.

Plan keys (in a fault-plan TOML of datasets/faults/, beside the packet faults of :mod:`gaiasim.sim.faults`)::

    hk_excursions = 4   # limit violations: a channel pushed past its yellow or red limit for a while
    hk_stale = 2        # stale periods: a channel's value frozen for longer than its stale_after_s

Each injected anomaly becomes one ledger row (``truth_hk_anomalies``, :data:`TRUTH_HK_ANOMALIES`) saying
what a correct HK monitor must report: one event of that channel, kind, severity and side whose first and
last samples are ``start_ns`` and ``end_ns``.

How an excursion is drawn [D]: any channel but the star rates (they follow the sky), a side, a severity,
a start, and a plateau of at least ``persistence + 2`` samples. The
value is offset from its own noisy samples (the noise is kept) along a ramp whose steps are at most half
the channel's rate limit, so the rate check stays quiet; the ramp lands ``g`` below and then ``g`` above
each limit it crosses (``g`` = a quarter of the rate step or of the yellow-red gap), so noise cannot make
the crossing chatter. The recorded start and end are the first and last samples actually out of limits,
checked on the values as the downlink carries them (float32, :data:`pipeline.icd.HK_PAYLOAD`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np
import pyarrow as pa

from gaiasim.sim.instrument.mission_limits import MissionLimit
from gaiasim.spec import SpecError
from pipeline import icd

#: Largest number of anomalies of each kind in one plan.
MAX_ANOMALIES = 1000
#: Samples kept nominal between two anomalies of one channel, and at the ends of the data.
GUARD_SAMPLES = 5
#: Placements tried per anomaly before giving up.
MAX_TRIES = 1000

TRUTH_HK_ANOMALIES = pa.schema(
    [
        pa.field("fault_id", pa.int64(), nullable=False),
        pa.field("kind", pa.string(), nullable=False, metadata={"doc": "hk_excursion or hk_stale"}),
        pa.field("channel", pa.string(), nullable=False, metadata={"doc": "pipeline.icd.HK_CHANNELS name"}),
        pa.field("severity", pa.string(), nullable=False, metadata={"doc": "yellow or red"}),
        pa.field("side", pa.string(), nullable=False, metadata={"doc": "low, high, or '' (stale)"}),
        pa.field("start_ns", pa.int64(), nullable=False, metadata={"unit": "ns", "doc": "first anomalous sample"}),
        pa.field("end_ns", pa.int64(), nullable=False, metadata={"unit": "ns", "doc": "last anomalous sample"}),
        pa.field("expected", pa.string(), nullable=False, metadata={"doc": "what the pipeline must report"}),
    ]
)


@dataclass(frozen=True)
class HkFaultPlan:
    hk_excursions: int = 0  # limit violations to inject (channel, side, yellow or red drawn at random)
    hk_stale: int = 0  # stale-channel periods to inject

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ANOMALIES:
                raise SpecError(f"{f.name} = {value!r}: must be an integer in [0, {MAX_ANOMALIES}]")


#: The fault-plan keys that belong to :class:`HkFaultPlan`.
HK_PLAN_KEYS = tuple(f.name for f in fields(HkFaultPlan))


def hk_plan_from(raw: dict) -> HkFaultPlan:
    """The :class:`HkFaultPlan` of a fault-plan dict (its ``hk_*`` keys; the others are ignored)."""
    return HkFaultPlan(**{k: raw[k] for k in HK_PLAN_KEYS if k in raw})


def expected_report(kind: str, severity: str, side: str) -> str:
    """What the pipeline must report, e.g. ``hk_event:limit:red:high`` or ``hk_event:stale:yellow``."""
    return f"hk_event:{kind}:{severity}" + (f":{side}" if side else "")


def ledger_table(rows: list[dict]) -> pa.Table:
    """``truth_hk_anomalies`` from the rows of :func:`inject_hk_faults` (``fault_id`` = row number)."""
    cols = {name: [r[name] for r in rows] for name in TRUTH_HK_ANOMALIES.names if name != "fault_id"}
    return pa.table({"fault_id": list(range(len(rows))), **cols}, schema=TRUTH_HK_ANOMALIES)


def _ramp(a: float, b: float, step: float) -> np.ndarray:
    """Points after ``a`` up to and including ``b``, at most ``step`` apart."""
    k = max(1, math.ceil(abs(b - a) / step)) if math.isfinite(step) else 1
    return a + (b - a) * np.arange(1, k + 1) / k


def excursion_profile(y: float, r: float, step: float, n_plateau: int, red: bool) -> np.ndarray:
    """Offsets from the nominal value, towards the limits, of one excursion (ramp up, plateau, ramp down).

    ``y`` and ``r`` are the distances from the nominal value to the yellow and red limits (0 < y < r),
    ``step`` the largest change between samples. Each limit crossed is crossed in one step from ``g``
    inside to ``g`` outside it; the plateau sits midway between the yellow and red limits (yellow) or
    half the yellow-red gap beyond red (red).
    """
    g = min(step / 2.0, (r - y) / 4.0)
    points = [y - g, y + g] + ([r - g, r + g] if red else [])
    level = r + (r - y) / 2.0 if red else (y + r) / 2.0
    up, a = [], 0.0
    for b in [*points, level]:
        up.append(_ramp(a, b, step))
        a = b
    rise = np.concatenate(up)
    return np.concatenate([rise, np.full(n_plateau - 1, level), rise[:-1][::-1]])


def _downlinked(v: np.ndarray) -> np.ndarray:
    """Values as the HK packets carry them (float32, icd.HK_PAYLOAD)."""
    return np.asarray(v, dtype=np.float64).astype(np.float32).astype(np.float64)


def _rate_ok(t_ns: np.ndarray, v: np.ndarray, lim: MissionLimit) -> bool:
    if lim.max_rate_per_s <= 0.0 or len(v) < 2:
        return True
    dt_s = np.diff(t_ns) * 1e-9
    return bool(np.all(np.abs(np.diff(v)) <= lim.max_rate_per_s * dt_s))


def _free(busy: list[tuple[int, int]], lo: int, hi: int) -> bool:
    return all(hi + GUARD_SAMPLES <= b_lo or lo >= b_hi + GUARD_SAMPLES for b_lo, b_hi in busy)


def _try_excursion(rng: np.random.Generator, t_ns: np.ndarray, column: np.ndarray, lim: MissionLimit,
                   dt_s: float, busy: list[tuple[int, int]]) -> tuple[int, np.ndarray, dict] | None:
    """One drawn excursion of one channel: (first index, new values of its window, ledger row), or None
    when the draw does not fit."""
    n = len(column)
    side = str(rng.choice(["low", "high"]))
    severity = str(rng.choice(["yellow", "red"]))
    n_plateau = int(rng.integers(lim.persistence + 2, 3 * lim.persistence + 30))
    sign = 1.0 if side == "high" else -1.0
    yellow = lim.yellow_high if side == "high" else lim.yellow_low
    red = lim.red_high if side == "high" else lim.red_low
    step = 0.5 * lim.max_rate_per_s * dt_s if lim.max_rate_per_s > 0.0 else math.inf

    def profile(base: float) -> np.ndarray:
        return excursion_profile(sign * (yellow - base), sign * (red - base), step, n_plateau, severity == "red")

    length = len(profile(float(np.median(column))))
    if n - length - 2 * GUARD_SAMPLES <= 0:
        return None
    s = int(rng.integers(GUARD_SAMPLES, n - length - GUARD_SAMPLES))
    # The local nominal value (median of the untouched samples around): the limits are measured from it.
    base = float(np.median(column[max(0, s - 30): s + length + 30]))
    u = profile(base)
    e = s + len(u)
    if e + GUARD_SAMPLES > n or not _free(busy, s, e):
        return None
    new = column[s:e] + sign * u
    # Check on what the monitor will see, the window and its two nominal neighbours.
    w = _downlinked(np.concatenate([column[s - 1: s], new, column[e: e + 1]]))
    tw = t_ns[s - 1: e + 1]
    out = w > yellow if side == "high" else w < yellow
    beyond_red = w > red if side == "high" else w < red
    other = w < lim.yellow_low if side == "high" else w > lim.yellow_high
    idx = np.flatnonzero(out)
    if (len(idx) < lim.persistence + 2 or idx[-1] - idx[0] + 1 != len(idx) or other.any()
            or not _rate_ok(tw, w, lim) or np.any(w[1:] == w[:-1])):
        return None
    if severity == "red":
        red_idx = np.flatnonzero(beyond_red)
        if len(red_idx) < lim.persistence + 2 or red_idx[-1] - red_idx[0] + 1 != len(red_idx):
            return None
    elif beyond_red.any():
        return None
    row = {"kind": "hk_excursion", "severity": severity, "side": side, "start_ns": int(tw[idx[0]]),
           "end_ns": int(tw[idx[-1]]), "expected": expected_report("limit", severity, side)}
    return s, new, row


def _try_stale(rng: np.random.Generator, t_ns: np.ndarray, column: np.ndarray, lim: MissionLimit,
               dt_s: float, busy: list[tuple[int, int]]) -> tuple[int, np.ndarray, dict] | None:
    """One drawn stale period of one channel (same contract as :func:`_try_excursion`)."""
    n = len(column)
    n_hold = math.ceil(lim.stale_after_s / dt_s) + 1 + int(rng.integers(1, 60))
    if n - n_hold - 2 * GUARD_SAMPLES <= 0:
        return None
    s = int(rng.integers(GUARD_SAMPLES, n - n_hold - GUARD_SAMPLES))
    e = s + n_hold
    if not _free(busy, s, e) or t_ns[e - 1] - t_ns[s] < round(lim.stale_after_s * 1e9):
        return None
    # Hold a float32 value (exact through the downlink) that differs from both neighbours, so the frozen
    # run is exactly [s, e).
    held = np.float32(column[s])
    neighbours = {np.float32(column[s - 1]), np.float32(column[e])}
    while held in neighbours:
        held = np.nextafter(held, np.float32(np.inf))
    new = np.full(n_hold, float(held))
    w = _downlinked(np.concatenate([column[s - 1: s], new, column[e: e + 1]]))
    if not _rate_ok(t_ns[s - 1: e + 1], w, lim) or not lim.yellow_low <= float(held) <= lim.yellow_high:
        return None
    row = {"kind": "hk_stale", "severity": "yellow", "side": "", "start_ns": int(t_ns[s]),
           "end_ns": int(t_ns[e - 1]), "expected": expected_report("stale", "yellow", "")}
    return s, new, row


def inject_hk_faults(plan: HkFaultPlan, rng: np.random.Generator, t_ns: np.ndarray, values: np.ndarray,
                     limits: Mapping[str, MissionLimit]) -> tuple[np.ndarray, list[dict]]:
    """Inject the plan's HK anomalies into ``values`` ((n_samples, n_channels) float64, channels in
    :data:`pipeline.icd.HK_CHANNELS` order, sampled at ``t_ns``); returns (new values, ledger rows).

    Rows have the keys of :data:`TRUTH_HK_ANOMALIES` but ``fault_id``. Anomalies of one channel never
    overlap (``GUARD_SAMPLES`` nominal samples between them) and keep ``GUARD_SAMPLES`` from the ends of the
    data, so every one is a closed event. Excursions avoid the star-rate channels (they follow the sky);
    stale periods use channels whose stale check is enabled. Deterministic in ``rng``.
    """
    t_ns = np.asarray(t_ns, dtype=np.int64)
    values = np.array(values, dtype=np.float64, copy=True)
    names = [c.name for c in icd.HK_CHANNELS]
    if values.ndim != 2 or values.shape != (len(t_ns), len(names)):
        raise ValueError(f"values must be (n_samples, {len(names)}) like housekeeping.hk_samples, with one row per "
                         f"time of t_ns ({len(t_ns)}); got {values.shape}")
    rows: list[dict] = []
    if plan.hk_excursions == 0 and plan.hk_stale == 0:
        return values, rows
    if len(t_ns) < 2 or np.any(np.diff(t_ns) <= 0):
        raise ValueError("t_ns must hold at least 2 strictly increasing sample times")
    dt_s = float(np.median(np.diff(t_ns))) * 1e-9
    # Excursions need finite limits to aim between; the star rates follow the sky, not the payload.
    excursion_channels = [j for j, n in enumerate(names) if n in limits and not n.startswith("star_rate_")
                          and math.isfinite(limits[n].red_low) and math.isfinite(limits[n].red_high)]
    stale_channels = [j for j in excursion_channels if limits[names[j]].stale_after_s > 0.0]
    busy: dict[int, list[tuple[int, int]]] = {j: [] for j in range(len(names))}
    for key, count, channels, attempt in (("hk_excursions", plan.hk_excursions, excursion_channels, _try_excursion),
                                          ("hk_stale", plan.hk_stale, stale_channels, _try_stale)):
        if count and not channels:
            raise SpecError(f"{key} = {count}: no HK channel of the limit table can take it")
        for _ in range(count):
            for _try in range(MAX_TRIES):
                j = int(rng.choice(channels))
                got = attempt(rng, t_ns, values[:, j], limits[names[j]], dt_s, busy[j])
                if got is not None:
                    break
            else:
                raise SpecError(f"{key} = {count}: could not place them all without overlaps in "
                                f"{len(t_ns)} HK samples; ask for fewer or a longer dataset")
            s, new, row = got
            values[s: s + len(new), j] = new
            busy[j].append((s, s + len(new)))
            rows.append({"kind": row["kind"], "channel": names[j], **{k: v for k, v in row.items() if k != "kind"}})
    return values, rows
