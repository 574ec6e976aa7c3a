"""The timeline: the engine's one state that changes with time, and the one way it moves.

A :class:`Timeline` holds the score (voices and clock, :mod:`.commands`), the schedule of
commands sent to later steps, and the voice bank's synthesis state. :meth:`Timeline.advance`
processes whole steps: it applies the commands due at each step with the one interpreter
(:func:`~.commands.apply`), asks the bank for the span's samples, and publishes a
:class:`~.published.Published` snapshot for readers. One thread moves it: the caller's when
rendering offline, the playback's decode thread when live.

Rewinds restore a :class:`Checkpoint` (score, synthesis state, resolved beats); the schedule
is not in it, so a rewind never loses a command, whoever sent it and for whichever step.
"""

from __future__ import annotations

import bisect
from collections import deque
from types import MappingProxyType

import numpy as np

from ..errors import ParameterError
from .bank import Bank
from .blocks import BLOCK, noise_entropy
from .clock import Clock
from .commands import AddVoice, Score, apply, quantised_target
from .published import Entry, Published, pending_entries

__all__ = ["Timeline", "Checkpoint"]

_HISTORY = 4096        # published snapshots kept for readers asking about the listener's step


class Checkpoint:
    """The timeline's state before one step, for rewinds (the schedule is not in it)."""

    __slots__ = ("step", "score", "bank", "resolved", "sound_end", "peak")

    def __init__(self, step, score, bank, resolved, sound_end, peak):
        self.step, self.score, self.bank = step, score, bank
        self.resolved, self.sound_end, self.peak = resolved, sound_end, peak


