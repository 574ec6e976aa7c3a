"""livelatent inside IPython: the ``livelatent`` REPL and ``%load_ext livelatent`` in any kernel.

Both attach the same :class:`ReplShell` to an IPython shell:

- the shell's namespace *is* the session's namespace (the public API bound to the engine, the
  pack's sources, ``save``, ``load``, ``render``, ``watch``, ``unwatch``);
- every cell goes through :meth:`Session.run_cell`: a last input transformer turns the cell
  (after IPython's own transforms, so ``%magics`` still work) into one call that journals it,
  fsynced, *before* it runs, runs it in one engine batch, and records the sample it landed on;
- an error in a cell (syntax error, exception, a curve that raises or returns NaN) prints one
  line labelled with the prompt's number, ``error: <cell 4>:1: NameError: name 'flut' is not
  defined``; the voices play on;
- Ctrl-C in a long cell interrupts the cell, never the sound (it plays in another process);
- the engine's events (a curve reverted to its last good one, a pattern reloaded, a render
  finished) are printed as they happen;
- in a terminal, a bottom toolbar shows the status line (:mod:`livelatent.repl.toolbar`),
  refreshed four times a second.

Cells that only ask IPython for help (``voice?``) or leave (``exit``) are not journaled.

``%load_ext livelatent`` starts an engine on ``$LIVELATENT_DEVICE`` (or the default output,
``$LIVELATENT_BLOCKSIZE`` frames per block) with ``$LIVELATENT_MODEL`` (or the default pack)
and a session in ``$LIVELATENT_SET`` (or a fresh set named by the time). Without an audio
device it says so in one line and runs offline: cells, ``render()`` and ``save()`` still
work. In a shell that already has livelatent (the ``livelatent`` REPL, or a second
``%load_ext``) it only says so. ``%unload_ext livelatent`` fades out and stops.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import sys
import threading
import time

from ..engine.writers import writer_origin
from ..errors import DeviceError, LiveLatentError, ParameterError
from ..events import Reader
from ..session.session import Session
from ..session.magics import REFUSED_MAGICS, SHOWING_MAGICS
from .magics import install_magics
from .background import render_in_background
from .patterns import PatternWatcher
from .setup import make_engine, start_playing
from .thread_errors import report_thread_errors
from .toolbar import status_line

__all__ = ["ReplShell", "attach", "load_ipython_extension", "unload_ipython_extension",
           "TOOLBAR_REFRESH_S"]

TOOLBAR_REFRESH_S = 0.25
MESSAGE_POLL_S = 0.1
HEARD_EVERY_S = 0.5     # how often the journal notes where the listener is
CATCH_UP_S = 0.03       # the REPL's thread sleeps this long after a cell that changed the sound
EXIT_CONFIRM_S = 10.0   # while voices sound, a second exit within this long leaves
CPR_TIMEOUT_S = 30.0    # how long the terminal may take to say where the cursor is
_CELL_FUNCTION = "__livelatent_cell__"
_EXIT_WORDS = re.compile(r"(exit|quit)(\(\s*(force\s*=\s*True)?\s*\))?")
_attached: dict[int, "ReplShell"] = {}      # id(IPython shell) -> the ReplShell attached to it


class ReplShell:
    """A session attached to an IPython shell (see the module docstring).

    Parameters
    ----------
    shell : InteractiveShell
    session : Session
    origin : str
        What the journal says the cells come from: ``"repl"`` or ``"ipython"``.
    toolbar : bool
        Show the status toolbar (terminal shells only).
    """

    def __init__(self, shell, session, *, origin: str = "repl", toolbar: bool = True, out=None):
        self.shell = shell
        self.session = session
        self.engine = session.engine
        self.origin = origin
        self.out = out                       # None: sys.stdout at the time of writing
        self.lock = threading.RLock()        # one cell or pattern reload at a time
        self.watcher = PatternWatcher(session, lock=self.lock)
        self.renders: list = []
        self._events = Reader(self.engine.events, from_start=True)
        self._stop = threading.Event()
        self._pump: threading.Thread | None = None
        self._toolbar = toolbar
        self._saved_options = self._saved_exit = None
        self._exit_asked, self._attached = -float("inf"), False
        self._put_back_thread_hook = self._remove_magics = None   # (attach sets them)

    # -- wiring --------------------------------------------------------------------------------
    def attach(self) -> "ReplShell":
        shell, session = self.shell, self.session
        if shell.user_ns is not session.namespace:
            for name, value in session.namespace.items():
                shell.user_ns[name] = value
            session.namespace = shell.user_ns          # one namespace: the shell's
        shell.user_ns.update(self.names())
        shell.user_ns[_CELL_FUNCTION] = self.run_cell
        shell.input_transformers_post.append(self._transform)
        shell.set_custom_exc((LiveLatentError,), _one_line_error)
        self._remove_magics = install_magics(shell, self.toolbar_text)
        if self._toolbar and hasattr(shell, "pt_app") and shell.pt_app is not None:
            self._install_toolbar()
            self._guard_exit()
        elif self.origin == "repl":  # livelatent's REPL fed by a pipe: exit(force=True) still
            self._guard_exit(ask=False)                  # works (a kernel keeps its own exit)
        self._pump = threading.Thread(target=self._pump_messages, name="livelatent-messages",
                                      daemon=True)
        self._pump.start()
        self._put_back_thread_hook = report_thread_errors(self.engine.events)
        self.watcher.start()
        self._attached = True
        _attached[id(shell)] = self
        return self

    def detach(self, *, fade: float = 0.5) -> None:
        """Stop watching and rendering, fade out (journaled), record the end, close the stream
        and the journal."""
        if not self._attached:
            return
        self._attached = False
        _attached.pop(id(self.shell), None)
        shell = self.shell
        self.session.performer.cancel_timers()
        self.watcher.stop()
        self._put_back_thread_hook()
        for job in self.renders:
            if not job.done:
                job.cancel()
        with contextlib.suppress(ValueError):
            shell.input_transformers_post.remove(self._transform)
        shell.set_custom_exc((), None)
        shell.user_ns.pop(_CELL_FUNCTION, None)
        self._remove_magics()
        if self._saved_options is not None:
            shell._extra_prompt_options = self._saved_options
            self._saved_options = None
        if self._saved_exit is not None:
            shell.__dict__.pop("ask_exit", None)
            confirm, names = self._saved_exit
            if confirm is not None:
                shell.confirm_exit = confirm
            shell.user_ns.update(names)
            self._saved_exit = None
        try:
            with writer_origin("exit"):
                self.engine.stop_playback(fade=fade)
            self.session.end()
        finally:
            self._stop.set()
            self.session.close()
        self.flush_events()

    def names(self) -> dict:
        """The REPL's own names: ``render``, ``watch``, ``unwatch``, ``reconnect``."""
        repl = self

        def render(path, seconds: float = 60.0):
            """Render the voices playing now to ``path`` in the background, faster than real time.

            Live playback goes on; the status line shows the progress. Returns a job:
            ``job.wait()``, ``job.cancel()``. ``render("layer.wav", seconds=600)``
            """
            job = render_in_background(repl.engine, path, seconds)
            repl.renders.append(job)
            repl.say(f"rendering {job.voices} voice{'s' * (job.voices != 1)} to {job.path} "
                     f"({job.seconds:g} s) in the background")
            return job

        def watch(path, *, run: bool = True):
            """Re-run a pattern file (or each file in a folder) every time it is saved.

            ``watch("patterns/meso_drift.py")``; ``unwatch()`` stops.
            """
            return repl.watcher.watch(path, run=run)

        def unwatch(path=None) -> None:
            """Stop re-running ``path`` (or every watched file); the voices play on."""
            repl.watcher.unwatch(path)

        def reconnect() -> None:
            """Try the audio device again now (when it was lost, it is tried every second)."""
            repl.engine.reconnect()

        return {"render": render, "watch": watch, "unwatch": unwatch, "reconnect": reconnect}

    # -- cells ---------------------------------------------------------------------------------
    def _transform(self, lines: list[str]) -> list[str]:
        """IPython's last input transformer: the whole cell becomes one journaled call."""
        code = "".join(lines)
        if not code.strip() or not self._journaled(code):
            return lines
        # the prompt's number, read now: IPython 8 counts the cell after it runs, IPython 9
        # before, and both only after this transformer
        return [f"{_CELL_FUNCTION}({code!r}, {self.shell.execution_count})\n"]

    @staticmethod
    def _journaled(code: str) -> bool:
        if _EXIT_WORDS.fullmatch(code.strip()):
            return False
        try:
            body = ast.parse(code).body
        except SyntaxError:
            return True            # journaled, and reported in one line by run_cell
        for node in body:
            call = node.value if isinstance(node, ast.Expr) else None
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "run_line_magic" and call.args
                    and isinstance(call.args[0], ast.Constant)
                    and call.args[0].value in SHOWING_MAGICS | REFUSED_MAGICS.keys()):
                return True
        return False

    def run_cell(self, code: str, prompt: int | None = None):
        """Journal and run ``code`` (called with its prompt's number); returns what to show."""
        label = f"<cell {prompt if prompt is not None else self.shell.execution_count}>"
        with self.lock:
            try:
                value = self.session.run_cell(code, origin=self.origin, label=label)
            except (KeyboardInterrupt, SystemExit) as exc:   # (sys.exit(): IPython's own lines)
                print(("interrupted" if isinstance(exc, KeyboardInterrupt) else "sys.exit() in a cell")
                      + ": the cell stopped, the voices play on", file=sys.stderr)
                return None
            finally:
                self._let_the_decoder_catch_up()
        return None if code.rstrip().endswith(";") else value      # a trailing ; hides it

    def _let_the_decoder_catch_up(self) -> None:
        """After a cell changed the sound, keep this thread off the GIL for a moment: the
        decode thread re-decodes from where the change landed, a block or two ahead of the
        listener, and every numpy call there gives the GIL up and takes it back."""
        if self.engine.playing and self.session.last_landed is not None:
            time.sleep(CATCH_UP_S)

    # -- output --------------------------------------------------------------------------------
    def say(self, line: str) -> None:
        """Print one line for the performer (from any thread)."""
        stream = self.out or sys.stdout
        try:
            print(line, file=stream, flush=True)
        except (OSError, ValueError):
            pass          # the terminal is gone: nothing to tell

    def flush_events(self) -> None:
        """Print the events not printed yet (the pump does it every 0.1 s)."""
        for event in self._events.take():
            self.say(str(event))

    def _pump_messages(self) -> None:
        polls = 0
        while not self._stop.wait(MESSAGE_POLL_S):
            self.flush_events()
            polls += 1
            if polls % round(HEARD_EVERY_S / MESSAGE_POLL_S) == 0 and self.engine.playing:
                self.session.note_heard()       # where a resume after a crash joins

    def toolbar_text(self) -> str:
        running = [job.progress_text() for job in self.renders if not job.done]
        running += [f"{live.name} +{1000 * live.delay / live.sample_rate:.0f} ms"
                    for live in self.session.live_inputs]
        return status_line(self.engine, extra=", ".join(running) or None)

    def _install_toolbar(self) -> None:
        shell = self.shell
        original = shell._extra_prompt_options
        self._saved_options = original
        renderer = shell.pt_app.app.renderer

        def options():
            # prompt_toolkit draws a bottom toolbar only once the terminal has said where the
            # cursor is; an answer later than its 2 s (a machine busy starting up) made it give
            # up for good, and the status line never appeared. Wait longer, and ask again at
            # every prompt if it gave up.
            renderer.CPR_TIMEOUT = CPR_TIMEOUT_S
            if renderer.cpr_support == "NOT_SUPPORTED":
                renderer.cpr_support = "UNKNOWN"
            merged = original()
            merged["bottom_toolbar"] = self.toolbar_text
            merged["refresh_interval"] = TOOLBAR_REFRESH_S
            return merged

        shell._extra_prompt_options = options

    # -- leaving -------------------------------------------------------------------------------
    def _guard_exit(self, *, ask: bool = True) -> None:
        """While voices sound, ``exit``, ``quit`` and Ctrl-D ask first: the same again within
        EXIT_CONFIRM_S leaves. ``exit(force=True)``, and any exit when nothing sounds, leave at
        once. ``ask=False`` (no terminal): every exit leaves, ``force=True`` taken too."""
        shell = self.shell
        from IPython.core.autocall import ExitAutocall

        repl = self

        class Exit(ExitAutocall):
            """Leave livelatent (the voices fade out). While voices sound, asks first;
            ``exit(force=True)`` does not."""

            def __call__(self, force: bool = False):
                if force or not ask or repl.may_leave():
                    type(shell).ask_exit(shell)

        self._saved_exit = (getattr(shell, "confirm_exit", None),       # (a kernel has none)
                            {k: shell.user_ns.get(k) for k in ("exit", "quit")})
        if not ask:
            shell.user_ns["exit"] = shell.user_ns["quit"] = Exit(shell)
            return
        shell.confirm_exit = False                      # Ctrl-D comes to ask_exit, and asks here
        shell.ask_exit = lambda: type(shell).ask_exit(shell) if self.may_leave() else None
        shell.user_ns["exit"] = shell.user_ns["quit"] = Exit(shell)

    def may_leave(self) -> bool:
        """Whether an exit asked for now goes ahead (see :meth:`_guard_exit`)."""
        sounding = [p for p in self.engine.heard().score.voices.values()
                    if p.stop_at is None or p.stop_at > self.engine.position]
        now = time.monotonic()
        if not sounding or now - self._exit_asked < EXIT_CONFIRM_S:
            return True
        self._exit_asked = now
        count = len(sounding)
        self.say(f"{count} voice{'s' * (count != 1)} sounding: exit (or Ctrl-D) again within "
                 f"{EXIT_CONFIRM_S:g} s to fade out and leave; exit(force=True) leaves at once")
        return False


