"""The default engine of a context: the one ``voice()``, ``tempo()``... act on when typed
outside a namespace bound to an engine.

A namespace that livelatent builds (the REPL's, a script's, a pattern file's, a replay's) binds
its names to its engine, so nothing there depends on this module. It serves the documented
``with Engine(): voice(...)`` of a plain Python program: ``Engine.__enter__`` makes the engine
the default of the current context (a context variable, so each thread and each task keeps its
own) and ``__exit__`` gives the previous one back.

A leaf module: it imports nothing of livelatent but its errors.
"""

from __future__ import annotations

import contextvars

from .errors import LiveLatentError

__all__ = ["use_engine", "release_engine", "default_engine", "default_engine_or_none"]

_default: contextvars.ContextVar = contextvars.ContextVar("livelatent_engine", default=None)


def use_engine(engine):
    """Make ``engine`` this context's default; returns a token for :func:`release_engine`."""
    return _default.set(engine)


def release_engine(token) -> None:
    try:
        _default.reset(token)
    except ValueError:          # left in another context (a thread): forget it there
        _default.set(None)


def default_engine_or_none():
    return _default.get()


def default_engine():
    """This context's default engine, or a clear error telling the performer how to get one."""
    engine = _default.get()
    if engine is None:
        raise LiveLatentError("no engine here: use `with Engine():`, the names of the "
                              "`livelatent` REPL, or a script run by `livelatent play`")
    return engine
