"""The journal's ear on the engine: every landed batch, whoever sent it, written down as data.

A :class:`JournalRecorder` is an engine recorder (``Engine.add_recorder``). Before a batch is
sent it encodes its commands and refuses one it could not record faithfully: a value that is
not code (a curve made from a Python function) sent by a writer that is not a cell, since no
replay could rebuild it. After the batch lands it writes the sources it uses (once) and the
batch itself, with its origin, its cell and its landing sample, in the writer's own thread.
Controller values (many a second) are kept and written together, a ``controls`` record every
quarter second or so, and before any other record; so are the blocks of performer code found
slow (told on the decode thread, which must not wait for a write).
"""

from __future__ import annotations

import threading
import time
from collections import deque

from ..errors import LiveLatentError, SetError
from .journal import Journal
from .records import NotCode, SourceStore, encode_command, not_code, sources_used

__all__ = ["JournalRecorder", "CONTROLS_EVERY_S"]

CONTROLS_EVERY_S = 0.25     # controller values are written together at least this often


class JournalRecorder:
    """Records ``engine``'s batches in ``journal``; embedded sources go to ``store``'s folder."""

    def __init__(self, journal: Journal, store: SourceStore, *, events):
        self.journal = journal
        self.store = store
        self.events = events
        self._written: set[str] = set()
        self._lock = threading.Lock()
        self.failed = False
        self._controls: dict[str, list] = {}       # origin -> [seq, sample, name, value] kept
        self._controls_since = 0.0
        self._slow: deque = deque()     # slow blocks told, not written yet (no lock: the
                                        # decode thread tells them, and landed() holds the
                                        # lock through a write)

    def check(self, batch) -> None:
        if batch.cell is not None:       # (not on every controller batch: a cell's pace)
            self.store.files.retry()
        encoded = [encode_command(command, self.store) for command in batch.commands]
        self.say_unwritten()
        if batch.cell is None:
            for data in encoded:
                for fn in not_code(data):
                    raise NotCode(f"{fn} is a Python function, and a change sent by "
                                  f"{batch.origin} is recorded as data: build the curve from "
                                  f"livelatent's curves (sine, seq, env...), or set it from a cell")
        batch.encoded = encoded

    def say_unwritten(self) -> None:
        """Say (once per file) what could not be written into the set: the change is heard,
        the set renders once it is written (tried again at each cell, save() and the end)."""
        failed = self.store.files.take_errors()
        if failed:
            self.events.error(f"cannot write {', '.join(failed)} into the set: it plays, but the set "
                              f"cannot be rendered until it is written (tried again at each cell, "
                              f"at save() and at the end)")

    def outage(self, sample: int, *, lost: bool) -> None:
        """The device was lost (or came back) with the listener at ``sample``: on the record,
        though the sound does not change (the timeline waited)."""
        try:
            self.journal.record_outage(sample, lost=lost)
        except (SetError, LiveLatentError):
            pass                         # said by the next batch that cannot be recorded

    def slow_block(self, key: str, voice: int, window: int) -> None:
        """A block of voice ``voice``'s performer code was slow from ``window`` on (see
        :mod:`livelatent.engine.slow_blocks`): written with the next controller values."""
        self._slow.append({"key": key, "voice": int(voice), "window": int(window)})

    def landed(self, batch) -> None:
        encoded = batch.encoded
        if encoded is None:
            encoded = [encode_command(command, self.store) for command in batch.commands]
        if batch.cell is None and encoded and all(d["op"] == "control" for d in encoded):
            self._controls_landed(batch, encoded)      # many a second: kept, written together
            return
        self.flush()
        with self._lock:
            readings = [self._reading_data(data) for data in batch.read]
            keys = [k for data in encoded for k in sources_used(data)] + [
                d[name]["array"] for d in readings for name in d if isinstance(d[name], dict)]
            keys = [k for k in keys if k not in self._written]
            records = [self.store.records[k] for k in dict.fromkeys(keys)]
            try:
                self.journal.record_batch(seq=batch.seq, origin=batch.origin, cell=batch.cell,
                                          sample=batch.landed_at, commands=encoded, sources=records,
                                          readings=readings)
            except (SetError, LiveLatentError) as exc:   # the sound changed: say it is not recorded
                if not self.failed:
                    self.events.error(f"{exc}: this change is heard but not recorded; a replay "
                                      f"of the set will miss it")
                self.failed = True
                return
            self._written.update(keys)

    def _reading_data(self, data: dict) -> dict:
        """A reading as data: its arrays (an example's target) written into the set."""
        return {name: {"array": self.store.describe_array(value, name=f"{data.get('mapping')}.{name}",
                                                          kind="mapping")}
                if hasattr(value, "shape") else value for name, value in data.items()}

    # -- controller values: compact, a record every quarter second or so -----------------------
    def _controls_landed(self, batch, encoded) -> None:
        with self._lock:
            if not self._controls:
                self._controls_since = time.monotonic()
            self._controls.setdefault(batch.origin, []).extend(
                [batch.seq, batch.landed_at, d["name"], d["value"]] for d in encoded)
            due = time.monotonic() - self._controls_since > CONTROLS_EVERY_S
        if due:
            self.flush()

    def flush(self) -> None:
        """Write the controller values kept so far, a record per origin (before any other
        record, at each note of where the listener is, at the end)."""
        with self._lock:
            kept, self._controls = self._controls, {}
        slow = []
        while True:              # (two threads may flush at once: each takes what it gets)
            try:
                slow.append(self._slow.popleft())
            except IndexError:
                break
        try:
            if slow:
                self.journal.record_slow(slow)
            for origin, values in kept.items():
                self.journal.record_controls(origin, values)
        except (SetError, LiveLatentError) as exc:
            if not self.failed:
                self.events.error(f"{exc}: controller values are heard but not recorded")
            self.failed = True
