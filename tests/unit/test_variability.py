"""Variables and transients (gaiasim.sim.variability): plans, deterministic variables, focused transients placed
on pairs of FoV 1 / FoV 2 transits (the step mix of earlier versions here; the realistic classes in
tests/unit/test_transients.py), new sources outside the catalogue, and the G of every transit."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from gaiasim.sim import catalogue, sky, variability
from gaiasim.sim.scanlaw import ScanLaw
from gaiasim.sim.timescale import obmt_ns_from_date
from gaiasim.spec import SpecError
from pipeline import geometry

T0_NS = obmt_ns_from_date(dt.date(2016, 3, 1))
T1_NS = T0_NS + variability.NS_PER_DAY
PLAN = variability.VariabilityPlan(n_transients=30, transient_mix="step")


# --- plans ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"fraction_variables": 1.5}, "fraction_variables"),
        ({"fraction_variables": True}, "fraction_variables"),
        ({"n_transients": -1}, "n_transients"),
        ({"n_transients": 2.5}, "n_transients"),
        ({"amplitude_min_mag": 0.5}, "amplitude_min_mag"),
        ({"period_min_d": 0.0}, "period_min_d"),
        ({"transient_boost": float("nan")}, "transient_boost"),
        ({"transient_boost": -1.0}, "transient_boost"),
        ({"transient_mix": "odd"}, "transient_mix"),
    ],
)
def test_a_bad_plan_is_one_line_naming_the_key(values, key):
    with pytest.raises(SpecError, match=rf"^{key} = ") as info:
        variability.VariabilityPlan(**values)
    assert "\n" not in str(info.value)


def test_fault_plan_keys_set_the_plan(tmp_path):
    path = tmp_path / "plan.toml"
    path.write_text("bit_flip = 0.001\ntransients = 12\nvariables = 0.1\ntransient_boost = 1e4\n"
                    'transient_mix = "step"\n')
    assert variability.load_plan(path) == variability.VariabilityPlan(n_transients=12, fraction_variables=0.1,
                                                                      transient_boost=1e4, transient_mix="step")


def test_a_bad_fault_plan_key_is_named_as_written(tmp_path):
    path = tmp_path / "plan.toml"
    path.write_text("transients = -3\n")
    with pytest.raises(SpecError, match=r"plan\.toml: transients = -3: must be an integer"):
        variability.load_plan(path)


# --- variables ------------------------------------------------------------------------------------------------------

def test_variables_depend_on_seed_and_source_only():
    ids = np.arange(100_000, dtype=np.int64) * 7919 + (123 << sky.SOURCE_ID_SHIFT)
    a = variability.variable_params(42, ids)
    b = variability.variable_params(42, ids[::-1])  # another order: the same source gets the same variability
    assert np.array_equal(a.amplitude_mag, b.amplitude_mag[::-1]) and np.array_equal(a.phase_rad, b.phase_rad[::-1])
    c = variability.variable_params(43, ids)
    assert not np.array_equal(a.phase_rad, c.phase_rad), "the seed changes the variables"
    part = variability.variable_params(42, ids[5000:5100])
    assert np.array_equal(part.period_d, a.period_d[5000:5100])


def test_variables_follow_the_plan():
    ids = np.arange(200_000, dtype=np.int64)
    v = variability.variable_params(7, ids)
    variable = v.amplitude_mag > 0
    # Binomial(200000, 0.05): 5 standard deviations are 0.0024.
    assert abs(variable.mean() - 0.05) < 0.0025, f"{variable.mean():.4f} of the sources vary"
    assert v.amplitude_mag[variable].min() >= 0.02 and v.amplitude_mag.max() <= 0.3
    assert v.amplitude_mag.max() > 0.29, "log-uniform amplitudes reach the top of the range"
    assert v.period_d.min() >= 0.1 and v.period_d.max() <= 100.0
    # Log-uniform: the median period is the geometric mean of the range, 3.16 d.
    assert np.median(v.period_d) == pytest.approx(np.sqrt(0.1 * 100.0), rel=0.05)


# --- transients -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scanned_sky() -> tuple[pa.Table, dict, ScanLaw]:
    """A sparse whole sky and its transits of one day under the scanning law."""
    sources = sky.materialise(42, np.arange(sky.N_PIXELS), 2e-5)
    scan = ScanLaw(T0_NS, T1_NS)
    u = geometry.unit_from_radec(sources["ra_deg"].to_numpy(), sources["dec_deg"].to_numpy())
    return sources, scan.find_transits(u, T0_NS, T1_NS), scan


def transients_of(scanned_sky, seed: int = 1, plan: variability.VariabilityPlan = PLAN):
    sources, found, _scan = scanned_sky
    return variability.make_transients(plan, np.random.default_rng(seed), sources, T0_NS, T1_NS,
                                       found["source_index"], found["obmt_ns"], found["fov"], found["zeta_rad"])


def covers_a_pair(obmt_ns: np.ndarray, fov: np.ndarray, start_ns: int, end_ns: int) -> bool:
    """Is a FoV 1 and a FoV 2 transit, at most 2 h apart, inside [start_ns, end_ns)?"""
    inside = (obmt_ns >= start_ns) & (obmt_ns < end_ns)
    t1, t2 = obmt_ns[inside & (fov == 1)], obmt_ns[inside & (fov == 2)]
    return bool(len(t1) and len(t2) and np.abs(t1[:, None] - t2[None, :]).min() <= variability.MAX_PAIR_GAP_NS)


def test_transients_are_deterministic(scanned_sky):
    a, extra_a = transients_of(scanned_sky)
    b, extra_b = transients_of(scanned_sky)
    assert a.equals(b) and extra_a.equals(extra_b)
    assert not a.equals(transients_of(scanned_sky, seed=2)[0])


def test_transients_follow_the_plan(scanned_sky):
    sources = scanned_sky[0]
    t, extra = transients_of(scanned_sky)
    assert t.schema.equals(variability.TRUTH_TRANSIENTS) and extra.schema.equals(sky.TRUTH_SOURCES)
    assert t.num_rows == 30 and t["transient_id"].to_pylist() == list(range(30))
    assert set(t["kind"].to_pylist()) == set(variability.KINDS)
    assert set(t["class"].to_pylist()) == {"step"} and t["kind"].equals(t["alert_kind"])
    assert set(t["origin"].to_pylist()) == {"focused"}
    assert len(set(t["host_source_id"].to_pylist())) == 30, "one event per host"
    known = t.filter(pc.not_equal(t["kind"], "new_source")).to_pylist()
    for ev in known:
        assert ev["source_id"] == ev["host_source_id"]
        assert 1.0 <= abs(ev["delta_g_mag"]) <= 3.0, f"|dG| = {abs(ev['delta_g_mag'])} mag"
        assert (ev["delta_g_mag"] < 0) == (ev["kind"] == "brightening")
        assert 8.0 <= ev["peak_g_mag"] <= 20.0
        row = sources["source_id"].to_pylist().index(ev["source_id"])
        assert ev["g_quiescent_mag"] == sources["g_mag"][row].as_py()
        assert ev["peak_g_mag"] == pytest.approx(ev["g_quiescent_mag"] + ev["delta_g_mag"], abs=1e-5)
        assert ev["detectable"], "a step event's |dG| is at least 1 mag at the pair it covers"
    assert extra.num_rows == t.num_rows - len(known)


def test_events_cover_host_transits_in_both_fovs(scanned_sky):
    sources, found, _scan = scanned_sky
    t, _extra = transients_of(scanned_sky)
    host_id = sources["source_id"].to_numpy()[found["source_index"]]
    for ev in t.to_pylist():
        mine = host_id == ev["host_source_id"]
        assert covers_a_pair(found["obmt_ns"][mine], found["fov"][mine], ev["start_ns"], ev["end_ns"]), ev


def test_new_sources_are_seen_in_both_fovs_during_their_event(scanned_sky):
    """The placement assumption, checked with the scanning law: a new source 2-5 arcsec from its host is in
    the field whenever its host is."""
    _sources, _found, scan = scanned_sky
    t, extra = transients_of(scanned_sky)
    u = geometry.unit_from_radec(extra["ra_deg"].to_numpy(), extra["dec_deg"].to_numpy())
    seen = scan.find_transits(u, T0_NS, T1_NS)
    new = t.filter(pc.equal(t["kind"], "new_source")).to_pylist()
    assert len(new) == extra.num_rows > 0
    for ev in new:
        mine = seen["source_index"] == extra["source_id"].to_pylist().index(ev["source_id"])
        assert covers_a_pair(seen["obmt_ns"][mine], seen["fov"][mine], ev["start_ns"], ev["end_ns"]), ev


def test_new_sources_are_not_in_the_catalogue(scanned_sky):
    sources = scanned_sky[0]
    _t, extra = transients_of(scanned_sky)
    new_id = extra["source_id"].to_numpy()
    assert np.all(new_id & variability.NEW_SOURCE_ID_BIT), "new sources use the reserved id range"
    assert np.array_equal(new_id >> sky.SOURCE_ID_SHIFT, extra["pixel"].to_numpy())
    u = geometry.unit_from_radec(extra["ra_deg"].to_numpy(), extra["dec_deg"].to_numpy())
    assert np.array_equal(sky.pixel_of_unit(u), extra["pixel"].to_numpy())
    assert len(np.unique(new_id)) == len(new_id)
    cat = catalogue.observe(sources, np.random.default_rng(3))
    assert not np.isin(new_id, cat["source_id"].to_numpy()).any()
    assert not np.isin(new_id, sources["source_id"].to_numpy()).any()


def test_no_transients_in_a_nominal_plan(scanned_sky):
    t, extra = transients_of(scanned_sky, plan=variability.VariabilityPlan())
    assert t.num_rows == 0 and extra.num_rows == 0 and t.schema.equals(variability.TRUTH_TRANSIENTS)


def test_too_many_transients_for_the_day_is_refused_naming_the_key(scanned_sky):
    with pytest.raises(SpecError, match=r"^transients = 100000: this day has too few sources"):
        transients_of(scanned_sky, plan=variability.VariabilityPlan(n_transients=100_000))


# --- G of each transit ----------------------------------------------------------------------------------------------

def one_event(kind: str, delta: float | None, start_ns: int, end_ns: int, g_event: float) -> pa.Table:
    """A step event on source 5 (host 4): |dG| = delta (a new source at G g_event) over [start_ns, end_ns)."""
    row = {name: None for name in variability.TRUTH_TRANSIENTS.names}
    row.update(transient_id=0, origin="focused", kind=kind, alert_kind=kind, **{"class": "step"}, subclass=kind,
               source_id=5, host_source_id=4, ra_deg=1.0, dec_deg=2.0,
               g_quiescent_mag=None if delta is None else 16.0, delta_g_mag=delta, peak_g_mag=g_event,
               peak_ns=start_ns, start_ns=start_ns, end_ns=end_ns, rise_d=0.0, detectable=True)
    return pa.Table.from_pylist([row], schema=variability.TRUTH_TRANSIENTS)


def constant(n: int) -> variability.VariableParams:
    return variability.VariableParams(np.zeros(n), np.ones(n), np.zeros(n))


def test_g_of_constant_sources_is_their_mean():
    g = np.array([12.0, 16.0, 20.5])
    t = T0_NS + np.arange(3)
    out = variability.g_mag_at(g, t, np.array([1, 2, 3]), constant(3), variability.TRUTH_TRANSIENTS.empty_table())
    assert np.array_equal(out, g)


def test_g_of_a_variable_swings_by_its_amplitude():
    n = 10_000
    t = T0_NS + np.linspace(0, 30 * variability.NS_PER_DAY, n).astype(np.int64)
    params = variability.VariableParams(np.full(n, 0.3), np.full(n, 2.5), np.full(n, 1.0))
    out = variability.g_mag_at(np.full(n, 15.0), t, np.full(n, 9), params, variability.TRUTH_TRANSIENTS.empty_table())
    assert np.abs(out - 15.0).max() == pytest.approx(0.3, abs=1e-3)
    assert np.mean(out) == pytest.approx(15.0, abs=0.01)


@pytest.mark.parametrize(("kind", "delta"), [("brightening", -2.0), ("fading", 1.5)])
def test_g_changes_by_delta_during_the_event_only(kind, delta):
    t = np.array([99, 100, 150, 199, 200]) + T0_NS
    ev = one_event(kind, delta, T0_NS + 100, T0_NS + 200, 16.0 + delta)
    out = variability.g_mag_at(np.full(5, 16.0), t, np.full(5, 5), constant(5), ev)
    assert out.tolist() == [16.0, 16.0 + delta, 16.0 + delta, 16.0 + delta, 16.0]
    other = variability.g_mag_at(np.full(5, 16.0), t, np.full(5, 6), constant(5), ev)
    assert other.tolist() == [16.0] * 5, "another source is untouched"


def test_a_new_source_exists_during_its_event_only():
    t = np.array([99, 100, 199, 200]) + T0_NS
    ev = one_event("new_source", None, T0_NS + 100, T0_NS + 200, 17.25)
    out = variability.g_mag_at(np.full(4, 17.25), t, np.full(4, 5), constant(4), ev)
    assert np.isnan(out[[0, 3]]).all() and out[1:3].tolist() == [17.25, 17.25]


def test_two_events_on_one_source_are_refused():
    ev = pa.concat_tables([one_event("fading", 1.0, 0, 1, 17.0)] * 2)
    with pytest.raises(ValueError, match="one event per source"):
        variability.g_mag_at(np.array([16.0]), np.array([0]), np.array([5]), constant(1), ev)


def test_transients_can_be_placed_from_transit_source_ids(scanned_sky):
    """The generator's slices keep source ids, not rows: place_transients materialises the hosts again."""
    sources, found, _scan = scanned_sky
    sid = sources["source_id"].to_numpy()[found["source_index"]]
    t, extra = variability.place_transients(PLAN, np.random.default_rng(1), 42, 2e-5, T0_NS, T1_NS, sid,
                                            found["obmt_ns"], found["fov"], found["zeta_rad"])
    assert t.num_rows == 30 and extra.num_rows == t["kind"].to_pylist().count("new_source")
    for ev in t.to_pylist():
        mine = sid == ev["host_source_id"]
        assert covers_a_pair(found["obmt_ns"][mine], found["fov"][mine], ev["start_ns"], ev["end_ns"]), ev
    with pytest.raises(ValueError, match="give the seed and scale"):
        variability.place_transients(PLAN, np.random.default_rng(1), 43, 2e-5, T0_NS, T1_NS, sid,
                                     found["obmt_ns"], found["fov"], found["zeta_rad"])