def attach(shell, session, *, origin: str = "repl", toolbar: bool = True) -> ReplShell:
    """Attach ``session`` to an IPython ``shell``; returns the :class:`ReplShell`."""
    return ReplShell(shell, session, origin=origin, toolbar=toolbar).attach()


def _one_line_error(shell, etype, value, tb, tb_offset=None):
    """IPython's handler for LiveLatentError: one line, no traceback."""
    print(f"error: {value}", file=sys.stderr, flush=True)
    return []


# -- %load_ext livelatent ----------------------------------------------------------------------
def load_ipython_extension(ip) -> None:
    """``%load_ext livelatent``: an engine, a journaled session and the namespace in ``ip``."""
    if id(ip) in _attached:
        print("livelatent is already loaded in this shell: its engine plays on")
        return
    blocksize = (os.environ.get("LIVELATENT_BLOCKSIZE") or "").strip()
    try:          # (before IPython shows our errors in one line: a traceback named no variable)
        if blocksize and not (blocksize.isascii() and blocksize.isdecimal()):
            raise ParameterError(f"LIVELATENT_BLOCKSIZE={blocksize[:20]!r} must be a whole number "
                                 f"of frames")
        engine = make_engine(model=os.environ.get("LIVELATENT_MODEL") or None,
                             blocksize=int(blocksize) if blocksize else None)
    except LiveLatentError as exc:
        print(f"livelatent: not loaded: {exc} (LIVELATENT_MODEL, LIVELATENT_BLOCKSIZE)",
              file=sys.stderr)
        return
    device = os.environ.get("LIVELATENT_DEVICE") or None
    session = Session(engine, set_name=os.environ.get("LIVELATENT_SET") or None)
    repl = attach(ip, session, origin="ipython", toolbar=True)    # all set up before it plays
    try:
        start_playing(engine, device)
        where = f"live on {device or 'the default output'}"
    except DeviceError as exc:
        where = f"offline: no audio device ({str(exc).split(';')[0]}); render() still works"
    print(f"livelatent: {where}; journal {session.journal.path}; "
          f"try v = voice(flute, cello, curve=sine(8))")
    del repl


def unload_ipython_extension(ip) -> None:
    """``%unload_ext livelatent``: fade out, close the stream and the journal."""
    repl = _attached.get(id(ip))
    if repl is not None and repl.origin == "repl":
        print("livelatent runs this REPL and plays on: exit leaves it")   # %reload_ext too
        return
    if repl is not None:
        repl.detach()
        print(f"livelatent: stopped; journal {repl.session.journal.path}")
