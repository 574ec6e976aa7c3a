"""Replaying a journal: the recorded commands, applied on their samples.

A :class:`Replayer` takes one session of a journal (:func:`~.performance.read_performance`) and an
engine built like the performance's (same model, seed and tempo), and applies every recorded
batch on the sample it landed on, in the order the engine received them. Whoever sent a batch
(a cell, a pattern file, a thread, a timer) does not matter: the journal holds its commands as
data, so nothing in a replay reads the wall clock or calls a performer's function again.

Code runs only to rebuild names (not the cell a session ended inside: the process died there,
perhaps of that very cell). Each cell runs where it ran live, inside a batch that
captures what it sends without sending it; a value the journal could not hold as code (a curve
made from a Python function) is taken from the matching command of the replayed cell. A cell
that raised during the performance runs up to the top-level statement that raised (not that
statement itself: what it sent before raising is in the journal as data, but a curve made from
a Python function in it cannot be rebuilt), and its recorded wall-clock checks are handed back
in order. With ``run_code=False`` (``--no-code``) no code
runs at all: a set from a stranger renders from data alone, and a command that exists only as
code is named and refused.

The engine is sealed for the replay: whatever the rebuilt code sends (a thread it starts, a
timer) lands nowhere.
"""

from __future__ import annotations

import contextlib
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.commands import AddVoice
from ..engine.writers import Batch, CheckOutcomes
from ..errors import LiveLatentError, ParameterError, SetError
from .code import run_code, run_until
from .records import NotCode, SourceStore, decode_command, not_code

__all__ = ["finish_report", "Replayer", "ReplayReport", "Action", "quiet_stdout"]


@dataclass
class ReplayReport:
    """What a replay or render did: how long, and anything that differs from the performance."""

    samples: int = 0
    sample_rate: int = 0
    cells: int = 0
    batches: int = 0
    late: list = field(default_factory=list)       # (seq, samples late) live only
    notes: list = field(default_factory=list)
    underruns: int = 0
    output: Path | None = None


@dataclass(frozen=True)
class Action:
    """One thing a replay does: run a cell where it ran (``when`` its position), or send a
    batch to land on ``when``."""

    kind: str              # "cell" or "batch"
    when: int
    item: object


