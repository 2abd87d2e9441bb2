"""The CUDA build of the 1D IPD fit (pipeline.kernels.ipd_cuda) equals the CPU kernel, without a GPU.

numba's CUDA simulator runs the device functions (the CPU kernels' own Python, rebound) and the kernel
launch as Python; it must be enabled before ``numba.cuda`` is imported, so each check runs in a child
process. Timings and agreement on a real GPU: bench/gpu_ipd.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pipeline import ipd

ROOT = Path(__file__).resolve().parents[2]

# ~50 windows: mixed 12/18 samples, 1e2..1e6 e-, cosmic hits (one or two samples), given masks, padding
# as NaN (never read), and 3 bad inputs (NaN sample, too few unmasked samples, negative variance).
FIT_BOTH = textwrap.dedent(
    """
    import sys
    import numpy as np
    from pipeline import ipd
    from pipeline.lsf import lsf_profile

    rng = np.random.default_rng(7)
    m = 50
    n = rng.choice(np.array([12, 18], dtype=np.int32), m)
    flux = 10.0 ** rng.uniform(2.0, 6.0, m)
    bg = rng.uniform(0.0, 100.0, m)
    kappa = (n - 1) / 2 + rng.uniform(-2.0, 2.0, m)
    k = np.arange(18)
    expected = bg[:, None] + flux[:, None] * lsf_profile(k[None, :] - kappa[:, None], 1.0)
    counts = rng.poisson(expected) + rng.normal(0.0, 4.3, expected.shape)
    samples = np.round(counts * 0.258) / 0.258
    hit = np.flatnonzero(rng.random(m) < 0.3)
    col = rng.integers(0, 12, hit.size)
    samples[hit, col] += rng.uniform(500.0, 5e4, hit.size)
    samples[hit[::2], col[::2] + 1] += 2000.0
    mask = np.zeros(samples.shape, dtype=np.uint8)
    masked = np.flatnonzero(rng.random(m) < 0.3)
    mask[masked, rng.integers(0, 12, masked.size)] = ipd.MASK_GIVEN
    samples[k[None, :] >= n[:, None]] = np.nan
    var = np.full(m, 4.3**2 + (1.0 / 0.258) ** 2 / 12.0)
    samples[0, 3] = np.nan
    mask[1, 3:] = ipd.MASK_GIVEN
    var[2] = -1.0
    out = {}
    for dev in ("cpu", "cuda"):
        res = ipd.fit_images(samples, n, var, mask=mask, cosmic_sigma=ipd.COSMIC_SIGMA, device=dev)
        out.update({f"{dev}_{key}": val for key, val in res.items()})
    np.savez(sys.argv[1], **out)
    """
)


def _child(code: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=environ, cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_cuda_fit_equals_cpu_fit_in_the_simulator(tmp_path):
    path = tmp_path / "fits.npz"
    proc = _child(FIT_BOTH, str(path), NUMBA_ENABLE_CUDASIM="1")
    assert proc.returncode == 0, proc.stderr
    res = np.load(path)
    flags = res["cpu_flags"]
    # The windows exercise every path: clean fits, cosmic-ray refits and bad inputs.
    assert np.count_nonzero(flags == 0) >= 20
    assert np.count_nonzero(flags & ipd.FLAG_COSMIC) >= 5
    assert np.count_nonzero(flags & ipd.FLAG_BAD_INPUT) == 3
    np.testing.assert_array_equal(res["cuda_flags"], flags)
    np.testing.assert_array_equal(res["cuda_n_iter"], res["cpu_n_iter"])
    for name in ("al_px", "al_px_err", "flux_e", "flux_e_err", "bg_e", "bg_e_err", "chi2"):
        np.testing.assert_allclose(
            res[f"cuda_{name}"], res[f"cpu_{name}"], rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=name
        )


def test_importing_the_fit_neither_imports_numba_cuda_nor_needs_a_gpu():
    proc = _child("import sys, pipeline.ipd; assert 'numba.cuda' not in sys.modules, 'numba.cuda imported'")
    assert proc.returncode == 0, proc.stderr


def test_cuda_without_a_gpu_says_so_in_one_line():
    code = (
        "import numpy as np\nfrom pipeline import ipd\n"
        "ipd.fit_images(np.zeros((1, 12)), np.array([12], dtype=np.int32), np.ones(1), device='cuda')"
    )
    proc = _child(code, NUMBA_DISABLE_CUDA="1")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == "ValueError: no CUDA GPU: use device='cpu'"


def test_an_unknown_device_is_refused():
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda'"):
        ipd.fit_images(np.zeros((1, 12)), np.array([12], dtype=np.int32), np.ones(1), device="gpu")
