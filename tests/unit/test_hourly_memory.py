"""What bounds a run's memory without changing its outputs: the IPD of a chunk fitted in pieces
(pipeline.hourly.FIT_TRANSITS) gives the same arrays, and a run with tiny pieces the same bytes; the sky
cells of a degree (pipeline.skycells.CELL_DEG) still hold every source within reach."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from gaiasim.sim import signal
from gaiasim.sim.instrument.electronics import TRUE as INSTRUMENT
from pipeline import ccdcal, geometry, hourly, icd, skycells, transits
from pipeline.calibration import DEFAULT as CAL
from pipeline.run import WORK, run


def _records(m: int = 90, seed: int = 4) -> list[tuple[np.ndarray, int]]:
    """Star packets of ``m`` transits from G 9 to 20.5, per window class (records, window class)."""
    rng = np.random.default_rng(seed)
    out = []
    for w in signal.make_windows(seed, np.sort(rng.choice(2**40, m, replace=False)).astype(np.int64) << 17,
                                 rng.uniform(-0.5, 0.5, m), rng.integers(1, 3, m).astype(np.int8),
                                 rng.uniform(9.0, 20.5, m), rng.uniform(0.5, 1.5, m), INSTRUMENT):
        records = np.zeros(len(w.payload), dtype=icd.packet_dtype(w.apid))
        records["payload"] = w.payload
        out.append((records, int(w.payload["window_class"][0])))
    return out


def test_a_chunk_fitted_in_pieces_gives_the_same_arrays(monkeypatch):
    monkeypatch.setattr(hourly, "FIT_TRANSITS", 5)  # pieces of 5 and a shorter last one
    day = type("D", (), {"calibration": CAL, "ccd_calibration": ccdcal.NOMINAL})()
    found = _records()
    assert sorted(wc for _, wc in found) == [0, 1, 2]
    for records, wc in found:
        assert len(records) > 5 and len(records) % 5  # several pieces, the last one shorter
        whole = transits.fit_star_packets(records, wc, CAL, ccdcal.NOMINAL)
        pieces = hourly._fit_in_pieces(records, wc, day)
        assert sorted(pieces) == sorted(whole)
        for key, values in whole.items():
            assert pieces[key].dtype == values.dtype, (wc, key)
            assert pieces[key].shape == values.shape, (wc, key)
            np.testing.assert_array_equal(pieces[key], values, err_msg=f"{wc} {key}")


def _digests(run_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*.parquet")) if WORK not in p.parts}


def test_a_run_fitted_in_tiny_pieces_gives_the_same_bytes(faulty_run, tmp_path, monkeypatch):
    dataset, clean = faulty_run
    monkeypatch.setattr(hourly, "FIT_TRANSITS", 3)
    out = tmp_path / "run"
    run(dataset, out)
    digests = _digests(out)
    assert digests and digests == _digests(clean)


@given(st.floats(0, 360, exclude_max=True), st.floats(-90, 90), st.floats(0, 2 * np.pi), st.floats(0, 1.0),
       st.sampled_from([15_000.0, 0.3 * 3.6e6, 0.6 * 3.6e6, 0.99 * 3.6e6]))
def test_a_source_within_a_wide_radius_is_in_the_cells_loaded(ra, dec, angle, fraction, radius_mas):
    """Cells of a degree: the environment's 15 arcsec reach up to the polar rows, and a radius as wide as half a
    cell or more (the crossmatch accepts up to 1 deg), whose boxes have cells between their corners."""
    u = geometry.unit_from_radec(np.array([ra]), np.array([dec])).reshape(3)
    pole = np.array([0.0, 0.0, 1.0]) if abs(u[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = np.cross(u, pole)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(u, e1)
    theta = fraction * radius_mas * geometry.MAS_RAD
    v = np.cos(theta) * u + np.sin(theta) * (np.cos(angle) * e1 + np.sin(angle) * e2)
    src_ra, src_dec = geometry.radec_from_unit(v.reshape(1, 3))
    loaded = skycells.cells_within(np.array([ra]), np.array([dec]), radius_mas / 3.6e6)
    assert skycells.cell_of(src_ra, src_dec)[0] in loaded


def test_a_run_with_cells_of_another_size_gives_the_same_bytes(faulty_run, tmp_path, monkeypatch):
    """The cells only bound which sources a slice loads: every source within reach is among them."""
    dataset, clean = faulty_run
    monkeypatch.setattr(skycells, "CELL_DEG", 2.0)
    monkeypatch.setattr(skycells, "N_RA", 180)
    monkeypatch.setattr(skycells, "N_DEC", 90)
    out = tmp_path / "run"
    run(dataset, out)
    digests = _digests(out)
    assert digests and digests == _digests(clean)
