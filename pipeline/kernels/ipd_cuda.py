"""CUDA build of the 1D IPD fit (``pipeline.kernels.ipd``), behind ``pipeline.ipd.fit_images(device="cuda")``.

The algorithm is not written twice. Each device function is the CPU kernel's own Python function
(``dispatcher.py_func``) re-created with :class:`types.FunctionType` over a copy of its module's globals
in which every jitted helper it names is replaced by that helper's device version, then compiled with
``cuda.jit(device=True)``. Helpers are built first (depth-first over the global names a function's code
uses), so ``_fit_window`` pulls in ``_newton``, ``_mask_cosmics``, ..., and ``lsf_edge`` / ``lsf_table_at`` /
``lsf_walk`` / ``lsf_walk_edge`` / ``_rows`` from ``pipeline.lsf`` rebuilt over that module's globals (``_rows``
is the one function that names the LSF table: one constant-memory copy of it). One kernel, one thread per
window, calls the device ``_fit_window``, which writes slot ``i`` of the outputs exactly as
``_fit_windows``' ``prange`` body does on the CPU; cosmic-ray detections go into the device copy of the mask.

Everything the kernels use has a CUDA lowering (``math.erf``/``log1p``/``exp``/``sqrt``/``isfinite``,
``np.nan``/``np.inf`` as constants, tuple returns, ``abs``, ``float``, row views ``a[i]``, stores at index
``i``) except, on numba's own CUDA target (numba 0.68), the builtins ``min``/``max``: the device
namespace shadows them with two-argument device functions of the same semantics (:func:`_builtins`;
numba-cuda compiles the builtins, and the shadow keeps one build for both). Nothing else is adapted.
CUDA's libdevice ``erf``/``exp``/``log1p`` may differ from the host's libm in the last bits, so on a GPU
the fits agree with the CPU kernel far below their formal errors rather than bit for bit; numba's CUDA
simulator runs the same Python and agrees to rounding.

Importing this module imports ``numba.cuda``; ``pipeline.ipd`` imports it only for ``device="cuda"``.
"""

from __future__ import annotations

import functools
import types

import numpy as np

# numba-cuda 0.30.4 registers an overload of np.row_stack when it loads, and numpy 2.5 removed that alias
# of vstack ("module 'numpy' has no attribute 'row_stack'"); the GPU machines' image pairs the two.
if not hasattr(np, "row_stack"):
    setattr(np, "row_stack", np.vstack)  # noqa: B010 (the attribute itself trips ruff's NPY201)

from numba import cuda

from pipeline.kernels import ipd as _k

#: Threads per block of the fit kernel (one window per thread; the fit is register-bound, not shared-memory).
THREADS_PER_BLOCK = 128

NO_GPU = "no CUDA GPU: use device='cpu'"


def _py_func(obj):
    """The Python function behind a pipeline kernel (a numba dispatcher, or the plain function itself
    under ``NUMBA_DISABLE_JIT=1``), or None for anything else."""
    func = getattr(obj, "py_func", obj)
    if isinstance(func, types.FunctionType) and func.__module__.startswith("pipeline."):
        return func
    return None


def _min2(a, b):
    """Python's (and numba's) two-argument ``min``: the first unless the second is smaller."""
    return b if b < a else a


def _max2(a, b):
    """Python's (and numba's) two-argument ``max``: the first unless the second is larger."""
    return b if b > a else a


def _rebind(func, replacements):
    """``func`` with its globals copied and ``replacements`` (name -> device function) bound over them,
    and the builtins ``min``/``max`` shadowed by device versions (:func:`_builtins`)."""
    ns = dict(func.__globals__)
    ns.update(_builtins())
    ns.update(replacements)
    return types.FunctionType(func.__code__, ns, func.__name__, func.__defaults__, func.__closure__)


@functools.cache
def _builtins():
    """Device ``min``/``max`` of two scalars. numba lowers the builtins through a ``*args`` overload that
    numba's own CUDA target (numba 0.68) cannot compile ("Signature mismatch"); these two reproduce its
    semantics (``do_minmax``: keep the first unless the second compares strictly smaller/larger)."""
    return {"min": cuda.jit(device=True)(_min2), "max": cuda.jit(device=True)(_max2)}


def _device(kernel, built):
    """The ``cuda.jit(device=True)`` version of ``kernel``, its helpers built first (memo ``built``)."""
    func = _py_func(kernel)
    if func in built:
        return built[func]
    helpers = {}
    for name in func.__code__.co_names:
        obj = func.__globals__.get(name)
        if obj is not None and _py_func(obj) is not None:
            helpers[name] = _device(obj, built)
    built[func] = cuda.jit(device=True)(_rebind(func, helpers))
    return built[func]


def _fit_windows_cuda(samples_e, n_samples, var_extra_e2, sigma_px, max_iter, mask, cosmic_sigma,
                      al_px, al_px_err, flux_e, flux_e_err, bg_e, bg_e_err, chi2, n_iter, flags):  # fmt: skip
    """One thread per window: the body of ``_fit_windows``' ``prange`` loop (``_fit_window`` is bound to
    its device version by :func:`_kernel`)."""
    i = cuda.grid(1)
    if i < samples_e.shape[0]:
        _fit_window(  # noqa: F821 (bound by _kernel)
            samples_e[i], mask[i], n_samples[i], var_extra_e2[i], sigma_px, max_iter, cosmic_sigma, i,
            al_px, al_px_err, flux_e, flux_e_err, bg_e, bg_e_err, chi2, n_iter, flags,
        )  # fmt: skip


@functools.cache
def _kernel():
    """The fit kernel (built once per process; compiled by numba at its first launch)."""
    return cuda.jit(_rebind(_fit_windows_cuda, {"_fit_window": _device(_k._fit_window, {})}))


def available() -> bool:
    """Whether a CUDA GPU (or numba's CUDA simulator) can run the kernel."""
    try:
        return bool(cuda.is_available())
    except Exception:  # a broken driver or toolkit counts as no GPU
        return False


def launch(d_samples, d_n, d_var, sigma_px, max_iter, d_mask, cosmic_sigma, threads_per_block=THREADS_PER_BLOCK):
    """Fit the windows held in device arrays; returns the 9 device output arrays (asynchronous: call
    ``cuda.synchronize()`` before timing). Arguments as ``pipeline.kernels.ipd._fit_windows``."""
    m = d_samples.shape[0]
    outs = [cuda.device_array(m, dtype=np.float64) for _ in range(7)]
    outs += [cuda.device_array(m, dtype=np.int32) for _ in range(2)]
    if m:
        blocks = (m + threads_per_block - 1) // threads_per_block
        _kernel()[blocks, threads_per_block](d_samples, d_n, d_var, sigma_px, max_iter, d_mask, cosmic_sigma, *outs)
    return tuple(outs)


def fit_windows(samples_e, n_samples, var_extra_e2, sigma_px, max_iter, mask, cosmic_sigma):
    """``pipeline.kernels.ipd._fit_windows`` on the GPU: copy in, launch, copy the 9 outputs back.

    Raises ``ValueError`` (:data:`NO_GPU`) when no CUDA GPU is available.
    """
    if not available():
        raise ValueError(NO_GPU)
    args = [cuda.to_device(a) for a in (samples_e, n_samples, var_extra_e2)]
    d_mask = cuda.to_device(mask)
    outs = launch(*args, float(sigma_px), int(max_iter), d_mask, float(cosmic_sigma))
    return tuple(d.copy_to_host() for d in outs)
