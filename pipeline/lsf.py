"""Along-scan line spread function (LSF) shared by the simulator and the pipeline.

Model (FACTS.md section 5): a Gaussian of width ``sigma_px`` (default 1 AL pixel, de Bruijne+2015,
A&A 576, A74, Fig. 5) integrated over each pixel, so that pixelisation is part of the "effective" LSF
as in Gaia's IPD (FACTS.md section 4)::

    L(x) = Phi((x + 0.5) / sigma) - Phi((x - 0.5) / sigma),    x = k - kappa

where ``Phi`` is the standard normal CDF. ``L`` is the fraction of the image flux that falls in sample
``k``; it sums to 1 over an infinite window.

Frame convention: sample ``k`` of a window (0-based) is centred at ``al_px = k`` and spans
``[k - 0.5, k + 0.5)``. An image centred in an ``n``-sample window therefore has
``kappa = (n - 1) / 2`` (5.5 for a 12-sample window), and the window covers ``-0.5 <= kappa < n - 0.5``.

Two flavours:
- scalar functions compiled with numba (``lsf_value``, ``lsf_dkappa``, ``lsf_d2kappa``, ``lsf_edge``),
  callable from kernels; they use ``math.erf``;
- numpy functions (``lsf_profile``, ``erf_array``) for the simulator and the numpy reference fit.
  numpy has no ``erf``, and the pipeline does not depend on scipy, so ``erf_array`` is W. J. Cody's
  rational Chebyshev approximation (Math. Comp. 23, 631, 1969; the CALERF routine), accurate to a
  few units in the last place.

Note: numba's on-disk cache of a kernel that calls these functions is not invalidated when this file
changes; clear ``pipeline/kernels/__pycache__`` after editing it.
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.kernels import jit

#: Default LSF width: sigma ~ 1 AL pixel (de Bruijne+2015, A&A 576, A74, Fig. 5); FACTS.md section 5.
LSF_SIGMA_PX = 1.0

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)


@jit
def lsf_edge(t_px, sigma_px):
    """Terms of the LSF at one pixel edge ``t_px`` (edge position minus image centre, AL pixels).

    With ``u = t_px / sigma_px`` returns ``(0.5 * erf(u / sqrt(2)), pdf(u) / sigma_px,
    u * pdf(u) / sigma_px**2)``, where ``pdf`` is the standard normal density. For sample ``k`` with
    lower edge ``t0 = k - 0.5 - kappa`` and upper edge ``t1 = t0 + 1`` (terms ``(h0, q0, r0)`` and
    ``(h1, q1, r1)``): ``L = h1 - h0``, ``dL/dkappa = q0 - q1`` and ``d2L/dkappa2 = r0 - r1``.
    Adjacent samples share an edge, so a window of ``n`` samples needs ``n + 1`` calls.
    """
    u = t_px / sigma_px
    pdf = _INV_SQRT_2PI * math.exp(-0.5 * u * u)
    return 0.5 * math.erf(u * _INV_SQRT2), pdf / sigma_px, u * pdf / (sigma_px * sigma_px)


@jit
def lsf_value(x_px, sigma_px):
    """Fraction of the flux in a sample at offset ``x_px = k - kappa`` (AL pixels) from the image centre."""
    return 0.5 * (math.erf((x_px + 0.5) / sigma_px * _INV_SQRT2) - math.erf((x_px - 0.5) / sigma_px * _INV_SQRT2))


@jit
def lsf_dkappa(x_px, sigma_px):
    """Derivative of :func:`lsf_value` with respect to the image centre kappa (per AL pixel).

    ``x = k - kappa``, so ``dL/dkappa = -dL/dx = -(pdf(u1) - pdf(u0)) / sigma`` with ``u = (x -+ 0.5)/sigma``.
    """
    u1 = (x_px + 0.5) / sigma_px
    u0 = (x_px - 0.5) / sigma_px
    return -_INV_SQRT_2PI * (math.exp(-0.5 * u1 * u1) - math.exp(-0.5 * u0 * u0)) / sigma_px


@jit
def lsf_d2kappa(x_px, sigma_px):
    """Second derivative of :func:`lsf_value` with respect to kappa (per AL pixel squared)."""
    u1 = (x_px + 0.5) / sigma_px
    u0 = (x_px - 0.5) / sigma_px
    return -_INV_SQRT_2PI * (u1 * math.exp(-0.5 * u1 * u1) - u0 * math.exp(-0.5 * u0 * u0)) / (sigma_px * sigma_px)


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


def lsf_edge_array(t_px: np.ndarray, sigma_px: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised :func:`lsf_edge`: ``(0.5 erf(u/sqrt 2), pdf(u)/sigma, u pdf(u)/sigma**2)``, ``u = t/sigma``."""
    u = np.asarray(t_px, dtype=np.float64) / sigma_px
    pdf = _INV_SQRT_2PI * np.exp(-0.5 * u * u)
    return 0.5 * erf_array(u * _INV_SQRT2), pdf / sigma_px, u * pdf / (sigma_px * sigma_px)


def lsf_profile(x_px: np.ndarray, sigma_px: float = LSF_SIGMA_PX) -> np.ndarray:
    """Fraction of the flux in samples at offsets ``x_px = k - kappa`` (AL pixels), any shape.

    For the simulator: the expected signal of sample ``k`` of a star of flux ``flux_e`` centred at
    ``kappa`` is ``flux_e * lsf_profile(k - kappa, sigma_px)`` electrons.
    """
    x = np.asarray(x_px, dtype=np.float64)
    return 0.5 * (erf_array((x + 0.5) * (_INV_SQRT2 / sigma_px)) - erf_array((x - 0.5) * (_INV_SQRT2 / sigma_px)))
