"""Any pipeline in the dock (gaiasim.sut): an honest command SUT passes, each deliberately broken one fails
validation and the features with the requirement ids it breaks, and bad SUT inputs are one line each."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from gaiasim import compare, sut
from gaiasim.cli import main
from pipeline import layout

REPO = Path(__file__).resolve().parents[2]
SUTS = REPO / "tests" / "suts"


def command(name: str) -> str:
    return f"cmd:{shlex.quote(sys.executable)} {shlex.quote(str(SUTS / f'{name}.py'))} {{dataset}} {{out}}"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def failed_requirements(run_dir: Path, tmp_path: Path) -> set[str]:
    junit = tmp_path / "validation.xml"
    result = invoke("validate", run_dir, "--no-history", "--junit", junit)
    assert result.exit_code in (0, 1), result.output
    return {c.get("classname") for c in ET.parse(junit).getroot().iter("testcase") if c.find("failure") is not None}


def test_an_honest_command_sut_passes_and_agrees_with_the_builtin_pipeline(demo_run, tmp_path):
    dataset, builtin_run = demo_run
    result = invoke("run", dataset, "--out", tmp_path / "run", "--sut", command("honest"))
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "run" / layout.RUN_JSON).read_text())
    assert info["sut"]["adapter"] == "cmd" and info["sut"]["identity"].startswith("cmd:")
    assert (tmp_path / "run" / sut.LOGS / "stdout.log").read_text().strip().endswith("transits")
    assert failed_requirements(tmp_path / "run", tmp_path) == set()
    assert not compare.compare_runs(builtin_run, tmp_path / "run").differs


@pytest.mark.parametrize(
    ("name", "day", "broken"),
    [("drop_transits", "demo_run", {"REQ-E2E-001"}),
     ("centroid_bias", "demo_run", {"REQ-IPD-001"}),
     ("hides_corruption", "faulty_run", {"REQ-ING-002"})],
)
def test_each_broken_sut_fails_validation_with_the_requirements_it_breaks(name, day, broken, request, tmp_path):
    dataset, _ = request.getfixturevalue(day)
    result = invoke("run", dataset, "--out", tmp_path / "run", "--sut", command(name))
    assert result.exit_code == 0, result.output  # it keeps the contract: only validation can tell
    failed = failed_requirements(tmp_path / "run", tmp_path)
    assert broken <= failed, failed


@pytest.mark.parametrize(
    ("name", "scenarios", "failing", "requirement"),
    [("drop_transits", "exactly_once and tiny-42 or candidate_build",
      {"test_every_transit_of_a_level_day_comes_out_exactly_once[tiny-42]",
       "test_candidate_build_vs_operational_baseline"}, "REQ-E2E-001 transits_complete: measured"),
     ("centroid_bias", "small_days_centroids",
      {"test_a_small_days_centroids_cosmic_rays_matches_and_magnitudes_agree_with_what_was_simulated"},
      "REQ-IPD-001 centroid_pull_bias: measured"),
     ("hides_corruption", "corrupted_downlink_is_reported",
      {"test_every_fault_of_a_corrupted_downlink_is_reported_and_nothing_else_is"}, "REQ-ING-002")],
)
def test_the_features_judge_the_sut_they_are_given(name, scenarios, failing, requirement, tmp_path):
    """The same Gherkin suite fails on each broken SUT, naming the requirement it breaks."""
    junit = tmp_path / "features.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "features", "-q", "-p", "no:cacheprovider", "--sut", command(name),
         "-k", scenarios, f"--junitxml={junit}", f"--basetemp={tmp_path / 'bt'}"],
        cwd=REPO, capture_output=True, text=True, check=False,
        env={**os.environ, "GAIASIM_HISTORY": str(tmp_path / "h")})
    assert done.returncode == 1, done.stdout[-3000:]
    failed = {c.get("name") for c in ET.parse(junit).getroot().iter("testcase") if c.find("failure") is not None}
    assert failed == failing, failed
    assert requirement in done.stdout, done.stdout[-3000:]


def test_a_cached_run_is_reused_only_for_the_same_sut(demo_run, tmp_path):
    from gaiasim import workspace

    dataset, _ = demo_run
    honest, dropping = sut.parse(command("honest")), sut.parse(command("drop_transits"))
    a = workspace.run_for(dataset, tmp_path, honest)
    b = workspace.run_for(dataset, tmp_path, dropping)
    assert a != b
    stamp = (a / layout.RUN_JSON).stat().st_mtime_ns
    assert workspace.run_for(dataset, tmp_path, honest) == a
    assert (a / layout.RUN_JSON).stat().st_mtime_ns == stamp, "a finished run of the same SUT is reused"


@pytest.mark.parametrize(
    ("spec", "extra", "code", "expected"),
    [
        ("nonsense", [], 2, "unknown SUT spec 'nonsense'"),
        ("cmd:no-such-program-here {dataset} {out}", [], 2, "SUT command 'no-such-program-here' not found"),
        ("cmd:sh -c 'sleep 20' {out}", ["--sut-timeout", "0.5"], 1, "ran past its timeout of 0.5 s"),
        ("cmd:sh -c 'echo doomed >&2; exit 3' {out}", [], 1, "exited with status 3"),
        ("cmd:mkdir -p {out}/transits", [], 1, "does not keep the run contract"),
        ("cmd:echo {dataset}", [], 2, "has no {out}"),
        ("cmd:echo {out} {when}", [], 2, "unknown placeholder {when}"),
        ("venv:/no/such/gaiasim.whl", [], 2, "/no/such/gaiasim.whl not found"),
    ],
    ids=["unknown", "missing-command", "timeout", "exit-3", "non-conforming", "no-out", "bad-placeholder",
         "missing-wheel"],
)
def test_bad_sut_inputs_are_one_clear_line_and_leave_nothing_half_written(demo_run, tmp_path, spec, extra, code,
                                                                           expected):
    dataset, _ = demo_run
    out = tmp_path / "run"
    result = invoke("run", dataset, "--out", out, "--sut", spec, *extra)
    assert result.exit_code == code, result.output
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith("gaiasim: error:") and expected in first, result.stderr
    if code == 2:
        assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists(), "the run folder never holds half a run"
    if code == 1:
        assert (tmp_path / "run.failed" / sut.LOGS / "stderr.log").is_file()


def test_a_failed_sut_is_stopped_with_everything_it_started(demo_run, tmp_path):
    dataset, _ = demo_run
    pidfile = tmp_path / "child.pid"
    spec = f"cmd:sh -c 'sleep 30 & echo $! > {pidfile}; wait' {{out}}"
    result = invoke("run", dataset, "--out", tmp_path / "run", "--sut", spec, "--sut-timeout", "1")
    assert result.exit_code == 1
    assert not _runs(int(pidfile.read_text()), ["sleep", "30"])


def _runs(pid: int, argv: list[str]) -> bool:
    """Whether process ``pid`` is alive and still runs ``argv``: not a zombie, and not a later process that was
    given the same pid (on a busy machine pids wrap around within a test run)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z" and cmdline == [a.encode() for a in argv]


