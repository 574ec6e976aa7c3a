"""A deadline for a performer's code running on a thread of ours, which no Ctrl-C reaches.

A pattern file runs in the watcher's thread while the REPL waits for it, and a timer's function
in the timers' thread (or a render's): a loop that never ends there would freeze the REPL, hold
up every later timer, or never let a render end. :class:`Deadline` interrupts the thread inside
it, as Ctrl-C would (a ``KeyboardInterrupt`` raised in that thread), once it has been there too
long.

A loop in Python stops at once; a call into C (a long ``time.sleep``) stops when it returns.

One watchdog thread serves every deadline (started with the first, it ends when none is left):
a timer running every 64th of a beat through a 10-minute render enters about 77,000 of them,
and each started a thread of its own (``threading.Timer``). Deadlines nest: the one that
fires is the first to expire, and an inner one leaving clears only its own interrupt.
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import threading
import time

__all__ = ["Deadline", "interruptible"]

_inside = threading.local()           # .deadlines: those this thread is inside, innermost last


def interruptible() -> bool:
    """Whether a ``KeyboardInterrupt`` in this thread may be an interruption (Ctrl-C in the main
    thread, or a :class:`Deadline` that has fired), not an exception a performer's code raised
    itself."""
    return (threading.current_thread() is threading.main_thread()
            or any(deadline.fired for deadline in getattr(_inside, "deadlines", ())))


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
        if not hasattr(_inside, "deadlines"):
            _inside.deadlines = []
        _inside.deadlines.append(self)
        _watchdog.add(time.monotonic() + self.seconds, self)
        return self

    def _fire(self) -> None:
        with self._lock:
            if self._inside:
                self.fired = True
                _raise_in(self._thread, KeyboardInterrupt)

    def __exit__(self, *_exc) -> None:
        self.leave()

    def leave(self) -> None:
        """What leaving the ``with`` block does; again, it does nothing. An interrupt sent just
        as the block ends can be raised inside ``__exit__`` before it is done: code that must
        go on on this thread calls this in a ``finally`` (else the thread would stay counted
        inside a fired deadline, see :func:`interruptible`)."""
        if self in _inside.deadlines:
            _inside.deadlines.remove(self)
        with self._lock:
            if not self._inside:
                return
            self._inside = False
            if self.fired:              # sent but maybe not raised yet: it must not go off later
                _raise_in(self._thread, None)
                if any(outer.fired for outer in _inside.deadlines):    # (cleared with it)
                    _raise_in(self._thread, KeyboardInterrupt)


class _Watchdog:
    """Fires each deadline entered when its time comes, if it is still entered then."""

    def __init__(self):
        self._due: list = []             # heap of (when, order, deadline)
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, when: float, deadline: Deadline) -> None:
        with self._changed:
            if len(self._due) > 1024:            # (those left early wait for their time here)
                self._due = [entry for entry in self._due if entry[2]._inside]
                heapq.heapify(self._due)
            heapq.heappush(self._due, (when, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="livelatent-deadlines",
                                                daemon=True)
                self._thread.start()
            elif self._due[0][2] is deadline:        # sooner than what the thread waits for
                self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while self._due and not self._due[0][2]._inside:    # left in time: forgotten
                    heapq.heappop(self._due)
                if not self._due:
                    self._thread = None
                    return
                when, _, deadline = self._due[0]
                wait = when - time.monotonic()
                if wait > 0:
                    self._changed.wait(wait)
                    continue
                heapq.heappop(self._due)
            deadline._fire()


_watchdog = _Watchdog()


def _raise_in(thread: int, exception) -> None:
    """Raise ``exception`` in ``thread`` at its next bytecode (None: forget one pending)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread), None if exception is None else ctypes.py_object(exception))
