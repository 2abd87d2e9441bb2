"""The pipeline's along-scan line spread function (LSF): what its image fits assume (the simulator renders
with an LSF of its own, gaiasim/sim/instrument; the run contract is all the two share).

Model (docs/facts.md section 5): a Gaussian of width ``sigma_px`` (default 1 AL pixel, de Bruijne+2015,
A&A 576, A74, Fig. 5) integrated over each pixel, so that pixelisation is part of the "effective" LSF
as in Gaia's IPD (docs/facts.md section 4)::

    L(x) = Phi((x + 0.5) / sigma) - Phi((x - 0.5) / sigma),    x = k - kappa

where ``Phi`` is the standard normal CDF. ``L`` is the fraction of the image flux that falls in sample
``k``; it sums to 1 over an infinite window.

Frame convention: sample ``k`` of a window (0-based) is centred at ``al_px = k`` and spans
``[k - 0.5, k + 0.5)``. An image centred in an ``n``-sample window therefore has
``kappa = (n - 1) / 2`` (5.5 for a 12-sample window), and the window covers ``-0.5 <= kappa < n - 0.5``.

The pipeline reads the LSF from its calibration table, ``pipeline/data/lsf_af.csv`` (as IDT
takes its LSF from the calibration database, docs/facts.md section 4): the normalised LSF's cdf, pdf and
slope against ``u = x / sigma``, interpolated by cubic Hermite polynomials (~1e-11 of the flux). The
simulator renders the instrument itself: the Gaussian from its own table of ``math.erf``
(``gaiasim.sim.kernels_signal.psf_half_cdf``, within 5e-12 of the flux; ``lsf_profile`` here, for tests and benchmarks).

- scalar functions compiled with numba (``lsf_edge``, ``lsf_value``, ``lsf_dkappa``, ``lsf_d2kappa``,
  over ``lsf_table_at``), callable from the fit kernels: a table lookup and two cubics cost about half
  of the ``erf`` and ``exp`` they replace; ``lsf_walk`` and ``lsf_walk_edge`` walk a window's edges with
  the cubics' weights computed once (all edges share their fraction of a table step at sigma = 1);
- numpy functions: ``lsf_edge_array`` (the same table, for the numpy reference fit), and ``lsf_profile``
  and ``erf_array`` (the exact Gaussian, for the simulator and tests). numpy has no ``erf``, and the
  pipeline does not depend on scipy, so ``erf_array`` is W. J. Cody's rational Chebyshev approximation
  (Math. Comp. 23, 631, 1969; the CALERF routine), accurate to a few units in the last place.

Note: numba's on-disk cache of a kernel that calls these functions is not invalidated when this file
changes; clear ``pipeline/kernels/__pycache__`` after editing it.
"""

from __future__ import annotations

import hashlib
import math
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np

from pipeline.data import packaged
from pipeline.io import InputError
from pipeline.kernels import jit

#: Default LSF width: sigma ~ 1 AL pixel (de Bruijne+2015, A&A 576, A74, Fig. 5); docs/facts.md section 5.
LSF_SIGMA_PX = 1.0

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)


#: The AF LSF calibration table (package data: pipeline/data/lsf_af.csv, written by make_lsf_table.py there).
LSF_TABLE_PATH = packaged("lsf_af.csv")
_TABLE_COLUMNS = "u,cdf,pdf,dpdf_du"


