"""Arrays written into a set's folder (embedded audio, a path's vectors).

A source or an array a change needs is written into the set when the change is recorded. Saving
a set (``save()``) must write every one of them, or fail. A performance being recorded must not
stop for a full disk (the sound goes on, as it does when the journal cannot be written): there
the array is kept in memory (``keep_failed=True``), the failure is said once per file, and the
next cell, ``save()`` and the end of the session try again, so a set whose disk recovers is whole
again. Until then the set does not render (the replay refuses a set with a file missing).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ..atomic import atomic_path

__all__ = ["SetFiles"]


class SetFiles:
    """Writes ``.npy`` files into a set, once each."""

    def __init__(self, *, keep_failed: bool = False):
        self.keep_failed = keep_failed
        self._waiting: dict[Path, np.ndarray] = {}
        self._errors: list[str] = []
        self._said: set[Path] = set()
        self._lock = threading.Lock()

    def write(self, target: Path, array: np.ndarray) -> None:
        """Write ``array`` to ``target`` (atomically) unless it is there. On failure, raise
        OSError, or (``keep_failed``) keep it to be written by :meth:`retry`."""
        if target.exists():
            return
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp, open(tmp, "wb") as f:
                np.save(f, array, allow_pickle=False)
        except OSError as exc:
            if not self.keep_failed:
                raise
            with self._lock:
                self._waiting[target] = array
                if target not in self._said:
                    self._said.add(target)
                    self._errors.append(f"{target.name} ({exc.strerror or exc})")

    def retry(self) -> int:
        """Try again to write what is waiting; how many are still waiting."""
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for target, array in waiting.items():
            self.write(target, array)
        with self._lock:
            return len(self._waiting)

    def take_errors(self) -> list[str]:
        """The files that could not be written since the last call (each file once)."""
        with self._lock:
            errors, self._errors = self._errors, []
        return errors
