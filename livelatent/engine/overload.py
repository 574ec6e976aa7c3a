"""When the decoder cannot keep up: fewer voices, decided in the open, instead of clicks.

Live, the :class:`OverloadGuard` watches how much CPU time the decode thread spends on a step
against the step's duration. When that load, over the last :data:`WINDOW_S`, is above
:data:`HIGH` (too many voices, a slow machine), it mutes the newest voices, as many as it takes
to bring the load back to :data:`TARGET`, each with a short fade, in one batch of origin
``overload``. The batch lands where the decoder has got to, so it costs no re-decoding. The batch is journaled like any other writer's, so the set's render is what the
audience heard; the status line says so once, with what each voice costs. Underruns stay the
last resort: the guard acts while what was decoded ahead still covers the listener.

The order is declared and deterministic: the newest voices (highest numbers) go first.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from .commands import StopVoice
from .writers import Batch

__all__ = ["OverloadGuard", "DecodeMeter", "HIGH", "TARGET", "WINDOW_S", "FADE_S"]

HIGH = 0.9             # decode time over step time, averaged: above this the decoder falls behind
TARGET = 0.75          # what the guard brings it back to
WINDOW_S = 0.1         # the load is averaged over the steps of this long
FADE_S = 0.05          # the fade of a muted voice
_CHECK_S = 0.02
_SETTLE_S = 0.5        # after acting, the load is measured afresh before acting again


class DecodeMeter:
    """How long the decode thread takes for its steps: wall time (the status line's load) and
    its own CPU time (the guard's: waiting for the GIL while the performer's code runs is not
    the decoder falling behind)."""

    def __init__(self, step_seconds: float):
        self.step_seconds = step_seconds
        self._wall: deque = deque(maxlen=64)
        self._cpu: deque = deque(maxlen=512)

    def begin(self) -> tuple[float, float]:
        return time.perf_counter(), time.thread_time()

    def end(self, began: tuple[float, float]) -> None:
        self._wall.append(time.perf_counter() - began[0])
        self._cpu.append(time.thread_time() - began[1])

    def load(self) -> float:
        """Wall time over step time, over the last steps."""
        spans = list(self._wall)
        return sum(spans) / (len(spans) * self.step_seconds) if spans else 0.0

    def longest_recent(self, count: int = 8) -> float | None:
        """The longest wall time of the last ``count`` steps (None: none yet)."""
        spans = list(self._wall)[-count:]
        return max(spans) if spans else None

    def recent_load(self, seconds: float) -> float | None:
        """CPU time over step time, for the steps of the last ``seconds`` (None: not that many)."""
        count = max(1, int(round(seconds / self.step_seconds)))
        spans = list(self._cpu)[-count:]
        return sum(spans) / (count * self.step_seconds) if len(spans) == count else None

    def forget(self) -> None:
        self._cpu.clear()


class OverloadGuard:
    """Watches a :class:`~.playback.Playback` and mutes voices when its decoder falls behind."""

    def __init__(self, playback):
        self.playback = playback
        self.engine = playback.engine
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="livelatent-overload", daemon=True)
        self.muted: list[int] = []

    def start(self) -> "OverloadGuard":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(_CHECK_S):
            playback = self.playback
            if not playback.running or playback.lost:
                continue
            load = playback.meter.recent_load(WINDOW_S)
            if load is not None and load > HIGH:
                self._shed(load, at=playback.decoded_to)
                self._stop.wait(_SETTLE_S)
                playback.meter.forget()

    def _shed(self, load: float, *, at: int) -> None:
        """Mute the newest voices, enough to bring ``load`` down to :data:`TARGET`."""
        engine = self.engine
        voices = sorted((p for p in engine.intended_voices()), key=lambda p: p.index)
        if not voices:
            return
        # a voice costs its decoded windows per output window (a cloud of k points: k)
        costs = np.array([p.plan.points for p in voices], dtype=np.float64)
        budget = costs.sum() * TARGET / load
        keep = int(np.searchsorted(np.cumsum(costs), budget, side="right"))
        going = voices[keep:] or voices[-1:]
        fade = int(FADE_S * engine.sample_rate)
        batch = Batch(engine, "overload", at=at, commands=[StopVoice(p.index, fade) for p in going])
        try:
            engine.send(batch)
        except Exception as exc:        # the guard must never take the sound down with it
            engine.events.error(f"overload guard: {type(exc).__name__}: {exc}")
            return
        self.muted.extend(p.index for p in going)
        each = 100.0 * load / costs.sum()
        names = ", ".join(p.name for p in reversed(going))
        engine.events.warning(
            f"overload: the decoder needed {100 * load:.0f}% of real time with {len(voices)} "
            f"voices (about {each:.1f}% per decoded window); muted the newest {len(going)}: {names}")
