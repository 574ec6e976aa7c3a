"""Sets, replayed: ``livelatent replay sets/NAME`` (live) and ``livelatent render sets/NAME``.

Both build a fresh engine like the performance's (same model, seed and tempo) and hand one
session of the set's journal to a :class:`~.replay.Replayer`: every recorded batch lands on the
very sample it landed on during the performance, so a render of a set equals, sample for
sample, what the engine played. Offline, the engine renders up to each cell's position and
runs it there; live, cells run :data:`LEAD_S` early and batches are scheduled on their future
samples. Both stop where the journal says the performance ended (or :data:`TAIL_S` after the
last change, sooner if every voice ends and the listener has heard it).

``--no-code`` runs none of the set's code: use it for a set you did not make yourself, since a
journal's cells are Python. It renders whatever the journal holds as data, which is everything
except curves made from Python functions; it names those and refuses.

A journal can hold several sessions (a set folder reopened); a replay plays one, the last by
default. Journals of livelatent 0.1 (cells only) replay by running their cells.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from pathlib import Path

from ..api import Performer
from ..controllers.input_recorder import recorded_inputs
from ..engine.engine import Engine
from ..errors import LiveLatentError, ParameterError, SetError
from ..events import Events, Printer
from ..mapping.stored import note_saved_names
from ..model.codec import load_model
from ..sinks.file import check_not_played, render_to_file
from .code import run_code
from .journal import JOURNAL_NAME
from .magics import ReplayShell
from .performance import Performance, read_performance
from .namespace import namespace
from .replay import Action, Replayer, ReplayReport, finish_report, quiet_stdout
from .session import resolve_set
from ..model.packs import locate_model
from .state import STATE_NAME, DamagedState, check_model, check_set_files, load_set, missing_pack, read_state

__all__ = ["REPLAY_NOOPS", "TAIL_S", "LEAD_S", "ReplayReport", "open_set",
           "replay_namespace", "render_set", "replay_set", "cli_render_set", "cli_replay"]

#: Names that act outside the engine (the REPL's tools): in a replay they do nothing.
REPLAY_NOOPS = ("save", "render", "watch", "unwatch", "reconnect")
TAIL_S = 4.0          # seconds rendered or played after the last change, unless the voices end first
UNASKED_RENDER_S = 48 * 3600   # a set's render runs longer than this only when --seconds asks
LEAD_S = 0.5          # how early a live replay runs a cell before its position


def open_set(folder, *, session: int = -1, model=None) -> tuple[Performance, object]:
    """Check the set ``folder`` and load its model: ``(performance, codec)``.

    Raises :class:`SetError` for a missing folder or journal, a malformed journal, a newer
    schema, a missing source or model file, or a model whose hash changed. A damaged
    ``state.json`` is warned about: the journal holds all a replay needs.
    """
    folder = Path(folder)
    if not folder.is_dir():
        read_state(folder)          # raises the "no set at ..." error, listing the sets there
    if not (folder / JOURNAL_NAME).exists():
        if (folder / STATE_NAME).exists():
            read_state(folder)                   # (a damaged one says so first)
        raise SetError(f"{folder} has no {JOURNAL_NAME}: there is nothing to replay")
    performance = read_performance(folder / JOURNAL_NAME, session=session)
    if (folder / STATE_NAME).exists():
        try:
            state = read_state(folder)
        except DamagedState as exc:    # the journal holds all a replay needs; a damaged state
            # only loses the early check of the set's source files
            warnings.warn(f"{exc}; replayed from {JOURNAL_NAME} alone", stacklevel=2)
        else:                          # (a source only the state names is not needed here)
            check_set_files(folder, dict(state, sources={
                key: record for key, record in state["sources"].items() if key in performance.sources}))
    start = performance.session
    if model is not None:
        codec = load_model(model)
    else:
        if start.model_path is None:
            raise SetError(f"set {folder.name} does not say which model it was played with; "
                           f"give --model")
        model_path = locate_model(start.model_path, start.model_hash)
        if not model_path.exists():
            raise SetError(missing_pack(folder.name, start.model_path, start.model_hash, start.model_pack))
        try:
            codec = load_model(model_path)
        except LiveLatentError as exc:
            raise SetError(f"set {folder.name}: its model {model_path} cannot be loaded: {exc}") from None
        check_model(codec.content_hash, {"path": str(model_path), "hash": start.model_hash,
                                         "pack": start.model_pack}, folder)
    if codec.sample_rate != start.sample_rate and model is None:
        raise SetError(f"set {folder.name} was played at {start.sample_rate} Hz, its model runs at "
                       f"{codec.sample_rate} Hz")
    return performance, codec


def replay_namespace(engine, folder: Path) -> dict:
    """The names a replayed cell runs in: the performer's (timers inert), ``load`` for sets
    beside ``folder``, :data:`REPLAY_NOOPS` doing nothing, and ``get_ipython()`` for cells that
    used a magic."""
    names = namespace(engine, performer=Performer(engine, replaying=True))
    for name in REPLAY_NOOPS:
        names[name] = _NOTHING

    def load(name_or_path):
        found = resolve_set(name_or_path, folder.parent)
        load_set(engine, found, names=names)
        note_saved_names(engine, found)     # as a live load() does by loading them

    names["load"] = load
    names["live_input"] = recorded_inputs(folder, engine.sample_rate)
    shell = ReplayShell(names)
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


def _prepare(engine, performance, folder, *, run_code_too: bool, report) -> Replayer:
    if performance.session.version < 2:
        if not run_code_too:
            raise SetError(f"set {Path(folder).name} was recorded by livelatent 0.1, whose journal "
                           f"holds only code: --no-code cannot render it")
        return _LegacyReplayer(engine, performance, replay_namespace(engine, Path(folder)), report)
    names = replay_namespace(engine, Path(folder)) if run_code_too else None
    return Replayer(engine, performance, folder, names=names, report=report)


def _last_change(performance) -> int:
    """The last change, or where the listener was last known to be if later (a crash)."""
    samples = [b.sample for b in performance.batches] + [c.sample for c in performance.cells]
    return max(samples + [performance.heard], default=0)


def _source_files(performance, folder: Path) -> dict:
    """The audio files a set's sources were read from, and its live inputs' recordings (in the
    set's folder), each with the source's key."""
    files = {}
    for key, record in performance.sources.items():
        for file in record.get("paths") or ():
            if isinstance(file, str):
                files[file] = f"the set's source {key!r}"
        origin = record.get("origin")
        if isinstance(origin, dict) and origin.get("kind") == "live" and isinstance(origin.get("file"), str):
            files[str(folder / origin["file"])] = f"the set's live input {key!r} (its recording)"
    return files


class _JournalPlayer:
    """Looks like an engine to :func:`render_to_file`: its render performs the replay's
    actions between the blocks it yields."""

    def __init__(self, engine, replayer, performance, report):
        self._engine, self._replayer = engine, replayer
        self._performance, self._report = performance, report

    sample_rate = property(lambda self: self._engine.sample_rate)
    channels = property(lambda self: self._engine.channels)
    position = property(lambda self: self._engine.position)
    set_stem_sink = property(lambda self: self._engine.set_stem_sink)
    handoff = property(lambda self: self._engine.handoff)
    intended_voices = property(lambda self: self._engine.intended_voices)

    def render_chunks(self, seconds=None, *, samples=None, progress=None, **_):
        engine = self._engine
        if samples is not None:        # what follows the render (a resampled file's end reads
            yield from engine.render_chunks(samples=samples, progress=progress)   # it): the
            return                     # performance was replayed up to here already
        total = None if seconds is None else int(round(seconds * engine.sample_rate))
        end = self._performance.end if total is None else total
        for action in self._replayer.actions():
            if end is not None and action.when >= end:
                continue        # (a timer's batch comes early in sending order: go on with the rest)
            gap = action.when - engine.position
            if action.kind == "cell" and gap > 0:
                yield from engine.render_chunks(samples=gap, progress=progress)
            landed = self._replayer.perform(action)
            if landed is not None and landed != action.when:
                raise SetError(f"batch {action.item.seq} landed on sample {landed}, not "
                               f"{action.when} as the journal says: the journal was edited or "
                               f"damaged, comes from another version of livelatent, or the model "
                               f"given steps otherwise than the set's")
        if end is not None:
            yield from engine.render_chunks(samples=max(0, end - engine.position), progress=progress)
            return
        tail = max(0, _last_change(self._performance) + int(TAIL_S * engine.sample_rate) - engine.position)
        if engine.loops():
            yield from engine.render_chunks(samples=tail, progress=progress)
        else:   # the voices end by themselves: render until they do
            yield from engine.render_chunks(None, progress=progress)


def render_set(folder, output, *, seconds: float | None = None, seed: int | None = None,
               model=None, session: int = -1, stems: bool = False,
               progress: bool | None = None, run_code: bool = True, rate: int | None = None) -> ReplayReport:
    """Render a set's journal offline to ``output`` (.wav or .flac), sample-exact.

    The file starts at the performance's engine sample 0 and runs to ``seconds``, or to the
    recorded end of the performance, or :data:`TAIL_S` after its last change (sooner if every
    voice ends). ``seed`` or ``model`` render a variation; ``run_code=False`` runs none of the
    set's code (``--no-code``); ``rate`` resamples as a device of that rate plays.

    >>> render_set("sets/tonight", "tonight.wav")          # doctest: +SKIP
    """
    if seconds is not None and not (0 < seconds < math.inf):
        raise ParameterError(f"seconds={seconds!r} must be positive and finite")
    folder = Path(folder)
    performance, codec = open_set(folder, session=session, model=model)
    length = (performance.end if performance.end is not None else _last_change(performance)) \
        / codec.sample_rate
    if seconds is None and length > UNASKED_RENDER_S:     # (a file of it would fill a disk)
        raise SetError(f"{folder.name}'s performance ran {length / 3600:.1f} hours, longer than a "
                       f"render makes unasked ({UNASKED_RENDER_S // 3600} hours): give --seconds "
                       f"(all of it: {math.ceil(length)})")
    # (before it plays: its voices start as it goes)
    check_not_played(output, _source_files(performance, folder), stems=stems)
    report = ReplayReport(sample_rate=codec.sample_rate)
    if len(performance.resumed_at) + 1 < performance.sessions:   # (a resume carries on those before)
        report.notes.append(f"{folder.name}'s journal holds {performance.sessions} sessions; this "
                            f"is session {performance.session.index + 1 + len(performance.resumed_at)}"
                            f" (--session N renders another)")
    if codec.content_hash != performance.session.model_hash:
        report.notes.append(f"rendering {folder.name} with {model}, not the model it was played with")
    start = performance.session
    with Engine(codec, seed=start.seed if seed is None else seed, tempo=start.tempo,
                channels=start.channels) as engine:
        replayer = _prepare(engine, performance, folder, run_code_too=run_code, report=report)
        player = _JournalPlayer(engine, replayer, performance, report)
        written = render_to_file(player, output, seconds, stems=stems, progress=progress, rate=rate)
        report.samples = engine.position
        finish_report(engine, performance, report)
    report.output = written[0]
    return report


def replay_set(folder, *, device=None, blocksize: int | None = None, seconds: float | None = None,
               session: int = -1, run_code: bool = True, events=None) -> ReplayReport:
    """Play a set's journal live through ``device``, each change on its original sample.

    Stops ``seconds`` after the start, at the recorded end of the performance, or
    :data:`TAIL_S` after its last change (sooner if every voice ends and has been heard), or
    on Ctrl-C. A batch that arrives too late to land on its sample lands as soon as it can,
    and the report says by how much. What happens is told on ``events`` as it happens.
    """
    if seconds is not None and not (0 < seconds < math.inf):
        raise ParameterError(f"seconds={seconds!r} must be positive and finite")
    folder = Path(folder)
    performance, codec = open_set(folder, session=session)
    report = ReplayReport(sample_rate=codec.sample_rate)
    start = performance.session
    kwargs = {} if blocksize is None else {"blocksize": int(blocksize)}
    rate = codec.sample_rate
    lead = int(LEAD_S * rate)
    end = int(round(seconds * rate)) if seconds is not None else performance.end
    with Engine(codec, seed=start.seed, tempo=start.tempo, events=events, channels=start.channels,
                **kwargs) as engine:
        replayer = _prepare(engine, performance, folder, run_code_too=run_code, report=report)
        actions = list(replayer.actions())
        while actions and actions[0].when < lead and (end is None or actions[0].when < end):
            replayer.perform(actions.pop(0))        # before the first block plays
        engine.start(device)
        engine.events.info(f"replaying {folder.name}: {len(performance.batches)} changes" + (
            f" (session {start.index + 1} of {performance.sessions})" if performance.sessions > 1 else ""))
        try:
            for action in actions:
                if end is not None and action.when >= end:
                    continue
                while action.kind == "cell" and engine.position < action.when - lead:
                    time.sleep(0.005)
                landed = replayer.perform(action)
                if landed is not None and landed > action.when:
                    report.late.append((action.item.seq, landed - action.when))
            stop_at = end if end is not None else _last_change(performance) + int(TAIL_S * rate)
            while engine.position < stop_at:
                if end is None and engine.idle() and engine.position >= engine.sound_end:
                    break
                time.sleep(0.01)
        except KeyboardInterrupt:
            engine.events.info("interrupted")
        finally:
            engine.stop_playback()
            report.samples = engine.position
            report.underruns = engine.underruns
        for seq, late in report.late:
            engine.events.warning(f"change {seq} landed {late / rate * 1e3:.0f} ms late")
        for note in report.notes:
            engine.events.info(note)
        if report.underruns:
            engine.events.warning(f"{report.underruns} underruns (the decoder fell behind)")
    return report


class _LegacyReplayer:
    """A livelatent 0.1 journal (cells only): each cell runs in a batch landing on its sample."""

    def __init__(self, engine, performance, names, report):
        self.engine, self.performance, self.names, self.report = engine, performance, names, report

    def actions(self):
        step = self.engine.step
        for entry in self.performance.cells:
            when = entry.sample if entry.landed else -(-entry.sample // step) * step
            yield Action("cell", when, entry)

    def perform(self, action: Action):
        entry, engine = action.item, self.engine
        try:
            with engine.batch(origin=entry.origin, discard_on_error=entry.discard_on_error,
                              at=max(action.when, engine.position)), quiet_stdout():
                run_code(entry.code, self.names, filename=f"<{entry.origin} {entry.id}>")
        except LiveLatentError as exc:
            if entry.error is None:
                raise SetError(f"cell {entry.id} ({entry.origin}) ran cleanly during the "
                               f"performance but fails now: {exc}") from None
        except SystemExit:       # sys.exit() in a cell: the REPL went on, and so does a replay
            self.report.notes.append(f"cell {entry.id} ({entry.origin}) called exit()")
        self.report.cells += 1
        return None


def cli_render_set(args) -> int:
    """``livelatent render sets/NAME -o OUT.wav [--seconds S] [--seed N] [--model M] [--stems]
    [--no-code]``."""
    if getattr(args, "tempo", None) is not None:
        raise ParameterError(f"--tempo {args.tempo:g} does not apply to a set: its journal sets the "
                             f"tempo as it was played")
    if getattr(args, "channels", None) is not None:      # (it was taken, and quietly not used)
        raise ParameterError(f"--channels {args.channels} does not apply to a set: it renders its own")
    began = time.perf_counter()
    session = getattr(args, "session", None)
    if session is not None and session < 1:
        raise ParameterError(f"--session {session}: sessions count from 1")
    report = render_set(args.script, args.output, seconds=args.seconds,
                        session=-1 if session is None else session - 1,
                        seed=getattr(args, "seed", None), model=getattr(args, "model", None),
                        stems=getattr(args, "stems", False), rate=getattr(args, "rate", None),
                        run_code=not getattr(args, "no_code", False))
    elapsed = time.perf_counter() - began
    for note in report.notes:
        print(note, file=sys.stderr)
    seconds = report.samples / report.sample_rate
    speed = seconds / elapsed if elapsed > 0 else float("inf")
    print(f"wrote {report.output} ({seconds:.1f} s, {report.batches} changes, "
          f"{speed:.0f}x real time)")
    return 0


def cli_replay(args) -> int:
    """``livelatent replay sets/NAME [--device D] [--blocksize N] [--seconds S] [--no-code]``."""
    events = Events()
    with Printer(events):
        replay_set(args.set, device=args.device, blocksize=args.blocksize, seconds=args.seconds,
                   run_code=not getattr(args, "no_code", False), events=events)
    return 0
