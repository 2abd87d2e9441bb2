"""``gaiasim replay`` (gaiasim.replay): the pass schedule on a fake clock, and one real delivery at speed max."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from gaiasim import dataset as ds
from gaiasim import replay as rp
from gaiasim.cli import main
from gaiasim.sim import downlink
from gaiasim.spec import SpecError, make_spec
from pipeline.io import InputError, sha256_file

DATE = dt.date(2016, 1, 16)
T0_NS = 69_911_112_960_000_000  # any OBMT will do: the schedule is relative to the first delivery
HOUR_S = 3600.0


class FakeClock:
    """A clock that only moves when slept on (or advanced by hand); it records every sleep."""

    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def fake_dataset(root: Path, days: int = 1) -> Path:
    """A dataset folder with just what replay reads: the manifest's spec and start, and one TM file per pass
    (the pass's name as its content)."""
    spec = make_spec(name="fake", seed=1, scale=1e-5, date=DATE, days=days)
    (root / "tm").mkdir(parents=True)
    (root / ds.MANIFEST).write_text(json.dumps({"spec": spec.to_json(), "obmt_start_ns": T0_NS, "files": {}}))
    for p in downlink.pass_schedule(DATE, days, T0_NS):
        (root / "tm" / f"{p.name}.tm").write_bytes(p.name.encode() * 100)
    return root


def test_a_pass_lasts_its_share_of_the_daily_contact():
    assert rp.PASS_DURATION_S * len(downlink.PASS_START_H) == pytest.approx(8 * HOUR_S)  # docs/facts.md 3: ~8 h a day


def test_schedule_compresses_the_passes_by_the_speed(tmp_path):
    dataset = fake_dataset(tmp_path / "ds")
    plan = rp.schedule(dataset, speed=3600.0)
    assert [s.file for s in plan] == ["2016-01-16T02-00.tm", "2016-01-16T10-00.tm", "2016-01-16T18-00.tm",
                                      "2016-01-17T02-00.tm"]
    # Passes 8 h apart -> 8 s apart at 3600 x real time.
    assert [s.scheduled_s for s in plan] == pytest.approx([0.0, 8.0, 16.0, 24.0])
    first_end_ns = T0_NS + int(2 * HOUR_S * 1e9) + round(rp.PASS_DURATION_S * 1e9)
    assert plan[0].delivery_ns == first_end_ns


def test_replay_sleeps_until_each_delivery_and_renames_every_file_into_the_inbox(tmp_path):
    dataset = fake_dataset(tmp_path / "ds")
    clock, seen = FakeClock(), []
    log = rp.replay(dataset, tmp_path / "inbox", 1800.0, clock=clock, sleep=clock.sleep,
                    on_delivery=lambda d, i, n: seen.append((i, n, sorted(p.name for p in (tmp_path / "inbox")
                                                                          .iterdir()))))
    assert clock.sleeps == pytest.approx([16.0, 16.0, 16.0])  # 8 h / 1800 = 16 s
    assert [d.delivered_s for d in log] == pytest.approx([0.0, 16.0, 32.0, 48.0])
    assert [d.delivered_at for d in log] == pytest.approx([1_000_000.0 + s for s in (0, 16, 32, 48)])
    assert [d.scheduled_s for d in log] == pytest.approx([0.0, 16.0, 32.0, 48.0])
    # Each callback sees its file (and the earlier ones) complete in the inbox, never a .part file.
    assert [(i, n, len(names)) for i, n, names in seen] == [(0, 4, 1), (1, 4, 2), (2, 4, 3), (3, 4, 4)]
    assert all(not name.startswith(".") for _i, _n, names in seen for name in names)
    for d in log:
        assert (tmp_path / "inbox" / d.file).read_bytes() == (dataset / "tm" / d.file).read_bytes()


def test_a_slow_delivery_does_not_push_back_the_next_ones(tmp_path):
    dataset = fake_dataset(tmp_path / "ds")
    clock = FakeClock()

    def slow_consumer(d, i, n):  # 20 s of work after each file: longer than the 16 s between files
        clock.t += 20.0

    log = rp.replay(dataset, tmp_path / "inbox", 1800.0, clock=clock, sleep=clock.sleep, on_delivery=slow_consumer)
    assert clock.sleeps == []  # always behind: never waits
    assert [d.delivered_s for d in log] == pytest.approx([0.0, 20.0, 40.0, 60.0])
    assert rp.progress_line(log[1], 1, 4) == ("[2/4] 2016-01-16T10-00.tm delivered at +20.0 s "
                                              "(due +16.0 s, late 4.0 s)")


def test_speed_max_delivers_without_sleeping(tmp_path):
    dataset = fake_dataset(tmp_path / "ds", days=2)
    clock = FakeClock()
    log = rp.replay(dataset, tmp_path / "inbox", math.inf, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == []
    assert len(log) == 7 and all(d.scheduled_s == 0.0 for d in log)


@pytest.mark.parametrize(("text", "speed"), [("max", math.inf), ("MAX", math.inf), ("2.5", 2.5), ("3600", 3600.0)])
def test_speed_parses_numbers_and_max(text, speed):
    assert rp.parse_speed(text) == speed


@pytest.mark.parametrize("text", ["0", "-1", "nan", "fast", ""])
def test_speed_must_be_a_positive_number_or_max(text):
    with pytest.raises(SpecError, match="speed"):
        rp.parse_speed(text)


def test_missing_dataset_no_tm_files_and_foreign_tm_files_are_refused(tmp_path):
    with pytest.raises(InputError, match="not found"):
        rp.schedule(tmp_path / "nowhere", 1.0)
    dataset = fake_dataset(tmp_path / "ds")
    for f in (dataset / "tm").glob("*.tm"):
        f.unlink()
    with pytest.raises(InputError, match="no TM files"):
        rp.schedule(dataset, 1.0)
    (dataset / "tm" / "2016-01-16T05-00.tm").write_bytes(b"x")
    with pytest.raises(InputError, match="not a pass"):
        rp.schedule(dataset, 1.0)


# --- the command, on a real tiny dataset ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny level (about 700 transits), generated once for this module."""
    from gaiasim.sim.generate import generate
    from gaiasim.workspace import level_spec

    spec, faults_path = level_spec("tiny")
    out = tmp_path_factory.mktemp("replay") / "tiny"
    generate(spec, out, faults_path)
    return out


def invoke(*args):
    return CliRunner().invoke(main, ["replay", *(str(a) for a in args)])


def test_cli_replay_at_speed_max_delivers_every_tm_file_intact(tiny_dataset, tmp_path):
    inbox = tmp_path / "inbox"
    result = invoke(tiny_dataset, "--inbox", inbox, "--speed", "max")
    assert result.exit_code == 0, result.output
    expected = {name: digest for name, digest in ds.read_manifest(tiny_dataset)["files"].items()
                if name.startswith("tm/")}
    assert {f"tm/{p.name}": sha256_file(p) for p in inbox.iterdir()} == expected  # no .part left behind
    lines = [line for line in result.stdout.splitlines() if " delivered at +" in line]
    assert len(lines) == len(expected) and lines[0].startswith(f"[1/{len(expected)}] ")


@pytest.mark.parametrize(("make", "speed", "words"), [
    (lambda root: root / "nowhere", "max", ["not found"]),
    (lambda root: (root / "empty" / "tm").mkdir(parents=True) or fake_manifest(root / "empty"), "max",
     ["no TM files"]),
    (lambda root: fake_dataset(root / "ds"), "0", ["--speed", "> 0"]),
    (lambda root: fake_dataset(root / "ds"), "soon", ["--speed", "max"]),
])
def test_cli_errors_are_one_line_and_exit_2(tmp_path, make, speed, words):
    result = invoke(make(tmp_path), "--inbox", tmp_path / "inbox", "--speed", speed)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gaiasim: error:"), lines
    for w in words:
        assert w in lines[0]


def fake_manifest(root: Path) -> Path:
    spec = make_spec(name="fake", seed=1, scale=1e-5, date=DATE)
    (root / ds.MANIFEST).write_text(json.dumps({"spec": spec.to_json(), "obmt_start_ns": T0_NS, "files": {}}))
    return root
