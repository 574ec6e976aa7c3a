"""``livelatent`` (= ``livelatent live``): the performer's REPL in a terminal.

An IPython terminal shell with the engine playing: the model pack loaded, the stream open,
the public API and the pack's sources in the namespace, every cell journaled and run in one
engine batch (see :mod:`livelatent.repl.ipython`), a status toolbar at the bottom, and the
pattern files given with ``--watch`` hot-reloading.

Without an audio device the REPL does not start: it prints the reason in one line
(``livelatent: error: ...``) and exits with status 2, because a performer who typed
``livelatent`` expects sound, and silence that looks like a working REPL is worse than a clear
refusal. ``--offline`` starts it anyway, to write and ``render()`` without a sound card.

Keeping the sound free of underruns (see :mod:`.setup`): everything is set up before the
stream opens, the start-up garbage is frozen, the process asks for a higher priority, and the
GIL switches every millisecond. The stream itself plays in its own process.

Leaving (``exit``, or Ctrl-D and yes) fades the voices out over half a second (journaled, like
every change), waits until the listener has heard the end, records it, and closes the stream;
the state is saved beside the journal so ``livelatent render sets/<name>`` works at once.
"""

from __future__ import annotations

import re
import signal
import sys
import threading
import time

from .. import optional
from ..engine.playback import SWITCH_INTERVAL_S
from ..config import check_inputs, sets_dir
from ..errors import DeviceError, LiveLatentError, ParameterError
from ..session.resume import rebuild
from ..session.session import Session, resolve_set
from ..sinks.device import find_output_device
from .ipython import attach
from .setup import freeze_garbage, make_engine, raise_process_priority, start_playing

__all__ = ["cli_live", "EXIT_FADE_S"]

EXIT_FADE_S = 0.5


def _import_ipython() -> None:
    try:
        optional.terminal_shell()
    except LiveLatentError:
        pass                  # said when the shell is made


def _make_shell(session):
    TerminalInteractiveShell, Config = optional.terminal_shell()
    config = Config()
    config.TerminalInteractiveShell.confirm_exit = True      # Ctrl-D on stage asks first
    config.TerminalInteractiveShell.term_title = False
    config.TerminalInteractiveShell.banner1 = ""
    config.HistoryManager.enabled = True
    return TerminalInteractiveShell.instance(config=config, user_ns=session.namespace)


def _let_ctrl_c_interrupt() -> None:
    """Have Ctrl-C stop a running cell even when this process began with SIGINT ignored.

    A shell without job control (a script, a test runner's) starts its background commands with
    SIGINT ignored, and what they start inherits that; Python then installs no handler, so a
    cell's KeyboardInterrupt never comes and a runaway cell cannot be stopped. On a terminal the
    performer's Ctrl-C must stop it. (The audio process, in a process group of its own, never
    gets the terminal's Ctrl-C.)"""
    if sys.stdin.isatty() and signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def cli_live(args) -> int:
    """``livelatent [live] [--device D] [--blocksize N] [--model M] [--set NAME] [--watch PATH]
    [--offline] [--resume sets/NAME]``."""
    began = time.perf_counter()
    # The decode thread needs the GIL for a moment every few milliseconds; with the default
    # 5 ms switch interval, a busy REPL thread (IPython compiling a cell, the toolbar
    # redrawing) made it late. 1 ms keeps it on time.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    raise_process_priority()
    _let_ctrl_c_interrupt()
    # IPython's import (about 0.4 s of Python) overlaps the model and demo sources loading,
    # which spend their time in file reads and C code that let the GIL go.
    importer = threading.Thread(target=_import_ipython, name="livelatent-import", daemon=True)
    importer.start()
    offline = bool(getattr(args, "offline", False))
    check_inputs(getattr(args, "inputs", 0))       # (offline too: --inputs -1 was taken)
    resume = getattr(args, "resume", None)
    if resume is not None and (args.set_name or args.model):
        raise ParameterError("--resume carries on a set with its own name and model: leave out "
                             "--set and --model")
    if not offline:
        try:
            find_output_device(args.device)       # before anything is written or started
        except DeviceError as exc:   # printed as one line, exit status 2, by livelatent.cli
            raise DeviceError(f"{exc}; `livelatent live --offline` starts the REPL without "
                              f"sound, to write and render") from None
    if resume is not None:
        session = _resumed_session(resume, args.blocksize, args.lookahead, args.channels)
        engine = session.engine
    else:
        engine = make_engine(model=args.model, blocksize=args.blocksize, lookahead=args.lookahead,
                             channels=2 if args.channels is None else args.channels)
        session = Session(engine, set_name=args.set_name)
    # Everything heavy (IPython's import, the demo sources) is done before the stream opens.
    importer.join()
    shell = _make_shell(session)
    repl = attach(shell, session, origin="repl", toolbar=True)
    freeze_garbage()
    try:
        if not offline:
            start_playing(engine, args.device, inputs=args.inputs)
        for path in args.watch or []:
            try:
                repl.watcher.watch(path)
                repl.watcher.check()     # run now, before the prompt: the first sound comes sooner
            except LiveLatentError as exc:
                print(f"error: {exc}", file=sys.stderr)
        repl.flush_events()
        mode = f"live on {args.device or 'the default output'}" if engine.playing else "offline"
        print(f"livelatent {mode}, {engine.sample_rate} Hz, ready in "
              f"{time.perf_counter() - began:.1f} s; journal {session.journal.path}\n"
              f"try: v = voice(flute, cello, curve=sine(8))    then: v.curve = tri(4)    "
              f"exit to leave")
        shell.mainloop()
    finally:
        _leave(repl)
    return 0


