"""Transport: engine samples -> beats, with tempo changes at sample positions.

Time inside the engine is counted in samples, never read from the wall clock. A tempo change
starts a new segment at a sample position, so beats stay continuous across changes.
"""

from __future__ import annotations

import math

import numpy as np

from ..config import BEATS_PER_BAR, DEFAULT_TEMPO_BPM
from ..errors import check_number

__all__ = ["Clock", "check_tempo"]


def check_tempo(bpm) -> float:
    return check_number(bpm, name="tempo", low=1.0, high=1000.0, meaning="of beats per minute from 1 to 1000")


class Clock:
    """Piecewise-constant tempo: segments ``(start_sample, start_beat, bpm)``, sorted.

    Immutable: :meth:`with_tempo` returns a new clock, so engine snapshots can share it.
    """

    __slots__ = ("sample_rate", "segments", "beats_per_bar", "_starts", "_beat0", "_bpm")

    def __init__(self, sample_rate: int, bpm: float = DEFAULT_TEMPO_BPM, *,
                 beats_per_bar: int = BEATS_PER_BAR, segments=None):
        self.sample_rate = int(sample_rate)
        self.beats_per_bar = beats_per_bar
        self.segments = tuple(segments) if segments else ((0, 0.0, check_tempo(bpm)),)
        # the segments as arrays, once: beats() runs for every voice on every step
        self._starts = np.array([s[0] for s in self.segments], dtype=np.float64)
        self._beat0 = np.array([s[1] for s in self.segments], dtype=np.float64)
        self._bpm = np.array([s[2] for s in self.segments], dtype=np.float64)

    @property
    def bpm(self) -> float:
        return self.segments[-1][2]

    def bpm_at(self, sample: int) -> float:
        return self._segment(sample)[2]

    def with_tempo(self, bpm: float, at_sample: int, beat: float | None = None) -> "Clock":
        """A clock whose tempo changes to ``bpm`` at ``at_sample`` (later segments dropped),
        where the beat goes on from the one before, or is ``beat`` (a shared clock's phase)."""
        bpm = check_tempo(bpm)
        if beat is None and self.segments[-1][0] < at_sample and self.segments[-1][2] == bpm:
            return self          # the same tempo on: no segment (a timer may send it every step)
        beat = float(self.beats(at_sample)) if beat is None else float(beat)
        kept = tuple(s for s in self.segments if s[0] < at_sample)
        return Clock(self.sample_rate, beats_per_bar=self.beats_per_bar,
                     segments=kept + ((int(at_sample), beat, bpm),))

    def _segment(self, sample: int):
        return self.segments[max(0, int(np.searchsorted(self._starts, sample, side="right")) - 1)]

    def beats(self, samples):
        """Beats elapsed at ``samples`` (int or int array)."""
        samples = np.asarray(samples, dtype=np.float64)
        if len(self.segments) == 1:
            start, beat0, bpm = self.segments[0]
            return beat0 + (samples - start) * (bpm / 60.0 / self.sample_rate)
        idx = np.clip(np.searchsorted(self._starts, samples, side="right") - 1, 0, None)
        return self._beat0[idx] + (samples - self._starts[idx]) * (self._bpm[idx] / 60.0 / self.sample_rate)

    def sample_at_beat(self, beat: float) -> float:
        """The (fractional) sample at which ``beat`` falls."""
        reached = np.flatnonzero(self._beat0 <= beat)      # the last segment begun by then
        start, beat0, bpm = self.segments[int(reached[-1]) if reached.size else 0]
        return start + (beat - beat0) * 60.0 / bpm * self.sample_rate

    def next_boundary(self, sample: int, unit_beats: float) -> float:
        """First sample at or after ``sample`` that falls on a multiple of ``unit_beats``."""
        beat = float(self.beats(sample))
        target = math.ceil(beat / unit_beats - 1e-9) * unit_beats
        return self.sample_at_beat(target)

    def position(self, sample: int) -> tuple[float, int, float]:
        """(beats, bar number from 1, beat within bar from 1) at ``sample``."""
        beat = float(self.beats(sample))
        bar, within = divmod(beat, self.beats_per_bar)
        return beat, int(bar) + 1, within + 1
