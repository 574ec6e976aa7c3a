"""Live playback: the decode thread, its checkpoints and rewinds, and the device connection.

A :class:`Playback` drives an :class:`~.engine.Engine` through its public methods only. Its
decode thread keeps the device a lookahead ahead of the listener, one step at a time through
the same ``Timeline.advance`` as offline renders, keeping a checkpoint of the timeline before
each step. A batch sent while it plays lands, once the step in hand is decoded (not after the
rest of the lookahead, but for the one decoded as the stream starts or comes back), at the first
step the device cannot have pulled yet; if that step was decoded already, the thread takes back
what the device has not played, rewinds the timeline to its checkpoint and decodes again from
there (:mod:`.landing`, a base of the playback). So a change is heard within a block or two,
however far ahead the engine decodes.

The stream plays in a separate small process (:mod:`.connection`, :mod:`.audio_process`), at
the device's own rate (the engine's output is resampled when they differ), so nothing this
interpreter does can stall the audio callback, and PortAudio never runs here.

A device that is lost (a JACK server that stops, an interface unplugged) ends its audio
process, not the session: the timeline pauses where the listener was, the outage is recorded,
and the playback tries the device again every second (or at once on :meth:`reconnect`),
going on from the listener when it answers.
"""

from __future__ import annotations

import queue
import threading
import time

import numpy as np

from ..blas import hold_one_blas_thread, release_blas_threads
from ..errors import DeviceError, LiveLatentError
from ..switching import hold_switch_interval, release_switch_interval
from .commands import Hush
from .connection import Connection
from .landing import Landings
from .overload import DecodeMeter, OverloadGuard
from .writers import Batch, default_origin

__all__ = ["Playback", "SWITCH_INTERVAL_S", "RECONNECT_EVERY_S"]

# While playing, Python threads hand the GIL over every millisecond instead of every 5: the
# decode thread must not wait behind a long stretch of someone else's Python.
SWITCH_INTERVAL_S = 0.001
RECONNECT_EVERY_S = 1.0
_HISTORY = 64              # engine samples kept before the listener (the resampler reads back)
_SAME_ERROR_EVERY_S = 5.0


