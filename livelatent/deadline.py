"""A deadline for a performer's code running on a thread of ours, which no Ctrl-C reaches.

A pattern file runs in the watcher's thread while the REPL waits for it, and a timer's function
in the timers' thread: a loop that never ends there would freeze the REPL, or hold up every
later timer, for good. :class:`Deadline` interrupts the thread inside it, as Ctrl-C would (a
``KeyboardInterrupt`` raised in that thread), once it has been there too long.

A loop in Python stops at once; a call into C (a long ``time.sleep``) stops when it returns.
"""

from __future__ import annotations

import ctypes
import threading

__all__ = ["Deadline", "interruptible"]

_inside = threading.local()           # .count: the deadlines this thread is inside


def interruptible() -> bool:
    """Whether a ``KeyboardInterrupt`` in this thread may be an interruption (Ctrl-C in the main
    thread, or a :class:`Deadline` firing), not an exception a performer's code raised itself."""
    return threading.current_thread() is threading.main_thread() or getattr(_inside, "count", 0) > 0


class Deadline:
    """``with Deadline(seconds):`` interrupts the thread inside it after ``seconds``;
    :attr:`fired` says whether it did."""

    def __init__(self, seconds: float):
        self.seconds, self.fired = seconds, False
        self._lock = threading.Lock()
        self._inside = False

    def __enter__(self) -> "Deadline":
        self._thread = threading.get_ident()
        self._inside = True
        _inside.count = getattr(_inside, "count", 0) + 1
        self._timer = threading.Timer(self.seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def _fire(self) -> None:
        with self._lock:
            if self._inside:
                self.fired = True
                _raise_in(self._thread, KeyboardInterrupt)

    def __exit__(self, *_exc) -> None:
        _inside.count -= 1
        self._timer.cancel()
        with self._lock:
            self._inside = False
            if self.fired:              # sent but maybe not raised yet: it must not go off later
                _raise_in(self._thread, None)


def _raise_in(thread: int, exception) -> None:
    """Raise ``exception`` in ``thread`` at its next bytecode (None: forget one pending)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread), None if exception is None else ctypes.py_object(exception))
