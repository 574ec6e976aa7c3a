"""Sets, replayed: ``livelatent replay sets/name`` (live) and ``livelatent render sets/name``.

Both re-run a set's journal on a fresh engine built like the performance's (same model, seed
and tempo), each cell in one batch landing on the very sample it landed on during the
performance. Offline, the engine renders up to that sample and runs the cell there; live, the
cell runs a little early and its batch is scheduled at that future sample
(``engine.batch(at=...)``). Everything else is the same code path, so a render of a set equals,
sample for sample, what the engine played during the performance.

A journal can hold several sessions (a set folder reopened); a replay plays one, the last by
default. Names that only make sense live (``save``, the REPL's ``render`` and ``watch``...) do
nothing in a replay. A cell that raised during the performance raises again and is ignored; a
cell that ran cleanly then but fails now (a source file gone) is a :class:`SetError`, because
the replay would no longer be what was played.

The state of a set (``state.json``, what :func:`load` restores) is in :mod:`.state`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LiveLatentError, ParameterError, SetError
from ..live import prelude
from ..scripting import run_code
from .journal import JOURNAL_NAME, Entry, SessionStart, read_journal, read_sessions
from .state import (STATE_NAME, check_model, check_set_files, load_set, read_state, save_set)

__all__ = ["REPLAY_NOOPS", "SHOWING_MAGICS", "TAIL_S", "ReplayReport", "open_set", "replay_namespace", "render_set",
           "replay_set", "cli_render_set", "cli_replay", "save_set", "load_set", "read_state"]

#: Names that act outside the engine (the REPL's tools): in a replay they do nothing.
REPLAY_NOOPS = ("save", "render", "watch", "unwatch")
#: IPython magics that only show things or load extensions: the REPL does not journal a cell
#: made of them, and a replay skips them. %time and %%capture run their code in a replay too.
SHOWING_MAGICS = frozenset({"pinfo", "pinfo2", "psearch", "pdoc", "pdef", "psource", "pfile",
                            "who", "whos", "who_ls", "history", "hist", "lsmagic", "magic",
                            "quickref", "load_ext", "unload_ext", "reload_ext", "livelatent"})
_CODE_MAGICS = frozenset({"time", "capture"})
TAIL_S = 4.0          # seconds rendered or played after the last cell, unless the voices end first
LEAD_S = 0.5          # how early a live replay runs a cell before its sample


@dataclass
class ReplayReport:
    """What a replay or render did: how long, and anything that differs from the performance."""

    samples: int = 0
    sample_rate: int = 0
    cells: int = 0
    late: list = field(default_factory=list)       # (entry id, samples late) live only
    notes: list = field(default_factory=list)
    underruns: int = 0
    output: Path | None = None


@dataclass
class _OpenedSet:
    folder: Path
    session: SessionStart
    entries: list
    sessions: int


def open_set(folder, *, session: int = -1, model=None) -> tuple[_OpenedSet, object]:
    """Check the set ``folder`` and load its model: ``(opened set, codec)``.

    Raises :class:`SetError` for a missing folder or journal, a malformed ``state.json`` or
    journal, a newer schema, a missing source or model file, or a model whose hash changed.
    """
    from ..model.codec import load_model
    folder = Path(folder)
    if not folder.is_dir():
        read_state(folder)          # raises the "no set at ..." error, listing the sets there
    if (folder / STATE_NAME).exists():
        state = read_state(folder)
        check_set_files(folder, state)
    if not (folder / JOURNAL_NAME).exists():
        raise SetError(f"{folder} has no {JOURNAL_NAME}: there is nothing to replay")
    sessions = read_sessions(folder / JOURNAL_NAME)
    if not sessions:
        raise SetError(f"{folder / JOURNAL_NAME} records no session: it was not written by livelatent")
    entries = read_journal(folder / JOURNAL_NAME, session=session)
    start = sessions[session]
    saved = {"path": start.model_path, "hash": start.model_hash}
    if model is not None:
        codec = load_model(model)
        if codec.content_hash != start.model_hash:
            print(f"note: rendering {folder.name} with {model}, not the model it was played with",
                  file=sys.stderr)
    else:
        if start.model_path is None:
            raise SetError(f"set {folder.name} does not say which model it was played with; "
                           f"give --model")
        if not Path(start.model_path).exists():
            raise SetError(f"set {folder.name}: its model file {start.model_path} is missing; "
                           f"restore it or give --model")
        try:
            codec = load_model(start.model_path)
        except LiveLatentError as exc:
            raise SetError(f"set {folder.name}: its model {start.model_path} cannot be loaded: {exc}") from None
        check_model(codec.content_hash, saved, folder)
    if codec.sample_rate != start.sample_rate and model is None:
        raise SetError(f"set {folder.name} was played at {start.sample_rate} Hz, its model runs at "
                       f"{codec.sample_rate} Hz")
    return _OpenedSet(folder, start, entries, len(sessions)), codec


def replay_namespace(engine, folder: Path) -> dict:
    """The names a replayed cell runs in: the prelude's, ``load`` for sets beside ``folder``,
    :data:`REPLAY_NOOPS` doing nothing, and ``get_ipython()`` for cells that used a magic."""
    names = prelude.namespace(engine)
    for name in REPLAY_NOOPS:
        names[name] = _NOTHING

    def load(name_or_path):
        from .session import resolve_set
        load_set(engine, resolve_set(name_or_path, folder.parent), names=names)

    names["load"] = load
    shell = _ReplayShell(names)
    names["get_ipython"] = lambda: shell
    return names


class _Nothing:
    """What a live-only tool is in a replay: calling it, or anything it returned (``job =
    render(...); job.wait()``), does nothing and gives this back."""

    def __call__(self, *args, **kwargs):
        return self

    def __getattr__(self, name):
        return self

    def __repr__(self) -> str:
        return "<does nothing in a replay>"


_NOTHING = _Nothing()


class _ReplayShell:
    """``get_ipython()`` in a replay. The journal holds a cell as IPython ran it, so
    ``%time v = voice(...)`` is ``get_ipython().run_line_magic('time', 'v = voice(...)')``."""

    def __init__(self, names: dict):
        self._names = names

    def run_line_magic(self, name, line, _stack_depth=1):
        return self._magic(name, line)

    def run_cell_magic(self, name, line, cell):
        return self._magic(name, cell)

    def _magic(self, name: str, code: str):
        if name in _CODE_MAGICS:
            return run_code(code, self._names, filename=f"<%{name}>")
        if name in SHOWING_MAGICS:
            return None
        raise LiveLatentError(f"%{name}: a replay runs the journal as plain Python and cannot "
                              f"repeat this IPython magic")


def _run_entry(engine, names: dict, entry: Entry, report: ReplayReport, *, live: bool) -> None:
    """Run one journal entry in a batch landing on its sample; check it behaves as it did."""
    step = engine.step
    if entry.landed:
        at = entry.sample
    else:   # it changed nothing then: any step from here will do
        at = -(-max(entry.sample, engine.position) // step) * step
    error = None
    try:
        with engine.batch(discard_on_error=entry.discard_on_error, at=at):
            run_code(entry.code, names, filename=f"<{entry.origin} {entry.id}>")
    except LiveLatentError as exc:
        error = str(exc)
    landed = engine.landed_at
    report.cells += 1
    if error is not None and entry.error is None:
        raise SetError(f"cell {entry.id} ({entry.origin}) ran cleanly during the performance but "
                       f"fails now: {error}")
    if entry.error is not None and error is None:
        report.notes.append(f"cell {entry.id} raised during the performance ({entry.error}) "
                            f"but runs cleanly now")
    if entry.error and "interrupted" in entry.error:
        report.notes.append(f"cell {entry.id} was interrupted during the performance; it ran whole")
    if entry.landed and landed is not None and landed != entry.sample:
        if not live:
            raise SetError(f"cell {entry.id} landed on sample {landed}, not {entry.sample}")
        report.late.append((entry.id, landed - entry.sample))
    elif entry.landed != (landed is not None):
        report.notes.append(f"cell {entry.id} {'changed' if landed is not None else 'did not change'}"
                            f" the engine now, unlike during the performance")


class _JournalPlayer:
    """Looks like an engine to :func:`render_to_file`: its render runs the journal's cells
    at their samples between the blocks it yields."""

    def __init__(self, engine, names, opened: _OpenedSet, report: ReplayReport):
        self._engine, self._names, self._opened, self._report = engine, names, opened, report

    sample_rate = property(lambda self: self._engine.sample_rate)
    position = property(lambda self: self._engine.position)
    voice_handles = property(lambda self: self._engine.voice_handles)
    _stem_sink = property(lambda self: self._engine._stem_sink,
                          lambda self, sink: setattr(self._engine, "_stem_sink", sink))

    def render_chunks(self, seconds=None, *, progress=None, **_):
        engine, report = self._engine, self._report
        total = None if seconds is None else int(round(seconds * engine.sample_rate))
        for entry in self._opened.entries:
            if total is not None and entry.sample >= total:
                break
            gap = entry.sample - engine.position
            if gap > 0:
                yield from engine.render_chunks(samples=gap, progress=progress)
            _run_entry(engine, self._names, entry, report, live=False)
        if total is not None:
            yield from engine.render_chunks(samples=max(0, total - engine.position), progress=progress)
            return
        last = self._opened.entries[-1].sample if self._opened.entries else 0
        tail = max(0, last + int(TAIL_S * engine.sample_rate) - engine.position)
        if engine.loops():
            yield from engine.render_chunks(samples=tail, progress=progress)
        else:   # the voices end by themselves: render until they do
            yield from engine.render_chunks(None, progress=progress)


def render_set(folder, output, *, seconds: float | None = None, seed: int | None = None,
               model=None, session: int = -1, stems: bool = False,
               progress: bool | None = None) -> ReplayReport:
    """Render a set's journal offline to ``output`` (.wav or .flac), sample-exact.

    The file starts at the performance's engine sample 0 and runs to ``seconds``, or by default
    until :data:`TAIL_S` seconds after the last cell (sooner if every voice ends). ``seed`` or
    ``model`` render a variation; by default the set's own are used.

    >>> render_set("sets/tonight", "tonight.wav")          # doctest: +SKIP
    """
    from ..engine.engine import Engine
    from ..sinks.file import render_to_file
    if seconds is not None and not (seconds > 0):
        raise ParameterError(f"seconds={seconds!r} must be positive")
    opened, codec = open_set(folder, session=session, model=model)
    report = ReplayReport(sample_rate=codec.sample_rate)
    start = opened.session
    with Engine(codec, seed=start.seed if seed is None else seed, tempo=start.tempo) as engine:
        names = replay_namespace(engine, opened.folder)
        player = _JournalPlayer(engine, names, opened, report)
        written = render_to_file(player, output, seconds, stems=stems, progress=progress)
        report.samples = engine.position
        report.notes.extend(engine.messages)
    report.output = written[0]
    return report


def replay_set(folder, *, device=None, blocksize: int | None = None, seconds: float | None = None,
               session: int = -1, quiet: bool = False) -> ReplayReport:
    """Play a set's journal live through ``device``, each cell at its original sample.

    Stops ``seconds`` after the start, or :data:`TAIL_S` after the last cell (sooner if every
    voice ends), or on Ctrl-C. Cells run :data:`LEAD_S` early and land exactly on their sample;
    one that takes longer than that to run lands late, and the report says by how much.
    """
    from ..engine.engine import Engine
    if seconds is not None and not (seconds > 0):
        raise ParameterError(f"seconds={seconds!r} must be positive")
    opened, codec = open_set(folder, session=session)
    report = ReplayReport(sample_rate=codec.sample_rate)
    start = opened.session
    kwargs = {} if blocksize is None else {"blocksize": int(blocksize)}
    rate = codec.sample_rate
    lead = int(LEAD_S * rate)
    end = None if seconds is None else int(round(seconds * rate))
    entries = [e for e in opened.entries if end is None or e.sample < end]
    say = (lambda text: None) if quiet else (lambda text: print(text, file=sys.stderr))
    with Engine(codec, seed=start.seed, tempo=start.tempo, **kwargs) as engine:
        names = replay_namespace(engine, opened.folder)
        upcoming = list(entries)
        while upcoming and upcoming[0].sample < lead:   # before the first block plays
            _run_entry(engine, names, upcoming.pop(0), report, live=False)
        engine.start(device)
        say(f"replaying {opened.folder.name}: {len(entries)} cells"
            + (f" (session {start.index + 1} of {opened.sessions})" if opened.sessions > 1 else ""))
        try:
            for entry in upcoming:
                while engine.position < entry.sample - lead:
                    if end is not None and engine.position >= end:
                        break
                    for message in engine.take_messages():
                        say(message)
                    time.sleep(0.005)
                _run_entry(engine, names, entry, report, live=True)
            last = entries[-1].sample if entries else 0
            stop_at = end if end is not None else last + int(TAIL_S * rate)
            while engine.position < stop_at:
                for message in engine.take_messages():
                    say(message)
                if end is None and not engine.voices() and not engine.pending():
                    break
                time.sleep(0.01)
        except KeyboardInterrupt:
            say("interrupted")
        finally:
            engine.stop_playback(fade=0.05 if end is None else 0.0)
            report.samples = engine.position
            report.underruns = engine.underruns
            for message in engine.take_messages():
                say(message)
    for entry_id, late in report.late:
        say(f"cell {entry_id} landed {late / rate * 1e3:.0f} ms late (it took longer than "
            f"{LEAD_S:g} s to run)")
    for note in report.notes:
        say(note)
    if report.underruns:
        say(f"warning: {report.underruns} underruns (the decoder fell behind)")
    return report


def cli_render_set(args) -> int:
    """``livelatent render sets/NAME -o OUT.wav [--seconds S] [--seed N] [--model M] [--stems]``."""
    if getattr(args, "tempo", None) is not None:
        raise ParameterError(f"--tempo {args.tempo:g} does not apply to a set: its journal sets the "
                             f"tempo as it was played")
    began = time.perf_counter()
    report = render_set(args.script, args.output, seconds=args.seconds,
                        seed=getattr(args, "seed", None), model=getattr(args, "model", None),
                        stems=getattr(args, "stems", False))
    elapsed = time.perf_counter() - began
    for note in report.notes:
        print(note, file=sys.stderr)
    seconds = report.samples / report.sample_rate
    speed = seconds / elapsed if elapsed > 0 else float("inf")
    print(f"wrote {report.output} ({seconds:.1f} s, {report.cells} cells, {speed:.0f}x real time)")
    return 0


def cli_replay(args) -> int:
    """``livelatent replay sets/NAME [--device D] [--blocksize N] [--seconds S]``."""
    replay_set(args.set, device=args.device, blocksize=args.blocksize, seconds=args.seconds)
    return 0
