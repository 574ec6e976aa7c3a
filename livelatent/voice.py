"""A voice: two sources and a curve (or a latent path), a strategy, gain and pan.

:class:`VoiceParams` is the immutable description of a voice at one moment; every change a
performer makes replaces it with a new one (so the engine can keep cheap snapshots for rewinds).
What a voice plays is a pure function of (params, engine seed, window index), which is what
makes renders and replays sample-exact; the voice bank (:mod:`livelatent.engine.bank`) computes
it for all voices at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from .deadline import interruptible
from .errors import CurveError, check_number, described
from .sources import LatentFrames, Source
from .strategies import Layout

#: Seeds and noise keys (and voice numbers) are below this: the engine's int64 arrays hold them
#: (with room to add), and a set reads back nothing larger.
MAX_KEY = 2 ** 62

__all__ = ["VoiceParams", "curve_values", "pan_gains", "output_gains", "check_gain", "check_pan",
           "check_out"]


@dataclass(frozen=True, eq=False)
class VoiceParams:
    """Everything that decides what a voice plays. Samples are engine samples."""

    index: int                    # the voice's number: unique in its engine, never reused
    name: str
    a: Source
    b: Source
    frames_a: LatentFrames
    frames_b: LatentFrames
    strategy: str
    synth: str
    layout: Layout
    curve: object | None          # a Curve, or None: stepwise amounts come from `steps`
    steps: np.ndarray
    loop: bool
    fit: str
    seed: int | None
    deterministic: bool
    gain: float
    pan: float
    start: int = 0                # sample where window 0 starts
    curve_start: int = 0          # sample where the curve's (or the path's curves') t = 0 falls
    sources_start: int = 0        # sample where the curves of sources a and b (scrub...) start
    stop_at: int | None = None    # sample from which the voice fades out
    fade: int = 0                 # fade length in samples
    good_curve: object | None = None      # what to revert to when the curve fails
    good_curve_start: int = 0
    options: dict = field(default_factory=dict)   # how the performer built it (for sets)
    noise_key: int | None = None  # with the engine's seed, seeds its noise (default: its number)
    path: object | None = None    # a latent path (plane, along, cloud, follow...); None: a -> b
    plan: object | None = None    # the path compiled for the bank (:mod:`livelatent.paths.plan`)
    held: tuple | None = None     # (window, channels): a path whose curve failed holds from there
    controls: object = None       # the score's controller histories (when its curves read any)
    out: tuple | None = None      # output channels (1-based): a pair, or one; None: 1 and 2
    cue: bool = False             # also to the cue pair (the last two channels: headphones)

    def changed(self, **changes) -> "VoiceParams":
        return replace(self, **changes)

    @property
    def window_count(self) -> float:
        """How many windows the voice plays before it ends by itself: its path's frames, times
        its passes when stepwise (infinity when it loops; a stop is not counted)."""
        if self.loop:
            return math.inf
        passes = self.steps.size if self.strategy == "stepwise" else 1
        return self.plan.length * passes


def pan_gains(gain: float, pan: float) -> tuple[float, float]:
    """Equal-power pan: pan -1 is left, 0 centre (-3 dB each side), 1 right."""
    theta = (min(max(pan, -1.0), 1.0) + 1.0) * math.pi / 4.0
    return gain * math.cos(theta), gain * math.sin(theta)


def output_gains(gain: float, pan: float, out, channels: int, cue: bool = False) -> np.ndarray:
    """A voice's gain on each of ``channels`` outputs: panned over its pair (``out``, default
    channels 1 and 2), or all of it on its one channel; with ``cue``, panned over the cue pair
    (the last two channels) too."""
    gains = np.zeros(channels, dtype=np.float64)
    if out is not None and len(out) == 1:
        gains[out[0] - 1] = gain
    else:
        left, right = (1, 2) if out is None else out
        gains[left - 1], gains[right - 1] = pan_gains(gain, pan)
    if cue:
        gains[channels - 2:] += pan_gains(gain, pan)
    return gains


def check_out(out, channels: int):
    """``out`` as a tuple of 1-based channels (a pair, or one), or None (channels 1 and 2)."""
    from .errors import ParameterError, is_whole
    if out is None:
        return None
    given = (out,) if is_whole(out) else out
    try:            # whole numbers only: text, bools and fractions are mistakes, not channels;
        # a dict or a set has no order (out={1: 2} played on channel 1 alone)
        given = () if isinstance(given, (str, bytes, dict, set, frozenset)) else tuple(given)
    except TypeError:
        given = ()
    chosen = tuple(int(c) for c in given) if all(is_whole(c) for c in given) else ()
    if len(chosen) not in (1, 2) or len(set(chosen)) != len(chosen) or \
            any(not 1 <= c <= channels for c in chosen):
        raise ParameterError(f"out={out!r} must be one channel or a pair of different channels from 1 "
                             f"to {channels} (this engine has {channels} outputs; more with "
                             f"--channels)")
    return chosen


def curve_values(curve, times: np.ndarray) -> np.ndarray:
    """Evaluate ``curve`` at ``times`` (beats), checking shape and finiteness.

    Raises :class:`CurveError` saying what went wrong and at which time.
    """
    try:
        with np.errstate(all="ignore"):    # (NaN or inf from the curve's own arithmetic: said below)
            values = curve(times)
    except CurveError:
        raise
    except BaseException as exc:  # a performer's function may raise anything (an exit(), too):
        if isinstance(exc, KeyboardInterrupt) and interruptible():     # it must not stop sound
            raise                                                      # (Ctrl-C stops a render)
        raise CurveError(f"the curve raised {described(exc)}") from None
    if np.iscomplexobj(values):
        raise CurveError("the curve returned complex numbers; a curve gives real amounts")

    try:
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), times.shape)
    except (TypeError, ValueError):
        raise CurveError(f"the curve returned {type(values).__name__} of shape {np.shape(values)}, "
                         f"expected one number per time") from None
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.argmax(bad))
        raise CurveError(f"the curve returned {values[first]} at t={times[first]:.3f} beats")
    return values


def check_gain(gain) -> float:
    return check_number(gain, name="gain", low=0.0, high=16.0, meaning="from 0 to 16 (1 is unity)")


def check_pan(pan) -> float:
    return check_number(pan, name="pan", low=-1.0, high=1.0, meaning="from -1 (left) to 1 (right)")
