"""The simulator's numba flags (its kernels are its own; the pipeline's are the pipeline's).

JIT flags come from here and nowhere else in gaiasim/sim, so coverage can run once with
``NUMBA_DISABLE_JIT=1`` and the kernel bodies count; ``cache=True`` keeps compiled code on disk between
processes (and on pool workers).
"""

from __future__ import annotations

import numba

#: Serial kernel: compiled once, cached on disk, releases the GIL.
jit = numba.njit(cache=True, nogil=True)
#: Parallel driver (``numba.prange`` over independent items).
jit_parallel = numba.njit(cache=True, nogil=True, parallel=True)
#: Serial helper inlined into its callers at numba's IR level (a call with array arguments otherwise
#: passes each array with reference counting, more than a small helper costs).
jit_inline = numba.njit(cache=True, nogil=True, inline="always")
