"""What the engine is told: a closed set of small frozen commands, and their one interpreter.

A command changes the :class:`Score` (the voices and the tempo) at one sample. :func:`apply`
is the only code that gives commands their meaning. The engine's timeline uses it to change
what plays; readers use the very same function to compute what the performer intends (the
published score with the changes not yet heard applied to a copy), so the two can never
disagree about what ``stop`` or ``hush`` means.

Each command may wait for the next beat or bar (``quant``); the engine resolves that target
when the timeline reaches the step the command was sent to, with the clock as it is then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Mapping, Union

from ..errors import ParameterError
from ..controls import ControlState
from ..paths.plan import with_plan
from ..voice import VoiceParams
from .clock import Clock, check_tempo

__all__ = ["QUANTS", "AddVoice", "SetVoice", "StopVoice", "Hush", "SetTempo", "SyncTempo", "SetControl",
           "Command",
           "Score", "apply", "quantised_target", "check_quant", "DERIVED_CHANGES",
           "COMMAND_TYPES"]

QUANTS = ("now", "beat", "bar")
# what a change to a voice carries besides what the performer gave (not shown, not journaled)
DERIVED_CHANGES = frozenset({"frames_a", "frames_b", "curve_start", "good_curve", "good_curve_start",
                             "plan", "held"})


def check_quant(quant) -> str:
    if not isinstance(quant, str) or quant not in QUANTS:     # (an array: ambiguous truth)
        raise ParameterError(f"quant={quant!r} must be one of {QUANTS}")
    return quant


@dataclass(frozen=True)
class AddVoice:
    """Start a voice (``params.index`` is its number). Its curves, sources and windows start
    where it lands, unless ``timing`` gives the (start, curve start, last good curve's start,
    sources' start) of a voice it carries on from (the overload guard's concat twin): then its
    windows keep that start's grid, moved on so that one starts where it lands."""

    params: VoiceParams
    quant: str = "now"
    timing: tuple | None = None

    @property
    def voice(self) -> int:
        return self.params.index


@dataclass(frozen=True)
class SetVoice:
    """Change some of a voice's parameters (curve, gain, pan, sources...)."""

    voice: int
    changes: Mapping = field(default_factory=lambda: MappingProxyType({}))
    quant: str = "now"

    def __post_init__(self):
        object.__setattr__(self, "changes", MappingProxyType(dict(self.changes)))

    @property
    def shown(self) -> list[str]:
        """The parameters the performer changed, sorted (``["curve", "gain"]``)."""
        return sorted(set(self.changes) - DERIVED_CHANGES)


@dataclass(frozen=True)
class StopVoice:
    """Fade a voice out over ``fade`` samples (a voice not started yet never starts)."""

    voice: int
    fade: int = 0
    quant: str = "now"


@dataclass(frozen=True)
class Hush:
    """Fade every voice out over ``fade`` samples; voices sent before it never start."""

    fade: int = 0
    quant: str = "now"


@dataclass(frozen=True)
class SetControl:
    """A controller (``"osc:/fader/1"``, ``"cc:1:74"``...) took ``value`` (from OSC, MIDI...)."""

    name: str
    value: float
    quant: str = "now"


@dataclass(frozen=True)
class SetTempo:
    """Change the tempo (beats per minute)."""

    bpm: float
    quant: str = "now"

    def __post_init__(self):     # checked here: a tempo out of range in the timeline would fail
        check_tempo(self.bpm)    # every step from where it lands, and the engine with it


@dataclass(frozen=True)
class SyncTempo:
    """Follow a shared clock (Ableton Link): from where it lands the tempo is ``bpm``, and
    beat ``beat`` falls on engine sample ``sample`` (wherever the command lands, before or
    after it). Beats may jump by the phase correction; it always lands at once."""

    bpm: float
    beat: float
    sample: int
    quant: str = "now"

    def beat_at(self, at: int, sample_rate: int) -> float:
        return self.beat + (at - self.sample) * self.bpm / 60.0 / sample_rate


Command = Union[AddVoice, SetVoice, StopVoice, Hush, SetTempo, SyncTempo, SetControl]
COMMAND_TYPES = (AddVoice, SetVoice, StopVoice, Hush, SetTempo, SyncTempo, SetControl)


