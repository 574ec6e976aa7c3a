"""Live playback: the audio process, the shared ring, the decode thread and its rewinds.

A :class:`Playback` drives an :class:`~.engine.Engine` through its public methods only. Its
decode thread keeps the ring a lookahead ahead of the listener, one step at a time through the
same ``advance`` as offline renders, and keeps a checkpoint of the timeline before each step.
A batch sent while it plays lands at the first step the audio device cannot have pulled yet;
if that step was decoded already, the thread lowers ``written``, rewinds the engine to its
checkpoint and decodes again from there. So a change is heard within a block or two, however
far ahead the engine decodes.

The stream itself is played by a separate small process (:mod:`.audio_process`), so nothing
this interpreter does (a long cell, a garbage collection) can stall the audio callback, and
PortAudio never runs here.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections import deque

from ..blas import hold_one_blas_thread, release_blas_threads
from ..errors import LiveLatentError
from .commands import Hush
from .output import AudioProcess, SharedRing

__all__ = ["Playback", "SWITCH_INTERVAL_S", "ANSWER_TIMEOUT_S"]

# While playing, Python threads hand the GIL over every millisecond instead of every 5: the
# decode thread must not wait behind a long stretch of someone else's Python.
SWITCH_INTERVAL_S = 0.001
ANSWER_TIMEOUT_S = 5.0


class _Landing:
    """A batch waiting for the decode thread to say where it lands."""

    __slots__ = ("batch", "done", "seq", "sample", "error")

    def __init__(self, batch):
        self.batch, self.done = batch, threading.Event()
        self.seq = self.sample = self.error = None


class Playback:
    """Plays ``engine`` through ``device`` (a name, index or host API name; None: the default
    output, else JACK's ``system``). :meth:`start` raises DeviceError and changes nothing when
    the device cannot play."""

    def __init__(self, engine, *, device=None, latency="low"):
        self.engine = engine
        self.device_spec = device
        self.latency = latency
        self.device: dict | None = None
        self.running = False
        self._ring: SharedRing | None = None
        self._process: AudioProcess | None = None
        self._thread: threading.Thread | None = None
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._accepting = threading.Lock()     # guards `running` against late landings
        self._stopping = threading.Event()
        self._checkpoints: dict = {}
        self._decode_seconds: deque = deque(maxlen=64)
        self._host_block = engine.blocksize
        self._lost_said = False

    # -- what readers ask ----------------------------------------------------------------------
    @property
    def heard(self) -> int:
        """The sample the listener is at: the first one not handed to the device yet."""
        return self._ring.read

    @property
    def underruns(self) -> int:
        return self._ring.underruns if self._ring is not None else 0

    def status(self) -> dict:
        spans = list(self._decode_seconds)
        rate, step = self.engine.sample_rate, self.engine.step
        load = sum(spans) / (len(spans) * step / rate) if spans else 0.0
        ring = self._ring
        return {"decode_load": load, "underruns": ring.underruns if ring else 0,
                "xruns": ring.xruns if ring else 0, "callback_load": ring.cpu_load if ring else 0.0,
                "device": (self.device or {}).get("name"), "lost": self._lost()}

    def _lost(self) -> bool:
        return self._process is not None and self._process.lost.is_set()

    # -- starting and stopping -----------------------------------------------------------------
    def start(self) -> "Playback":
        engine = self.engine
        step = engine.step
        with engine.timeline_lock():
            position = engine.position
            # the ring holds what is decoded and not heard: the lookahead (or what a render left
            # over), the step being written and what the device takes at once
            needed = max(engine.lookahead, engine.leftover_size) + 4 * step + 4 * engine.blocksize
            self._ring = SharedRing(1 << (needed - 1).bit_length())
            self._ring.reset(position)
            try:
                self._process = AudioProcess(self._ring, device=self.device_spec,
                                             samplerate=engine.sample_rate,
                                             blocksize=engine.blocksize, latency=self.latency)
                self.device = self._process.open()
            except BaseException:
                self._close_process()
                raise
            self._ring.unlink()                    # both sides have it mapped: leave no file
            # The host may pull more than one block at a time: PortAudio's JACK host asks for
            # a whole server period (4 blocks of 256 back to back on a 1024 period). A change
            # must land beyond what one such pull can take; the stream's latency says its size.
            self._host_block = max(engine.blocksize, int(round(self._process.latency * engine.sample_rate)))
            first = engine.timeline.checkpoint()
            leftover = engine.take_leftover()
            self._ring.write(position, leftover)
            self._ring.written = engine.timeline.step * step
            hold_one_blas_thread()
            engine.timeline.draw_noise_ahead(True)
            switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(switch_interval, SWITCH_INTERVAL_S))
            try:
                self._fill(position + engine.lookahead)    # the first blocks are ready at once
                self._process.start()
            except BaseException:
                engine.timeline.rewind(first)
                engine.give_leftover(leftover)
                self._restore_threads(switch_interval)
                self._close_process()
                raise
            self._switch_interval = switch_interval
            self.running = True
            engine.attach_playback(self)
            self._thread = threading.Thread(target=self._run, name="livelatent-decode", daemon=True)
            self._thread.start()
        return self

    def stop(self, *, fade: float = 0.0) -> None:
        """Stop (after fading out over ``fade`` seconds). The engine goes on offline from the
        listener: what was decoded ahead and not heard is taken back."""
        if not self.running:
            return
        engine = self.engine
        if fade > 0 and engine.voices():
            landed = engine.submit(Hush(int(fade * engine.sample_rate)))
            self.wait_heard(landed + int(fade * engine.sample_rate) + engine.window,
                            timeout=fade + 4 * engine.lookahead / engine.sample_rate + 0.5)
        with self._accepting:
            self.running = False
        self._stopping.set()
        self._inbox.put(None)
        self._thread.join()
        self._process.stop()
        with engine.timeline_lock():
            heard, step = self._ring.read, engine.step
            next_step = -(-heard // step)
            if next_step < engine.timeline.step:
                engine.timeline.rewind(self._checkpoints[next_step])
            engine.give_leftover(self._ring.samples(heard, next_step * step))
            self._checkpoints.clear()
            engine.detach_playback(self)
            self._answer_waiting_offline()
        self._restore_threads(self._switch_interval)
        self._close_process()

    def wait_heard(self, sample: int, *, timeout: float) -> bool:
        """Wait until the listener reaches ``sample`` (or ``timeout`` seconds pass)."""
        deadline = time.monotonic() + timeout
        while self._ring.read < sample and time.monotonic() < deadline and not self._lost():
            time.sleep(0.005)
        return self._ring.read >= sample

    def _restore_threads(self, switch_interval: float) -> None:
        self.engine.timeline.draw_noise_ahead(False)
        release_blas_threads()
        sys.setswitchinterval(switch_interval)

    def _close_process(self) -> None:
        if self._process is not None:
            self._process.kill()
        if self._ring is not None:
            self._ring.unlink()

    def _answer_waiting_offline(self) -> None:
        """Batches that arrived as playback stopped land offline, on the next step."""
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item.sample = self.engine.timeline.step * self.engine.step
                item.seq = self.engine.timeline.schedule(item.batch.commands, self.engine.timeline.step)
                item.done.set()

    # -- landing batches (any thread) ----------------------------------------------------------
    def land(self, batch):
        """Where ``batch`` lands, decided by the decode thread: ``(seq, sample)``, or None when
        playback has stopped (the engine then lands it offline)."""
        with self._accepting:
            if not self.running:
                return None
            item = _Landing(batch)
            self._inbox.put(item)
        if not item.done.wait(ANSWER_TIMEOUT_S):
            raise LiveLatentError("the engine's decode thread did not answer; the change was not applied")
        if item.error is not None:
            raise item.error
        return item.seq, item.sample

    # -- the decode thread ---------------------------------------------------------------------
    def _run(self) -> None:
        engine = self.engine
        poll = max(0.0005, engine.blocksize / engine.sample_rate / 4)
        while not self._stopping.is_set():
            try:
                item = self._inbox.get(timeout=poll)
            except queue.Empty:
                item = None
            if item is not None:
                self._land(item)
            try:
                self._fill(self._ring.read + engine.lookahead)
            except Exception as exc:   # never let the decode thread die silently
                engine.events.error(f"engine error: {type(exc).__name__}: {exc}")
                time.sleep(0.05)
            if self._lost() and not self._lost_said:
                self._lost_said = True
                engine.events.error(f"the audio device {(self.device or {}).get('name')!r} stopped")

    def _fill(self, until: int) -> None:
        """Decode step by step until ``until`` samples are ready."""
        engine, ring, step = self.engine, self._ring, self.engine.step
        while ring.written < until:
            current = engine.timeline.step
            self._checkpoints[current] = engine.timeline.checkpoint()
            began = time.perf_counter()
            block = engine.timeline.advance(1)
            self._decode_seconds.append(time.perf_counter() - began)
            ring.write(current * step, block)
            ring.written = (current + 1) * step
            oldest = ring.read // step - 1
            for old in [s for s in self._checkpoints if s < oldest]:
                del self._checkpoints[old]
            engine.timeline.forget_before(oldest)

    def _land(self, item: _Landing) -> None:
        """Schedule a batch at the first step the device cannot have pulled yet."""
        engine, ring, step = self.engine, self._ring, self.engine.step
        try:
            target = -(-(ring.read + self._host_block + step // 4) // step)
            at = item.batch.at
            if at is not None and -(-at // step) >= target:     # a later step, asked for
                target = -(-at // step)
            if target < engine.timeline.step:
                ring.written = min(ring.written, target * step)
                # the device may have moved on while we decided: never rewrite what it took
                target = max(target, -(-(ring.read + self._host_block) // step))
                if target < engine.timeline.step:
                    ring.written = target * step
                    engine.timeline.rewind(self._checkpoints[target])
                else:   # it is past everything decoded: land on the next step, no rewind
                    target = engine.timeline.step
                    ring.written = target * step
            elif at is None:
                target = engine.timeline.step
            item.seq = engine.timeline.schedule(item.batch.commands, target)
            item.sample = target * step
        except Exception as exc:      # the writer gets the error; the sound goes on
            item.error = exc
        finally:
            item.done.set()
