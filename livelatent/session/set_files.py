"""Arrays written into a set's folder (embedded audio, a path's vectors), kept when a write fails.

A source or an array a change needs is written into the set when the change is recorded. A full
disk must not refuse the change (the sound goes on, as it does when the journal cannot be
written): the array is kept in memory, the failure is said once, and each later change tries to
write what is still missing, so a set whose disk recovers is whole again.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ..atomic import atomic_path

__all__ = ["SetFiles"]


class SetFiles:
    """Writes ``.npy`` files into a set, once each; what cannot be written yet waits here."""

    def __init__(self):
        self._waiting: dict[Path, np.ndarray] = {}
        self._errors: list[str] = []
        self._lock = threading.Lock()

    def write(self, target: Path, array: np.ndarray) -> None:
        """Write ``array`` to ``target`` (atomically) unless it is there; on failure, keep it."""
        if target.exists():
            return
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp, open(tmp, "wb") as f:
                np.save(f, array, allow_pickle=False)
        except OSError as exc:
            with self._lock:
                self._waiting[target] = array
                self._errors.append(f"{target.name} ({exc.strerror or exc})")

    def retry(self) -> None:
        """Try again to write what is waiting."""
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for target, array in waiting.items():
            self.write(target, array)

    def take_errors(self) -> list[str]:
        """The failures since the last call (each once)."""
        with self._lock:
            errors, self._errors = self._errors, []
        return errors

    @property
    def missing(self) -> int:
        with self._lock:
            return len(self._waiting)
