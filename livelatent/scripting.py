"""Running performer scripts: ``livelatent play``, ``render`` and ``demo``.

A script is a Python file that uses the public API (the files in ``patterns/``). It runs in
a namespace bound to its engine, inside one engine batch, so all it starts lands on the same sample:
the first sample of a render, or of live playback.
"""

from __future__ import annotations

import math
import time
import tokenize
from pathlib import Path

from .config import DEFAULT_MODEL_DIR
from .engine.engine import Engine
from .errors import DeviceError, DeviceNotFound, LiveLatentError, ParameterError
from .events import Printer
from .session.code import run_code
from .session.journal import JOURNAL_NAME
from .session.namespace import namespace
from .session.sets import cli_render_set
from .session.state import STATE_NAME
from .sinks.file import check_render_name, render_to_file

__all__ = ["run_script", "play", "cli_play", "cli_render", "cli_demo", "DEMO_SCRIPT"]

DEMO_SCRIPT = DEFAULT_MODEL_DIR / "demo.py"          # the default pack's demo piece


def run_script(path, engine: Engine, *, extra: dict | None = None, listening: bool = True) -> dict:
    """Run a script file against ``engine``; returns the namespace it left. ``listening=False``
    (a render): its controllers listen to nothing, as nothing would journal what they heard."""
    path = Path(path)
    if not path.is_file():
        raise LiveLatentError(f"no such script: {path}" if not path.exists() else
                              f"{path} is a folder, not a script (a set plays with livelatent "
                              f"replay)" if path.is_dir() else
                              f"{path} is not a script file (a device, a pipe or the like)")
    if path.name in (JOURNAL_NAME, STATE_NAME):      # (run as Python: "NameError: false")
        raise LiveLatentError(f"{path} is a file of the set {path.parent}, not a script: give the "
                              f"set's folder, e.g. livelatent render {path.parent}")
    try:           # in the encoding its coding line declares (UTF-8 without one), as Python reads it
        with tokenize.open(path) as handle:
            code = handle.read()
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:      # (SyntaxError: an unknown coding)
        raise LiveLatentError(f"cannot read script {path}: {exc}") from None
    names = namespace(engine, extra=extra, listening=listening)
    try:
        with engine.batch(origin=f"script:{path.name}"):
            run_code(code, names, filename=str(path))
    except SystemExit as exc:        # (the command ended there, rc 0 and no file, without a word)
        raise LiveLatentError(f"{path}: the script called exit({'' if exc.code is None else repr(exc.code)}): "
                              f"nothing is played or rendered (a script says what plays; "
                              f"--seconds says how long)") from None
    return names


def _engine_for(args) -> Engine:
    kwargs = {}
    if getattr(args, "tempo", None) is not None:
        kwargs["tempo"] = args.tempo
    if getattr(args, "blocksize", None) is not None:
        kwargs["blocksize"] = args.blocksize
    if getattr(args, "channels", None) is not None:
        kwargs["channels"] = args.channels
    return Engine(getattr(args, "model", None), seed=args.seed or 0, **kwargs)


def cli_render(args) -> int:
    """``livelatent render SCRIPT -o OUT.wav --seconds S [--stems] [--seed N]``."""
    check_render_name(args.output)       # (before the script's or the set's work, not after it)
    if Path(args.script).is_dir():
        return cli_render_set(args)
    if getattr(args, "no_code", False):
        raise ParameterError("--no-code renders a set (a folder), not a script: a script is code")
    if getattr(args, "session", None) is not None:
        raise ParameterError("--session picks a session of a set (a folder); a script has none")
    with _engine_for(args) as engine, Printer(engine.events):    # failed timers, reverted curves
        _one_sample_at_least(args.seconds, engine)             # (--seconds 0 wrote an empty file)
        run_script(args.script, engine, listening=False)
        began = time.perf_counter()
        written = render_to_file(engine, args.output, args.seconds, stems=args.stems,
                                 rate=getattr(args, "rate", None))
        elapsed = time.perf_counter() - began
    seconds = engine.position / engine.sample_rate
    speed = seconds / elapsed if elapsed > 0 else float("inf")
    print(f"wrote {written[0]} ({seconds:.1f} s, {speed:.0f}x real time)")
    for stem in written[1:]:
        print(f"wrote {stem}")
    return 0


