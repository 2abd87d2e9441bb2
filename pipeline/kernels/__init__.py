"""Private numba kernels, one module per stage (array-only functions: no objects, no I/O, no logging).

JIT flags come from here and nowhere else, so coverage can run once with ``NUMBA_DISABLE_JIT=1`` and
kernel bodies count. ``cache=True`` keeps compiled code on disk between processes (and on workers).
"""

from __future__ import annotations

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