def read_lsf_table(path: Path | Traversable = LSF_TABLE_PATH) -> tuple[float, float, np.ndarray]:
    """Read an LSF calibration table: ``(u0, step, values)``, ``values`` (n, 3) = ``(cdf - 1/2, pdf,
    dpdf_du)`` at ``u0 + i * step``. Raises :class:`pipeline.io.InputError` naming what is wrong."""
    try:
        text = (Path(path) if isinstance(path, str) else path).read_text()
        lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    except OSError as exc:
        raise InputError(f"LSF calibration table {path}: {exc.strerror or exc}; restore it from the repository "
                         "(pipeline/data/make_lsf_table.py writes it)") from None
    if not lines or lines[0].replace(" ", "") != _TABLE_COLUMNS:
        raise InputError(f"LSF calibration table {path}: the first row must be the header {_TABLE_COLUMNS!r}")
    try:
        data = np.array([[float(v) for v in ln.split(",")] for ln in lines[1:]], dtype=np.float64)
    except ValueError as exc:
        raise InputError(f"LSF calibration table {path}: {exc}; every row is 4 numbers") from None
    if data.ndim != 2 or data.shape[1:] != (4,) or len(data) < 4 or not np.all(np.isfinite(data)):
        raise InputError(f"LSF calibration table {path}: need at least 4 rows of 4 finite numbers")
    step = np.diff(data[:, 0])
    if not (step[0] > 0 and np.allclose(step, step[0], rtol=1e-9, atol=0)):
        raise InputError(f"LSF calibration table {path}: u must grow in equal steps")
    if not (np.all(np.diff(data[:, 1]) >= 0) and abs(data[0, 1]) < 1e-9 and abs(data[-1, 1] - 1) < 1e-9):
        raise InputError(f"LSF calibration table {path}: cdf must grow from 0 to 1 over the table")
    values = np.ascontiguousarray(np.c_[data[:, 1] - 0.5, data[:, 2], data[:, 3]])
    return float(data[0, 0]), float(step[0]), values


def require_table() -> None:
    """Raise the error that kept the calibration table from loading (a missing or damaged file), if any:
    called before a run or a fit starts, so the operator gets one line instead of a wrong fit."""
    if TABLE_ERROR is not None:
        raise TABLE_ERROR


# Frozen into the compiled kernels (numba reads module globals at compile time; after changing the table,
# clear pipeline/kernels/__pycache__ as for any change to this file). A table that does not load leaves
# zeros here and its error in TABLE_ERROR, for require_table(): importing never fails.
try:
    _U0, _STEP, _TABLE = read_lsf_table()
    TABLE_ERROR: InputError | None = None
    #: SHA-256 of the table file: an input of every run (run.json).
    TABLE_SHA256 = hashlib.sha256(LSF_TABLE_PATH.read_bytes()).hexdigest()
except InputError as _exc:
    _U0, _STEP, _TABLE = 0.0, 1.0, np.zeros((4, 3))
    TABLE_ERROR, TABLE_SHA256 = _exc, ""
_INV_STEP = 1.0 / _STEP
_LAST = float(len(_TABLE) - 1)


def _weights_py(f):
    """Cubic Hermite weights at fraction ``f`` of a table step: ``(w00, w10, w01, w11)`` of the value and
    slope at the step's two nodes, and ``(v0, v1, v2)`` of the derivative of that cubic (see
    :func:`_combine_py`). Plain arithmetic: scalars in the kernels, arrays in numpy."""
    f2 = f * f
    f3 = f2 * f
    return (2.0 * f3 - 3.0 * f2 + 1.0, (f3 - 2.0 * f2 + f) * _STEP, 3.0 * f2 - 2.0 * f3, (f3 - f2) * _STEP,
            (6.0 * f2 - 6.0 * f) * _INV_STEP, 3.0 * f2 - 4.0 * f + 1.0, 3.0 * f2 - 2.0 * f)


def _combine_py(w00, w10, w01, w11, v0, v1, v2, c0, p0, d0, c1, p1, d1):
    """(cdf, pdf, dpdf) between nodes ``(c, p, d)`` = (cdf, pdf, dpdf) with the weights of
    :func:`_weights_py`: cdf from its values and slopes (pdf), pdf from its values and slopes (dpdf), and
    dpdf as the derivative of that pdf cubic."""
    return (w00 * c0 + w10 * p0 + w01 * c1 + w11 * p1, w00 * p0 + w10 * d0 + w01 * p1 + w11 * d1,
            v0 * (p0 - p1) + v1 * d0 + v2 * d1)


def _hermite_py(f, c0, p0, d0, c1, p1, d1):
    """Cubic Hermite interpolation at fraction ``f`` of a table step (:func:`_weights_py`,
    :func:`_combine_py`)."""
    return _combine_py(*_weights_py(f), c0, p0, d0, c1, p1, d1)


_weights = jit(_weights_py)
_combine = jit(_combine_py)


