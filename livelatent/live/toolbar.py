"""The status line at the bottom of the REPL: where the music is, and how the engine copes.

:func:`status_line` turns :meth:`Engine.status` (and the changes still waiting for their beat
or bar) into plain text, so the same words show in the prompt_toolkit bottom toolbar, in
``%livelatent status`` in Jupyter, and in tests. It never raises: a status line that fails
would take the prompt down with it.

Example::

    bar 3 beat 2.50 | 120 bpm | decode 8% | underruns 0 | peak [######----] -4 dB
    drift meso 0.42 | bass ext 0.80 | pending: drift curve @ bar 4
"""

from __future__ import annotations

import math

__all__ = ["status_line", "peak_meter", "pending_changes"]

_METER_CELLS = 10
_METER_FLOOR_DB = -60.0
_SHORT = {"meso": "meso", "stepwise": "step", "extension": "ext"}


def peak_meter(peak: float, *, cells: int = _METER_CELLS) -> str:
    """A peak level as ``[######----] -4 dB`` (linear peak in, -60 dB and below is empty)."""
    if not (isinstance(peak, (int, float)) and math.isfinite(peak)) or peak <= 0:
        return "[" + "-" * cells + "]  -inf dB"
    db = 20.0 * math.log10(peak)
    filled = int(round(cells * min(max((db - _METER_FLOOR_DB) / -_METER_FLOOR_DB, 0.0), 1.0)))
    clip = "!" if peak >= 0.999 else " "
    return "[" + "#" * filled + "-" * (cells - filled) + f"]{clip}{db:4.0f} dB"


def _voice_name(engine, command) -> str:
    if command.params is not None:
        return command.params.name
    handle = engine.voice_handles.get(command.index)
    return getattr(handle, "name", None) or f"v{command.index}"


def pending_changes(engine) -> list[str]:
    """The changes scheduled but not heard yet, e.g. ``drift curve @ bar 4``."""
    described = []
    for sample, command in engine.pending():
        _, bar, beat = engine.clock.position(sample)
        when = f"bar {bar}" if abs(beat - 1.0) < 1e-6 else f"bar {bar} beat {beat:.3g}"
        if command.kind == "set":
            what = f"{_voice_name(engine, command)} {'+'.join(sorted(command.changes.keys() - _DERIVED))}"
        elif command.kind == "add":
            what = f"{_voice_name(engine, command)} starts"
        elif command.kind == "stop":
            what = f"{_voice_name(engine, command)} stops"
        elif command.kind == "tempo":
            what = f"tempo {command.value:g}"
        else:
            what = command.kind
        described.append(f"{what} @ {when}")
    return described


_DERIVED = {"frames_a", "frames_b", "curve_start", "good_curve", "good_curve_start"}


def status_line(engine, *, extra: str | None = None) -> str:
    """The status text: transport and meters on the first line, voices and pending on the second.

    Parameters
    ----------
    engine : Engine
    extra : str, optional
        Appended to the first line (the REPL shows a background render's progress there).
    """
    try:
        status = engine.status()
        pending = pending_changes(engine) if status["pending"] else []
    except Exception as exc:   # the toolbar must never take the prompt down
        return f"status unavailable: {type(exc).__name__}: {exc}"
    state = "" if status["live"] else "offline | "
    first = (f"{state}bar {status['bar']} beat {status['beat']:.2f} | {status['tempo']:g} bpm | "
             f"decode {100 * status['decode_load']:.0f}% | underruns {status['underruns']} | "
             f"peak {peak_meter(status['peak'])}")
    if extra:
        first += f" | {extra}"
    voices = []
    for v in status["voices"]:
        value = v["curve"]
        shown = "-" if value is None else ("nan" if not math.isfinite(value) else f"{value:.2f}")
        voices.append(f"{v['name']} {_SHORT.get(v['strategy'], v['strategy'])} {shown}")
    second = " | ".join(voices) if voices else "no voices: try voice(flute, cello, curve=sine(8))"
    if pending:
        second += " | pending: " + ", ".join(pending)
    return first + "\n" + second
