"""The engine: one timeline of commands in and samples out, and the writers and readers of it.

Time is counted in engine *steps* of half a window (512 samples for the default model); every
output window starts on a step. The :class:`~.timeline.Timeline` processes whole steps: offline
renders move it many steps at a time, live playback (:mod:`.playback`, a separate object that
uses only public methods) a step at a time from its decode thread. Same code, same samples.
Readers see the snapshots it publishes (:mod:`.published`), never its working state.

Writers, from any thread, send :class:`~.writers.Batch` es: every command of a batch lands on
one step, and the recorders (the session's journal) are told where. Offline a batch lands on
the next step to render; live the playback decides (the first step the listener cannot reach),
rewinding what was decoded ahead if need be. The schedule of commands is kept apart from the
snapshots rewinds restore, so a rewind never loses a command, whoever sent it and for when.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from .. import context
from ..config import BLOCKSIZE, DEFAULT_TEMPO_BPM, check_blocksize, check_channels
from ..errors import LiveLatentError, ParameterError
from ..events import Events
from ..model.codec import Codec, load_model
from ..voice import VoiceParams
from .clock import Clock
from .commands import COMMAND_TYPES, AddVoice, Command, Score, SetVoice, check_quant
from .frames import FrameArena
from .handoff import HandOff
from .voice_numbers import VoiceNumbers
from .offline import render_chunks, render_total
from .playback import Playback
from .published import Published, intended, pending_entries
from .status import engine_status
from .timeline import Timeline
from .writers import Batch, current_batch, default_origin

__all__ = ["Engine"]


class Engine:
    """The audio engine: plays voices live and renders them offline, sample for sample alike.

    Parameters
    ----------
    model : Codec, path, or None
        The model (default pack if None).
    seed : int
        The set's seed: window k of a voice draws its noise from (seed, its noise key, k).
    tempo : float
        Beats per minute; curves run in beats.
    blocksize : int
        Frames per audio callback when live.
    lookahead : int, optional
        Samples decoded ahead of the listener when live (default: 8 steps, about 93 ms). It
        costs no latency: a change rewinds and re-decodes what was decoded but not played.
    events : Events, optional
        Where the engine reports to the performer (default: a stream of its own).
    channels : int
        Output channels (2 to 64); voices play on 1 and 2 unless routed (``out=``).

    ``with Engine():`` makes it the default engine of this context, for ``voice()``,
    ``tempo()``... typed outside a namespace bound to an engine.
    """

    def __init__(self, model=None, *, seed: int = 0, tempo: float = DEFAULT_TEMPO_BPM,
                 blocksize: int = BLOCKSIZE, lookahead: int | None = None,
                 events: Events | None = None, channels: int = 2):
        self.codec: Codec = model if isinstance(model, Codec) else load_model(model)
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ParameterError(f"seed={seed!r} must be a non-negative integer")
        self.seed = int(seed)
        self.sample_rate = self.codec.sample_rate
        self.window = self.codec.window
        self.step = self.window // 2
        self.blocksize = check_blocksize(blocksize)
        self.lookahead = int(lookahead) if lookahead is not None else 8 * self.step
        if self.lookahead < self.step:
            raise ParameterError(f"lookahead={lookahead} must be at least one step ({self.step} samples)")
        self.events = events if events is not None else Events()
        self.playback: Playback | None = None
        self._last_playback: Playback | None = None     # the one before, once stopped
        self.frames = FrameArena(self.codec.latent_dim)
        self.channels = check_channels(channels)
        self.timeline = Timeline(self.codec, seed=self.seed, step=self.step, tempo=tempo,
                                 events=self.events, arena=self.frames, channels=self.channels)
        self.handoff = HandOff(self.channels)    # rendered but not handed out; just handed out
        self._lock = threading.RLock()           # offline: one advancer or sender at a time
        self.numbers = VoiceNumbers()
        self._recorders: list = []
        self._render_hooks: list = []
        self._sealed_by = None
        self._context_token = None
        self._exit_hooks: list = []
        self.landed_at: int | None = None   # where the last batch sent landed (tests and tools)

    # -- what readers see ----------------------------------------------------------------------
    def heard(self) -> Published:
        """The snapshot of the step the listener is in: what plays now (offline: as far as
        the render has gone)."""
        if self.playback is None:
            return self.timeline.latest
        return self.timeline.at(self.position)

    @property
    def playing(self) -> bool:
        """Whether sound goes to a device now (a playback started and not stopped)."""
        return self.playback is not None and self.playback.running

    @property
    def position(self) -> int:
        """The sample the listener is at (live), or the next to render (offline)."""
        playback = self.playback
        if playback is not None:
            return playback.heard
        return self.timeline.step * self.step - self.handoff.leftover_size

    @property
    def clock(self) -> Clock:
        return self.heard().score.clock

    @property
    def tempo(self) -> float:
        """The tempo at the listener's position."""
        return self.clock.bpm_at(self.position)

    def voices(self) -> list[VoiceParams]:
        """The voices sounding at the listener's position (fading ones too), in number order."""
        return sorted(self.heard().score.voices.values(), key=lambda p: p.index)

    def pending(self) -> list[tuple[int, Command]]:
        """Changes the listener has not heard yet: (sample, command), in landing order."""
        return [(sample, entry.command) for sample, entry in
                pending_entries(self.timeline.latest, self.position)]

    def intended(self) -> Score:
        """The score as the performer last asked for it: every change sent, landed or not,
        and this writer's open batch (so ``v = voice(...); save()`` in one cell saves ``v``)."""
        batch = current_batch(self)
        return intended(self.timeline.latest, batch.commands if batch is not None else ())

    def intended_voices(self) -> list[VoiceParams]:
        """The voices the performer asked for and did not stop, in number order."""
        return self.intended().sounding()

    def intended_tempo(self) -> float:
        return self.intended().clock.bpm

    sound_end = property(lambda self: self.timeline.latest.sound_end,
                         doc="The sample after which all that was decoded is silence.")

    def idle(self) -> bool:
        """No voice sounds or waits to start, as far as the timeline has gone."""
        return self.timeline.idle()

    def loops(self) -> bool:
        """Whether a voice playing or about to start loops (so the sound never ends by itself)."""
        return self.timeline.loops()

    def status(self) -> dict:
        """Play position, voices, loads, underruns and peak level, for the status line."""
        return engine_status(self)

    @property
    def underruns(self) -> int:
        """Blocks the device found no samples for, in this playback (or the last, once stopped)."""
        playback = self.playback or self._last_playback
        return playback.underruns if playback is not None else 0

    def __repr__(self) -> str:
        mode = "playing" if self.playing else "offline"
        return (f"<Engine {mode} at {self.position / self.sample_rate:.2f} s, "
                f"{len(self.voices())} voices, {self.tempo:g} bpm, seed {self.seed}>")

    # -- the default engine of a context ---------------------------------------------------------
    def __enter__(self):
        self._context_token = context.use_engine(self)
        return self

    def __exit__(self, *exc):
        self.stop_playback()
        for hook in self._exit_hooks:        # listeners (OSC, MIDI) let go; leaving never fails
            with contextlib.suppress(Exception):
                hook()
        self._exit_hooks.clear()
        if self._context_token is not None:
            context.release_engine(self._context_token)
            self._context_token = None
        return False

    # -- writing, from any thread --------------------------------------------------------------
    def new_voice_number(self) -> int:
        """A voice number no voice of this engine has had (see :class:`VoiceNumbers`)."""
        return self.numbers.take(current_batch(self))

    def add_recorder(self, recorder) -> None:
        """Tell ``recorder`` of every batch: ``recorder.check(batch)`` before it is sent (it may
        refuse it by raising), ``recorder.landed(batch)`` once it has landed."""
        self._recorders.append(recorder)

    def remove_recorder(self, recorder) -> None:
        with contextlib.suppress(ValueError):
            self._recorders.remove(recorder)

    def submit(self, *commands: Command) -> int | None:
        """Send commands: into this writer's open batch (returns None), or as a batch of their
        own (returns the sample they land on)."""
        for command in commands:
            if not isinstance(command, COMMAND_TYPES):
                raise TypeError(f"not a command: {command!r}")
            check_quant(command.quant)
        batch = current_batch(self)
        if batch is not None:
            batch.commands.extend(commands)
            return None
        if not commands:
            return None
        return self.send(Batch(self, default_origin(), commands=list(commands)))

    @contextlib.contextmanager
    def batch(self, *, origin: str | None = None, discard_on_error: bool = False,
              at: int | None = None, cell: int | None = None):
        """Hold the commands this writer submits inside, then send them together: they land on
        one step.

        With ``discard_on_error`` a block that raises sends nothing, nested or not (a broken
        pattern file changes nothing; a ``load()`` that fails half way leaves nothing behind);
        otherwise what ran before the error is sent, as Python would. ``at`` lands them on
        that later sample (replays and timers use it). Yields the :class:`Batch`.
        """
        outer = current_batch(self)
        if outer is not None:              # nested: the outer batch sends
            mark = outer.savepoint()
            try:
                yield outer
            except BaseException:
                if discard_on_error:
                    self.numbers.give_back(outer.rollback(mark))
                raise
            return
        batch = Batch(self, origin or default_origin(), at=at, cell=cell)
        token = batch.enter()
        failed = False
        try:
            yield batch
        except BaseException:
            failed = True
            raise
        finally:
            Batch.leave(token)
            if failed and discard_on_error:
                self.numbers.give_back(batch.rollback((0, 0)))
            elif (batch.commands or batch.readings) and not batch.capture:
                self.send(batch)

    def send(self, batch: Batch) -> int | None:
        """Land ``batch`` (from any thread); returns the sample its commands landed on (None: a
        sealed engine, see :meth:`seal`, did not take it)."""
        if self._sealed_by is not None and batch.key is not self._sealed_by:
            return None                # a replay plays only its journal: live code changes nothing
        for recorder in list(self._recorders):
            recorder.check(batch)
        self._place_frames(batch.commands)      # here, not in the decode thread: copies can be large
        playback = self.playback
        interrupted = False
        try:
            landed = playback.land(batch) if playback is not None else None
        except KeyboardInterrupt:       # Ctrl-C after the batch landed: record it, then pass it on
            if batch.landed_at is None:
                raise
            landed, interrupted = (batch.seq, batch.landed_at), True
        if landed is not None:
            batch.seq, batch.landed_at = landed
        else:
            with self._lock:
                self.land_offline(batch)
        self.landed_at = batch.landed_at
        batch.read = [reading.read(batch.landed_at) for reading in batch.readings]
        for recorder in list(self._recorders):
            recorder.landed(batch)
        if interrupted:
            raise KeyboardInterrupt
        return batch.landed_at

    def land_offline(self, batch: Batch, *, late_ok: bool = False) -> None:
        """Schedule ``batch`` at the timeline's next step (or its later ``at``), with the
        timeline lock held and no playback moving it. An ``at`` already passed is an error,
        unless ``late_ok`` (then it lands on the next step)."""
        step = self.timeline.step
        if batch.at is not None:
            wanted = -(-int(batch.at) // self.step)
            if wanted < step and not late_ok:
                raise ParameterError(f"at={batch.at} is before the render position {step * self.step}")
            step = max(step, wanted)
        batch.seq = self.timeline.schedule(batch.commands, step)
        batch.landed_at = step * self.step

    def _place_frames(self, commands) -> None:
        for command in commands:
            if isinstance(command, AddVoice):
                for frames in command.params.plan.frames:
                    self.frames.offset(frames)
            elif isinstance(command, SetVoice) and "plan" in command.changes:
                for frames in command.changes["plan"].frames:
                    self.frames.offset(frames)

    def seal(self, key) -> None:
        """From now on only batches whose ``key`` is ``key`` land (a replay's own): code the
        replay runs to rebuild names changes nothing."""
        self._sealed_by = key

    def unseal(self) -> None:
        """Every batch lands again (a rebuilt engine going live, see :mod:`..session.resume`)."""
        self._sealed_by = None

    @property
    def sealed(self) -> bool:
        """Whether this engine plays only a replay's batches (see :meth:`seal`)."""
        return self._sealed_by is not None

    def set_stem_sink(self, sink) -> None:
        """``sink(number, name, first_sample, block)`` receives each voice's samples (or None)."""
        self.timeline.set_stem_sink(sink)

    # -- live playback -------------------------------------------------------------------------
    def start(self, device=None, *, blocksize: int | None = None, inputs: int = 0,
              overload_guard: bool = True) -> "Engine":
        """Play through ``device`` (a name, index or host API name; see :class:`Playback`), with
        ``inputs`` channels in. ``overload_guard=False``: an overloaded decoder underruns."""
        if self.playing:
            return self
        if blocksize is not None:
            self.blocksize = check_blocksize(blocksize)
        playback = Playback(self, device=device, inputs=inputs, overload_guard=overload_guard)
        playback.start()          # raises DeviceError and changes nothing when it cannot
        return self

    def attach_playback(self, playback) -> None:
        """Called by a :class:`Playback` as it starts: sends go through it from now on."""
        if self.playback is not None and self.playback is not playback:
            raise LiveLatentError("this engine is already playing")
        self.playback = playback

    def detach_playback(self, playback) -> None:
        if self.playback is playback:
            self.playback, self._last_playback = None, playback

    def stop_playback(self, *, fade: float = 0.0) -> None:
        """Stop live playback (after fading out over ``fade`` seconds); the engine stays usable
        offline, from where the listener was."""
        if self.playback is not None:
            self.playback.stop(fade=fade)

    def timeline_lock(self):
        """The lock offline senders and renders take: whoever holds it alone moves the timeline."""
        return self._lock

    def add_exit_hook(self, hook) -> None:
        """Call ``hook()`` when the engine's ``with`` block ends (listeners close their ports)."""
        self._exit_hooks.append(hook)

    def add_render_hook(self, hook) -> None:
        """``hook(engine, first, end)`` runs before each offline chunk ``[first, end)`` is
        rendered: what reads the wall clock live (timers) sends its changes from there."""
        self._render_hooks.append(hook)

    def note_outage(self, sample: int, *, lost: bool) -> None:
        """The device was lost (or came back) with the listener at ``sample``: recorders that
        keep a record of it are told."""
        for recorder in list(self._recorders):
            outage = getattr(recorder, "outage", None)
            if outage is not None:
                outage(sample, lost=lost)

    def reconnect(self) -> None:
        """Try the audio device again now, if it was lost."""
        if self.playback is not None:
            self.playback.reconnect()

    # -- offline -------------------------------------------------------------------------------
    def render_array(self, seconds: float | None = None, *, samples: int | None = None,
                     progress=None, max_seconds: float = 3600.0):
        """Render from the current position, offline; returns (samples, channels) float32.

        Give ``seconds`` or an exact number of ``samples``; with neither, it renders until every
        voice has ended (an error if some voice loops).
        """
        chunks = list(self.render_chunks(seconds, samples=samples, max_seconds=max_seconds,
                                         progress=progress))
        return np.concatenate(chunks) if chunks else np.zeros((0, self.channels), dtype=np.float32)

    def render_chunks(self, seconds: float | None = None, *, samples: int | None = None,
                      chunk_steps: int = 256, max_seconds: float = 3600.0, progress=None):
        """Yield rendered blocks until ``seconds`` (or ``samples``) are rendered, or all voices end."""
        total = render_total(self, seconds, samples)
        return render_chunks(self, total, chunk_steps=chunk_steps, max_seconds=max_seconds,
                             progress=progress, hooks=self._render_hooks)
