"""Star packets -> CCD image parameters (IPD), transit times, sky positions and G photometry."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline import geometry, icd, ipd, schemas
from pipeline.calibration import Calibration

#: Transit flag: fewer than 3 AF windows with a clean fit (no time refinement, no G).
FLAG_FEW_AF = 1 << 17
#: Transit flag: no attitude packet within :data:`MAX_ATTITUDE_GAP_NS` of the transit (no position).
FLAG_NO_ATTITUDE = 1 << 18
MAX_ATTITUDE_GAP_NS = 10_000_000_000
MIN_AF_OK = 3

_GATE_S = np.zeros(max(icd.GATE_INTEGRATION_S) + 1)
for _gate, _seconds in icd.GATE_INTEGRATION_S.items():
    _GATE_S[_gate] = _seconds


def fit_star_packets(records: np.ndarray, window_class: int, cal: Calibration) -> dict[str, np.ndarray]:
    """IPD of the SM and AF1..AF9 windows of star packets of one window class.

    Returns fit arrays of shape (m, 10) (column 0 = SM, 1..9 = AF1..AF9), with saturated windows
    flagged (:data:`pipeline.ipd.FLAG_SATURATED`).
    """
    n = icd.WINDOW_SAMPLES[window_class]
    m = len(records)
    adu = np.concatenate([records["payload"]["sm_adu"][:, None, :], records["payload"]["af_adu"]], axis=1)
    samples_e = ((adu.astype(np.float64) - cal.bias_adu) / cal.gain_adu_per_e).reshape(m * 10, n)
    var = np.array([cal.var_extra_e2(s) for s in ("SM1", *geometry.AF_STRIPS)])
    fit = ipd.fit_images(samples_e, np.full(m * 10, n, dtype=np.int32), np.tile(var, m), cal.lsf_sigma_px)
    fit = {k: v.reshape(m, 10) for k, v in fit.items()}
    saturated = (adu >= icd.ADC_MAX_ADU).any(axis=2)
    fit["flags"] = fit["flags"] | np.where(saturated, ipd.FLAG_SATURATED, 0).astype(fit["flags"].dtype)
    return fit


def ccd_table(transit_id: np.ndarray, fov: np.ndarray, fit: dict[str, np.ndarray]) -> pa.Table:
    cols = {
        "transit_id": np.repeat(transit_id, 10),
        "strip": schemas.ccd_strips(fov),
        "al_px": fit["al_px"].ravel(),
        "al_px_err": fit["al_px_err"].ravel().astype(np.float32),
        "flux_e": fit["flux_e"].ravel().astype(np.float32),
        "flux_e_err": fit["flux_e_err"].ravel().astype(np.float32),
        "bg_e": fit["bg_e"].ravel().astype(np.float32),
        "chi2": fit["chi2"].ravel().astype(np.float32),
        "flags": fit["flags"].ravel().astype(np.int32),
    }
    return pa.table(cols, schema=schemas.CCD)


def transit_rows(records: np.ndarray, window_class: int, fit: dict[str, np.ndarray], cal: Calibration,
                 att_t_ns: np.ndarray, att_q: np.ndarray) -> dict[str, np.ndarray]:
    """Per-transit columns (everything in schemas.TRANSITS but the crossmatch ones)."""
    payload = records["payload"]
    tid = payload["transit_id"].astype(np.int64)
    t_ref, fov, row, ac_px = geometry.decode_transit_id(tid)
    n = icd.WINDOW_SAMPLES[window_class]
    af = slice(1, 10)
    ok = fit["flags"][:, af] == 0
    n_ok = ok.sum(axis=1)
    good = n_ok >= MIN_AF_OK
    safe_n = np.maximum(n_ok, 1)
    # AL: mean offset of the AF images from their window centres, in TDI periods -> AF1 crossing time.
    offset_px = np.where(ok, fit["al_px"][:, af] - 0.5 * (n - 1), 0.0).sum(axis=1) / safe_n
    obmt_ns = t_ref + np.where(good, np.rint(offset_px * geometry.TDI_PERIOD_NS), 0).astype(np.int64)
    # Photometry: mean AF flux rate (e-/s) -> G (FACTS.md section 5 uses the ~8.86 AF CCDs per transit).
    t_int = _GATE_S[payload["gate"]]
    flux = np.where(ok, fit["flux_e"][:, af], 0.0).sum(axis=1) / safe_n
    flux_err = np.sqrt(np.where(ok, fit["flux_e_err"][:, af] ** 2, 0.0).sum(axis=1)) / safe_n
    with np.errstate(divide="ignore", invalid="ignore"):
        g_mag = np.where(good & (flux > 0), cal.zero_point_g_mag - 2.5 * np.log10(flux / t_int), np.nan)
        g_err = np.where(good & (flux > 0), 2.5 / np.log(10.0) * flux_err / flux, np.nan)
    # Sky position: attitude at the AF1 crossing, field angles of the line of sight (eta = 0, zeta).
    flags = np.bitwise_or.reduce(fit["flags"], axis=1).astype(np.int64)
    flags |= np.where(good, 0, FLAG_FEW_AF)
    ra = dec = np.full(len(tid), np.nan)
    if len(att_t_ns):
        q = geometry.interpolate_attitude(att_t_ns, att_q, obmt_ns)
        u = geometry.sky_direction(q, fov, geometry.zeta_of_ac_px(ac_px, row), np.zeros(len(tid)))
        ra, dec = geometry.radec_from_unit(u)
        j = np.clip(np.searchsorted(att_t_ns, obmt_ns), 1, len(att_t_ns) - 1)
        near = np.minimum(np.abs(att_t_ns[j] - obmt_ns), np.abs(att_t_ns[j - 1] - obmt_ns))
        no_att = near > MAX_ATTITUDE_GAP_NS
    else:
        no_att = np.ones(len(tid), dtype=bool)
    flags |= np.where(no_att, FLAG_NO_ATTITUDE, 0)
    ra, dec = np.where(no_att, np.nan, ra), np.where(no_att, np.nan, dec)
    return {
        "transit_id": tid,
        "obmt_ns": obmt_ns,
        "fov": fov.astype(np.int8),
        "ccd_row": row.astype(np.int8),
        "ac_px": ac_px.astype(np.int16),
        "window_class": payload["window_class"].astype(np.int8),
        "gate": payload["gate"].astype(np.int8),
        "ra_deg": ra,
        "dec_deg": dec,
        "g_mag": g_mag.astype(np.float32),
        "g_mag_err": g_err.astype(np.float32),
        "n_af_ok": n_ok.astype(np.int8),
        "flags": flags.astype(np.int32),
    }
