"""Focal-plane signal: windows of samples (ADU) for each transit, with their simulated image parameters.

Physics (docs/facts.md section 2 and 5): window classes by magnitude, TDI gating for bright stars, a Gaussian
LSF of 1 AL pixel integrated over each sample (the instrument's own, :mod:`gaiasim.sim.instrument`), a flat
sky background, Poisson photon noise, Gaussian read noise per strip (Hambly+2018), the 0.258 ADU/e- gain, an
electronic offset and 16-bit saturation. WC0 (G < 13) AF windows are 2D, 18 AL x 12 AC pixels unbinned, with a
separable Gaussian PSF of 1 pixel in each direction (docs/facts.md section 5: "the AL and AC LSFs are both
about sigma = 1 pixel") integrated over each pixel. Cosmic rays hit every window at a rate set by the particle
flux, the window area and its integration time (:data:`COSMIC_FLUX_PER_CM2_S`). The nominal instrument is
:mod:`gaiasim.sim.instrument.electronics`; the true, imperfect one (straylight, per-CCD detectors and LSFs,
CTI, basic-angle variation, CCD geometry, contamination) :mod:`gaiasim.sim.instrument.realism`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from gaiasim.sim import kernels_random
from gaiasim.sim import kernels_signal as _ks
from gaiasim.sim.instrument import focal_plane as geometry
from gaiasim.sim.instrument import realism
from gaiasim.sim.instrument.electronics import Electronics
from pipeline import icd, schemas

#: Sky background, e- per pixel per second [U placeholder: a dark-sky AF background of order 1 e-/px/s].
SKY_BG_E_PER_PX_S = 0.5
#: AC pixels binned into one AL sample of a 1D window (docs/facts.md section 2).
AC_BINNING_PX = realism.AC_BINNING_PX
#: Onboard window placement error along scan, uniform +-, pixels [U]: the window is centred on the
#: onboard prediction of each strip's crossing, which carries attitude and propagation errors.
WINDOW_JITTER_PX = 0.3
#: Gate chosen by G: (G below which it is used, gate), brightest first. [U] thresholds (docs/facts.md 2),
#: set so that the peak sample stays under 16-bit saturation down to G ~ 7.4 with this LSF.
GATE_BY_G = ((9.8, 5), (11.3, 7), (12.6, 9))
#: BP/RP colour relations [U]: G - G_RP = 0.6 (BP-RP), so G_BP = G_RP + (BP-RP).
G_MINUS_RP_PER_BPRP = 0.6

#: Onboard window placement error across scan (2D windows), uniform +-, AC pixels [U]: the AC image motion
#: (up to ~1 AC px/s, docs/facts.md section 1) is tracked by the onboard window propagation to this accuracy.
WINDOW_AC_JITTER_PX = 0.3

# Cosmic rays [U placeholders]. Rate: ~5 particles/cm^2/s at L2 (galactic cosmic rays plus quiet-Sun
# protons, [U]) over the window's pixel area (10 x 30 um = 3e-6 cm^2 per pixel, docs/facts.md section 2) and
# its integration time (4.42 s ungated, less when gated): a 18 x 12 pixel window gets 5 x 6.5e-4 x 4.42
# = 0.014 hits, a 12 x 12 window 0.0095, i.e. ~1 % of ungated windows. Deposit: Landau-like (Moyal),
# most probable ~800 e- (a minimum-ionising track through ~10 um of silicon at ~80 e-/um, with oblique
# paths longer) [U], tail to several thousand e-, in 1-2 adjacent samples.
#: Particle flux at L2, per cm^2 per s [U].
COSMIC_FLUX_PER_CM2_S = 5.0
#: Pixel area, cm^2 (10 x 30 um, docs/facts.md section 2).
PIXEL_AREA_CM2 = 10e-4 * 30e-4
#: Moyal deposit: most probable value and width, e- [U]; clipped to [min, max] e-.
COSMIC_MPV_E, COSMIC_WIDTH_E = 800.0, 250.0
COSMIC_MIN_E, COSMIC_MAX_E = 200.0, 20000.0
#: Probability that a hit shares its charge with one adjacent sample [U].
COSMIC_SPLIT_PROB = 0.5

#: Strips read in a star packet, in packet order (SM first, then AF1..AF9).
WINDOW_STRIPS = ("SM", *geometry.AF_STRIPS)

TRUTH_CCD = pa.schema(
    [
        pa.field("transit_id", pa.int64(), nullable=False),
        pa.field("strip", schemas.STRIP_TYPE, nullable=False),
        pa.field("al_px", pa.float64(), nullable=False, metadata={"unit": "px", "doc": "pipeline.schemas frame"}),
        pa.field("flux_e", pa.float32(), nullable=False, metadata={"unit": "e-"}),
        pa.field("bg_e", pa.float32(), nullable=False, metadata={"unit": "e-", "doc": "per sample"}),
        pa.field("ac_px", pa.float64(), nullable=True,
                 metadata={"unit": "px", "doc": "AC image centre in the window frame (2D windows; null for 1D)"}),
        pa.field("cosmic_e", pa.float32(), nullable=True,
                 metadata={"unit": "e-", "doc": "cosmic-ray electrons deposited in the window (0 when none)"}),
        pa.field("cti_px", pa.float32(), nullable=False,
                 metadata={"unit": "px", "doc": "AL displacement of the recorded image by CTI and the LSF's "
                                                 "chromatic shift (not in al_px)"}),
        pa.field("cti_loss_e", pa.float32(), nullable=False,
                 metadata={"unit": "e-", "doc": "charge lost by CTI (flux_e is before the loss)"}),
        pa.field("obmt_ns", pa.int64(), nullable=False,
                 metadata={"unit": "ns", "doc": "crossing of the CCD's fiducial line"}),
    ]
)


def _nominal_windows(cal: Electronics, flux_e: np.ndarray, m: int) -> dict[str, np.ndarray]:
    """The per-window arrays of :meth:`realism.InstrumentState.windows` for the nominal instrument."""
    shape = (m, len(WINDOW_STRIPS))
    zeros = np.zeros(shape)
    read_noise = np.array([cal.read_noise_e[s] for s in ("SM1", *geometry.AF_STRIPS)])
    return {"gain": np.full(shape, cal.gain_adu_per_e), "bias": np.full(shape, cal.bias_adu),
            "read_noise": np.broadcast_to(read_noise, shape), "sigma_px": np.full(shape, cal.lsf_sigma_px),
            "flux_e": np.repeat(flux_e[:, None], shape[1], axis=1), "shift_px": zeros, "geometry_px": zeros,
            "cti_loss": zeros, "cti_px": zeros, "wing_fraction": 0.0, "wing_scale": 1.0}


def bp_rp_mags(g_mag: np.ndarray, bp_rp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(G_BP, G_RP) of sources of G and colour BP-RP (the colour relation above)."""
    g_rp = np.asarray(g_mag) - G_MINUS_RP_PER_BPRP * np.asarray(bp_rp)
    return g_rp + bp_rp, g_rp


