"""The journal: everything that changed the sound, whoever sent it, with the sample it landed on.

A journal is a JSON Lines file, appended to and never rewritten. Each line is one record
(``"v"``, the format: 3, and 2 read alike, its voices without paths; ``slow`` records are 4,
which a reader of 3 refuses rather than render without them):

- ``session`` when a session opens it: the model (path and content hash), the engine's seed,
  tempo and sample rate, and the play position then. A journal holds one session, or several
  when a set folder is reopened; each session's samples count from its own engine's start,
  except a session marked ``resumed`` (``livelatent live --resume``): it rebuilt the state
  the journal ended in and carried on the same timeline from ``position``.
- ``cell`` *before* code runs: a REPL cell, a pattern file's run (``origin``), its ``code``,
  the play ``position`` then. For a reader to follow the performance, and to rebuild names.
- ``source``: a source the commands below use, once (see :mod:`.records`).
- ``batch`` after it landed: the commands of one writer's batch as data, its ``origin``
  (``repl``, ``pattern:drift.py``, ``timer``, ``thread:...``), the ``cell`` that made it if code
  did, its place ``seq`` in the engine's sending order and the ``sample`` it landed on.
- ``controls``: controller values that landed (OSC, MIDI), many batches in one record: each
  ``[seq, sample, name, value]``, written every quarter second or so.
- ``applied`` after a cell ran: where its changes landed, the error it raised (and on which
  line), and the outcomes of its wall-clock checks (``checks``), which a replay repeats.
- ``end``: the sample at which the performance ended (the listener had heard everything).
- ``outage``: the audio device was lost (or came back) with the listener at ``sample``; the
  timeline waited, so the sound does not change.
- ``slow``: a block of a voice's performer code (a ``curve(fn)``) ran past its deadline live
  and played as a failing curve would from ``window`` (:mod:`livelatent.engine.slow_blocks`);
  ``key`` says which block, and a replay never runs it.
- ``heard``: the listener had heard up to ``sample`` (twice a second while a REPL plays), so
  a session resumed after a crash joins where the sound stopped.

:mod:`.performance` reads a journal back. Every record (``heard`` aside) is flushed and ``os.fsync``-ed before the writer goes on, so killing the process
(SIGKILL, a power cut) loses nothing already recorded. A crash can cut off at most the line
being written: the reader skips such a line with a warning and the rest replays. Journals of
format 1 (cells only) still read; they replay by running their cells.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

from ..atomic import fsync_dir
from ..errors import SetError

__all__ = ["JOURNAL_VERSION", "JOURNAL_NAME", "Journal", "json_bytes", "wall_time"]

JOURNAL_VERSION = 4   # the newest format read: 4, slow blocks; 3, latent paths and their arrays
_WRITTEN_VERSION = 3  # what a record is marked with unless an older reader would misread it
_SLOW_VERSION = 4     # slow records: a reader of 3 would render without them
JOURNAL_NAME = "journal.jsonl"


def wall_time() -> str:
    """Local time with its UTC offset, to the millisecond (ISO 8601)."""
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="milliseconds")


class Journal:
    """An open journal file, appended to with one fsync per record (from any thread).

    Examples
    --------
    >>> journal = Journal("sets/tonight/journal.jsonl")            # doctest: +SKIP
    >>> journal.start_session(seed=0, tempo=60, sample_rate=44100, position=0)
    >>> n = journal.append("v = voice(flute, cello)", "repl", position=1234)
    >>> journal.mark_applied(n, 1536)
    """

    def __init__(self, path):
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._next_id = _last_id(self.path) + 1
            self._file = open(self.path, "ab")
            if self._file.tell() > 0 and not _ends_with_newline(self.path):
                # a crash cut the last line off: start ours on a line of their own (the reader
                # skips a cut-off line that a new session follows)
                self._write_bytes(b"\n")
        except OSError as exc:
            raise SetError(f"cannot open the journal {self.path}: {exc}") from None
        fsync_dir(self.path.parent)

    # -- writing -------------------------------------------------------------------------------
    def start_session(self, *, seed: int, tempo: float, sample_rate: int, position: int,
                      model_path=None, model_hash: str | None = None, resumed: bool = False,
                      channels: int = 2, model_pack: dict | None = None) -> None:
        """Record that a new session (engine) starts appending here (``model_pack``: the name and
        version of the model's pack, when it came from one)."""
        model = {"path": None if model_path is None else str(model_path), "hash": model_hash}
        if model_pack:
            model["pack"] = dict(model_pack)
        record = {"kind": "session", "wall": wall_time(), "model": model,
                  "seed": int(seed), "tempo": float(tempo), "sample_rate": int(sample_rate),
                  "position": int(position)}
        if channels != 2:
            record["channels"] = int(channels)
        if resumed:
            record["resumed"] = True
        self._write(record)

    def append(self, code: str, origin: str, *, position: int,
               discard_on_error: bool = False) -> int:
        """Record ``code`` before it runs; returns its entry id. Durable when this returns."""
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, not {type(code).__name__}")
        with self._lock:
            entry_id = self._next_id
            self._next_id += 1
        record = {"kind": "cell", "id": entry_id, "origin": str(origin), "code": code,
                  "wall": wall_time(), "position": int(position)}
        if discard_on_error:
            record["discard_on_error"] = True
        self._write(record)
        return entry_id

    def record_batch(self, *, seq: int, origin: str, cell: int | None, sample: int,
                     commands: list, sources: list, durable: bool = True,
                     readings: list | None = None) -> None:
        """Record a landed batch (and, first, the sources it uses that are new here).

        ``durable=False`` (controller values, many a second): flushed to the OS, which a killed
        process cannot lose, but not fsynced each time, so thousands of them cost little."""
        lines = [{"kind": "source", **record} for record in sources]
        lines.append({"kind": "batch", "seq": int(seq), "origin": str(origin), "cell": cell,
                      "sample": int(sample), "wall": wall_time(), "commands": commands})
        if readings:                  # what it read where it landed (a mapping's examples)
            lines[-1]["readings"] = readings
        self._write_many(lines, durable=durable)

    def record_controls(self, origin: str, values: list) -> None:
        """Record controller values that landed, compactly: ``values`` is a list of
        ``[seq, sample, name, value]`` (one batch per seq). Flushed to the OS, not fsynced."""
        self._write_many([{"kind": "controls", "origin": str(origin), "values": values}], durable=False)

    def mark_applied(self, entry_id: int, sample: int, *, landed: bool = True,
                     error: str | None = None, error_line: int | None = None,
                     checks=()) -> None:
        """Record where entry ``entry_id``'s changes landed (``landed=False``: it made none)."""
        record = {"kind": "applied", "id": int(entry_id), "sample": int(sample), "landed": bool(landed)}
        if error is not None:
            record["error"] = str(error)
            if error_line is not None:
                record["error_line"] = int(error_line)
        if any(outcome is not None for outcome in checks):
            record["checks"] = list(checks)
        self._write(record)

    def record_outage(self, sample: int, *, lost: bool) -> None:
        """Record that the audio device was lost (or came back) with the listener at ``sample``."""
        self._write({"kind": "outage", "sample": int(sample), "lost": bool(lost), "wall": wall_time()})

    def record_slow(self, blocks: list) -> None:
        """Blocks of performer code found slow live: each ``{"key", "voice", "window"}``."""
        self._write_many([{"v": _SLOW_VERSION, "kind": "slow", **block, "wall": wall_time()} for block in blocks])

    def record_heard(self, sample: int) -> None:
        """Record that the listener has heard up to ``sample`` (every half second while a REPL
        plays: where a resume after a crash joins). Flushed to the OS, which a killed process
        cannot lose, but not fsynced: a power cut may lose the last few."""
        self._write_many([{"kind": "heard", "sample": int(sample)}], durable=False)

    def record_end(self, sample: int) -> None:
        """Record that the performance ended at ``sample`` (everything before it was heard)."""
        self._write({"kind": "end", "sample": int(sample), "wall": wall_time()})

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self) -> str:
        return f"<Journal {self.path}, next entry {self._next_id}>"

    def _write(self, record: dict) -> None:
        self._write_many([record])

    def _write_many(self, records: list, *, durable: bool = True) -> None:
        data = b"".join(json_bytes({"v": _WRITTEN_VERSION, **r}) for r in records)
        self._write_bytes(data, durable=durable)

    def _write_bytes(self, data: bytes, *, durable: bool = True) -> None:
        with self._lock:
            if self._file.closed:
                raise SetError(f"the journal {self.path} is closed; nothing more can be recorded")
            try:
                self._file.write(data)
                self._file.flush()
                if durable:
                    os.fsync(self._file.fileno())
            except OSError as exc:   # a full disk must be said aloud: the performance is not recorded
                raise SetError(f"cannot write the journal {self.path}: {exc}") from None


def json_bytes(data, *, indent: int | None = None) -> bytes:
    """``data`` as UTF-8 JSON ending in a newline (a journal's line, a set's state.json). Text
    that is no Unicode (a file name the system gave as undecodable bytes) is written escaped
    (``\\udcff``): it reads back as the same text, where encoding it raised and it was lost."""
    try:
        return (json.dumps(data, indent=indent, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(data, indent=indent) + "\n").encode("ascii")


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _last_id(path: Path) -> int:
    """The largest entry id in an existing journal (-1 when there is none)."""
    if not path.exists():
        return -1
    last = -1
    with open(path, "rb") as f:
        for raw in f:
            try:
                record = json.loads(raw)
            except (ValueError, RecursionError):
                continue   # a cut-off line: the reader says so, the writer just moves on
            if isinstance(record, dict) and record.get("kind") == "cell" and isinstance(record.get("id"), int):
                last = max(last, record["id"])
    return last