def play(engine: Engine, *, device=None, seconds: float | None = None) -> None:
    """Play the engine live until ``seconds`` pass, every voice ends (and the listener has
    heard it), or Ctrl-C. What happens is told on ``engine.events``."""
    engine.start(device)
    limit = f"for {seconds:g} s" if seconds else "until the voices end (Ctrl-C stops)"
    engine.events.info(f"playing {limit}")
    began = time.monotonic()
    try:
        while True:
            time.sleep(0.05)
            if seconds is not None and time.monotonic() - began >= seconds:
                break
            if engine.idle() and engine.position >= engine.sound_end:
                break      # every voice ended, and the listener heard the last of them
    finally:
        engine.stop_playback(fade=0.05 if seconds is None else 0.0)
    if engine.underruns:
        engine.events.warning(f"{engine.underruns} underruns (the decoder fell behind)")


def _play_seconds(seconds) -> float | None:
    """``--seconds`` of ``play`` and ``demo``, checked before anything plays: None (until the
    voices end) or a finite number of seconds more than 0."""
    if seconds is not None and not (isinstance(seconds, (int, float)) and 0 < seconds < math.inf):
        raise ParameterError(f"--seconds {seconds!r} must be a finite number of seconds more than "
                             f"0 (leave it out to play until the voices end)")
    return seconds


def _one_sample_at_least(seconds, engine) -> None:
    """``--seconds`` that would play or write no sample at all at the engine's rate is refused."""
    if seconds is not None and seconds * engine.sample_rate < 1:
        raise ParameterError(f"--seconds {seconds:g} is less than one sample at "
                             f"{engine.sample_rate} Hz: nothing would play")


def cli_play(args) -> int:
    """``livelatent play SCRIPT [--seconds S] [--device D]``."""
    seconds = _play_seconds(args.seconds)
    with _engine_for(args) as engine, Printer(engine.events):
        _one_sample_at_least(seconds, engine)
        run_script(args.script, engine)
        play(engine, device=args.device, seconds=seconds)
    return 0


def cli_demo(args) -> int:
    """``livelatent demo``: play the demo, or render it to a file when there is no device."""
    seconds = _play_seconds(args.seconds)
    with Engine(getattr(args, "model", None), seed=0) as engine, Printer(engine.events):
        _one_sample_at_least(seconds, engine)
        folder = None if engine.codec.path is None else Path(engine.codec.path).parent
        script = folder / "demo.py" if folder is not None and (folder / "demo.py").is_file() \
            else DEMO_SCRIPT                 # a pack's own demo, or the default pack's
        if script != DEMO_SCRIPT:            # (its weights load as data only; this is code)
            engine.events.info(f"playing {script}, the pack's own demo: it is Python code, run as "
                               f"a script of yours would be (play packs you trust)")
        try:
            run_script(script, engine)
        except LiveLatentError as exc:
            if script != DEMO_SCRIPT or "NameError" not in str(exc):
                raise
            raise ParameterError(f"the demo plays the default pack's sources, which "
                                 f"{args.model} has not ({str(exc).split(': ', 1)[-1]}): give a "
                                 f"pack with sources/ and a demo.py of its own, or play a script "
                                 f"of yours with livelatent play") from None
        try:
            play(engine, device=args.device, seconds=seconds)
            return 0
        except DeviceNotFound:               # devices exist, not the one asked for: say so
            raise
        except DeviceError as exc:
            engine.events.info(f"no audio device ({str(exc).split(';')[0]}): rendering instead")
        written = render_to_file(engine, args.output, seconds)
    print(f"rendered the demo to {written[0]} ({seconds:g} s)")
    return 0
