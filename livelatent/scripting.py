"""Running performer scripts: ``livelatent play``, ``render`` and ``demo``.

A script is a Python file that uses the public API (the files in ``patterns/``). It runs in
the prelude's namespace, inside one engine batch, so all it starts lands on the same sample:
the first sample of a render, or of live playback.
"""

from __future__ import annotations

import ast
import sys
import time
import traceback
from pathlib import Path

from .config import PACKAGE_ROOT
from .engine.engine import Engine
from .errors import DeviceError, LiveLatentError, ParameterError
from .live.prelude import namespace

__all__ = ["run_code", "run_script", "cli_play", "cli_render", "cli_demo", "DEMO_SCRIPT"]

DEMO_SCRIPT = PACKAGE_ROOT / "patterns" / "demo.py"


def run_code(code: str, names: dict, *, filename: str = "<cell>"):
    """Compile and run ``code`` in ``names``; errors become one-line LiveLatentErrors.

    Returns the value of the last statement when it is an expression (``v``, ``voice(...)``,
    ``1 + 1``), evaluated once as part of the run, like Python's interactive prompt; else None.
    """
    try:
        tree = compile(code, filename, "exec", ast.PyCF_ONLY_AST)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        compiled = compile(tree, filename, "exec")
        result = compile(ast.Expression(last.value), filename, "eval") if last else None
    except SyntaxError as exc:
        raise LiveLatentError(f"{filename}:{exc.lineno}: syntax error: {exc.msg}") from None
    try:
        exec(compiled, names)
        return eval(result, names) if result is not None else None
    except LiveLatentError as exc:
        raise type(exc)(f"{filename}:{_script_line(exc, filename)}: {exc}") from None
    except Exception as exc:   # the performer's code may raise anything: report it in one line
        raise LiveLatentError(f"{filename}:{_script_line(exc, filename)}: "
                              f"{type(exc).__name__}: {exc}") from None


def _script_line(exc: BaseException, filename: str) -> str:
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__)
             if frame.filename == filename]
    return str(lines[-1]) if lines else "?"


def run_script(path, engine: Engine, *, extra: dict | None = None) -> dict:
    """Run a script file against ``engine``; returns the namespace it left."""
    path = Path(path)
    if not path.is_file():
        raise LiveLatentError(f"no such script: {path}")
    try:
        code = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise LiveLatentError(f"cannot read script {path}: {exc}") from None
    names = namespace(engine, extra=extra)
    with engine.batch():
        run_code(code, names, filename=str(path))
    return names


def _engine_for(args) -> Engine:
    kwargs = {}
    if getattr(args, "tempo", None) is not None:
        kwargs["tempo"] = args.tempo
    if getattr(args, "blocksize", None) is not None:
        kwargs["blocksize"] = args.blocksize
    return Engine(getattr(args, "model", None), seed=args.seed or 0, **kwargs)


def cli_render(args) -> int:
    """``livelatent render SCRIPT -o OUT.wav --seconds S [--stems] [--seed N]``."""
    from .sinks.file import render_to_file
    if Path(args.script).is_dir():
        from .session.sets import cli_render_set
        return cli_render_set(args)
    with _engine_for(args) as engine:
        run_script(args.script, engine)
        began = time.perf_counter()
        written = render_to_file(engine, args.output, args.seconds, stems=args.stems)
        elapsed = time.perf_counter() - began
    seconds = engine.position / engine.sample_rate
    speed = seconds / elapsed if elapsed > 0 else float("inf")
    print(f"wrote {written[0]} ({seconds:.1f} s, {speed:.0f}x real time)")
    for stem in written[1:]:
        print(f"wrote {stem}")
    return 0


def play(engine: Engine, *, device=None, seconds: float | None = None, quiet: bool = False) -> None:
    """Play the engine live until ``seconds`` pass, every voice ends, or Ctrl-C."""
    engine.start(device)
    if not quiet:
        limit = f"for {seconds:g} s" if seconds else "until the voices end (Ctrl-C stops)"
        print(f"playing {limit}", file=sys.stderr)
    began = time.monotonic()
    try:
        while True:
            time.sleep(0.05)
            for message in engine.take_messages():
                print(message, file=sys.stderr)
            if seconds is not None and time.monotonic() - began >= seconds:
                break
            if not engine.voices() and not engine.pending():
                break
    finally:
        engine.stop_playback(fade=0.05 if seconds is None else 0.0)
    if engine.underruns and not quiet:
        print(f"warning: {engine.underruns} underruns (the decoder fell behind)", file=sys.stderr)


def cli_play(args) -> int:
    """``livelatent play SCRIPT [--seconds S] [--device D]``."""
    if args.seconds is not None and not args.seconds > 0:
        raise ParameterError(f"--seconds {args.seconds} must be positive")
    with _engine_for(args) as engine:
        run_script(args.script, engine)
        play(engine, device=args.device, seconds=args.seconds)
    return 0


def cli_demo(args) -> int:
    """``livelatent demo``: play the demo, or render it to a file when there is no device."""
    from .sinks.file import render_to_file
    with Engine(seed=0) as engine:
        run_script(DEMO_SCRIPT, engine)
        try:
            play(engine, device=args.device, seconds=args.seconds)
            return 0
        except DeviceError as exc:
            print(f"no audio device ({str(exc).split(';')[0]}): rendering instead", file=sys.stderr)
        written = render_to_file(engine, args.output, args.seconds)
    print(f"rendered the demo to {written[0]} ({args.seconds:g} s)")
    return 0
