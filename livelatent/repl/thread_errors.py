"""Threads a performer's code starts: what one raises is a one-line message in the REPL.

Python's default hook prints the thread's whole traceback in the middle of the prompt. A thread
of livelatent's own (named ``livelatent-...``) keeps it: a fault of ours should show where.
Several REPL sessions in one process (tests, kernels attached twice) share one hook, which says
it on the events of the one attached last; it is taken out when the last of them detaches.
"""

from __future__ import annotations

import threading

from ..errors import described

__all__ = ["report_thread_errors"]

_lock = threading.Lock()
_sinks: list = []            # the events of each session that asked, in order
_previous = None             # the hook before ours


def _hook(args) -> None:
    name = args.thread.name if args.thread is not None else "a thread"
    with _lock:
        events = _sinks[-1] if _sinks else None
        previous = _previous
    if events is None or issubclass(args.exc_type, SystemExit) or name.startswith("livelatent"):
        (previous or threading.__excepthook__)(args)    # (a SystemExit ends a thread quietly)
        return
    events.error(f"thread {name}: {described(args.exc_value)} (the voices play on)")


def report_thread_errors(events):
    """Have what performer threads raise said as an error on ``events``; returns the function
    that stops it (the previous hook comes back when no session wants ours)."""
    global _previous
    with _lock:
        if not _sinks and threading.excepthook is not _hook:
            _previous = threading.excepthook
            threading.excepthook = _hook
        _sinks.append(events)
    stopped = False

    def stop() -> None:
        global _previous
        nonlocal stopped
        with _lock:
            if not stopped:              # (a second call takes out no other session's)
                stopped = True
                _sinks.remove(events)
            if not _sinks and threading.excepthook is _hook:
                threading.excepthook, _previous = _previous, None
    return stop
