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
decodes again from there ("rewind"), so a change is heard within a block or two, whatever the
lookahead.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ..config import BLOCKSIZE, DEFAULT_TEMPO_BPM
from ..errors import LiveLatentError, ParameterError
from ..model.codec import Codec, load_model
from ..voice import VoiceParams, plan_windows
from .callback import RingBuffer
from .clock import Clock
from .mixer import soft_limit
from .synth import add_windows, synthesis_window

__all__ = ["Engine", "Command", "QUANTS"]

QUANTS = ("now", "beat", "bar")
_RING_SECONDS = 2.0


@dataclass
class Command:
    """A change to the engine, applied at the start of one step."""

    kind: str                     # "add", "set", "stop", "hush", "tempo"
    index: int | None = None      # the voice it concerns
    params: VoiceParams | None = None
    changes: dict = field(default_factory=dict)
    value: float = 0.0            # tempo bpm, or fade length in samples
    quant: str = "now"


class _VoiceRuntime:
    """A voice as the engine plays it: params plus the state synthesis carries between steps."""

    __slots__ = ("params", "tail", "last_gain", "ended", "noise_cache")

    def __init__(self, params: VoiceParams, tail_len: int):
        self.params = params
        self.tail = np.zeros((2, tail_len), dtype=np.float32)
        self.last_gain = np.zeros(2, dtype=np.float32)     # voices fade in over their first window
        self.ended = False
        self.noise_cache: dict = {}

    def snapshot(self):
        return (self.params, self.tail.copy(), self.last_gain.copy(), self.ended)

    @classmethod
    def restore(cls, snap, noise_cache):
        runtime = cls.__new__(cls)
        runtime.params, tail, last_gain, runtime.ended = snap
        runtime.tail, runtime.last_gain = tail.copy(), last_gain.copy()
        runtime.noise_cache = noise_cache
        return runtime