def window_class_of(g_mag: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.array(icd.WINDOW_CLASS_G_MAX), np.asarray(g_mag), side="right").astype(np.int8)


def gate_of(g_mag: np.ndarray) -> np.ndarray:
    gate = np.zeros(len(g_mag), dtype=np.int8)
    for g_max, code in reversed(GATE_BY_G):
        gate[np.asarray(g_mag) < g_max] = code
    return gate


def integration_s(gate: np.ndarray) -> np.ndarray:
    lookup = np.zeros(max(icd.GATE_INTEGRATION_S) + 1)
    for code, seconds in icd.GATE_INTEGRATION_S.items():
        lookup[code] = seconds
    return lookup[np.asarray(gate)]


@dataclass(frozen=True)
class StarWindows:
    """Payloads of one window class, and the simulated image parameters of their CCD windows."""

    apid: int
    payload: np.ndarray  # icd.PAYLOADS[apid] records, in the order of ``index``
    index: np.ndarray  # rows of the input transits these payloads belong to
    truth_ccd: pa.Table


def make_windows(
    seed: int,
    transit_id: np.ndarray,
    t_offset_px: np.ndarray,
    fov: np.ndarray,
    g_mag: np.ndarray,
    bp_rp: np.ndarray,
    cal: Electronics,
    ac_offset_px: np.ndarray | None = None,
    state: realism.InstrumentState | None = None,
    window_class: np.ndarray | None = None,
    gate: np.ndarray | None = None,
    blend: dict[str, np.ndarray] | None = None,
    not_read: np.ndarray | None = None,
) -> list[StarWindows]:
    """Star-packet payloads for transits, grouped by window class.

    ``t_offset_px`` is the AF1 crossing time after the transit_id's quantised OBMT, in TDI periods: the
    sub-pixel phase of the image in its window. ``ac_offset_px`` is the source's AC position relative
    to the centre of the transit id's AC pixel, in AC pixels ([-0.5, 0.5)); when None it is drawn
    uniformly from each transit's stream. ``state`` is the true, imperfect instrument
    (:mod:`gaiasim.sim.instrument.realism`); None renders the nominal instrument ``cal`` exactly, on a
    flat background of :data:`SKY_BG_E_PER_PX_S`. The noise of each transit comes from its own
    counter-based random stream (``kernels_random``), keyed by ``seed`` and its transit id. ``window_class``
    and ``gate``: those the on-board VPU chose (:mod:`gaiasim.sim.vpu`, from its estimate of G); None: those
    of ``g_mag``. ``blend``: a second image in each window (a blend below the resolution limit, from
    :func:`gaiasim.sim.vpu.on_board`): arrays ``g_mag`` (NaN: none), ``bp_rp``, ``d_al_px`` and ``d_ac_px``
    (its offset from the first, px); its flux joins the SM, AF, BP and RP windows. ``not_read`` (m, 2): the
    AL samples of a truncated window not read out at its start and at its end, sent as
    :data:`pipeline.icd.NOT_READ_ADU` in the SM and every AF window (truth_ccd keeps the image as rendered).
    """
    wclass = window_class_of(g_mag) if window_class is None else np.asarray(window_class, dtype=np.int8)
    gate = gate_of(g_mag) if gate is None else np.asarray(gate, dtype=np.int8)
    t_int_s = integration_s(gate)
    shape = cal.spectrum_profile(icd.SPECTRUM_SAMPLES)
    t_ref, _, row, ac_pixel = icd.decode_transit_id(np.asarray(transit_id, dtype=np.int64))
    out = []
    for wc, n_samples in icd.WINDOW_SAMPLES.items():
        sel = np.flatnonzero(wclass == wc)
        m = len(sel)
        if m == 0:
            continue
        n_strips = len(WINDOW_STRIPS)
        tid = np.ascontiguousarray(transit_id[sel], dtype=np.int64)
        flux_e = 10.0 ** (-0.4 * (g_mag[sel] - cal.zero_point_g_mag)) * t_int_s[sel]
        t_ns = t_ref[sel] + np.rint(t_offset_px[sel] * geometry.TDI_PERIOD_NS).astype(np.int64)
        if state is None:
            win = _nominal_windows(cal, flux_e, m)
            bg_px = np.full(m, SKY_BG_E_PER_PX_S) * t_int_s[sel]
        else:
            win = state.windows(fov[sel], row[sel], ac_pixel[sel], t_ns, bp_rp[sel], flux_e, t_int_s[sel])
            bg_px = win["bg_e_px"]
        bg_e = bg_px * AC_BINNING_PX
        rendered_flux = win["flux_e"] * (1.0 - win["cti_loss"])
        # The second image of a blend: its flux relative to the first's (0: none), where it lies.
        ratio, d_al, d_ac = np.zeros(m), np.zeros(m), np.zeros(m)
        if blend is not None:
            g2 = np.asarray(blend["g_mag"], dtype=np.float64)[sel]
            two = np.isfinite(g2)
            ratio[two] = 10.0 ** (-0.4 * (g2[two] - np.asarray(g_mag, dtype=np.float64)[sel][two]))
            d_al[two] = np.asarray(blend["d_al_px"], dtype=np.float64)[sel][two]
            d_ac[two] = np.asarray(blend["d_ac_px"], dtype=np.float64)[sel][two]
        centre = 0.5 * (n_samples - 1) + t_offset_px[sel]
        n_ac = icd.WINDOW_AC_SAMPLES[wc]
        # Hits per window: flux x pixel area of the window (all its AC pixels) x integration time.
        lam = COSMIC_FLUX_PER_CM2_S * PIXEL_AREA_CM2 * n_samples * icd.WINDOW_AC_PX * t_int_s[sel]
        cosmic = np.array([COSMIC_MPV_E, COSMIC_WIDTH_E, COSMIC_MIN_E, COSMIC_MAX_E, COSMIC_SPLIT_PROB])
        al_px = np.empty((m, n_strips))
        ac_px = np.full((m, n_strips), np.nan)
        cosmic_e = np.empty((m, n_strips))
        adu = np.empty((m, n_strips, n_samples), dtype=np.uint16)
        # The SM (and every strip of a 1D class) is AC-binned; WC0 AF windows are rendered in 2D below.
        s_1d = n_strips if n_ac == 1 else 1
        cols = slice(0, s_1d)
        _ks._render_windows(seed, tid, rendered_flux[:, cols], bg_e, centre, WINDOW_JITTER_PX, win["shift_px"][:, cols],
                            win["cti_px"][:, cols], win["read_noise"][:, cols], win["sigma_px"][:, cols],
                            win["wing_fraction"], win["wing_scale"], win["gain"][:, cols], win["bias"][:, cols],
                            icd.ADC_MAX_ADU, 0, lam, cosmic, ratio, d_al, al_px[:, :s_1d], cosmic_e[:, :s_1d],
                            adu[:, :s_1d])
        if n_ac > 1:
            if ac_offset_px is None:
                phase = kernels_random.uniform_array(seed, tid, _ks.AC_PHASE_COUNTER) - 0.5
            else:
                phase = np.asarray(ac_offset_px, dtype=np.float64)[sel]
            ac_centre = 0.5 * (n_ac - 1) + phase
            # The AC PSF width in AC pixels equals the AL one in AL pixels: the 1:3 pixel aspect cancels
            # the 3:1 aperture (docs/facts.md section 5).
            adu_2d = np.empty((m, n_strips - 1, n_samples, n_ac), dtype=np.uint16)
            af = slice(1, None)
            _ks._render_windows_2d(seed, tid, rendered_flux[:, af], bg_e / icd.WINDOW_AC_PX, centre, ac_centre,
                                   WINDOW_JITTER_PX, WINDOW_AC_JITTER_PX, win["shift_px"][:, af], win["cti_px"][:, af],
                                   win["read_noise"][:, af], win["sigma_px"][:, af], win["wing_fraction"],
                                   win["wing_scale"], win["gain"][:, af],
                                   win["bias"][:, af], icd.ADC_MAX_ADU, 1, lam, cosmic, ratio, d_al, d_ac,
                                   al_px[:, 1:], ac_px[:, 1:], cosmic_e[:, 1:], adu_2d)

        payload = np.zeros(m, dtype=icd.star_payload_dtype(wc))
        payload["transit_id"] = tid
        payload["window_class"] = wc
        payload["gate"] = gate[sel]
        payload["sm_adu"] = adu[:, 0, :]
        # No AF1 CCD in the wavefront sensor's row: its window is empty (0 ADU, the ICD's marker).
        wfs = np.asarray(row[sel]) == geometry.WFS_ROW
        if n_ac == 1:
            adu[wfs, 1 + geometry.AF_STRIPS.index(geometry.WFS_STRIP)] = icd.NOT_READ_ADU
        else:
            adu_2d[wfs, geometry.AF_STRIPS.index(geometry.WFS_STRIP)] = icd.NOT_READ_ADU
        if not_read is not None:  # truncated windows: the samples facing a brighter window are not read out
            cut = np.asarray(not_read, dtype=np.int64)[sel]
            k = np.arange(n_samples)
            gone = (k[None, :] < cut[:, :1]) | (k[None, :] >= n_samples - cut[:, 1:2])  # (m, AL samples)
            adu[np.broadcast_to(gone[:, None, :], adu.shape)] = icd.NOT_READ_ADU
            payload["sm_adu"] = adu[:, 0, :]
            if n_ac > 1:
                adu_2d[np.broadcast_to(gone[:, None, :, None], adu_2d.shape)] = icd.NOT_READ_ADU
        payload["af_adu"] = adu[:, 1:, :] if n_ac == 1 else adu_2d
        g_bp, g_rp = bp_rp_mags(g_mag[sel], bp_rp[sel])
        for stream, (band, g_band, zp) in enumerate(
            (("bp", g_bp, cal.zero_point_bp_mag), ("rp", g_rp, cal.zero_point_rp_mag)), start=1
        ):
            spectrum = np.empty((m, icd.SPECTRUM_SAMPLES), dtype=np.uint16)
            f_band = 10.0 ** (-0.4 * (g_band - zp)) * t_int_s[sel]
            if blend is not None and (two := np.isfinite(g2)).any():  # the second image's light, dispersed alike
                g_band2 = bp_rp_mags(g2[two], np.asarray(blend["bp_rp"], dtype=np.float64)[sel][two])[stream - 1]
                f_band[two] += 10.0 ** (-0.4 * (g_band2 - zp)) * t_int_s[sel][two]
            _ks._render_spectra(seed, stream, tid, f_band, bg_e, shape, cal.read_noise_e[band.upper()],
                                cal.gain_adu_per_e, cal.bias_adu, icd.ADC_MAX_ADU, spectrum)
            payload[f"{band}_adu"] = spectrum

        bg_strip = np.repeat(bg_e[:, None], n_strips, axis=1)
        if n_ac > 1:
            bg_strip[:, 1:] /= icd.WINDOW_AC_PX  # per pixel in the 2D windows
        # The time the image crossed each CCD's fiducial line: the window's reference (the transit id's
        # time plus the strip's nominal offset) plus the image's place in it, corrected for the CCD's own
        # displacement (what a pipeline with an exact geometric calibration reports).
        strip_offset_ns = np.array([[geometry.STRIP_OFFSET_NS["SM1" if f == 1 else "SM2"],
                                     *(geometry.STRIP_OFFSET_NS[a] for a in geometry.AF_STRIPS)] for f in (1, 2)])
        crossing_ns = (t_ref[sel][:, None] + strip_offset_ns[np.asarray(fov[sel]) - 1]
                       + np.rint((al_px - 0.5 * (n_samples - 1) + win["geometry_px"]) * geometry.TDI_PERIOD_NS)
                       .astype(np.int64))
        is_wfs = np.zeros((m, n_strips), dtype=bool)
        is_wfs[:, 1 + geometry.AF_STRIPS.index(geometry.WFS_STRIP)] = wfs
        # No CCD, no image: the rows of the WFS row's AF1 go, dropped from the numpy columns (a pyarrow filter
        # of the table costs ~60 ns a row, ~0.6 us a transit).
        image = ~is_wfs.ravel() if is_wfs.any() else slice(None)
        strips = schemas.ccd_strips(fov[sel])
        ac_rows = ac_px.ravel()[image]
        truth = pa.table(
            {
                "transit_id": np.repeat(tid, n_strips)[image],
                "strip": strips if isinstance(image, slice) else strips.filter(pa.array(image)),
                "al_px": al_px.ravel()[image],
                "flux_e": win["flux_e"].ravel()[image].astype(np.float32),
                "bg_e": bg_strip.ravel()[image].astype(np.float32),
                "ac_px": pa.array(ac_rows, mask=np.isnan(ac_rows)),
                "cosmic_e": cosmic_e.ravel()[image].astype(np.float32),
                "cti_px": win["cti_px"].ravel()[image].astype(np.float32),
                "cti_loss_e": (win["flux_e"] * win["cti_loss"]).ravel()[image].astype(np.float32),
                "obmt_ns": crossing_ns.ravel()[image],
            },
            schema=TRUTH_CCD,
        )
        out.append(StarWindows(icd.STAR_APIDS[wc], payload, sel, truth))
    return out
