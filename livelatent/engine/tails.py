"""The overlap tails of the voices: the second half of each voice's last window, not yet played.

A window spans two steps; its second half sounds in the next step, added to the windows that
start there. Each voice's tail is kept in mono, with the pan gains its window ramped between
(``start`` at the window's first sample, ``end`` at its last), so a live step mixes every tail
with one (2, voices) x (voices, step) product (:func:`panned`) instead of writing and summing a
stereo copy of each; offline paths and stems ask for the stereo tails. When every tail has the
same synthesis shape (a live step of OLA voices), the tails can be kept unshaped with that shape
beside them: it is applied once to the mix, not to every voice's samples. A live step whose gains
hold pans its windows whole, both halves in one product while they are fresh in the processor's
cache, and keeps the second half's mix beside the tails for the next step (``mixed``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["Tails", "panned"]

# From this many rows on, one vector product per channel beats one (channels, rows) x (rows,
# samples) product: BLAS handles a product with two output rows poorly (measured at 128 rows,
# about half the time; below 64 rows the single product is faster).
PER_CHANNEL_FROM = 64


def panned(gains: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Rows of ``samples`` (n, length) weighted by their ``gains`` (n, channels) and summed, per
    channel: (channels, length)."""
    if gains.shape[0] < PER_CHANNEL_FROM:
        return gains.T @ samples
    out = np.empty((gains.shape[1], samples.shape[1]), dtype=np.float32)
    for channel in range(gains.shape[1]):
        out[channel] = gains[:, channel] @ samples
    return out


class Tails:
    """One row per row of the voice table: ``mono`` (n, step) samples, ``start`` and ``end``
    (n, 2) gains. ``ramp`` is the gain ramp over a window's second half (0.5 to 1); ``shape``
    (step,), or None, the synthesis shape every row's samples are still to be multiplied by;
    ``mixed`` (channels, step), or None, what :meth:`mix` gives, worked out already.

    Never changed once made (each step makes new ones), so a rewind's checkpoint keeps a
    reference, not a copy."""

    __slots__ = ("mono", "start", "end", "ramp", "shape", "mixed")

    def __init__(self, mono, start, end, ramp, shape=None, mixed=None):
        self.mono, self.start, self.end, self.ramp, self.shape = mono, start, end, ramp, shape
        self.mixed = mixed

    @classmethod
    def silent(cls, voices: int, step: int, ramp, channels: int = 2) -> "Tails":
        zeros = np.zeros((voices, channels), dtype=np.float32)
        return cls(np.zeros((voices, step), dtype=np.float32), zeros, zeros.copy(), ramp)

    def moved(self, from_old, voices: int) -> "Tails":
        """The tails for a new table: row i takes old row ``from_old[i]`` (-1: a new voice,
        silent)."""
        tails = Tails.silent(voices, self.mono.shape[1], self.ramp, self.start.shape[1])
        tails.shape = self.shape
        kept = from_old >= 0
        tails.mono[kept], tails.start[kept], tails.end[kept] = (
            self.mono[from_old[kept]], self.start[from_old[kept]], self.end[from_old[kept]])
        return tails

    def mix(self) -> np.ndarray:
        """Every tail panned and summed: (2, step). Not to be changed by the caller."""
        if self.mixed is not None:
            return self.mixed
        if np.array_equal(self.start, self.end):
            mix = panned(self.end, self.mono)
        else:
            mix = panned(self.start, self.mono) + panned(self.end - self.start, self.mono * self.ramp)
        if self.shape is not None:
            mix *= self.shape
        return mix

    def stereo(self) -> np.ndarray:
        """Each tail panned: (n, 2, step)."""
        mono = (self.mono if self.shape is None else self.mono * self.shape)[:, None, :]
        return mono * (self.start[:, :, None] + (self.end - self.start)[:, :, None] * self.ramp)

    @classmethod
    def of_windows(cls, voices: int, rows, halves, start, end, ramp, shape=None,
                   mixed=None) -> "Tails":
        """The tails left by windows whose second halves are ``halves`` (m, step), of the table
        rows ``rows``, ramped from ``start`` to ``end`` (m, 2); other rows silent. ``mixed``:
        their mix, when the caller has it."""
        if len(rows) == voices and (voices == 0 or rows[-1] == voices - 1):   # a window per row:
            return cls(halves, start, end, ramp, shape, mixed)   # (sorted, distinct) no copy
        tails = cls.silent(voices, halves.shape[1], ramp, start.shape[1])
        tails.mono[rows], tails.start[rows], tails.end[rows] = halves, start, end
        tails.shape, tails.mixed = shape, mixed
        return tails
