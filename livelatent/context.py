"""The current engine: the one that ``voice()``, ``source()``, ``tempo()`` and ``hush()`` act on.

A leaf module (it imports nothing of livelatent) so that both the low layers (sources) and the
performer's API can ask for the current engine without an import cycle.
"""

from __future__ import annotations

import threading

__all__ = ["set_current_engine", "current_engine", "current_engine_or_none"]

_lock = threading.Lock()
_current = None


def set_current_engine(engine) -> None:
    """Make ``engine`` the current one (None clears it)."""
    global _current
    with _lock:
        _current = engine


def current_engine_or_none():
    return _current


def current_engine():
    """The current engine, or a clear error telling the performer how to start one."""
    engine = _current
    if engine is None:
        from .errors import LiveLatentError
        raise LiveLatentError("no engine is running: start one with `Engine().start()`, "
                              "`with Engine():`, or the `livelatent` REPL")
    return engine