class Playback(Landings):
    """Plays ``engine`` through ``device`` (a name, index or host API name; None: the default
    output, else JACK's ``system``). :meth:`start` raises DeviceError and changes nothing when
    the device cannot play."""

    def __init__(self, engine, *, device=None, latency="low", inputs: int = 0,
                 overload_guard: bool = True):
        self.engine = engine
        self.device_spec, self.inputs, self.latency = device, int(inputs), latency
        self.running = False
        self._link: Connection | None = None
        self._paused = None            # (heard, leftover, history) while the device is lost
        self._last_counters: dict = {}  # the closed device's counters (underruns, xruns)
        self._thread: threading.Thread | None = None
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()  # `running` and landings' fates change under it
        self._stopping = threading.Event()
        self._retry = threading.Event()
        self._checkpoints: dict = {}
        self.meter = DecodeMeter(engine.step / engine.sample_rate)
        self._guard = OverloadGuard(self) if overload_guard else None
        self._said: dict[str, float] = {}
        self._attached = False

    # -- what readers ask ----------------------------------------------------------------------
    @property
    def heard(self) -> int:
        """The engine sample the listener is at."""
        link, paused = self._link, self._paused
        return paused[0] if paused is not None or link is None else link.heard

    @property
    def connection(self) -> Connection | None:
        """The device connection now (None while the device is lost)."""
        return None if self._paused is not None else self._link

    @property
    def lost(self) -> bool:
        """Whether the device is lost (the music waits for it)."""
        return self._paused is not None

    @property
    def decoded_to(self) -> int:
        """Where the decoder has got to (a change landing there costs no re-decoding)."""
        link = self._link
        return link.fed if link is not None else self.heard

    @property
    def underruns(self) -> int:
        """Blocks the device found no samples for, since it last connected (or, once closed,
        in its last connection)."""
        return self.status()["underruns"]

    def status(self) -> dict:
        link = self._link
        counters = link.counters() if link is not None else self._last_counters
        return {"decode_load": self.meter.load(), "underruns": counters.get("underruns", 0),
                "xruns": counters.get("xruns", 0), "callback_load": counters.get("callback_load", 0.0),
                "device": ((link.device if link is not None else None) or {}).get("name"),
                "device_rate": link.rate if link is not None else None, "lost": self.lost}

    # -- starting and stopping -----------------------------------------------------------------
    def start(self) -> "Playback":
        engine = self.engine
        with engine.timeline_lock():
            if engine.playback is not None:
                raise LiveLatentError("this engine is already playing")
            link = self._connect()                       # DeviceError: nothing changed
            first = engine.timeline.checkpoint()
            position, leftover = engine.position, engine.handoff.take_leftover()
            hold_one_blas_thread()
            engine.timeline.work_ahead(True)
            hold_switch_interval(SWITCH_INTERVAL_S)
            try:
                self._begin(link, position, engine.handoff.recent(_HISTORY), leftover)
                engine.handoff.forget_spans()          # the timeline moves on live from here
                engine.attach_playback(self)
                self._attached = True
                self.running = True
                self._thread = threading.Thread(target=self._run, name="livelatent-decode", daemon=True)
                self._thread.start()
                if self._guard is not None:
                    self._guard.start()
            except BaseException:
                self.running = False
                if self._attached:
                    engine.detach_playback(self)
                    self._attached = False
                engine.timeline.rewind(first)
                engine.handoff.give_leftover(leftover)
                self._restore_threads()
                link.close()
                self._link = None
                raise
        return self

    def _connect(self) -> Connection:
        engine = self.engine
        link = Connection(device=self.device_spec, engine_rate=engine.sample_rate,
                          blocksize=engine.blocksize, ahead=engine.lookahead, latency=self.latency,
                          channels=engine.channels, inputs=self.inputs)
        link.open()
        return link

    def _begin(self, link: Connection, position: int, history: np.ndarray, leftover: np.ndarray) -> None:
        """Play from ``position`` on ``link``: what was rendered and not heard first, then a
        lookahead decoded at once, then the stream starts."""
        link.begin(position, history)
        link.feed(position, leftover)
        self._link = link
        self._checkpoints.clear()
        self._fill(until_batch=False)
        link.start()

    def stop(self, *, fade: float = 0.0) -> None:
        """Stop (after fading out over ``fade`` seconds). The engine goes on offline from the
        listener: what was decoded ahead and not heard is taken back."""
        if not self._attached:
            return
        engine = self.engine
        if fade > 0 and engine.voices() and self.running and not self.lost:
            samples = int(fade * engine.sample_rate)
            landed = engine.send(Batch(engine, default_origin(), commands=[Hush(samples)]))
            if landed is not None:
                self.wait_heard(landed + samples + engine.window,
                                timeout=fade + 4 * engine.lookahead / engine.sample_rate + 0.5)
        if self._guard is not None:
            self._guard.stop()
        with engine.timeline_lock():              # offline senders wait until it has stopped
            try:
                with self._lock:
                    self.running = False
                self._stopping.set()
                self._inbox.put(None)
                if self._thread is not None:
                    self._thread.join()
                self._pause()                      # the listener's place, what was not heard
                heard, leftover, history = self._paused
                engine.handoff.give_leftover(leftover)
                engine.handoff.replace_recent(history)
                self._answer_waiting_offline()
            finally:
                if self._attached:
                    engine.detach_playback(self)
                    self._attached = False
                self._restore_threads()

    def reconnect(self) -> None:
        """Try the device again now (the decode thread does it every second while it is lost)."""
        self._retry.set()

    def wait_heard(self, sample: int, *, timeout: float) -> bool:
        """Wait until the listener reaches ``sample`` (or ``timeout`` seconds pass)."""
        deadline = time.monotonic() + timeout
        while self.heard < sample and time.monotonic() < deadline and not self.lost:
            time.sleep(0.005)
        return self.heard >= sample

    def _restore_threads(self) -> None:
        self.engine.timeline.work_ahead(False)
        release_blas_threads()
        release_switch_interval(SWITCH_INTERVAL_S)

    def _pause(self) -> None:
        """Stop the device (if any) and take back what the listener did not hear: the timeline
        goes back to the listener's step, the rest of the step being heard becomes leftover."""
        if self._paused is not None:
            return
        link, engine = self._link, self.engine
        link.stop()
        heard, step = link.heard, engine.step
        next_step = -(-heard // step)
        leftover = link.taken_back(heard, min(next_step * step, link.fed))
        if next_step < engine.timeline.step:
            engine.timeline.rewind(self._checkpoints[next_step])
            if heard // step in self._checkpoints:       # the leftover can be made again (stems)
                engine.handoff.note_span(heard // step * step, self._checkpoints[heard // step])
        elif next_step * step > link.fed:          # the listener was past what was decoded
            leftover = leftover[:0]
        self._paused = (heard, leftover, link.recent(_HISTORY))
        self._checkpoints.clear()
        self._last_counters = link.counters()      # what the device saw, kept once it is closed
        link.close()
        self._link = None

    # -- the decode thread ---------------------------------------------------------------------
    def _run(self) -> None:
        engine = self.engine
        poll = max(0.0005, engine.blocksize / engine.sample_rate / 4)
        next_try = 0.0
        waiting = ()                             # landed, their writers not woken yet
        while not self._stopping.is_set():
            items = []
            try:
                items.append(self._inbox.get(timeout=poll))
                while True:                      # every batch waiting, before decoding again
                    items.append(self._inbox.get_nowait())
            except queue.Empty:
                pass
            landed = [item for item in items if item is not None]
            for item in landed:
                self._land(item)
            landed, waiting = [*waiting, *landed], ()
            try:
                if self._paused is None:
                    if self._link.lost:
                        self._lose_device()
                    else:
                        waiting = self._fill(writers=landed)
                else:
                    _answer(landed)            # landed offline: nothing to decode for them
                    if self._retry.is_set() or time.monotonic() >= next_try:
                        self._retry.clear()
                        next_try = time.monotonic() + RECONNECT_EVERY_S
                        self._try_device()
            except Exception as exc:   # never let the decode thread die silently
                self._say_error(f"engine error: {type(exc).__name__}: {exc}")
                time.sleep(0.05)
            finally:          # (unless carried to the next fill: woken once their steps are decoded)
                if waiting is not landed:
                    _answer(landed)
        _answer(waiting)

    def _fill(self, *, writers=(), until_batch: bool = True) -> tuple | list:
        """Decode step by step until a lookahead is ready, or until a batch is waiting to land
        (a decoder behind the listener never is ready, and the guard's relief, or a performer's
        change, would wait for it). ``writers``: the landings made, whose writers are woken once
        the steps the device's next two pulls may take, and the first step of each change, are
        decoded (see :mod:`.landing`): returns them all when not woken yet, else ().
        ``until_batch=False``: the whole lookahead, batches waiting or not (before the stream
        starts, or starts again)."""
        engine, link, step = self.engine, self._link, self.engine.step
        timeline = engine.timeline
        until = link.heard + engine.lookahead
        if writers:
            changes = [item.sample for item in writers          # (not one cancelled unlanded)
                       if item.sample is not None and item.error is None and item.batch.commands]
            urgent = max(link.untouchable() + self._pull(), min(until, max(changes, default=0) + step))
        while link.fed < until:
            if writers and link.fed >= urgent:
                writers = _answer(writers)
            current = timeline.step
            began = self.meter.begin()
            self._checkpoints[current] = timeline.checkpoint()
            block = timeline.advance(1)
            link.feed(current * step, block)
            self.meter.end(began)
            oldest = link.heard // step - 1
            for old in [s for s in self._checkpoints if s < oldest]:
                del self._checkpoints[old]
            timeline.forget_before(oldest)
            if until_batch and not self._inbox.empty():     # land it before the next step
                return writers if not writers or link.fed < urgent else _answer(writers)
        return _answer(writers)

    # -- a lost device ---------------------------------------------------------------------------
    def _lose_device(self) -> None:
        engine = self.engine
        name = ((self._link.device or {}).get("name")) or "the audio device"
        self._pause()
        heard = self._paused[0]
        engine.note_outage(heard, lost=True)
        engine.events.error(f"{name!r} stopped at {heard / engine.sample_rate:.2f} s: the music "
                            f"waits for it (tried again every second; reconnect() tries now)")

    def _try_device(self) -> None:
        try:
            link = self._connect()
        except DeviceError:
            return                                 # not back yet
        heard, leftover, history = self._paused
        try:
            self._begin(link, heard, history, leftover)
        except BaseException:
            link.close()
            self._link = None
            raise
        self._paused = None
        self.engine.handoff.forget_spans()
        self.engine.note_outage(heard, lost=False)
        self.engine.events.info(f"{(link.device or {}).get('name')!r} is back: playing on from "
                                f"{heard / self.engine.sample_rate:.2f} s")

    def _say_error(self, text: str) -> None:
        now = time.monotonic()
        if now - self._said.get(text, -1e9) >= _SAME_ERROR_EVERY_S:
            self._said[text] = now
            self.engine.events.error(text)


def _answer(landings) -> tuple:
    """Wake the writers of ``landings`` (each landing is decided already); nothing is left to
    answer."""
    for item in landings:
        item.done.set()
    return ()
