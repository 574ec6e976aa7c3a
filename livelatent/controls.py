"""Controller curves: values that come from outside (OSC, MIDI), as curves of the engine's time.

``osc("/fader/1", default=0.0)`` is a curve whose value is the last value its controller sent,
held between messages. Such a value is part of the score: an adapter (:mod:`livelatent.controllers`)
sends each change as a :class:`~livelatent.engine.commands.SetControl` command that lands on a
step and is journaled like any change; the score keeps each controller's recent history
(:class:`ControlState`), and a voice whose curves read a controller gets that history in its
parameters. A controller curve evaluates from it: at a window's time, the value of the last
change at or before it (gliding there over ``smooth(ms)``), or ``default`` before any. So what
a voice plays is still a pure function of (parameters, seed, window), live and in a replay,
which takes the values from the journal, not the network.

The constructors here build curves only; the names a performer types (which also start a
listener) are bound to an engine in :mod:`livelatent.controllers`.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .curves import Curve, _finite, define_op
from .errors import CurveError

__all__ = ["ControlState", "evaluating", "osc_curve", "cc_curve", "note_curve", "bend_curve",
           "REBUILD_NAMES", "HISTORY", "sketch_curve"]

HISTORY = 512        # changes of one controller a score keeps: a glide still under way when its
                     # change is dropped restarts from its target (512 steps: about 6 s)
_EPSILON_BEATS = 1e-9   # beats are sums of floats: a window that starts on a landing counts as after it

_CONTEXT: contextvars.ContextVar = contextvars.ContextVar("livelatent_controls", default=None)


@dataclass(frozen=True, eq=False)
class ControlState:
    """A controller's recent history: the value before the kept changes (None: each curve's
    default), and the changes as (beat, value), in landing order."""

    base: float | None = None
    changes: tuple = ()

    def after(self, beat: float, value: float) -> "ControlState":
        changes = self.changes + ((float(beat), float(value)),)
        if len(changes) <= HISTORY:
            return ControlState(self.base, changes)
        return ControlState(changes[-HISTORY - 1][1], changes[-HISTORY:])

    @cached_property
    def digest(self) -> str:
        """The history as a short stable text (the same in a replay): worked out once."""
        text = repr((None if self.base is None else float(self.base),
                     tuple((float(b), float(v)) for b, v in self.changes)))
        return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()

    def value(self, default: float) -> float:
        return self.changes[-1][1] if self.changes else (default if self.base is None else self.base)

    @cached_property
    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        changes = np.array(self.changes, dtype=np.float64).reshape(-1, 2)
        return changes[:, 0].copy(), changes[:, 1].copy()

    def _starts(self, glide_beats: float, base: float) -> np.ndarray:
        """Where each change's glide starts: where the previous glide had got to (worked out
        once per glide length and base, then kept)."""
        cache = self.__dict__.setdefault("_glide_starts", {})
        found = cache.get((glide_beats, base))
        if found is None:
            when, target = self._arrays
            found = np.empty_like(target)
            start, previous_target, previous_when = base, base, None
            for i in range(target.size):
                if previous_when is not None:
                    done = min(1.0, max(0.0, (when[i] - previous_when) / glide_beats))
                    start = start + (previous_target - start) * done
                found[i] = start
                previous_target, previous_when = target[i], when[i]
            cache[(glide_beats, base)] = found
        return found

    def at(self, beats: np.ndarray, glide_beats: float, default: float) -> np.ndarray:
        """The value at each absolute beat, each change glided to over ``glide_beats`` from
        where the previous glide had got to (one search over the changes, whatever their number)."""
        base = default if self.base is None else self.base
        if not self.changes:
            return np.full(beats.shape, base, dtype=np.float64)
        when, target = self._arrays
        # the change in force at each time (a landing sample's window counts as after it)
        index = np.searchsorted(when, beats + _EPSILON_BEATS, side="right") - 1
        safe = np.maximum(index, 0)
        if glide_beats <= 0:
            return np.where(index >= 0, target[safe], base)
        start = self._starts(glide_beats, base)
        ramp = np.clip((beats - when[safe]) / glide_beats, 0.0, 1.0)
        return np.where(index >= 0, start[safe] + (target[safe] - start[safe]) * ramp, base)


class _Context:
    __slots__ = ("controls", "origin", "beats_per_ms")

    def __init__(self, controls, origin: float, bpm: float):
        self.controls, self.origin, self.beats_per_ms = controls, origin, bpm / 60_000.0


@contextlib.contextmanager
def evaluating(controls, origin_beats: float, bpm: float):
    """While curves are evaluated at times in beats since ``origin_beats`` (absolute), their
    controllers read ``controls`` (name -> :class:`ControlState`); without this, a controller
    curve is its default (a check before it plays, the status line)."""
    if not controls:
        yield
        return
    token = _CONTEXT.set(_Context(controls, origin_beats, bpm))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def _render(name, default, lo, hi, smooth_ms):
    kind, _, key = name.partition(":")
    if kind == "osc":
        address, _, index = key.partition("#")         # argument 1 and on of a message: "#1"
        given = f"default={default!r}" + "".join(f", {side}={bound!r}" for side, bound
                                                 in (("lo", lo), ("hi", hi)) if bound is not None)
        text = (f"osc({address!r}, {given})" if not index
                else f"osc({address!r}, {int(index) + 1}, {given})[{int(index)}]")
    elif kind == "cc":
        channel, number = key.split(":")
        text = f"cc({number}, channel={channel}, default={default!r})"
    elif kind == "note":
        channel, number = key.split(":")
        text = f"note_on({number}, channel={channel}, default={default!r})"
    elif kind == "sketch":
        features, index = key.rsplit(":", 1)
        text = f"sketched({features!r}, {index})"
    else:
        text = f"pitchbend(channel={key}, default={default!r})"
    return text if not smooth_ms else f"{text}.smooth({smooth_ms!r})"


@define_op("control", _render)
def _control(t, name, default, lo, hi, smooth_ms):
    """A controller's value; ``lo``/``hi`` (an OSC range; None: open) belong to the curve, so a
    set or a resumed journal plays it as typed."""
    context = _CONTEXT.get()
    state = None if context is None else context.controls.get(name)
    if state is None:
        return np.full(t.shape, default, dtype=np.float64)
    values = state.at(t + context.origin, smooth_ms * context.beats_per_ms, default)
    if lo is not None or hi is not None:
        values = np.clip(values, lo, hi)
    return values


# -- the curves ------------------------------------------------------------------------------------
def _default(value) -> float:
    return _finite(value, "default")


OSC_ARGUMENTS = 16      # the most arguments of one OSC message read as controllers


def osc_curve(address: str, default: float = 0.0, index: int = 0, lo=None, hi=None) -> Curve:
    """The last value sent to OSC ``address`` (its argument ``index``), ``default`` before any;
    clipped to [``lo``, ``hi``] (each None: open) when either is given."""
    if not isinstance(address, str) or not address.startswith("/") or len(address) > 256 \
            or any(c in address for c in " #*,?[]{}") or not address.isprintable():
        raise CurveError(f"osc({address!r}): an OSC address starts with / and has no spaces, "
                         f"wildcards or control characters, e.g. osc('/fader/1')")
    name = f"osc:{address}" + (f"#{index}" if index else "")
    default = _default(default)
    return Curve("control", name, default, lo, hi, 0.0)     # (the default plays as it is)


def osc_curves(address: str, arguments=1, default: float = 0.0, lo=None, hi=None):
    """``osc(address)``: one curve; ``osc(address, n)``: a tuple of ``n`` curves, one per argument
    of the messages sent to ``address`` (an XY pad's ``/xy x y``); ``lo``/``hi``: their range."""
    if isinstance(arguments, bool) or not isinstance(arguments, int) or not 1 <= arguments <= OSC_ARGUMENTS:
        raise CurveError(f"osc({address!r}, {arguments!r}): the second argument is how many numbers "
                         f"each message carries (1 to {OSC_ARGUMENTS}); give a default as default=...")
    curves = tuple(osc_curve(address, default, i, lo, hi) for i in range(arguments))
    return curves[0] if arguments == 1 else curves


def _midi_number(value, what: str, high: int = 127) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= high:
        raise CurveError(f"{what}={value!r} must be a whole number from 0 to {high}")
    return int(value)


def _channel(channel) -> int:
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or not 1 <= channel <= 16:
        raise CurveError(f"channel={channel!r} must be a MIDI channel from 1 to 16")
    return int(channel)


def cc_curve(number: int, channel: int = 1, default: float = 0.0) -> Curve:
    """MIDI control change ``number`` on ``channel``, scaled to [0, 1]."""
    return Curve("control", f"cc:{_channel(channel)}:{_midi_number(number, 'cc')}",
                 _default(default), None, None, 0.0)


def note_curve(number: int, channel: int = 1, default: float = 0.0) -> Curve:
    """The velocity of MIDI note ``number`` on ``channel`` while it is held, scaled to [0, 1];
    0 once it is released."""
    return Curve("control", f"note:{_channel(channel)}:{_midi_number(number, 'note')}",
                 _default(default), None, None, 0.0)


def bend_curve(channel: int = 1, default: float = 0.0) -> Curve:
    """MIDI pitch bend on ``channel``, scaled to [-1, 1]."""
    return Curve("control", f"bend:{_channel(channel)}", _default(default), None, None, 0.0)


def sketch_curve(features: str, index: int) -> Curve:
    """Feature ``index`` of the current sketch of the features named ``features`` (set by
    ``sketch(...)``; see :mod:`livelatent.mapping.sketches`)."""
    if not isinstance(features, str) or not features or isinstance(index, bool) or \
            not isinstance(index, (int, np.integer)) or index < 0:
        raise CurveError(f"sketched({features!r}, {index!r}): a features name and a dimension from 0")
    return Curve("control", f"sketch:{features}:{int(index)}", 0.0, None, None, 0.0)


#: What a controller curve's code calls, for rebuilding it from a journal or a set.
REBUILD_NAMES = {"osc": osc_curves, "cc": cc_curve, "sketched": sketch_curve,
                 "note_on": lambda number, channel=1, default=0.0: note_curve(number, channel, default),
                 "pitchbend": lambda channel=1, default=0.0: bend_curve(channel, default)}
