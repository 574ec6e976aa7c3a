"""When the decoder cannot keep up: fewer decodes, decided in the open, instead of clicks.

Live, the :class:`OverloadGuard` watches how much CPU time the decode thread spends on a step
against the step's duration. When that load, over the last :data:`WINDOW_S`, is above
:data:`HIGH` (too many voices, a slow machine), it sheds decodes until the load would be back at
:data:`TARGET`. Other programs busy on the machine's cores do not show in the decoder's CPU time,
yet they slow it down as surely: so the guard also reads the steps' wall time, and when that,
over the last :data:`WALL_WINDOW_S`, is above real time (:data:`WALL_HIGH`: the decoder falls
behind the listener, whatever the cause), it sheds until the wall time would be back at
:data:`TARGET`. Each reading counts a lone slow step as a typical one (see
:meth:`DecodeMeter.recent_load`): a cell that holds the interpreter for a moment stalls one
step, which the lookahead covers. Either way it sheds in a declared, deterministic order:

- when switching the newest overlap-add voices to concat synthesis (half the decodes) sheds
  enough with at most :data:`MAX_TWINS` of them (a moderate overload: each twin costs work on the
  step it lands, which the decoder takes from what it decoded ahead), they are switched, as many
  as it takes, newest first, while the voice bank has room for their twins without growing
  (which would stall the decoder). A switched voice is replaced
  by its concat twin, which carries on its curves, sources and noise key where they are and
  takes its name, while the overlap-add voice fades out over a window (the twin fades in over
  its first); twins start a few a step, their first noise drawn on the guard's thread;
- otherwise (switching costs work as it lands, which a heavier overload has no time for), the
  newest voices are muted with a short fade, as many as it takes. A voice already switched is
  muted next time, if the load stays high.

Only voices already playing, with no change waiting for a later beat, are switched. When the
journal cannot record a group of twins (a voice built from a Python function), the voices of
that group and of the groups after it are muted instead. Switching encodes each source anew at
the concat hop (once per source and hop, cached), on the guard's thread.

The changes land in batches of origin ``overload``, each :data:`LEAD_STEPS` steps past where the
decoder has got to as it is built (and each group of twins a step after the one before at the
least), so they normally cost no re-decoding (the decode thread lands a waiting batch after the
step it is decoding, even while it is behind). They are journaled like any other writer's, so
the set's render is what the audience heard, and the status line says so once, with what each
voice costs. Underruns stay the last resort: the guard acts while what was decoded ahead still
covers the listener.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from ..errors import LiveLatentError
from ..paths.plan import with_plan
from ..strategies import layout
from .commands import AddVoice, StopVoice
from .writers import Batch

__all__ = ["OverloadGuard", "DecodeMeter", "concat_twin", "HIGH", "TARGET", "WINDOW_S", "FADE_S",
           "MAX_TWINS", "WALL_HIGH", "WALL_WINDOW_S"]

HIGH = 0.9             # decode time over step time, averaged: above this the decoder falls behind
TARGET = 0.75          # what the guard brings it back to
WINDOW_S = 0.1         # the load is averaged over the steps of this long
WALL_HIGH = 1.0        # wall time over step time, averaged: above this the listener gains on it
WALL_WINDOW_S = 0.25   # averaged over the steps of this long
FADE_S = 0.05          # the fade of a muted voice
TWINS_PER_STEP = 16    # concat twins starting on one step (each works out its first block there)
MAX_TWINS = 4 * TWINS_PER_STEP    # more would take longer to land than what is decoded ahead covers
LEAD_STEPS = 2         # the guard's batches land this many steps past the decoder (see _ahead)
_CHECK_S = 0.02
_SETTLE_S = 0.5        # after acting, the load is measured afresh before acting again
SPIKE_FACTOR = 3.0     # a step this many times the median step is heavy...
SPIKE_HISTORY_S = 0.5  # ...and a spike when it is the only heavy step of this long


class DecodeMeter:
    """How long the decode thread takes for its steps: wall time (the status line's load) and
    its own CPU time (the guard's: waiting for the GIL while the performer's code runs is not
    the decoder falling behind)."""

    def __init__(self, step_seconds: float):
        self.step_seconds = step_seconds
        self._wall: deque = deque(maxlen=512)
        self._cpu: deque = deque(maxlen=512)

    def begin(self) -> tuple[float, float]:
        return time.perf_counter(), time.thread_time()

    def end(self, began: tuple[float, float]) -> None:
        self._wall.append(time.perf_counter() - began[0])
        self._cpu.append(time.thread_time() - began[1])

    def load(self) -> float:
        """Wall time over step time, over the last 64 steps (the status line's)."""
        spans = list(self._wall)[-64:]
        return sum(spans) / (len(spans) * self.step_seconds) if spans else 0.0

    def longest_recent(self, count: int = 8) -> float | None:
        """The longest wall time of the last ``count`` steps (None: none yet)."""
        spans = list(self._wall)[-count:]
        return max(spans) if spans else None

    def recent_load(self, seconds: float, *, wall: bool = False) -> float | None:
        """CPU time (``wall``: wall time) over step time, for the steps of the last ``seconds``
        (None: not that many yet), a lone spike counted as a typical step. A step over
        :data:`SPIKE_FACTOR` times the median, the only one in the last :data:`SPIKE_HISTORY_S`,
        is a spike the lookahead covers (the first blocks of many voices starting on one step,
        or a step stalled while a cell held the interpreter), not a load the decoder keeps:
        shedding voices for it would take them from the performer for good. Heavy steps that come
        back (a controller moving many voices now and then) count as they are."""
        count = max(1, int(round(seconds / self.step_seconds)))
        history = list(self._wall if wall else self._cpu)
        spans = history[-count:]
        if len(spans) < count:
            return None
        total = sum(spans)
        recent = history[-max(count, int(round(SPIKE_HISTORY_S / self.step_seconds))):]
        typical = float(np.median(recent))
        heavy = [i for i, span in enumerate(recent) if span > SPIKE_FACTOR * typical]
        if len(heavy) == 1 and heavy[0] >= len(recent) - count:      # lone, and in the window
            total += typical - recent[heavy[0]]
        return total / (count * self.step_seconds)

    def forget(self) -> None:
        """Measure afresh (after the guard acted): the guard's readings start empty."""
        self._cpu.clear()
        self._wall.clear()


class OverloadGuard:
    """Watches a :class:`~.playback.Playback` and sheds voices (switched to concat, or muted) when
    its decoder falls behind."""

    def __init__(self, playback):
        self.playback = playback
        self.engine = playback.engine
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="livelatent-overload", daemon=True)
        self.muted: list[int] = []            # numbers of the voices muted
        self.switched: list[int] = []         # and of those switched to concat

    def start(self) -> "OverloadGuard":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(_CHECK_S):
            playback = self.playback
            if not playback.running or playback.lost:
                continue
            meter = playback.meter
            load = meter.recent_load(WINDOW_S)
            if load is None or load <= HIGH:                 # the decoder's own work keeps up;
                load = meter.recent_load(WALL_WINDOW_S, wall=True)   # does it, on this machine?
                if load is None or load <= WALL_HIGH:
                    continue
            self._shed(load)
            self._stop.wait(_SETTLE_S)
            meter.forget()

    def _shed(self, load: float, *, at: int | None = None) -> None:
        """Switch the newest overlap-add voices to concat, or else mute the newest, enough to
        bring ``load`` down to :data:`TARGET`; the batches land at ``at``, the k-th group of twins
        k steps later (default: each a little ahead of the decoder as it is built, see
        :meth:`_ahead`, and each group a step after the one before at the least)."""
        engine = self.engine
        step = engine.step
        first = at if at is not None else self._ahead()     # what plays there is what is shed

        def landing(earliest: int) -> int:           # each batch's sample, worked out as it is built
            return earliest if at is not None else max(earliest, self._ahead())

        voices = sorted(engine.intended_voices(), key=lambda p: p.index)
        if not voices:
            return
        # a voice costs its decoded windows per step (a cloud of k points: k; concat: half)
        costs = np.array([p.plan.points * step / p.layout.output_hop for p in voices], dtype=np.float64)
        total = costs.sum()
        budget = total * TARGET / load
        room = min(MAX_TWINS, engine.timeline.free_voice_slots())
        switched = self._to_switch(voices, costs, total - budget, room, first)
        muted = []
        if switched is None:            # switching cannot shed enough: mute, newest first
            switched, cost = [], total
            for i in reversed(range(len(voices))):
                if cost <= budget and muted:
                    break
                muted.append(i)
                cost -= costs[i]
        fade = int(FADE_S * engine.sample_rate)
        if muted and not self._send([StopVoice(voices[i].index, fade) for i in muted], landing(first)):
            return
        switched.sort()                 # twins numbered in their voices' order: newest stays newest
        done, start = [], first - step
        # the memory of every twin's slot, before any group takes one (the slots the next voices
        # take are known only until they start taking them)
        engine.timeline.populate_slots_for(sum(voices[i].plan.points for i in switched))
        for begin in range(0, len(switched), TWINS_PER_STEP):
            group = switched[begin:begin + TWINS_PER_STEP]         # a few a step: each costs its
            # first block's work. A switched voice crossfades with its twin over a window (the
            # twin fades in over its first); the twins' first noise is drawn here, not on the
            # decode thread's step
            start = landing(start + step)
            twins = [concat_twin(voices[i], engine.new_voice_number(), start, engine.codec)
                     for i in group]
            engine.timeline.draw_noise_for(twins, start)
            commands = [StopVoice(voices[i].index, engine.window) for i in group]
            commands += [AddVoice(t, timing=(t.start, t.curve_start, t.good_curve_start, t.sources_start))
                         for t in twins]
            if not self._send(commands, start):       # one the journal cannot record: mute them
                rest = switched[begin:]
                self._send([StopVoice(voices[i].index, fade) for i in rest], landing(start))
                muted += rest
                break
            done += group
        switched = done
        self.muted.extend(voices[i].index for i in muted)
        self.switched.extend(voices[i].index for i in switched)
        each = 100.0 * load / total
        said = [f"the decoder needed {100 * load:.0f}% of real time with {len(voices)} voices "
                f"(about {each:.1f}% per decoded window)"]
        if switched:
            said.append(f"switched the newest {len(switched)} to concat (half the decodes): "
                        + ", ".join(voices[i].name for i in switched))
        if muted:
            said.append(f"muted {len(muted)}: " + ", ".join(voices[i].name for i in muted))
        engine.events.warning("overload: " + "; ".join(said))

    @staticmethod
    def _to_switch(voices, costs, excess: float, room: int, landing: int) -> list | None:
        """The newest overlap-add voices whose switch to concat sheds ``excess`` (a twin halves
        its voice's cost), within ``room`` slots (of the bank's free ones: growing it mid-overload
        would stall the decoder), among those already playing at ``landing`` with no change waiting
        for a later beat; None when they cannot. A switch costs the decoder work as it lands,
        so the guard switches only when switching alone is enough."""
        chosen, shed = [], 0.0
        for i in reversed(range(len(voices))):
            if shed >= excess:
                break
            p = voices[i]
            points = p.plan.points
            if (p.synth == "ola" and p.held is None and points <= room    # heard, nothing waiting
                    and max(p.start, p.curve_start, p.sources_start) <= landing):
                chosen.append(i)
                room -= points
                shed += costs[i] / 2
        return chosen if shed >= excess else None

    def _ahead(self) -> int:
        """The step :data:`LEAD_STEPS` steps past the decoder's: a batch built and sent in less
        time lands there, where its twins were laid out for, and nothing is decoded again (at
        an overload, the time re-decoding takes is what the decoder lacks)."""
        step = self.engine.step
        return (-(-self.playback.decoded_to // step) + LEAD_STEPS) * step

    def _send(self, commands, at: int) -> bool:
        try:
            self.engine.send(Batch(self.engine, "overload", at=at, commands=commands))
        except LiveLatentError:         # refused: a change the journal could not record
            return False
        except Exception as exc:        # the guard must never take the sound down with it
            self.engine.events.error(f"overload guard: {type(exc).__name__}: {exc}")
            return False
        return True


def concat_twin(params, number: int, at: int, codec):
    """Voice ``params`` played by concat synthesis from sample ``at`` on: the same sources, curve,
    path, gain, pan, name and noise key, its windows (now a whole window apart) laid so that one
    starts at ``at``, its curves and sources carrying on where they are."""
    options = dict(params.options)
    lay = layout(params.strategy, "concat", window=codec.window,
                 stretch=options.get("stretch", params.layout.stretch))
    shift = (at - params.start) % lay.output_hop
    twin = params.changed(       # (its last good curve is its curve, as a replay rebuilds it)
        index=number, synth="concat", layout=lay, start=params.start + shift,
        good_curve=params.curve, good_curve_start=params.curve_start,
        frames_a=params.a.frames(codec, lay.input_hop, tail=params.frames_a.tail),
        frames_b=params.b.frames(codec, lay.input_hop, tail=params.frames_b.tail),
        options={**options, "synth": "concat"}, stop_at=None, fade=0,
        noise_key=params.index if params.noise_key is None else params.noise_key)
    return with_plan(twin, codec)
