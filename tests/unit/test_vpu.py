"""The on-board VPU model (gaiasim.sim.vpu): on-board magnitudes, spurious detections around bright stars,
window conflicts; their switches, their slice independence, and the pipeline's bright-star environment."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from gaiasim.sim import signal, vpu
from gaiasim.sim.instrument import focal_plane as fp
from gaiasim.sim.instrument import realism
from gaiasim.sim.instrument.electronics import TRUE as TRUE_CAL
from pipeline import environment, geometry, icd, ipd, transits
from pipeline.calibration import DEFAULT as CAL
from tests.blends import fit_blended_windows

SEED = 17


def test_the_ideal_instrument_has_no_vpu_effect_and_the_realistic_one_all():
    assert not vpu.active(realism.IDEAL)
    switches = ("onboard_mag", "spurious", "window_conflicts", "blends", "truncated_windows")
    assert all(getattr(realism.REALISTIC, s) for s in switches)
    assert set(switches) <= set(realism.SWITCHES)
    assert all(vpu.active(realism.only(s)) for s in switches)
    assert realism.effects_named("only:spurious").spurious and not realism.effects_named("only:spurious").onboard_mag


def test_onboard_magnitudes_scatter_by_sigma_and_are_the_transit_s_own():
    tid = np.arange(10**5, dtype=np.int64) * 7919
    for g, sigma in ((14.0, 0.05), (18.35, 0.175), (21.0, 0.3)):
        d = vpu.onboard_mag(SEED, tid, np.full(len(tid), g)) - g
        assert abs(d.mean()) < 5 * sigma / np.sqrt(len(tid)) and d.std() == pytest.approx(sigma, rel=0.02), g
    g = np.full(len(tid), 13.0)
    first = vpu.onboard_mag(SEED, tid, g)
    np.testing.assert_array_equal(first[::-1], vpu.onboard_mag(SEED, tid[::-1], g))  # order does not matter
    assert not np.array_equal(first, vpu.onboard_mag(SEED + 1, tid, g))
    # At the class boundary half the stars go to each class.
    assert np.mean(signal.window_class_of(first) == 1) == pytest.approx(0.5, abs=0.01)


def test_spurious_rate_follows_the_anchor_and_stops_at_g_16():
    np.testing.assert_allclose(vpu.spurious_rate(np.array([13.0, 6.0, 15.9, 16.0, 19.0])),
                               [4.0, vpu.SPURIOUS_MAX, 4.0 * 10 ** (-0.3 * 2.9), 0.0, 0.0])


def test_ghosts_are_the_source_s_pattern_on_its_axes_or_in_its_halo():
    sid = (np.arange(4000, dtype=np.int64) + 3) << 35
    g = np.full(len(sid), 11.0)
    gh = vpu.ghost_offsets(SEED, sid, g)
    counts = np.bincount(gh["parent"], minlength=len(sid))
    rate = vpu.spurious_rate(g[:1])[0]
    assert counts.mean() == pytest.approx(rate, rel=0.03) and counts.var() == pytest.approx(rate, rel=0.1)
    spike = gh["kind"] == vpu.SPIKE
    assert np.mean(spike) == pytest.approx(vpu.SPIKE_FRACTION, abs=0.01)
    assert np.all(np.minimum(np.abs(gh["d_al_px"][spike]), np.abs(gh["d_ac_px"][spike])) <= 0.5)
    assert np.all(gh["d_al_px"] != 0)  # never at its star's crossing time
    r = np.hypot(gh["d_al_px"], gh["d_ac_px"])
    assert r.min() >= 4 - 0.8 and r.max() <= 80 + 0.8
    assert gh["d_g_mag"].min() >= 5 and gh["d_g_mag"].max() <= 9
    # The same source a little fainter at another transit: fewer or as many ghosts, the first ones the same.
    again = vpu.ghost_offsets(SEED, sid[:50], np.full(50, 11.3))
    for i in range(50):
        a, b = gh["parent"] == i, again["parent"] == i
        k = min(a.sum(), b.sum())
        assert b.sum() <= a.sum()
        np.testing.assert_array_equal(gh["d_al_px"][a][:k], again["d_al_px"][b][:k])
        np.testing.assert_array_equal(gh["d_ac_px"][a][:k], again["d_ac_px"][b][:k])


def _detections(n: int, t0: int, span_ns: int, seed: int = 3) -> dict[str, np.ndarray]:
    """Synthetic detections in [t0, t0 + span): crowded on two CCD rows, a tenth brighter than G 13."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(t0, t0 + span_ns, n))
    fov = rng.integers(1, 3, n).astype(np.int8)
    row = rng.integers(3, 5, n).astype(np.int8)
    zeta = fp.ZETA_MIN_RAD + (row - 1 + rng.uniform(0.45, 0.55, n)) * fp.ROW_WIDTH_RAD
    ac_px = fp.ac_px_of_zeta(zeta, row).astype(np.int16)
    g = np.where(rng.random(n) < 0.1, rng.uniform(6, 13, n), rng.uniform(13, 20.5, n))
    tid = icd.encode_transit_id(t, fov, row, ac_px)
    _, first = np.unique(tid, return_index=True)
    keep = np.sort(first)
    tr = {"obmt_ns": t, "fov": fov, "zeta_rad": zeta, "source_id": (np.arange(n, dtype=np.int64) + 5) << 35,
          "g_mag": g, "bp_rp": np.ones(n), "transit_id": tid, "ccd_row": row, "ac_px": ac_px}
    tr = {k: v[keep] for k, v in tr.items()}
    order = np.lexsort((tr["transit_id"], tr["obmt_ns"]))
    return {k: v[order] for k, v in tr.items()}


