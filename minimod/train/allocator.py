"""Keep freed memory in the process: a training step's temporaries then reuse warm pages.

glibc's malloc hands large freed blocks back to the operating system (blocks over its mmap
threshold, and the free top of the heap over its trim threshold), so the next step's tensors of
the same sizes land on fresh pages, and every fresh 4 KiB page is a page fault the kernel must
zero-fill. minimod's hand-written layers keep a few more temporaries than torch's fused kernels:
measured on a 2-core virtual machine (AMD EPYC, 1 thread), the baby GPT's training step took
1,500-1,700 page faults in some processes and about 20 in others, 72-74 against 67 ms per step,
where torch.nn's twin took none; with the freed memory kept, 1-20 faults and 67-69 ms in every
process. Raising both thresholds keeps the freed blocks for reuse: the process stays at its
peak size (which every step reaches anyway) instead of shrinking and growing back each step.

``keep_freed_memory()`` is process-wide, so the library never calls it on import: the
``minimod`` command does, and a script of yours may (``benchmarks/bench.py`` does, for both
sides of its comparison). ``MINIMOD_KEEP_FREED_MEMORY=0`` turns it off in the command.
"""

from __future__ import annotations

import ctypes
import os

# mallopt's parameter numbers (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's ceiling on 64-bit systems
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: never trim, in practice


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks (up to 32 MiB each) instead of returning them to
    the operating system. Returns whether it took effect: False off glibc (macOS, Windows, musl)
    and where ``MINIMOD_KEEP_FREED_MEMORY`` is ``0``."""
    if os.environ.get("MINIMOD_KEEP_FREED_MEMORY", "1") == "0":
        return False
    try:  # the process's own symbols: libc's, without searching for the library (a subprocess)
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no mallopt: not glibc
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success; a fixed mmap threshold also stops glibc's own adjusting.
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
