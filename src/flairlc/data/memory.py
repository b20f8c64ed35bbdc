"""Memory of loading processes: keeping freed memory instead of handing it back every sample.

A full FLAIR sample allocates about 15 MiB of fresh output (the float32 aerial image, the
Sentinel-2 window and its scaled copy, the mask). glibc's allocator serves blocks this large with
``mmap`` and hands them back to the system when freed, so every sample pays for its pages again:
about 2 700 page faults, 5–6 ms of an 11 ms sample on the machines measured
(``benchmarks/RESULTS.md``). :func:`keep_freed_memory` tells the allocator to serve them from its
heap and keep what is freed, so the next sample reuses the same pages. It is applied in the
DataLoader workers of :class:`~flairlc.training.FlairDataModule` (processes that only load data),
never in the training process.
"""

from __future__ import annotations

import ctypes
import ctypes.util

#: glibc ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Freed memory kept and blocks served from the heap up to this size, bytes.
KEEP_BYTES = 1 << 30


def keep_freed_memory(limit_bytes: int = KEEP_BYTES) -> bool:
    """Tell glibc's allocator to serve blocks up to ``limit_bytes`` from its heap and keep freed
    memory up to that much, in this process. Returns False (and changes nothing) without glibc.

    The process's resident memory then stays at its peak use instead of falling between samples:
    for a DataLoader worker, a few samples' worth (tens of MiB).
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS)
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, limit_bytes)) and bool(mallopt(_M_TRIM_THRESHOLD, limit_bytes))


def loading_worker_init(worker_id: int) -> None:
    """``worker_init_fn`` of flairlc's DataLoaders: :func:`keep_freed_memory` in the worker."""
    keep_freed_memory()
