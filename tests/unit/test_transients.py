"""Science-alert transients (gaiasim.sim.transients): the class mix and its parameters, the light curves against a
plain-Python oracle (tests/naive/transients.py), detectability, the rate (Poisson per calendar day, scaled by
scale and boost), and determinism whatever the slicing."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaiasim.sim import generate as gen
from gaiasim.sim import sky, transients
from gaiasim.sim.timescale import obmt_ns_from_date
from gaiasim.spec import SpecError, make_spec
from tests.naive import transients as naive

T0_NS = obmt_ns_from_date(dt.date(2016, 3, 1))
DAY = transients.NS_PER_DAY


def hosts(g_mag: np.ndarray) -> pa.Table:
    """Sky rows of G ``g_mag`` around (10, 20) deg."""
    n = len(g_mag)
    u = sky.pixel_of_unit(np.array([[0.92, 0.16, 0.34]]))[0]
    return pa.table({"source_id": (u << sky.SOURCE_ID_SHIFT) + np.arange(n), "pixel": np.full(n, u, np.int32),
                     "ra_deg": 10.0 + np.arange(n) * 1e-3, "dec_deg": np.full(n, 20.0),
                     "g_mag": np.asarray(g_mag, np.float32), "bp_rp": np.ones(n, np.float32)},
                    schema=sky.TRUTH_SOURCES)


def events(seed: int, n: int, g_mag: np.ndarray, mix: str = "realistic", phase: float | None = None) -> pa.Table:
    """``n`` events of ``mix`` (ids 0..n-1) on hosts of G ``g_mag``, in progress at T0 at a hashed phase."""
    ids = np.arange(n, dtype=np.int64)
    models = transients.draw_models(seed, ids, mix)
    ph = transients.hashed_uniform(seed, ids, 7) if phase is None else np.full(n, phase)
    if mix == "step":
        start = np.full(n, T0_NS - DAY)
        return transients.build(seed, ids, "focused", models, hosts(g_mag), np.arange(n), start, ph,
                                window=(start, start + 3 * DAY))[0]
    return transients.build(seed, ids, "rate", models, hosts(g_mag), np.arange(n), np.full(n, T0_NS), ph)[0]


# --- the mix --------------------------------------------------------------------------------------------------------

def test_the_class_mix_follows_its_shares():
    m = transients.draw_models(3, np.arange(200_000))
    cls, sub = m["class"], m["subclass"]
    for name, share in transients.CLASS_SHARES.items():
        # Binomial(200000, p): 5 standard deviations are at most 0.0056.
        assert abs(np.mean(cls == name) - share) < 0.0056, name
    sn = cls == "supernova"
    for name, share, _kind in transients.SUBCLASSES["supernova"]:
        assert abs(np.mean(sub[sn] == name) - share) < 0.01, f"SN {name} (docs row 3.13)"
    assert abs(np.mean(sub[cls == "microlensing"] == "binary") - 0.1) < 0.01, "10 % binary lenses (row 3.18)"
    kinds = {k: set(m["kind"][cls == k]) for k in transients.CLASS_SHARES}
    assert kinds["supernova"] == {"brightening", "new_source"} and kinds["cv"] == {"brightening"}
    assert kinds["other"] == {"brightening", "fading"} and kinds["yso"] == {"brightening", "fading"}
    # A supernova is a brightening of its host only within 0.4 arcsec of its centre: a few per cent (h = 1").
    nuclear = np.mean(m["kind"][sn] == "brightening")
    r = transients.NUCLEAR_OFFSET_ARCSEC / transients.SN_OFFSET_SCALE_ARCSEC
    assert nuclear == pytest.approx(1.0 - (1.0 + r) * np.exp(-r), abs=0.01)


def test_class_parameters_lie_in_their_published_ranges():
    m = transients.draw_models(5, np.arange(50_000))
    sub, cls = m["subclass"], m["class"]
    ia = sub == "Ia"
    assert m["rise_d"][ia].min() >= 10.5 and m["rise_d"][ia].max() <= 20.5, "SN Ia rise 10.5-20.5 d (row 3.17)"
    ml = cls == "microlensing"
    assert m["te_d"][ml].min() >= 5.0 and m["te_d"][ml].max() <= 300.0
    assert np.median(m["te_d"][ml]) == pytest.approx(30.0, rel=0.15), "tE median 30 d"
    assert 0.0 <= m["u0"][ml].min() and m["u0"][ml].max() <= 1.0
    cv = cls == "cv"
    assert m["amplitude_mag"][cv].min() >= 2.0 and m["amplitude_mag"][cv].max() <= 6.0, "DN 2-6 mag (3.20-3.21)"
    sn = cls == "supernova"
    assert m["sn_peak_g_mag"][sn].min() >= 14.0 and m["sn_peak_g_mag"][sn].max() <= 20.7
    # Uniform in volume: N(<G) rises as 10^(0.6 G), so most supernovae peak within a magnitude of the limit.
    assert np.mean(m["sn_peak_g_mag"][sn] > 19.7) == pytest.approx(1.0 - 10.0 ** -0.6, abs=0.02)
    assert np.isnan(m["te_d"][~ml]).all() and np.isnan(m["sn_peak_g_mag"][~sn]).all()


def test_parameters_are_a_function_of_seed_and_event_id_only():
    ids = np.arange(1000) * 37 + 5
    a = transients.draw_models(11, ids)
    b = transients.draw_models(11, ids[::-1])
    part = transients.draw_models(11, ids[100:110])
    for name in ("rise_d", "te_d", "amplitude_mag", "sn_peak_g_mag"):
        assert np.array_equal(a[name], b[name][::-1], equal_nan=True)
        assert np.array_equal(a[name][100:110], part[name], equal_nan=True)
    assert not np.array_equal(a["class"], transients.draw_models(12, ids)["class"])


def test_an_unknown_mix_is_one_line_naming_the_key():
    with pytest.raises(SpecError, match=r"^transient_mix = 'odd': must be one of realistic, step$"):
        transients.draw_models(1, np.arange(3), "odd")


# --- light curves against the oracle --------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(1, 40), g=st.floats(9.0, 20.7), mix=st.sampled_from(["realistic",
                                                                                                        "step"]),
       phase=st.floats(0.0, 1.0), times=st.lists(st.floats(-3.0, 3.0), min_size=1, max_size=12))
def test_g_of_every_transit_matches_the_oracle(seed, n, g, mix, phase, times):
    ev = events(seed, n, np.linspace(g, min(g + 1.0, 20.7), n), mix, phase)
    rows = ev.to_pylist()
    span = ev["end_ns"].to_numpy() - ev["start_ns"].to_numpy()
    # Times in and around each event: before its start, inside, after its end.
    t = np.array([[r["start_ns"] + int(x * s) for x in times] for r, s in zip(rows, span, strict=True)]).ravel()
    src = np.repeat(ev["source_id"].to_numpy(), len(times))
    g_base = np.repeat(ev["g_quiescent_mag"].fill_null(17.0).to_numpy(), len(times)).astype(np.float64)
    got = transients.g_mag_at(g_base, t, src, ev)
    want = [naive.g_at(rows[i // len(times)], g_base[i], int(t[i])) for i in range(len(t))]
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        if b is None:
            assert np.isnan(a), (rows[i // len(times)], t[i], a)
        else:
            assert a == pytest.approx(b, abs=1e-6), (rows[i // len(times)], t[i])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(1, 12), g=st.floats(12.0, 20.6), missing=st.booleans(),
       scans=st.lists(st.tuples(st.floats(-2.0, 2.0), st.integers(-200, 200)), min_size=1, max_size=6))
def test_detectability_matches_the_oracle(seed, n, g, missing, scans):
    ev = events(seed, n, np.full(n, g))
    if missing:  # every host missing from the catalogue: the alert a correct pipeline raises is a new source
        ev = transients.with_catalogue(ev, ev["source_id"].to_numpy(), np.empty(0, np.int64), np.empty(0, np.int64),
                                       np.empty(0, np.int8))
    rows = ev.to_pylist()
    # Each scan: FoV 1, then FoV 2 106.5 min later (+- minutes), around the event's peak.
    transits = {r["source_id"]: [] for r in rows}
    for r in rows:
        for at_d, jitter_min in scans:
            t1 = r["peak_ns"] + int(at_d * DAY)
            transits[r["source_id"]] += [(t1, 1), (t1 + int((106.5 + jitter_min) * 60e9), 2)]
    sid = np.array([s for s, ts in transits.items() for _ in ts], dtype=np.int64)
    t = np.array([x for ts in transits.values() for x, _f in ts], dtype=np.int64)
    f = np.array([y for ts in transits.values() for _x, y in ts], dtype=np.int8)
    got = transients.with_detectability(ev, sid, t, f)["detectable"].to_pylist()
    want = [naive.detectable(r, transits[r["source_id"]]) for r in rows]
    assert got == want


def test_the_light_curves_have_their_shapes():
    """SN Ia: flux quadratic in the rise, then linear in magnitude; microlensing: symmetric about its peak, A(u0)
    at it; a fading event's deficit; a new source absent before its rise."""
    ev = events(2, 400, np.full(400, 17.0), phase=0.5)
    p = transients.curve_params(ev)
    cls, sub = ev["class"].to_numpy(zero_copy_only=False), ev["subclass"].to_numpy(zero_copy_only=False)
    on_host = (sub == "Ia") & (ev["kind"].to_numpy(zero_copy_only=False) == "brightening")
    assert on_host.any(), "a supernova on its host among 400 events"
    i = int(np.flatnonzero(on_host)[0])
    j = int(np.flatnonzero((cls == "microlensing") & (sub == "single"))[0])
    one = {k: v[[j, j, j]] for k, v in p.items()}
    tau = np.array([-5, 0, 5]) * DAY
    dg = transients.delta_g_at(one, p["peak_ns"][j] + tau)
    assert dg[0] == pytest.approx(dg[2]) and dg[1] < dg[0], "symmetric, brightest at the peak"
    x0 = ev["blend_fraction"][j].as_py() * (transients.paczynski(ev["u0"][j].as_py()) - 1.0)
    assert dg[1] == pytest.approx(-2.5 * np.log10(1.0 + x0), abs=1e-6)
    one = {k: v[[i] * 4] for k, v in p.items()}
    rise = ev["rise_d"][i].as_py()
    dg = transients.delta_g_at(one, p["peak_ns"][i] + (np.array([-0.5 * rise, 0.0, 10.0, 20.0]) * DAY).astype(int))
    x_peak = 10.0 ** (-0.4 * ev["delta_g_mag"][i].as_py()) - 1.0
    assert dg[0] == pytest.approx(-2.5 * np.log10(1.0 + 0.25 * x_peak), abs=1e-5), "flux x 1/4 halfway up"
    decline = ev["decline_mag_per_d"][i].as_py()
    x10, x20 = (10.0 ** (-0.4 * d) - 1.0 for d in dg[2:])
    assert -2.5 * np.log10(x20 / x10) == pytest.approx(10.0 * decline, rel=1e-4), "linear in magnitude"


