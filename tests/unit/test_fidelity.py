"""gaiasim fidelity: the published curves are the published values, a run's precision is measured
against them, and a noisier run measures noisier."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from gaiasim.cli import main
from gaiasim.validate import db, fidelity
from pipeline import schemas
from tests.runs import rewrite_table


def test_the_bp_and_rp_curves_are_pygaia_s():
    # PyGaia's models at G = 15 (z = 1) and V - I = 0: 1e-3 sqrt(10^a + 10^b + 10^c) with the constant terms.
    bp0 = 1e-3 * math.sqrt(10**1.043270 + 10**1.465592 + 10**-1.866968)
    rp0 = 1e-3 * math.sqrt(10**1.615927 + 10**1.783906 + 10**-3.042268)
    x0 = fidelity.v_minus_i(0.0)
    assert abs(x0 - 0.03845) < 1e-9  # V - I at BP - RP = 0 from Evans+2018's two polynomials
    assert fidelity.pygaia_sigma_bp_rp_mag("BP", 15.0, 0.0) == pytest.approx(bp0, rel=0.05)
    assert fidelity.pygaia_sigma_bp_rp_mag("RP", 15.0, 0.0) == pytest.approx(rp0, rel=0.05)
    assert fidelity.pygaia_sigma_bp_rp_mag("BP", 9.0, 1.0) == fidelity.pygaia_sigma_bp_rp_mag("BP", 11.0, 1.0)


def test_the_reference_curves_are_the_published_ones():
    assert fidelity.lindegren2021_sigma_al_mas(12.0) == 0.14 and fidelity.lindegren2021_sigma_al_mas(19.9) == 4.56
    assert fidelity.lindegren2021_sigma_al_mas(18.05) == pytest.approx((1.04 + 1.38) / 2)
    # PyGaia at G = 15 (z = 1) and at its floor G = 12 (any brighter star has the floor's error).
    assert fidelity.pygaia_sigma_g_mag(15.0) == pytest.approx(1.2e-3 * math.sqrt(0.04895 + 1.8633 + 0.0001985))
    assert fidelity.pygaia_sigma_g_mag(10.0) == fidelity.pygaia_sigma_g_mag(12.0)
    # With PyGaia's calibration floor, 3 mmag per CCD over the 62 / 7 AF CCDs of a transit, in quadrature.
    floor = 3.0e-3 / math.sqrt(62 / 7)
    with_floor = math.hypot(fidelity.pygaia_sigma_g_mag(12.0), floor)
    assert fidelity.pygaia_sigma_g_floor_mag(12.0) == pytest.approx(with_floor)


def _rows(run_dir, dataset):
    con = db.connect(run_dir, dataset)
    db.cache_sample_pairs(con)
    return {(r.quantity, r.g_lo): r for r in fidelity.measure(con)}


def test_a_run_is_measured_against_them_and_a_noisier_run_measures_noisier(demo_run, tmp_path):
    dataset, run_dir = demo_run
    before = _rows(run_dir, dataset)
    al = [r for r in before.values() if r.quantity == "AL per AF CCD"]
    assert len(al) >= 5 and all(0.2 < r.ratio < 2.0 for r in al), [(r.g_lo, r.ratio) for r in al]
    pulls = [r for r in before.values() if r.quantity == "AL pull width" and r.n >= 500]
    assert pulls and all(0.85 < r.measured < 1.15 for r in pulls)
    assert any(r.quantity == "G per transit" for r in before.values())

    noisy = tmp_path / "noisy"
    shutil.copytree(run_dir, noisy, ignore=shutil.ignore_patterns(".lock"))
    i = schemas.CCD.get_field_index("al_px")
    rng = np.random.default_rng(0)

    def add_noise(t: pa.Table) -> pa.Table:  # as much noise again as the formal error: scatter x ~sqrt(2)
        extra = rng.normal(0.0, 1.0, t.num_rows) * t["al_px_err"].to_numpy(zero_copy_only=False)
        return t.set_column(i, schemas.CCD.field(i), pa.array(t["al_px"].to_numpy() + extra, pa.float32()))

    rewrite_table(noisy, "ccd", add_noise)
    after = _rows(noisy, dataset)
    for key, r in before.items():
        if r.quantity in ("AL per AF CCD", "AL pull width") and r.n >= 500:  # what the noise on al_px moves
            assert 1.2 < after[key].measured / r.measured < 2.0, (key, after[key].measured / r.measured)


def test_the_command_prints_and_writes_the_rows(demo_run, tmp_path):
    _, run_dir = demo_run
    out = tmp_path / "fidelity.json"
    result = CliRunner().invoke(main, ["fidelity", str(run_dir), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "AL per AF CCD" in result.output and "G per transit" in result.output
    rows = json.loads(out.read_text())["rows"]
    assert {r["quantity"] for r in rows} == {"AL per AF CCD", "AL per transit", "G per transit", "BP per transit",
                                             "RP per transit", "AL pull width"}


def test_json_on_stdout_is_the_whole_document_and_csv_the_precision_rows(demo_run, tmp_path):
    _, run_dir = demo_run
    out = tmp_path / "fidelity.json"
    result = CliRunner().invoke(main, ["fidelity", str(run_dir), "--format", "json", "--json", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert {"rows", "crossmatch", "sky", "alerts"} <= set(doc) and doc == json.loads(out.read_text())
    csv_out = CliRunner().invoke(main, ["fidelity", str(run_dir), "--format", "csv"]).stdout.splitlines()
    assert csv_out[0].startswith("quantity") and len(csv_out) == 1 + len(doc["rows"])


def test_a_run_without_its_truth_is_one_line(demo_run, tmp_path):
    _, run_dir = demo_run
    empty = tmp_path / "dataset"
    shutil.copytree(demo_run[0], empty, ignore=shutil.ignore_patterns("truth", "dataset.json"))
    result = CliRunner().invoke(main, ["fidelity", str(run_dir), "--dataset", str(empty)])
    assert result.exit_code == 2 and "no truth found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_daily_report_has_the_fidelity_table(demo_run, tmp_path):
    pytest.importorskip("matplotlib")
    from gaiasim.validate import html_report

    _, run_dir = demo_run
    text = html_report.build(run_dir, history=tmp_path / "h.duckdb")
    section = text.split('id="fidelity"', 1)[1].split("</section>", 1)[0]
    assert "AL per AF CCD" in section and "G per transit" in section and "AL pull width" in section


def test_the_command_draws_the_curves(demo_run, tmp_path):
    pytest.importorskip("matplotlib")
    _, run_dir = demo_run
    png = tmp_path / "fidelity.png"
    result = CliRunner().invoke(main, ["fidelity", str(run_dir), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