def test_pytest_refuses_a_bad_sut_spec_before_any_test(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pytest", "features", "--sut", "cmd:", "-q", "-p", "no:cacheprovider"],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 4 and "--sut: SUT spec 'cmd:': no command" in done.stderr, done.stderr


def test_builtin_identity_names_version_and_configuration():
    from pipeline.config import PipelineConfig
    from pipeline.version import pipeline_version

    assert sut.parse("builtin").identity() == f"builtin:{pipeline_version()}"
    other = sut.parse(None, PipelineConfig(match_radius_mas=300.0)).identity()
    assert other.startswith(f"builtin:{pipeline_version()}:config-") and other != sut.parse("builtin").identity()
    with pytest.raises(Exception, match="apply to the builtin pipeline only"):
        sut.parse(command("honest"), PipelineConfig(match_radius_mas=300.0))


def test_an_edited_command_script_is_another_sut(tmp_path):
    script = tmp_path / "sut.sh"
    script.write_text("#!/bin/sh\n")
    spec = f"cmd:{script} {{dataset}} {{out}}"
    before = sut.parse(spec).identity()
    script.write_text("#!/bin/sh\n# changed\n")
    assert sut.parse(spec).identity() != before


def test_a_campaign_judges_its_sut_against_a_baseline_sut(tmp_path):
    spec = tmp_path / "campaign.toml"
    spec.write_text(f'''name = "broken-candidate"
replay_speed = "none"
baseline = "sut:{command("honest")}"
html_reports = false
[sut]
spec = "{command("drop_transits")}"
timeout_s = 600
[[days]]
date = "2016-01-16"
level = "tiny"
faults = "none"
seed = 42
scale = 5e-6
''')
    result = invoke("campaign", spec, "--out", tmp_path / "out", "--history", tmp_path / "history.duckdb")
    assert result.exit_code == 1, result.output
    day = json.loads((tmp_path / "out" / "campaign.json").read_text())["days"][0]
    assert {f["requirement"] for f in day["checks"]["failures"]} == {"REQ-E2E-001"}
    assert day["comparison"]["differs"] and "transits" in day["comparison"]["tables_differing"]
    assert json.loads((Path(day["run"]) / layout.RUN_JSON).read_text())["sut"]["spec"] == command("drop_transits")
    # The command line's SUT replaces the spec's: the honest one is green.
    result = invoke("campaign", spec, "--out", tmp_path / "out2", "--history", tmp_path / "history.duckdb",
                    "--sut", command("honest"))
    assert result.exit_code == 0, result.output


def test_one_command_line_serves_batch_and_watch(tmp_path):
    command_sut = sut.parse("cmd:run.sh --day {dataset} {out} {inbox}")
    assert command_sut.can_watch()
    tool = tmp_path / "run.sh"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    command_sut = sut.parse(f"cmd:{tool} --day {{dataset}} {{out}} {{inbox}}")
    assert command_sut.argv(dataset=Path("/d"), out=Path("/o")) == [str(tool), "--day", "/d", "/o"]
    assert command_sut.argv(dataset=Path("/d"), out=Path("/o"), inbox=Path("/i"))[-1] == "/i"
    assert not sut.parse(f"cmd:{tool} {{dataset}} {{out}}").can_watch()


def test_an_interrupted_command_stops_its_sut_and_leaves_no_half_run(demo_run, tmp_path):
    """The SUT runs in a session of its own (so a timeout can stop all it started): a Ctrl-C at the
    terminal reaches only gaiasim, which stops the SUT and moves what it wrote aside."""
    import signal
    import time

    dataset, _ = demo_run
    pidfile, out = tmp_path / "sut.pid", tmp_path / "run"
    # The pid is written once the SUT has written something, so the interrupt finds output to move aside.
    spec = f"cmd:sh -c 'mkdir -p {out}/transits; echo $$ > {pidfile}; sleep 60' {{out}}"
    proc = subprocess.Popen([sys.executable, "-m", "gaiasim", "run", str(dataset), "--out", str(out), "--sut", spec],
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (pidfile.is_file() and pidfile.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the command's process group
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in stderr, stderr
    sut_pid = int(pidfile.read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{sut_pid}").exists(), "the SUT outlived the interrupted command"
    assert not out.exists() and (tmp_path / "run.failed" / "transits").is_dir()
    assert (tmp_path / "run.failed" / sut.LOGS / "stderr.log").is_file()
