"""The engine: voices, commands, and one code path that turns them into samples.

Time is counted in engine *steps* of half a window (512 samples for the default model); every
output window starts on a step. :meth:`Engine._advance` processes whole steps: it applies the
commands due at each step, asks every voice for the windows it starts there, decodes all of
them in one batch, synthesises, mixes and limits. Offline renders call it with many steps at a
time (big batches, hundreds of times real time); live playback calls it from a decode thread a
step at a time, a little ahead of the audio callback, and writes into the ring buffer that the
callback copies from. Same function, same samples.

A performer's command lands at the first step the audio callback has not yet come close to.
When that step was already decoded, the engine restores the snapshot it kept at that step and
decodes again from there ("rewind", in :mod:`.live`), so a change is heard within a block or
two, whatever the lookahead.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from contextlib import contextmanager

import numpy as np

from ..config import BLOCKSIZE, DEFAULT_TEMPO_BPM
from ..errors import LiveLatentError, ParameterError
from ..model.codec import Codec, load_model
from ..voice import VoiceParams, plan_windows
from .callback import RingBuffer
from .clock import Clock
from .commands import QUANTS, Command, VoiceRuntime
from .live import LivePlayback
from .mixer import soft_limit
from .synth import add_windows, synthesis_window

__all__ = ["Engine", "Command", "QUANTS"]

_RING_SECONDS = 2.0


class Engine(LivePlayback):
    """The audio engine: plays voices live and renders them offline, sample for sample alike.

    Parameters
    ----------
    model : Codec, path, or None
        The model (default pack if None).
    seed : int
        The set's seed: window k of voice v draws its noise from (seed, v, k).
    tempo : float
        Beats per minute; curves run in beats.
    blocksize : int
        Frames per audio callback when live.
    lookahead : int, optional
        Samples decoded ahead of the callback when live (default: 8 steps, about 93 ms). It
        costs no latency: a change rewinds and re-decodes what was decoded but not played.
    """

    def __init__(self, model=None, *, seed: int = 0, tempo: float = DEFAULT_TEMPO_BPM,
                 blocksize: int = BLOCKSIZE, lookahead: int | None = None):
        self.codec: Codec = model if isinstance(model, Codec) else load_model(model)
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ParameterError(f"seed={seed!r} must be a non-negative integer")
        if not isinstance(blocksize, int) or blocksize < 16 or blocksize > 16384:
            raise ParameterError(f"blocksize={blocksize!r} must be an integer from 16 to 16384")
        self.seed = int(seed)
        self.sample_rate = self.codec.sample_rate
        self.window = self.codec.window
        self.step = self.window // 2
        self.blocksize = blocksize
        self.lookahead = int(lookahead) if lookahead is not None else 8 * self.step
        if self.lookahead < self.step:
            raise ParameterError(f"lookahead={lookahead} must be at least one step ({self.step} samples)")
        self._clock = Clock(self.sample_rate, tempo)
        self.requested_tempo = self._clock.bpm   # the tempo the performer last asked for
        self._voices: dict[int, VoiceRuntime] = {}
        self._next_index = 0
        self._step_pos = 0                       # next step to process
        self._pending: list[tuple[int, int, Command]] = []   # (step, seq, command)
        self._seq = 0
        self._snapshots: dict[int, tuple] = {}   # step -> engine state before that step (live)
        self._shapes = {s: synthesis_window(s, self.window) for s in ("concat", "ola")}
        self._ring = RingBuffer(1 << int(np.ceil(np.log2(self.sample_rate * _RING_SECONDS))))
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stream = None
        self._running = False
        self._host_block = blocksize             # frames the host takes at once (set by start)
        self._render_lock = threading.RLock()    # one advancer at a time when offline
        self._stem_sink = None                   # callable(index, first_sample, block) for stems
        self.messages: deque[str] = deque(maxlen=100)   # what the performer should read
        self._decode_seconds = deque(maxlen=64)  # wall seconds of each of the last live steps
        self._peak = 0.0
        self._sound_end = 0                      # sample where the last decoded window ends
        self._leftover = np.zeros((0, 2), dtype=np.float32)   # rendered, not yet handed out
        self.voice_handles: dict[int, object] = {}   # index -> performer's Voice handle
        self._batched: list[Command] | None = None
        self.landed_at: int | None = None   # where the last changes sent landed (see submit)

    # -- what performers and tools read --------------------------------------------------------
    @property
    def live(self) -> bool:
        return self._running

    @property
    def position(self) -> int:
        """The sample being played (live) or the next to render (offline)."""
        if self._running:
            return self._ring.read
        return self._step_pos * self.step - self._leftover.shape[0]

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def tempo(self) -> float:
        return self._clock.bpm_at(self.position)

    @property
    def underruns(self) -> int:
        return self._ring.underruns

    def voices(self) -> list[VoiceParams]:
        """Params of the voices still sounding, in creation order."""
        return [rt.params for rt in list(self._voices.values()) if not rt.ended]

    def pending(self) -> list[tuple[int, Command]]:
        """Commands scheduled at a sample the listener has not heard yet: (sample, command)."""
        now = self.position
        return [(s * self.step, c) for s, _, c in list(self._pending) if s * self.step >= now]

    def status(self) -> dict:
        """Play position, voices, loads, underruns and peak level, for the status line."""
        position = self.position
        beats, bar, beat_in_bar = self._clock.position(position)
        decode_load = 0.0
        spans = list(self._decode_seconds)
        if spans:
            decode_load = sum(spans) / (len(spans) * self.step / self.sample_rate)
        voices = []
        for params in self.voices():
            value = None
            if params.curve is not None:
                t = float(self._clock.beats(position) - self._clock.beats(params.curve_start))
                try:
                    value = float(params.curve(max(t, 0.0)))
                except Exception:   # the status line must never raise
                    value = float("nan")
            voices.append({"index": params.index, "name": params.name, "strategy": params.strategy,
                           "synth": params.synth, "curve": value, "gain": params.gain, "pan": params.pan})
        callback_load = float(self._stream.cpu_load) if self._stream is not None else 0.0
        return {"position": position, "seconds": position / self.sample_rate, "beats": beats,
                "bar": bar, "beat": beat_in_bar, "tempo": self._clock.bpm_at(position),
                "voices": voices, "decode_load": decode_load, "callback_load": callback_load,
                "underruns": self._ring.underruns, "xruns": self._ring.xruns, "peak": self._peak,
                "pending": len(self.pending()), "live": self._running}

    def __repr__(self) -> str:
        mode = "live" if self._running else "offline"
        return (f"<Engine {mode} at {self.position / self.sample_rate:.2f} s, "
                f"{len(self.voices())} voices, {self.tempo:g} bpm, seed {self.seed}>")

    # -- the current engine --------------------------------------------------------------------
    def __enter__(self):
        from ..context import set_current_engine
        set_current_engine(self)
        return self

    def __exit__(self, *exc):
        from ..context import current_engine_or_none, set_current_engine
        self.stop_playback()
        if current_engine_or_none() is self:
            set_current_engine(None)
        return False

    # -- commands ------------------------------------------------------------------------------
    def new_voice_index(self) -> int:
        index = self._next_index
        self._next_index += 1
        return index

    def intended_voices(self) -> list[VoiceParams]:
        """The voices as the performer last asked for them, in number order: those sounding and
        not fading out, with every change not yet heard applied (a voice quantised to the bar,
        a ``set`` waiting for its beat, and what the batch of the cell running now still holds,
        so ``v = voice(...); save("x")`` in one cell saves ``v``)."""
        voices = {p.index: p for p in self.voices() if p.stop_at is None}
        for command in [c for _, c in self.pending()] + list(self._batched or ()):
            if command.kind == "add":
                voices[command.params.index] = command.params
            elif command.kind == "set" and command.index in voices:
                voices[command.index] = voices[command.index].changed(**command.changes)
            elif command.kind == "stop":
                voices.pop(command.index, None)
            elif command.kind == "hush":
                voices.clear()
        return sorted(voices.values(), key=lambda p: p.index)

    def take_messages(self) -> list[str]:
        """The messages for the performer not yet taken, oldest first (from any thread)."""
        taken = []
        while True:
            try:
                taken.append(self.messages.popleft())
            except IndexError:
                return taken

    def loops(self) -> bool:
        """Whether a voice playing or about to start loops (so the sound never ends by itself)."""
        return any(p.loop for p in self.voices()) or any(
            c.kind == "add" and c.params.loop for _, _, c in self._pending)

    def reserve_voice_index(self, index: int) -> bool:
        """Make ``index`` the next new voice's number, if no voice had it or a later one yet.

        A voice's number seeds its noise, so a set restores its voices under their saved
        numbers when it can. Returns whether it could.
        """
        if index < self._next_index:
            return False
        self._next_index = int(index)
        return True

    def submit(self, *commands: Command, at: int | None = None) -> int:
        """Schedule commands; returns the sample at which they take effect ("now" ones), which
        ``landed_at`` keeps (inside a :meth:`batch`, the batch sends them later).

        All commands submitted together land on the same step, which is what lets the journal
        replay a cell exactly. Quantised ones wait for the next beat or bar from there.
        ``at`` asks for a later step (a replay's recorded sample): live, the commands land
        there if the listener has not reached it, else as soon as possible (the returned
        sample says where); offline, an ``at`` before the render position is an error.
        """
        for command in commands:
            if command.quant not in QUANTS:
                raise ParameterError(f"quant={command.quant!r} must be one of {QUANTS}")
        if not commands:
            return self.position
        if self._batched is not None:
            self._batched.extend(commands)
            return self.position
        if self._running:
            reply: list = []
            done = threading.Event()
            self._queue.put((commands, reply, done, at))
            if not done.wait(timeout=5.0) or not reply:
                raise LiveLatentError("the engine's decode thread did not answer; "
                                      "the change was not applied")
            self.landed_at = reply[0]
            return reply[0]
        with self._render_lock:
            step = self._step_pos
            if at is not None:
                if at < step * self.step:
                    raise ParameterError(f"at={at} is before the render position {step * self.step}")
                step = -(-int(at) // self.step)
            self.landed_at = self._schedule(commands, step) * self.step
            return self.landed_at

    @contextmanager
    def batch(self, *, discard_on_error: bool = False, at: int | None = None):
        """Hold the commands submitted inside, then send them together: they land on one step.

        The REPL wraps every cell in a batch, so a cell's changes are heard at once and the
        journal can replay the cell at that one sample. ``landed_at`` says where.
        With ``discard_on_error`` a block that raises sends nothing (a broken pattern file
        changes nothing); otherwise what ran before the error is sent, as Python would.
        ``at`` lands them on that later sample (see :meth:`submit`): replays use it.
        """
        if self._batched is not None:   # nested: the outer batch sends
            yield self
            return
        self._batched = []
        self.landed_at = None
        # what a discarded batch takes back besides its commands: the tempo the performer asked
        # for, and the numbers and handles of the voices it made (a number seeds a voice's noise)
        tempo_before, next_index = self.requested_tempo, self._next_index
        handles_before = set(self.voice_handles)
        failed = False
        try:
            yield self
        except BaseException:
            failed = True
            raise
        finally:
            commands, self._batched = self._batched, None
            if failed and discard_on_error:
                self.requested_tempo, self._next_index = tempo_before, next_index
                for index in set(self.voice_handles) - handles_before:
                    del self.voice_handles[index]
            elif commands:
                self.submit(*commands, at=at)          # sets landed_at

    def _schedule(self, commands, step: int) -> int:
        """Put commands in the pending list at ``step`` (quantised ones later)."""
        for command in commands:
            target = step
            if command.quant != "now":
                unit = 1.0 if command.quant == "beat" else float(self._clock.beats_per_bar)
                boundary = self._clock.next_boundary(step * self.step, unit)
                target = max(step, int(np.ceil(boundary / self.step - 1e-9)))
            self._pending.append((target, self._seq, command))
            self._seq += 1
        self._pending.sort(key=lambda item: (item[0], item[1]))
        return step

    def _apply(self, command: Command, step: int) -> None:
        at = step * self.step
        if command.kind == "add":
            params = command.params.changed(start=at, curve_start=at, good_curve_start=at)
            self._voices[params.index] = VoiceRuntime(params, self.window - self.step)
        elif command.kind == "tempo":
            self._clock = self._clock.with_tempo(command.value, at)
        elif command.kind == "hush":
            for runtime in self._voices.values():
                if runtime.params.stop_at is None:
                    runtime.params = runtime.params.changed(stop_at=at, fade=int(command.value))
        else:
            runtime = self._voices.get(command.index)
            if runtime is None:
                return   # the voice already ended: nothing to change
            if command.kind == "stop":
                if runtime.params.stop_at is None:
                    runtime.params = runtime.params.changed(stop_at=at, fade=int(command.value))
            elif command.kind == "set":
                changes = dict(command.changes)
                if "curve" in changes:
                    old = runtime.params
                    good = old.curve if old.curve is not None else changes["curve"]
                    changes.update(curve_start=at, good_curve=good,
                                   good_curve_start=old.curve_start if old.curve is not None else at)
                runtime.params = runtime.params.changed(**changes)

    # -- the one code path ---------------------------------------------------------------------
    def _advance(self, steps: int) -> np.ndarray:
        """Process ``steps`` engine steps; returns the mixed, limited block (samples, 2)."""
        out = np.zeros((steps * self.step, 2), dtype=np.float32)
        done = 0
        while done < steps:
            step = self._step_pos
            while self._pending and self._pending[0][0] <= step:
                target, _, command = self._pending.pop(0)
                self._apply(command, step)
            span = steps - done
            if self._pending:
                span = min(span, self._pending[0][0] - step)
            out[done * self.step:(done + span) * self.step] = self._render_span(step, span)
            self._step_pos = step + span
            done += span
        return out

    def _render_span(self, step: int, span: int) -> np.ndarray:
        first, end = step * self.step, (step + span) * self.step
        length = end - first
        plans = []
        for runtime in list(self._voices.values()):
            plan, runtime.params = plan_windows(
                runtime.params, first, end, clock=self._clock, engine_seed=self.seed,
                latent=self.codec.latent_dim, noise_cache=runtime.noise_cache)
            if plan.reverted_at is not None:
                self.messages.append(f"voice {runtime.params.name}: {plan.error}; "
                                     f"reverted to its last good curve")
            plans.append((runtime, plan))
        batch = [plan.z for _, plan in plans if plan.z.shape[0]]
        decoded = self.codec.decode(np.concatenate(batch)) if batch else None
        mix = np.zeros((2, length), dtype=np.float32)
        row = 0
        tail_len = self.window - self.step
        for runtime, plan in plans:
            buffer = np.zeros((2, length + tail_len), dtype=np.float32)
            buffer[:, :tail_len] += runtime.tail
            m = plan.z.shape[0]
            if m:
                self._sound_end = max(self._sound_end, int(plan.positions[-1]) + self.window)
                runtime.last_gain = add_windows(
                    buffer, decoded[row:row + m], int(plan.positions[0] - first),
                    runtime.params.layout.output_hop, self._shapes[runtime.params.synth],
                    plan.gains, runtime.last_gain)
                row += m
            mix += buffer[:, :length]
            runtime.tail = buffer[:, length:].copy()
            if self._stem_sink is not None:
                self._stem_sink(runtime.params.index, first, buffer[:, :length].T)
            if runtime.ended and not m:
                del self._voices[runtime.params.index]     # its tail is out: it is done
            elif plan.ended:
                runtime.ended = True
        block = soft_limit(mix.T)
        if length:
            self._peak = max(self._peak * 0.5, float(np.max(np.abs(block))))
        return np.ascontiguousarray(block)

    # -- offline -------------------------------------------------------------------------------
    def render_array(self, seconds: float | None = None, *, samples: int | None = None,
                     progress=None, max_seconds: float = 3600.0):
        """Render from the current position, offline; returns (samples, 2) float32.

        Give ``seconds`` or an exact number of ``samples``; with neither, it renders until every
        voice has ended (an error if some voice loops).
        """
        chunks = list(self.render_chunks(seconds, samples=samples, max_seconds=max_seconds,
                                         progress=progress))
        return np.concatenate(chunks) if chunks else np.zeros((0, 2), dtype=np.float32)

    def render_chunks(self, seconds: float | None = None, *, samples: int | None = None,
                      chunk_steps: int = 256, max_seconds: float = 3600.0, progress=None):
        """Yield rendered blocks until ``seconds`` (or ``samples``) are rendered, or all voices end."""
        if self._running:
            raise LiveLatentError("this engine is playing live; render a copy instead "
                                  "(the REPL's render() does)")
        if samples is not None:
            if not isinstance(samples, (int, np.integer)) or samples < 0:
                raise ParameterError(f"samples={samples!r} must be a non-negative integer")
            seconds = samples / self.sample_rate
        if seconds is None:
            if self.loops():
                raise ParameterError("seconds=None renders until every voice ends, but some voices "
                                     "loop: give seconds=")
            total = None
        else:
            if not (seconds >= 0 and seconds <= 24 * 3600):
                raise ParameterError(f"seconds={seconds!r} must be between 0 and 86400")
            total = int(samples) if samples is not None else int(round(seconds * self.sample_rate))
        limit = int(max_seconds * self.sample_rate)
        produced = 0
        with self._render_lock:
            while total is None or produced < total:
                if self._leftover.shape[0]:
                    block, self._leftover = self._leftover, self._leftover[:0]
                else:
                    if total is None and not self._voices and not self._pending:
                        return
                    if total is None and produced >= limit:
                        raise LiveLatentError(f"the voices still play after {max_seconds:g} s; "
                                              f"give seconds=")
                    want = chunk_steps * self.step if total is None else total - produced
                    steps = max(1, min(chunk_steps, -(-want // self.step)))
                    first = self._step_pos * self.step
                    block = self._advance(steps)
                    if total is None and not self._pending and all(
                            runtime.ended for runtime in self._voices.values()):
                        block = block[:max(0, self._sound_end - first)]   # the exact end
                        total = produced + block.shape[0]
                if total is not None and produced + block.shape[0] > total:
                    # keep what runs past the end for the next render: renders join seamlessly
                    block, self._leftover = block[:total - produced], block[total - produced:]
                produced += block.shape[0]
                if progress is not None:
                    progress(block.shape[0])
                yield block