@jit
def lsf_table_at(u):
    """``(cdf(u) - 1/2, pdf(u), dpdf/du(u))`` of the calibration table at ``u`` (LSF widths).

    Cubic Hermite interpolation: cdf from its values and slopes (pdf), pdf from its values and slopes
    (dpdf_du); dpdf/du is the derivative of that pdf cubic. At the table's 1/128 step the cdf is right to
    ~1e-11 and pdf to ~3e-11 of a Gaussian (a few 1e-9 for dpdf/du). Outside the table: (+-1/2, 0, 0).
    """
    x = (u - _U0) * _INV_STEP
    if x != x:
        return np.nan, np.nan, np.nan
    if x <= 0.0:
        return -0.5, 0.0, 0.0
    if x >= _LAST:
        return 0.5, 0.0, 0.0
    i = int(x)
    c0, p0, d0, c1, p1, d1 = _rows(i)
    w00, w10, w01, w11, v0, v1, v2 = _weights(x - i)
    return _combine(w00, w10, w01, w11, v0, v1, v2, c0, p0, d0, c1, p1, d1)


@jit
def _rows(i):
    """Rows ``i`` and ``i + 1`` of the calibration table: ``(c0, p0, d0, c1, p1, d1)``.

    The one reference to the global table in the kernels: numba's CUDA target makes a constant-memory copy
    of a global array in every function that names it, and two copies of this 49 kB table overflow the
    GPU's 64 kB of it."""
    table = _TABLE
    return table[i, 0], table[i, 1], table[i, 2], table[i + 1, 0], table[i + 1, 1], table[i + 1, 2]


@jit
def lsf_edge(t_px, sigma_px):
    """Terms of the LSF at one pixel edge ``t_px`` (edge position minus image centre, AL pixels).

    With ``u = t_px / sigma_px`` returns ``(cdf(u) - 1/2, pdf(u) / sigma_px, -dpdf/du(u) / sigma_px**2)``
    from the calibration table (:func:`lsf_table_at`; for the Gaussian, ``0.5 erf(u / sqrt 2)``,
    ``pdf / sigma`` and ``u pdf / sigma**2``). For sample ``k`` with lower edge ``t0 = k - 0.5 - kappa``
    and upper edge ``t1 = t0 + 1`` (terms ``(h0, q0, r0)`` and ``(h1, q1, r1)``): ``L = h1 - h0``,
    ``dL/dkappa = q0 - q1`` and ``d2L/dkappa2 = r0 - r1``. Adjacent samples share an edge, so a window
    of ``n`` samples needs ``n + 1`` calls.
    """
    # Multiplying by the reciprocal lets the compiler hoist the one division out of a kernel's loop over
    # edges (sigma_px is loop-invariant there); for the calibrated sigma_px = 1 the results are identical.
    inv_sigma = 1.0 / sigma_px
    cdf, pdf, dpdf = lsf_table_at(t_px * inv_sigma)
    return cdf, pdf * inv_sigma, -dpdf * (inv_sigma * inv_sigma)


#: Bound on a walk's start and stride in table steps (far beyond any window; keeps the indices integers).
_WALK_MAX_STEPS = 1e12
_LAST_ROW = len(_TABLE) - 1


