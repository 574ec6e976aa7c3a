"""The frame arena: every latent frame the voices read, in one array.

A step reads one latent frame of source A and one of source B for every voice. With each
source's frames in an array of their own that is a pair of indexing operations per voice; with
all of them side by side in one array, it is one for all the voices together. The array has two
planes: ``rows[0]`` the frames' means and ``rows[1]`` their log standard deviations (half the
log-variance), each contiguous, so the gathered points and deviations are contiguous too (numpy
works through a (voices, latent) half of a wider row several times slower), and a step takes
``exp`` of a mix of deviations without halving it first. Halving is exact in floating point
(for normal numbers: not in float32's subnormal range), so a weighted mix of halves is exactly
half the mix of log-variances.

Each :class:`~livelatent.sources.LatentFrames` is copied in once, when a command that uses it is
sent (in the writer's thread, so the decode thread never waits for a large copy), and keeps its
rows from then on.

Frames whose numbers are already here take the rows that hold them: a performer who types
``voice(source("cello.flac"), ...)`` again gets new frames objects with the same numbers each
time, and a set of an hour re-evaluates such cells hundreds of times (each copy was kept, about
2 MB for a few seconds of sound, for the rest of the session). Frames are known by a digest of
their numbers, worked out once per frames object in the writer's thread; the arena keeps no
frames object alive (it refers to them weakly).

Rows are appended. When the array is full a new one is made and the rows still wanted copied
into it: those of frames objects still alive (a voice, a checkpoint or the performer's namespace
holds them), packed around the live rings (which stay put), in an array of the same size when
they and the new frames fill at most half of it and fit, of twice the size otherwise. Frames
whose every object is gone give their rows back, so a session that makes new sources for an hour
(arrays made in code, recordings) does not keep every one it ever played. (Frames held only by a
reference cycle stay until Python's collector runs: a source is in none.)
A voice table built earlier keeps the array it was built with, whose rows never change, so the
decode thread reads without a lock; a table being built reads :attr:`FrameArena.generation`
before and after it places its frames, and places them again if rows moved meanwhile. The one
exception is a live input's ring of frames (:class:`~livelatent.live_source.LiveFrames`): its
rows are written as the input is encoded, into every array in use that holds it, always some time
before the decoder reads them (the live input's declared delay). A ring never moves: it has the
same offset in every array made from the one it was placed in (arrays made before hold other
frames there, and are never written).
"""

from __future__ import annotations

import hashlib
import threading
import weakref

import numpy as np

__all__ = ["FrameArena"]

_FIRST_ROWS = 1 << 14


