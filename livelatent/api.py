"""The names a performer types: ``voice``, ``tempo``, ``hush`` and the :class:`Voice` handle.

Everything here runs in the performer's thread. It checks what was typed (so a mistake is a
one-line error, never a stopped sound), encodes sources, and sends commands to the current
engine, which applies them at a window boundary.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .context import current_engine
from .curves import Curve, as_curve
from .engine.engine import Command, Engine
from .errors import CurveError, ParameterError, check_number
from .sources import source
from .strategies import FITS, layout, step_values
from .voice import VoiceParams, check_gain, check_pan, curve_values

__all__ = ["Voice", "voice", "tempo", "hush", "check_curve", "CURVE_CHECK_WINDOWS",
           "CURVE_TIME_LIMIT_S"]

CURVE_CHECK_WINDOWS = 2048     # windows ahead a new curve is evaluated over before it plays
CURVE_TIME_LIMIT_S = 0.002     # a curve slower than this per 64 windows would starve the decoder
_UNSET = object()


def check_curve(value, *, output_hop: int, engine: Engine) -> Curve:
    """Coerce ``value`` to a curve and evaluate it over its next windows before it plays.

    Raises :class:`CurveError` if it raises, returns NaN/inf or the wrong shape, or is too slow.
    """
    curve = as_curve(value)
    beats_per_window = output_hop / engine.sample_rate * engine.requested_tempo / 60.0
    times = np.arange(CURVE_CHECK_WINDOWS, dtype=np.float64) * beats_per_window
    curve_values(curve, times)
    probe = times[:64]
    fastest = math.inf
    for _ in range(3):
        began = time.perf_counter()
        curve_values(curve, probe)
        fastest = min(fastest, time.perf_counter() - began)
    if fastest > CURVE_TIME_LIMIT_S:
        raise CurveError(f"the curve takes {fastest * 1e3:.1f} ms per 64 windows (limit "
                         f"{CURVE_TIME_LIMIT_S * 1e3:g} ms); vectorise it with numpy")
    return curve


class Voice:
    """A playing voice. Assign ``curve``, ``gain``, ``pan``, ``a`` or ``b`` to change it.

    >>> v = voice(flute, cello, curve=sine(8))
    >>> v.curve = tri(4)                  # at the next window boundary
    >>> v.set(curve=saw(2), quant="bar")  # on the next bar
    >>> v.stop(fade=2)
    """

    def __init__(self, engine: Engine, params: VoiceParams):
        self._engine = engine
        self._params = params            # as last set here: what it was, once it has ended
        self.index = params.index
        self.name = params.name

    # the performer's view of the voice
    curve = property(lambda self: self.params.curve, lambda self, v: self.set(curve=v))
    gain = property(lambda self: self.params.gain, lambda self, v: self.set(gain=v))
    pan = property(lambda self: self.params.pan, lambda self, v: self.set(pan=v))
    a = property(lambda self: self.params.a, lambda self, v: self.set(a=v))
    b = property(lambda self: self.params.b, lambda self, v: self.set(b=v))
    strategy = property(lambda self: self.params.strategy)
    synth = property(lambda self: self.params.synth)

    @property
    def params(self) -> VoiceParams:
        """What the voice plays, as the performer last asked (changes waiting for their bar
        included; a discarded cell's not); once it has ended, what it last played."""
        for params in self._engine.intended_voices():
            if params.index == self.index:
                self._params = params
                return params
        return self._params

    @property
    def playing(self) -> bool:
        return any(p.index == self.index for p in self._engine.voices()) or any(
            c.kind == "add" and c.params.index == self.index for _, c in self._engine.pending())

    def set(self, *, curve=_UNSET, gain=_UNSET, pan=_UNSET, a=_UNSET, b=_UNSET,
            quant: str = "now") -> "Voice":
        """Change several things at once, at the next window boundary, beat or bar.

        Returns the voice, so the REPL shows what it will play. ``engine.pending()`` lists the
        changes still waiting for their beat or bar; ``engine.landed_at`` says where the last
        changes sent landed (for a REPL cell or a script, once it has run).
        """
        changes = {}
        params = self.params
        if curve is not _UNSET:
            changes["curve"] = check_curve(curve, output_hop=params.layout.output_hop,
                                           engine=self._engine)
        if gain is not _UNSET:
            changes["gain"] = check_gain(gain)
        if pan is not _UNSET:
            changes["pan"] = check_pan(pan)
        for role, value in (("a", a), ("b", b)):
            if value is not _UNSET:
                src = source(value)
                changes[role] = src
                changes[f"frames_{role}"] = src.frames(self._engine.codec, params.layout.input_hop)
        if changes:
            self._engine.submit(Command("set", index=self.index, changes=changes, quant=quant))
        return self

    def stop(self, fade: float = 0.05) -> "Voice":
        """Fade out over ``fade`` seconds, then stop. Returns the voice."""
        fade = _check_fade(fade)
        self._engine.submit(Command("stop", index=self.index, value=fade * self._engine.sample_rate))
        return self

    def __repr__(self) -> str:
        p = self.params
        curve = repr(p.curve) if p.curve is not None else f"steps {list(np.round(p.steps, 3))}"
        state = "playing" if self.playing else "stopped"
        return (f"<Voice {p.name!r} {state}: {p.a.name} -> {p.b.name}, {p.strategy}/{p.synth}, "
                f"curve={curve}, gain={p.gain:g}, pan={p.pan:g}>")


def _check_fade(fade) -> float:
    return check_number(fade, name="fade", low=0.0, high=600.0, meaning="of seconds from 0 to 600")


def voice(a, b, *, strategy: str = "meso", curve=None, gain: float = 1.0, pan: float = 0.0,
          synth: str = "ola", stretch: float = 4, steps=(0, 1, 0.2), loop: bool = True,
          seed: int | None = None, deterministic: bool = False, name: str | None = None,
          fit: str = "crop", quant: str = "now") -> Voice:
    """Start a voice interpolating from source ``a`` (amount 0) to ``b`` (amount 1).

    Parameters
    ----------
    a, b : Source, path, list of paths, or array
    strategy : {"meso", "stepwise", "extension"}
        The paper's Algorithms 2, 1 and 3.
    curve : Curve, number or function of beats, optional
        The amount; default 0.5 (stepwise: the values of ``steps``, one per pass). It may
        leave [0, 1]: that extrapolates.
    synth : {"ola", "concat"}
        Seamless overlap-add, or the paper's windows end to end.
    stretch : float
        Extension only: how many times longer the sources play.
    steps : (start, stop, step) or list
        Stepwise only: the amount of each pass.
    loop : bool
        Start again at the end (else the voice ends).
    fit : {"crop", "loop"}
        Sources of different lengths: crop to the shorter, or loop the shorter.
    seed : int, optional
        Noise seed of this voice (default: from the engine's seed and the voice's number).
    deterministic : bool
        Decode the mean instead of sampling.

    >>> v = voice(flute, cello, curve=sine(8))
    """
    engine = current_engine()
    lay = layout(strategy, synth, window=engine.window, stretch=stretch)
    if fit not in FITS:
        raise ParameterError(f"fit={fit!r} must be one of {FITS}")
    if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ParameterError(f"seed={seed!r} must be a non-negative integer or None")
    amounts = step_values(steps)
    if curve is None:
        curve_obj = None if strategy == "stepwise" else as_curve(0.5)
    else:
        curve_obj = check_curve(curve, output_hop=lay.output_hop, engine=engine)
    gain, pan = check_gain(gain), check_pan(pan)
    src_a, src_b = source(a), source(b)
    frames_a = src_a.frames(engine.codec, lay.input_hop)
    frames_b = src_b.frames(engine.codec, lay.input_hop)
    index = engine.new_voice_index()
    options = {"strategy": strategy, "synth": synth, "stretch": stretch, "steps": steps,
               "loop": bool(loop), "seed": seed, "deterministic": bool(deterministic), "fit": fit}
    params = VoiceParams(
        index=index, name=name or f"v{index}", a=src_a, b=src_b, frames_a=frames_a,
        frames_b=frames_b, strategy=strategy, synth=synth, layout=lay, curve=curve_obj,
        steps=amounts, loop=bool(loop), fit=fit, seed=None if seed is None else int(seed),
        deterministic=bool(deterministic), gain=gain, pan=pan, good_curve=curve_obj,
        options=options)
    handle = Voice(engine, params)
    engine.voice_handles[index] = handle
    engine.submit(Command("add", params=params, quant=quant))
    return handle


def tempo(bpm: float | None = None, *, quant: str = "now") -> float:
    """Read the tempo, or change it (beats per minute) now or on the next beat or bar."""
    engine = current_engine()
    if bpm is None:
        return engine.requested_tempo
    from .engine.clock import check_tempo
    value = check_tempo(bpm)
    engine.submit(Command("tempo", value=value, quant=quant))
    engine.requested_tempo = value
    return value


def hush(fade: float = 0.05) -> None:
    """Fade every voice out over ``fade`` seconds."""
    engine = current_engine()
    engine.submit(Command("hush", value=_check_fade(fade) * engine.sample_rate))
