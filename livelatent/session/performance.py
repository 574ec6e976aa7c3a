"""Reading a journal back: the sessions it records, their cells, batches and sources.

The format is described in :mod:`.journal`. A last line cut off by a crash is skipped with a
warning; anything else malformed is a :class:`SetError` naming the line.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SetError
from ..model.config import MAX_MODEL_RATE
from .journal import JOURNAL_NAME, JOURNAL_VERSION
from .record_checks import check_source_record, sample_in_set, whole

__all__ = ["Entry", "BatchRecord", "SessionStart", "Performance", "read_journal",
           "read_sessions", "read_performance"]


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
    channels: int = 2          # the engine's output channels
    model_pack: dict | None = None   # the name and version of the model's pack


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
    readings: tuple = ()       # what it read from the timeline where it landed (examples)


@dataclass
class Performance:
    """Everything one session of a journal recorded."""

    session: SessionStart
    sessions: int
    cells: list = field(default_factory=list)       # Entry, by id
    batches: list = field(default_factory=list)     # BatchRecord, by seq
    sources: dict = field(default_factory=dict)     # key -> source record
    end: int | None = None
    heard: int = 0             # the listener had heard up to here (the last "heard" record)
    resumed_at: tuple = ()     # samples where sessions resumed this one after a crash
    slow_blocks: set = field(default_factory=set)   # keys of blocks of code found slow live


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
    """Everything one session of the journal at ``path`` recorded (the last by default).

    A session that resumed one cut off by a crash (``livelatent live --resume``) carried on
    the same timeline: its performance is the sessions it continues followed by its own."""
    sessions, performances = _parse(Path(path))
    return _with_resumed(performances, _pick_session(sessions, session, path).index)


def _with_resumed(performances: list, index: int) -> Performance:
    performance = performances[index]
    if index == 0 or not performance.session.resumed:
        return performance
    before = _with_resumed(performances, index - 1)
    return Performance(before.session, performance.sessions,
                       cells=before.cells + performance.cells,
                       batches=before.batches + performance.batches,
                       sources={**before.sources, **performance.sources}, end=performance.end,
                       heard=max(before.heard, performance.heard),
                       resumed_at=(*before.resumed_at, performance.session.position),
                       slow_blocks=before.slow_blocks | performance.slow_blocks)


def _pick_session(sessions, session: int, path) -> SessionStart:
    if not sessions:
        raise SetError(f"the journal {path} records no session: it was not written by livelatent")
    try:
        return sessions[session]
    except IndexError:
        raise SetError(f"no such session in {path}: it holds {len(sessions)} (--session 1 to "
                       f"{len(sessions)}; from Python, session=0 to {len(sessions) - 1})") from None


def _parse(path: Path):
    if path.is_dir() and path.name != JOURNAL_NAME:       # a set's folder (a folder named as
        path = path / JOURNAL_NAME                           # its journal is a damaged set)
    if path.is_dir():
        raise SetError(f"{path} is a folder, not a journal: the set is damaged")
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
        except (ValueError, RecursionError) as exc:     # (nested thousands deep; 5,000 digits)
            if number == len(lines) or _next_is_session(lines, number):
                warnings.warn(f"{path}:{number}: skipped a line cut off by a crash "
                              f"({len(raw)} bytes); the rest replays", stacklevel=3)
                continue
            raise SetError(f"{path}:{number}: malformed journal line ({exc}); the journal was "
                           f"edited or damaged: fix or delete that line") from None
        version = record.get("v")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise SetError(f"{path}:{number}: no valid journal version ({version!r}); it is not a "
                           f"livelatent journal, or the line was edited")
        if version > JOURNAL_VERSION:
            raise SetError(f"{path}:{number}: journal version {version!r} is newer than this "
                           f"livelatent reads ({JOURNAL_VERSION}); upgrade livelatent")
        records.append((number, record))
    return _build(path, records)


def _next_is_session(lines, number: int) -> bool:
    for raw in lines[number:]:
        if raw.strip():
            try:
                return json.loads(raw).get("kind") == "session"
            except (ValueError, AttributeError, RecursionError):
                return False
    return False


#: Records of a session's performance: before the journal's first session record, they were
#: moved or edited (others of a later minor revision change no sound, and may come anywhere)
_PER_SESSION = frozenset({"batch", "controls", "source", "end", "slow", "heard"})


def _build(path: Path, records):
    sessions: list[SessionStart] = []
    performances: list[Performance] = []
    cells: dict[int, dict] = {}
    applied: dict[int, dict] = {}
    def at(value, what="sample"):            # a sample of the latest session's performance
        return sample_in_set(value, sessions[-1].sample_rate if sessions else MAX_MODEL_RATE, what)

    for number, record in records:
        kind = record.get("kind")
        current = len(sessions) - 1
        if current < 0 and (kind in _PER_SESSION or kind in ("cell", "applied") and record["v"] >= 2):
            raise SetError(f"{path}:{number}: a {kind} record before the journal's first session "
                           f"record: its lines were reordered or edited (only livelatent 0.1's "
                           f"journals have none)")
        try:
            if kind == "session":
                model = record.get("model") or {}
                if not isinstance(model, dict) or not isinstance(model.get("pack"), (dict, type(None))) \
                        or not all(isinstance(model.get(k), (str, type(None))) for k in ("path", "hash")):
                    raise TypeError(f"model {model!r} is not a file name, a hash and a pack")
                start = SessionStart(
                    index=len(sessions), wall=str(record.get("wall", "")),
                    model_path=model.get("path"), model_hash=model.get("hash"),
                    seed=whole(record["seed"], "seed"), tempo=float(record["tempo"]),
                    sample_rate=whole(record["sample_rate"], "sample_rate"),
                    position=sample_in_set(record.get("position", 0),
                                           whole(record["sample_rate"], "sample_rate"), "position"),
                    version=int(record["v"]), resumed=bool(record.get("resumed", False)),
                    channels=whole(record.get("channels", 2), "channels"), model_pack=model.get("pack"))
                sessions.append(start)
                performances.append(Performance(start, 0))
            elif kind == "cell":
                entry_id = int(record["id"])
                if not isinstance(record["code"], str):
                    raise TypeError("code is not text")
                cells[entry_id] = dict(record, _session=max(current, 0),
                                       position=at(record.get("position", 0), "position"))
            elif kind == "applied":
                applied[int(record["id"])] = {
                    "sample": at(record["sample"]), "landed": bool(record.get("landed", True)),
                    "error": None if record.get("error") is None else str(record["error"]),
                    "error_line": None if record.get("error_line") is None else int(record["error_line"]),
                    "checks": tuple(record.get("checks", ()))}
            elif kind == "batch":
                commands, readings = record["commands"], record.get("readings", [])
                if not isinstance(commands, list) or not all(isinstance(c, dict) for c in commands):
                    raise TypeError("commands is not a list of objects")
                if not isinstance(readings, list) or not all(isinstance(r, dict) for r in readings):
                    raise TypeError("readings is not a list of objects")
                performances[current].batches.append(BatchRecord(
                    seq=int(record["seq"]), origin=str(record["origin"]),
                    cell=None if record.get("cell") is None else int(record["cell"]),
                    sample=at(record["sample"]), commands=tuple(commands), line=number,
                    session=current, readings=tuple(readings)))
            elif kind == "controls":
                grouped: dict[int, list] = {}
                for seq, sample, name, value in record["values"]:
                    grouped.setdefault(int(seq), [at(sample)]).append(
                        {"op": "control", "name": str(name), "value": float(value)})
                for seq, (sample, *commands) in grouped.items():
                    performances[current].batches.append(BatchRecord(
                        seq=seq, origin=str(record["origin"]), cell=None, sample=sample,
                        commands=tuple(commands), line=number, session=current))
            elif kind == "source":
                check_source_record(record)
                performances[current].sources[record["key"]] = record
            elif kind == "end":
                performances[current].end = at(record["sample"])
            elif kind == "slow":
                key = record["key"]
                if not isinstance(key, str) or not 0 < len(key) <= 64:
                    raise TypeError(f"key {key!r:.80} is not a block's key")
                performances[current].slow_blocks.add(key)
            elif kind == "heard":
                performances[current].heard = max(performances[current].heard, at(record["sample"]))
            # other kinds are from a later minor revision: they change no sound
        except (KeyError, TypeError, ValueError, OverflowError) as exc:   # (json reads Infinity)
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