def _resumed_session(folder, blocksize, lookahead, channels=None) -> Session:
    """A session carrying on the set ``folder`` where its journal ends (see
    :mod:`livelatent.session.resume`)."""
    folder = resolve_set(folder, sets_dir())             # a name as --set takes it, or a path
    print(f"resuming {folder}: replaying its journal...", flush=True)
    said = [time.monotonic()]

    def progress(position: int, end: int) -> None:
        if time.monotonic() - said[0] > 1.0:        # a long set takes a while to rebuild
            said[0] = time.monotonic()
            print(f"  {position / max(end, 1):4.0%} of the journal replayed", flush=True)

    rebuilt = rebuild(folder, lambda codec, **options: make_engine(
        model=codec, blocksize=blocksize, lookahead=lookahead, **options), progress=progress)
    engine = rebuilt.engine
    if channels is not None and channels != engine.channels:     # (it was ignored)
        raise ParameterError(f"--channels {channels}: {folder.name} plays {engine.channels} outputs, "
                             f"and a resumed set keeps them (leave --channels out)")
    session = Session(engine, set_name=str(folder), resumed=True)
    session.namespace = rebuilt.live_names(session.namespace)
    for note in rebuilt.report.notes:
        print(note, file=sys.stderr)
    seconds = engine.position / engine.sample_rate
    playing = len(engine.intended_voices())
    print(f"resumed at {seconds:.1f} s with {playing} voice{'s' * (playing != 1)}; the journal "
          f"goes on in {session.journal.path}", flush=True)
    origins = {b.origin.split(":")[0] for b in rebuilt.performance.batches}
    gone = [what for origin, what in (("timer", "timers (at, every)"), ("thread", "threads"),
                                      ("pattern", "watched pattern files")) if origin in origins]
    if gone:
        print(f"{', '.join(gone)} from before do not run again: start them anew (the voices "
              f"they started play on)", file=sys.stderr)
    called = sorted({name for cell in rebuilt.performance.cells
                     for name in _SET_UP_BY_CALLS.findall(cell.code or "")})
    if called:       # (a replay's names set up nothing: osc() curves listen again on their own)
        print(f"what {', '.join(f'{name}()' for name in called)} set up before is not set up "
              f"again: call {'it' if len(called) == 1 else 'them'} anew", file=sys.stderr)
    return session


# calls whose listeners, senders or functions a resume does not bring back
_SET_UP_BY_CALLS = re.compile(r"(?<![\w.])(on_note|midi_in|midi_clock|link|osc_send|osc_listen)\s*\(")


def _leave(repl) -> None:
    """Fade out, record the end, close the stream, save the state beside the journal."""
    session = repl.session
    session.performer.cancel_timers()       # before IPython lets go of the names they use
    repl.watcher.stop()
    try:
        saved = session.save()
    except Exception as exc:    # the journal is on disk whatever happens here
        saved = None
        print(f"could not save the set's state: {exc}", file=sys.stderr)
    repl.detach(fade=EXIT_FADE_S)
    where = saved or session.set_dir
    print(f"faded out. The set is in {where}: livelatent render {where} -o out.wav")
