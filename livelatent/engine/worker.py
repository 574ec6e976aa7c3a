"""A thread that works ahead for the decode thread: started when work is asked for, ended when idle.

The voice bank has work done ahead on threads of their own (each voice's next noise block,
:class:`~.blocks.NoiseBlocks`; live, its next block of channels, :class:`~.channels_ahead.ChannelsAhead`).
Such a thread has nothing to do between performances, and an engine must not keep one alive
for nothing, so :class:`WorkAhead` starts it on the first ask and lets it end after
:data:`IDLE_S` without work; the next ask starts another.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

__all__ = ["WorkAhead", "POLL_S", "IDLE_S"]

POLL_S = 0.05    # how often a thread working ahead looks for what is asked, when it polls
IDLE_S = 5.0     # and how long it waits, idle, before it ends


class WorkAhead:
    """Runs ``work_once()`` over and over on a daemon thread named ``name``.

    ``work_once()`` does one piece of work, or waits up to about :data:`POLL_S` for some, and
    returns whether it did any; ``pending()`` says whether work is asked for. After
    :data:`IDLE_S` without work the thread ends, unless work is pending then: the decision and
    :meth:`wake` share a lock, so work asked for as it ends is not left without a thread. An
    error in ``work_once()`` ends the thread quietly (work asked for meanwhile waits for the
    next ask): whatever it was to do ahead, the decode thread does itself when it gets there.
    """

    def __init__(self, work_once: Callable[[], bool], pending: Callable[[], bool], name: str):
        self._work_once = work_once
        self._pending = pending
        self._name = name
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """Make sure a thread runs (call after asking for work)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        try:
            idle_since = time.monotonic()
            while True:
                if self._work_once():
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > IDLE_S:
                    with self._lock:
                        if not self._pending():
                            self._thread = None
                            return
                    idle_since = time.monotonic()
        except Exception:       # noqa: BLE001 - work ahead is a head start: what it did not do,
            pass                # the decode thread does itself (and meets the error there)
        finally:                # the next wake starts another thread
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None
