"""glibc's allocator kept from handing the generator's large temporaries back to the kernel.

Every chunk of a slice allocates and frees arrays of megabytes (window samples, payloads, truth columns).
By default glibc serves an allocation above 128 kB with its own mmap and unmaps it when freed (raising that
threshold as it goes, but trimming the heap's top above 2x it), so the next chunk takes the same pages again,
each one faulted in and zeroed by the kernel: system time. Measured on the 2-core development machine at
scale 0.02 on the population sky (1.42 M transits, one process; 7 runs against 4): system CPU 5.6 s -> 2.8 s
of ~47 s (user time the same within the machine's +-4 s noise), peak RSS 740 -> 780 MB, the same bytes.
:func:`tune` does it from inside the process (``mallopt``), in the parent and in each worker before its first
task; a no-op off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util

#: mallopt parameters (glibc malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
#: Allocations below this are served from the heap and reused: glibc's largest threshold on 64-bit
#: (DEFAULT_MMAP_THRESHOLD_MAX, 32 MiB; mallopt refuses more).
MMAP_THRESHOLD = 32 << 20
#: Free memory at the heap's top is returned to the kernel only above this [D: more than a slice's chunk
#: allocates, ~0.2-0.5 GB at TRANSITS_PER_CHUNK = 100 000; peak RSS +40 MB at scale 0.02, above].
TRIM_THRESHOLD = 1 << 30
#: Extra heap asked of the kernel at each growth [D: 16 MiB; 64 MiB measured no faster].
TOP_PAD = 16 << 20

_tuned: bool | None = None


def tune() -> bool:
    """Apply the settings above once per process; True when the allocator is glibc's and took them."""
    global _tuned
    if _tuned is None:
        _tuned = False
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            return False
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        _tuned = all(mallopt(param, value) == 1 for param, value in (
            (_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_TOP_PAD, TOP_PAD)))
    return _tuned