class Replayer:
    """Applies one session of a journal to ``engine`` (see the module docstring).

    Drivers (an offline render, a live replay) walk :meth:`actions` in order: before a ``cell``
    action they bring the engine to its ``when`` (render up to it, or wait until the listener
    nears it), then call :meth:`perform`; a ``batch`` action is performed at once (it lands on
    its sample, later on).
    """

    def __init__(self, engine, performance, folder, *, names: dict | None, report: ReplayReport):
        self.engine = engine
        self.performance = performance
        self.names = names
        self.run_code = names is not None
        self.report = report
        self.key = object()
        self.store = SourceStore(folder)
        for record in performance.sources.values():
            self.store.add_record(record)
        self.store.check()
        self._captured: dict[int, list] = {}
        self._read_by_cell: dict[int, list] = {}    # what each cell read where it landed, live
        for record in performance.batches:
            if record.cell is not None and record.readings:
                self._read_by_cell.setdefault(record.cell, []).extend(record.readings)
        self._decoded: dict[tuple, list] = {}   # by (journal line, seq): seqs repeat across resumed
        # sessions, and one line (controller values) holds many batches
        self._numbers = _numbers_by_cell(performance.batches)
        self._died_in = _died_in(performance)
        report.notes.extend(_changes_of_unstarted_voices(performance.batches))
        engine.seal(self.key)
        engine.timeline.slow_blocks.replay(performance.slow_blocks)   # as they played live
        self._prepare()

    def _prepare(self) -> None:
        """Decode every batch that needs no code now (sources are encoded before anything
        plays); with no code to run, refuse up front what only code could rebuild."""
        refused = []
        for batch in self.performance.batches:
            if any(not_code(data) for data in batch.commands):
                if not self.run_code or batch.cell is None:
                    refused.append(f"batch {batch.seq} ({batch.origin}, journal line {batch.line}): "
                                   + ", ".join(fn for d in batch.commands for fn in not_code(d)))
                continue
            self._decoded[(batch.line, batch.seq)] = self._decode(batch, captured=None)
        if refused:
            why = ("--no-code runs no code, and these commands exist only as code" if not self.run_code
                   else "these commands were sent from no cell and are not code")
            raise SetError(f"{why}: " + "; ".join(refused))

    def actions(self):
        """The cells and batches in the order a replay performs them."""
        cells = deque(sorted(self.performance.cells, key=lambda c: c.id) if self.run_code else ())
        batches = deque(self.performance.batches)
        ran: set[int] = set()
        known = {c.id for c in cells}
        while cells or batches:
            if batches:
                batch = batches[0]
                if batch.cell is None or batch.cell in ran or batch.cell not in known:
                    batches.popleft()
                    yield Action("batch", batch.sample, batch)
                    continue
            cell = cells.popleft()
            ran.add(cell.id)
            yield Action("cell", cell.position, cell)

    def perform(self, action: Action) -> int | None:
        """Do ``action``; for a batch, returns the sample it landed on."""
        if action.kind == "cell":
            self._run_cell(action.item)
            return None
        return self._send(action.item)

    # -- cells -----------------------------------------------------------------------------------
    def _run_cell(self, entry) -> None:
        if entry.id in self._died_in:
            # its session ended inside it (no "applied" record, no batch of it landed): the
            # process died there, maybe of the cell itself (a segfault, os.kill), and nothing
            # it sent was heard
            self.report.notes.append(f"cell {entry.id} ({entry.origin}) never finished: the session "
                                     f"ended inside it; it is not run again")
            self.report.cells += 1
            return
        batch = Batch(self.engine, entry.origin, cell=entry.id, capture=True,
                      checks=CheckOutcomes(list(entry.checks)),
                      given_numbers=list(self._numbers.get(entry.id, ())),
                      recorded=[self._reading(d) for d in self._read_by_cell.get(entry.id, ())])
        token = batch.enter()
        filename = f"<{entry.origin} {entry.id}>"
        try:
            with quiet_stdout():
                if entry.error is not None and entry.error_line is not None:
                    run_until(entry.code, self.names, filename=filename, stop_line=entry.error_line)
                else:
                    run_code(entry.code, self.names, filename=filename)
        except LiveLatentError as exc:
            if entry.error is None:
                self.report.notes.append(f"cell {entry.id} ({entry.origin}) ran cleanly during the "
                                         f"performance but fails now: {exc}")
        except SystemExit:       # sys.exit() in a cell: the REPL went on, and so does a replay
            self.report.notes.append(f"cell {entry.id} ({entry.origin}) called exit(); the replay "
                                     f"goes on after it, as the performance did")
        finally:
            Batch.leave(token)
        if entry.error is not None and "interrupted" in entry.error:
            rebuilt = ("as if it had run whole" if entry.error_line is None else
                       f"from the statements before line {entry.error_line}, where it stopped")
            self.report.notes.append(f"cell {entry.id} was interrupted during the performance; "
                                     f"its names are rebuilt {rebuilt}")
        self._captured[entry.id] = list(batch.commands)
        self.report.cells += 1

    # -- batches ---------------------------------------------------------------------------------
    def _send(self, record) -> int:
        commands = self._decoded.pop((record.line, record.seq), None)
        if commands is None:
            commands = self._decode(record, captured=self._captured.get(record.cell))
        for command in commands:                # whoever started it live, its number is taken
            if isinstance(command, AddVoice):
                self.engine.numbers.at_least(command.params.index)
        batch = Batch(self.engine, record.origin, at=record.sample, commands=commands, key=self.key)
        try:
            landed = self.engine.send(batch)
        except ParameterError as exc:     # (a sample before the one it follows: edited by hand)
            raise SetError(f"batch {record.seq} ({record.origin}), journal line {record.line}: "
                           f"{exc}; the journal was edited or damaged") from None
        self.report.batches += 1
        if record.readings and (record.cell is None or record.cell not in self._captured):
            self._orphan_readings(record)
        return landed

    def _reading(self, data: dict) -> dict:
        return {name: self.store.get_array(value["array"]) if isinstance(value, dict) else value
                for name, value in data.items()}

    def _orphan_readings(self, record) -> None:
        """What a batch read where it landed (a mapping's examples) whose code does not run
        again here (a timer's, a thread's): handed to the mapping of that name."""
        for data in map(self._reading, record.readings):
            owners = [v for v in (self.names or {}).values()
                      if getattr(v, "name", None) == data.get("mapping") and hasattr(v, "replayed_example")]
            if owners:
                owners[0].replayed_example(data)
            else:
                self.report.notes.append(f"batch {record.seq} ({record.origin}) added an example to "
                                         f"{data.get('mapping')!r}, which the replay does not have")

    def _decode(self, record, *, captured) -> list:
        where = f"batch {record.seq} ({record.origin}), journal line {record.line}"
        commands = []
        for index, data in enumerate(record.commands):
            twin = captured[index] if captured is not None and index < len(captured) else None
            try:
                commands.append(decode_command(data, engine=self.engine, store=self.store,
                                               where=where, captured=twin))
            except NotCode as exc:
                raise SetError(f"{exc}, and the replayed cell {record.cell} did not send it again: "
                               f"the set cannot be rendered as played") from None
        return commands