def test_events_end_when_their_excess_is_negligible():
    ev = events(4, 300, np.full(300, 18.0), phase=0.0)
    p = transients.curve_params(ev)
    last = ev["end_ns"].to_numpy() - 1
    dg = transients.delta_g_at(p, last)
    known = ev["kind"].to_numpy(zero_copy_only=False) != "new_source"
    fuor = ev["subclass"].to_numpy(zero_copy_only=False) == "fuor"
    assert np.all(np.abs(dg[known & ~fuor]) < 0.02), "below 0.011 mag at the end (EXCESS_END)"
    assert np.all(np.isnan(dg[~known]) | (dg[~known] > 20.6)), "a new source ends at the detection limit"
    first = transients.delta_g_at(p, ev["start_ns"].to_numpy())
    lensing = ev["class"].to_numpy(zero_copy_only=False) == "microlensing"
    assert np.all(np.abs(first[known & ~lensing]) < 1e-6), "rises start from nothing"


def test_a_fading_source_below_the_detection_limit_makes_no_transit():
    ev = events(9, 200, np.full(200, 20.0), phase=0.5)
    fading = ev.filter(pc.equal(ev["kind"], "fading"))
    assert fading.num_rows
    g = transients.g_mag_at(np.full(fading.num_rows, 20.0), fading["peak_ns"].to_numpy(),
                            fading["source_id"].to_numpy(), fading)
    deep = fading["delta_g_mag"].to_numpy() > 0.7
    assert np.isnan(g[deep]).all() and np.isfinite(g[~deep]).all()