class FrameArena:
    """Latent frames side by side: ``rows[0, offset + i] = mu_i`` and ``rows[1, offset + i] =
    logvar_i / 2`` for each placed set."""

    def __init__(self, latent: int, first_rows: int | None = None):
        self.latent = latent
        self._rows = np.zeros((2, first_rows or _FIRST_ROWS, latent), dtype=np.float32)
        self._used = 0
        # even while rows stay where they are; odd while they move (a seqlock for table builders)
        self.generation = 0
        # id(frames) -> (offset, a weak reference to it, or for a live ring the ring itself)
        self._offsets: dict[int, tuple[int, object]] = {}
        self._by_numbers: dict[bytes, int] = {}             # digest of the numbers -> offset
        self._known_alive = 64           # entries of ``_offsets`` when it was last swept
        self._lock = threading.Lock()
        # the arrays live rings are in: [a weak reference to the array, the ids of its rings]
        self._arrays: list[tuple[weakref.ref, set[int]]] = []

    @property
    def rows(self) -> np.ndarray:
        """The array now (rows below every offset handed out so far are final)."""
        return self._rows

    def offset(self, frames) -> int:
        """Where ``frames`` starts, placing it first if it is new here."""
        known = self._offsets.get(id(frames))
        if known is not None and _referent(known[1]) is frames:
            return known[0]
        if getattr(frames, "live", False):
            with frames.lock:            # no row is written while it is copied and mirrored
                start = self._place(frames, None)
                frames.mirror(self, start)
                return start
        return self._place(frames, _digest(frames))

    def steady_generation(self) -> int:
        """:attr:`generation` once no rows are moving (it waits for a move in progress)."""
        generation = self.generation
        if generation % 2:
            with self._lock:
                generation = self.generation
        return generation

    def write_live(self, ring, rows: np.ndarray, mu: np.ndarray, logvar: np.ndarray) -> None:
        """Rows of live ``ring`` encoded: written into every array in use that holds it (at the
        same offset in each: a ring never moves)."""
        with self._lock:
            self._arrays = [(ref, rings) for ref, rings in self._arrays if ref() is not None]
            for ref, rings in self._arrays:
                array = ref()
                if array is not None and id(ring) in rings:
                    array[0, rows] = mu
                    array[1, rows] = np.multiply(logvar, np.float32(0.5), dtype=np.float32)

    def _place(self, frames, digest: bytes | None) -> int:
        """Copy ``frames`` in (unless frames with the same ``digest`` are here: None for a live
        ring, whose rows change)."""
        with self._lock:
            known = self._offsets.get(id(frames))
            if known is not None and _referent(known[1]) is frames:
                return known[0]
            if digest is not None and digest in self._by_numbers:
                start = self._by_numbers[digest]
                self._remember(frames, start)
                return start
            count = len(frames)
            if self._used + count > self._rows.shape[1]:
                self._make_room(count)
            start = self._used
            self._rows[0, start:start + count] = frames.mu
            self._rows[1, start:start + count] = np.multiply(frames.logvar, np.float32(0.5),
                                                             dtype=np.float32)
            self._used += count
            if digest is not None:
                self._by_numbers[digest] = start
            elif getattr(frames, "live", False):      # its rows are written into this array
                self._holding_rings(self._rows).add(id(frames))
            self._remember(frames, start)
            return start

    def _make_room(self, count: int) -> None:
        """A new array with the rows still wanted, packed, and room for ``count`` more (under the
        lock). Live rings keep their offsets (their mirrors write there in every array)."""
        kept, rings_kept = self._alive()
        rings = sorted((start, start + n) for start, (n, live) in kept.items() if live)
        moved, cursor = {}, 0
        for start in sorted(kept):
            n, live = kept[start]
            if live:
                moved[start] = start
                continue
            for ring_start, ring_end in rings:        # around the rings, which stay put
                if cursor < ring_end and ring_start < cursor + n:
                    cursor = ring_end
            moved[start] = cursor
            cursor += n
        used = max([cursor] + [end for _, end in rings])
        alive = sum(n for n, _ in kept.values())
        size = self._rows.shape[1]
        if 2 * (alive + count) > size or used + count > size:
            size = max(2 * size, used + count)
        rows = np.zeros((2, size, self.latent), dtype=np.float32)
        for start, (n, _) in kept.items():
            rows[:, moved[start]:moved[start] + n] = self._rows[:, start:start + n]
        offsets = {key: (moved[start], entry) for key, (start, entry) in self._offsets.items()
                   if start in moved and _referent(entry) is not None}
        by_numbers = {digest: moved[start] for digest, start in self._by_numbers.items()
                      if start in moved}
        self.generation += 1                 # odd: a table placing its frames now places them again
        self._rows, self._used, self._offsets, self._by_numbers = rows, used, offsets, by_numbers
        self.generation += 1
        self._known_alive = max(64, len(offsets))
        if rings_kept:
            self._holding_rings(rows).update(rings_kept)

    def _alive(self) -> tuple[dict[int, tuple[int, bool]], set[int]]:
        """The rows still wanted, start -> (rows, whether a live ring's), and the live rings' ids."""
        kept, rings = {}, set()
        for key, (start, entry) in self._offsets.items():
            frames = _referent(entry)
            if frames is not None:
                live = bool(getattr(frames, "live", False))
                kept[start] = (len(frames), live)
                if live:
                    rings.add(key)
        return kept, rings

    def _holding_rings(self, array) -> set:
        """The ids of the live rings ``array`` holds (a set to add to; under the lock)."""
        for ref, rings in self._arrays:
            if ref() is array:
                return rings
        self._arrays.append((weakref.ref(array), set()))
        return self._arrays[-1][1]

    def _remember(self, frames, start: int) -> None:
        """Know ``frames`` by its id from now on (under the lock). A live ring is kept (it
        mirrors its rows here); other frames weakly, and ids of frames gone are forgotten."""
        live = getattr(frames, "live", False)
        self._offsets[id(frames)] = (start, frames if live else weakref.ref(frames))
        if len(self._offsets) > 2 * self._known_alive:
            self._offsets = {key: entry for key, entry in self._offsets.items()
                             if _referent(entry[1]) is not None}
            self._known_alive = max(64, len(self._offsets))

    def __len__(self) -> int:
        return self._used


def _referent(entry):
    """What an entry of the arena's offsets refers to (None once it is gone)."""
    return entry() if isinstance(entry, weakref.ref) else entry


def _digest(frames) -> bytes:
    """A digest of the numbers ``frames`` puts in the arena (its means, then log-variances)."""
    h = hashlib.blake2b(digest_size=20)
    for part in (frames.mu, frames.logvar):
        part = np.ascontiguousarray(part, dtype=np.float32)
        h.update(str(part.shape).encode())
        h.update(memoryview(part).cast("B"))
    return h.digest()
