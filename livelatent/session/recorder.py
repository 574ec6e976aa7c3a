"""The journal's ear on the engine: every landed batch, whoever sent it, written down as data.

A :class:`JournalRecorder` is an engine recorder (``Engine.add_recorder``). Before a batch is
sent it encodes its commands and refuses one it could not record faithfully: a value that is
not code (a curve made from a Python function) sent by a writer that is not a cell, since no
replay could rebuild it. After the batch lands it writes the sources it uses (once) and the
batch itself, with its origin, its cell and its landing sample, in the writer's own thread.
"""

from __future__ import annotations

import threading

from ..errors import LiveLatentError, SetError
from .journal import Journal
from .records import NotCode, SourceStore, encode_command, not_code, sources_used

__all__ = ["JournalRecorder"]


class JournalRecorder:
    """Records ``engine``'s batches in ``journal``; embedded sources go to ``store``'s folder."""

    def __init__(self, journal: Journal, store: SourceStore, *, events):
        self.journal = journal
        self.store = store
        self.events = events
        self._written: set[str] = set()
        self._lock = threading.Lock()
        self.failed = False

    def check(self, batch) -> None:
        encoded = [encode_command(command, self.store) for command in batch.commands]
        if batch.cell is None:
            for data in encoded:
                for fn in not_code(data):
                    raise NotCode(f"{fn} is a Python function, and a change sent by "
                                  f"{batch.origin} is recorded as data: build the curve from "
                                  f"livelatent's curves (sine, seq, env...), or set it from a cell")
        batch.encoded = encoded

    def outage(self, sample: int, *, lost: bool) -> None:
        """The device was lost (or came back) with the listener at ``sample``: on the record,
        though the sound does not change (the timeline waited)."""
        try:
            self.journal.record_outage(sample, lost=lost)
        except (SetError, LiveLatentError):
            pass                         # said by the next batch that cannot be recorded

    def landed(self, batch) -> None:
        encoded = batch.encoded
        if encoded is None:
            encoded = [encode_command(command, self.store) for command in batch.commands]
        with self._lock:
            keys = [k for data in encoded for k in sources_used(data) if k not in self._written]
            records = [self.store.records[k] for k in dict.fromkeys(keys)]
            try:
                self.journal.record_batch(seq=batch.seq, origin=batch.origin, cell=batch.cell,
                                          sample=batch.landed_at, commands=encoded, sources=records,
                                          durable=not all(d["op"] == "control" for d in encoded))
            except (SetError, LiveLatentError) as exc:   # the sound changed: say it is not recorded
                if not self.failed:
                    self.events.error(f"{exc}: this change is heard but not recorded; a replay "
                                      f"of the set will miss it")
                self.failed = True
                return
            self._written.update(keys)
