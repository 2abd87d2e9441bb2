"""HK monitor (pipeline.hkmon), limit tables (pipeline.limits) and HK anomaly injection
(gaiasim.sim.hk_faults): kernel against its naive oracle, persistence, escalation, open, stale and rate
events, limit-table errors, and every injected anomaly reported exactly once with nothing else."""

from __future__ import annotations

import dataclasses
import functools
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gaiasim.sim import housekeeping
from gaiasim.sim.hk_faults import HkFaultPlan, hk_plan_from, inject_hk_faults, ledger_table
from gaiasim.spec import SpecError
from pipeline import hkmon, icd, schemas
from pipeline.limits import ChannelLimits, LimitTable, default_limits_path, load_limit_table
from tests.naive import hkmon as naive

T0_NS = 1_000_000_000_000
DT_NS = 10_000_000_000  # 10 s, the HK period
DAY_NS = 86_400_000_000_000
NAMES = [c.name for c in icd.HK_CHANNELS]
#: Limits of the hand-made series: yellow 10..20, red 0..30.
BOX = dict(red_low=0.0, yellow_low=10.0, yellow_high=20.0, red_high=30.0)


def limits_of(persistence: int = 3, stale_after_s: float = 0.0, max_rate_per_s: float = 0.0,
              channel: str = "bus_voltage_v") -> LimitTable:
    return LimitTable((ChannelLimits(channel, **BOX, persistence=persistence, stale_after_s=stale_after_s,
                                     max_rate_per_s=max_rate_per_s),))


def events_of(values, limits: LimitTable, channel: str = "bus_voltage_v", dt_ns: int = DT_NS) -> list[dict]:
    v = np.asarray(values, dtype=np.float64)
    t = T0_NS + dt_ns * np.arange(len(v), dtype=np.int64)
    return hkmon.check_hk_limits(t, np.full(len(v), channel, dtype=object), v, limits).to_pylist()


def brief(events: list[dict]) -> list[tuple]:
    """(kind, severity, side, first sample index, last sample index, open) of each event."""
    return [(e["kind"], e["severity"], e["side"], (e["start_ns"] - T0_NS) // DT_NS, (e["end_ns"] - T0_NS) // DT_NS,
             e["open"]) for e in events]


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "limits.toml"
    path.write_text(text)
    return path


@functools.cache
def default_limits() -> LimitTable:
    return load_limit_table(default_limits_path())


# --- kernel == naive oracle ----------------------------------------------------------------------------

#: Values around the BOX limits: on them, just inside, beyond yellow and beyond red, on both sides.
LEVELS = [-5.0, 0.0, 5.0, 9.5, 10.0, 15.0, 20.0, 20.5, 25.0, 30.0, 35.0]


@st.composite
def channel_limits(draw, name: str) -> ChannelLimits:
    return ChannelLimits(name, **BOX, persistence=draw(st.integers(1, 4)),
                         stale_after_s=draw(st.sampled_from([0.0, 10.0, 30.0, 45.0])),
                         max_rate_per_s=draw(st.sampled_from([0.0, 0.5, 1.5])))


@st.composite
def hk_series(draw):
    """Long-format samples of 1-3 channels in a random order, with their limit table. Times step by
    0-20 s (0 = a repeated time), values come from LEVELS (so runs and repeats are frequent) or anywhere."""
    names = draw(st.lists(st.sampled_from(NAMES[:6]), min_size=1, max_size=3, unique=True))
    t, ch, v = [], [], []
    for name in names:
        n = draw(st.integers(0, 60))
        steps = draw(st.lists(st.sampled_from([0, 5, 10, 10, 10, 20]), min_size=n, max_size=n))
        t += (T0_NS + np.cumsum(np.array(steps, dtype=np.int64) * 1_000_000_000)).tolist()
        ch += [name] * n
        v += draw(st.lists(st.one_of(st.sampled_from(LEVELS), st.floats(-10.0, 40.0)), min_size=n, max_size=n))
    order = draw(st.permutations(range(len(t))))
    limits = LimitTable(tuple(draw(channel_limits(name)) for name in names))
    return np.array(t, np.int64)[order], np.array(ch, dtype=object)[order], np.array(v)[order], limits


def _key(e: dict) -> tuple:
    return (e["channel"], e["start_ns"], e["kind"], e["end_ns"])


