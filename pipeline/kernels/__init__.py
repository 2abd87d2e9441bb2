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
