"""Blended windows for the tests: a star with a fainter companion in its window, simulated by the harness
(gaiasim.sim.signal) and fitted by the pipeline's IPD (pipeline.transits)."""

from __future__ import annotations

import numpy as np

from gaiasim.sim import signal
from gaiasim.sim.instrument.electronics import TRUE as TRUE_CAL
from pipeline import icd, transits
from pipeline.calibration import DEFAULT as CAL


def fit_blended_windows(g1: float, g2: float, d_al_px: float, m: int) -> tuple[signal.StarWindows, np.ndarray, dict]:
    """``m`` class-1 transits of a G ``g1`` star with a G ``g2`` companion ``d_al_px`` along scan: the windows
    (their truth CCD rows), the packets' records and the IPD's fit of them."""
    rng = np.random.default_rng(9)
    tid = np.sort(rng.choice(2**40, m, replace=False)).astype(np.int64) << 17
    blend = {"g_mag": np.full(m, g2), "bp_rp": np.full(m, 1.0), "d_al_px": np.full(m, d_al_px),
             "d_ac_px": np.zeros(m)}
    (w,) = signal.make_windows(3, tid, rng.uniform(-0.5, 0.5, m), np.ones(m, np.int8), np.full(m, g1), np.ones(m),
                               TRUE_CAL, window_class=np.full(m, 1, np.int8), gate=np.zeros(m, np.int8), blend=blend)
    records = np.zeros(m, dtype=icd.packet_dtype(w.apid))
    records["payload"] = w.payload
    return w, records, transits.fit_star_packets(records, 1, CAL)