# --- the rate ---------------------------------------------------------------------------------------------------

def test_the_rate_is_poisson_per_day_and_scales_with_scale_and_boost():
    days = range(730_000, 734_000)
    for scale, boost in ((1e-3, 100.0), (1e-2, 100.0), (1e-3, 1000.0)):
        counts = np.array([transients.rate_count(7, d, scale, boost)[1] for d in days])
        mean = transients.events_per_day(scale, boost)
        assert mean == pytest.approx(2.5 * transients.EVENTS_PER_ALERT * scale * boost)
        assert counts.mean() == pytest.approx(mean, abs=5 * np.sqrt(mean / len(days)))
        assert counts.var() == pytest.approx(mean, rel=0.15), "Poisson: variance = mean"
    assert transients.rate_count(7, 730_001, 1e-3, 100.0)[1] == transients.rate_count(7, 730_001, 1e-3, 100.0)[1]
    with pytest.raises(SpecError, match=r"^transient_boost = "):
        transients.rate_count(7, 730_001, 1.0, 1e9)


def test_rate_events_of_a_day_do_not_depend_on_the_other_days():
    pixels = np.arange(200_000, 201_000)
    t0 = T0_NS

    def crossed(a, b):
        return pixels

    one, _ = transients.rate_events(3, 1e-3, 2e3, [(736_000, t0, t0 + DAY)], crossed)
    two, _ = transients.rate_events(3, 1e-3, 2e3, [(735_999, t0 - DAY, t0), (736_000, t0, t0 + DAY)], crossed)
    assert one.num_rows > 20
    both = one.join(two, "transient_id", right_suffix="_2")
    assert both.num_rows == one.num_rows, "the day's events, whatever the days beside it"
    same_host = pc.equal(both["host_source_id"], both["host_source_id_2"]).to_numpy(zero_copy_only=False)
    day_before = set(two.filter(pc.less(two["transient_id"], int(transients.RATE_ID_BIT | ((736_000 & 0x1FFF) << 20))))[
        "host_source_id"].to_pylist())
    assert same_host.mean() > 0.8
    assert set(both["host_source_id"].filter(pa.array(~same_host)).to_pylist()) <= day_before, (
        "on the same hosts, but for those the day before took")
    assert pc.equal(both["class"], both["class_2"]).to_numpy(zero_copy_only=False).all()
    assert len(set(two["host_source_id"].to_pylist())) == two.num_rows, "one event per host"
    start, end = one["start_ns"].to_numpy(), one["end_ns"].to_numpy()
    assert np.all((start < t0 + DAY) & (end > t0)), "every event is in progress during its day"