def _slice(tr: dict, ts: int, te: int, effects=realism.REALISTIC):
    sel = (tr["obmt_ns"] >= ts - vpu.HALO_NS) & (tr["obmt_ns"] < te + vpu.HALO_NS)
    no_dead_time = np.array([[0, 1]], np.int64)
    return vpu.on_board(SEED, effects, {k: v[sel] for k, v in tr.items()}, ts, te, no_dead_time)


def test_the_vpu_of_a_day_does_not_depend_on_its_slicing():
    """Ghosts and conflicts near a slice boundary come out the same whether the boundary is there or not."""
    t0, span = 10**15, 4 * 10**9
    tr = _detections(6000, t0 - vpu.HALO_NS, span + 2 * vpu.HALO_NS)
    whole, art_whole, n_whole = _slice(tr, t0, t0 + span)
    cuts = [t0, t0 + 1_000_000_000, t0 + 1_040_000_000, t0 + 3_000_000_000, t0 + span]
    parts = [_slice(tr, a, b) for a, b in itertools.pairwise(cuts)]
    for key, value in whole.items():
        np.testing.assert_array_equal(value, np.concatenate([p[0][key] for p in parts]), err_msg=key)
    table = vpu.artefact_table(art_whole).sort_by([("kind", "ascending"), ("transit_id", "ascending")])
    joined = vpu.artefact_table({k: np.concatenate([p[1][k] for p in parts]) for k in art_whole})
    assert table.equals(joined.sort_by([("kind", "ascending"), ("transit_id", "ascending")]))
    for key in n_whole:
        assert n_whole[key] == sum(p[2][key] for p in parts), key
    kinds = set(table["kind"].to_pylist())
    assert {"spike", "halo", "lost_conflict", "class_flip", "blended", "truncated"} <= kinds, kinds
    assert n_whole["spurious"] > 0 and n_whole["lost_conflict"] > 0 and n_whole["blended"] > 0
    assert n_whole["truncated"] > 0


