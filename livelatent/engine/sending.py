"""The writers' side of an :class:`~.engine.Engine`: commands in, batches landed, recorders told.

Writers, from any thread, submit commands into their open :class:`~.writers.Batch` or send a
batch of their own. Every command of a batch lands on one step: offline, the timeline's next
step to render (or the batch's later ``at``); live, where the playback decides. The recorders
(the session's journal) check each batch before it is sent and are told where it landed, and
hear of device outages. A sealed engine takes only a replay's own batches.

:class:`Sending` is a base of :class:`~.engine.Engine`, which owns the state it uses: the
timeline, the playback, the frame arena, the voice numbers and the lock offline senders take.
"""

from __future__ import annotations

import contextlib

from ..errors import ParameterError
from .commands import COMMAND_TYPES, AddVoice, Command, SetVoice, check_quant
from .writers import Batch, current_batch, default_origin

__all__ = ["Sending"]


class Sending:
    """Sending batches to an engine, and the recorders that hear of them (a base of
    :class:`~.engine.Engine`)."""

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
        self.timeline.slow_blocks.replay_over()

    @property
    def sealed(self) -> bool:
        """Whether this engine plays only a replay's batches (see :meth:`seal`)."""
        return self._sealed_by is not None

    def note_outage(self, sample: int, *, lost: bool) -> None:
        """The device was lost (or came back) with the listener at ``sample``: recorders that
        keep a record of it are told."""
        for recorder in list(self._recorders):
            outage = getattr(recorder, "outage", None)
            if outage is not None:
                outage(sample, lost=lost)

    def note_slow_block(self, key: str, params, window: int) -> None:
        """A block of ``params``' performer code ran past its deadline (see
        :mod:`.slow_blocks`), from ``window`` on: recorders that keep a record of it are told.
        Called on the thread that found it (the decode thread, or the one working ahead)."""
        for recorder in list(self._recorders):
            slow = getattr(recorder, "slow_block", None)
            if slow is not None:
                slow(key, params.index, window)
