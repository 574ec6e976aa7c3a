"""The frame arena: every latent frame the voices read, in one array.

A step reads one latent frame of source A and one of source B for every voice. With each
source's frames in an array of their own that is a pair of indexing operations per voice; with
all of them side by side in one array (rows ``mu | logvar``), it is one for all the voices
together. Each :class:`~livelatent.sources.LatentFrames` is copied in once, when a command that
uses it is sent (in the writer's thread, so the decode thread never waits for a large copy), and
keeps its rows from then on.

Rows are only ever appended. When the array is full a larger one is made and the rows copied
into it; a voice table built earlier keeps the array it was built with, whose rows never
change, so the decode thread reads without a lock. The one exception is a live input's ring of
frames (:class:`~livelatent.live_source.LiveFrames`): its rows are written as the input is
encoded, into every array still in use, always some time before the decoder reads them (the
live input's declared delay).
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

__all__ = ["FrameArena"]

_FIRST_ROWS = 1 << 14


class FrameArena:
    """Latent frames side by side: ``rows[offset + i] = [mu_i | logvar_i]`` for each placed set."""

    def __init__(self, latent: int):
        self.latent = latent
        self._rows = np.zeros((_FIRST_ROWS, 2 * latent), dtype=np.float32)
        self._used = 0
        self._offsets: dict[int, tuple[int, object]] = {}   # id(frames) -> (offset, frames)
        self._lock = threading.Lock()
        self._arrays: list = []       # weak references to every array, once live rows exist

    @property
    def rows(self) -> np.ndarray:
        """The array now (rows below every offset handed out so far are final)."""
        return self._rows

    def offset(self, frames) -> int:
        """Where ``frames`` starts, placing it first if it is new here."""
        known = self._offsets.get(id(frames))
        if known is not None and known[1] is frames:
            return known[0]
        if getattr(frames, "live", False):
            with frames.lock:            # no row is written while it is copied and mirrored
                start = self._place(frames)
                frames.mirror(self, start)
                with self._lock:
                    if not self._arrays:
                        self._arrays.append(weakref.ref(self._rows))
                return start
        return self._place(frames)

    def write_live(self, rows: np.ndarray, mu: np.ndarray, logvar: np.ndarray) -> None:
        """Live rows encoded: written into every array still in use."""
        with self._lock:
            for ref in self._arrays:
                array = ref()
                if array is not None:
                    array[rows, :self.latent] = mu
                    array[rows, self.latent:] = logvar
            self._arrays = [ref for ref in self._arrays if ref() is not None]

    def _place(self, frames) -> int:
        with self._lock:
            known = self._offsets.get(id(frames))
            if known is not None and known[1] is frames:
                return known[0]
            count = len(frames)
            if self._used + count > self._rows.shape[0]:
                grown = np.zeros((max(2 * self._rows.shape[0], self._used + count), 2 * self.latent),
                                 dtype=np.float32)
                grown[:self._used] = self._rows[:self._used]
                self._rows = grown
                if self._arrays:
                    self._arrays.append(weakref.ref(grown))
            start = self._used
            self._rows[start:start + count, :self.latent] = frames.mu
            self._rows[start:start + count, self.latent:] = frames.logvar
            self._used += count
            self._offsets[id(frames)] = (start, frames)      # the reference keeps the id unique
            return start

    def __len__(self) -> int:
        return self._used