@given(hk_series())
def test_kernel_agrees_with_the_naive_monitor(case):
    t, ch, v, limits = case
    got = hkmon.check_hk_limits(t, ch, v, limits)
    assert got.schema.equals(schemas.HK_EVENTS, check_metadata=True)
    want = naive.check_hk_limits(t, ch, v, limits)
    assert sorted(got.to_pylist(), key=_key) == sorted(want, key=_key)


def test_events_come_sorted_by_start_then_channel_and_kind():
    limits = LimitTable((ChannelLimits("bus_voltage_v", **BOX, persistence=1, stale_after_s=20.0),
                         ChannelLimits("vpu_current_a", **BOX, persistence=1)))
    t = T0_NS + DT_NS * np.arange(6, dtype=np.int64)
    v_bus = [25.0, 25.0, 25.0, 15.0, 15.0, 15.0]
    v_vpu = [15.0, 25.0, 15.0, 15.0, 5.0, 15.0]
    events = hkmon.check_hk_limits(np.r_[t, t], np.array(["vpu_current_a"] * 6 + ["bus_voltage_v"] * 6, object),
                                   np.r_[v_vpu, v_bus], limits).to_pylist()
    assert [(e["channel"], e["kind"], e["start_ns"]) for e in events] == [
        ("bus_voltage_v", "limit", t[0]), ("bus_voltage_v", "stale", t[0]), ("vpu_current_a", "limit", t[1]),
        ("bus_voltage_v", "stale", t[3]), ("vpu_current_a", "limit", t[4])]


# --- limit events -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("persistence", [1, 3, 5])
@pytest.mark.parametrize(("level", "side"), [(25.0, "high"), (5.0, "low")])
def test_persistence_minus_one_samples_raise_nothing_and_persistence_samples_one_event(persistence, level, side):
    limits = limits_of(persistence)
    assert events_of([15.0] * 4 + [level] * (persistence - 1) + [15.0] * 4, limits) == []
    (event,) = events_of([15.0] * 4 + [level] * persistence + [15.0] * 4, limits)
    assert brief([event]) == [("limit", "yellow", side, 4, 3 + persistence, False)]
    assert event["n_samples"] == persistence and event["extreme_value"] == level


def test_values_on_a_limit_are_within_it():
    assert events_of([20.0, 10.0] * 10, limits_of(1)) == [], "on the yellow limits: in limits"
    assert brief(events_of([15.0, 30.0, 15.0, 0.0, 15.0], limits_of(1))) == [
        ("limit", "yellow", "high", 1, 1, False), ("limit", "yellow", "low", 3, 3, False)], "on red: yellow only"


def test_a_yellow_excursion_that_goes_red_is_one_red_event():
    values = [15.0] * 3 + [22.0, 24.0, 31.0, 33.0, 35.0, 28.0, 21.0] + [15.0] * 3
    (event,) = events_of(values, limits_of(3))
    assert brief([event]) == [("limit", "red", "high", 3, 9, False)]
    assert event["extreme_value"] == 35.0 and event["n_samples"] == 7


def test_a_red_blip_shorter_than_the_persistence_leaves_the_excursion_yellow():
    values = [15.0] * 3 + [22.0, 24.0, 31.0, 33.0, 25.0, 21.0] + [15.0] * 3
    (event,) = events_of(values, limits_of(3))
    assert (event["severity"], event["extreme_value"]) == ("yellow", 33.0)


def test_a_jump_from_high_to_low_ends_one_event_and_starts_another():
    values = [15.0, 25.0, 25.0, 5.0, 5.0, 15.0]
    assert brief(events_of(values, limits_of(2))) == [
        ("limit", "yellow", "high", 1, 2, False), ("limit", "yellow", "low", 3, 4, False)]


def test_an_excursion_still_going_at_the_end_is_open():
    (event,) = events_of([15.0] * 5 + [3.0, -1.0, -2.0, -0.5], limits_of(3))
    assert brief([event]) == [("limit", "red", "low", 5, 8, True)]
    assert event["extreme_value"] == -2.0
    assert events_of([15.0] * 5 + [3.0, 2.0], limits_of(3)) == [], "not yet persistent: no event"


# --- stale events -------------------------------------------------------------------------------------------


def test_a_value_frozen_for_stale_after_s_is_stale_and_a_shorter_freeze_is_not():
    limits = limits_of(stale_after_s=60.0)
    noisy = [15.0, 15.1, 15.2]
    # 7 equal samples 10 s apart span 60 s: stale; 6 span 50 s: not.
    (event,) = events_of(noisy + [14.0] * 7 + noisy, limits)
    assert brief([event]) == [("stale", "yellow", "", 3, 9, False)]
    assert (event["n_samples"], event["extreme_value"]) == (7, 14.0)
    assert events_of(noisy + [14.0] * 6 + noisy, limits) == []


