"""Variable stars and transients: what makes a source's G change from one transit to the next.

Two populations (docs/facts.md section 6: Gaia Science Alerts look for sources new to Gaia and for known sources
that brighten or fade significantly):

- **variables**: a fraction of all sources are sinusoidal variables of small amplitude. Their parameters are
  a deterministic function of (seed, source_id) (a counter-based hash, no generator state), so every day of
  a multi-day dataset, and every dataset of the same seed, sees the same variable with the same phase;
- **transients**: events injected into one generated day: a known source brightens or fades by |dG| = 1 to
  3 mag, or a source new to the catalogue appears. They are placed where the pipeline can see them: on a
  source that the day's scans observe in both fields of view within :data:`MAX_PAIR_GAP_NS` (the two FoVs of
  one scan see a source 106.5 min apart, docs/facts.md section 1), with the event covering that pair.

Assumptions (all [U]; the alert thresholds are placeholders, docs/facts.md section 6):

- a new source is placed :data:`NEW_SOURCE_OFFSET_ARCSEC` from a host source observed in both FoVs: far
  enough (> 4x the 500 mas crossmatch radius, > 10 AC pixels) to stay unmatched and to get its own window,
  close enough to cross the focal plane within 0.1 s of the host and so in the same scans. With the
  transits' ``zeta_rad`` given, hosts whose pair grazes the AC edge of the field (within the offset) are
  excluded, so the new source is inside the field whenever its host is;
- the magnitude during an event stays within :data:`EVENT_G_RANGE_MAG` (no saturation, enough signal for
  the transit photometry): only sources that stay in it whatever |dG| is drawn host brightening (G >= 11
  with the default plan) or fading (G <= 17) events, so |dG| is uniform over the plan's range for every
  host and a fading star never drops below the detection limit;
- a new source exists only during its event: its transits outside [start_ns, end_ns) must be dropped by the
  caller (:func:`g_mag_at` gives them NaN);
- variables and transients add (a variable host fades by dG about its varying magnitude); new sources are
  not variable.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pyarrow as pa

from gaiasim.sim import sky
from gaiasim.sim.instrument import focal_plane as geometry
from gaiasim.spec import SpecError, load_toml

NS_PER_DAY = 86_400_000_000_000
#: Longest time between the FoV 1 and FoV 2 transits an event must cover, ns. One scan sees a source in
#: both FoVs 106.5 min apart (basic angle / scan rate, docs/facts.md section 1); 2 h keeps that pair only.
MAX_PAIR_GAP_NS = 7_200_000_000_000
#: The event starts this long before the first transit of its pair, and ends this long after the last, ns [U]:
#: uniform, so many events also cover other scans of the day (robust to transits lost on board) and many
#: outlast it (alerted transients last days to months, docs/facts.md section 6).
EVENT_LEAD_NS = (60_000_000_000, NS_PER_DAY)
EVENT_TAIL_NS = (60_000_000_000, 30 * NS_PER_DAY)
#: G during a brightening or fading event stays in this range, mag [U]: brighter saturates the AF windows
#: even with gates (signal.GATE_BY_G), fainter leaves too little signal near the 20.7 detection limit.
EVENT_G_RANGE_MAG = (8.0, 20.0)
#: G of new sources, mag [U]: brighter than the new-source limit of the alert pipeline (~19, docs/facts.md 6).
NEW_SOURCE_G_RANGE_MAG = (12.0, 18.5)
#: Distance of a new source from its host, arcsec [U] (see the module docstring).
NEW_SOURCE_OFFSET_ARCSEC = (2.0, 5.0)
#: New sources get source_id = pixel << 35 | (NEW_SOURCE_ID_BIT + k): sky.materialise numbers a pixel's
#: sources from 0 and never reaches 2**34, so these ids never collide with a catalogued source.
NEW_SOURCE_ID_BIT = 1 << 34
KINDS = ("brightening", "fading", "new_source")

TRUTH_TRANSIENTS = pa.schema(
    [
        pa.field("transient_id", pa.int64(), nullable=False),
        pa.field("kind", pa.string(), nullable=False, metadata={"doc": "brightening, fading, new_source"}),
        pa.field("source_id", pa.int64(), nullable=False, metadata={"doc": "the source that changes (or appears)"}),
        pa.field("host_source_id", pa.int64(), nullable=False,
                 metadata={"doc": "source whose transits the event was placed on (itself unless new_source)"}),
        pa.field("ra_deg", pa.float64(), nullable=False, metadata={"unit": "deg"}),
        pa.field("dec_deg", pa.float64(), nullable=False, metadata={"unit": "deg"}),
        pa.field("g_quiescent_mag", pa.float32(), nullable=True,
                 metadata={"unit": "mag", "doc": "mean G outside the event (null for new sources)"}),
        pa.field("delta_g_mag", pa.float32(), nullable=True,
                 metadata={"unit": "mag", "doc": "G change during the event, < 0 brightening (null for new)"}),
        pa.field("g_event_mag", pa.float32(), nullable=False,
                 metadata={"unit": "mag", "doc": "mean G during the event"}),
        pa.field("start_ns", pa.int64(), nullable=False, metadata={"unit": "ns", "doc": "OBMT, inclusive"}),
        pa.field("end_ns", pa.int64(), nullable=False, metadata={"unit": "ns", "doc": "OBMT, exclusive"}),
    ]
)


@dataclass(frozen=True)
class VariabilityPlan:
    fraction_variables: float = 0.05  # fraction of all sources that are sinusoidal variables [U]
    amplitude_min_mag: float = 0.02  # variables' semi-amplitude, log-uniform in [min, max], mag [U]
    amplitude_max_mag: float = 0.3
    period_min_d: float = 0.1  # variables' period, log-uniform in [min, max], days [U]
    period_max_d: float = 100.0
    n_transients: int = 0  # transient events injected into the day (0 on nominal days)
    fraction_new_sources: float = 1.0 / 3.0  # of the transients; the rest brighten or fade, half and half [U]
    delta_g_min_mag: float = 1.0  # |dG| of brightening and fading events, uniform in [min, max], mag [U]
    delta_g_max_mag: float = 3.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
                raise SpecError(f"{f.name} = {value!r}: must be a finite number")
        for name in ("fraction_variables", "fraction_new_sources"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise SpecError(f"{name} = {getattr(self, name)!r}: must be a fraction in [0, 1]")
        if not isinstance(self.n_transients, int) or not 0 <= self.n_transients <= 1_000_000:
            raise SpecError(f"n_transients = {self.n_transients!r}: must be an integer in [0, 1000000]")
        for lo, hi, unit in (("amplitude_min_mag", "amplitude_max_mag", "mag"), ("period_min_d", "period_max_d", "d"),
                             ("delta_g_min_mag", "delta_g_max_mag", "mag")):
            if not 0.0 < getattr(self, lo) <= getattr(self, hi):
                raise SpecError(f"{lo} = {getattr(self, lo)!r}: must be > 0 and <= {hi} = {getattr(self, hi)!r} "
                                f"({unit})")


#: Keys of a fault plan TOML that belong to the variability plan, and the plan field each one sets.
PLAN_KEYS = {"transients": "n_transients", "variables": "fraction_variables"}


def plan_from_mapping(raw: dict) -> VariabilityPlan:
    """The variability plan set by the ``transients`` and ``variables`` keys of ``raw``; other keys are ignored
    (they belong to the fault plan, which rejects unknown keys itself)."""
    values = {field: raw[key] for key, field in PLAN_KEYS.items() if key in raw}
    try:
        return VariabilityPlan(**values)
    except SpecError as exc:
        message = str(exc)
        for key, field in PLAN_KEYS.items():  # name the key as written in the TOML, not the field
            if message.startswith(f"{field} ="):
                message = key + message[len(field):]
        raise SpecError(message) from None


def load_plan(path: Path) -> VariabilityPlan:
    """The variability plan of a fault plan TOML (``transients = N``, ``variables = fraction``)."""
    try:
        return plan_from_mapping(load_toml(Path(path)))
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None


# --- variables --------------------------------------------------------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (Steele, Lea and Flood 2014) on uint64 arrays: a bijective bit mixer."""
    x = (x + _GOLDEN).astype(np.uint64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _uniform(seed: int, source_id: np.ndarray, stream: int) -> np.ndarray:
    """U[0, 1) draws, a deterministic function of (seed, source_id, stream)."""
    key = _splitmix64(np.full(1, seed, dtype=np.uint64)) ^ np.uint64(stream)
    h = _splitmix64(_splitmix64(key) ^ np.asarray(source_id, dtype=np.int64).astype(np.uint64))
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


@dataclass(frozen=True)
class VariableParams:
    """Sinusoidal variability of some sources: ``G(t) = G_mean + amplitude sin(2 pi t / period + phase)``."""

    amplitude_mag: np.ndarray  # semi-amplitude, mag; 0 for constant sources
    period_d: np.ndarray  # days
    phase_rad: np.ndarray  # rad, at OBMT 0

    def take(self, index: np.ndarray) -> VariableParams:
        """The parameters of rows ``index`` (e.g. the source of every transit)."""
        return VariableParams(self.amplitude_mag[index], self.period_d[index], self.phase_rad[index])


def variable_params(seed: int, source_id: np.ndarray, plan: VariabilityPlan | None = None) -> VariableParams:
    """Variability of each source, a function of (seed, source_id) only: the same on every day and in every
    dataset of ``seed``, whatever other sources are materialised. Amplitude and period are log-uniform in the
    plan's ranges [U]."""
    plan = plan or VariabilityPlan()
    if not isinstance(seed, int | np.integer) or not 0 <= int(seed) < 2**64:
        raise SpecError(f"seed = {seed!r}: must be an integer in [0, 2**64)")
    source_id = np.asarray(source_id, dtype=np.int64)
    seed = int(seed)
    variable = _uniform(seed, source_id, 0) < plan.fraction_variables
    a_lo, a_hi, p_lo, p_hi = plan.amplitude_min_mag, plan.amplitude_max_mag, plan.period_min_d, plan.period_max_d
    log_a = np.log(a_lo) + _uniform(seed, source_id, 1) * np.log(a_hi / a_lo)
    log_p = np.log(p_lo) + _uniform(seed, source_id, 2) * np.log(p_hi / p_lo)
    return VariableParams(
        amplitude_mag=np.where(variable, np.exp(log_a), 0.0),
        period_d=np.exp(log_p),
        phase_rad=2.0 * np.pi * _uniform(seed, source_id, 3),
    )


# --- transients -------------------------------------------------------------------------------------------------

def _pairs(source_index: np.ndarray, obmt_ns: np.ndarray, fov: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, ...]:
    """(source, t_first, t_last) of every pair of consecutive transits of one source in different FoVs at most
    :data:`MAX_PAIR_GAP_NS` apart, both ``ok``."""
    order = np.lexsort((obmt_ns, source_index))
    s, t, f, g = source_index[order], obmt_ns[order], fov[order], ok[order]
    pair = (s[1:] == s[:-1]) & (f[1:] != f[:-1]) & (t[1:] - t[:-1] <= MAX_PAIR_GAP_NS) & g[1:] & g[:-1]
    i = np.flatnonzero(pair)
    return s[i], t[i], t[i + 1]


def _offset_directions(rng: np.random.Generator, u: np.ndarray, rho_rad: np.ndarray) -> np.ndarray:
    """Directions at angle ``rho_rad`` from the unit vectors ``u`` (n, 3), at a uniform position angle."""
    pole = np.where(np.abs(u[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    a = np.cross(u, pole)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b = np.cross(u, a)
    angle = rng.uniform(0.0, 2.0 * np.pi, len(u))[:, None]
    v = u * np.cos(rho_rad)[:, None] + np.sin(rho_rad)[:, None] * (np.cos(angle) * a + np.sin(angle) * b)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _take_hosts(rng: np.random.Generator, kinds: np.ndarray, hosts: np.ndarray, g_host: np.ndarray,
                plan: VariabilityPlan) -> np.ndarray:
    """A distinct host for every event, able to take its kind: any |dG| of the plan keeps G in the event range."""
    g_lo, g_hi = EVENT_G_RANGE_MAG
    able = {
        "brightening": g_host - plan.delta_g_max_mag >= g_lo,
        "fading": g_host + plan.delta_g_max_mag <= g_hi,
        "new_source": np.ones(len(hosts), dtype=bool),
    }
    order = rng.permutation(len(hosts))
    pools = {kind: order[able[kind][order]] for kind in KINDS}
    cursor = dict.fromkeys(KINDS, 0)
    used = np.zeros(len(hosts), dtype=bool)
    chosen = np.empty(len(kinds), dtype=np.int64)
    for e, kind in enumerate(kinds):
        pool = pools[kind]
        while cursor[kind] < len(pool) and used[pool[cursor[kind]]]:
            cursor[kind] += 1
        if cursor[kind] == len(pool):
            raise SpecError(
                f"transients = {len(kinds)}: this day has too few sources observed in both fields of view "
                f"({len(hosts)}, of which {int(able[kind].sum())} can host a {kind} event); lower it or raise the scale"
            )
        chosen[e] = pool[cursor[kind]]
        used[chosen[e]] = True
    return chosen


def make_transients(
    plan: VariabilityPlan,
    rng: np.random.Generator,
    sources: pa.Table,
    t0_ns: int,
    t1_ns: int,
    source_index: np.ndarray,
    obmt_ns: np.ndarray,
    fov: np.ndarray,
    zeta_rad: np.ndarray | None = None,
) -> tuple[pa.Table, pa.Table]:
    """``plan.n_transients`` events in the day [t0_ns, t1_ns): (``truth_transients``, the new sources).

    ``sources`` is the day's sky (:data:`gaiasim.sim.sky.TRUTH_SOURCES`); ``source_index`` (row of
    ``sources``), ``obmt_ns``, ``fov`` and optionally ``zeta_rad`` describe its transits. Every event covers a
    pair of consecutive transits of its host in FoV 1 and FoV 2 at most :data:`MAX_PAIR_GAP_NS` apart. The new
    sources come back as extra :data:`~gaiasim.sim.sky.TRUTH_SOURCES` rows, to add to the sky (not to the
    reference catalogue). Draws come from ``rng`` only.
    """
    empty = (TRUTH_TRANSIENTS.empty_table(), sky.TRUTH_SOURCES.empty_table())
    if plan.n_transients == 0:
        return empty
    source_index = np.asarray(source_index, dtype=np.int64)
    obmt_ns = np.asarray(obmt_ns, dtype=np.int64)
    fov = np.asarray(fov)
    if not len(source_index) == len(obmt_ns) == len(fov):
        raise ValueError("source_index, obmt_ns and fov must have one value per transit")
    ok = (obmt_ns >= t0_ns) & (obmt_ns < t1_ns)
    if zeta_rad is not None:
        margin = NEW_SOURCE_OFFSET_ARCSEC[1] * geometry.ARCSEC_RAD
        zeta_rad = np.asarray(zeta_rad, dtype=np.float64)
        ok &= (zeta_rad >= geometry.ZETA_MIN_RAD + margin) & (zeta_rad < -geometry.ZETA_MIN_RAD - margin)
    pair_source, pair_t0, pair_t1 = _pairs(source_index, obmt_ns, fov, ok)
    hosts, first_pair, n_pairs = np.unique(pair_source, return_index=True, return_counts=True)

    n = plan.n_transients
    g_src = sources["g_mag"].to_numpy().astype(np.float64)
    u_kind = rng.uniform(0.0, 1.0, n)
    kinds = np.where(u_kind < plan.fraction_new_sources, "new_source",
                     np.where(rng.uniform(0.0, 1.0, n) < 0.5, "brightening", "fading"))
    h = _take_hosts(rng, kinds, hosts, g_src[hosts], plan)
    host = hosts[h]
    pick = first_pair[h] + rng.integers(0, n_pairs[h])
    start = pair_t0[pick] - rng.integers(*EVENT_LEAD_NS, size=n)
    end = pair_t1[pick] + rng.integers(*EVENT_TAIL_NS, size=n) + 1

    g_q = g_src[host]
    size = rng.uniform(plan.delta_g_min_mag, plan.delta_g_max_mag, n)
    delta = np.where(kinds == "brightening", -size, size)

    new = kinds == "new_source"
    u_host = geometry.unit_from_radec(sources["ra_deg"].to_numpy()[host], sources["dec_deg"].to_numpy()[host])
    rho = rng.uniform(*NEW_SOURCE_OFFSET_ARCSEC, size=n) * geometry.ARCSEC_RAD
    u_new = _offset_directions(rng, u_host, rho)
    g_new = rng.uniform(*NEW_SOURCE_G_RANGE_MAG, size=n)
    bp_rp_new = np.clip(rng.normal(sky.COLOUR_MEAN, sky.COLOUR_SIGMA, n), *sky.COLOUR_RANGE)
    pixel = sky.pixel_of_unit(u_new)
    new_id = (pixel << sky.SOURCE_ID_SHIFT) | (NEW_SOURCE_ID_BIT + np.cumsum(new) - 1)
    ra_new, dec_new = geometry.radec_from_unit(u_new)

    host_id = sources["source_id"].to_numpy()[host]
    transients = pa.table(
        {
            "transient_id": np.arange(n, dtype=np.int64),
            "kind": kinds.astype(str),
            "source_id": np.where(new, new_id, host_id),
            "host_source_id": host_id,
            "ra_deg": np.where(new, ra_new, sources["ra_deg"].to_numpy()[host]),
            "dec_deg": np.where(new, dec_new, sources["dec_deg"].to_numpy()[host]),
            "g_quiescent_mag": pa.array(g_q.astype(np.float32), mask=new),
            "delta_g_mag": pa.array(delta.astype(np.float32), mask=new),
            "g_event_mag": np.where(new, g_new, g_q + delta).astype(np.float32),
            "start_ns": start,
            "end_ns": end,
        },
        schema=TRUTH_TRANSIENTS,
    )
    extra = pa.table(
        {
            "source_id": new_id[new],
            "pixel": pixel[new].astype(np.int32),
            "ra_deg": ra_new[new],
            "dec_deg": dec_new[new],
            "g_mag": g_new[new].astype(np.float32),
            "bp_rp": bp_rp_new[new].astype(np.float32),
        },
        schema=sky.TRUTH_SOURCES,
    )
    return transients, extra


def place_transients(plan: VariabilityPlan, rng: np.random.Generator, seed: int, scale: float, t0_ns: int, t1_ns: int,
                     source_id: np.ndarray, obmt_ns: np.ndarray, fov: np.ndarray,
                     zeta_rad: np.ndarray | None = None, sky_model: str = "toy") -> tuple[pa.Table, pa.Table]:
    """:func:`make_transients` from transits that carry a source_id (as the generator's slices do): the
    observed sources are materialised again from (seed, pixel) (:func:`gaiasim.sim.sky.materialise`).
    Memory: the day's transit arrays plus its observed pixels; meant for the small days that inject events."""
    if plan.n_transients == 0:
        return TRUTH_TRANSIENTS.empty_table(), sky.TRUTH_SOURCES.empty_table()
    ids, source_index = np.unique(np.asarray(source_id, dtype=np.int64), return_inverse=True)
    sources = sky.materialise(seed, np.unique(ids >> sky.SOURCE_ID_SHIFT), scale, sky_model)
    have = sources["source_id"].to_numpy()
    order = np.argsort(have)
    pos = np.minimum(np.searchsorted(have, ids, sorter=order), max(len(have) - 1, 0))
    if len(ids) and (not len(have) or not np.array_equal(have[order[pos]], ids)):
        raise ValueError("source_id holds sources that sky.materialise(seed, pixel, scale) does not make; "
                         "give the seed and scale the transits were generated with")
    return make_transients(plan, rng, sources.take(order[pos]), t0_ns, t1_ns, source_index, obmt_ns, fov, zeta_rad)


def g_mag_at(
    g_mean_mag: np.ndarray,
    obmt_ns: np.ndarray,
    source_id: np.ndarray,
    variables: VariableParams,
    transients: pa.Table,
) -> np.ndarray:
    """G of each transit (float64, mag): its source's mean G, plus its variability, plus any transient active at
    ``obmt_ns`` (start_ns <= obmt_ns < end_ns). All arguments are per transit (``variables`` taken per transit,
    see :meth:`VariableParams.take`). A new source has G = g_event_mag during its event and NaN outside it (it
    does not exist then: drop those transits)."""
    g_mean_mag = np.asarray(g_mean_mag, dtype=np.float64)
    obmt_ns = np.asarray(obmt_ns, dtype=np.int64)
    source_id = np.asarray(source_id, dtype=np.int64)
    t_d = obmt_ns / NS_PER_DAY
    g = g_mean_mag + variables.amplitude_mag * np.sin(2.0 * np.pi * t_d / variables.period_d + variables.phase_rad)
    if transients.num_rows == 0 or len(g) == 0:
        return g
    ev_id = transients["source_id"].to_numpy()
    order = np.argsort(ev_id, kind="stable")
    ev_id = ev_id[order]
    if np.any(ev_id[1:] == ev_id[:-1]):
        raise ValueError("transients must have one event per source; give the table made by make_transients")
    j = np.clip(np.searchsorted(ev_id, source_id), 0, len(ev_id) - 1)
    has = ev_id[j] == source_id
    row = order[j]
    start = transients["start_ns"].to_numpy()[row]
    end = transients["end_ns"].to_numpy()[row]
    active = has & (obmt_ns >= start) & (obmt_ns < end)
    kind = transients["kind"].to_numpy(zero_copy_only=False)[row]
    new = has & (kind == "new_source")
    delta = transients["delta_g_mag"].fill_null(0.0).to_numpy().astype(np.float64)[row]
    g_event = transients["g_event_mag"].to_numpy().astype(np.float64)[row]
    g = np.where(active & ~new, g + delta, g)
    return np.where(new, np.where(active, g_event, np.nan), g)
