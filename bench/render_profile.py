"""Where the window renderer's time goes (issue #7: the generation target's profile), one thread.

    PYTHONPATH=. python bench/render_profile.py [--slice 301] [--scale 1.0]

Finds the transits of one 80-s slice of the bench day (seed 5; slice 301 of a scale-1 day crosses dense sky,
~59,000 transits) and renders the 1D windows (SM + AF1..AF9, 12 samples) of its faint (WC2) transits with
``kernels_signal._render_windows`` and with a copy of its loop whose parts can be switched off: cosmic-ray
hits, the pixel-integrated PSF profile, the Poisson photon noise and the normal read noise. Prints ns per
sample, best of 5, for each. A part's cost is the difference it makes (they share the loop, so the parts do
not add up exactly). Then the BP spectrum renderer (60 samples; RP is alike) the same way.

Measured 2026-11-27 on the project's 2-core machine (56,060 of the slice's 59,047 transits are faint):
windows 40.2 ns a sample (the copy with every part: 40.8); with no part 3.4, cosmic-ray hits alone 3.9 (they
cost ~6.6 ns a sample before they stopped allocating two lists a window: 46.0 ns in all), the PSF profile
alone 9.1, Poisson alone 29.6, normal alone 8.6. Spectra 29.5 ns a sample: Poisson alone 22.7 (means of
~33 e-, table driven), normal alone 7.1. The Poisson deviates take two thirds of the windows' time and
three quarters of the spectra's.

Measured again the same day after the Poisson sampler's alias tables were packed (one cache line a draw)
and the PSF profile's Hermite weights computed once a window: windows **35.4** ns a sample (copy 36.1); none
2.5, cosmic-ray hits alone 3.2, profile alone **5.0**, Poisson alone 29.0, normal alone 9.1. Spectra
**23.9** (Poisson alone 18.2, normal alone 7.2). The same deviates and bytes as before.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from gaiasim.sim import downlink, faults, signal, slices, variability
from gaiasim.sim import generate as gen
from gaiasim.sim import kernels_signal as ks
from gaiasim.sim.kernels_random import mix64, normal, poisson, stream_key, uniform
from gaiasim.sim.timescale import obmt_ns_from_date
from gaiasim.spec import make_spec
from pipeline import geometry, icd
from pipeline.calibration import DEFAULT as CAL

COSMIC, PROFILE, POISSON, NORMAL = 1, 2, 4, 8
_GAIN, _BIAS = CAL.gain_adu_per_e, float(CAL.bias_adu)  # plain numbers for the kernels below


@numba.njit(parallel=True)
def _windows(parts, seed, transit_id, flux_e, bg_e, centre_px, jitter_px, read_noise_e, cosmic_lam, cosmic_params,
             adu_out):
    """``kernels_signal._render_windows`` with its parts switched by the bits of ``parts``."""
    m, s, n = adu_out.shape
    for i in numba.prange(m):
        key = stream_key(seed, transit_id[i])
        profile = np.full(n, 0.1)
        for j in range(s):
            kappa = centre_px[i] + (2.0 * uniform(key, j) - 1.0) * jitter_px
            total = 0.0
            i0, e0, i1, e1, i2, e2, i3, e3 = -1, 0.0, -1, 0.0, -1, 0.0, -1, 0.0
            if parts & COSMIC:
                i0, e0, i1, e1, i2, e2, i3, e3, total = ks._cosmic_hits(
                    key, j, cosmic_lam[i], n, 1, cosmic_params[0], cosmic_params[1], cosmic_params[2],
                    cosmic_params[3], cosmic_params[4])
            if parts & PROFILE:
                ks._pixel_profile(kappa, 1.0, profile)
            counter = (j + 1) * ks._STRIP_COUNTER
            for k in range(n):
                e = 0.0
                if parts & POISSON:
                    e, counter = poisson(bg_e[i] + flux_e[i] * profile[k], key, counter)
                if parts & NORMAL:
                    z, counter = normal(key, counter)
                    e += read_noise_e[j] * z
                if total > 0.0:
                    e += ks._cosmic_at(k, i0, e0, i1, e1, i2, e2, i3, e3)
                adu_out[i, j, k] = ks._digitise(e, _GAIN, _BIAS, 65535)


@numba.njit(parallel=True)
def _spectra(parts, seed, transit_id, flux_e, bg_e, shape, read_noise_e, adu_out):
    """``kernels_signal._render_spectra`` with its Poisson and normal draws switched by ``parts``."""
    m, n = adu_out.shape
    for i in numba.prange(m):
        key = stream_key(seed, transit_id[i]) ^ mix64(np.uint64(1))
        counter = 0
        for k in range(n):
            e = z = 0.0
            if parts & POISSON:
                e, counter = poisson(bg_e[i] + flux_e[i] * shape[k], key, counter)
            if parts & NORMAL:
                z, counter = normal(key, counter)
            adu_out[i, k] = ks._digitise(e + read_noise_e * z, _GAIN, _BIAS, 65535)


def _best_ns(call, samples: int) -> float:
    call()  # compile
    times = []
    for _ in range(5):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return min(times) / samples * 1e9


def slice_transits(scale: float, k: int, work: Path) -> dict[str, np.ndarray]:
    """Phase A of slice ``k`` of the bench day (seed 5) at ``scale``."""
    spec = make_spec(scale=scale, seed=5)
    t0 = obmt_ns_from_date(spec.date)
    t1 = t0 + 86_400_000_000_000
    passes = downlink.pass_schedule(spec.date, 1, t0)
    ctx = slices.SliceContext(spec.seed, scale, t0, t1, gen.slice_bounds(t0, t1, scale),
                              tuple(p.start_ns for p in passes), tuple(p.name for p in passes), faults.FaultPlan(),
                              str(work), str(work / ".work"), variability.VariabilityPlan())
    (work / ".work" / "transits").mkdir(parents=True)
    slices.find_slice_transits(ctx, k)
    with np.load(work / ".work" / "transits" / f"{k:05d}.npz") as f:
        return {key: f[key] for key in f.files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slice", type=int, default=301)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    numba.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="render-profile-"))
    try:
        tr = slice_transits(args.scale, args.slice, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    faint = signal.window_class_of(tr["g_mag"]) == 2
    g, tid = tr["g_mag"][faint], tr["transit_id"][faint].astype(np.int64)
    m = len(tid)
    t_int = signal.integration_s(signal.gate_of(g))
    flux = 10.0 ** (-0.4 * (g - CAL.zero_point_g_mag)) * t_int
    bg = signal.SKY_BG_E_PER_PX_S * signal.AC_BINNING_PX * t_int
    centre = 5.5 + (tr["obmt_ns"][faint] - icd.decode_transit_id(tid)[0]) / geometry.TDI_PERIOD_NS
    read_noise = np.array([CAL.read_noise_e[s] for s in ("SM1", *geometry.AF_STRIPS)])
    lam = signal.COSMIC_FLUX_PER_CM2_S * signal.PIXEL_AREA_CM2 * 12 * icd.WINDOW_AC_PX * t_int  # as make_windows
    cosmic = np.array([signal.COSMIC_MPV_E, signal.COSMIC_WIDTH_E, signal.COSMIC_MIN_E, signal.COSMIC_MAX_E,
                       signal.COSMIC_SPLIT_PROB])
    adu = np.empty((m, 10, 12), np.uint16)
    al, cos_e = np.empty((m, 10)), np.empty((m, 10))
    samples = m * 120
    print(f"slice {args.slice} at scale {args.scale:g}: {len(tr['g_mag'])} transits, {m} faint (WC2); windows, "
          "ns a sample:")
    jitter = signal.WINDOW_JITTER_PX
    real = _best_ns(lambda: ks._render_windows(5, tid, flux, bg, centre, jitter, read_noise, 1.0, CAL.gain_adu_per_e,
                                               CAL.bias_adu, 65535, 0, lam, cosmic, al, cos_e, adu), samples)
    print(f"  kernels_signal._render_windows: {real:.1f}")
    for name, parts in (("all parts", 15), ("none", 0), ("cosmic-ray hits only", COSMIC), ("profile only", PROFILE),
                        ("Poisson only", POISSON), ("normal only", NORMAL), ("all but cosmic-ray hits", 14)):
        ns = _best_ns(lambda p=parts: _windows(p, 5, tid, flux, bg, centre, jitter, read_noise, lam, cosmic, adu),
                      samples)
        print(f"  {name}: {ns:.1f}")
    shape = CAL.spectrum_profile(60)
    g_bp, _ = signal.bp_rp_mags(g, tr["bp_rp"][faint])
    f_bp = 10.0 ** (-0.4 * (g_bp - CAL.zero_point_bp_mag)) * t_int
    spectra = np.empty((m, 60), np.uint16)
    print("BP spectra, ns a sample:")
    real = _best_ns(lambda: ks._render_spectra(5, 1, tid, f_bp, bg, shape, CAL.read_noise_e["BP"], CAL.gain_adu_per_e,
                                               CAL.bias_adu, 65535, spectra), m * 60)
    print(f"  kernels_signal._render_spectra: {real:.1f}")
    for name, parts in (("Poisson only", POISSON), ("normal only", NORMAL)):
        ns = _best_ns(lambda p=parts: _spectra(p, 5, tid, f_bp, bg, shape, CAL.read_noise_e["BP"], spectra), m * 60)
        print(f"  {name}: {ns:.1f}")


if __name__ == "__main__":
    main()
