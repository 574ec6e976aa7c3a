"""Live playback: the device stream, the decode thread, and rewinds.

:class:`LivePlayback` is the live half of :class:`~livelatent.engine.engine.Engine` (a mixin:
it works on the engine's own state). The decode thread keeps the ring buffer a lookahead ahead
of the audio callback, one step at a time through the same ``_advance`` as offline renders,
and keeps a snapshot of the engine's state before each step. A command lands at the first step
the host cannot have pulled yet; if that step was decoded already, the thread lowers
``written``, restores the snapshot and decodes again from there ("rewind").
"""

from __future__ import annotations

import queue
import sys
import threading
import time

from ..blas import hold_one_blas_thread, release_blas_threads
from .callback import RingBuffer
from .commands import Command, VoiceRuntime

__all__ = ["LivePlayback"]


# While playing, Python threads hand the GIL over every millisecond instead of every 5: the
# audio callback and the decode thread must not wait behind a long stretch of someone else's
# Python (measured: one underrun in 30 s with 32 voices at the default interval, decode load 0.46).
SWITCH_INTERVAL_S = 0.001


class LivePlayback:
    """Start/stop live playback and run the decode thread (mixed into Engine)."""

    def start(self, device=None, *, blocksize: int | None = None):
        """Open the audio device and play. ``device`` is a name, index or host API name."""
        if self._running:
            return self
        from ..sinks.device import open_output_stream
        if blocksize is not None:
            self.blocksize = int(blocksize)
        with self._render_lock:
            position = self.position     # a render may have left part of a step unplayed
            # the ring holds what is decoded and not yet played: the lookahead (or what a
            # render left over) and the step being written
            needed = max(self.lookahead, self._leftover.shape[0]) + 2 * self.step
            if needed > self._ring.capacity:
                self._ring = RingBuffer(1 << (needed - 1).bit_length())
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
            hold_one_blas_thread()
            self._switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL_S))
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
        release_blas_threads()
        sys.setswitchinterval(self._switch_interval)
        # carry on offline from where the listener is: what was decoded ahead but not heard is
        # taken back (the state before the first step not begun), the rest of the step being
        # heard is kept as leftover
        heard, next_step = self._ring.read, -(-self._ring.read // self.step)
        if next_step < self._step_pos:
            self._rewind(next_step)
        self._leftover = self._ring.samples(heard, next_step * self.step)
        self._snapshots.clear()

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
            self._decode_seconds.append(time.perf_counter() - began)
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
                step = max(step, -(-(self._ring.read + self._host_block) // self.step))
                if step < self._step_pos:
                    self._ring.written = step * self.step
                    self._rewind(step)
                else:        # it is past everything decoded: land on the next step, no rewind
                    step = self._step_pos
                    self._ring.written = step * self.step
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
        self._voices = {i: VoiceRuntime.restore(snap, caches.get(i, {})) for i, snap in voices.items()}
        self._pending = pending
        self._sound_end = sound_end
        self._step_pos = step
        for later in [s for s in self._snapshots if s > step]:
            del self._snapshots[later]

    def _forget_before(self, sample: int) -> None:
        oldest = sample // self.step - 1
        for old in [s for s in self._snapshots if s < oldest]:
            del self._snapshots[old]
