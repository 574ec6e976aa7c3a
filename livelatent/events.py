"""The one channel that reports to the performer: a levelled stream of events.

Everything livelatent wants a performer to read (a curve reverted to its last good one, a
pattern file reloaded, a render finished, the device lost) is an :class:`Event` emitted on the
engine's :class:`Events`. The REPL prints them as they come, the command line prints them
when it can, tests read them. Library code never prints.

Emitting never blocks and never raises (the decode thread emits too); readers keep a cursor
and take what came since, so several readers can follow the same stream.

>>> events = Events()
>>> events.warning("voice drift: reverted to its last good curve")
>>> [str(e) for e in events.since(0)[0]]
['warning: voice drift: reverted to its last good curve']
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from dataclasses import dataclass

__all__ = ["Event", "Events", "Reader", "Printer", "LEVELS"]

LEVELS = ("info", "warning", "error")
_KEPT = 1000          # events kept for readers that fall behind; older ones are dropped


@dataclass(frozen=True)
class Event:
    """One thing to tell the performer."""

    number: int        # its place in the stream, from 1
    level: str         # "info", "warning" or "error"
    text: str
    wall: float        # time.time() when it was emitted

    def __str__(self) -> str:
        return self.text if self.level == "info" else f"{self.level}: {self.text}"


class Events:
    """A thread-safe stream of :class:`Event`, read with cursors (see :meth:`since`)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._kept: deque[Event] = deque(maxlen=_KEPT)
        self._count = 0

    def emit(self, level: str, text: str) -> Event:
        if level not in LEVELS:
            raise ValueError(f"level={level!r} must be one of {LEVELS}")
        with self._lock:
            self._count += 1
            event = Event(self._count, level, str(text), time.time())
            self._kept.append(event)
        return event

    def info(self, text: str) -> Event:
        return self.emit("info", text)

    def warning(self, text: str) -> Event:
        return self.emit("warning", text)

    def error(self, text: str) -> Event:
        return self.emit("error", text)

    @property
    def cursor(self) -> int:
        """The number of the last event: ``since(events.cursor)`` gives only newer ones."""
        return self._count

    def since(self, cursor: int) -> tuple[list[Event], int]:
        """The events after ``cursor`` that are still kept, and the cursor to pass next time."""
        with self._lock:
            return [e for e in self._kept if e.number > cursor], self._count

    def texts(self, level: str | None = None) -> list[str]:
        """The text of every kept event (of one level), oldest first: handy in tests."""
        with self._lock:
            return [e.text for e in self._kept if level is None or e.level == level]

    def __repr__(self) -> str:
        return f"<Events: {self._count} emitted>"


class Reader:
    """A cursor over :class:`Events`: ``take()`` gives what came since the last take."""

    def __init__(self, events: Events, *, from_start: bool = False):
        self.events = events
        self.cursor = 0 if from_start else events.cursor

    def take(self) -> list[Event]:
        taken, self.cursor = self.events.since(self.cursor)
        return taken



class Printer:
    """``with Printer(events):`` prints each event emitted meanwhile, as it comes, on ``stream``
    (standard error by default): how the command line shows the performer the one channel."""

    def __init__(self, events: Events, stream=None, *, every: float = 0.05):
        self.reader = Reader(events)
        self.stream = stream
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="livelatent-printer", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.flush()
        return False

    def flush(self) -> None:
        stream = self.stream or sys.stderr
        for event in self.reader.take():
            try:
                print(event, file=stream, flush=True)
            except (OSError, ValueError):
                return               # the terminal is gone: nothing to tell

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.flush()