def test_a_frozen_value_at_the_end_is_an_open_stale_event():
    (event,) = events_of([15.0, 15.1] + [14.0] * 10, limits_of(stale_after_s=60.0))
    assert brief([event]) == [("stale", "yellow", "", 2, 11, True)]


def test_stale_check_disabled_by_zero():
    assert events_of([0.0 + 15.0] * 100, limits_of(stale_after_s=0.0)) == []


# --- rate events -----------------------------------------------------------------------------------------------


def test_too_steep_a_ramp_for_persistence_samples_is_a_rate_event():
    limits = limits_of(persistence=2, max_rate_per_s=0.2)  # 2 units per 10 s sample
    # Steps of 3, 3, 2.5 (0.3/s at most) ending on samples 3 to 5: three steep samples; in limits throughout.
    (event,) = events_of([11.0, 11.0, 11.0, 14.0, 17.0, 19.5, 19.5, 19.0], limits)
    assert brief([event]) == [("rate", "yellow", "high", 3, 5, False)]
    assert event["extreme_value"] == pytest.approx(0.3)
    (down,) = events_of([19.0, 16.0, 13.0, 13.0], limits)
    assert brief([down]) == [("rate", "yellow", "low", 1, 2, False)]
    assert down["extreme_value"] == pytest.approx(-0.3)


def test_a_ramp_within_the_rate_limit_or_a_single_steep_step_is_not_a_rate_event():
    limits = limits_of(persistence=2, max_rate_per_s=0.2)
    assert events_of([11.0, 13.0, 15.0, 17.0, 19.0], limits) == [], "exactly 0.2/s is allowed"
    assert events_of([11.0, 11.0, 15.0, 15.0, 15.5], limits) == [], "one steep sample < persistence"
    assert events_of([11.0, 15.0, 19.0], limits_of(persistence=2, max_rate_per_s=0.0)) == [], "disabled"


def test_repeated_sample_times_have_no_rate():
    t = np.array([T0_NS, T0_NS + DT_NS, T0_NS + DT_NS, T0_NS + 2 * DT_NS], dtype=np.int64)
    got = hkmon.check_hk_limits(t, np.array(["bus_voltage_v"] * 4, object), np.array([11.0, 12.0, 19.0, 19.1]),
                                limits_of(persistence=1, max_rate_per_s=0.2))
    assert got.num_rows == 0


# --- wrapper -----------------------------------------------------------------------------------------------------


def test_table_input_gives_the_same_events_and_non_finite_values_are_dropped(caplog):
    limits = limits_of(persistence=2)
    v = np.array([15.0, 25.0, np.nan, 25.0, 15.0, np.inf, 15.0])
    t = T0_NS + DT_NS * np.arange(len(v), dtype=np.int64)
    ch = np.array(["bus_voltage_v"] * len(v), dtype=object)
    with caplog.at_level(logging.WARNING, logger="pipeline.hkmon"):
        got = hkmon.check_hk_limits(t, ch, v, limits)
    assert "2 non-finite" in caplog.text
    assert brief(got.to_pylist()) == [("limit", "yellow", "high", 1, 3, False)]
    table = pa.table({"obmt_ns": t, "channel": ch.tolist(), "value": v}, schema=schemas.HK)
    assert hkmon.check_hk_table(table, limits).equals(got)


def test_channels_without_limits_are_skipped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="pipeline.hkmon"):
        got = events_of([25.0] * 5, limits_of(1, channel="vpu_current_a"), channel="bus_voltage_v")
    assert got == [] and "bus_voltage_v" in caplog.text


def test_no_samples_no_events():
    got = hkmon.check_hk_limits(np.empty(0, np.int64), np.empty(0, object), np.empty(0), limits_of())
    assert got.num_rows == 0 and got.schema.equals(schemas.HK_EVENTS)


@pytest.mark.parametrize(
    ("obmt", "value", "message"),
    [
        (np.zeros(2, np.float64), np.zeros(2), "astype(np.int64)"),
        (np.zeros(2, np.int64), np.zeros(2, np.int64), "astype(np.float64)"),
        (np.zeros(2, np.int64), np.zeros(3), "one length"),
    ],
)
def test_wrong_inputs_say_how_to_fix_them(obmt, value, message):
    with pytest.raises((TypeError, ValueError), match=message.replace("(", r"\(").replace(")", r"\)")):
        hkmon.check_hk_limits(obmt, np.array(["bus_voltage_v"] * len(obmt), object), value, limits_of())
    with pytest.raises(TypeError, match="load_limit_table"):
        hkmon.check_hk_limits(np.zeros(1, np.int64), np.array(["x"], object), np.zeros(1), {"x": None})