def test_windows_follow_the_onboard_magnitude_and_the_truth_records_every_artefact():
    t0, span = 10**15, 2 * 10**9
    tr = _detections(3000, t0 - vpu.HALO_NS, span + 2 * vpu.HALO_NS, seed=5)
    out, art, counts = _slice(tr, t0, t0 + span)
    table = vpu.artefact_table(art)
    kinds = np.array(table["kind"].to_pylist())
    # Every window once, inside the slice, none of them lost to a conflict.
    assert len(np.unique(out["transit_id"])) == len(out["transit_id"])
    assert out["obmt_ns"].min() >= t0 and out["obmt_ns"].max() < t0 + span
    lost = table["transit_id"].to_numpy()[kinds == "lost_conflict"]
    assert not np.isin(lost, out["transit_id"]).any()
    assert counts["lost_conflict"] == len(lost)
    # A ghost's source is its parent's plus 2**55; it is a window, its parent a brighter detection.
    ghosts = np.isin(kinds, ["spike", "halo"])
    gid = table["transit_id"].to_numpy()[ghosts]
    assert np.isin(gid, out["transit_id"]).all() and counts["spurious"] == len(gid)
    src = table["source_id"].to_numpy()[ghosts]
    assert np.all(src >= vpu.ARTEFACT_SOURCE_ID_BASE) and np.all(src < 2 * vpu.ARTEFACT_SOURCE_ID_BASE)
    assert np.all(table["g_mag"].to_numpy()[ghosts] < vpu.DETECTION_G_LIMIT)
    # The class of each window is its on-board magnitude's; the flips are exactly where the true G's differs.
    flips = table["transit_id"].to_numpy()[kinds == "class_flip"]
    true_class = signal.window_class_of(out["g_mag"])
    np.testing.assert_array_equal(np.sort(out["transit_id"][true_class != out["window_class"]]), np.sort(flips))
    assert len(flips) > 0
    # The ideal instrument's path (no effect): the windows of the true G, no artefact.
    off = replace(realism.REALISTIC, onboard_mag=False, spurious=False, window_conflicts=False, blends=False,
                  truncated_windows=False)
    out_off, art_off, counts_off = _slice(tr, t0, t0 + span, off)
    np.testing.assert_array_equal(out_off["window_class"], signal.window_class_of(out_off["g_mag"]))
    assert len(art_off["transit_id"]) == 0 and counts_off["spurious"] == counts_off["lost_conflict"] == 0


def test_the_pipeline_flags_the_ghosts_of_a_bright_transit_not_its_bright_neighbours():
    tdi = fp.TDI_PERIOD_NS
    t = np.array([0, 40 * tdi, -70 * tdi, 0, 0, 40 * tdi, 0, 200 * tdi], dtype=np.int64) + 10**15
    ac = np.array([500, 500, 500, 570, 500, 500, 500, 500])
    g = np.array([9.0, 17.0, 19.5, 18.0, 16.0, 12.0, np.nan, 18.0])
    fov = np.array([1, 1, 1, 1, 2, 1, 1, 1])
    got = environment.bright_environment(t, fov, np.full(8, 3), ac, g)
    # AL and AC neighbours of the G 9 star flagged; the other FoV, a 3 mag fainter star, no G, 200 px away not.
    np.testing.assert_array_equal(got, [False, True, True, True, False, False, False, False])
    # The G 9 star saturated (no G): its neighbours are still suspects, the G 12 star now among them.
    g_sat = np.where(np.arange(8) == 0, np.nan, g)
    got = environment.bright_environment(t, fov, np.full(8, 3), ac, g_sat, saturated=np.arange(8) == 0)
    np.testing.assert_array_equal(got, [False, True, True, True, False, True, False, False])
    # Not marked saturated, it is no parent: the G 19.5 transit only it reached is no suspect.
    assert not environment.bright_environment(t, fov, np.full(8, 3), ac, g_sat)[2]
    np.testing.assert_array_equal(environment.match_kept(np.array([17.0, 17.0, np.nan]), np.array([17.5, 19.0, 17.0])),
                                  [True, False, False])


def test_the_pipeline_flags_transits_near_a_much_brighter_catalogue_source():
    """The bright star's own transit may be lost: its catalogue entry still marks its environment."""
    ra0, dec0 = 120.0, -30.0
    cat = geometry.unit_from_radec(np.array([ra0, ra0, ra0 + 0.5]), np.array([dec0, dec0 + 0.01, dec0]))
    g_cat = np.array([10.0, 19.0, 12.0])
    arcsec = 1 / 3600
    ra = ra0 + np.array([0.0, 10.0, 14.0, 20.0, 3.0, 3.0]) * arcsec / np.cos(np.radians(dec0))
    u = geometry.unit_from_radec(ra, np.full(6, dec0))
    g = np.array([10.02, 18.0, 19.0, 18.0, 13.5, np.nan])
    got = environment.near_bright_source(u, g, cat, g_cat)
    # itself, and a 3.5 mag fainter neighbour or one without G, not; 10 and 14 arcsec flagged, 20 not.
    np.testing.assert_array_equal(got, [False, True, True, False, False, False])
    assert not environment.near_bright_source(u, g, cat[1:2], g_cat[1:2]).any()  # no bright source