class Engine:
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
        Samples decoded ahead of the callback when live (default: 4 steps, about 46 ms). It
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
        self.lookahead = int(lookahead) if lookahead is not None else 4 * self.step
        if self.lookahead < self.step:
            raise ParameterError(f"lookahead={lookahead} must be at least one step ({self.step} samples)")
        self._clock = Clock(self.sample_rate, tempo)
        self.requested_tempo = self._clock.bpm   # the tempo the performer last asked for
        self._voices: dict[int, _VoiceRuntime] = {}
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
        self._blas_limit = None
        self._render_lock = threading.RLock()    # one advancer at a time when offline
        self._stem_sink = None                   # callable(index, first_sample, block) for stems
        self.messages: deque[str] = deque(maxlen=100)   # what the performer should read
        self._decode_seconds = deque(maxlen=64)  # (wall seconds, samples) per live step
        self._peak = 0.0
        self._sound_end = 0                      # sample where the last decoded window ends
        self._leftover = np.zeros((0, 2), dtype=np.float32)   # rendered, not yet handed out
        self.voice_handles: dict[int, object] = {}   # index -> performer's Voice handle
        self._batched: list[Command] | None = None
        self.last_batch_sample: int | None = None  # where the last batch() landed

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
            seconds = sum(s for s, _ in spans)
            samples = sum(n for _, n in spans)
            decode_load = seconds / (samples / self.sample_rate) if samples else 0.0
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

    def held_commands(self) -> list[Command]:
        """Commands held by the batch in progress: a cell's changes, not yet sent."""
        return list(self._batched or ())

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
        """Schedule commands; returns the sample at which they take effect ("now" ones).

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
            return reply[0]
        with self._render_lock:
            step = self._step_pos
            if at is not None:
                if at < step * self.step:
                    raise ParameterError(f"at={at} is before the render position {step * self.step}")
                step = -(-int(at) // self.step)
            return self._schedule(commands, step) * self.step

    @contextmanager
    def batch(self, *, discard_on_error: bool = False, at: int | None = None):
        """Hold the commands submitted inside, then send them together: they land on one step.

        The REPL wraps every cell in a batch, so a cell's changes are heard at once and the
        journal can replay the cell at that one sample. ``last_batch_sample`` says where.
        With ``discard_on_error`` a block that raises sends nothing (a broken pattern file
        changes nothing); otherwise what ran before the error is sent, as Python would.
        ``at`` lands them on that later sample (see :meth:`submit`): replays use it.
        """
        if self._batched is not None:   # nested: the outer batch sends
            yield self
            return
        self._batched = []
        self.last_batch_sample = None
        tempo_before = self.requested_tempo
        failed = False
        try:
            yield self
        except BaseException:
            failed = True
            raise
        finally:
            commands, self._batched = self._batched, None
            if failed and discard_on_error:
                self.requested_tempo = tempo_before
            elif commands:
                self.last_batch_sample = self.submit(*commands, at=at)

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
            self._voices[params.index] = _VoiceRuntime(params, self.window - self.step)
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

    # -- live ----------------------------------------------------------------------------------
    def start(self, device=None, *, blocksize: int | None = None):
        """Open the audio device and play. ``device`` is a name, index or host API name."""
        if self._running:
            return self
        from ..sinks.device import open_output_stream
        if blocksize is not None:
            self.blocksize = int(blocksize)
        with self._render_lock:
            position = self.position     # a render may have left part of a step unplayed
            self._ring.reset(position)
            self._ring.write(position, self._leftover)
            self._ring.written = self._step_pos * self.step
            self._leftover = self._leftover[:0]
            self._snapshots.clear()
            stream = open_output_stream(self._ring.callback, device=device,
                                        samplerate=self.sample_rate, blocksize=self.blocksize,
                                        channels=2)
            # The host may pull more than one block at a time: PortAudio's JACK host asks for a
            # whole server period (4 blocks of 256 back to back on a 1024 period). A change
            # must land beyond what one such pull can take; the stream's latency says its size.
            self._host_block = max(self.blocksize, int(round(float(stream.latency) * self.sample_rate)))
            # Live steps decode a few windows at a time. Multi-threaded BLAS gains nothing on
            # such small products and stalls when the other core is busy (measured: decode load
            # 2.2x real time with 2 threads on a loaded machine, 0.08x with 1), so the engine
            # plays with one BLAS thread and gives the others back when it stops.
            from threadpoolctl import threadpool_limits
            self._blas_limit = threadpool_limits(limits=1, user_api="blas")
            self._fill(position + self.lookahead)       # the first blocks are ready at once
            self._stream = stream
            self._running = True
            self._thread = threading.Thread(target=self._decode_loop, name="livelatent-decode",
                                            daemon=True)
            self._thread.start()
            stream.start()
        return self

    def stop_playback(self, *, fade: float = 0.0) -> None:
        """Stop live playback (after fading out over ``fade`` seconds); the engine stays usable."""
        if not self._running:
            return
        if fade > 0 and self.voices():
            self.submit(Command("hush", value=fade * self.sample_rate))
            deadline = time.monotonic() + fade + 4 * self.lookahead / self.sample_rate + 0.2
            target = self.position + int((fade + 0.05) * self.sample_rate) + self.window
            while self._ring.read < target and time.monotonic() < deadline:
                time.sleep(0.01)
        self._running = False
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
            finally:
                stream.close()
        if self._blas_limit is not None:
            self._blas_limit.restore_original_limits()
            self._blas_limit = None
        # carry on offline from where the listener is, on the step grid
        self._step_pos = -(-self._ring.written // self.step)

    def _decode_loop(self) -> None:
        poll = max(0.0005, self.blocksize / self.sample_rate / 4)
        while self._running:
            try:
                item = self._queue.get(timeout=poll)
            except queue.Empty:
                item = False
            if item is None:
                break
            if item:
                try:
                    self._handle(*item)
                except Exception as exc:   # the submitter gets an error; the sound goes on
                    self.messages.append(f"engine error: {type(exc).__name__}: {exc}")
            try:
                self._fill(self._ring.read + self.lookahead)
            except Exception as exc:   # never let the decode thread die silently
                self.messages.append(f"engine error: {type(exc).__name__}: {exc}")
                time.sleep(0.05)

    def _fill(self, until: int) -> None:
        """Decode step by step until ``until`` samples are ready (decode thread)."""
        while self._ring.written < until:
            step = self._step_pos
            self._snapshots[step] = self._snapshot()
            began = time.perf_counter()
            block = self._advance(1)
            self._decode_seconds.append((time.perf_counter() - began, self.step))
            self._ring.write(step * self.step, block)
            self._ring.written = (step + 1) * self.step
            self._forget_before(self._ring.read)

    def _handle(self, commands, reply, done, at=None) -> None:
        """Schedule commands at the first step the callback cannot have reached (decode thread)."""
        try:
            margin = self._host_block + self.step // 4
            step = -(-(self._ring.read + margin) // self.step)
            if at is not None and -(-at // self.step) >= step:   # a later step, asked for
                step = -(-at // self.step)
                if step >= self._step_pos:
                    reply.append(self._schedule(commands, step) * self.step)
                    return
            if step < self._step_pos:
                self._ring.written = min(self._ring.written, step * self.step)
                # the callback may have moved on while we decided: never rewrite what it read
                safe = -(-(self._ring.read + self._host_block) // self.step)
                if safe > step:
                    step = safe
                    self._ring.written = min(max(self._ring.written, step * self.step),
                                             self._step_pos * self.step)
                self._rewind(step)
            else:
                step = self._step_pos
            reply.append(self._schedule(commands, step) * self.step)
        finally:
            done.set()

    def _snapshot(self):
        return (self._clock, {i: rt.snapshot() for i, rt in self._voices.items()},
                list(self._pending), self._sound_end)

    def _rewind(self, step: int) -> None:
        clock, voices, pending, sound_end = self._snapshots[step]
        caches = {i: rt.noise_cache for i, rt in self._voices.items()}
        self._clock = clock
        self._voices = {i: _VoiceRuntime.restore(snap, caches.get(i, {})) for i, snap in voices.items()}
        self._pending = pending
        self._sound_end = sound_end
        self._step_pos = step
        for later in [s for s in self._snapshots if s > step]:
            del self._snapshots[later]

    def _forget_before(self, sample: int) -> None:
        oldest = sample // self.step - 1
        for old in [s for s in self._snapshots if s < oldest]:
            del self._snapshots[old]

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
            if any(p.loop for p in self.voices()) or any(
                    c.kind == "add" and c.params.loop for _, _, c in self._pending):
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
