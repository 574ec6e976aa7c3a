"""Pattern files: play from an editor. A watched file is re-run every time it is saved.

``watch("patterns/drift.py")`` (or ``livelatent live --watch patterns/``) runs the file in the
REPL's namespace at once, then again whenever its modification time or size changes. Every run
goes through :meth:`Session.run_cell` with ``origin="pattern:<path>"``, so it is journaled and
lands on one engine sample like a REPL cell; its errors name the file and the line.

A file *describes* what it plays: when it runs again, the voices its previous run started
are stopped on the same sample the new ones start (a 50 ms fade), instead of piling up. That
stop is part of the journaled code (a last line the watcher adds, ``_livelatent_performer.stop(...)``).
Its timers (``every``, ``at``) are replaced the same way (:meth:`Timers.owned_by`); what they
change is journaled when it lands, as always.

A file that does not compile is reported once and not run. A file that raises while it runs
changes nothing: the cell runs with ``discard_on_error=True``, so none of its engine changes
are sent. A file still running after :data:`RUN_LIMIT_S` (a loop that never ends) is
interrupted the same way: the REPL waits for it, and must not wait forever. Either way the
voices play on.

Polling (every 0.1 s, in a daemon thread) needs no extra dependency and sees an edit well
within a second; editors that save by writing a new file and renaming it are seen too. A
changed file runs only once it has held still from one poll to the next: an editor that saves
in place truncates the file before it writes, and a file read in that gap is empty, which would
stop all its voices. New files (never run yet) run on the first poll that sees them. A file
that goes (deleted, or renamed away) is said once; its voices play on, and when it comes back
its run replaces them as a save does (in a watched folder too).
"""

from __future__ import annotations

import threading
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from ..api import REPLACE_FADE_S
from ..deadline import Deadline
from ..errors import LiveLatentError, ParameterError, described
from ..session.namespace import OWN_PERFORMER
from ..timers import Timers

__all__ = ["PatternWatcher", "POLL_INTERVAL_S", "RUN_LIMIT_S"]

POLL_INTERVAL_S = 0.1
RUN_LIMIT_S = 60.0      # a run still going after this long is interrupted (nothing changes); a
                        # file may take a while the first time it encodes long sources


@dataclass
class _Watched:
    """One watched file: its last seen signature and the voices its last good run started."""

    path: Path
    signature: tuple | None = None
    changing: tuple | None = None
    voices: tuple = ()
    runs: int = 0
    errors: int = 0
    last_error: str | None = None
    from_folder: Path | None = field(default=None, repr=False)
    missing: int = 0                   # polls in a row that found it gone (said at the second)


