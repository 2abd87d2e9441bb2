"""The 1D IPD fit on a GPU against the CPU kernel (issue #7): one prepared script for a machine with CUDA.

    PYTHONPATH=. python bench/gpu_ipd.py [--windows 2000000]

Windows are made as ``gaiasim.bench.bench_ipd`` makes them (seed 2: 12 samples, flux 1e4 e-, background
20 e-, centre 5.5 +- 0.5 px, Poisson) and fitted twice, without cosmic-ray rejection (as the bench) and
with the pipeline's (``COSMIC_SIGMA``). For each: the CPU fit (``fit_images``, numba, all threads, best of
3) and the GPU fit (``fit_images(device="cuda")``: copies in and out included, best of 3, after a warm-up
launch that compiles), the kernel alone on arrays already on the GPU (best of 3, per block size), and
the agreement: max |delta al_px| / al_px_err, max relative delta of flux and background, flags and
n_iter equal. Prints one JSON line (also written to ``$OUT/gpu_ipd.json`` when ``OUT`` is set).
Needs numpy, numba with CUDA (numba-cuda) and this repository on the path; nothing from the tests.

Measured once (2026, NVIDIA H100 80GB HBM3, its machine's 16 CPU threads, numba 0.68.0 + numba-cuda 0.30.4,
numpy 2.5.2), ``python3 bench/gpu_ipd.py``, the summary keys of its line (cosmic rejection off):

    {"windows": 2000000, "cpu_s": 0.6939, "gpu_s": 0.07419, "gpu_kernel_s": 0.004826, "ratio": 9.35,
     "ratio_kernel": 143.8, "max_dal_over_err": 8.4e-14, "flags_differ": 0, "n_iter_differ": 0,
     "device": "NVIDIA H100 80GB HBM3", "compute_capability": [9, 0], "cpu_threads": 16}

With ``COSMIC_SIGMA``: cpu_s 0.808, gpu_s 0.0781, kernel 0.00525 s (ratio 10.4, kernel 154). Block sizes 64 /
128 / 256: kernel 4.92 / 4.83 / 5.47 ms. 93.5 % of al_px bit-equal, the rest within 1e-13 of the error; flux
within 6e-16 and background 2e-14 relative. The copies (240 MB in, 128 MB out, from pageable memory) are ~94 % of
gpu_s: the kernel fits ~4e8 windows/s.

Measured again (2026-11-27, same machine and versions) after the LSF moved to the calibration table and the
CPU fit got ~2.2x faster: cpu_s 0.315, gpu_s 0.0955, kernel 0.0188 s (ratio 3.3, kernel 16.7; block sizes 64 /
128 / 256: 19.8 / 18.8 / 13.6 ms), max |dal| / err 1.7e-13, flags and n_iter equal. The table's lookups (6
values a pixel edge at data-dependent rows) cost the GPU more than the erf they replaced. Before the table was
read through one reference (pipeline.lsf.lsf_table_at) the build failed: "File uses too much global constant
data (0x48090 bytes, 0x10000 max)".

Measured again (2026-11-27, same machine and versions) after the fit walks a window's pixel edges with the
table's weights computed once (pipeline.lsf.lsf_walk; the table still read in one function, lsf._rows): cpu_s
0.227, gpu_s 0.101, kernel 0.0148 s (ratio 2.25, kernel 15.4; block sizes 64 / 128 / 256: 15.8 / 14.8 / 13.7
ms), max |dal| / err 8.4e-14, flags and n_iter equal (with COSMIC_SIGMA: cpu_s 0.212, gpu_s 0.105, kernel
0.0156 s).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numba

from pipeline import ipd
from pipeline.lsf import lsf_profile


def make_windows(n: int, seed: int = 2):
    """Windows like ``gaiasim.bench.bench_ipd``: samples (n, 12) e-, n_samples, var_extra_e2."""
    rng = np.random.default_rng(seed)
    k = np.arange(12)
    centre = 5.5 + rng.uniform(-0.5, 0.5, n)
    expected = 20.0 + 1e4 * lsf_profile(k[None, :] - centre[:, None], 1.0)
    samples = rng.poisson(expected).astype(np.float64)
    return samples, np.full(n, 12, dtype=np.int32), np.full(n, 4.3**2)


def best_of(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def agreement(cpu: dict, gpu: dict) -> dict:
    ok = (cpu["flags"] == 0) & (gpu["flags"] == 0)
    d_al = np.abs(gpu["al_px"] - cpu["al_px"])[ok] / cpu["al_px_err"][ok]
    rel = {}
    for name in ("flux_e", "bg_e", "al_px_err"):
        a, b = cpu[name][ok], gpu[name][ok]
        rel[name] = float(np.max(np.abs(b - a) / np.maximum(np.abs(a), 1e-300))) if ok.any() else 0.0
    return {
        "max_dal_over_err": float(d_al.max()) if d_al.size else 0.0,
        "max_rel_dflux": rel["flux_e"],
        "max_rel_dbg": rel["bg_e"],
        "max_rel_dal_err": rel["al_px_err"],
        "flags_differ": int(np.count_nonzero(cpu["flags"] != gpu["flags"])),
        "n_iter_differ": int(np.count_nonzero(cpu["n_iter"] != gpu["n_iter"])),
        "flagged_cpu": int(np.count_nonzero(cpu["flags"])),
        "bit_equal_al_px": int(np.count_nonzero(cpu["al_px"] == gpu["al_px"])),
    }


def measure(samples, n, var, cosmic_sigma: float) -> dict:
    from pipeline.kernels import ipd_cuda

    cuda = ipd_cuda.cuda

    def cpu():
        return ipd.fit_images(samples, n, var, cosmic_sigma=cosmic_sigma)

    def gpu():
        out = ipd.fit_images(samples, n, var, cosmic_sigma=cosmic_sigma, device="cuda")
        cuda.synchronize()
        return out

    cpu_s = best_of(cpu)
    gpu_s = best_of(gpu)
    res_cpu, res_gpu = cpu(), gpu()
    d_in = [cuda.to_device(a) for a in (samples, n, var)]
    kernel = {}
    for tpb in (64, 128, 256):

        def run(tpb=tpb):
            d_mask = cuda.to_device(np.zeros(samples.shape, dtype=np.uint8))
            cuda.synchronize()
            t = time.perf_counter()
            ipd_cuda.launch(*d_in, 1.0, ipd.DEFAULT_MAX_ITER, d_mask, cosmic_sigma, threads_per_block=tpb)
            cuda.synchronize()
            return time.perf_counter() - t

        run()
        kernel[tpb] = min(run() for _ in range(3))
    return {
        "cosmic_sigma": cosmic_sigma,
        "cpu_s": cpu_s,
        "gpu_s": gpu_s,
        "gpu_kernel_s": kernel[ipd_cuda.THREADS_PER_BLOCK],
        "gpu_kernel_s_by_threads_per_block": {str(k): v for k, v in kernel.items()},
        "ratio": cpu_s / gpu_s,
        "ratio_kernel": cpu_s / kernel[ipd_cuda.THREADS_PER_BLOCK],
        **agreement(res_cpu, res_gpu),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=2_000_000)
    args = parser.parse_args(argv)
    from pipeline.kernels import ipd_cuda  # before numba.cuda: it lets numba-cuda 0.30.4 load under numpy 2.5

    cuda = ipd_cuda.cuda

    t = time.perf_counter()
    samples, n, var = make_windows(args.windows)
    gen_s = time.perf_counter() - t
    if numba.config.ENABLE_CUDASIM:  # a dry run of this script without a GPU
        name, cc = "numba CUDA simulator", None
    else:
        dev = cuda.get_current_device()
        name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
        cc = list(dev.compute_capability)
    # Warm-up: compile both fits (numba CPU kernels and the CUDA kernel) outside the timings.
    t = time.perf_counter()
    ipd.fit_images(samples[:64], n[:64], var[:64], cosmic_sigma=ipd.COSMIC_SIGMA, device="cuda")
    cuda_compile_s = time.perf_counter() - t
    t = time.perf_counter()
    ipd.fit_images(samples[:64], n[:64], var[:64], cosmic_sigma=ipd.COSMIC_SIGMA)
    cpu_compile_s = time.perf_counter() - t
    runs = [measure(samples, n, var, cs) for cs in (0.0, ipd.COSMIC_SIGMA)]
    out = {
        "windows": args.windows,
        **{
            k: runs[0][k]
            for k in (
                "cpu_s",
                "gpu_s",
                "gpu_kernel_s",
                "ratio",
                "ratio_kernel",
                "max_dal_over_err",
                "flags_differ",
                "n_iter_differ",
            )
        },
        "runs": runs,
        "device": name,
        "compute_capability": cc,
        "cpu_threads": numba.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "numba": numba.__version__,
        "numpy": np.__version__,
        "generate_s": gen_s,
        "cuda_compile_s": cuda_compile_s,
        "cpu_compile_s": cpu_compile_s,
    }
    line = json.dumps(out)
    print(line, flush=True)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_ipd.json").write_text(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