@jit
def lsf_walk(t0_px, sigma_px, n_edges):
    """Set-up of a walk over the ``n_edges`` pixel edges ``t0_px``, ``t0_px + 1``, ... (AL pixels from the
    image centre), as a fit evaluates a window: edge ``k`` is :func:`lsf_walk_edge` at ``i + k * stride``.

    Edges one pixel apart lie ``1 / (sigma_px * step)`` table steps apart. For the calibrated sigma = 1
    pixel that is 128, a whole number, so every edge falls at the same fraction of its table step and the
    Hermite weights are the same for all: computed here once, :func:`lsf_walk_edge` then costs 6 table
    reads and 11 multiply-adds an edge (a 12-sample fit ran ~1.3x faster than with :func:`lsf_edge` per
    edge). Returns ``(ok, clamp, first, i, stride, w00, w10, w01, w11, v0, v1, v2, inv_sigma)``; ``ok`` is
    False (use :func:`lsf_edge`) when the stride is not whole or ``t0_px`` is not finite; ``clamp`` says an
    edge lies on or beyond the table's ends (pass it and ``first``, the first step inside, to
    :func:`lsf_walk_edge`: without ``clamp`` the walk has no branch).
    The values equal :func:`lsf_edge`'s to rounding (the fraction is computed once, not per edge).
    """
    inv_sigma = 1.0 / sigma_px
    x0 = (t0_px * inv_sigma - _U0) * _INV_STEP
    stride = inv_sigma * _INV_STEP
    if not (stride == math.floor(stride) and stride < _WALK_MAX_STEPS and abs(x0) < _WALK_MAX_STEPS):
        return False, False, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, inv_sigma
    i = math.floor(x0)
    f = x0 - i
    # lsf_table_at gives the tails at x <= 0 and x >= the last row: step 0 is inside only when f > 0.
    first = 1 if f == 0.0 else 0
    clamp = i < first or i + (n_edges - 1) * stride >= _LAST_ROW
    w00, w10, w01, w11, v0, v1, v2 = _weights(f)
    return True, clamp, first, int(i), int(stride), w00, w10, w01, w11, v0, v1, v2, inv_sigma


@jit
def lsf_walk_edge(i, clamp, first, w00, w10, w01, w11, v0, v1, v2, inv_sigma):
    """:func:`lsf_edge`'s terms at table step ``i`` of a walk set up by :func:`lsf_walk` (its ``clamp``,
    ``first`` and weights); with ``clamp``, on or beyond the table's ends, its tails (-+1/2, 0, 0)."""
    if clamp:
        if i < first:
            return -0.5, 0.0, 0.0
        if i >= _LAST_ROW:
            return 0.5, 0.0, 0.0
    c0, p0, d0, c1, p1, d1 = _rows(i)
    cdf, pdf, dpdf = _combine(w00, w10, w01, w11, v0, v1, v2, c0, p0, d0, c1, p1, d1)
    return cdf, pdf * inv_sigma, -dpdf * (inv_sigma * inv_sigma)


@jit
def lsf_value(x_px, sigma_px):
    """Fraction of the flux in a sample at offset ``x_px = k - kappa`` (AL pixels) from the image centre."""
    return lsf_edge(x_px + 0.5, sigma_px)[0] - lsf_edge(x_px - 0.5, sigma_px)[0]


@jit
def lsf_dkappa(x_px, sigma_px):
    """Derivative of :func:`lsf_value` with respect to the image centre kappa (per AL pixel): ``x = k -
    kappa``, so with edges ``x -+ 0.5``, ``dL/dkappa = q0 - q1`` (:func:`lsf_edge`)."""
    return lsf_edge(x_px - 0.5, sigma_px)[1] - lsf_edge(x_px + 0.5, sigma_px)[1]


@jit
def lsf_d2kappa(x_px, sigma_px):
    """Second derivative of :func:`lsf_value` with respect to kappa (per AL pixel squared)."""
    return lsf_edge(x_px - 0.5, sigma_px)[2] - lsf_edge(x_px + 0.5, sigma_px)[2]


# W. J. Cody (1969) CALERF coefficients: |x| <= 0.46875 (erf), 0.46875 < |x| <= 4 and |x| > 4 (erfc).
_CODY_A = (
    3.16112374387056560e00,
    1.13864154151050156e02,
    3.77485237685302021e02,
    3.20937758913846947e03,
    1.85777706184603153e-1,
)
_CODY_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_CODY_C = (
    5.64188496988670089e-1,
    8.88314979438837594e00,
    6.61191906371416295e01,
    2.98635138197400131e02,
    8.81952221241769090e02,
    1.71204761263407058e03,
    2.05107837782607147e03,
    1.23033935479799725e03,
    2.15311535474403846e-8,
)
_CODY_D = (
    1.57449261107098347e01,
    1.17693950891312499e02,
    5.37181101862009858e02,
    1.62138957456669019e03,
    3.29079923573345963e03,
    4.36261909014324716e03,
    3.43936767414372164e03,
    1.23033935480374942e03,
)
_CODY_P = (
    3.05326634961232344e-1,
    3.60344899949804439e-1,
    1.25781726111229246e-1,
    1.60837851487422766e-2,
    6.58749161529837803e-4,
    1.63153871373020978e-2,
)
_CODY_Q = (
    2.56852019228982242e00,
    1.87295284992346725e00,
    5.27905102951428412e-1,
    6.05183413124413191e-2,
    2.33520497626869185e-3,
)


