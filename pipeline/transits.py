"""Star packets -> CCD image parameters (IPD), transit times, sky positions and G photometry."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline import ccdcal, geometry, icd, ipd, photometry, schemas, second_image
from pipeline.calibration import Calibration

#: Transit flag: fewer than 3 AF windows with a clean fit (no time refinement, no G).
FLAG_FEW_AF = 1 << 17
#: Transit flag: no attitude packet within :data:`MAX_ATTITUDE_GAP_NS` of the transit (no position).
FLAG_NO_ATTITUDE = 1 << 18
#: CCD and transit flag: a truncated window, with samples not read out (:data:`pipeline.icd.NOT_READ_ADU`, the
#: side facing a brighter window; docs/icd.md section 4.3). Those samples are masked in the fit, which is
#: otherwise good: the window still counts among a transit's good AF windows (a window with fewer than 4
#: samples left is not fitted, ``pipeline.ipd.FLAG_BAD_INPUT``). Transit flags in use: 1 << 16 and 1 << 19
#: (pipeline.crossmatch), 1 << 17 and 1 << 18 (above), 1 << 20 (pipeline.environment), 1 << 21 (this),
#: 1 << 22 (:data:`FLAG_SECOND_IMAGE`).
FLAG_TRUNCATED = 1 << 21
#: CCD and transit flag: a blend's second image masked in the window, not a cosmic ray (:mod:`pipeline.second_image`).
FLAG_SECOND_IMAGE = second_image.FLAG_SECOND_IMAGE
MAX_ATTITUDE_GAP_NS = 10_000_000_000
MIN_AF_OK = 3

_GATE_S = np.zeros(max(icd.GATE_INTEGRATION_S) + 1)
for _gate, _seconds in icd.GATE_INTEGRATION_S.items():
    _GATE_S[_gate] = _seconds


def fit_star_packets(records: np.ndarray, window_class: int, cal: Calibration,
                     ccd: ccdcal.CcdCalibration = ccdcal.NOMINAL) -> dict[str, np.ndarray]:
    """IPD of the SM and AF1..AF9 windows of star packets of one window class.

    Returns fit arrays of shape (m, 10) (column 0 = SM, 1..9 = AF1..AF9): the fields of
    :func:`pipeline.ipd.fit_images` plus ``ac_px`` and ``ac_px_err`` (AC centre in the window frame and
    its error, NaN for 1D windows; WC0 AF windows are 2D, :func:`pipeline.ipd.fit_images_2d`) and
    ``al_offset_px``, the along-scan displacement of each window's CCD (:mod:`pipeline.ccdcal`), and
    ``no_ccd``, True for the AF1 window of the wavefront sensor's row (no CCD: not an image). Each
    window is converted with its CCD's gain, offset and read noise, and its flux divided by its CCD's
    throughput. Cosmic rays are rejected (:data:`pipeline.ipd.COSMIC_SIGMA`, ``FLAG_COSMIC``) and saturated
    windows flagged (:data:`pipeline.ipd.FLAG_SATURATED`). Samples not read out (:data:`pipeline.icd.NOT_READ_ADU`)
    are masked, and a window that has some (a truncated window) flagged :data:`FLAG_TRUNCATED`. Hits at one offset
    from the fitted centre in several windows of a transit are a blend's second image, not cosmic rays: those
    windows are flagged :data:`FLAG_SECOND_IMAGE` instead (:mod:`pipeline.second_image`; the samples stay masked).
    """
    n = icd.WINDOW_SAMPLES[window_class]
    n_ac = icd.WINDOW_AC_SAMPLES[window_class]
    m = len(records)
    payload = records["payload"]
    _, fov, row, ac_pixel = icd.decode_transit_id(payload["transit_id"].astype(np.int64))
    index = ccd.window_index(fov, row)
    gain = cal.gain_adu_per_e * ccd.at("gain_factor", index)
    bias = cal.bias_adu + ccd.at("bias_offset_adu", index)
    read_noise = np.array([cal.read_noise_e[s] for s in ("SM1", *geometry.AF_STRIPS)]) * ccd.at("read_noise_factor",
                                                                                                 index)
    # Read noise and ADU quantisation (1/12 ADU^2), as Calibration.var_extra_e2 for the nominal CCD.
    var = read_noise**2 + (1.0 / gain) ** 2 / 12.0
    if n_ac == 1:
        adu = np.concatenate([payload["sm_adu"][:, None, :], payload["af_adu"]], axis=1)
        samples_e = ((adu.astype(np.float64) - bias[:, :, None]) / gain[:, :, None]).reshape(m * 10, n)
        not_read = adu == icd.NOT_READ_ADU
        fit = _fit_1d(samples_e, not_read.reshape(m * 10, n), var.ravel(), cal.lsf_sigma_px)
        hit_window, hit_al, hit_ac, hit_half = second_image.hits(fit.pop("mask"), fit["flags"])
        _debias(fit, cal.lsf_sigma_px)
        fit = {k: v.reshape(m, 10) for k, v in fit.items()}
        fit["ac_px"] = np.full((m, 10), np.nan)
        fit["ac_px_err"] = np.full((m, 10), np.nan)
        saturated = (adu >= icd.ADC_MAX_ADU).any(axis=2)
    else:
        sm = payload["sm_adu"]
        af = payload["af_adu"]
        sm_not_read, af_not_read = sm == icd.NOT_READ_ADU, af == icd.NOT_READ_ADU
        fit_sm = _fit_1d((sm.astype(np.float64) - bias[:, :1]) / gain[:, :1], sm_not_read,
                         np.ascontiguousarray(var[:, 0]), cal.lsf_sigma_px)
        sm_hits = second_image.hits(fit_sm.pop("mask"), fit_sm["flags"])
        _debias(fit_sm, cal.lsf_sigma_px)
        af_e = ((af.astype(np.float64) - bias[:, 1:, None, None]) / gain[:, 1:, None, None]).reshape(m * icd.N_AF, n,
                                                                                                      n_ac)
        # AC PSF width in AC pixels equals the AL one in AL pixels (docs/facts.md section 5).
        fit_af = ipd.fit_images_2d(af_e, np.ascontiguousarray(var[:, 1:]).ravel(), cal.lsf_sigma_px, cal.lsf_sigma_px,
                                   mask=af_not_read.reshape(m * icd.N_AF, n, n_ac).astype(np.uint8),
                                   cosmic_sigma=ipd.COSMIC_SIGMA, return_mask=True)
        af_hits = second_image.hits(fit_af.pop("mask"), fit_af["flags"])
        # Hits as flat indices into (m, 10): the SM's window i is (i, 0), AF window j is (j // 9, 1 + j % 9).
        hit_window = np.concatenate([sm_hits[0] * 10, af_hits[0] // icd.N_AF * 10 + 1 + af_hits[0] % icd.N_AF])
        hit_al = np.concatenate([sm_hits[1], af_hits[1]])
        hit_ac = np.concatenate([sm_hits[2], af_hits[2]])
        hit_half = np.concatenate([sm_hits[3], af_hits[3]])
        fit = {}
        for k, v in fit_af.items():
            col0 = fit_sm[k] if k in fit_sm else np.full(m, np.nan)
            fit[k] = np.concatenate([col0[:, None].astype(v.dtype), v.reshape(m, icd.N_AF)], axis=1)
        saturated = np.concatenate([(sm >= icd.ADC_MAX_ADU).any(axis=1)[:, None],
                                    (af >= icd.ADC_MAX_ADU).any(axis=(2, 3))], axis=1)
        not_read = np.concatenate([sm_not_read[:, None, :], af_not_read.any(axis=3)], axis=1)
    fit["flags"] = fit["flags"] | np.where(saturated, ipd.FLAG_SATURATED, 0).astype(fit["flags"].dtype)
    fit["flags"] |= np.where(not_read.any(axis=2), FLAG_TRUNCATED, 0).astype(fit["flags"].dtype)
    # The wavefront sensor's row has no AF1 CCD: that window is no image (dropped from the CCD table).
    no_ccd = np.zeros((m, 10), dtype=bool)
    no_ccd[:, 1 + geometry.AF_STRIPS.index(geometry.WFS_STRIP)] = row == geometry.WFS_ROW
    fit["flags"] = np.where(no_ccd, 0, fit["flags"]).astype(fit["flags"].dtype)
    fit["no_ccd"] = no_ccd
    image = ~no_ccd.ravel()[hit_window]
    fit["flags"] = second_image.classify(fit["flags"], fit["al_px"], fit["ac_px"], hit_window[image], hit_al[image],
                                         hit_ac[image], hit_half[image])
    throughput = ccd.at("throughput", index)
    fit["flux_e"] = fit["flux_e"] / throughput
    fit["flux_e_err"] = fit["flux_e_err"] / throughput
    fit["al_offset_px"] = ccd.al_offset_px(index, ac_pixel)
    return fit


def _fit_1d(samples_e: np.ndarray, not_read: np.ndarray, var: np.ndarray, sigma_px: float) -> dict[str, np.ndarray]:
    """:func:`pipeline.ipd.fit_images` of 1D windows (m, n) with their samples not read out (``not_read``) left out:
    the runs of them at a window's start and end by fitting only the samples between (shifted to the start of
    the row, the centre shifted back), any other by the mask. Masking a leading run instead misleads the fit's
    moment start, which reads a masked sample as its nearest read neighbour: a run of copies of the star's
    first read samples wins its brightest-3 search (ties go to the first), and from there the fit slides into
    the masked samples (measured: half of the G 19.5 windows missing their first 5 of 12 samples failed so)."""
    n = samples_e.shape[1]
    read = ~not_read
    lead = np.where(read.any(axis=1), np.argmax(read, axis=1), n)
    tail = np.where(read.any(axis=1), np.argmax(read[:, ::-1], axis=1), 0)
    at = np.minimum(np.arange(n)[None, :] + lead[:, None], n - 1)
    if lead.any():
        samples_e = np.take_along_axis(samples_e, at, axis=1)
        not_read = np.take_along_axis(not_read, at, axis=1)
    fit = ipd.fit_images(np.ascontiguousarray(samples_e), (n - lead - tail).astype(np.int32), var, sigma_px,
                         mask=not_read.astype(np.uint8), cosmic_sigma=ipd.COSMIC_SIGMA, return_mask=True)
    fit["al_px"] = fit["al_px"] + lead
    if lead.any():  # the mask back in the window's frame (the samples before the first read one: not read)
        back = np.arange(n)[None, :] - lead[:, None]
        fit["mask"] = np.where(back >= 0, np.take_along_axis(fit["mask"], np.maximum(back, 0), axis=1),
                               ipd.MASK_GIVEN).astype(np.uint8)
    return fit


def _debias(fit: dict[str, np.ndarray], sigma_px: float) -> None:
    """Remove from the fluxes (and their errors) of 1D fits the bias of fitting their centre as well
    (:func:`pipeline.ipd.debias_flux`: +1.4 % at G ~ 21, nothing for bright stars)."""
    debiased = ipd.debias_flux(fit["flux_e"], fit["al_px_err"], sigma_px)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(fit["flux_e"] != 0, debiased / fit["flux_e"], 1.0)
    fit["flux_e"] = debiased
    fit["flux_e_err"] = fit["flux_e_err"] * ratio


#: CCD columns of the AC fit, written only when :data:`pipeline.schemas.CCD` has them (nullable: null
#: for 1D windows).
_AC_COLUMNS = {"ac_px": np.float64, "ac_px_err": np.float32}


#: Time of each window strip's centre line after AF1's, ns, per FoV (rows: FoV 1 with SM1, FoV 2 with SM2).
_WINDOW_OFFSET_NS = np.array([[geometry.STRIP_OFFSET_NS[sm], *(geometry.STRIP_OFFSET_NS[a] for a in geometry.AF_STRIPS)]
                              for sm in ("SM1", "SM2")])


def observation_times(transit_id: np.ndarray, fov: np.ndarray, al_px: np.ndarray, n_samples: int,
                      al_offset_px: np.ndarray | float = 0.0) -> np.ndarray:
    """(m, 10) times, ns, at which each window's image crossed its CCD's fiducial line: the transit id's time,
    the strip's offset from AF1 and the fitted centre's place in the window (the window is centred on the
    predicted crossing), plus the CCD's own along-scan displacement ``al_offset_px`` (the geometric
    calibration, :mod:`pipeline.ccdcal`). -1 where the centre is not finite."""
    t_ref = icd.decode_transit_id(np.asarray(transit_id, dtype=np.int64))[0]
    offset_px = np.asarray(al_px, dtype=np.float64) - 0.5 * (n_samples - 1) + al_offset_px
    ok = np.isfinite(offset_px)
    t = (t_ref[:, None] + _WINDOW_OFFSET_NS[np.asarray(fov) - 1]
         + np.rint(np.where(ok, offset_px, 0.0) * geometry.TDI_PERIOD_NS).astype(np.int64))
    return np.where(ok, t, -1)


def ccd_table(transit_id: np.ndarray, fov: np.ndarray, fit: dict[str, np.ndarray], n_samples: int) -> pa.Table:
    obmt = observation_times(transit_id, fov, fit["al_px"], n_samples, fit.get("al_offset_px", 0.0)).ravel()
    cols = {
        "transit_id": np.repeat(transit_id, 10),
        "strip": schemas.ccd_strips(fov),
        "obmt_ns": pa.array(obmt, mask=obmt < 0),
        "al_px": fit["al_px"].ravel(),
        "al_px_err": fit["al_px_err"].ravel().astype(np.float32),
        "flux_e": fit["flux_e"].ravel().astype(np.float32),
        "flux_e_err": fit["flux_e_err"].ravel().astype(np.float32),
        "bg_e": fit["bg_e"].ravel().astype(np.float32),
        "chi2": fit["chi2"].ravel().astype(np.float32),
        "flags": fit["flags"].ravel().astype(np.int32),
    }
    for name, dtype in _AC_COLUMNS.items():
        if name in schemas.CCD.names:
            values = fit[name].ravel().astype(dtype)
            cols[name] = pa.array(values, mask=np.isnan(values))
    table = pa.table(cols, schema=schemas.CCD)
    no_ccd = fit.get("no_ccd")
    return table.filter(pa.array(~no_ccd.ravel())) if no_ccd is not None and no_ccd.any() else table


def transit_rows(records: np.ndarray, window_class: int, fit: dict[str, np.ndarray], cal: Calibration,
                 att_t_ns: np.ndarray, att_q: np.ndarray) -> dict[str, np.ndarray]:
    """Per-transit columns (everything in schemas.TRANSITS but the crossmatch ones)."""
    payload = records["payload"]
    tid = payload["transit_id"].astype(np.int64)
    t_ref, fov, row, ac_px = icd.decode_transit_id(tid)
    n = icd.WINDOW_SAMPLES[window_class]
    af = slice(1, 10)
    # A window whose cosmic-ray hit was masked and refitted is good (FLAG_COSMIC is informative), and so is one
    # whose samples not read out (FLAG_TRUNCATED) or whose blend's second image (FLAG_SECOND_IMAGE) were masked.
    ok = (fit["flags"][:, af] & ~(ipd.FLAG_COSMIC | FLAG_TRUNCATED | FLAG_SECOND_IMAGE)) == 0
    if "no_ccd" in fit:
        ok &= ~fit["no_ccd"][:, af]
    n_ok = ok.sum(axis=1)
    good = n_ok >= MIN_AF_OK
    safe_n = np.maximum(n_ok, 1)
    # AL: mean offset of the AF images from their window centres, in TDI periods -> AF1 crossing time.
    # (each image's place in its window plus its CCD's calibrated displacement: pipeline.ccdcal).
    displaced = fit["al_px"][:, af] - 0.5 * (n - 1) + fit.get("al_offset_px", np.zeros((len(tid), 10)))[:, af]
    offset_px = np.where(ok, displaced, 0.0).sum(axis=1) / safe_n
    obmt_ns = t_ref + np.where(good, np.rint(offset_px * geometry.TDI_PERIOD_NS), 0).astype(np.int64)
    # Photometry: mean AF flux rate (e-/s) -> G (docs/facts.md section 5 uses the ~8.86 AF CCDs per transit).
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
    bp_flux, bp_err = photometry.spectrum_fluxes(payload["bp_adu"], cal, "BP")
    rp_flux, rp_err = photometry.spectrum_fluxes(payload["rp_adu"], cal, "RP")
    bp_mag, bp_mag_err = photometry.magnitudes(bp_flux, bp_err, t_int, cal.zero_point_bp_mag)
    rp_mag, rp_mag_err = photometry.magnitudes(rp_flux, rp_err, t_int, cal.zero_point_rp_mag)
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
        "bp_mag": bp_mag.astype(np.float32),
        "bp_mag_err": bp_mag_err.astype(np.float32),
        "rp_mag": rp_mag.astype(np.float32),
        "rp_mag_err": rp_mag_err.astype(np.float32),
        "n_af_ok": n_ok.astype(np.int8),
        "flags": flags.astype(np.int32),
    }
