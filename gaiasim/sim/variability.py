"""Variable stars and transients: what makes a source's G change from one transit to the next.

Two populations (docs/facts.md section 6: Gaia Science Alerts look for sources new to Gaia and for known sources
that brighten or fade significantly):

- **variables**: a fraction of all sources are sinusoidal variables of small amplitude. Their parameters are
  a deterministic function of (seed, source_id) (a counter-based hash, no generator state), so every day of
  a multi-day dataset, and every dataset of the same seed, sees the same variable with the same phase;
- **transients** (:mod:`gaiasim.sim.transients`): the science-alert classes with their light curves, at the DR3
  alert rate x scale x ``transient_boost`` (every dataset has them; boost 0: none), and for focused tests
  ``transients = N`` more of them placed on sources the day observes in both fields of view
  (``transient_mix = "step"``: the idealised events of earlier versions, |dG| 1-3 mag for the whole event).

Variables and transients add (a variable host brightens or fades about its varying magnitude); new sources are
not variable. The plan's keys are read from the fault plan TOML (:data:`PLAN_KEYS`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pyarrow as pa

from gaiasim.sim import sky, transients
from gaiasim.spec import SpecError, load_toml

NS_PER_DAY = transients.NS_PER_DAY
MAX_PAIR_GAP_NS = transients.MAX_PAIR_GAP_NS
NEW_SOURCE_ID_BIT = transients.NEW_SOURCE_ID_BIT
KINDS = transients.KINDS
TRUTH_TRANSIENTS = transients.TRUTH_TRANSIENTS
#: The sky's source ids lie below this (pixel < 2**20, shifted by sky.SOURCE_ID_SHIFT = 35); the on-board
#: artefacts' truth ids (gaiasim.sim.vpu) lie above.
SKY_ID_LIMIT = 1 << 55
#: Largest transient_boost a plan may set (small test days need 1e4-1e6; one day's events are capped at
#: gaiasim.sim.transients.MAX_EVENTS_PER_DAY).
MAX_TRANSIENT_BOOST = 1e9


@dataclass(frozen=True)
class VariabilityPlan:
    fraction_variables: float = 0.05  # fraction of all sources that are sinusoidal variables [U]
    amplitude_min_mag: float = 0.02  # variables' semi-amplitude, log-uniform in [min, max], mag [U]
    amplitude_max_mag: float = 0.3
    period_min_d: float = 0.1  # variables' period, log-uniform in [min, max], days [U]
    period_max_d: float = 100.0
    n_transients: int = 0  # focused transient events placed on the day's both-FoV pairs (0 on nominal days)
    #: The DR3 alert rate x scale is multiplied by this (0: no rate events), recorded in the manifest.
    transient_boost: float = 1.0
    transient_mix: str = "realistic"  # of the focused events: realistic (the classes) or step (earlier versions')

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "transient_mix":
                if value not in transients.MIXES:
                    raise SpecError(f"transient_mix = {value!r}: must be one of {', '.join(transients.MIXES)}")
            elif isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
                raise SpecError(f"{f.name} = {value!r}: must be a finite number")
        for name in ("fraction_variables",):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise SpecError(f"{name} = {getattr(self, name)!r}: must be a fraction in [0, 1]")
        if not isinstance(self.n_transients, int) or not 0 <= self.n_transients <= 1_000_000:
            raise SpecError(f"n_transients = {self.n_transients!r}: must be an integer in [0, 1000000]")
        if not 0.0 <= self.transient_boost <= MAX_TRANSIENT_BOOST:
            raise SpecError(f"transient_boost = {self.transient_boost!r}: must be in [0, {MAX_TRANSIENT_BOOST:g}] "
                            "(0: no events at the DR3 rate)")
        for lo, hi, unit in (("amplitude_min_mag", "amplitude_max_mag", "mag"), ("period_min_d", "period_max_d", "d")):
            if not 0.0 < getattr(self, lo) <= getattr(self, hi):
                raise SpecError(f"{lo} = {getattr(self, lo)!r}: must be > 0 and <= {hi} = {getattr(self, hi)!r} "
                                f"({unit})")


#: Keys of a fault plan TOML that belong to the variability plan, and the plan field each one sets.
PLAN_KEYS = {"transients": "n_transients", "variables": "fraction_variables", "transient_boost": "transient_boost",
             "transient_mix": "transient_mix"}


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
    """The variability plan of a fault plan TOML (``transients = N``, ``variables = fraction``,
    ``transient_boost = B``, ``transient_mix = "realistic" | "step"``)."""
    try:
        return plan_from_mapping(load_toml(Path(path)))
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None


# --- variables --------------------------------------------------------------------------------------------------

def _uniform(seed: int, source_id: np.ndarray, stream: int) -> np.ndarray:
    """U[0, 1) draws, a deterministic function of (seed, source_id, stream)."""
    return transients.hashed_uniform(seed, source_id, stream)


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


# --- transients ------------------------------------------------------------------------------------------------

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
    exclude: np.ndarray | None = None,
) -> tuple[pa.Table, pa.Table]:
    """``plan.n_transients`` focused events of ``plan.transient_mix`` in the day [t0_ns, t1_ns):
    (``truth_transients``, the new sources), flagged detectable from the transits given
    (:func:`gaiasim.sim.transients.place_on_pairs`, :func:`~gaiasim.sim.transients.with_detectability`).

    ``sources`` is the day's sky (:data:`gaiasim.sim.sky.TRUTH_SOURCES`); ``source_index`` (row of ``sources``),
    ``obmt_ns``, ``fov`` and optionally ``zeta_rad`` describe its transits. The new sources come back as extra
    :data:`~gaiasim.sim.sky.TRUTH_SOURCES` rows, to add to the sky (not to the reference catalogue); their
    detectability is judged at their hosts' transits until the generator flags them at their own. Draws come from
    ``rng`` only.
    """
    events, extra = transients.place_on_pairs(plan.n_transients, plan.transient_mix, rng, sources, t0_ns, t1_ns,
                                              source_index, obmt_ns, fov, zeta_rad, exclude)
    if not events.num_rows:
        return events, extra
    # Provisionally at the hosts' transits: a new source crosses the field within 0.1 s of its host.
    host = sources["source_id"].to_numpy()[np.asarray(source_index, dtype=np.int64)]
    ev_host = events["host_source_id"].to_numpy()
    order = np.argsort(ev_host)
    at = np.clip(np.searchsorted(ev_host, host, sorter=order), 0, len(order) - 1)
    as_event = np.where(ev_host[order[at]] == host, events["source_id"].to_numpy()[order[at]], -1)
    return transients.with_detectability(events, as_event, obmt_ns, fov), extra


def place_transients(plan: VariabilityPlan, rng: np.random.Generator, seed: int, scale: float, t0_ns: int, t1_ns: int,
                     source_id: np.ndarray, obmt_ns: np.ndarray, fov: np.ndarray,
                     zeta_rad: np.ndarray | None = None, sky_model: str = "toy",
                     exclude: np.ndarray | None = None) -> tuple[pa.Table, pa.Table]:
    """:func:`make_transients` from transits that carry a source_id (as the generator's slices do): the
    observed sources are materialised again from (seed, pixel) (:func:`gaiasim.sim.sky.materialise`).
    Memory: the day's transit arrays plus its observed pixels; meant for the small days that inject events."""
    if plan.n_transients == 0:
        return TRUTH_TRANSIENTS.empty_table(), sky.TRUTH_SOURCES.empty_table()
    source_id = np.asarray(source_id, dtype=np.int64)
    # Hosts are sky sources: not new sources (the rate's), nor the on-board artefacts' ids (2**55 and above).
    known = ((source_id & NEW_SOURCE_ID_BIT) == 0) & (source_id < SKY_ID_LIMIT)
    ids, source_index = np.unique(source_id[known], return_inverse=True)
    sources = sky.materialise(seed, np.unique(ids >> sky.SOURCE_ID_SHIFT), scale, sky_model)
    have = sources["source_id"].to_numpy()
    order = np.argsort(have)
    pos = np.minimum(np.searchsorted(have, ids, sorter=order), max(len(have) - 1, 0))
    if len(ids) and (not len(have) or not np.array_equal(have[order[pos]], ids)):
        raise ValueError("source_id holds sources that sky.materialise(seed, pixel, scale) does not make; "
                         "give the seed and scale the transits were generated with")
    zeta = None if zeta_rad is None else np.asarray(zeta_rad)[known]
    return make_transients(plan, rng, sources.take(order[pos]), t0_ns, t1_ns, source_index,
                           np.asarray(obmt_ns)[known], np.asarray(fov)[known], zeta, exclude)


def g_mag_at(
    g_mean_mag: np.ndarray,
    obmt_ns: np.ndarray,
    source_id: np.ndarray,
    variables: VariableParams,
    events: pa.Table,
) -> np.ndarray:
    """G of each transit (float64, mag): its source's mean G, plus its variability, changed by any transient of
    ``events`` active at ``obmt_ns`` (:func:`gaiasim.sim.transients.g_mag_at`). All arguments are per transit
    (``variables`` taken per transit, see :meth:`VariableParams.take`). A new source is NaN outside its event or
    below the detection limit (it does not exist then: drop those transits), and so is a source that fades below
    it."""
    g_mean_mag = np.asarray(g_mean_mag, dtype=np.float64)
    t_d = np.asarray(obmt_ns, dtype=np.int64) / NS_PER_DAY
    g = g_mean_mag + variables.amplitude_mag * np.sin(2.0 * np.pi * t_d / variables.period_d + variables.phase_rad)
    return transients.g_mag_at(g, obmt_ns, source_id, events)
