"""A performer's session: one engine, one namespace, one journal, and the set they save.

The REPL, the IPython extension and the pattern-file watcher run code through
:meth:`Session.run_cell`:

1. the code is appended to the journal (flushed and fsynced) *before* it runs;
2. it runs inside one engine batch (origin ``repl``, ``pattern:FILE``...), so every change it
   makes lands on one sample; the journal's recorder writes that batch down as data;
3. where it landed, the error it raised (and on which line) and the outcome of its wall-clock
   checks are recorded, so a replay does exactly what the performance did.

Changes sent by anything else (a thread a cell started, a timer) are journaled by the same
recorder with their own origin. ``save("name")`` and ``load("name")`` are in the namespace.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from ..api import Performer
from ..config import sets_dir
from ..controllers import Controllers
from ..controllers.input_recorder import INPUTS_FOLDER, start_live_input
from ..engine.commands import AddVoice
from ..errors import LiveLatentError, SetError
from ..mapping.stored import load_mappings, save_mappings
from .code import check_text, run_code, top_line
from .journal import JOURNAL_NAME, Journal
from .namespace import namespace
from .recorder import JournalRecorder
from .records import SourceStore, rebuild_curve
from .state import STATE_NAME, copy_journal, load_set, model_record, save_set

__all__ = ["Session", "default_set_name", "resolve_set"]


def default_set_name(root: Path) -> str:
    """A fresh set name from the local time, ``2026-11-21-1805`` (``-2``, ``-3``... if taken)."""
    base = time.strftime("%Y-%m-%d-%H%M")
    name, n = base, 1
    while (root / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def resolve_set(name_or_path, root: Path) -> Path:
    """The folder of a set: a name under ``root``, or a path (absolute, or naming a folder)."""
    if isinstance(name_or_path, Path):
        return name_or_path
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise SetError(f"set name {name_or_path!r} must be a non-empty string, e.g. save('tonight')")
    text = name_or_path.strip()
    if "\0" in text:                  # no file system takes it (Python raises ValueError)
        raise SetError(f"set name {name_or_path!r} holds a NUL character")
    candidate = Path(text)
    if candidate.is_absolute() or "/" in text or "\\" in text or text.startswith("."):
        return candidate
    if not text.isprintable():        # (a newline broke the "livelatent render sets/..." hint)
        raise SetError(f"set name {name_or_path!r} holds a character that is not printable "
                       f"(a newline, a tab): give a name such as 'tonight'")
    return root / text


def _check_set_folder(folder: Path) -> None:
    """A session's set folder is new, empty, or a set: ``--set .`` wrote a journal and a
    state.json among the files of the folder it was typed in."""
    try:
        other = folder.is_dir() and not (folder / JOURNAL_NAME).exists() and \
            not (folder / STATE_NAME).exists() and \
            any(not p.name.startswith(".") for p in folder.iterdir())      # (.DS_Store and such)
    except OSError:
        return                                   # (writing the journal says what is wrong)
    if other:
        raise SetError(f"{folder} holds other files, not a set: give a set's name (--set NAME "
                       f"makes sets/NAME) or a new folder")


def _sessions_in(journal: Path) -> int:
    """How many sessions a journal holds already (0: none, or no journal)."""
    try:
        with open(journal, "rb") as f:
            return sum(b'"kind": "session"' in line or b'"kind":"session"' in line for line in f)
    except OSError:
        return 0


class Session:
    """An engine, the namespace a performer types in, and the journal of what they played.

    Parameters
    ----------
    engine : Engine
        The engine the cells act on.
    set_name : str, optional
        The session's set folder under ``sets_root`` (default: the local time, like
        ``2026-11-21-1805``). An existing folder's journal is appended to.
    sets_root : path, optional
        Where sets live (default: :func:`livelatent.config.sets_dir`, ``./sets``).
    extra : dict, optional
        More names for the namespace (the REPL's ``render``, ``watch``...).
    resumed : bool
        The engine was rebuilt from this set's journal (see :mod:`.resume`): the session carries
        on its timeline, and its journal record says so.

    Examples
    --------
    >>> session = Session(engine)                                   # doctest: +SKIP
    >>> session.run_cell("v = voice(flute, cello, curve=sine(8))")
    >>> session.run_cell("v.curve = tri(4)")
    >>> session.save("tonight")                                     # sets/tonight/
    """

    def __init__(self, engine, *, set_name: str | None = None, sets_root=None,
                 extra: dict | None = None, resumed: bool = False):
        self.engine = engine
        self.sets_root = Path(sets_root) if sets_root is not None else sets_dir()
        self.set_dir = resolve_set(set_name, self.sets_root) if set_name else \
            self.sets_root / default_set_name(self.sets_root)
        _check_set_folder(self.set_dir)
        played_before = _sessions_in(self.set_dir / JOURNAL_NAME)
        self.journal = Journal(self.set_dir / JOURNAL_NAME)
        if played_before and not resumed:        # appended to: say how the earlier one still plays
            engine.events.info(f"set {self.set_dir.name} holds {played_before} performance"
                               f"{'s' * (played_before > 1)} already: this one is added to its "
                               f"journal as session {played_before + 1} (render an earlier one "
                               f"with --session N; --resume carries on the last instead)")
        model = model_record(engine.codec)
        self.journal.start_session(
            seed=engine.seed, tempo=engine.intended_tempo(), sample_rate=engine.sample_rate,
            position=engine.position, model_hash=model["hash"], resumed=resumed,
            channels=engine.channels, model_path=model["path"], model_pack=model.get("pack"))
        if not engine.idle() and not resumed:
            engine.events.warning(
                "the engine already had voices when the session began: a replay of its journal "
                "starts from silence, so those voices will not be in it")
        self.store = SourceStore(self.set_dir, keep_failed=True)   # (a full disk: written later)
        self.recorder = JournalRecorder(self.journal, self.store, events=engine.events)
        engine.add_recorder(self.recorder)
        self._lock = threading.RLock()      # the REPL and the pattern watcher take turns
        self._cell_depth = 0                # > 0 while a cell runs (in the thread holding the lock)
        self._saved_in_cell: set[Path] = set()
        self.last_started: tuple = ()      # the numbers of the voices the last cell started
        self.last_landed: int | None = None   # where the last cell's changes landed (None: none)
        self._noted_heard = engine.position
        self.performer = Performer(engine)
        self.namespace: dict = namespace(engine, performer=self.performer, extra=extra)
        self.namespace["save"] = self._save_function()
        self.namespace["load"] = self._load_function()
        self.live_inputs: list = []         # the sources live_input() made (status, closing)
        self.namespace["live_input"] = self._live_input_function()

    def _live_input_function(self):
        engine, folder = self.engine, self.set_dir

        def live_input(channel: int = 1, delay: float | None = None):
            """A source encoded live from input ``channel`` of the audio device (start with
            ``--inputs 2``): ``voice(live_input(1), cello, curve=sine(8))``. It plays ``delay``
            seconds after it comes in (default and least: the lookahead, a window and the device's
            input-to-output lag) and is recorded into the set, so a render plays what was heard."""
            made = start_live_input(engine, folder, channel=channel, delay=delay,
                                    throttle=Controllers.of(engine).throttle)
            self.live_inputs.append(made)
            return made
        return live_input

    # -- running code --------------------------------------------------------------------------
    def run_cell(self, code: str, *, origin: str = "repl", discard_on_error: bool = False,
                 label: str | None = None):
        """Journal ``code``, run it in one engine batch, and record where it landed.

        Returns the value of the cell's last line when it is an expression (for the REPL to show).

        Errors are re-raised as a one-line :class:`LiveLatentError` (``<cell 3>:1: NameError:
        ...``; ``label`` names the cell, default ``<ORIGIN ID>``); the journal keeps the cell
        and the line that raised. ``discard_on_error=True`` sends none of the cell's engine
        changes if it raises (a pattern file that fails changes nothing). If the journal cannot
        be written (a full disk), the cell still runs, the show goes on, and an event says it
        was not recorded.
        """
        engine = self.engine
        check_text(code, label or f"<{origin}>")     # (before the journal: it writes UTF-8)
        with self._lock:
            if self._cell_depth:
                # code a running cell runs (IPython's %time hands its statement back through the
                # REPL): part of that cell, journaled with it and landing in its batch
                return run_code(code, self.namespace, filename=label or "<in a cell>")
            try:
                entry_id = self.journal.append(code, origin, position=engine.position,
                                               discard_on_error=discard_on_error)
            except SetError as exc:
                entry_id = None
                engine.events.error(f"{exc}: this cell runs but is not recorded; a replay of "
                                    f"the set will miss it")
            filename = label or f"<{origin} {'?' if entry_id is None else entry_id}>"
            self._cell_depth += 1
            error = error_line = None
            batch = None
            try:
                with engine.batch(origin=origin, discard_on_error=discard_on_error,
                                  cell=entry_id) as batch:
                    value = run_code(code, self.namespace, filename=filename)
            except LiveLatentError as exc:
                error, error_line = str(exc), getattr(exc, "top_line", None)
                raise
            except BaseException as exc:    # Ctrl-C in a long cell: recorded, then passed on
                error = f"{type(exc).__name__}: interrupted"   # (a replay runs what came before
                error_line = top_line(exc, filename)           # the statement it stopped in)
                raise
            finally:
                self._cell_depth -= 1
                self._finish_cell(entry_id, batch, error, error_line)
        return value

    def _finish_cell(self, entry_id, batch, error, error_line) -> None:
        engine = self.engine
        landed = batch.landed_at if batch is not None else None
        self.last_landed = landed
        self.last_started = tuple(c.params.index for c in (batch.commands if landed is not None else ())
                                  if isinstance(c, AddVoice))
        if entry_id is not None:
            try:
                self.journal.mark_applied(
                    entry_id, landed if landed is not None else engine.position,
                    landed=landed is not None, error=error, error_line=error_line,
                    checks=batch.checks.outcomes if batch is not None else ())
            except SetError as exc:   # the cell ran: its error (if any) matters more
                engine.events.error(f"{exc}: where cell {entry_id} landed is not recorded")
        # a set saved inside the cell copied the journal before the cell's batch landed
        for folder in self._saved_in_cell:
            try:
                copy_journal(folder, self.journal.path, self.set_dir)
            except OSError as exc:
                engine.events.error(f"the set {folder} misses the end of cell {entry_id}: {exc}")
        self._saved_in_cell.clear()

    # -- sets ----------------------------------------------------------------------------------
    def save(self, name: str | None = None) -> Path:
        """Save the engine's state and this session's journal as ``sets/<name>/``, atomically.

        Without a name, saves into the session's own set folder. Returns the folder.
        """
        target = self.set_dir if name is None else resolve_set(name, self.sets_root)
        if name is not None:
            self._check_saving_elsewhere(target)
        self.recorder.flush()               # controller values kept in memory: into the copy too
        if self.store.files.retry():        # (sources a full disk kept from the set meanwhile)
            self.recorder.say_unwritten()
            raise SetError("cannot save the set: sources this performance plays could not be "
                           "written into its folder yet (a full disk?); free some space and save again")
        with self._lock:
            folder = save_set(self.engine, target, journal=self.journal.path, sources_from=self.set_dir)
            save_mappings(self.namespace, folder)
            if self._cell_depth:
                self._saved_in_cell.add(folder)
            return folder

    def _check_saving_elsewhere(self, target: Path) -> None:
        """``save(name)`` into another folder than the session's: never over another performance
        (its journal, which this one's would replace), and not from a session recording live
        input (its recording goes on in this set's ``inputs/``: a copy would lack it)."""
        try:
            if target.resolve() == self.set_dir.resolve():
                return
            recording = any((self.set_dir / INPUTS_FOLDER).glob("*"))
            theirs = target / JOURNAL_NAME
            other = theirs.is_file() and not self.journal.path.read_bytes().startswith(
                theirs.read_bytes())                  # (an earlier save of this one: kept)
        except (OSError, RuntimeError):
            return                                    # (saving says what is wrong with it)
        if recording:
            raise SetError(f"cannot save as {target.name}: this set's live input recordings are in "
                           f"{self.set_dir / INPUTS_FOLDER}, which a copy would lack; save() keeps "
                           f"the set in its own folder (copy that folder once the session ends)")
        if other:
            raise SetError(f"cannot save as {target.name}: that set holds another performance, "
                           f"which this one's journal would replace; save under another name")

    def load(self, name_or_path) -> None:
        """Restore a saved set's state into the running engine (its voices replace the current ones).

        Called outside a cell, the load is journaled as a cell ``load('name')`` of its own.
        """
        with self._lock:
            if self._cell_depth == 0:
                self.run_cell(f"load({str(name_or_path)!r})", origin="load")
                return
            folder = resolve_set(name_or_path, self.sets_root)
            # the mappings are read first: a set that cannot load (a damaged mappings/ file)
            # must not have replaced the voices already, the cell's batch sending them
            mappings: dict = {}
            load_mappings(self.engine, folder, mappings, rebuild_curve=rebuild_curve)
            load_set(self.engine, folder, names=self.namespace)
            self.namespace.update(mappings)

    def note_heard(self) -> None:
        """Record where the listener is, if it moved since the last note (see
        :meth:`Journal.record_heard`); the REPL calls it twice a second."""
        self.recorder.flush()             # controller values heard so far: written first
        position = self.engine.position
        if position != self._noted_heard:
            self._noted_heard = position
            try:
                self.journal.record_heard(position)
            except SetError:
                pass                 # said when a record that matters fails

    def end(self) -> None:
        """Record that the performance ends here (the listener has heard everything so far)."""
        self.recorder.flush()
        self.store.files.retry()
        self.recorder.say_unwritten()
        try:
            self.journal.record_end(self.engine.position)
        except SetError as exc:
            self.engine.events.error(f"{exc}: the end of the performance is not recorded")

    def close(self) -> None:
        """Stop recording (the journal and the live inputs: their files are complete) and close
        the journal (the engine plays on; stopping it is its owner's job)."""
        for live in self.live_inputs:
            live.recorder.close()
        self.engine.remove_recorder(self.recorder)
        self.recorder.flush()
        self.journal.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self) -> str:
        return f"<Session {self.set_dir}, {self.engine!r}>"

    def _save_function(self):
        def save(name: str | None = None) -> None:
            """Save the set as ``sets/<name>/`` (state.json and the journal). ``save("tonight")``"""
            self.engine.events.info(f"saved {self.save(name)}")      # said once, not shown again
        return save

    def _load_function(self):
        def load(name) -> None:
            """Restore a saved set: its voices replace the ones playing. ``load("tonight")``"""
            self.load(name)
        return load
