"""The engine: one timeline of commands in and samples out, and the writers and readers of it.

Time is counted in engine *steps* of half a window (512 samples for the default model); every
output window starts on a step. The :class:`~.timeline.Timeline` processes whole steps: offline
renders move it many steps at a time, live playback (:mod:`.playback`, a separate object that
uses only public methods) a step at a time from its decode thread. Same code, same samples.
Readers see the snapshots it publishes (:mod:`.published`), never its working state.

Writers, from any thread, send :class:`~.writers.Batch` es (:mod:`.sending`, a base of the
engine): every command of a batch lands on one step, and the recorders (the session's journal)
are told where. Offline a batch lands on
the next step to render; live the playback decides (the first step the listener cannot reach),
rewinding what was decoded ahead if need be. The schedule of commands is kept apart from the
snapshots rewinds restore, so a rewind never loses a command, whoever sent it and for when.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from .. import context
from ..config import BLOCKSIZE, DEFAULT_TEMPO_BPM, check_blocksize, check_channels, check_inputs
from ..errors import LiveLatentError, ParameterError, is_integral, is_real
from ..events import Events
from ..model.codec import Codec, load_model
from ..voice import VoiceParams
from .clock import Clock
from .commands import Command, Score
from .frames import FrameArena
from .handoff import HandOff
from .voice_numbers import VoiceNumbers
from .offline import render_chunks, render_total
from .playback import Playback
from .sending import Sending
from .published import Published, intended, pending_entries
from .status import engine_status
from .timeline import Timeline
from .writers import current_batch

__all__ = ["Engine", "ARRAY_MAX_S", "MAX_LOOKAHEAD_S"]

ARRAY_MAX_S = 3600.0    # the longest render_array (in memory: 1.3 GB of stereo at 44.1 kHz)
MAX_LOOKAHEAD_S = 5.0   # the most decoded ahead of the listener (the REPL's --lookahead too)


class Engine(Sending):
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
        longest = int(MAX_LOOKAHEAD_S * self.sample_rate)
        if lookahead is not None and not (is_integral(lookahead) and self.step <= lookahead <= longest):
            raise ParameterError(f"lookahead={lookahead!r} must be a whole number of samples from one "
                                 f"step ({self.step}) to {longest} ({MAX_LOOKAHEAD_S:g} s)")
        self.lookahead = int(lookahead) if lookahead is not None else 8 * self.step
        self.events = events if events is not None else Events()
        self.playback: Playback | None = None
        self._last_playback: Playback | None = None     # the one before, once stopped
        self.frames = FrameArena(self.codec.latent_dim)
        self.channels = check_channels(channels)
        self.timeline = Timeline(self.codec, seed=self.seed, step=self.step, tempo=tempo,
                                 events=self.events, arena=self.frames, channels=self.channels)
        self.timeline.slow_blocks.on_slow = self.note_slow_block
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

    @property
    def sound_end(self) -> int:
        """The sample after which all that was decoded is silence."""
        return self.timeline.latest.sound_end

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

    def set_stem_sink(self, sink) -> None:
        """``sink(number, name, first_sample, block)`` receives each voice's samples (or None)."""
        self.timeline.set_stem_sink(sink)

    # -- live playback -------------------------------------------------------------------------
    def start(self, device=None, *, blocksize: int | None = None, inputs: int = 0,
              overload_guard: bool = True) -> "Engine":
        """Play through ``device`` (a name, index or host API name; see :class:`Playback`), with
        ``inputs`` channels in. ``overload_guard=False``: an overloaded decoder underruns."""
        inputs = check_inputs(inputs)
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

    def reconnect(self) -> None:
        """Try the audio device again now, if it was lost."""
        if self.playback is not None:
            self.playback.reconnect()

    # -- offline -------------------------------------------------------------------------------
    def render_array(self, seconds: float | None = None, *, samples: int | None = None,
                     progress=None, max_seconds: float = 3600.0):
        """Render from the current position, offline; returns (samples, channels) float32.

        Give ``seconds`` or an exact number of ``samples``; with neither, it renders until every
        voice has ended (an error if some voice loops). The samples are kept in memory, so at
        most :data:`ARRAY_MAX_S` of them (a file takes longer renders: ``render_to_file``).
        """
        total = render_total(self, seconds, samples)
        longest = max_seconds if total is None else total / self.sample_rate
        if is_real(longest) and longest > ARRAY_MAX_S:
            raise ParameterError(f"render_array keeps its samples in memory: at most {ARRAY_MAX_S:g} s, "
                                 f"not {longest:g} s; render longer ones to a file (render_to_file, "
                                 f"or livelatent render)")
        chunks = list(self.render_chunks(seconds, samples=samples, max_seconds=max_seconds,
                                         progress=progress))
        return np.concatenate(chunks) if chunks else np.zeros((0, self.channels), dtype=np.float32)

    def render_chunks(self, seconds: float | None = None, *, samples: int | None = None,
                      chunk_steps: int = 256, max_seconds: float = 3600.0, progress=None):
        """Yield rendered blocks until ``seconds`` (or ``samples``) are rendered, or all voices end."""
        total = render_total(self, seconds, samples)
        return render_chunks(self, total, chunk_steps=chunk_steps, max_seconds=max_seconds,
                             progress=progress, hooks=self._render_hooks)