# --- generated days ---------------------------------------------------------------------------------------------

SPEC = make_spec(name="transients", scale=1e-3, seed=2, date=dt.date(2016, 1, 16))


@pytest.fixture(scope="module")
def rate_day(tmp_path_factory):
    """A scale-1e-3 day with events at 20000 x the DR3 rate (about 800)."""
    folder = tmp_path_factory.mktemp("rate")
    (folder / "plan.toml").write_text("transient_boost = 2e4\n")
    manifest = gen.generate(SPEC, folder / "dataset", folder / "plan.toml")
    return folder / "dataset", manifest


def test_a_generated_day_records_its_rate_and_flags_its_detectable_events(rate_day):
    dataset, manifest = rate_day
    t = pq.read_table(dataset / "truth" / "transients")
    rec = manifest["transients"]
    assert rec["boost"] == 2e4 and rec["rate_per_day"] == pytest.approx(transients.events_per_day(1e-3, 2e4))
    assert rec["events"] == t.num_rows == manifest["counts"]["transients"]
    assert abs(t.num_rows - rec["rate_per_day"]) < 5 * np.sqrt(rec["rate_per_day"])
    assert set(t["origin"].to_pylist()) == {"rate"}
    fraction = rec["detectable"] / rec["events"]
    assert 0.6 / transients.EVENTS_PER_ALERT < fraction < 1.4 / transients.EVENTS_PER_ALERT, (
        f"{rec['detectable']} of {rec['events']} events detectable: EVENTS_PER_ALERT needs measuring again")
    # The detectable flag, against the oracle at the day's own transits of each event's source.
    tr = pq.read_table(dataset / "truth" / "transits", columns=["source_id", "obmt_ns", "fov"]).to_pydict()
    by_source: dict[int, list] = {}
    for s, o, f in zip(tr["source_id"], tr["obmt_ns"], tr["fov"], strict=True):
        by_source.setdefault(s, []).append((o, f))
    for ev in t.to_pylist():
        assert ev["detectable"] == naive.detectable(ev, by_source.get(ev["source_id"], [])), ev
    new = t.filter(pc.equal(t["kind"], "new_source"))
    sources = pq.read_table(dataset / "truth" / "sources", columns=["source_id"])["source_id"].to_numpy()
    assert np.isin(new["source_id"].to_numpy(), sources).all(), "new sources are in the sky"
    cat = pq.read_table(dataset / "catalogue", columns=["source_id"])["source_id"].to_numpy()
    links = pq.read_table(dataset / "truth" / "catalogue_links").to_pandas()
    linked = set(links.loc[links["catalogue_source_id"].isin(cat), "source_id"])
    assert not linked & set(new["source_id"].to_pylist()), "and not in the catalogue"
    missing = set(links.loc[links["relation"] == "missing", "source_id"])
    for ev in t.to_pylist():
        assert ev["alert_kind"] == ("new_source" if ev["source_id"] in missing else ev["kind"]), ev


