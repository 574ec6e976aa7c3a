"""Asking the operating system for an array's memory before it is written.

Pages of a large ``np.zeros`` array are given only when first written, and on some machines
(virtual ones especially) that first write costs milliseconds per megabyte. The voice cache
reserves room for many voices that way (it costs nothing unused) and has the next slots' pages
populated here, on a thread that is not the decoder's, so a voice starting never pays for them.

Linux only (``madvise(MADV_POPULATE_WRITE)``, kernel 5.14 and later); elsewhere, or when the
kernel refuses, nothing is done and the first write pays, as it would anyway. The call lets the
GIL go (ctypes releases it), and it never changes what the memory holds.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import sys

import numpy as np

__all__ = ["populate"]

_MADV_POPULATE_WRITE = 23
_PAGE = mmap.PAGESIZE


@functools.cache
def _madvise():
    """libc's ``madvise``, or None where there is none to ask."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return madvise


def populate(view: np.ndarray) -> bool:
    """Have the pages wholly inside ``view`` (a contiguous array) backed by memory now. False
    when this system cannot (a kernel before 5.14 refuses at once; then the first write does
    it)."""
    madvise = _madvise()
    if madvise is None or view.nbytes < _PAGE:
        return False
    begin = view.ctypes.data
    first = -(-begin // _PAGE) * _PAGE
    last = (begin + view.nbytes) // _PAGE * _PAGE
    return last <= first or madvise(first, last - first, _MADV_POPULATE_WRITE) == 0
