"""Controller values into the engine: at most one batch a step, journaled like any change.

Values arrive whenever the network or a MIDI port delivers them, up to hundreds a second.
Each change that lands re-decodes what was decoded ahead of it. A :class:`ControlSender` keeps
only the newest value of each controller and sends what it holds as one batch (origin ``osc``,
``midi``...), at most one a step; and while the steps that its last batch re-decoded are still
ahead of the listener, the next batch lands after them (at the decode front as it was), never
among them. So a step is re-decoded at most once however fast a controller sweeps: a lone
change is heard at once, a sweep's values up to one lookahead later. The batches land on steps
and are journaled with their origin, so a replay takes the values from the journal.
"""

from __future__ import annotations

import threading

from ..engine.commands import SetControl
from ..engine.writers import Batch

__all__ = ["ControlSender"]


class ControlSender:
    """The newest value of each controller, sent to ``engine`` once a step by a thread."""

    def __init__(self, engine, origin: str, throttle):
        self.engine, self.origin, self.throttle = engine, origin, throttle
        self.sent = 0                               # batches sent (for tests and benchmarks)
        self._pending: dict[str, float] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._not_before = 0         # the decode front when the last batch landed
        self._thread = threading.Thread(target=self._run, name=f"livelatent-{origin}", daemon=True)
        self._thread.start()

    def set(self, name: str, value: float) -> None:
        with self._lock:
            self._pending[name] = float(value)
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        step_s = self.engine.step / self.engine.sample_rate
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                pending, self._pending = self._pending, {}
            if not pending:
                continue
            commands = [SetControl(name, value) for name, value in sorted(pending.items())]
            engine = self.engine
            live = engine.playback is not None
            front = engine.timeline.step * engine.step          # decoded up to here, now
            at = self._not_before if live and self._not_before > engine.position else None
            try:
                engine.send(Batch(engine, self.origin, at=at, commands=commands))
                self.sent += 1
                if live:
                    self._not_before = max(front, at or 0)    # what this landing re-decodes
            except Exception as exc:        # noqa: BLE001 - nothing from outside stops the sound
                self.throttle.warn(f"{self.origin}:send", f"{self.origin}: {exc}")
            self._stop.wait(step_s)         # at most one batch a step: newer values wait for it
