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

from ..engine.commands import AddVoice, Hush, SetTempo, SetVoice, StopVoice

__all__ = ["status_line", "peak_meter", "pending_changes"]

_METER_CELLS = 10
_METER_FLOOR_DB = -60.0
_SILENCE_DB = -90.0
_SHORT = {"meso": "meso", "stepwise": "step", "extension": "ext"}


def peak_meter(peak: float, *, cells: int = _METER_CELLS) -> str:
    """A peak level as ``[######----] -4 dB`` (linear peak in, -60 dB and below is empty,
    below -90 dB it reads ``-inf``: the tail of a fade, not a level anyone hears)."""
    db = 20.0 * math.log10(peak) if isinstance(peak, (int, float)) and math.isfinite(peak) \
        and peak > 0 else -math.inf
    if db < _SILENCE_DB:
        return "[" + "-" * cells + "]  -inf dB"
    filled = int(round(cells * min(max((db - _METER_FLOOR_DB) / -_METER_FLOOR_DB, 0.0), 1.0)))
    clip = "!" if peak >= 0.999 else " "
    return "[" + "#" * filled + "-" * (cells - filled) + f"]{clip}{db:4.0f} dB"


def _voice_name(names: dict, number: int) -> str:
    return names.get(number) or f"v{number}"


def pending_changes(engine) -> list[str]:
    """The changes scheduled but not heard yet, e.g. ``drift curve @ bar 4``."""
    names = {n: p.name for n, p in engine.intended().voices.items()}
    described = []
    for sample, command in engine.pending():
        if isinstance(command, AddVoice):
            names[command.voice] = command.params.name
    for sample, command in engine.pending():
        _, bar, beat = engine.clock.position(sample)
        when = f"bar {bar}" if abs(beat - 1.0) < 1e-6 else f"bar {bar} beat {beat:.3g}"
        if isinstance(command, SetVoice):
            what = f"{_voice_name(names, command.voice)} {'+'.join(command.shown)}"
        elif isinstance(command, AddVoice):
            what = f"{command.params.name} starts"
        elif isinstance(command, StopVoice):
            what = f"{_voice_name(names, command.voice)} stops"
        elif isinstance(command, SetTempo):
            what = f"tempo {command.bpm:g}"
        elif isinstance(command, Hush):
            what = "hush"
        else:
            continue        # a controller's value, the shared clock: at once, nothing to wait for
        described.append(f"{what} @ {when}")
    return described


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
    state = "" if status["playing"] else "offline | "
    if status.get("lost"):
        state = "DEVICE LOST, waiting for it: reconnect() | "
    first = (f"{state}bar {status['bar']} beat {status['beat']:.2f} | {status['tempo']:g} bpm | "
             f"decode {100 * status['decode_load']:.0f}% | underruns {status['underruns']} | "
             f"xruns {status['xruns']} | peak {peak_meter(status['peak'])}")
    if extra:
        first += f" | {extra}"
    voices = []
    for v in status["voices"]:
        value = v["curve"]
        shown = "-" if value is None else ("nan" if not math.isfinite(value) else f"{value:.2f}")
        if v.get("path"):
            shown = v["path"]
        fading = " fading" if v.get("fading") else ""
        voices.append(f"{v['name']} {_SHORT.get(v['strategy'], v['strategy'])} {shown}{fading}")
    second = " | ".join(voices) if voices else "no voices: try voice(flute, cello, curve=sine(8))"
    if pending:
        second += " | pending: " + ", ".join(pending)
    return first + "\n" + second
