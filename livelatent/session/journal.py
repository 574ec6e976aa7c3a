"""The journal: everything that changed the sound, whoever sent it, with the sample it landed on.

A journal is a JSON Lines file, appended to and never rewritten. Each line is one record
(``"v": 2``, the format):

- ``session`` when a session opens it: the model (path and content hash), the engine's seed,
  tempo and sample rate, and the play position then. A journal holds one session, or several
  when a set folder is reopened; each session's samples count from its own engine's start.
- ``cell`` *before* code runs: a REPL cell, a pattern file's run (``origin``), its ``code``,
  the play ``position`` then. For a reader to follow the performance, and to rebuild names.
- ``source``: a source the commands below use, once (see :mod:`.records`).
- ``batch`` after it landed: the commands of one writer's batch as data, its ``origin``
  (``repl``, ``pattern:drift.py``, ``timer``, ``thread:...``), the ``cell`` that made it if code
  did, its place ``seq`` in the engine's sending order and the ``sample`` it landed on.
- ``applied`` after a cell ran: where its changes landed, the error it raised (and on which
  line), and the outcomes of its wall-clock checks (``checks``), which a replay repeats.
- ``end``: the sample at which the performance ended (the listener had heard everything).
- ``outage``: the audio device was lost (or came back) with the listener at ``sample``; the
  timeline waited, so the sound does not change.

Every record is flushed and ``os.fsync``-ed before the writer goes on, so killing the process
(SIGKILL, a power cut) loses nothing already recorded. A crash can cut off at most the line
being written: the reader skips such a line with a warning and the rest replays. Journals of
format 1 (cells only) still read; they replay by running their cells.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..atomic import fsync_dir
from ..errors import SetError

__all__ = ["JOURNAL_VERSION", "JOURNAL_NAME", "Journal", "Entry", "BatchRecord", "SessionStart",
           "Performance", "read_journal", "read_sessions", "read_performance", "wall_time"]

JOURNAL_VERSION = 2
JOURNAL_NAME = "journal.jsonl"


def wall_time() -> str:
    """Local time with its UTC offset, to the millisecond (ISO 8601)."""
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class SessionStart:
    """The engine a session of the journal ran on: what a replay must rebuild."""

    index: int                 # 0 for the journal's first session
    wall: str
    model_path: str | None
    model_hash: str | None
    seed: int
    tempo: float
    sample_rate: int
    position: int              # play position when the session opened the journal
    version: int = JOURNAL_VERSION
    resumed: bool = False      # it carried on a session cut off by a crash (--resume)


@dataclass(frozen=True)
class Entry:
    """One evaluated piece of code, as the journal recorded it."""

    id: int
    code: str
    origin: str                # "repl", "jupyter", "pattern:patterns/drift.py", "load"...
    wall: str
    sample: int                # where its changes landed (or its position, see ``landed``)
    position: int = 0          # play position when it was submitted
    landed: bool = False       # True when it changed the engine, on exactly ``sample``
    applied: bool = False      # False when the journal ends before its "applied" record
    error: str | None = None   # the message, when it raised during the performance
    error_line: int | None = None    # the line of the statement that raised
    discard_on_error: bool = False   # its changes are dropped when it raises (pattern files)
    checks: tuple = ()         # outcomes of its wall-clock checks (None: passed)
    session: int = 0           # index of the session it belongs to


@dataclass(frozen=True)
class BatchRecord:
    """One landed batch: its commands as data."""

    seq: int
    origin: str
    cell: int | None
    sample: int
    commands: tuple
    line: int                  # where it is in the file, for messages
    session: int = 0


@dataclass
class Performance:
    """Everything one session of a journal recorded."""

    session: SessionStart
    sessions: int
    cells: list = field(default_factory=list)       # Entry, by id
    batches: list = field(default_factory=list)     # BatchRecord, by seq
    sources: dict = field(default_factory=dict)     # key -> source record
    end: int | None = None


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
                      model_path=None, model_hash: str | None = None, resumed: bool = False) -> None:
        """Record that a new session (engine) starts appending here."""
        record = {"kind": "session", "wall": wall_time(),
                  "model": {"path": None if model_path is None else str(model_path),
                            "hash": model_hash},
                  "seed": int(seed), "tempo": float(tempo), "sample_rate": int(sample_rate),
                  "position": int(position)}
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
                     commands: list, sources: list) -> None:
        """Record a landed batch (and, first, the sources it uses that are new here)."""
        lines = [{"kind": "source", **record} for record in sources]
        lines.append({"kind": "batch", "seq": int(seq), "origin": str(origin), "cell": cell,
                      "sample": int(sample), "wall": wall_time(), "commands": commands})
        self._write_many(lines)

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

    def _write_many(self, records: list) -> None:
        data = b"".join((json.dumps({"v": JOURNAL_VERSION, **r}, ensure_ascii=False) + "\n").encode("utf-8")
                        for r in records)
        self._write_bytes(data)

    def _write_bytes(self, data: bytes) -> None:
        with self._lock:
            if self._file.closed:
                raise SetError(f"the journal {self.path} is closed; nothing more can be recorded")
            try:
                self._file.write(data)
                self._file.flush()
                os.fsync(self._file.fileno())
            except OSError as exc:   # a full disk must be said aloud: the performance is not recorded
                raise SetError(f"cannot write the journal {self.path}: {exc}") from None


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
            except ValueError:
                continue   # a cut-off line: the reader says so, the writer just moves on
            if isinstance(record, dict) and record.get("kind") == "cell" and isinstance(record.get("id"), int):
                last = max(last, record["id"])
    return last


# -- reading -------------------------------------------------------------------------------------
def read_journal(path, *, session: int | None = None) -> list[Entry]:
    """The code entries of the journal at ``path``, in the order they were evaluated.

    A last line cut off by a crash (or a cut-off line followed by a new session) is skipped
    with a warning; a cell without an "applied" record (the process died while it ran) keeps
    its submitted position as its sample. A malformed line anywhere else, or a journal from a
    newer livelatent, is a :class:`SetError` naming the line.

    Parameters
    ----------
    session : int, optional
        Only the entries of this session (0 is the first, -1 the last).
    """
    sessions, performances = _parse(Path(path))
    if session is None:
        return [entry for p in performances for entry in p.cells]
    return performances[_pick_session(sessions, session, path).index].cells


def read_sessions(path) -> list[SessionStart]:
    """The sessions recorded in the journal at ``path``, oldest first."""
    return _parse(Path(path))[0]


def read_performance(path, *, session: int = -1) -> Performance:
    """Everything one session of the journal at ``path`` recorded (the last by default)."""
    sessions, performances = _parse(Path(path))
    return performances[_pick_session(sessions, session, path).index]


def _pick_session(sessions, session: int, path) -> SessionStart:
    if not sessions:
        raise SetError(f"the journal {path} records no session: it was not written by livelatent")
    try:
        return sessions[session]
    except IndexError:
        raise SetError(f"session {session} is not in {path}: it holds {len(sessions)} "
                       f"(0 to {len(sessions) - 1})") from None


def _parse(path: Path):
    if path.is_dir():
        path = path / JOURNAL_NAME
    try:
        lines = path.read_bytes().split(b"\n")
    except FileNotFoundError:
        raise SetError(f"no journal at {path}") from None
    except OSError as exc:
        raise SetError(f"cannot read the journal {path}: {exc}") from None
    if lines and lines[-1] == b"":
        lines.pop()
    records = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            if number == len(lines) or _next_is_session(lines, number):
                warnings.warn(f"{path}:{number}: skipped a line cut off by a crash "
                              f"({len(raw)} bytes); the rest replays", stacklevel=3)
                continue
            raise SetError(f"{path}:{number}: malformed journal line ({exc}); the journal was "
                           f"edited or damaged: fix or delete that line") from None
        version = record.get("v")
        if not isinstance(version, int) or version > JOURNAL_VERSION:
            raise SetError(f"{path}:{number}: journal version {version!r} is newer than this "
                           f"livelatent reads ({JOURNAL_VERSION}); upgrade livelatent")
        records.append((number, record))
    return _build(path, records)


def _next_is_session(lines, number: int) -> bool:
    for raw in lines[number:]:
        if raw.strip():
            try:
                return json.loads(raw).get("kind") == "session"
            except (ValueError, AttributeError):
                return False
    return False


def _build(path: Path, records):
    sessions: list[SessionStart] = []
    performances: list[Performance] = []
    cells: dict[int, dict] = {}
    applied: dict[int, dict] = {}
    for number, record in records:
        kind = record.get("kind")
        current = len(sessions) - 1
        try:
            if kind == "session":
                model = record.get("model") or {}
                start = SessionStart(
                    index=len(sessions), wall=str(record.get("wall", "")),
                    model_path=model.get("path"), model_hash=model.get("hash"),
                    seed=int(record["seed"]), tempo=float(record["tempo"]),
                    sample_rate=int(record["sample_rate"]), position=int(record.get("position", 0)),
                    version=int(record["v"]), resumed=bool(record.get("resumed", False)))
                sessions.append(start)
                performances.append(Performance(start, 0))
            elif kind == "cell":
                entry_id = int(record["id"])
                if not isinstance(record["code"], str):
                    raise TypeError("code is not text")
                cells[entry_id] = dict(record, _session=max(current, 0))
            elif kind == "applied":
                applied[int(record["id"])] = {
                    "sample": int(record["sample"]), "landed": bool(record.get("landed", True)),
                    "error": record.get("error"), "error_line": record.get("error_line"),
                    "checks": tuple(record.get("checks", ()))}
            elif kind == "batch" and current >= 0:
                commands = record["commands"]
                if not isinstance(commands, list) or not all(isinstance(c, dict) for c in commands):
                    raise TypeError("commands is not a list of objects")
                performances[current].batches.append(BatchRecord(
                    seq=int(record["seq"]), origin=str(record["origin"]),
                    cell=None if record.get("cell") is None else int(record["cell"]),
                    sample=int(record["sample"]), commands=tuple(commands), line=number,
                    session=current))
            elif kind == "source" and current >= 0:
                str(record["key"]), str(record["audio_hash"]), int(record["sample_rate"])
                performances[current].sources[record["key"]] = record
            elif kind == "end" and current >= 0:
                performances[current].end = int(record["sample"])
            # other kinds are from a later minor revision: they change no sound
        except (KeyError, TypeError, ValueError) as exc:
            raise SetError(f"{path}:{number}: malformed {kind} record ({type(exc).__name__}: "
                           f"{exc}); fix or delete that line") from None
    for entry_id in sorted(cells):
        cell = cells[entry_id]
        done = applied.get(entry_id) or {}
        entry = Entry(
            id=entry_id, code=cell["code"], origin=str(cell.get("origin", "repl")),
            wall=str(cell.get("wall", "")),
            sample=done.get("sample", int(cell.get("position", 0))),
            position=int(cell.get("position", 0)), landed=bool(done.get("landed", False)),
            applied=bool(done), error=done.get("error"), error_line=done.get("error_line"),
            discard_on_error=bool(cell.get("discard_on_error", False)),
            checks=done.get("checks", ()), session=cell["_session"])
        if performances:
            performances[entry.session].cells.append(entry)
    for performance in performances:
        performance.sessions = len(sessions)
        performance.batches.sort(key=lambda b: b.seq)
    return sessions, performances
