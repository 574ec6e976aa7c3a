"""Timed changes: ``at(beat, fn)`` and ``every(beats, fn)``.

A timer runs a performer's function a little ahead of a beat, in a batch that lands exactly on
that beat (on the step it falls in, like ``quant="beat"``), journaled with origin ``timer``
like any other writer's changes. A replay applies the journaled changes and never calls the
function.

Timers read the wall clock, so they live above the engine and only send it batches:

- while the engine plays, a scheduler thread (never the decode thread) runs each function
  :data:`LEAD_S` before its beat;
- offline, the render asks the timers, before each chunk, to run what falls in it
  (``Engine.add_render_hook``), so ``livelatent render`` of a script with timers gives what
  ``livelatent play`` of it gives.

``at`` and ``every`` return a :class:`Timer`, whose ``cancel()`` drops it; ``hush()`` drops them
all. A timer belongs to whatever set it: a pattern file's run (:meth:`Timers.owned_by`) or the
timer whose function set it. When a pattern file runs again, its new timers replace those its
previous run set, as its voices do; a run that fails leaves the old ones and sets none.

A function that raises is reported once and dropped (an ``every`` stops repeating); so is one
still running after :data:`RUN_LIMIT_S`, live or in a render (a loop that never ends would hold
up every later timer, or never let a render end): it is interrupted (:class:`~livelatent.deadline.Deadline`), and what it changed before
lands, as for one that raises. A timer may set timers from its own beat on; past
:data:`MAX_PER_STEP` of them on one step the rest are dropped and said so (one setting itself
again on its own beat would otherwise run for ever, and the render with it).
"""

from __future__ import annotations

import contextlib
import heapq
import inspect
import itertools
import math
import threading
import weakref

from .deadline import Deadline, interruptible
from .errors import ParameterError, check_number, described, is_whole
from .services import EngineService

__all__ = ["Timers", "Timer", "LEAD_S", "RUN_LIMIT_S", "MAX_PER_STEP"]

LEAD_S = 0.3          # how long before its beat a timer's function runs, when playing
RUN_LIMIT_S = 10.0    # live, a function still running after this long is interrupted
MAX_PER_STEP = 1000   # timers run on one engine step at most (the rest are dropped)
_POLL_S = 0.005
_IDLE_POLL_S = 0.25


class _Job:
    __slots__ = ("beat", "fn", "period", "left", "name", "owner", "cancelled")

    def __init__(self, beat, fn, period, left, name, owner):
        self.beat, self.fn, self.period, self.left, self.name = beat, fn, period, left, name
        self.owner, self.cancelled = owner, False


class Timer:
    """What ``at`` and ``every`` return: ``t.cancel()`` drops the timer (an ``every`` repeats no
    more). A replay's timers are inert ones: their changes come from the journal."""

    __slots__ = ("_job", "_timers")

    def __init__(self, job: _Job | None = None, timers: "Timers | None" = None):
        self._job, self._timers = job, timers

    def cancel(self) -> None:
        if self._timers is not None:
            self._timers._drop([self._job])

    @property
    def active(self) -> bool:
        """Whether it will run again."""
        return self._timers is not None and self._job in self._timers._live

    def __repr__(self) -> str:
        job = self._job
        if job is None:
            return "<timer (inert: set in a replay, whose changes come from the journal)>"
        every = "" if job.period is None else f", every {job.period:g} beats"
        state = f"next at beat {job.beat:g}" if self.active else "done"
        return f"<timer {job.name}: {state}{every}>"


