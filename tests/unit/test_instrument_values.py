"""Both sides pinned to the published values: the simulator's instrument (gaiasim.sim.instrument) and the
pipeline's own geometry and calibration (pipeline.geometry, pipeline.calibration) each equal the literal
values of docs/instrument.md. They share no code, so they agree because both are right; a constant changed
on one side fails here, and in validation (a wrong pipeline constant is caught by the checks)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from gaiasim.sim.instrument import electronics, focal_plane
from pipeline import geometry
from pipeline.calibration import Calibration

REPO = Path(__file__).resolve().parents[2]
MAS_RAD = math.pi / 180 / 3600 / 1000

#: The published values (docs/instrument.md), in the units of their sources.
PUBLISHED = {
    "basic_angle_deg": 106.5,  # GaiaParams BASICANGLE_DEGREE
    "scan_rate_arcsec_s": 59.9641857803,  # EDR3 documentation 13.4.1
    "pixel_al_mas": 58.933,  # 10 um at 35 m
    "pixel_ac_mas": 176.80,  # 30 um at 35 m
    "tdi_period_ns": 982_803,  # 58.933 mas / 59.964 arcsec/s
    "ccd_tdi_lines": 4500,
    "ccd_columns": 1966,
    "ac_prescan_px": 14,
    "rows": 7,
    "gain_adu_per_e": 0.258,  # Hambly+2018 Table 1
    "read_noise_e": {"SM1": 10.8, "SM2": 10.8, "AF1": 8.6, "AF2": 4.3, "AF9": 4.3, "BP": 5.2, "RP": 4.75},
    "lsf_sigma_px": 1.0,  # de Bruijne+2015 Fig. 5
    "zero_points_mag": (25.6874, 25.3514, 24.7619),  # Evans+2018 (G, BP, RP)
    "wavefront_sensor": (4, "AF1"),  # Lindegren+2021 Table 2: 62 AF CCDs
    "strip_pitch_tdi_lines": 4935,  # [U] 13 strips in GaiaParams FOV_AL
}


def test_the_simulated_instrument_has_the_published_values():
    p, f, e = PUBLISHED, focal_plane, electronics.TRUE
    assert f.BASIC_ANGLE_DEG == p["basic_angle_deg"] and f.SCAN_RATE_ARCSEC_S == p["scan_rate_arcsec_s"]
    assert (f.PIXEL_AL_MAS, f.PIXEL_AC_MAS) == (p["pixel_al_mas"], p["pixel_ac_mas"])
    assert f.TDI_PERIOD_NS == p["tdi_period_ns"]
    assert (f.CCD_TDI_LINES, f.CCD_COLUMNS, f.AC_PRESCAN_PX, f.N_ROWS) == (
        p["ccd_tdi_lines"], p["ccd_columns"], p["ac_prescan_px"], p["rows"])
    assert e.gain_adu_per_e == p["gain_adu_per_e"] and e.lsf_sigma_px == p["lsf_sigma_px"]
    assert {k: e.read_noise_e[k] for k in p["read_noise_e"]} == p["read_noise_e"]
    assert (e.zero_point_g_mag, e.zero_point_bp_mag, e.zero_point_rp_mag) == p["zero_points_mag"]
    assert (f.WFS_ROW, f.WFS_STRIP) == p["wavefront_sensor"] and f.STRIP_PITCH_TDI_LINES == p["strip_pitch_tdi_lines"]


def test_the_pipeline_has_the_published_values():
    p, g, c = PUBLISHED, geometry, Calibration()
    assert g.BASIC_ANGLE_RAD == pytest.approx(math.radians(p["basic_angle_deg"]), rel=1e-15)
    assert g.SCAN_RATE_RAD_S == pytest.approx(p["scan_rate_arcsec_s"] * 1000 * MAS_RAD, rel=1e-15)
    assert g.PIXEL_AL_RAD == pytest.approx(p["pixel_al_mas"] * MAS_RAD, rel=1e-15)
    assert g.PIXEL_AC_RAD == pytest.approx(p["pixel_ac_mas"] * MAS_RAD, rel=1e-15)
    assert g.TDI_PERIOD_NS == p["tdi_period_ns"]
    assert (g.CCD_LINES, g.CCD_COLUMNS, g.AC_PRESCAN_PX, g.N_CCD_ROWS) == (
        p["ccd_tdi_lines"], p["ccd_columns"], p["ac_prescan_px"], p["rows"])
    assert c.gain_adu_per_e == p["gain_adu_per_e"] and c.lsf_sigma_px == p["lsf_sigma_px"]
    assert {k: c.read_noise_e[k] for k in p["read_noise_e"]} == p["read_noise_e"]
    assert (c.zero_point_g_mag, c.zero_point_bp_mag, c.zero_point_rp_mag) == p["zero_points_mag"]
    assert (g.WFS_ROW, g.WFS_STRIP) == p["wavefront_sensor"] and g.STRIP_PITCH_TDI_LINES == p["strip_pitch_tdi_lines"]


def test_generating_loads_no_pipeline_knowledge_of_the_instrument():
    """The simulator uses its own instrument model: importing the generator loads, of the pipeline, only
    the contract (ICD, schemas, io, layout, data, the CCSDS kernels) and the infrastructure the
    harness runs on (pipeline.executor for the executors, pipeline.version for code digests); never its
    geometry, calibration, LSF or processing. The direct imports of gaiasim/sim are checked by nox -s lint
    (pyproject.toml [tool.importlinter])."""
    allowed = {"pipeline", "pipeline.icd", "pipeline.schemas", "pipeline.io", "pipeline.layout",
               "pipeline.data", "pipeline.kernels", "pipeline.kernels.ccsds", "pipeline.executor", "pipeline.version"}
    done = subprocess.run([sys.executable, "-c", "import sys, gaiasim.sim.generate; "
                           "print(' '.join(m for m in sys.modules if m.split('.')[0] == 'pipeline'))"],
                          cwd=REPO, capture_output=True, text=True, check=True)
    assert set(done.stdout.split()) <= allowed, sorted(set(done.stdout.split()) - allowed)


def test_both_sides_carry_the_same_mission_limits():
    """The spacecraft's HK limits (gaiasim/sim/instrument/hk_limits.toml, where the simulator injects its
    excursions, read by its own reader) and the pipeline's (pipeline/data/hk_limits.toml, what its monitor
    checks, read by pipeline.limits) are two copies of the mission database: equal, channel by channel."""
    from dataclasses import asdict

    from gaiasim.sim.instrument import mission_limits
    from pipeline.limits import default_limits_path, load_limit_table

    mine = {name: asdict(limit) for name, limit in mission_limits.load().items()}
    theirs = {c.channel: asdict(c) for c in load_limit_table(default_limits_path()).limits}
    assert mine == theirs and len(mine) == 8


def test_a_disordered_mission_limit_is_refused(tmp_path):
    from gaiasim.sim.instrument import mission_limits

    bad = tmp_path / "limits.toml"
    bad.write_text(mission_limits.MISSION_LIMITS.read_text().replace("red_high = 175.0", "red_high = 165.0", 1))
    with pytest.raises(ValueError, match="not ordered"):
        mission_limits.load(bad)
