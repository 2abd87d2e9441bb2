"""Campaigns (gaiasim.campaign, ``gaiasim campaign``): the spec's one-line errors, a one-day campaign that
comes out green and is skipped when run again, and a candidate pipeline configuration that comes out red."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gaiasim import campaign as cp
from gaiasim.cli import main
from gaiasim.spec import SpecError
from gaiasim.validate import history as hist

REPO = Path(__file__).resolve().parents[2]

#: One tiny day at half the tiny level's scale (about 400 transits), replayed at once into the watch mode
#: and compared with its batch run; no features (they have their own tests).
MINI = """
name = "{name}"
replay_speed = "max"
tags = ""
baseline = "clean"
html_reports = {html}
{extra}
[[days]]
date = "2016-01-16"
level = "tiny"
faults = "none"
seed = 42
scale = 5e-6
"""
#: A calibration regression: G zero point off by 0.05 mag, 5 x the REQ-PHOT-001 budget.
REGRESSION = "[pipeline_config.calibration]\nzero_point_g_mag = 25.7374\n"


def write(folder: Path, text: str, name: str = "campaign.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def campaign(*args) -> object:
    return CliRunner().invoke(main, ["campaign", *map(str, args)])


# --- the spec ------------------------------------------------------------------------------------------

DAY = '[[days]]\ndate = "2016-01-16"\nlevel = "tiny"\nfaults = "none"\nseed = 1\n'
HEAD = 'name = "t"\n'

BAD_SPECS = [
    ("unknown key", HEAD + "dayz = 1\n" + DAY, ["unknown key 'dayz'", "allowed keys:", "replay_speed"]),
    ("unknown day key", HEAD + DAY + "sed = 4\n", ["days[1]", "unknown key 'sed'", "allowed keys: date, faults"]),
    ("bad date", HEAD + DAY.replace('"2016-01-16"', '"2016-02-30"'), ["days[1]", "date = '2016-02-30'",
                                                                      "YYYY-MM-DD"]),
    ("date outside the mission", HEAD + DAY.replace("2016-01-16", "2030-01-01"), ["date = 2030-01-01", "must lie in"]),
    ("unknown level", HEAD + DAY.replace('"tiny"', '"huge"'), ["unknown dataset level 'huge'", "known:",
                                                               "tiny"]),
    ("unknown fault plan", HEAD + DAY.replace('"none"', '"meteor"'), ["unknown fault plan 'meteor'",
                                                                      "known:", "corrupted_link"]),
    ("fault plan as a path", HEAD + DAY.replace('"none"', '"../levels/tiny"'), ["faults = '../levels/tiny'",
                                                                                "datasets/faults/"]),
    ("missing seed", HEAD + DAY.replace("seed = 1\n", ""), ["days[1]: seed is missing"]),
    ("no name", DAY, ["name is missing"]),
    ("days and range", HEAD + '[range]\nstart = "2016-01-16"\nend = "2016-01-17"\n' + DAY, ["either [[days]]"]),
    ("range backwards", HEAD + 'level = "tiny"\nseed = 1\n[range]\nstart = "2016-01-17"\nend = "2016-01-16"\n',
     ["end = 2016-01-16 is before start"]),
    ("replay speed", HEAD + 'replay_speed = "fast"\n' + DAY, ["replay_speed = 'fast'", "max", "none"]),
    ("unknown tag", HEAD + 'tags = "e2e or smoke"\n' + DAY, ["unknown tag 'smoke'", "known tags:", "e2e"]),
    ("missing baseline run", HEAD + 'baseline = "no/such/run"\n' + DAY, ["baseline = ", "no finished run",
                                                                         "\"clean\""]),
    ("unknown pipeline_config key", HEAD + "[pipeline_config]\nmatch_radius = 300\n" + DAY,
     ["pipeline_config: unknown key 'match_radius'", "allowed keys: alerts_path, calibration, hk_limits_path, "
      "match_radius_mas"]),
    ("unknown calibration key", HEAD + "[pipeline_config.calibration]\ngain = 0.3\n" + DAY,
     ["pipeline_config.calibration: unknown key 'gain'", "gain_adu_per_e"]),
    ("pipeline_config value", HEAD + '[pipeline_config]\nmatch_radius_mas = "wide"\n' + DAY,
     ["pipeline_config.match_radius_mas = 'wide'", "number"]),
    ("match radius the crossmatch refuses", HEAD + "[pipeline_config]\nmatch_radius_mas = 1\n" + DAY,
     ["match_radius_mas = 1", "must lie in [200"]),
    ("not TOML", "name = \n", ["not valid TOML"]),
    ("unknown SUT", HEAD + '[sut]\nspec = "java:idt.jar"\n' + DAY, ["unknown SUT spec 'java:idt.jar'", "cmd:"]),
    ("unknown SUT key", HEAD + '[sut]\ncommand = "x"\n' + DAY, ["[sut]: unknown key 'command'", "spec, timeout_s"]),
    ("SUT timeout", HEAD + '[sut]\nspec = "builtin"\ntimeout_s = -1\n' + DAY, ["timeout_s = -1", "> 0"]),
    ("replay without a watch mode", HEAD + 'replay_speed = "max"\n[sut]\nspec = "cmd:run.sh {dataset} {out}"\n' + DAY,
     ["replay_speed = max needs a system under test with a watch mode", "{inbox}"]),
    ("config overrides for a command SUT", HEAD + '[sut]\nspec = "cmd:run.sh {dataset} {out}"\n'
     '[pipeline_config]\nmatch_radius_mas = 300\n' + DAY, ["apply to the builtin pipeline only"]),
    ("unknown baseline SUT", HEAD + 'baseline = "sut:nope"\n' + DAY, ["unknown SUT spec 'nope'"]),
]


@pytest.mark.parametrize(("text", "needles"), [pytest.param(t, n, id=i) for i, t, n in BAD_SPECS])
def test_a_bad_spec_is_one_error_line_naming_the_key_and_exit_2(tmp_path, text, needles):
    spec = write(tmp_path, text)

    result = campaign(spec, "--out", tmp_path / "out")

    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output} {result.exception!r}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gaiasim: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0]
    assert not (tmp_path / "out").exists(), "a bad spec must not start anything"


def test_a_missing_spec_file_is_one_line_and_exit_2(tmp_path):
    result = campaign(tmp_path / "nope.toml", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "nope.toml: no such file" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_range_expands_to_consecutive_days_with_one_level_and_plan():
    spec = cp.CampaignSpec.from_dict({"name": "week", "level": "tiny", "faults": "hk_anomalies", "seed": 3,
                                      "range": {"start": "2016-01-30", "end": "2016-02-02"}})
    assert [d.label for d in spec.days] == ["01-2016-01-30-hk_anomalies", "02-2016-01-31-hk_anomalies",
                                            "03-2016-02-01-hk_anomalies", "04-2016-02-02-hk_anomalies"]
    assert {(d.spec.seed, d.spec.scale, d.spec.days, d.faults_path.name) for d in spec.days} == {
        (3, 1e-5, 1, "hk_anomalies.toml")}


def test_pipeline_config_overrides_reach_the_config_and_nothing_else_changes():
    config = cp.pipeline_config({"match_radius_mas": 300, "calibration": {"read_noise_e": {"AF2": 5.0}}})
    default = cp.PipelineConfig()
    assert config.match_radius_mas == 300.0
    assert config.calibration.read_noise_e == {**default.calibration.read_noise_e, "AF2": 5.0}
    assert config.calibration.gain_adu_per_e == default.calibration.gain_adu_per_e
    with pytest.raises(SpecError, match="must be a finite number"):
        cp.pipeline_config({"match_radius_mas": True})


def test_the_shipped_campaigns_load():
    e2e = cp.CampaignSpec.load(REPO / "datasets" / "campaigns" / "e2e.toml")
    rehearsal = cp.CampaignSpec.load(REPO / "datasets" / "campaigns" / "rehearsal.toml")
    assert [(d.level, d.faults) for d in e2e.days] == [("tiny", "none"), ("tiny", "corrupted_link")]
    assert e2e.tags == "e2e"
    assert [(d.level, d.faults, d.spec.date.day) for d in rehearsal.days] == [
        ("small", "hk_anomalies", 16), ("small", "corrupted_link", 17), ("small", "transients", 18)]
    assert rehearsal.replay_speed == 600 and rehearsal.tags == "e2e or ingest or health or science"


# --- running one ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def green(tmp_path_factory) -> tuple[Path, object, Path]:
    """A one-day campaign run once: (its folder, the CLI result, the history database)."""
    root = tmp_path_factory.mktemp("campaign")
    spec = write(root, MINI.format(name="mini", html="true", extra=""))
    history = root / "history.duckdb"
    result = campaign(spec, "--out", root / "out", "--history", history)
    return root, result, history


def test_a_one_day_campaign_is_green_and_says_so_in_campaign_json(green):
    root, result, history = green
    assert result.exit_code == 0, result.output + repr(result.exception)
    summary = json.loads((root / "out" / "campaign.json").read_text())
    assert summary["green"] and summary["campaign"] == "mini"
    (day,) = summary["days"]
    assert day["green"] and day["checks"]["failed"] == 0 and day["scorecard"]["complete"]
    assert day["comparison"] == {**day["comparison"], "compared": True, "differs": False}
    assert day["replay"]["files"] == 4 and day["replay"]["max_file_latency_s"] > 0
    assert Path(day["run"]).is_dir() and Path(day["dataset"]).is_dir()
    assert Path(day["junit"]).is_file() and Path(day["validation_json"]).is_file()
    assert set(day["timings"]) >= {"generate_s", "baseline_run_s", "replay_and_watch_s", "validate_s", "compare_s"}
    assert "| 01-2016-01-16-none | 2016-01-16 | tiny (5e-06) | none | 42 | green |" in \
        (root / "out" / "campaign.md").read_text()
    if day["report"]:  # matplotlib installed
        assert Path(day["report"]).read_text().startswith("<!DOCTYPE html>")
    trends = hist.trends(history, campaign="mini")
    assert {t.requirement for t in trends} >= {"REQ-PHOT-001", "REQ-OPS-001", "REQ-VAL-002"}
    assert all(t.passed in ((True,), (None,)) for t in trends), [(t.check_name, t.passed) for t in trends]
    assert any(t.passed == (None,) for t in trends), "a day without faults has checks with nothing to measure"


def test_a_rerun_skips_the_finished_day_and_takes_up_an_unfinished_one(green):
    root, _, history = green
    day_dir = root / "out" / "days" / "01-2016-01-16-none"
    before = {p: p.stat().st_mtime_ns for p in day_dir.rglob("*") if p.is_file()}

    result = campaign(root / "campaign.toml", "--out", root / "out", "--history", history)

    assert result.exit_code == 0, result.output
    summary = json.loads((root / "out" / "campaign.json").read_text())
    assert summary["days_skipped"] == ["01-2016-01-16-none"] and summary["days"][0]["skipped"]
    assert "(done before: skipped)" in result.output
    assert {p: p.stat().st_mtime_ns for p in day_dir.rglob("*") if p.is_file()} == before

    # A day without its done marker (stopped before the end) is taken up again: its finished run is kept.
    (day_dir / cp.DONE).unlink()
    result = campaign(root / "campaign.toml", "--out", root / "out", "--history", history)
    assert result.exit_code == 0, result.output
    assert json.loads((root / "out" / "campaign.json").read_text())["days_skipped"] == []
    assert (day_dir / cp.DONE).is_file()
    assert (day_dir / "run" / "run.json").stat().st_mtime_ns == before[day_dir / "run" / "run.json"]


def test_a_calibration_regression_turns_the_campaign_red_naming_the_requirement(green):
    root, _, history = green
    spec = write(root, MINI.format(name="mini-regression", html="false", extra=REGRESSION), "regression.toml")

    # The same cache: the dataset and its clean run are reused, only the candidate runs.
    result = campaign(spec, "--out", root / "regression", "--cache", root / "out" / "cache", "--history", history)

    assert result.exit_code == 1, result.output + repr(result.exception)
    assert "RED" in result.output and "REQ-PHOT-001" in result.output
    summary = json.loads((root / "regression" / "campaign.json").read_text())
    (day,) = summary["days"]
    assert not summary["green"] and not day["green"]
    assert [f["requirement"] for f in day["checks"]["failures"]] == ["REQ-PHOT-001"]
    assert day["comparison"]["differs"] and "transits" in day["comparison"]["tables_differing"]
    assert day["timings"].get("generate_s", 0) < 5, "the cached dataset must be reused"
    (phot,) = hist.trends(history, "REQ-PHOT-001", campaign="mini-regression")
    assert phot.passed == (False,) and phot.values[-1] > 0.04
    assert CliRunner().invoke(main, ["history", "--db", str(history), "--campaign", "mini-regression"]).exit_code == 0
