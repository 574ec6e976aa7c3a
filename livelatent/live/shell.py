"""``livelatent`` (= ``livelatent live``): the performer's REPL.

An IPython terminal shell with the engine playing: the model pack loaded, the stream open,
the public API and the pack's sources in the namespace, every cell journaled and run in one
engine batch (see :mod:`livelatent.live.ipython`), a status toolbar at the bottom, and the
pattern files given with ``--watch`` hot-reloading.

Without an audio device the REPL does not start: it prints the reason in one line
(``livelatent: error: ...``) and exits with status 2, because a performer who typed ``livelatent`` expects sound, and silence that
looks like a working REPL is worse than a clear refusal. ``--offline`` starts it anyway, to
write and ``render()`` without a sound card.

Keeping the sound free of underruns while IPython works in the same process (each measured
over JACK on a loaded 2-core machine): the REPL decodes 0.2 s ahead, warms the model up, sets
everything up before the stream opens, freezes the start-up garbage, runs at a higher
priority when allowed (niceness -10), switches the GIL every millisecond, and leaves the GIL
to the decode thread for 30 ms after each cell that changed the sound.

Leaving (``exit``, or Ctrl-D and yes) fades the voices out over half a second and closes
the stream; the journal is already on disk (``sets/<name>/journal.jsonl``), and the state is
saved beside it (``state.json``) so ``livelatent render sets/<name>`` works at once.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import sys
import threading
import time

import numpy as np

__all__ = ["cli_live", "make_engine", "start_playing", "EXIT_FADE_S", "LOOKAHEAD_S"]

EXIT_FADE_S = 0.5
# Decoded ahead of the audio callback. A change still lands within a block or two (the engine
# rewinds what was decoded but not heard), so this costs no latency; it is slack for the
# decode thread when the REPL's own thread holds the GIL a while (measured over JACK at
# period 1024: 46 ms of lookahead underran now and then while IPython ran a cell, 186 ms never).
LOOKAHEAD_S = 0.2
AUDIO_NICENESS = -10     # the decode and audio threads' niceness, when allowed


def make_engine(*, model=None, blocksize=None):
    """An engine set up for live coding: 0.2 s decoded ahead, the model warmed up."""
    from ..engine.engine import Engine
    from ..model.codec import load_model

    codec = load_model(model)
    kwargs = {} if blocksize is None else {"blocksize": int(blocksize)}
    engine = Engine(codec, lookahead=int(LOOKAHEAD_S * codec.sample_rate), **kwargs)
    # Touch every weight once now: the first decode of a cold model (pages faulted in, BLAS
    # buffers allocated) took longer than the few milliseconds between a cell landing and
    # the audio callback reaching it, and the first voice underran.
    codec.decode(np.zeros((4, codec.latent_dim), dtype=np.float32))
    codec.encode(np.zeros((4, codec.window), dtype=np.float32))
    return engine


def start_playing(engine, device=None) -> None:
    """Open the device and play, the engine's threads at a higher priority when allowed.

    Raises :class:`DeviceError` when the device cannot be opened.
    """
    with _audio_priority():
        engine.start(device)


def _import_ipython() -> None:
    importlib.import_module("IPython.terminal.interactiveshell")


def _make_shell(session):
    from IPython.terminal.interactiveshell import TerminalInteractiveShell
    from traitlets.config import Config

    config = Config()
    config.TerminalInteractiveShell.confirm_exit = True      # Ctrl-D on stage asks first
    config.TerminalInteractiveShell.term_title = False
    config.TerminalInteractiveShell.banner1 = ""
    config.HistoryManager.enabled = True
    return TerminalInteractiveShell.instance(config=config, user_ns=session.namespace)


def cli_live(args) -> int:
    """``livelatent [live] [--device D] [--blocksize N] [--model M] [--set NAME] [--watch PATH]``."""
    from ..errors import DeviceError, LiveLatentError
    from .ipython import attach

    began = time.perf_counter()
    # The decode thread needs the GIL for a moment every few milliseconds; with the default
    # 5 ms switch interval, a busy REPL thread (IPython compiling a cell, the toolbar
    # redrawing) made it late enough to underrun. 1 ms keeps it on time.
    from ..engine.live import SWITCH_INTERVAL_S
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    # The REPL's own thread holds the GIL while it runs a cell or redraws the toolbar: if the
    # OS set it aside for another program meanwhile, the decode thread waited for the GIL and
    # the audio underran. So the whole REPL asks for the audio threads' priority (it idles
    # between cells; a background render lowers its own thread).
    _raise_process_priority()
    # IPython's import (about 0.4 s of Python) overlaps the model and demo sources loading,
    # which spend their time in file reads and C code that let the GIL go.
    importer = threading.Thread(target=_import_ipython, name="livelatent-import", daemon=True)
    importer.start()
    offline = bool(getattr(args, "offline", False))
    engine = make_engine(model=args.model, blocksize=args.blocksize)
    if not offline:
        try:
            _check_device(args.device)       # before anything is written or started
        except DeviceError as exc:   # printed as one line, exit status 2, by livelatent.cli
            raise DeviceError(f"{exc}; `livelatent live --offline` starts the REPL without "
                              f"sound, to write and render") from None
    from ..context import set_current_engine
    from ..session.session import Session
    set_current_engine(engine)
    session = Session(engine, set_name=args.set_name)
    # Everything heavy (IPython's import, the demo sources) is done before the stream opens:
    # done while it played, it held the GIL long enough for the first blocks to underrun.
    importer.join()
    shell = _make_shell(session)
    live = attach(shell, session, origin="repl", toolbar=True)
    _freeze_garbage()
    try:
        if not offline:
            start_playing(engine, args.device)
        for path in args.watch or []:
            try:
                live.watcher.watch(path)
                live.watcher.check()     # run now, before the prompt: the first sound comes sooner
            except LiveLatentError as exc:
                print(f"error: {exc}", file=sys.stderr)
        mode = f"live on {args.device or 'the default output'}" if engine.live else "offline"
        print(f"livelatent {mode}, {engine.sample_rate} Hz, ready in "
              f"{time.perf_counter() - began:.1f} s; journal {session.journal.path}\n"
              f"try: v = voice(flute, cello, curve=sine(8))    then: v.curve = tri(4)    "
              f"exit to leave")
        shell.mainloop()
    finally:
        _leave(live)
    return 0


def _raise_process_priority() -> None:
    """This thread, and every thread started from it later, at AUDIO_NICENESS when allowed."""
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) > AUDIO_NICENESS:
            os.setpriority(os.PRIO_PROCESS, 0, AUDIO_NICENESS)
    except (OSError, AttributeError):
        pass      # not root, no CAP_SYS_NICE, or not a Unix: normal priority


def _freeze_garbage() -> None:
    """Collect once, then leave everything alive now out of later collections.

    Start-up leaves a few hundred thousand objects (IPython, torch when a pack needs it); a
    full collection walking them all held the GIL long enough for the first voice to underrun.
    """
    gc.collect()
    gc.freeze()


def _check_device(device) -> None:
    """Raise :class:`DeviceError` now if ``device`` names no output (opening it comes later)."""
    from ..sinks.device import find_output_device
    find_output_device(device)


@contextlib.contextmanager
def _audio_priority():
    """Run the block at a higher scheduling priority, when the OS allows it, then drop back.

    Linux gives each thread its own niceness and a new thread inherits its creator's, so the
    engine's decode thread and PortAudio's audio thread, started inside this block, keep the
    higher priority while the calling thread (a Jupyter kernel's) returns to normal. Not root
    and no CAP_SYS_NICE: nothing changes.
    """
    previous = None
    if hasattr(os, "setpriority"):
        try:
            previous = os.getpriority(os.PRIO_PROCESS, 0)
            if previous > AUDIO_NICENESS:
                os.setpriority(os.PRIO_PROCESS, 0, AUDIO_NICENESS)
            else:
                previous = None
        except OSError:
            previous = None
    try:
        yield
    finally:
        if previous is not None:
            try:
                os.setpriority(os.PRIO_PROCESS, 0, previous)
            except OSError:
                pass


def _leave(live) -> None:
    """Fade out, close the stream, save the state beside the journal."""
    session = live.session
    try:
        saved = session.save()
    except Exception as exc:    # the journal is on disk whatever happens here
        saved = None
        print(f"could not save the set's state: {exc}", file=sys.stderr)
    live.detach(fade=EXIT_FADE_S)
    where = saved or session.set_dir
    print(f"faded out. The set is in {where}: livelatent render {where} -o out.wav")