def test_the_brightest_catalogue_source_within_the_radius_is_judged_not_the_nearest():
    """The population-sky campaign's 20 false alerts: ghosts of a G 2.8 star whose nearest G < 16 catalogue
    entry was a G 14.3 neighbour, only 3.2 mag brighter than them."""
    ra0, dec0 = 250.0, -20.0
    arcsec = 1 / 3600 / np.cos(np.radians(dec0))
    cat = geometry.unit_from_radec(ra0 + np.array([0.0, 9.0]) * arcsec, np.full(2, dec0))
    g_cat = np.array([2.8, 14.3])
    u = geometry.unit_from_radec(np.array([ra0 + 11.0 * arcsec]), np.array([dec0]))
    assert environment.near_bright_source(u, np.array([17.5]), cat, g_cat).tolist() == [True]
    assert environment.near_bright_source(u, np.array([17.5]), cat[1:], g_cat[1:]).tolist() == [False]


def test_a_bad_environment_config_is_one_clear_line(tmp_path):
    path = tmp_path / "env.toml"
    path.write_text("delta_g_mag = -1\n")
    with pytest.raises(environment.EnvironmentConfigError, match="delta_g_mag = -1: must be >= 0 mag"):
        environment.load_environment_config(path)
    path.write_text("radius = 3\n")
    with pytest.raises(environment.EnvironmentConfigError, match="unknown key 'radius'"):
        environment.load_environment_config(path)
    assert environment.load_environment_config() == environment.EnvironmentConfig()


# --- truncated windows and blends ------------------------------------------------------------------------

TDI = fp.TDI_PERIOD_NS
T0 = 10**15 // icd.TRANSIT_ID_OBMT_QUANTUM_NS * icd.TRANSIT_ID_OBMT_QUANTUM_NS  # a whole transit-id quantum


def _placed(dt_tdi, d_ac_px, g, fov=None, d_ac_arcsec=None, t0=T0):
    """Detections on CCD row 3 at ``dt_tdi`` TDI periods from T0 and ``d_ac_px`` AC pixels (or ``d_ac_arcsec``)
    from one place, in (time, transit id) order, as phase A hands them to :func:`vpu.on_board`, and their
    transit ids in the order given."""
    n = len(g)
    t = t0 + np.rint(np.asarray(dt_tdi, dtype=np.float64) * TDI).astype(np.int64)
    fov = np.ones(n, np.int8) if fov is None else np.asarray(fov, np.int8)
    zeta0 = fp.ZETA_MIN_RAD + 2.5 * fp.ROW_WIDTH_RAD
    d_ac = np.asarray(d_ac_px, dtype=np.float64) * fp.PIXEL_AC_RAD if d_ac_arcsec is None \
        else np.asarray(d_ac_arcsec, dtype=np.float64) * fp.ARCSEC_RAD
    zeta = zeta0 + d_ac
    row = fp.ccd_row_of_zeta(zeta)
    ac_px = fp.ac_px_of_zeta(zeta, row)
    tr = {"obmt_ns": t, "fov": fov, "zeta_rad": zeta, "source_id": (np.arange(n, dtype=np.int64) + 9) << 35,
          "g_mag": np.asarray(g, dtype=np.float64), "bp_rp": np.ones(n),
          "transit_id": icd.encode_transit_id(t, fov, row, ac_px), "ccd_row": row.astype(np.int8),
          "ac_px": ac_px.astype(np.int16)}
    order = np.lexsort((tr["transit_id"], tr["obmt_ns"]))
    return {k: v[order] for k, v in tr.items()}, tr["transit_id"]


ONLY_WINDOWS = replace(realism.IDEAL, window_conflicts=True, truncated_windows=True)
ONLY_BLENDS = replace(realism.IDEAL, blends=True)