class PatternWatcher:
    """Re-run pattern files in a session when they change.

    Parameters
    ----------
    session : Session
        Where the files run (its namespace, engine and journal). Each reload or error is an
        event on its engine's events.
    interval : float
        Seconds between polls.
    lock : threading.Lock-like, optional
        Held while a file runs; the REPL holds the same lock while a cell runs, so the two
        never share an engine batch.
    run_limit : float
        Seconds a file may run before it is interrupted.

    Examples
    --------
    >>> watcher = PatternWatcher(session)             # doctest: +SKIP
    >>> watcher.watch("patterns/drift.py")            # runs it now, and on every save
    >>> watcher.start()
    """

    def __init__(self, session, *, interval: float = POLL_INTERVAL_S, lock=None,
                 run_limit: float = RUN_LIMIT_S):
        if not interval > 0:
            raise ParameterError(f"interval={interval!r} must be a positive number of seconds")
        if not run_limit > 0:
            raise ParameterError(f"run_limit={run_limit!r} must be a positive number of seconds")
        self.session = session
        self.events = session.engine.events
        self.interval = float(interval)
        self.run_limit = float(run_limit)
        self.lock = lock if lock is not None else threading.RLock()
        self._files: dict[Path, _Watched] = {}
        self._folders: list[Path] = []
        self._state_lock = threading.Lock()
        self._check_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- what a performer calls ----------------------------------------------------------------
    def watch(self, path, *, run: bool = True) -> list[Path]:
        """Watch a pattern file, or every ``*.py`` file in a folder (new ones too).

        The files run at once (``run=False``: only when they next change); while the polling
        thread runs, that first run is its job, so a ``watch()`` typed in a REPL cell runs the
        file just after that cell, as a journal entry of its own. Returns the files watched.
        """
        target = Path(path).expanduser()
        if target.is_dir():
            folder = target.resolve()
            with self._state_lock:
                if folder not in self._folders:
                    self._folders.append(folder)
            files = [self._add(f, from_folder=folder) for f in _pattern_files(folder)]
        elif target.is_file():
            if target.suffix != ".py":
                raise ParameterError(f"watch({str(path)!r}): a pattern file is Python code (.py)")
            files = [self._add(target)]
        else:
            raise ParameterError(f"watch({str(path)!r}): no such file or folder")
        if not run:
            for key in files:
                self._files[key].signature = _signature(key)
        elif not self.running:
            self.check()
        return files

    def unwatch(self, path=None) -> None:
        """Stop watching ``path`` (a file or folder), or everything. Its voices play on."""
        with self._state_lock:
            if path is None:
                self._files.clear()
                self._folders.clear()
                return
            target = Path(path).expanduser().resolve()
            self._folders = [f for f in self._folders if f != target]
            for key in [k for k, w in self._files.items() if k == target or w.from_folder == target]:
                del self._files[key]

    @property
    def files(self) -> list[Path]:
        """The files watched now."""
        with self._state_lock:
            return list(self._files)

    # -- polling -------------------------------------------------------------------------------
    def check(self) -> list[Path]:
        """Poll once: run every watched file that changed since its last run and has held still
        since the previous poll (a file never run yet: at once). Returns the files run."""
        with self._check_lock:          # the polling thread and a direct call take turns
            return self._check()

    def _check(self) -> list[Path]:
        for folder in list(self._folders):
            for path in _pattern_files(folder):
                self._add(path, from_folder=folder)
        reloaded = []
        for watched in list(self._files.values()):
            signature = _signature(watched.path)
            if signature is None:
                if watched.signature is not None:      # (in a watched folder too: its voices
                    watched.missing += 1               # are stopped when it comes back. Said
                    # once; not at an editor's save by renaming, which a poll may meet)
                    if watched.missing == 2:
                        self.events.warning(f"{_shown(watched.path)} has gone (deleted or "
                                            f"renamed); its voices play on, and it is watched "
                                            f"again if it comes back")
                continue
            watched.missing = 0
            if signature == watched.signature:
                watched.changing = None
                continue
            if watched.signature is not None and signature != watched.changing:
                watched.changing = signature    # maybe mid-save: run it if it holds still
                continue
            try:             # in the encoding its coding line declares, as Python reads it
                with tokenize.open(watched.path) as handle:
                    code = handle.read()
            except (OSError, UnicodeDecodeError, SyntaxError) as exc:   # (an unknown coding)
                watched.signature = signature
                self._fail(watched, f"cannot read it: {exc}")
                continue
            if _signature(watched.path) != signature:
                continue            # still being written: take it on the next poll
            watched.signature, watched.changing = signature, None
            self._run(watched, code)
            reloaded.append(watched.path)
        return reloaded

    @property
    def running(self) -> bool:
        """Whether the polling thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "PatternWatcher":
        """Poll in a daemon thread until :meth:`stop`."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="livelatent-patterns",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except BaseException as exc:   # the watcher must outlive anything a file does
                self.events.error(f"pattern watcher: {type(exc).__name__}: {exc}")

    # -- running a file ------------------------------------------------------------------------
    def _add(self, path: Path, *, from_folder: Path | None = None) -> Path:
        key = path.resolve()
        with self._state_lock:
            if key not in self._files:
                self._files[key] = _Watched(key, from_folder=from_folder)
        return key

    def _run(self, watched: _Watched, code: str) -> None:
        shown = _shown(watched.path)
        try:
            compile(code, str(watched.path), "exec")
        except (SyntaxError, ValueError) as exc:      # ValueError: a NUL byte in the file
            where = f"line {exc.lineno}: " if getattr(exc, "lineno", None) else ""
            self._fail(watched, f"{where}syntax error: {getattr(exc, 'msg', exc)}")
            return
        except (RecursionError, MemoryError):         # ("x = 1+1+...+1" 200,000 terms long)
            self._fail(watched, "cannot compile it: nested too deeply for Python (a very long "
                                "expression?)")
            return
        with self.lock:
            cell = code if code.endswith("\n") else code + "\n"
            if watched.voices:
                # the voices this file started last time make way for the new ones, on the same
                # sample; written into the journaled code so that a reader sees it happen
                numbers = ", ".join(str(n) for n in watched.voices)
                cell += (f"{OWN_PERFORMER}.stop({numbers}, fade={REPLACE_FADE_S})  "
                         f"# livelatent: replaces this file's previous voices\n")
            deadline = Deadline(self.run_limit)
            try:
                with deadline, Timers.of(self.session.engine).owned_by(f"pattern:{watched.path}"):
                    self.session.run_cell(cell, origin=f"pattern:{shown}", discard_on_error=True,
                                          label=shown)
            except LiveLatentError as exc:
                self._fail(watched, f"{exc} (nothing changed)")
                return
            except KeyboardInterrupt:
                why = f"still running after {self.run_limit:g} s: " if deadline.fired else ""
                self._fail(watched, f"{why}interrupted (nothing changed)")
                return
            except BaseException as exc:      # exit() in a file must not end the watcher
                self._fail(watched, f"{described(exc)} (nothing changed)")
                return
            finally:
                deadline.leave()    # (an interrupt raised inside its __exit__ left it half-done)
            started = self.session.last_started
        watched.voices = started
        watched.runs += 1
        watched.last_error = None
        verb = "ran" if watched.runs == 1 else "reloaded"
        voices = f", {len(started)} voice{'s' * (len(started) != 1)}" if started else ""
        self.events.info(f"{verb} {shown}{voices}")

    def _fail(self, watched: _Watched, message: str) -> None:
        watched.errors += 1
        watched.last_error = message
        self.events.error(f"{_shown(watched.path)}: {message}; the voices play on")


def _pattern_files(folder: Path) -> list[Path]:
    """The pattern files in ``folder``: ``*.py``, not hidden, sorted (subfolders too)."""
    try:
        return sorted(p for p in folder.rglob("*.py")
                      if p.is_file() and not any(part.startswith((".", "_"))
                                                 for part in p.relative_to(folder).parts))
    except OSError:
        return []


def _signature(path: Path):
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
