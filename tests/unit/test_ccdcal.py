"""The dataset's CCD calibration (calibration/ccd.parquet): the simulator writes what a previous cycle
measured, close to the truth and not equal to it; the pipeline reads it, refuses a damaged one with one
clear line, and without it works with the nominal instrument."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from gaiasim.cli import main
from gaiasim.sim.instrument import realism
from pipeline import ccdcal, schemas
from pipeline.io import InputError
from pipeline.layout import CCD_CALIBRATION

T0 = 10**17


def _product(seed: int = 4, effects: realism.Effects = realism.REALISTIC) -> tuple[pa.Table, realism.InstrumentState]:
    state = realism.draw(seed, effects, T0)
    return state.calibration_product(seed), state


def _write(tmp_path, table: pa.Table):
    (tmp_path / "calibration").mkdir(exist_ok=True)
    pq.write_table(table, tmp_path / CCD_CALIBRATION)
    return tmp_path


def test_without_a_product_the_calibration_is_nominal(tmp_path):
    cal = ccdcal.load(tmp_path)
    assert cal is ccdcal.NOMINAL and cal.sha256 == ""
    index = cal.window_index(np.array([1, 2]), np.array([3, 7]))
    assert np.all(cal.at("gain_factor", index) == 1.0) and np.all(cal.al_offset_px(index, np.array([20, 1900])) == 0)


def test_the_product_is_the_truth_measured_with_the_documented_errors(tmp_path):
    table, state = _product()
    assert table.schema.equals(schemas.CCD_CALIBRATION) and table.num_rows == 138
    cal = ccdcal.load(_write(tmp_path, table))
    fx = realism.REALISTIC
    true_gain = state.gain_adu_per_e / state.nominal.gain_adu_per_e
    error = (cal.tables["gain_factor"] - true_gain)[:, :, 2:] / true_gain[:, :, 2:]
    assert 0.5 * fx.cal_gain_error < np.std(error) < 2 * fx.cal_gain_error
    # The spread it corrects is much larger than its errors.
    assert np.std(true_gain) > 3 * fx.cal_gain_error
    geometry = cal.tables["al_offset_mas"][:, :, 2:] - state.geometry_al_mas[:, :, 2:]
    assert 0.5 * fx.cal_geometry_error_mas < np.std(geometry) < 2 * fx.cal_geometry_error_mas
    # The pipeline's displacement of a window at the CCD's AC centre is its offset, in AL pixels.
    index = cal.window_index(np.array([1]), np.array([2]))
    centre = ccdcal.geometry.AC_PRESCAN_PX + 0.5 * ccdcal.geometry.CCD_COLUMNS
    assert cal.al_offset_px(index, np.array([centre]))[0, 1] == pytest.approx(
        cal.tables["al_offset_mas"][0, 1, 2] / 58.933)


def test_the_ideal_instrument_s_product_is_the_identity_within_its_errors():
    table, _ = _product(effects=realism.IDEAL)
    assert abs(pc.mean(table["gain_factor"]).as_py() - 1) < 1e-3


@pytest.mark.parametrize("damage, message", [
    (lambda t: t.drop(["throughput"]), "columns throughput missing"),
    (lambda t: t.slice(1), "137 CCDs calibrated, 138 expected"),
    (lambda t: pa.concat_tables([t, t.slice(0, 1)]), "is given twice"),
    (lambda t: t.set_column(3, "gain_factor", pa.array([0.0] * t.num_rows)), "gain_factor = 0.0 is not a positive"),
    (lambda t: t.set_column(5, "read_noise_factor", pa.array([float("nan")] * t.num_rows)),
     "read_noise_factor = nan is not a positive finite number"),
    (lambda t: t.set_column(2, "strip", pa.array(["AF10"] * t.num_rows)), "no CCD fov=1 ccd_row=1 strip='AF10'"),
    (lambda t: t.set_column(0, "fov", pa.array(["one"] * t.num_rows)), "a column has the wrong type"),
])
def test_a_damaged_product_is_refused_with_one_line(tmp_path, damage, message):
    table, _ = _product()
    _write(tmp_path, damage(table))
    with pytest.raises(InputError, match=message):
        ccdcal.load(tmp_path)


def test_a_product_that_is_not_parquet_is_refused(tmp_path):
    (tmp_path / "calibration").mkdir()
    (tmp_path / CCD_CALIBRATION).write_bytes(b"not parquet")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        ccdcal.load(tmp_path)


def test_gaiasim_run_refuses_a_damaged_product_before_writing_anything(demo_run, tmp_path):
    dataset, _ = demo_run
    copy = tmp_path / "dataset"
    shutil.copytree(dataset, copy)
    path = copy / CCD_CALIBRATION
    pq.write_table(pq.read_table(path).slice(3), path)
    result = CliRunner().invoke(main, ["run", str(copy), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "135 CCDs calibrated, 138 expected" in result.output
    assert not (tmp_path / "run" / "run.json").exists()


def test_a_pipeline_that_ignores_the_product_is_judged_red(demo_run, tmp_path, monkeypatch):
    """The product is no decoration: with the nominal instrument the CCD geometry moves observation times by
    more than REQ-IPD-006 allows."""
    dataset, run_dir = demo_run
    assert "calibration/ccd.parquet" in __import__("json").loads((run_dir / "run.json").read_text())["inputs"]
    monkeypatch.setattr(ccdcal, "load", lambda _dataset: ccdcal.NOMINAL)
    from gaiasim.sut import parse

    parse("builtin").run(dataset, tmp_path / "run")
    junit = tmp_path / "validation.xml"
    CliRunner().invoke(main, ["validate", str(tmp_path / "run"), "--no-history", "--junit", str(junit)])
    failed = {c.get("classname") for c in ET.parse(junit).getroot().iter("testcase") if c.find("failure") is not None}
    assert "REQ-IPD-006" in failed
