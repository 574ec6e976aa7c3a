"""Warnings about what comes from outside, at most one of a kind every few seconds.

A controller can send hundreds of bad messages a second; the performer needs to hear about
it once, with a count, not to have the REPL flooded.
"""

from __future__ import annotations

import threading
import time

__all__ = ["Throttle"]


class Throttle:
    """Warn through ``events`` at most once per ``period`` seconds per kind of problem."""

    def __init__(self, events, period: float = 2.0):
        self.events, self.period = events, period
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def warn(self, kind: str, text: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(kind, -1e9) < self.period:
                self._held[kind] = self._held.get(kind, 0) + 1
                return
            self._last[kind] = now
            held = self._held.pop(kind, 0)
        more = f" (and {held} more like it)" if held else ""
        try:
            self.events.warning(text + more)
        except Exception:      # noqa: BLE001 - a warning must never take a listener down
            pass