class Timers(EngineService):
    """The timers of one engine (see the module docstring). Get it with :meth:`of`."""

    def __init__(self, engine):
        self._engine = weakref.ref(engine)
        self._jobs: list = []                  # heap of (beat, order, job)
        self._order = itertools.count()
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._running = threading.local()      # .beat, .owner: of the job this thread runs
        self._live: set = set()                # jobs that will run (in the heap, or running)
        self._step_counted, self._runs_on_step = -1, 0        # see _crowded
        engine.add_render_hook(self._run_due_offline)

    # -- what performers call ------------------------------------------------------------------
    def at(self, beat, fn) -> Timer:
        beat = check_number(beat, name="beat", low=0.0, high=1e9, meaning="of beats from 0")
        return self._add(beat, fn, None, 1)

    def every(self, beats, fn, *, start=None, times=None) -> Timer:
        period = check_number(beats, name="beats", low=1 / 64, high=1e6, meaning="of beats from 1/64")
        if times is not None and (not is_whole(times) or times < 1):          # (True is not 1)
            raise ParameterError(f"times={times!r} must be a whole number from 1, or None (forever)")
        if start is None:
            now = self._now_beat()
            start = math.ceil(now / period - 1e-9) * period
        start = check_number(start, name="start", low=0.0, high=1e9, meaning="of beats from 0")
        return self._add(start, fn, period, times)

    def cancel(self) -> None:
        """Drop every timer."""
        with self._lock:
            self._drop(list(self._live))

    @property
    def count(self) -> int:
        return len(self._live)

    @contextlib.contextmanager
    def owned_by(self, owner):
        """The timers set in this block (in this thread) belong to ``owner``, as this run of it
        (a token the timers they set inherit). When the block ends without an error they replace
        those of ``owner``'s earlier runs, the ones their timers set meanwhile too (a pattern file
        run again); when it raises, this run's are dropped and the old ones stay (a failing file
        changes nothing)."""
        outer = getattr(self._running, "owner", None)
        run = (owner, object())
        self._running.owner = run
        try:
            yield
        except BaseException:
            with self._lock:
                self._drop([job for job in self._live if job.owner is run])
            raise
        else:
            with self._lock:
                self._drop([job for job in self._live if job.owner is not None
                            and job.owner[0] == owner and job.owner is not run])
        finally:
            self._running.owner = outer

    def _drop(self, jobs) -> None:
        """These jobs run no more (one running now is not set again)."""
        with self._lock:
            for job in jobs:
                job.cancelled = True
                self._live.discard(job)
            self._jobs = [entry for entry in self._jobs if not entry[2].cancelled]
            heapq.heapify(self._jobs)

    def _add(self, beat: float, fn, period, left) -> Timer:
        if not callable(fn):
            raise ParameterError(f"{fn!r} is not a function: give one to call, e.g. lambda: v.set(gain=0.5)")
        if inspect.iscoroutinefunction(fn) or inspect.isgeneratorfunction(fn) \
                or inspect.isasyncgenfunction(fn):
            raise ParameterError(f"{getattr(fn, '__qualname__', fn)} is an async or generator "
                                 f"function: calling it runs none of its body; give a plain one")
        try:                                # (it was dropped at its first beat, a TypeError)
            inspect.signature(fn, follow_wrapped=False).bind()    # (a decorator may supply them)
        except TypeError:
            raise ParameterError(f"{getattr(fn, '__qualname__', fn)} takes arguments: a timer calls "
                                 f"its function with none (lambda: ...)") from None
        except ValueError:                  # (no signature to read: a builtin; it is tried then)
            pass
        now = self._now_beat()
        if beat < now - 1e-9:
            raise ParameterError(f"beat {beat:g} has passed (the music is at beat {now:.2f})")
        name = getattr(fn, "__qualname__", None) or repr(fn)
        job = _Job(beat, fn, period, left, name, getattr(self._running, "owner", None))
        with self._lock:
            heapq.heappush(self._jobs, (beat, next(self._order), job))
            self._live.add(job)
        self._ensure_thread()
        return Timer(job, self)

    def _running_beat(self) -> float | None:
        """The beat of the timer this thread is running, if any."""
        return getattr(self._running, "beat", None)

    def _now_beat(self) -> float:
        """Where the music is: the engine's position, or the beat of the timer this thread runs
        (offline the position is the start of the chunk that timer falls in)."""
        engine = self._engine()
        now = float(engine.clock.beats(engine.position)) if engine is not None else 0.0
        running = self._running_beat()
        return now if running is None else max(now, running)

    # -- running them --------------------------------------------------------------------------
    def _next_due(self, engine, horizon: int):
        """Pop the earliest job if its beat falls before sample ``horizon``: (sample, job) or None."""
        clock = engine.intended().clock
        with self._lock:
            if not self._jobs:
                return None
            beat, _, job = self._jobs[0]
            sample = int(math.ceil(clock.sample_at_beat(beat) - 1e-6))
            if sample >= horizon:
                return None
            heapq.heappop(self._jobs)
            return sample, job

    def _crowded(self, engine, sample: int, job: _Job) -> bool:
        """Whether :data:`MAX_PER_STEP` timers have run on the step of ``sample`` already (then
        ``job`` is dropped, and said so): a timer setting itself again on its own beat, or two
        setting each other, would run for ever, the render never ending."""
        step = sample // engine.step
        if step != self._step_counted:
            self._step_counted, self._runs_on_step = step, 0
        self._runs_on_step += 1
        if self._runs_on_step <= MAX_PER_STEP:
            return False
        engine.events.error(f"timer {job.name} at beat {job.beat:g}: more than {MAX_PER_STEP} "
                            f"timers ran on one step (a timer setting itself again on its own "
                            f"beat?): it is dropped")
        self._drop([job])
        return True

    def _run(self, engine, sample: int, job: _Job) -> None:
        # live on the timers' thread, offline in the render's caller: either way within a
        # deadline, so a render drops a function that never returns as playing it does (a script
        # rendered unattended would otherwise never end)
        if job.cancelled:             # (taken off the heap just before a cancel, a hush, a reload)
            return
        deadline = Deadline(RUN_LIMIT_S)
        outer, self._running.beat = self._running_beat(), job.beat
        outer_owner, self._running.owner = getattr(self._running, "owner", None), job.owner
        try:
            with engine.batch(origin="timer", at=max(sample, engine.position)):
                with deadline:
                    job.fn()
        except BaseException as exc:   # noqa: BLE001 - reported once; the music goes on (an
            # exit() or a GeneratorExit in a timer would otherwise end the scheduler thread, and
            # every other timer with it)
            self._drop([job])
            if isinstance(exc, KeyboardInterrupt) and deadline.fired:
                engine.events.error(f"timer {job.name} at beat {job.beat:g}: still running after "
                                    f"{deadline.seconds:g} s: interrupted; it is dropped")
            elif isinstance(exc, KeyboardInterrupt) and interruptible():
                raise                  # Ctrl-C (in the main thread: an offline render's timer)
            else:
                engine.events.error(f"timer {job.name} at beat {job.beat:g}: {described(exc)}; "
                                    f"it is dropped")
            return
        finally:
            deadline.leave()        # (an interrupt raised inside its __exit__ left it half-done)
            self._running.beat, self._running.owner = outer, outer_owner
        with self._lock:
            if job.cancelled:                 # (cancelled while it ran)
                return
            if job.period is not None and (job.left is None or job.left > 1):
                job.beat += job.period
                job.left = None if job.left is None else job.left - 1
                heapq.heappush(self._jobs, (job.beat, next(self._order), job))
            else:
                self._live.discard(job)

    def _run_due_offline(self, engine, first: int, end: int) -> None:
        """Render hook: run what falls in ``[first, end)`` before it is rendered (an ``every``
        may fall there several times)."""
        while (due := self._next_due(engine, end)) is not None:
            sample, job = due
            if not self._crowded(engine, max(sample, first), job):
                self._run(engine, max(sample, first), job)

    def _ensure_thread(self) -> None:
        with self._lock:
            thread = self._thread
            if thread is None or not thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="livelatent-timers", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            engine = self._engine()
            if engine is None:
                return
            playing = engine.playing
            if playing:
                horizon = engine.position + int(LEAD_S * engine.sample_rate)
                while (due := self._next_due(engine, horizon)) is not None:
                    if not self._crowded(engine, *due):
                        self._run(engine, *due)
            del engine
            with self._lock:
                if not self._jobs:
                    self._thread = None
                    return
            self._wake.wait(_POLL_S if playing else _IDLE_POLL_S)   # offline, renders run them
