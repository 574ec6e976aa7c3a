"""Writers and their batches: who sends commands to the engine, and how they land together.

Many things write to the engine at once: REPL cells, pattern files, timers, threads a cell
started, and later controllers. Each writer gathers the commands of one gesture in a
:class:`Batch` (a cell, one reload of a pattern file, one tick of a timer); the whole batch
lands on one sample. The open batch lives in a context variable, so it belongs to the writer
that opened it: a command sent from another thread is never swallowed by a cell that happens
to be open at the time, but goes out as a batch of its own.

``origin`` says who wrote a batch (``repl``, ``pattern:drift.py``, ``timer``, ``thread:...``):
the journal records it with the landing sample.
"""

from __future__ import annotations

import contextvars
import threading
from dataclasses import dataclass, field

__all__ = ["Batch", "current_batch", "writer_origin", "default_origin", "CheckOutcomes"]

_batch: contextvars.ContextVar = contextvars.ContextVar("livelatent_batch", default=None)
_origin: contextvars.ContextVar = contextvars.ContextVar("livelatent_origin", default=None)


def current_batch(engine=None):
    """The batch this writer has open (on ``engine``, when given), or None."""
    batch = _batch.get()
    if batch is None or (engine is not None and batch.engine is not engine):
        return None
    return batch


def default_origin() -> str:
    """Who is writing when no batch says: the origin set for this context, else the thread."""
    origin = _origin.get()
    if origin is not None:
        return origin
    thread = threading.current_thread()
    return "script" if thread is threading.main_thread() else f"thread:{thread.name}"


class writer_origin:
    """``with writer_origin("osc"):`` commands sent inside are journaled with that origin."""

    def __init__(self, origin: str):
        self.origin = str(origin)

    def __enter__(self):
        self._token = _origin.set(self.origin)
        return self

    def __exit__(self, *exc):
        _origin.reset(self._token)
        return False


class CheckOutcomes:
    """The outcomes of a batch's wall-clock checks (a new curve's speed), in order.

    Live, each check appends its outcome (None, or the error it raised). A replay hands the
    journaled outcomes back in the same order instead of timing again, so a curve refused
    live is refused in the replay too, and everything after it happens the same way.
    """

    def __init__(self, recorded: list | None = None):
        self.replaying = recorded is not None
        self._recorded = list(recorded or [])
        self.outcomes: list = []

    def next_recorded(self):
        """The next journaled outcome (None: it passed). Only while replaying."""
        return self._recorded.pop(0) if self._recorded else None

    def add(self, outcome) -> None:
        self.outcomes.append(outcome)


@dataclass
class Batch:
    """The commands one writer sends together, landing on one sample.

    ``at`` asks for a later sample (a replay's recorded one, a timer's beat); ``cell`` is the
    journal entry of the code that made it, when code made it. After it is sent, ``seq`` is
    its place in the engine's sending order and ``landed_at`` the sample it landed on.
    """

    engine: object
    origin: str
    at: int | None = None
    cell: int | None = None
    commands: list = field(default_factory=list)
    numbers: list = field(default_factory=list)      # voice numbers taken by its voices
    checks: CheckOutcomes = field(default_factory=CheckOutcomes)
    capture: bool = False      # a replayed cell's batch: its commands are collected, never sent
    key: object = None         # what a sealed engine (a replay) asks of the batches it lands
    encoded: list | None = None   # its commands as the journal writes them (set by recorders)
    given_numbers: list = field(default_factory=list)   # a replay's: the numbers voices had live
    seq: int | None = None
    landed_at: int | None = None
    # what the batch reads from the timeline where it lands (a mapping's examples): objects with
    # read(sample) -> data, which the journal keeps (``read``, after landing); a replayed cell's
    # batch is handed the journaled data instead (``recorded``, taken in order)
    readings: list = field(default_factory=list)
    read: list = field(default_factory=list)
    recorded: list = field(default_factory=list)

    def savepoint(self) -> tuple[int, int, int]:
        return len(self.commands), len(self.numbers), len(self.readings)

    def rollback(self, savepoint: tuple) -> list:
        """Drop what came after ``savepoint``; returns the voice numbers it had taken."""
        commands, numbers, readings = (tuple(savepoint) + (0,))[:3]
        taken = self.numbers[numbers:]
        for reading in self.readings[readings:]:
            reading.cancel()
        del self.commands[commands:]
        del self.numbers[numbers:]
        del self.readings[readings:]
        return taken

    def enter(self):
        return _batch.set(self)

    @staticmethod
    def leave(token) -> None:
        _batch.reset(token)