@pytest.fixture
def no_data_loss(monkeypatch):
    """No window lost on the way down (gaiasim.sim.onboard.lost), so that every case below reaches the ground."""
    monkeypatch.setattr(vpu.onboard, "lost", lambda seed, transit_id, g_mag: np.zeros(len(transit_id), bool))


def _vpu(tr, effects):
    return vpu.on_board(SEED, effects, tr, T0 - 10**9, T0 + 10**9, np.array([[0, 1]], np.int64))


def test_windows_overlapping_a_brighter_one_lose_the_samples_facing_it(no_data_loss):
    # A G 15 star (18 samples, 9 TDI each side), and G 19 stars (12 samples, 6 each side): 12 TDI after it (its
    # window's first 3 samples lie in the bright one's), 12 before (its last 3), inside it (lost), 8 px across
    # (AC-side overlap: not truncated), 30 TDI away (no overlap); and 14 TDI after another G 15 star with a G 17
    # star (12 samples) 11 TDI after it: its first sample and its last lie in the others' windows.
    tr, tid = _placed([0, 12, -12, 5, 12, 30, 50, 64, 75], [0, 0, 0, 0, 8, 0, 0, 0.4, 0],
                      [15.0, 19.0, 19.0, 19.0, 19.0, 19.0, 15.0, 19.0, 17.0])
    out, art, counts = _vpu(tr, ONLY_WINDOWS)
    table = vpu.artefact_table(art).to_pylist()
    byid = {r["transit_id"]: r for r in table}
    cuts = dict(zip(out["transit_id"], zip(out["cut_start"], out["cut_end"], strict=True), strict=True))
    assert byid[tid[1]]["kind"] == "truncated" and byid[tid[1]]["side"] == "start"
    assert cuts[tid[1]] == (3, 0) and byid[tid[1]]["samples_kept"] == 9
    assert byid[tid[1]]["parent_transit_id"] == tid[0]
    assert cuts[tid[2]] == (0, 3) and byid[tid[2]]["side"] == "end"
    assert byid[tid[3]]["kind"] == "lost_conflict" and tid[3] not in cuts
    for i in (0, 4, 5, 6):
        assert cuts[tid[i]] == (0, 0) and tid[i] not in byid, i
    # Between a G 15 window (14 TDI before) and a G 17 one (14 after): 1 sample lost at its start, 1 at its end.
    assert cuts[tid[7]] == (1, 1) and byid[tid[7]]["side"] == "both" and byid[tid[7]]["samples_kept"] == 10
    assert byid[tid[7]]["parent_transit_id"] == tid[6]  # the brighter of the two
    assert counts["truncated"] == 3
    # The switch off: full windows.
    out_off, _, _ = _vpu(tr, replace(ONLY_WINDOWS, truncated_windows=False))
    assert not out_off["cut_start"].any() and not out_off["cut_end"].any()