# --- limit tables --------------------------------------------------------------------------------------------------

GOOD_ENTRY = """red_low = 0.0
yellow_low = 10.0
yellow_high = 20.0
red_high = 30.0
persistence = 3
stale_after_s = 0.0
max_rate_per_s = 0.0
"""


def table_text(entry: str = GOOD_ENTRY, extra: str = "") -> str:
    return "".join(f"[{name}]\n{entry}\n" for name in NAMES) + extra


def test_the_default_table_covers_every_channel():
    limits = default_limits()
    assert sorted(limits) == sorted(NAMES)
    assert default_limits_path().is_file()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (table_text(extra="[fpa_temp_xx_k]\n" + GOOD_ENTRY), ["fpa_temp_xx_k", "unknown channel"]),
        (table_text(GOOD_ENTRY + "colour = 'red'\n"), ["'colour'", "allowed keys"]),
        (table_text(GOOD_ENTRY.replace("red_high = 30.0", "red_high = 15.0")), ["red_high", "yellow_high", "below"]),
        (table_text(GOOD_ENTRY.replace("red_low = 0.0", "red_low = 12.0")), ["red_low", "yellow_low", "below"]),
        (table_text(GOOD_ENTRY.replace("persistence = 3", "persistence = -1")), ["persistence", ">= 1"]),
        (table_text(GOOD_ENTRY.replace("persistence = 3", "persistence = 2.5")), ["persistence", "integer"]),
        (table_text(GOOD_ENTRY.replace("stale_after_s = 0.0", "stale_after_s = -5.0")), ["stale_after_s", ">= 0"]),
        (table_text(GOOD_ENTRY.replace("max_rate_per_s = 0.0\n", "")), ["max_rate_per_s", "missing"]),
        (table_text(GOOD_ENTRY.replace("yellow_low = 10.0", "yellow_low = true")), ["yellow_low", "number"]),
        ("\n".join(f"[{n}]\n{GOOD_ENTRY}" for n in NAMES[1:]), [NAMES[0], "no limits"]),
        ("[bus_voltage_v\n", ["not valid TOML"]),
    ],
)
def test_bad_limit_tables_fail_with_one_line_naming_the_channel_and_key(tmp_path, text, words):
    path = write_toml(tmp_path, text)
    with pytest.raises(ValueError) as info:
        load_limit_table(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message, f"{word!r} missing from {message!r}"


def test_a_missing_limit_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load_limit_table(tmp_path / "absent.toml")


def test_a_good_table_loads_with_its_values(tmp_path):
    limits = load_limit_table(write_toml(tmp_path, table_text()))
    assert limits["bus_voltage_v"] == ChannelLimits("bus_voltage_v", **BOX, persistence=3)
    assert isinstance(limits["bus_voltage_v"].red_low, float)


@pytest.mark.parametrize("name", list(housekeeping.HK_NOMINAL))
def test_default_limits_sit_far_from_the_simulated_nominal_values(name):
    """Yellow >= 20 sigma from the nominal value after 31 days of drift, the rate limit >= 20 sigma of a
    10 s difference, and stale needing many identical samples, so a nominal month raises nothing."""
    nominal, sigma, drift_per_day = housekeeping.HK_NOMINAL[name]
    lim = default_limits()[name]
    lo, hi = sorted([nominal, nominal + 31 * drift_per_day])
    assert lim.yellow_low <= lo - 20 * sigma and lim.yellow_high >= hi + 20 * sigma
    dt_s = housekeeping.HK_PERIOD_NS * 1e-9
    assert lim.max_rate_per_s * dt_s >= 20 * np.sqrt(2) * sigma
    assert lim.stale_after_s >= 10 * dt_s


def test_star_rates_have_sanity_limits_only():
    for name in ("star_rate_fov1_hz", "star_rate_fov2_hz"):
        lim = default_limits()[name]
        assert lim.stale_after_s == 0.0 and lim.max_rate_per_s == 0.0
        assert lim.yellow_low < 0.0 and lim.yellow_high >= 10_000.0, "0/s and the densest sky are nominal"


# --- simulated days: nominal, then with injected anomalies ----------------------------------------------------


@functools.cache
def nominal_day(seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """(obmt_ns, values (n, channels)) of one simulated day of HK, star rates from 5000 random transits."""
    rng = np.random.default_rng(seed)
    transit_t = np.sort(rng.integers(T0_NS, T0_NS + DAY_NS, 5000))
    transit_fov = rng.integers(1, 3, 5000).astype(np.int8)
    return housekeeping.hk_samples(rng, T0_NS, T0_NS + DAY_NS, transit_t, transit_fov)


def monitor(t: np.ndarray, values: np.ndarray) -> list[dict]:
    """Events of a simulated day, values rounded to float32 as the HK packets carry them."""
    downlinked = values.astype(np.float32).astype(np.float64)
    return hkmon.check_hk_limits(np.repeat(t, len(NAMES)), np.tile(np.array(NAMES, dtype=object), len(t)),
                                 downlinked.ravel(), default_limits()).to_pylist()


def test_a_nominal_day_raises_no_event():
    t, values = nominal_day()
    assert len(t) == DAY_NS // housekeeping.HK_PERIOD_NS
    assert monitor(t, values) == []


@given(seed=st.integers(0, 2**32 - 1), excursions=st.integers(0, 12), stale=st.integers(0, 6))
def test_every_injected_anomaly_is_reported_once_and_nothing_else(seed, excursions, stale):
    t, nominal = nominal_day()
    values, rows = inject_hk_faults(HkFaultPlan(excursions, stale), np.random.default_rng(seed), t, nominal,
                                    default_limits())
    assert len(rows) == excursions + stale
    assert np.array_equal(values[:, 6:], nominal[:, 6:]), "the star rates are left alone"
    events = monitor(t, values)
    kind_of = {"hk_excursion": "limit", "hk_stale": "stale"}
    for row in rows:
        found = [e for e in events if e["channel"] == row["channel"] and e["kind"] == kind_of[row["kind"]]
                 and e["start_ns"] <= row["end_ns"] and row["start_ns"] <= e["end_ns"]]
        assert len(found) == 1, f"injected {row} reported by {len(found)} events"
        (e,) = found
        assert (e["severity"], e["side"], e["start_ns"], e["end_ns"], e["open"]) == (
            row["severity"], row["side"], row["start_ns"], row["end_ns"], False), f"{row} reported as {e}"
    assert len(events) == len(rows), f"{len(events) - len(rows)} events outside the injected anomalies"


def test_injection_is_deterministic_and_leaves_its_input_alone():
    t, nominal = nominal_day()
    before = nominal.copy()
    a = inject_hk_faults(HkFaultPlan(5, 3), np.random.default_rng(3), t, nominal, default_limits())
    b = inject_hk_faults(HkFaultPlan(5, 3), np.random.default_rng(3), t, nominal, default_limits())
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    assert np.array_equal(nominal, before)
    table = ledger_table(a[1])
    assert table.column("fault_id").to_pylist() == list(range(8))
    assert set(table.column("expected").to_pylist()) <= {
        f"hk_event:limit:{s}:{side}" for s in ("yellow", "red") for side in ("low", "high")} | {"hk_event:stale:yellow"}


def test_an_empty_plan_changes_nothing():
    t, nominal = nominal_day()
    values, rows = inject_hk_faults(HkFaultPlan(), np.random.default_rng(0), t, nominal, default_limits())
    assert rows == [] and np.array_equal(values, nominal)


def test_too_many_anomalies_for_the_data_is_a_clear_error():
    t, nominal = nominal_day()
    with pytest.raises(SpecError, match="hk_stale = 900: could not place"):
        inject_hk_faults(HkFaultPlan(0, 900), np.random.default_rng(0), t[:2000], nominal[:2000], default_limits())


@pytest.mark.parametrize(("raw", "key"), [({"hk_excursions": -1}, "hk_excursions"), ({"hk_stale": True}, "hk_stale"),
                                          ({"hk_stale": 1.5}, "hk_stale"), ({"hk_excursions": 10**6}, "hk_excursions")])
def test_bad_hk_fault_plans_name_the_key(raw, key):
    with pytest.raises(SpecError, match=f"^{key} = .*: must be an integer in"):
        hk_plan_from(raw)


def test_hk_plan_keys_are_picked_from_a_fault_plan():
    plan = hk_plan_from({"packet_loss": 0.01, "hk_excursions": 4, "hk_stale": 2})
    assert plan == HkFaultPlan(4, 2)
    assert dataclasses.asdict(hk_plan_from({})) == {"hk_excursions": 0, "hk_stale": 0}