def test_the_day_s_events_do_not_depend_on_its_slicing(rate_day, tmp_path, monkeypatch):
    dataset, manifest = rate_day
    assert manifest["counts"]["slices"] == 1
    monkeypatch.setattr(gen, "TRANSITS_PER_SLICE", 12_000)
    (tmp_path / "plan.toml").write_text("transient_boost = 2e4\n")
    again = gen.generate(SPEC, tmp_path / "sliced", tmp_path / "plan.toml")
    assert again["counts"]["slices"] > 3
    a = pq.read_table(dataset / "truth" / "transients")
    b = pq.read_table(tmp_path / "sliced" / "truth" / "transients")
    assert a.equals(b)


def test_a_nominal_day_of_a_small_scale_has_few_events():
    """Boost 1 at scale 1e-3: 0.04 events a day; no event means no truth row, not an error."""
    assert transients.events_per_day(1e-3, 1.0) == pytest.approx(2.5 * transients.EVENTS_PER_ALERT * 1e-3)
    days = [transients.rate_count(42, d, 4e-5, 1.0)[1] for d in range(736_000, 736_200)]
    assert sum(days) <= 3


def test_boost_zero_makes_no_rate_events():
    got, extra = transients.rate_events(1, 1.0, 0.0, [(736_000, T0_NS, T0_NS + DAY)], lambda a, b: np.arange(10))
    assert got.num_rows == 0 and extra.num_rows == 0 and got.schema.equals(transients.TRUTH_TRANSIENTS)


def test_focused_events_keep_their_pair_near_the_peak():
    """place_on_pairs: the pair of transits inside the event, where its flux excess is >= 80 % of its peak."""
    g = np.full(60, 16.0)
    src = hosts(g)
    n_t = 60
    t1 = T0_NS + np.arange(n_t) * 600_000_000_000
    idx = np.r_[np.arange(n_t), np.arange(n_t)]
    t = np.r_[t1, t1 + 6_390_000_000_000]
    f = np.r_[np.ones(n_t, np.int8), np.full(n_t, 2, np.int8)]
    ev, extra = transients.place_on_pairs(30, "realistic", np.random.default_rng(4), src, T0_NS, T0_NS + DAY, idx, t, f)
    assert ev.num_rows == 30 and len(set(ev["host_source_id"].to_pylist())) == 30
    kinds = ev["kind"].to_pylist()
    assert set(kinds) == set(transients.KINDS) and kinds.count("fading") == 3, "the mix's kinds, each at least once"
    assert extra.num_rows == ev["kind"].to_pylist().count("new_source")
    sid = src["source_id"].to_numpy()
    p = transients.curve_params(ev)
    for k, r in enumerate(ev.to_pylist()):
        host = int(np.flatnonzero(sid == r["host_source_id"])[0])
        pair = t[idx == host]
        assert r["start_ns"] <= pair.min() and pair.max() < r["end_ns"], r
        one = {key: v[[k, k]] for key, v in p.items()}
        at = transients.delta_g_at(one, pair)
        peak = 10.0 ** (-0.4 * (r["delta_g_mag"] or 0.0)) - 1.0 if r["kind"] != "new_source" else None
        if peak is not None and r["kind"] == "brightening" and r["class"] != "microlensing":
            x = 10.0 ** (-0.4 * at) - 1.0
            assert np.all(x >= 0.75 * peak), (r, at)


def test_too_many_focused_events_for_the_day_are_refused_naming_the_key():
    with pytest.raises(SpecError, match=r"^transients = 50: this day has too few sources"):
        transients.place_on_pairs(50, "realistic", np.random.default_rng(1), hosts(np.full(3, 15.0)), T0_NS,
                                  T0_NS + DAY, np.array([0, 0]), np.array([T0_NS, T0_NS + 10**12]),
                                  np.array([1, 2]))
