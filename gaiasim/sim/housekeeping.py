"""Housekeeping and attitude packets: nominal channels with noise and slow drifts (FACTS.md section 8)."""

from __future__ import annotations

import numpy as np

from pipeline import geometry, icd

#: HK sampling period, ns [U: real HK channels are sampled from 1 s to minutes].
HK_PERIOD_NS = 10_000_000_000
#: Attitude packets at about 1 Hz (DESIGN.md, FACTS.md section 1 attitude tables).
ATTITUDE_PERIOD_NS = 1_000_000_000

#: Nominal value, noise sigma and drift per day of each channel, in icd.HK_CHANNELS order [U]. The FPA
#: sensors sit in the nominal 160-170 K region with a steady offset between them (FACTS.md section 8).
HK_NOMINAL = {
    "fpa_temp_sm1_k": (163.6, 0.02, 0.01),
    "fpa_temp_af5_k": (164.9, 0.02, 0.01),
    "fpa_temp_rvs3_k": (166.1, 0.02, 0.01),
    "video_offset_af_adu": (1000.0, 0.2, 0.0),
    "bus_voltage_v": (28.0, 0.05, 0.0),
    "vpu_current_a": (3.2, 0.02, 0.0),
}


def hk_samples(rng: np.random.Generator, t0_ns: int, t1_ns: int, transit_obmt_ns: np.ndarray,
               transit_fov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(obmt_ns, values (n, channels)) of the HK packets in [t0, t1).

    The star-rate channels count the simulated transits of each FoV in the preceding period, as the
    AOCS star statistics do (FACTS.md section 8).
    """
    t = np.arange(t0_ns, t1_ns, HK_PERIOD_NS, dtype=np.int64)
    days = (t - t0_ns) / 86_400e9
    values = np.empty((len(t), len(icd.HK_CHANNELS)), dtype=np.float64)
    for j, ch in enumerate(icd.HK_CHANNELS):
        if ch.name.startswith("star_rate_fov"):
            fov = int(ch.name[-4])
            edges = np.append(t - HK_PERIOD_NS, t[-1]) if len(t) else t
            counts = np.histogram(transit_obmt_ns[transit_fov == fov], bins=edges)[0] if len(t) else []
            values[:, j] = np.asarray(counts, dtype=np.float64) / (HK_PERIOD_NS / 1e9)
        else:
            nominal, sigma, drift = HK_NOMINAL[ch.name]
            values[:, j] = nominal + drift * days + rng.normal(0.0, sigma, len(t))
    return t, values


def attitude_samples(t0_ns: int, t1_ns: int, attitude) -> tuple[np.ndarray, np.ndarray]:
    """(obmt_ns, payload records) of the attitude packets in [t0, t1): the scanning-law attitude."""
    t = np.arange(t0_ns, t1_ns, ATTITUDE_PERIOD_NS, dtype=np.int64)
    payload = np.zeros(len(t), dtype=icd.ATTITUDE_PAYLOAD)
    payload["q"] = attitude(t)
    # Inertial rate in SRS: the nominal spin about z; the precession adds < 0.2 arcsec/s AC (FACTS.md 1).
    payload["rate_rad_s"][:, 2] = geometry.SCAN_RATE_RAD_S
    return t, payload