def test_truncated_windows_are_sent_with_samples_not_read_and_fitted_without_them():
    """Rendered: the cut samples of the SM and every AF window are 0 ADU (icd.NOT_READ_ADU), and no other sample;
    the pipeline masks them, flags the window and the transit (FLAG_TRUNCATED) and fits the rest unbiased;
    a window with too few samples left is flagged, not fitted, and nothing breaks."""
    rng = np.random.default_rng(8)
    m = 400
    tid = np.sort(rng.choice(2**40, m, replace=False)).astype(np.int64) << 17
    cut = np.zeros((m, 2), np.int64)
    cut[: m // 2, 0] = rng.integers(1, 6, m // 2)  # start
    cut[m // 2:, 1] = rng.integers(1, 6, m - m // 2)  # end
    cut[-1] = (5, 5)  # 2 of 12 samples left
    g = rng.uniform(16.5, 19.0, m)
    (w,) = signal.make_windows(3, tid, rng.uniform(-0.5, 0.5, m), np.ones(m, np.int8), g, np.ones(m), TRUE_CAL,
                               not_read=cut)
    k = np.arange(12)
    gone = (k[None, :] < cut[:, :1]) | (k[None, :] >= 12 - cut[:, 1:])
    np.testing.assert_array_equal(w.payload["sm_adu"] == icd.NOT_READ_ADU, gone)
    np.testing.assert_array_equal(w.payload["af_adu"] == icd.NOT_READ_ADU, np.repeat(gone[:, None, :], 9, axis=1))
    records = np.zeros(m, dtype=icd.packet_dtype(w.apid))
    records["payload"] = w.payload
    fit = transits.fit_star_packets(records, 2, CAL)
    assert np.all(fit["flags"] & transits.FLAG_TRUNCATED)
    assert np.all(fit["flags"][-1] & ipd.FLAG_BAD_INPUT) and np.all(np.isnan(fit["al_px"][-1]))
    truth = w.truth_ccd["al_px"].to_numpy().reshape(m, 10)[:-1]
    pull = ((fit["al_px"][:-1] - truth) / fit["al_px_err"][:-1]).ravel()
    assert abs(np.median(pull)) < 0.1 and abs(1.4826 * np.median(np.abs(pull - np.median(pull))) - 1) < 0.1
    rows = transits.transit_rows(records, 2, fit, CAL, np.empty(0, np.int64), np.empty((0, 4)))
    assert np.all(rows["flags"] & transits.FLAG_TRUNCATED)
    assert np.all(rows["n_af_ok"][:-1] >= 8)  # a truncated window still counts among the good ones
    # Read as signal (what a reader that ignores NOT_READ_ADU does), the cut samples drag the centres.
    samples = (w.payload["af_adu"][: m // 2, 4].astype(np.float64) - CAL.bias_adu) / CAL.gain_adu_per_e
    naive_fit = ipd.fit_images(samples, np.full(m // 2, 12, np.int32), np.full(m // 2, 20.0), cosmic_sigma=0.0)
    bad = (naive_fit["al_px"] - truth[: m // 2, 5]) / fit["al_px_err"][: m // 2, 5]
    assert abs(np.nanmedian(bad)) > 3


def test_pairs_closer_than_the_resolution_limit_are_one_detection_depending_on_the_scan_angle(no_data_loss):
    # Four pairs 0.5 arcsec apart on the sky, seen along and across the scan (equal stars resolve at 0.23 AL and
    # 0.70 AC): across the scan they blend, along it they do not; and a pair in different FoVs never does.
    al = 0.5 / fp.SCAN_RATE_ARCSEC_S * 1e9 / TDI  # TDI periods
    tr, tid = _placed([0, al, 100, 100, 200, 200, 300, 300.02], [0, 0, 0, 0, 0, 0, 0, 0], [17.0, 17.5, 17.0, 17.3,
                      16.0, 18.0, 17.0, 17.0], fov=[1, 1, 1, 1, 1, 2, 1, 1], d_ac_arcsec=[0, 0, 0, 0.5, 0, 0.1, 0, 0.2])
    out, art, counts = _vpu(tr, ONLY_BLENDS)
    table = vpu.artefact_table(art).to_pylist()
    blended = {r["transit_id"]: r for r in table if r["kind"] == "blended"}
    assert set(blended) == {tid[3], tid[7]} and counts["blended"] == 2
    assert blended[tid[3]]["parent_transit_id"] == tid[2]
    assert blended[tid[3]]["d_ac_px"] == pytest.approx(0.5 / 0.1768, rel=1e-3)
    # Equal stars: the lower transit id keeps the window.
    assert blended[tid[7]]["parent_transit_id"] == min(tid[6], tid[7])
    assert tid[3] not in out["transit_id"] and len(out["transit_id"]) == 6
    i = list(out["transit_id"]).index(tid[2])
    assert out["blend_g_mag"][i] == pytest.approx(17.3) and out["blend_d_ac_px"][i] == pytest.approx(2.828, rel=1e-3)
    assert np.isnan(out["blend_g_mag"][list(out["transit_id"]).index(tid[0])])
    # The window class follows the pair's G: G 17.0 and 17.3 together are G 16.4.
    assert blended[tid[3]]["g_onboard_mag"] == pytest.approx(-2.5 * np.log10(10**-6.8 + 10**-6.92), abs=1e-6)


def _fit_blends(g1: float, g2: float, d_al: float, m: int = 600):
    w, records, fit = fit_blended_windows(g1, g2, d_al, m)
    rows = transits.transit_rows(records, 1, fit, CAL, np.empty(0, np.int64), np.empty((0, 4)))
    shift = fit["al_px"][:, 1:] - w.truth_ccd["al_px"].to_numpy().reshape(m, 10)[:, 1:]
    return w, rows, shift


def test_a_blended_window_holds_both_stars_light():
    """A blend's window holds both images: 0.5 px apart, the fit measures the pair's G and its flux-weighted
    centre; 2 px apart (still below the 0.23 arcsec limit) a one-star fit takes in part of the second."""
    g1, g2 = 17.0, 17.5
    pair = -2.5 * np.log10(10 ** (-0.4 * g1) + 10 ** (-0.4 * g2))
    ratio = 10 ** (-0.4 * (g2 - g1))
    w, rows, shift = _fit_blends(g1, g2, 0.5)
    assert np.median(rows["g_mag"]) == pytest.approx(pair, abs=0.02)
    assert np.median(shift) == pytest.approx(0.5 * ratio / (1 + ratio), abs=0.03)
    _, rows_far, _ = _fit_blends(g1, g2, 2.0)
    assert pair + 0.05 < np.median(rows_far["g_mag"]) < g1 - 0.05
    # The BP and RP spectra hold both stars' light too.
    m = len(rows["g_mag"])
    tid = w.payload["transit_id"].astype(np.int64)
    (alone,) = signal.make_windows(3, tid, np.zeros(m), np.ones(m, np.int8), np.full(m, g1), np.ones(m), TRUE_CAL,
                                   window_class=np.full(m, 1, np.int8), gate=np.zeros(m, np.int8))
    for band in ("bp_adu", "rp_adu"):
        more = w.payload[band].astype(np.float64).sum(axis=1) / alone.payload[band].astype(np.float64).sum(axis=1)
        assert np.median(more) > 1.0, band


@pytest.mark.parametrize(("g_lo", "g_hi", "wc", "n_cut"), [(11.0, 12.9, 0, 8), (13.5, 15.5, 1, 8), (17.0, 19.5, 2, 5)])
def test_windows_missing_their_first_or_last_samples_are_fitted_unbiased(g_lo, g_hi, wc, n_cut):
    """Half of each window class's windows miss their first ``n_cut`` samples, half their last (the image's
    centre still read): centres and G unbiased, errors honest, in the SM (1D) and AF (1D or 2D) windows alike.
    1,000 windows: the SM pulls' median then has a standard error of 0.04, 4 of them within the 0.15 allowed
    (with 300, one seed in ten of the noise put an unbiased fit outside it)."""
    rng = np.random.default_rng(10 + wc)
    m = 1000
    tid = np.sort(rng.choice(2**40, m, replace=False)).astype(np.int64) << 17
    cut = np.zeros((m, 2), np.int64)
    cut[: m // 2, 0] = n_cut
    cut[m // 2:, 1] = n_cut
    g = rng.uniform(g_lo, g_hi, m)
    (w,) = signal.make_windows(4, tid, rng.uniform(-0.5, 0.5, m), np.ones(m, np.int8), g, np.ones(m), TRUE_CAL,
                               window_class=np.full(m, wc, np.int8), not_read=cut)
    records = np.zeros(m, dtype=icd.packet_dtype(w.apid))
    records["payload"] = w.payload
    fit = transits.fit_star_packets(records, wc, CAL)
    pull = (fit["al_px"] - w.truth_ccd["al_px"].to_numpy().reshape(m, 10)) / fit["al_px_err"]
    for part in (pull[:, 0], pull[:, 1:].ravel()):  # SM, AF
        assert abs(np.median(part)) < 0.15 and abs(1.4826 * np.median(np.abs(part - np.median(part))) - 1) < 0.15
    assert np.mean((fit["flags"] & (ipd.FLAG_NOT_CONVERGED | ipd.FLAG_COSMIC)) != 0) < 0.02
    rows = transits.transit_rows(records, wc, fit, CAL, np.empty(0, np.int64), np.empty((0, 4)))
    assert abs(np.median(rows["g_mag"] - g)) < 0.01
