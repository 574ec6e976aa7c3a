"""Where a batch sent during playback lands, decided on the decode thread.

A writer's batch waits in the playback's inbox for the decode thread, which lands it at the
first step the device cannot have pulled yet and that it can decode again in time:
if that step was decoded already, the device's queue and the timeline are taken back to it.
A batch for a later sample lands there; one that only reads lands where the decoder is. The
writer waits for the answer, or for the error the landing met; batches that arrive as playback
stops land offline.

The writers are woken only once the steps the device's next pulls may take, and the first step
of their change, are decoded again, so their Python (journaling, sending the next value) does
not compete with the decode thread for the interpreter while those are due.

:class:`Landings` is a base of :class:`~.playback.Playback`, which owns the state it uses: the
inbox, the lock that guards ``running`` and each landing's fate, the device link and the
checkpoints.
"""

from __future__ import annotations

import math
import queue
import threading

from ..errors import LiveLatentError

__all__ = ["Landings"]


class _Landing:
    """A batch waiting for the decode thread to say where it lands."""

    __slots__ = ("batch", "done", "seq", "sample", "error", "cancelled", "decided")

    def __init__(self, batch):
        self.batch, self.done = batch, threading.Event()
        self.seq = self.sample = self.error = None
        self.cancelled = False
        self.decided = False     # landed (or failed), under the lock; `done` wakes the writer later


class Landings:
    """Landing the batches sent while playing (a base of :class:`~.playback.Playback`)."""

    def land(self, batch):
        """Where ``batch`` lands, decided by the decode thread: ``(seq, sample)``, or None when
        playback has stopped (the engine then lands it offline)."""
        with self._lock:
            if not self.running:
                return None
            item = _Landing(batch)
            self._inbox.put(item)
        try:
            while not item.done.wait(0.25):
                thread = self._thread
                if thread is not None and not thread.is_alive() and not self._stopping.is_set():
                    with self._lock:
                        if not item.decided:
                            item.cancelled = True
                            raise LiveLatentError("the engine's decode thread has stopped; "
                                                  "the change was not applied")
                    break                          # it landed before the thread stopped
        except KeyboardInterrupt:
            with self._lock:
                if not item.decided:
                    item.cancelled = True          # it will never land
                    raise
            batch.seq, batch.landed_at = item.seq, item.sample
            raise                                  # it landed: the engine records it first
        if item.error is not None:
            raise item.error
        return item.seq, item.sample

    def _land(self, item: _Landing) -> None:
        """Schedule a batch at the first step the device cannot have pulled yet and that can be
        decoded again in time. The caller sets ``item.done`` (wakes its writer) afterwards."""
        engine, step = self.engine, self.engine.step
        timeline = engine.timeline
        with self._lock:
            if item.cancelled:
                return
            try:
                at = item.batch.at
                if self._paused is not None:       # the device is lost: land where the music waits
                    engine.land_offline(item.batch, late_ok=True)
                    item.seq, item.sample = item.batch.seq, item.batch.landed_at
                    return
                link = self._link
                target = self._first_safe_step(link.untouchable())
                if at is not None and -(-at // step) >= target:     # a later step, asked for
                    target = -(-at // step)
                if not item.batch.commands:        # it only reads (a mapping's examples): where
                    target = max(target, timeline.step)   # the decoder is, nothing decoded again
                elif target < timeline.step:
                    link.rewind(target * step)
                    # the device may have moved on while we decided: never redo what it took
                    target = max(target, -(-link.untouchable() // step))
                    if target < timeline.step:
                        timeline.rewind(self._checkpoints[target])
                    else:   # it is past everything decoded: land on the next step, no rewind
                        target = timeline.step
                        link.rewind(target * step)
                elif at is None:
                    target = timeline.step
                item.seq = timeline.schedule(item.batch.commands, target)
                item.sample = target * step
            except Exception as exc:      # the writer gets the error; the sound goes on
                item.error = exc
            finally:
                item.decided = True

    def _first_safe_step(self, untouchable: int) -> int:
        """The first step a change can land on and still be decoded again before the device
        takes it. The device takes a host block a pull, a host period apart, and the pull that
        takes engine sample ``untouchable`` comes one period from now at the soonest. The k-th
        step decoded again must be ready by the pull that takes its first sample, with one more
        step's decode to spare: ``k + 1`` times a recent step's decode (half a step's time
        each before any step was timed). A decoder slower than that lands two steps on."""
        engine, step = self.engine, self.engine.step
        first = -(-untouchable // step)
        longest = self.meter.longest_recent()
        cost = step / 2 if longest is None else longest * engine.sample_rate   # samples of time
        pull = self._pull()
        if cost >= step:                            # it falls behind whatever it does
            return first + 2
        # past this many steps the decoding gains on the device for good (a step decodes in
        # less than its own time), so no later step can miss its pull
        checks = max(int(2 * pull // step) + 3, math.ceil((cost + step) / (step - cost)))
        for target in range(first, first + 2):
            ahead = target * step - untouchable     # from the first sample that pull takes
            if all((k + 1) * cost <= ((ahead + (k - 1) * step) // pull + 1) * pull
                   for k in range(1, checks + 1)):
                return target
        return first + 2

    def _pull(self) -> float:
        """The engine samples one pull of the device may take."""
        return self._link.host_block * self.engine.sample_rate / self._link.rate

    def _answer_waiting_offline(self) -> None:
        """Batches that arrived as playback stopped land offline, on the next step (or theirs)."""
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if item is None:
                continue
            with self._lock:
                if item.cancelled:
                    continue
                self.engine.land_offline(item.batch, late_ok=True)
                item.seq, item.sample = item.batch.seq, item.batch.landed_at
                item.decided = True
            item.done.set()