def erf_array(x: np.ndarray) -> np.ndarray:
    """Error function of a float64 array (numpy only; Cody 1969, relative error ~1e-16)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.abs(x)
    out = np.empty_like(y)

    small = y <= 0.46875
    ys = y[small]
    z = ys * ys
    num = _CODY_A[4] * z
    den = z
    for i in range(3):
        num = (num + _CODY_A[i]) * z
        den = (den + _CODY_B[i]) * z
    out[small] = ys * (num + _CODY_A[3]) / (den + _CODY_B[3])

    mid = (~small) & (y <= 4.0)
    ym = y[mid]
    num = _CODY_C[8] * ym
    den = ym
    for i in range(7):
        num = (num + _CODY_C[i]) * ym
        den = (den + _CODY_D[i]) * ym
    out[mid] = 1.0 - np.exp(-ym * ym) * (num + _CODY_C[7]) / (den + _CODY_D[7])

    big = y > 4.0
    yb = y[big]
    z = 1.0 / (yb * yb)
    num = _CODY_P[5] * z
    den = z
    for i in range(4):
        num = (num + _CODY_P[i]) * z
        den = (den + _CODY_Q[i]) * z
    erfc_big = (_INV_SQRT_PI - z * (num + _CODY_P[4]) / (den + _CODY_Q[4])) / yb
    out[big] = 1.0 - np.exp(-yb * yb) * erfc_big

    # Non-finite inputs: erf(+-inf) = +-1, NaN stays NaN (the masks above skip NaN).
    out[np.isnan(y)] = np.nan
    return np.copysign(out, x)


def lsf_table_array(u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised :func:`lsf_table_at` (the same formulas, for the numpy reference fit)."""
    u = np.asarray(u, dtype=np.float64)
    x = (u - _U0) * _INV_STEP
    inside = (x > 0.0) & (x < _LAST)
    i = np.where(inside, x, 0.0).astype(np.int64)
    f = np.where(inside, x - i, 0.0)
    cdf, pdf, dpdf = _hermite_py(f, _TABLE[i, 0], _TABLE[i, 1], _TABLE[i, 2], _TABLE[i + 1, 0], _TABLE[i + 1, 1],
                                 _TABLE[i + 1, 2])
    outside = ~inside
    cdf[outside] = np.where(x[outside] <= 0.0, -0.5, 0.5)
    pdf[outside] = 0.0
    dpdf[outside] = 0.0
    nan = np.isnan(x)
    cdf[nan] = pdf[nan] = dpdf[nan] = np.nan
    return cdf, pdf, dpdf


def lsf_edge_array(t_px: np.ndarray, sigma_px: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised :func:`lsf_edge` (the calibration table, as the numba kernels use it)."""
    inv_sigma = 1.0 / sigma_px
    cdf, pdf, dpdf = lsf_table_array(np.asarray(t_px, dtype=np.float64) * inv_sigma)
    return cdf, pdf * inv_sigma, -dpdf * (inv_sigma * inv_sigma)


def lsf_profile(x_px: np.ndarray, sigma_px: float = LSF_SIGMA_PX) -> np.ndarray:
    """Fraction of the flux in samples at offsets ``x_px = k - kappa`` (AL pixels), any shape.

    For the simulator: the expected signal of sample ``k`` of a star of flux ``flux_e`` centred at
    ``kappa`` is ``flux_e * lsf_profile(k - kappa, sigma_px)`` electrons.
    """
    x = np.asarray(x_px, dtype=np.float64)
    return 0.5 * (erf_array((x + 0.5) * (_INV_SQRT2 / sigma_px)) - erf_array((x - 0.5) * (_INV_SQRT2 / sigma_px)))
