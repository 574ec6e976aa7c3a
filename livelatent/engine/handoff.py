"""The samples between the timeline and whoever takes them (playback or an offline render).

Two small buffers, owned here so the engine does not juggle them:

- the *leftover*: rendered beyond what was asked (an offline render's last span, or what
  playback decoded ahead of the listener when it stopped), handed out first next time, so
  renders in pieces and a render followed by playback join seamlessly;
- the *recent* samples: the last ones handed out, which a resampler reads back to continue
  exactly where the previous output stopped.

It also keeps where the last few spans began (their first sample and the timeline's checkpoint
before them), so the leftover can be made again: a render with stems needs each voice's part
of samples rendered before stems were asked for (:func:`~.offline.remake_leftover`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["HandOff", "RECENT"]

RECENT = 256          # samples kept from just before the position (resampling reads back)
SPANS_KEPT = 2        # spans whose start is kept (a resampled piece's look-ahead may reach back
                      # into the span before the leftover's; the schedule is kept from there)


class HandOff:
    def __init__(self, channels: int = 2):
        self._leftover = np.zeros((0, channels), dtype=np.float32)   # rendered, not yet handed out
        self._recent = np.zeros((0, channels), dtype=np.float32)     # handed out just before position
        self._spans: list[tuple[int, object]] = []      # (first sample, checkpoint before it)

    @property
    def leftover_size(self) -> int:
        return self._leftover.shape[0]

    def take_leftover(self) -> np.ndarray:
        """Samples rendered but not handed out yet (they come first)."""
        leftover, self._leftover = self._leftover, self._leftover[:0]
        return leftover

    def give_leftover(self, samples: np.ndarray) -> None:
        """Samples decoded ahead of the listener but not played, to hand out next."""
        self._leftover = np.ascontiguousarray(samples, dtype=np.float32)

    def give_back(self, samples: np.ndarray) -> None:
        """``samples``, the last handed out, were only looked ahead at: they are handed out
        again first, and the position is where it was before them. The recent samples before
        them stay as far as :data:`RECENT` kept them: a resampler reading back ``reach``
        samples needs ``len(samples) + reach <= RECENT``."""
        count = samples.shape[0]
        self._leftover = np.concatenate([np.asarray(samples, dtype=np.float32), self._leftover])
        self._recent = self._recent[:max(0, self._recent.shape[0] - count)]

    def note_span(self, first: int, checkpoint) -> None:
        """A span from sample ``first`` is rendered next, from the timeline's ``checkpoint``."""
        self._spans.append((first, checkpoint))
        del self._spans[:-SPANS_KEPT]

    def span_before(self, sample: int):
        """``(first sample, checkpoint)`` of the latest noted span that starts at or before
        ``sample``, or None."""
        for first, checkpoint in reversed(self._spans):
            if first <= sample:
                return first, checkpoint
        return None

    def oldest_span_step(self) -> int | None:
        """The step the oldest noted span starts at (the timeline keeps what it needs from
        there), or None."""
        return self._spans[0][1].step if self._spans else None

    def forget_spans(self) -> None:
        """The timeline moves on another way (live playback): noted spans can no longer be
        rendered again."""
        self._spans.clear()

    def recent(self, count: int) -> np.ndarray:
        """Up to ``count`` samples handed out just before the position."""
        return self._recent[-count:]

    def handed_out(self, block: np.ndarray) -> None:
        """``block`` was just handed out: keep its last samples."""
        if block.shape[0] >= RECENT:
            self._recent = np.ascontiguousarray(block[-RECENT:], dtype=np.float32)
        elif block.shape[0]:
            self._recent = np.concatenate([self._recent, block.astype(np.float32)])[-RECENT:]

    def replace_recent(self, samples: np.ndarray) -> None:
        """What was handed out before the position is ``samples`` (playback stopping)."""
        self._recent = np.ascontiguousarray(samples[-RECENT:], dtype=np.float32)
