"""A performer's session: one engine, one namespace, one journal, and the set they save.

The REPL, the IPython extension and the pattern-file watcher all run code through
:meth:`Session.run_cell`, which is the one place where evaluated code meets the engine:

1. the code is appended to the journal (flushed and fsynced) *before* it runs;
2. it runs inside ``engine.batch()``, so every change it makes lands on one engine sample;
3. that sample is recorded, so a replay runs the cell at exactly the same sample.

``save("name")`` and ``load("name")`` are in the namespace as plain functions.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from ..config import sets_dir
from ..context import current_engine_or_none, set_current_engine
from ..errors import LiveLatentError, SetError
from ..live import prelude
from ..scripting import run_code
from .journal import JOURNAL_NAME, Journal

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
    candidate = Path(text)
    if candidate.is_absolute() or "/" in text or "\\" in text or text.startswith("."):
        return candidate
    return root / text


class Session:
    """An engine, the namespace a performer types in, and the journal of what they typed.

    Parameters
    ----------
    engine : Engine
        The engine the cells act on (it becomes the current engine if none is).
    set_name : str, optional
        The session's set folder under ``sets_root`` (default: the local time, like
        ``2026-11-21-1805``). An existing folder's journal is appended to.
    sets_root : path, optional
        Where sets live (default: :func:`livelatent.config.sets_dir`, ``./sets``).
    extra : dict, optional
        More names for the namespace. A replay of the journal runs without them, except
        :data:`~livelatent.session.sets.REPLAY_NOOPS` (the REPL's tools), which do nothing there.

    Attributes
    ----------
    engine, set_dir : Path, journal : Journal, namespace : dict

    Examples
    --------
    >>> session = Session(engine)                                   # doctest: +SKIP
    >>> session.run_cell("v = voice(flute, cello, curve=sine(8))")
    >>> session.run_cell("v.curve = tri(4)")
    >>> session.save("tonight")                                     # sets/tonight/
    """

    def __init__(self, engine, *, set_name: str | None = None, sets_root=None,
                 extra: dict | None = None):
        self.engine = engine
        self.sets_root = Path(sets_root) if sets_root is not None else sets_dir()
        self.set_dir = resolve_set(set_name, self.sets_root) if set_name else \
            self.sets_root / default_set_name(self.sets_root)
        self.journal = Journal(self.set_dir / JOURNAL_NAME)
        codec = engine.codec
        self.journal.start_session(
            seed=engine.seed, tempo=engine.requested_tempo, sample_rate=engine.sample_rate,
            position=engine.position, model_path=None if codec.path is None else Path(codec.path).resolve(),
            model_hash=codec.content_hash)
        if engine.voices() or engine.pending():
            engine.messages.append(
                "the engine already had voices when the session began: a replay of its journal "
                "starts from silence, so those voices will not be in it")
        if current_engine_or_none() is None:
            set_current_engine(engine)
        self._lock = threading.RLock()      # the REPL and the pattern watcher take turns
        self._cell_depth = 0                # > 0 while a cell runs (in the thread holding the lock)
        self.namespace: dict = prelude.namespace(engine, extra=extra)
        self.namespace["save"] = self._save_function()
        self.namespace["load"] = self._load_function()

    # -- running code --------------------------------------------------------------------------
    def run_cell(self, code: str, *, origin: str = "repl", discard_on_error: bool = False):
        """Journal ``code``, run it in one engine batch, and record the sample it landed on.

        Returns the value of the cell's last line when it is an expression (for the REPL to show).

        Errors are re-raised as a one-line :class:`LiveLatentError` (``<repl 3>:1: NameError:
        ...``); the journal keeps the cell, and a replay re-runs it and ignores that error.
        ``discard_on_error=True`` sends none of the cell's engine changes if it raises (a pattern
        file that fails changes nothing). If the journal cannot be written (a full disk), the
        cell still runs, the show goes on, and ``engine.messages`` says it was not recorded.
        """
        engine = self.engine
        with self._lock:
            if self._cell_depth:
                # code a running cell runs (IPython's %time hands its statement back through the
                # REPL): part of that cell, journaled with it and landing in its batch
                return run_code(code, self.namespace, filename="<in a cell>")
            try:
                entry_id = self.journal.append(code, origin, position=engine.position,
                                               discard_on_error=discard_on_error)
            except SetError as exc:
                entry_id = None
                engine.messages.append(f"{exc}: this cell runs but is not recorded; a replay "
                                       f"of the set will miss it")
            previous = current_engine_or_none()
            if previous is not engine:
                set_current_engine(engine)
            self._cell_depth += 1
            error = None
            try:
                with engine.batch(discard_on_error=discard_on_error):
                    value = run_code(code, self.namespace,
                                     filename=f"<{origin} {'?' if entry_id is None else entry_id}>")
            except LiveLatentError as exc:
                error = str(exc)
                raise
            except BaseException as exc:    # Ctrl-C in a long cell: recorded, then passed on
                error = f"{type(exc).__name__}: interrupted"
                raise
            finally:
                self._cell_depth -= 1
                if previous is not engine and previous is not None:
                    set_current_engine(previous)
                landed = engine.landed_at
                sample = landed if landed is not None else engine.position
                if entry_id is not None:
                    try:
                        self.journal.mark_applied(entry_id, sample, landed=landed is not None,
                                                  error=error)
                    except SetError as exc:   # the cell ran: its error (if any) matters more
                        engine.messages.append(f"{exc}: where cell {entry_id} landed is not recorded")
        return value

    # -- sets ----------------------------------------------------------------------------------
    def save(self, name: str | None = None) -> Path:
        """Save the engine's state and this session's journal as ``sets/<name>/``, atomically.

        Without a name, saves into the session's own set folder. Returns the folder.
        """
        from .state import save_set
        target = self.set_dir if name is None else resolve_set(name, self.sets_root)
        with self._lock:
            return save_set(self.engine, target, journal=self.journal.path)

    def load(self, name_or_path) -> None:
        """Restore a saved set's state into the running engine (its voices replace the current ones).

        Called outside a cell, the load is journaled as a cell ``load('name')`` of its own, so
        a replay of this session loads it at the same sample too.
        """
        with self._lock:
            if self._cell_depth == 0:
                self.run_cell(f"load({str(name_or_path)!r})", origin="load")
                return
            from .state import load_set
            load_set(self.engine, resolve_set(name_or_path, self.sets_root), names=self.namespace)

    def close(self) -> None:
        """Close the journal (the engine keeps playing; stopping it is its owner's job)."""
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
            print(f"saved {self.save(name)}")       # said once, not echoed again as a value
        return save

    def _load_function(self):
        def load(name) -> None:
            """Restore a saved set: its voices replace the ones playing. ``load("tonight")``"""
            self.load(name)
        return load
