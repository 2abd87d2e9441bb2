"""Benchmarks, each a ratio against a baseline measured in the same run (``nox -s bench``).

- decode + CRC (``icd.scan_stream`` + ``icd.decode_packets``) vs ccsdspy's decode (no CRC) of the same
  file of star packets;
- IPD numba fit vs the numpy-vectorised fit of the same windows;
- generation and pipeline throughput of a day at ``--scale``, in transits/s and as a multiple of real
  time (70 M transits a day = 810 transits/s).

Usage: ``python -m gaiasim.bench [--scale 1e-4] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from gaiasim.sim.generate import generate
from gaiasim.spec import make_spec
from pipeline import icd, ipd
from pipeline.run import run

REAL_TIME_TRANSITS_S = 70e6 / 86400.0


def _best_of(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def star_file(path: Path, n: int, rng: np.random.Generator) -> None:
    """A TM file of ``n`` WC2 star packets with random samples."""
    payload = np.zeros(n, dtype=icd.PAYLOADS[icd.APID_STAR_WC2])
    payload["transit_id"] = rng.integers(0, 2**62, n)
    for name in ("sm_adu", "af_adu", "bp_adu", "rp_adu"):
        payload[name] = rng.integers(900, 5000, payload[name].shape)
    rows = icd.encode_packets(icd.APID_STAR_WC2, np.arange(n), np.arange(n) * 1000, payload)
    path.write_bytes(rows.tobytes())


def bench_decode(tmp: Path, n: int = 200_000) -> dict:
    import ccsdspy

    path = tmp / "stars.tm"
    star_file(path, n, np.random.default_rng(1))
    buf = np.fromfile(path, dtype=np.uint8)
    ours = _best_of(lambda: icd.decode_packets(buf, icd.scan_stream(buf), icd.APID_STAR_WC2))
    n_sm = icd.WINDOW_SAMPLES[2]
    fields = [
        ccsdspy.PacketField(name="obmt_ns", data_type="uint", bit_length=64),
        ccsdspy.PacketField(name="transit_id", data_type="uint", bit_length=64),
        ccsdspy.PacketField(name="window_class", data_type="uint", bit_length=8),
        ccsdspy.PacketField(name="gate", data_type="uint", bit_length=8),
        ccsdspy.PacketArray(name="sm_adu", data_type="uint", bit_length=16, array_shape=n_sm),
        ccsdspy.PacketArray(name="af_adu", data_type="uint", bit_length=16, array_shape=(icd.N_AF, n_sm)),
        ccsdspy.PacketArray(name="bp_adu", data_type="uint", bit_length=16, array_shape=icd.SPECTRUM_SAMPLES),
        ccsdspy.PacketArray(name="rp_adu", data_type="uint", bit_length=16, array_shape=icd.SPECTRUM_SAMPLES),
        ccsdspy.PacketField(name="crc", data_type="uint", bit_length=16),
    ]
    pkt = ccsdspy.FixedLength(fields)
    theirs = _best_of(lambda: pkt.load(str(path)))
    return {"packets": n, "ours_s": ours, "ccsdspy_s": theirs, "ratio": theirs / ours,
            "ours_packets_s": n / ours}


def bench_ipd(n: int = 400_000) -> dict:
    rng = np.random.default_rng(2)
    k = np.arange(12)
    centre = 5.5 + rng.uniform(-0.5, 0.5, n)
    from pipeline.lsf import lsf_profile

    expected = 20.0 + 1e4 * lsf_profile(k[None, :] - centre[:, None], 1.0)
    samples = rng.poisson(expected).astype(np.float64)
    m = np.full(n, 12, dtype=np.int32)
    var = np.full(n, 4.3**2)
    ipd.fit_images(samples[:10], m[:10], var[:10])  # compile
    ours = _best_of(lambda: ipd.fit_images(samples, m, var))
    theirs = _best_of(lambda: ipd.fit_images_numpy(samples, m, var), repeat=1)
    return {"windows": n, "numba_s": ours, "numpy_s": theirs, "ratio": theirs / ours, "numba_windows_s": n / ours}


def bench_day(tmp: Path, scale: float) -> dict:
    spec = make_spec(name="bench", scale=scale, seed=5)
    t = time.perf_counter()
    manifest = generate(spec, tmp / "dataset")
    t_gen = time.perf_counter() - t
    t = time.perf_counter()
    run(tmp / "dataset", tmp / "run")
    t_run = time.perf_counter() - t
    n = manifest["counts"]["transits"]
    return {"scale": scale, "transits": n, "generate_s": t_gen, "run_s": t_run,
            "generate_transits_s": n / t_gen, "run_transits_s": n / t_run,
            "run_x_real_time": n / t_run / REAL_TIME_TRANSITS_S}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gaiasim.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1e-4, help="scale of the day to time (default 1e-4)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="gaiasim-bench-") as tmp:
        results["decode_crc_vs_ccsdspy"] = bench_decode(Path(tmp))
        print(f"decode+CRC vs ccsdspy decode (no CRC): {results['decode_crc_vs_ccsdspy']['ratio']:.2f}x "
              f"({results['decode_crc_vs_ccsdspy']['ours_packets_s']:.3g} packets/s)")
        results["ipd_numba_vs_numpy"] = bench_ipd()
        print(f"IPD numba vs numpy-vectorised: {results['ipd_numba_vs_numpy']['ratio']:.2f}x "
              f"({results['ipd_numba_vs_numpy']['numba_windows_s']:.3g} windows/s)")
        results["day"] = bench_day(Path(tmp), args.scale)
        d = results["day"]
        print(f"day at scale {d['scale']:g}: {d['transits']} transits; generate {d['generate_transits_s']:.3g} "
              f"transits/s, run {d['run_transits_s']:.3g} transits/s = {d['run_x_real_time']:.1f}x real time")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
