"""Private numba kernels, one module per stage (array-only functions: no objects, no I/O, no logging).

JIT flags come from here and nowhere else, so coverage can run once with ``NUMBA_DISABLE_JIT=1`` and
kernel bodies count. ``cache=True`` keeps compiled code on disk between processes (and on workers).
"""

from __future__ import annotations

import math

import numba

#: Serial kernel: compiled once, cached on disk, releases the GIL.
jit = numba.njit(cache=True, nogil=True)
#: Parallel driver (``numba.prange`` over independent items).
jit_parallel = numba.njit(cache=True, nogil=True, parallel=True)
#: Serial helper inlined into its callers at numba's IR level: a call with array arguments is otherwise
#: a real call that passes each array with reference counting (~40-70 ns), more than a small helper costs.
jit_inline = numba.njit(cache=True, nogil=True, inline="always")

#: Floating-point freedoms of the image-fit kernels (pipeline.kernels.ipd): fused multiply-adds,
#: multiplication by reciprocals, either sign of zero, reassociated sums. Not "nnan"/"ninf": the kernels
#: test for NaN and infinity (bad input gives flags). Results move by rounding only (~1e-11 of the formal
#: errors on real windows), and the fits run ~10 % faster (WC2 1,125 -> 1,014 ns, WC1 1,383 -> 1,267 ns).
FIT_FASTMATH = frozenset({"contract", "arcp", "nsz", "reassoc"})
jit_fit = numba.njit(cache=True, nogil=True, fastmath=set(FIT_FASTMATH))
jit_fit_inline = numba.njit(cache=True, nogil=True, inline="always", fastmath=set(FIT_FASTMATH))
jit_fit_parallel = numba.njit(cache=True, nogil=True, parallel=True, fastmath=set(FIT_FASTMATH))


# The math functions of the kernels, as compiled code has them: a domain error gives NaN (or -inf at the
# pole of a logarithm) instead of raising. Compiled, these are math's own functions (numba's), so the
# kernels are unchanged; interpreted (NUMBA_DISABLE_JIT=1, the coverage run), Python's math would raise
# ValueError on data the compiled kernels turn into NaN and flags, and the tests of that data could not run.
if numba.config.DISABLE_JIT:

    def log(x: float) -> float:
        return math.log(x) if x > 0.0 else (-math.inf if x == 0.0 else math.nan)

    def log1p(x: float) -> float:
        return math.log1p(x) if x > -1.0 else (-math.inf if x == -1.0 else math.nan)

    def sqrt(x: float) -> float:
        return math.sqrt(x) if x >= 0.0 else math.nan

else:
    log, log1p, sqrt = math.log, math.log1p, math.sqrt
