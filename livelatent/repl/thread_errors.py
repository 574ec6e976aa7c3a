"""Threads a performer's code starts: what one raises is a one-line message in the REPL.

Python's default hook prints the thread's whole traceback in the middle of the prompt. A thread
of livelatent's own (named ``livelatent-...``) keeps it: a fault of ours should show where.
"""

from __future__ import annotations

import threading

from ..errors import described

__all__ = ["report_thread_errors"]


def report_thread_errors(events):
    """Have what performer threads raise said as an error on ``events``; returns the function
    that puts the previous hook back."""
    previous = threading.excepthook

    def hook(args) -> None:
        name = args.thread.name if args.thread is not None else "a thread"
        if issubclass(args.exc_type, SystemExit) or name.startswith("livelatent"):
            previous(args)                  # (a SystemExit ends a thread without a word)
            return
        events.error(f"thread {name}: {described(args.exc_value)} (the voices play on)")

    threading.excepthook = hook

    def put_back() -> None:
        if threading.excepthook is hook:
            threading.excepthook = previous
    return put_back