class Timeline:
    """Commands in, samples out, one step at a time (see the module docstring)."""

    def __init__(self, codec, *, seed: int, step: int, tempo: float, events, arena, channels: int = 2):
        self.step_size = step
        self.events = events
        self._bank = Bank(codec, seed=seed, step=step, arena=arena, channels=channels)
        self._score = Score(MappingProxyType({}), Clock(codec.sample_rate, tempo))
        self._schedule: list[Entry] = []
        self._schedule_steps: list[int] = []
        self._resolved: dict[int, int] = {}
        self._not_landed: set[int] = set()        # commands dropped (and said) in _apply_due
        self._seq = 0
        self._step = 0
        self._sound_end = 0
        self._peak = 0.0
        self._history: deque[Published] = deque(maxlen=_HISTORY)
        self._publish()

    # -- what readers see ----------------------------------------------------------------------
    @property
    def step(self) -> int:
        """The next step to process."""
        return self._step

    @property
    def latest(self) -> Published:
        return self._latest

    def at(self, sample: int) -> Published:
        """What plays at ``sample``: the snapshot published once the step it falls in was
        processed (the newest, if the timeline has not got there; the oldest kept, if older)."""
        after = sample // self.step_size + 1
        history = tuple(self._history)      # a copy: the decode thread appends meanwhile
        for published in reversed(history):
            if published.step <= after:
                return published
        return history[0] if history else self._latest

    def idle(self) -> bool:
        """No voice sounds or waits to start, as far as the timeline has gone."""
        latest = self._latest
        return not latest.score.voices and not pending_entries(latest, latest.sample)

    def played_out(self) -> bool:
        """Every voice has played its last window and nothing waits to start: from
        ``latest.sound_end`` on there is silence."""
        latest = self._latest
        return self._bank.all_ended(latest.score.voices) and not pending_entries(latest, latest.sample)

    def loops(self) -> bool:
        """Whether a voice playing or about to start loops (so the sound never ends by itself)."""
        latest = self._latest
        return any(p.loop for p in latest.score.voices.values()) or any(
            isinstance(e.command, AddVoice) and e.command.params.loop
            for _, e in pending_entries(latest, latest.sample))

    # -- moving it (one thread) ----------------------------------------------------------------
    def schedule(self, commands, step: int) -> int:
        """Put ``commands`` in the schedule at ``step`` (not before the next step); returns the
        sending order of the first. Quantised ones find their beat when the step is reached."""
        if step < self._step:
            raise ParameterError(f"cannot schedule at step {step}: the timeline is at {self._step}")
        first = self._seq
        for command in commands:
            index = bisect.bisect_right(self._schedule_steps, step)
            self._schedule.insert(index, Entry(step, self._seq, command))
            self._schedule_steps.insert(index, step)
            self._seq += 1
        self._publish()
        return first

    def checkpoint(self) -> Checkpoint:
        """The state before the next step (what :meth:`rewind` restores)."""
        return Checkpoint(self._step, self._score, self._bank.snapshot(), dict(self._resolved),
                          self._sound_end, self._peak)

    def rewind(self, checkpoint: Checkpoint) -> None:
        """Go back to ``checkpoint``: steps after it will be processed again (the schedule,
        commands sent since included, stays)."""
        self._step = checkpoint.step
        self._score = checkpoint.score
        self._bank.restore(checkpoint.bank)
        self._resolved = dict(checkpoint.resolved)
        self._sound_end, self._peak = checkpoint.sound_end, checkpoint.peak
        while self._history and self._history[-1].step >= checkpoint.step:
            self._history.pop()
        self._publish()

    def forget_before(self, step: int) -> None:
        """Drop what only a rewind before ``step`` would need (commands applied before it)."""
        keep = []
        for entry in self._schedule:
            target = entry.step if entry.command.quant == "now" else self._resolved.get(entry.seq)
            if target is None or target >= step:
                keep.append(entry)
            else:
                self._resolved.pop(entry.seq, None)
        if len(keep) != len(self._schedule):
            self._schedule = keep
            self._schedule_steps = [e.step for e in keep]
        while len(self._history) > 1 and self._history[1].step <= step:
            self._history.popleft()

    def advance(self, steps: int) -> np.ndarray:
        """Process ``steps`` steps; returns the mixed, limited block (samples, 2)."""
        out = np.empty((steps * self.step_size, self._bank.channels), dtype=np.float32)
        done = 0
        while done < steps:
            step = self._step
            before = self._score, dict(self._resolved)
            self._apply_due(step)
            span = min(steps - done, self._next_due(step) - step)
            try:
                result = self._bank.render(self._score.voices, self._score.clock,
                                           step * self.step_size, span * self.step_size)
            except BaseException:        # nothing of this span happened: it can be tried again
                self._score, self._resolved = before
                raise
            if result.reverted or result.finished:
                voices = dict(self._score.voices)
                voices.update(result.reverted)
                for number in result.finished:
                    voices.pop(number, None)
                self._score = self._score.with_voices(voices)
            for message in result.messages:
                self.events.warning(message)
            self._sound_end = max(self._sound_end, result.sound_end)
            self._peak = result.peak
            out[done * self.step_size:(done + span) * self.step_size] = result.block
            self._step = step + span
            done += span
        self._publish()
        return out

    def _apply_due(self, step: int) -> None:
        due = []
        lo = bisect.bisect_left(self._schedule_steps, step)
        hi = bisect.bisect_right(self._schedule_steps, step)
        due.extend(self._schedule[lo:hi])
        due.extend(e for e in self._schedule[:lo] if self._resolved.get(e.seq) == step)
        due.sort(key=lambda e: e.seq)
        for entry in due:
            command = entry.command
            if command.quant != "now":     # its beat, with the clock as it is now
                target = self._resolved.get(entry.seq)
                if target is None:
                    target = self._resolved[entry.seq] = self._beat_of(entry, step)
                if target != step:
                    continue
            clock = self._score.clock
            try:
                self._score = apply(self._score, command, at=step * self.step_size, seq=entry.seq)
            except Exception as exc:    # noqa: BLE001 - one command that cannot land (checked
                # where it was made, so this is a bug or a hand-made command) must not fail every
                # step from here on: it is dropped, here and in a render alike, and said once
                if entry.seq not in self._not_landed:          # (a rewind meets it again)
                    self._not_landed.add(entry.seq)
                    self.events.error(f"a {type(command).__name__} could not land on step {step} "
                                      f"({type(exc).__name__}: {exc}); it was dropped")
                continue
            if self._score.clock is not clock:
                self._find_beats_again(step)

    def _beat_of(self, entry: Entry, step: int) -> int:
        """The step a quantised entry lands on, with the clock as it is at ``step``."""
        target = quantised_target(self._score.clock, entry.command, entry.step * self.step_size,
                                  self.step_size)
        return max(step, target)

    def _find_beats_again(self, step: int) -> None:
        """The tempo changed at ``step``: quantised commands still waiting find their beat or
        bar again, with the new clock (a bar that now falls sooner lands sooner)."""
        for entry in self._schedule:
            target = self._resolved.get(entry.seq)
            if target is not None and target > step:
                self._resolved[entry.seq] = self._beat_of(entry, step + 1)

    def _next_due(self, step: int) -> int:
        index = bisect.bisect_right(self._schedule_steps, step)
        nearest = self._schedule_steps[index] if index < len(self._schedule_steps) else 1 << 62
        later = [t for t in self._resolved.values() if t > step]
        return min([nearest, *later])

    def _publish(self) -> None:
        self._latest = Published(self._step, self.step_size, self._score, tuple(self._schedule),
                                 MappingProxyType(dict(self._resolved)), self._peak,
                                 self._sound_end)
        self._history.append(self._latest)

    def work_ahead(self, ahead: bool) -> None:
        """Have each voice's next block worked out seconds ahead, on other threads: its noise
        and its channels (live playback does; a render has only its noise drawn ahead, a span
        early).
        Turned on, it also has the memory of the cache slots the next voices take populated
        (now, in the caller's thread; then on a thread of its own as voices start)."""
        self._bank.cache.work_ahead(ahead)

    @property
    def slow_blocks(self):
        """The blocks of performer code found slow, and their deadline
        (:class:`~.slow_blocks.SlowBlocks`)."""
        return self._bank.cache.slow

    def free_voice_slots(self) -> int:
        """How many more voices (grains) the bank holds before its cache must grow."""
        return self._bank.cache.free_slots()

    def populate_slots_for(self, count: int) -> None:
        """Have the memory of the cache slots the next ``count`` voices (grains) take populated,
        in the caller's thread (not the decoder's), those not populated yet."""
        self._bank.cache.populate_slots(count)

    def draw_noise_for(self, voices, at: int) -> None:
        """Draw, in the caller's thread, the noise block each of ``voices`` (VoiceParams about to
        start, their windows carrying on from their ``start``) plays at sample ``at``."""
        cache = self._bank.cache
        for params in voices:
            if params.deterministic and params.plan.spread is None:
                continue
            window = max(0, -(-(at - params.start) // params.layout.output_hop))
            for grain in range(params.plan.points):          # a cloud's grains draw their own
                cache.noise.draw(noise_entropy(params, cache.seed, window // BLOCK, grain))

    def set_stem_sink(self, sink) -> None:
        """``sink(number, name, first_sample, block)`` receives each voice's samples (or None)."""
        self._bank.stem_sink = sink

