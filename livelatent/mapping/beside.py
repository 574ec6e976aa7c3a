"""Fitting a mapping beside the music: in a process of its own while the engine plays.

An mlp's fit is some thousand small numpy steps (70-90 ms), every one holding the interpreter's
lock: in the engine's process it competes with the decode thread for the lock and, on a 2-core
machine, for the cores, and trained while playing it could make the decoder late (an underrun,
seen about once in ten of the tests' sessions). So while sound goes to a device a mapping is
fitted in one worker process (spawned once, then kept; at a lower scheduling priority, with one
BLAS thread), which gives back the same numbers an in-process fit gives on this machine.
Offline (renders, replays) it fits in-process. If the worker cannot run, it fits in-process and
says so once.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ..blas import hold_one_blas_thread
from .models import Model, fit

__all__ = ["fit_beside", "warm_up"]

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_TIMEOUT_S = 60.0


def _lower_priority() -> None:
    # numpy is imported by now (this module's own imports), so its BLAS threads are limited
    # through the held limit, not environment variables it has already read
    hold_one_blas_thread()
    try:
        os.nice(10)
    except OSError:
        pass


def _nothing() -> None:
    return None


def _worker() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_lower_priority)
        return _pool


def warm_up() -> None:
    """Start the worker now (a first fit then does not wait for it to start)."""
    try:
        _worker().submit(_nothing)
    except (RuntimeError, OSError, BrokenProcessPool):
        pass


def fit_beside(kind: str, x, y, *, seed: int, k: int, each: bool, events=None) -> Model:
    """``fit(...)`` in the worker process (or here, if it cannot run)."""
    global _pool
    try:
        return _worker().submit(fit, kind, x, y, seed=seed, k=k, each=each).result(timeout=_TIMEOUT_S)
    except (BrokenProcessPool, RuntimeError, OSError, TimeoutError) as exc:
        with _lock:
            _pool = None
        if events is not None:
            events.warning(f"mappings are fitted in this process ({type(exc).__name__}: the fitting "
                        f"process could not run); a fit may make the sound late on a busy machine")
        return fit(kind, x, y, seed=seed, k=k, each=each)
