"""Housekeeping and attitude packets: nominal channels with noise and slow drifts (docs/facts.md section 8)."""

from __future__ import annotations

import numpy as np

from gaiasim.sim.instrument import focal_plane as geometry
from pipeline import icd

#: HK and attitude packet cadences: the ICD's (a receiver counts lost packets from them).
HK_PERIOD_NS = icd.PERIOD_NS[icd.APID_HK]
ATTITUDE_PERIOD_NS = icd.PERIOD_NS[icd.APID_ATTITUDE]

#: Nominal value, noise sigma and drift per day of each channel, in icd.HK_CHANNELS order [U]. The FPA
#: sensors sit in the nominal 160-170 K region with a steady offset between them (docs/facts.md section 8).
HK_NOMINAL = {
    "fpa_temp_sm1_k": (163.6, 0.02, 0.01),
    "fpa_temp_af5_k": (164.9, 0.02, 0.01),
    "fpa_temp_rvs3_k": (166.1, 0.02, 0.01),
    "video_offset_af_adu": (1000.0, 0.2, 0.0),
    "bus_voltage_v": (28.0, 0.05, 0.0),
    "vpu_current_a": (3.2, 0.02, 0.0),
}


def hk_values(rng: np.random.Generator, t_ns: np.ndarray, t0_ns: int, star_rate_hz: dict[int, np.ndarray]
              ) -> np.ndarray:
    """Values (n, channels) of HK samples at ``t_ns``: nominal + drift since ``t0_ns`` + noise, and the
    star rates of each FoV (the AOCS star statistics, docs/facts.md section 8) as given."""
    days = (t_ns - t0_ns) / 86_400e9
    values = np.empty((len(t_ns), len(icd.HK_CHANNELS)), dtype=np.float64)
    for j, ch in enumerate(icd.HK_CHANNELS):
        if ch.name.startswith("star_rate_fov"):
            values[:, j] = star_rate_hz[int(ch.name[-4])]
        else:
            nominal, sigma, drift = HK_NOMINAL[ch.name]
            values[:, j] = nominal + drift * days + rng.normal(0.0, sigma, len(t_ns))
    return values


def hk_samples(rng: np.random.Generator, t0_ns: int, t1_ns: int, transit_obmt_ns: np.ndarray,
               transit_fov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(obmt_ns, values (n, channels)) of the HK packets in [t0, t1), the star rates counting the
    given transits of each FoV in the period after each sample."""
    t = np.arange(t0_ns, t1_ns, HK_PERIOD_NS, dtype=np.int64)
    edges = np.append(t, t[-1] + HK_PERIOD_NS) if len(t) else t
    rates = {fov: (np.histogram(transit_obmt_ns[transit_fov == fov], bins=edges)[0] / (HK_PERIOD_NS / 1e9)
                   if len(t) else np.empty(0)) for fov in (1, 2)}
    return t, hk_values(rng, t, t0_ns, rates)


def attitude_samples(t0_ns: int, t1_ns: int, attitude) -> tuple[np.ndarray, np.ndarray]:
    """(obmt_ns, payload records) of the attitude packets in [t0, t1): the scanning-law attitude."""
    t = np.arange(t0_ns, t1_ns, ATTITUDE_PERIOD_NS, dtype=np.int64)
    payload = np.zeros(len(t), dtype=icd.ATTITUDE_PAYLOAD)
    payload["q"] = attitude(t)
    # Inertial rate in SRS: the nominal spin about z; the precession adds < 0.2 arcsec/s AC (docs/facts.md 1).
    payload["rate_rad_s"][:, 2] = geometry.SCAN_RATE_RAD_S
    return t, payload