class _Quiet:
    """``sys.stdout`` while a replayed cell runs: what the cell prints then was shown when it
    was played, and is dropped; a stream the cell keeps (a logging handler made with
    ``sys.stdout``) writes through to the real one once the cell is done."""

    def __init__(self, stream):
        self.stream, self.dropping = stream, True

    def write(self, text: str) -> int:
        return len(text) if self.dropping else self.stream.write(text)

    def flush(self) -> None:
        if not self.dropping:
            self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


@contextlib.contextmanager
def quiet_stdout():
    """Run a replayed cell without printing again what it printed (the replay's own thread)."""
    quiet = _Quiet(sys.stdout)
    try:
        with contextlib.redirect_stdout(quiet):
            yield
    finally:
        quiet.dropping = False


def finish_report(engine, performance, report: ReplayReport) -> None:
    """What the render said (its engine's events), and, when it reached the performance's end,
    the blocks the performance found slow that it never met. Harmless for parameters a moving
    controller replaced before they played (live recorded them, a render never works them out);
    otherwise (a set edited, or from another version) it differs where they played."""
    report.notes.extend(str(e) for e in engine.events.since(0)[0])
    missed = engine.timeline.slow_blocks.not_met()
    if missed and performance.end is not None and engine.position >= performance.end:
        report.notes.append(f"{len(missed)} block(s) of Python that the performance stopped as too "
                            f"slow were not met by this render: if they played (a set edited, or "
                            f"from another version of livelatent), it differs there")


def _died_in(performance) -> set[int]:
    """The cells a session ended inside: the last cell of its session, with no "applied"
    record and no batch of its own landed (a resumed journal holds several sessions)."""
    last: dict[int, object] = {}
    for cell in performance.cells:
        if cell.session not in last or cell.id > last[cell.session].id:
            last[cell.session] = cell
    landed = {b.cell for b in performance.batches if b.cell is not None}
    return {c.id for c in last.values() if not c.applied and c.id not in landed}


def _numbers_by_cell(batches) -> dict[int, list[int]]:
    """The numbers the voices each cell started had live, in the order it started them."""
    numbers: dict[int, list[int]] = {}
    for batch in batches:
        if batch.cell is not None:
            numbers.setdefault(batch.cell, []).extend(
                int(d["voice"]) for d in batch.commands if d.get("op") == "add"
                and isinstance(d.get("voice"), int))       # (decoding names one that is not)
    return numbers


def _changes_of_unstarted_voices(batches) -> list[str]:
    """A note for each change or stop of a voice that no earlier record of the session starts
    (a journal edited by hand): it changes nothing, as it did nothing live, but a render that
    leaves a line out without a word looks like one that played it."""
    started: set = set()
    notes = []
    for batch in batches:
        for data in batch.commands:
            op, number = data.get("op"), data.get("voice")
            if op == "add":
                started.add(number)
            elif op in ("set", "stop") and number not in started:
                notes.append(f"batch {batch.seq} ({batch.origin}), journal line {batch.line}: "
                             f"{'changes' if op == 'set' else 'stops'} voice {number!r}, which no "
                             f"earlier record of the session starts: it changes nothing")
    return notes
