"""The imperfect instrument (gaiasim/sim/instrument/realism.py): each effect is switchable, recorded in
the truth and of the size docs/instrument.md section 5 says; the ideal instrument renders the nominal one
exactly; and the simulated day is as precise as Gaia, no more (the issue's fidelity targets)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from gaiasim import workspace
from gaiasim.sim import signal
from gaiasim.sim.instrument import focal_plane as fp
from gaiasim.sim.instrument import realism
from gaiasim.sim.instrument.electronics import TRUE
from gaiasim.spec import SpecError, make_spec
from gaiasim.validate import db, fidelity
from pipeline import icd

T0 = 10**17


def _transits(m: int, seed: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    fov = rng.integers(1, 3, m)
    row = rng.integers(1, 8, m)
    ac = rng.integers(20, 1970, m)
    t = T0 + rng.integers(0, 86_400 * 10**9, m)
    return {"transit_id": icd.encode_transit_id(t, fov, row, ac), "fov": fov, "row": row, "ac": ac,
            "t_offset_px": rng.uniform(-0.5, 0.5, m), "g_mag": rng.uniform(13.5, 20.5, m),
            "bp_rp": rng.uniform(0.0, 3.0, m)}


def _windows(tr, state):
    return signal.make_windows(9, tr["transit_id"], tr["t_offset_px"], tr["fov"], tr["g_mag"], tr["bp_rp"], TRUE,
                               state=state)


def test_the_ideal_instrument_renders_the_nominal_one_exactly():
    tr = _transits(400)
    nominal = _windows(tr, None)
    ideal = _windows(tr, realism.draw(9, realism.IDEAL, T0))
    for a, b in zip(nominal, ideal, strict=True):
        assert np.array_equal(a.payload, b.payload)
        assert a.truth_ccd.equals(b.truth_ccd)
    state = realism.draw(9, realism.IDEAL, T0)
    assert np.all(state.gain_adu_per_e == TRUE.gain_adu_per_e) and np.all(state.lsf_sigma_px == TRUE.lsf_sigma_px)
    assert not state.cti_traps.any() and not state.geometry_al_mas.any()


def test_the_realistic_instrument_changes_the_packets_and_records_why():
    tr = _transits(400)
    nominal = _windows(tr, None)
    real = _windows(tr, realism.draw(9, realism.REALISTIC, T0))
    assert any(not np.array_equal(a.payload, b.payload) for a, b in zip(nominal, real, strict=True))
    truth = real[-1].truth_ccd.to_pydict()
    assert min(truth["cti_loss_e"]) >= 0 and max(truth["cti_loss_e"]) > 0
    assert len(set(truth["bg_e"])) > 10  # straylight: the background varies from window to window


def test_switching_one_effect_never_moves_another():
    cti_only, both = realism.draw(3, realism.only("cti"), T0), realism.draw(3, realism.REALISTIC, T0)
    assert np.array_equal(cti_only.cti_traps, both.cti_traps)
    assert np.all(cti_only.gain_adu_per_e == TRUE.gain_adu_per_e)
    geometry_only = realism.draw(3, realism.only("geometry"), T0)
    assert np.array_equal(geometry_only.geometry_al_mas, both.geometry_al_mas)
    with pytest.raises(ValueError, match="unknown effect 'focus'"):
        realism.only("focus")


def test_detector_values_are_one_per_ccd_and_average_to_the_nominal():
    state = realism.draw(11, realism.REALISTIC, T0)
    fx = realism.REALISTIC
    # Both telescopes see the same AF CCD.
    assert np.array_equal(state.gain_adu_per_e[0, :, 2:], state.gain_adu_per_e[1, :, 2:])
    assert np.mean(state.gain_adu_per_e[0]) == pytest.approx(TRUE.gain_adu_per_e, rel=1e-12)
    assert 0.3 * fx.gain_spread < np.std(state.gain_adu_per_e[0]) / TRUE.gain_adu_per_e < 2 * fx.gain_spread
    assert np.std(state.geometry_al_mas[0]) == pytest.approx(fx.geometry_offset_mas, rel=0.5)
    table = state.table()
    assert table.num_rows == 2 * 7 * 10 - 2  # SM1 only in FoV 1, SM2 only in FoV 2, no AF1 in row 4 (the WFS)
    assert set(table["strip"].to_pylist()) == set(realism.CCD_STRIPS)


def test_straylight_follows_the_rows_and_the_spin():
    state = realism.draw(1, realism.REALISTIC, T0)
    t = T0 + np.arange(0, realism.SPIN_PERIOD_NS, realism.SPIN_PERIOD_NS // 1000)
    levels = realism.REALISTIC.straylight_e_px_s
    for row in (1, 7):
        rate = state.background_e_px_s(np.ones(len(t), int), np.full(len(t), row), t)
        assert rate.mean() == pytest.approx(0.2 + levels[row - 1], rel=0.01)
        assert rate.max() - rate.min() == pytest.approx(2 * 0.8 * levels[row - 1], rel=0.01)
    assert np.all(realism.draw(1, realism.IDEAL, T0).background_e_px_s(np.ones(3, int), np.ones(3, int), t[:3]) == 0.5)


def test_the_basic_angle_varies_by_about_1_mas_with_the_spin():
    state = realism.draw(1, realism.REALISTIC, T0)
    t = T0 + np.linspace(0, realism.SPIN_PERIOD_NS, 2001).astype(np.int64)
    ba = state.basic_angle_mas(t)
    assert 0.8 < ba.max() - ba.min() < 1.2
    assert abs(ba[0] - ba[-1]) < 1e-6  # periodic with the spin
    assert realism.SPIN_PERIOD_NS == round(1_296_000 / fp.SCAN_RATE_ARCSEC_S * 1e9)


def test_cti_shrinks_with_the_signal_and_the_background():
    state = realism.draw(1, realism.only("cti"), T0)
    m = 4
    args = (np.ones(m, int), np.full(m, 6), np.full(m, 1000), np.full(m, T0), np.ones(m),
            np.array([1e3, 1e4, 1e3, 1e4]), np.full(m, 4.4))
    w = state.windows(*args)
    assert w["cti_loss"][0, 5] > 5 * w["cti_loss"][1, 5]
    bright_sky = replace(realism.only("cti"), straylight=True)
    w2 = realism.draw(1, bright_sky, T0).windows(*args)
    assert np.all(w2["cti_loss"] < w["cti_loss"])
    assert np.all(w["cti_px"] == realism.REALISTIC.cti_shift_px_per_loss * w["cti_loss"])


def test_a_spec_names_its_instrument():
    assert make_spec().instrument == "realistic" and make_spec(instrument="ideal").instrument == "ideal"
    with pytest.raises(SpecError, match="instrument = 'perfect': must be one of realistic, ideal, only:<effect>"):
        make_spec(instrument="perfect")
    assert realism.effects_named("only:cti") == realism.only("cti")
    without = realism.effects_named("without:cti, straylight")
    assert not without.cti and not without.straylight and without.lsf
    for bad in ("only:cti,lsf", "without:focus", "only:", "some:cti"):
        with pytest.raises(SpecError, match="effects: straylight, attitude"):
            make_spec(instrument=bad)
    assert make_spec(instrument="ideal").digest() != make_spec().digest()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    from gaiasim.sut import parse

    root = tmp_path_factory.mktemp("ws")
    dataset = workspace.dataset_for("small", 42, root=root)
    run_dir = root / "run"
    parse("builtin").run(dataset, run_dir)
    return dataset, run_dir


def test_the_truth_records_the_instrument_and_each_ccd_crossing(small):
    dataset, _ = small
    instrument = pq.read_table(dataset / "truth" / "instrument")
    assert instrument.num_rows == 138
    ccd = pq.read_table(dataset / "truth" / "ccd", columns=["transit_id", "strip", "al_px", "obmt_ns"]).slice(0, 20)
    t_ref = icd.decode_transit_id(np.array(ccd["transit_id"].to_pylist()))[0]
    strips = ccd["strip"].to_pylist()
    offsets = np.array([fp.STRIP_OFFSET_NS[s] for s in strips])
    # Within a pixel of the window's reference time plus the image's place in it.
    assert np.all(np.abs(np.array(ccd["obmt_ns"].to_pylist()) - t_ref - offsets) < 8 * fp.TDI_PERIOD_NS)


def test_the_simulated_day_is_as_precise_as_gaia_no_more(small):
    """The issue's targets: per-CCD AL precision within a factor 1.25 of Lindegren+2021 at every integer G
    from 12 to 20, and per-transit G scatter within 1.25 of PyGaia's per-transit model (with PyGaia's own
    calibration floor: gaiasim.validate.fidelity) from G 12 to 20.5, in every bin the small day holds 100
    values of. A bin's robust scatter of n values has a relative standard
    error of 1.166 / sqrt(n) (5 % at n = 500): a bin fails when it is off by more than twice that beyond the
    factor (`nox -s bench` measures a larger day)."""
    dataset, run_dir = small
    con = db.connect(run_dir, dataset)
    db.cache_sample_pairs(con)
    rows = [r for r in fidelity.measure(con)
            if r.quantity in ("AL per AF CCD", "G per transit") and r.ratio is not None and r.n >= 100]
    al = [r for r in rows if r.quantity == "AL per AF CCD"]
    g = [r for r in rows if r.quantity == "G per transit"]
    assert len(al) >= 8 and len(g) >= 8

    def off(r) -> bool:
        slack = 2 * 1.166 / math.sqrt(r.n)
        return r.ratio * (1 + slack) < 1 / 1.25 or r.ratio * (1 - slack) > 1.25

    bad = [(r.quantity, r.g_lo, r.n, round(r.ratio, 2)) for r in rows if off(r)]
    assert not bad, bad
    # Most bins are within the factor without any slack.
    assert sum(1 / 1.25 <= r.ratio <= 1.25 for r in rows) >= 0.8 * len(rows)


def test_a_drift_plan_changes_the_instrument_after_its_calibration():
    from gaiasim.sim.instrument import drift

    plan = drift.DriftPlan(focus_drift_per_day=0.03, contamination_mag_per_day=0.02, gain_jumps=2, gain_jump=0.05)
    still, drifting = realism.draw(6, realism.REALISTIC, T0), realism.draw(6, realism.REALISTIC, T0, plan)
    jumped = np.argwhere(drifting.gain_jump_factor[0] != 1.0)
    assert len(jumped) == 2 and all(s >= 2 for _, s in jumped)  # AF CCDs only
    assert np.all(drifting.gain_jump_factor[0][tuple(jumped.T)] == 1.05)
    r, s = jumped[0]
    when = drifting.gain_jump_ns[0, r, s]
    assert T0 <= when < T0 + 43_200 * 10**9 and drifting.gain_jump_ns[1, r, s] == when  # both FoVs: one CCD
    args = dict(fov=np.array([1, 1]), row=np.array([r + 1, r + 1]), ac_px=np.array([1000, 1000]),
                t_ns=np.array([when - 1, T0 + 86_400 * 10**9]), bp_rp=np.ones(2), flux_e=np.full(2, 1e4),
                t_int_s=np.full(2, 4.4))
    before, after = still.windows(**args), drifting.windows(**args)
    col = s - 1  # window column of strip s (SM is column 0)
    assert after["gain"][0, col] == before["gain"][0, col] and after["gain"][1, col] == 1.05 * before["gain"][1, col]
    # A day later: the LSF 3 % wider, the throughput 0.02 mag lower.
    assert after["sigma_px"][1, 3] / before["sigma_px"][1, 3] == pytest.approx(1.03)
    assert after["flux_e"][1, 3] / before["flux_e"][1, 3] == pytest.approx(10 ** (-0.4 * 0.02))
    table = drifting.table()
    assert sorted(table.filter(pc.field("gain_jump_factor") != 1.0)["strip"].to_pylist()) == \
        sorted(2 * [realism.CCD_STRIPS[s] for _, s in jumped])
    assert set(table["focus_drift_per_day"].to_pylist()) == {0.03}


@pytest.mark.parametrize("key, value, message", [
    ("focus_drift", -0.1, "focus_drift = -0.1: must be a fraction in"),
    ("gain_jumps", 64, "gain_jumps = 64: must be an integer in"),
    ("gain_jump", 0, "gain_jump = 0: must be a relative change"),
    ("contamination_mag", "lots", "contamination_mag = 'lots': must be a number"),
])
def test_a_bad_drift_plan_is_refused_naming_the_key(tmp_path, key, value, message):
    from gaiasim.sim import faults
    from gaiasim.sim.instrument import drift

    plan = tmp_path / "plan.toml"
    plan.write_text(f"{key} = {value!r}\n".replace("'", '"'))
    with pytest.raises(SpecError, match=message):
        drift.load_plan(plan)
    faults.load_plan(plan) if key == "focus_drift" and value >= 0 else None  # the fault plan accepts the key



def test_the_attitude_packets_carry_a_noisy_estimate_and_the_truth_the_real_attitude(small):
    dataset, _ = small
    truth = pq.read_table(dataset / "truth" / "attitude")
    error = truth["onboard_error_mas"].to_numpy()
    fx = realism.REALISTIC
    # Two components per axis: the error angle's RMS over three axes is sqrt(3 (noise^2 + wander^2)).
    expected = math.sqrt(3 * (fx.onboard_noise_mas**2 + fx.onboard_wander_mas**2))
    assert 0.6 * expected < math.sqrt(np.mean(error**2)) < 1.4 * expected
    assert error.max() < 1000.0  # far below the pipeline's 1-arcsec glitch threshold: no false glitch
    ideal = realism.onboard_attitude(1, realism.IDEAL, np.arange(3), np.tile([0.0, 0.0, 0.0, 1.0], (3, 1)))
    assert np.array_equal(ideal, np.tile([0.0, 0.0, 0.0, 1.0], (3, 1)))


def test_micro_clanks_and_hits_move_the_images_between_the_sky_mapper_and_the_af_ccds():
    state = realism.draw(2, realism.only("attitude"), T0)
    events = state.attitude_events()
    kinds = events["kind"].to_pylist()
    assert 500 < kinds.count("clank") < 1300  # 0.01 a second over a day and a minute
    # The offset is the sum of the steps so far, and a hit's damped kick.
    t = np.array([T0 + 3600 * 10**9])
    steps = state.clank_mas[state.clank_ns <= t[0]].sum()
    hits = sum(k * 30.0 * -math.expm1(-max(t[0] - w, 0) * 1e-9 / 30.0)
               for w, k in zip(state.hit_ns, state.hit_rate_mas_s, strict=True))
    assert state.attitude_al_mas(t)[0] == pytest.approx(steps + hits)
    # A window sees only the change since its transit's SM detection.
    k = np.searchsorted(state.clank_ns, T0 + 7200 * 10**9)
    when = int(state.clank_ns[k])
    w = state.windows(np.array([1]), np.array([3]), np.array([1000]), np.array([when - 20 * 10**9]), np.ones(1),
                      np.full(1, 1e4), np.full(1, 4.4))
    assert w["shift_px"][0, 0] == 0.0
    before = (when - 20 * 10**9) + np.array([fp.STRIP_OFFSET_NS[s] for s in ("SM1", *fp.AF_STRIPS)]) < when
    assert np.any(~before) and np.any(before)
    assert abs(w["shift_px"][0, np.flatnonzero(~before)[0]]) > 0.5 * abs(state.clank_mas[k]) / fp.PIXEL_AL_MAS


def test_the_calibration_absorbs_what_a_core_only_fit_misses_of_the_wings():
    assert realism.core_fit_recovery(realism.IDEAL) == 1.0
    recovery = realism.core_fit_recovery(realism.REALISTIC)
    w = realism.REALISTIC.lsf_wing_fraction
    assert 1 - w < recovery < 1 - 0.5 * w  # the wings' flux is lost, but for the part under the core
    table, state = realism.draw(4, realism.REALISTIC, T0).calibration_product(4), realism.draw(4, realism.REALISTIC, T0)
    ratio = np.array(table["throughput"].to_pylist()) / state.table()["throughput"].to_numpy()
    assert np.median(ratio) == pytest.approx(recovery, abs=0.001)


def test_a_decontamination_recovers_the_throughput_lost_so_far():
    from gaiasim.sim.instrument import drift

    plan = drift.DriftPlan(contamination_mag_per_day=0.04, decontamination_h=12.0)
    state = realism.draw(6, realism.only("contamination"), T0, plan)
    hour = 3_600 * 10**9
    t = np.array([T0 + 11 * hour, T0 + 13 * hour])
    w = state.windows(np.ones(2, int), np.full(2, 2), np.full(2, 1000), t, np.ones(2), np.full(2, 1e4), np.full(2, 4.4))
    rate = realism.REALISTIC.contamination_mag_day + 0.04
    assert w["flux_e"][0, 3] / w["flux_e"][1, 3] == pytest.approx(10 ** (-0.4 * rate * (11 - 1) / 24))
    table = state.table()
    assert set(table["decontamination_obmt_ns"].to_pylist()) == {T0 + 12 * hour}


def test_a_hit_adds_its_settled_offset_to_the_very_values_of_the_exponential():
    """The chunks before a hit, straddling it, in its recovery and long after: the same values, bit for bit,
    as the damped kick evaluated for every window (the shortcuts of attitude_al_mas change no value)."""
    state = realism.draw(2, realism.only("attitude"), T0)
    assert -np.expm1(-realism.HIT_SETTLED_TAU) == 1.0  # the platform's expm1 saturates where the shortcut assumes
    tau = state.effects.hit_recovery_s
    hit = int(state.hit_ns[0])
    rng = np.random.default_rng(1)
    for start_s in (-500, -100, -20, 0, 10, 600, 1199, 1201, 1300, 5000):
        t = hit + start_s * 10**9 + rng.integers(0, 200 * 10**9, (400, 10))
        expected = np.zeros(t.shape)
        steps = np.concatenate([[0.0], np.cumsum(state.clank_mas)])
        expected += steps[np.searchsorted(state.clank_ns, t, side="right")]
        for when, kick in zip(state.hit_ns, state.hit_rate_mas_s, strict=True):
            expected += kick * tau * -np.expm1(-(np.maximum(t - when, 0) * 1e-9) / tau)
        np.testing.assert_array_equal(state.attitude_al_mas(t), expected)
