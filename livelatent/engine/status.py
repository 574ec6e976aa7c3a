"""The status of an engine in one dict: what the status line, ``%livelatent`` and tests read.

Everything comes from the snapshot of the step the listener is in (what plays now), and from
the playback's counters when it plays.
"""

from __future__ import annotations

from ..controls import evaluating

__all__ = ["engine_status"]


def engine_status(engine) -> dict:
    """Play position, voices, loads, underruns and peak level, for the status line."""
    position = engine.position
    heard = engine.heard()
    clock = heard.score.clock
    beats, bar, beat_in_bar = clock.position(position)
    voices = []
    for params in sorted(heard.score.voices.values(), key=lambda p: p.index):
        value = None
        if params.curve is not None:
            origin = float(clock.beats(params.curve_start))
            t = float(clock.beats(position)) - origin
            try:
                with evaluating(params.controls, origin, clock.bpm_at(params.curve_start)):
                    value = float(params.curve(max(t, 0.0)))
            except Exception:   # the status line must never raise
                value = float("nan")
        voices.append({"index": params.index, "name": params.name, "strategy": params.strategy,
                       "synth": params.synth, "curve": value, "gain": params.gain,
                       "pan": params.pan, "path": _path_kind(params.path),
                       "fading": params.stop_at is not None
                       and params.stop_at <= position})
    status = {"position": position, "seconds": position / engine.sample_rate, "beats": beats,
              "bar": bar, "beat": beat_in_bar, "tempo": clock.bpm_at(position),
              "voices": voices, "peak": heard.peak, "pending": len(engine.pending()),
              "playing": engine.playing, "decode_load": 0.0, "callback_load": 0.0,
              "underruns": 0, "xruns": 0}
    if engine.playback is not None:
        status.update(engine.playback.status())
    return status



def _path_kind(path) -> str | None:
    """``"plane"``, ``"cloud"``... for a path voice (the outermost kind), None otherwise."""
    return None if path is None else type(path).__name__.lower()
