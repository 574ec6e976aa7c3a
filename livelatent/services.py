"""Services bound to an engine: one instance per engine, made on first use.

Timers and controllers each belong to one engine and live as long as it does. A subclass of
:class:`EngineService` gets :meth:`~EngineService.of`: the engine's instance of it, made the
first time it is asked for, and kept in a weak dictionary so it goes when the engine goes.

A leaf module: it imports nothing of livelatent.
"""

from __future__ import annotations

import threading
import weakref

__all__ = ["EngineService"]


class EngineService:
    """Base of the per-engine services; a subclass is made with the engine: ``cls(engine)``."""

    _instances: "weakref.WeakKeyDictionary"
    _instances_lock: threading.Lock

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._instances = weakref.WeakKeyDictionary()
        cls._instances_lock = threading.Lock()

    @classmethod
    def of(cls, engine):
        """The service of ``engine`` (made now if it has none yet)."""
        with cls._instances_lock:
            service = cls._instances.get(engine)
            if service is None:
                service = cls._instances[engine] = cls(engine)
            return service

    @classmethod
    def existing(cls, engine):
        """The service of ``engine`` if it has one, else None (nothing is made)."""
        with cls._instances_lock:
            return cls._instances.get(engine)
