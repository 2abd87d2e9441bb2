"""Dataset specs and fault plans (gaiasim.spec, gaiasim.sim.faults): every bad one is a SpecError
naming the key at fault; good ones load."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from gaiasim.sim.faults import FaultPlan, load_plan
from gaiasim.spec import DaySpec, SpecError, load_spec, make_spec

REPO_ROOT = Path(__file__).resolve().parents[2]
GOOD = 'name = "t"\nseed = 3\nscale = 1e-5\ndate = 2016-03-01\ndays = 1\n'


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_spec_loads(tmp_path):
    spec, faults = load_spec(write(tmp_path, GOOD))
    assert spec == DaySpec(seed=3, scale=1e-5, date=dt.date(2016, 3, 1), days=1, name="t")
    assert faults is None


def test_spec_with_a_fault_plan_resolves_it_next_to_the_spec(tmp_path):
    write(tmp_path, "bit_flip = 0.01\n", "plan.toml")
    spec, faults = load_spec(write(tmp_path, GOOD + 'faults = "plan.toml"\n'))
    assert spec.faults == "plan.toml"
    assert faults == (tmp_path / "plan.toml").resolve()
    assert load_plan(faults) == FaultPlan(bit_flip=0.01)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("colour = 3\n", "colour"),
        ("scale = -1e-5\n", "scale"),
        ("scale = 0\n", "scale"),
        ("scale = 0.0\n", "scale"),
        ("scale = 2\n", "scale"),
        ('scale = "big"\n', "scale"),
        ("scale = true\n", "scale"),
        ("date = 2014-08-21\n", "date"),
        ("date = 2025-01-16\n", "date"),
        ("date = 2025-01-15\ndays = 2\n", "date"),
        ('date = "2016-13-01"\n', "date"),
        ("date = 2016-03-01T00:00:00\n", "date"),
        ("days = 0\n", "days"),
        ("days = 32\n", "days"),
        ("days = 1.5\n", "days"),
        ("seed = -1\n", "seed"),
        ("seed = 1.5\n", "seed"),
        ('faults = "nowhere.toml"\n', "faults"),
        ("faults = 5\n", "faults"),
    ],
)
def test_bad_spec_names_the_key(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(SpecError, match=key) as info:
        load_spec(path)
    message = str(info.value)
    assert "\n" not in message, "the message is one line"
    if key != "faults":  # a missing fault plan is named by its own path instead
        assert str(path) in message, "the message names the file"


@pytest.mark.parametrize("scale", [-1.0, 0.0, 2.0, 1e-7])
def test_scale_out_of_range_from_keywords(scale):
    with pytest.raises(SpecError, match="scale"):
        make_spec(scale=scale)


@pytest.mark.parametrize("date", [dt.date(2014, 8, 22), dt.date(2025, 1, 15), "2016-03-01"])
def test_dates_at_the_ends_of_the_science_period_are_accepted(date):
    assert isinstance(make_spec(date=date).date, dt.date)


def test_malformed_toml_is_a_spec_error(tmp_path):
    path = write(tmp_path, "scale = = 1\n")
    with pytest.raises(SpecError, match="not valid TOML") as info:
        load_spec(path)
    assert str(path) in str(info.value)


def test_missing_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("bit_flips = 0.1\n", "bit_flips"),
        ("bit_flip = 0.6\n", "bit_flip"),
        ("packet_loss = 0.51\n", "packet_loss"),
        ("duplicate = -0.1\n", "duplicate"),
        ('duplicate = "some"\n', "duplicate"),
        ("truncated_files = -1\n", "truncated_files"),
        ("truncate_octets = 0\n", "truncate_octets"),
        ("truncate_octets = 1.5\n", "truncate_octets"),
    ],
)
def test_bad_fault_plan_names_the_key(tmp_path, text, key):
    with pytest.raises(SpecError, match=key):
        load_plan(write(tmp_path, text, "plan.toml"))


def test_shipped_fault_plans_load():
    plans = sorted((REPO_ROOT / "datasets" / "faults").glob("*.toml"))
    assert plans, "no fault plans in datasets/faults"
    for path in plans:
        assert isinstance(load_plan(path), FaultPlan)
    assert load_plan(REPO_ROOT / "datasets" / "faults" / "corrupted_link.toml").truncated_files == 1


def test_digest_is_stable_and_tells_specs_apart():
    a = make_spec(seed=1)
    assert a.digest() == make_spec(seed=1).digest() == DaySpec(seed=1).digest()
    assert len(a.digest()) == 64 and int(a.digest(), 16) >= 0
    others = [dataclasses.replace(a, **{k: v}) for k, v in
              {"seed": 2, "scale": 2e-5, "date": dt.date(2016, 3, 2), "days": 2, "faults": "x.toml",
               "name": "other"}.items()]
    digests = {a.digest(), *(o.digest() for o in others)}
    assert len(digests) == 1 + len(others), "two different specs share a digest"


def test_digest_survives_a_round_trip_through_json():
    a = make_spec(seed=9, scale=3e-5, date="2017-07-07", days=3, name="x")
    assert make_spec(**a.to_json()).digest() == a.digest()
