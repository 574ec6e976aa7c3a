"""One BLAS thread, process-wide, for as long as anyone needs it.

The BLAS thread count belongs to the whole process, and three things in livelatent want it at
one while they run: live playback (small products every step; a second thread stalls when the
other core is busy), a background render beside it, and feature extraction for a map. They
overlap in any order, so a plain limit-then-restore in each would hand back a stale count (a
render begun while playing would "restore" one thread after everything stopped). Holders are
counted instead: the first limits, the last restores what was there before.
"""

from __future__ import annotations

import contextlib
import threading

from threadpoolctl import threadpool_limits

__all__ = ["hold_one_blas_thread", "release_blas_threads", "one_blas_thread"]

_lock = threading.Lock()
_holders = 0
_limit = None


def hold_one_blas_thread() -> None:
    """Limit BLAS to one thread (or count one more holder of that limit)."""
    global _holders, _limit
    with _lock:
        if _holders == 0:
            _limit = threadpool_limits(limits=1, user_api="blas")
        _holders += 1


def release_blas_threads() -> None:
    """One holder fewer; the last one gives back the thread count from before the first."""
    global _holders, _limit
    with _lock:
        if _holders == 0:
            return
        _holders -= 1
        if _holders == 0:
            _limit.restore_original_limits()
            _limit = None


@contextlib.contextmanager
def one_blas_thread():
    """``with one_blas_thread():`` BLAS runs on one thread inside the block."""
    hold_one_blas_thread()
    try:
        yield
    finally:
        release_blas_threads()