@dataclass(frozen=True)
class Score:
    """What commands act on: the voices that sound (fading ones too) and the clock.

    ``cancelled`` holds the numbers of voices stopped before they started, and
    ``hushed_before`` the sequence number of the last hush: a voice sent before a hush that
    lands after it never starts (its start was waiting for a bar).
    """

    voices: Mapping[int, VoiceParams]
    clock: Clock
    cancelled: frozenset = frozenset()
    hushed_before: int = -1
    controls: Mapping = field(default_factory=lambda: MappingProxyType({}))   # name -> ControlState

    def with_voices(self, voices: dict) -> "Score":
        return replace(self, voices=MappingProxyType(voices))

    def sounding(self) -> list[VoiceParams]:
        """The voices not fading out, in number order."""
        return sorted((p for p in self.voices.values() if p.stop_at is None), key=lambda p: p.index)


def apply(score: Score, command: Command, *, at: int, seq: int) -> Score:
    """The score after ``command`` lands at sample ``at`` (``seq``: its place in sending order)."""
    voices = dict(score.voices)
    if isinstance(command, AddVoice):
        number = command.params.index
        if number in score.cancelled or seq < score.hushed_before:
            return score                        # stopped, or hushed, before it could start
        start, curve_start, good_start, sources_start = command.timing or (at, at, at, at)
        if command.timing is not None:      # carrying on: a window of its own starts where it lands
            start += (at - start) % command.params.layout.output_hop
        voices[number] = command.params.changed(start=start, curve_start=curve_start,
                                                good_curve_start=good_start, sources_start=sources_start,
                                                controls=score.controls)
        return score.with_voices(voices)
    if isinstance(command, SetTempo):
        return replace(score, clock=score.clock.with_tempo(command.bpm, at))
    if isinstance(command, SyncTempo):
        clock = score.clock
        return replace(score, clock=clock.with_tempo(command.bpm, at,
                                                     command.beat_at(at, clock.sample_rate)))
    if isinstance(command, SetControl):
        state = score.controls.get(command.name) or ControlState()
        controls = MappingProxyType({**score.controls,
                                     command.name: state.after(score.clock.beats(at), command.value)})
        for number, params in voices.items():      # the voices that read it work out again
            if command.name in params.plan.controls:
                voices[number] = params.changed(controls=controls)
        return replace(score, voices=MappingProxyType(voices), controls=controls)
    if isinstance(command, Hush):
        for number, params in voices.items():
            if params.stop_at is None:
                voices[number] = params.changed(stop_at=at, fade=command.fade)
        return replace(score, voices=MappingProxyType(voices), hushed_before=seq)
    params = voices.get(command.voice)
    if isinstance(command, StopVoice):
        if params is None:
            return replace(score, cancelled=score.cancelled | {command.voice})
        if params.stop_at is None:
            voices[command.voice] = params.changed(stop_at=at, fade=command.fade)
        return score.with_voices(voices)
    if isinstance(command, SetVoice):
        if params is None:
            return score                        # the voice ended: nothing to change
        changes = dict(command.changes)
        if "curve" in changes:
            good = params.curve if params.curve is not None else changes["curve"]
            changes.update(curve_start=at, good_curve=good,
                           good_curve_start=params.curve_start if params.curve is not None else at)
        if "path" in changes:                   # a new path's curves start where it lands
            changes.update(curve_start=at)
        if "a" in changes or "b" in changes:    # and so do a new source's
            changes.update(sources_start=at)
        if {"curve", "a", "b", "path"} & set(changes):
            changes.update(held=None, controls=score.controls)   # what held it is replaced
        changed = params.changed(**changes)
        if {"a", "b", "path", "curve"} & set(changes) and "plan" not in changes:   # (the writer did it)
            changed = with_plan(changed, params.plan.codec)
        voices[command.voice] = changed
        return score.with_voices(voices)
    raise TypeError(f"not a command: {command!r}")


def quantised_target(clock: Clock, command: Command, sample: int, step: int) -> int:
    """The step a quantised command lands on when sent to ``sample``: the next beat or bar."""
    unit = 1.0 if command.quant == "beat" else float(clock.beats_per_bar)
    boundary = clock.next_boundary(sample, unit)
    return max(sample // step, int(math.ceil(boundary / step - 1e-9)))
