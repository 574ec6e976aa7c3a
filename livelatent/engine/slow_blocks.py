"""Blocks whose performer code turned slow: interrupted once live, journaled, replayed the same.

A voice's block of channels (:func:`~.channels_ahead.block_values`, 256 windows) calls the
performer's Python when one of its curves holds a ``curve(fn)`` (its own, its last good one, its
path's or its sources'). A new curve is timed before it plays (:mod:`livelatent.checks`), but a
function may turn slow later (``lambda t: heavy(t) if t > 64 else 0.5``), or never return; the
block is worked out on the thread working ahead, or on the decode thread, and either would hold
up the sound for as long as it ran.

So such a block is worked out under a :class:`~livelatent.deadline.Deadline`: :data:`LIVE_LIMIT_S`
live (half the REPL's lookahead; a curve that passed its check takes at most 8 ms a block), and
:data:`OFFLINE_LIMIT_S` in a render (as a timer's run, so a function that never returns cannot
hang it). A block stopped there (even if the function caught the interrupt and returned) plays
as a failing curve would, from its first window: a curve voice goes back to its last good curve,
or holds 0.5 when that is the slow one or fails there too; a path voice, or a voice whose
sources' curves are the code, holds at the latent origin; one warning says so.

How long code takes depends on the machine, so the outcome is decided once per block and kept:
keyed by what the block's values depend on besides the code (:func:`block_key`: the voice, the
block, where its curves and sources start, the tempo map and the histories of the controllers
it reads), told to the engine's recorders (the journal writes a ``slow`` record) and consulted
before any block is worked out. The first outcome wins, on either thread: a block that passed
runs again (after a rewind) with no deadline, and one found slow never runs again. A replay is
handed the journal's keys (:meth:`SlowBlocks.replay`): it never runs a recorded block, and runs
the others under the render's deadline, which a block that played live in under the live one
does not reach; so the set renders what was heard on any machine, and only a block never heard
(past the end of the performance, or of parameters a moving controller replaced before live
worked them out) can be stopped there.

A block is found slow only when its thread spent at least half the deadline computing: one
stopped while its thread mostly waited (for the GIL, which a cell holds through a long C call,
or for a core another program took) is tried again on the worker, up to :data:`_TRIES` times, so
a moment's load does not change what plays there; a load that lasts through the tries does. The
decode thread, which needs the block at once, tries once; and a block the worker has been on
past all its tries (stuck in a C call, where no deadline reaches: a long ``time.sleep``, a
network read) is slow there without being run again.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict

from ..curves import Curve
from ..deadline import Deadline

__all__ = ["SlowBlocks", "block_key", "runs_code", "LIVE_LIMIT_S", "OFFLINE_LIMIT_S"]

LIVE_LIMIT_S = 0.1        # a block of performer code past this, live, is interrupted
OFFLINE_LIMIT_S = 10.0    # ... in a render (as a timer's run), a replay's too
_PASSED_KEPT = 65536      # blocks that passed, remembered (a rewind works a recent one out again)
_TRIES = 3                # a block stopped while its thread mostly waited is tried again


def runs_code(params) -> bool:
    """Whether working out ``params``' blocks calls a performer's Python function (a
    ``curve(fn)`` anywhere in its curves, its path's or its sources')."""
    curves = [params.curve, params.good_curve]
    if params.path is not None:
        curves += params.path.curves()
    for source in (params.a, params.b):
        curves.append(getattr(source, "position", None))
        curves += [offset.amount for offset in getattr(source, "offsets", ())]
    return any(isinstance(curve, Curve) and curve.calls_python for curve in curves)


def _plain(value):
    """``value`` with its numbers as Python's (numpy's reprs differ from Python's)."""
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    return float(value)


def block_key(params, block: int, clock) -> str:
    """What a block's values depend on besides the code itself, as a short stable text: the
    same live and in a replay (which rebuilds the same parameters from the journal)."""
    controls = params.controls or {}
    read = sorted(params.plan.controls) if params.plan is not None else sorted(controls)
    held = None if params.held is None else params.held[0]
    parts = (params.index, block, params.start, params.curve_start, params.good_curve_start,
             params.sources_start, params.curve is params.good_curve, held,
             _plain(clock.segments),
             tuple((str(name), controls[name].digest if name in controls else None) for name in read))
    return hashlib.blake2b(repr(_plain(parts)).encode(), digest_size=12).hexdigest()


class SlowBlocks:
    """The blocks of performer code that ran past their deadline, and the running of them.

    :attr:`limit_s` is the deadline. ``on_slow(key, params, window)`` is told of each block
    found slow here (not of those a replay was handed), on the thread that found it.
    ``instead(limit)`` is told the deadline the block ran past (live's, for a replay's keys)."""

    def __init__(self):
        self.limit_s: float = OFFLINE_LIMIT_S
        self.on_slow = None
        self._slow: dict[str, float] = {}        # key -> the deadline it ran past
        self._passed: OrderedDict[str, None] = OrderedDict()
        self._replayed: set[str] = set()     # a replay's keys not met yet
        self._replaying = False
        self._live = False
        self._lock = threading.Lock()

    def replay(self, keys) -> None:
        """A replay: the blocks a performance found slow (its journal's keys) are never run.
        Any other runs under the render's deadline, live or not, until :meth:`replay_over`: it
        played live in less than the live one, and only a block never heard (past where the
        performance ended) may run longer."""
        with self._lock:
            self._slow.update((key, LIVE_LIMIT_S) for key in keys)
            self._replayed.update(keys)
        self._replaying = True
        self._set_limit()

    def replay_over(self) -> None:
        """The engine plays on from where a replay left it (a resumed set): the live deadline
        again, the replayed keys kept."""
        self._replaying = False
        self._set_limit()

    def not_met(self) -> set[str]:
        """The replay's keys no block has matched so far."""
        with self._lock:
            return set(self._replayed)

    def live(self, live: bool) -> None:
        """Live playback's deadline, or a render's."""
        self._live = live
        self._set_limit()

    def _set_limit(self) -> None:
        self.limit_s = LIVE_LIMIT_S if self._live and not self._replaying else OFFLINE_LIMIT_S

    def _decided(self, key: str):
        """The deadline it ran past (slow), False (it passed), or None (not decided yet)."""
        with self._lock:
            if key in self._slow:
                self._replayed.discard(key)
                return self._slow[key]
            return False if key in self._passed else None

    def run(self, params, block: int, clock, work, instead, window: int, *,
            elsewhere_s: float = 0.0, tries: int | None = None):
        """``work()``, or ``instead()`` when the block of ``params`` at ``block`` is (or turns
        out, past the deadline) slow; ``window`` is where it starts playing (for the record).
        ``elsewhere_s``: how long another thread has been working this very block out. Past
        all its tries' deadlines it is stuck where no deadline reaches (a C call: a long
        ``time.sleep``, a network read): the block is slow, and not run here too. ``tries``:
        1 where the block is needed now (the decode thread), which must not wait for it again;
        None: :data:`_TRIES`."""
        key = block_key(params, block, clock)
        decided = self._decided(key)
        if decided is not None:          # as it played: with no deadline when it passed
            return instead(decided) if decided else work()
        limit = self.limit_s
        result = None
        for _ in range(0 if elsewhere_s > _TRIES * limit else tries or _TRIES):
            result, busy = _within(limit, work)
            if result is not None or busy or self._decided(key) is not None:
                break
        with self._lock:
            if key in self._passed or key in self._slow:    # the other thread decided meanwhile
                slow, new = key in self._slow, False
            else:
                slow, new = result is None, result is None
                if slow:
                    self._slow[key] = limit
                else:
                    self._passed[key] = None
                    if len(self._passed) > _PASSED_KEPT:
                        self._passed.popitem(last=False)
        if new and self.on_slow is not None:
            self.on_slow(key, params, window)
        if not slow:
            return result if result is not None else work()     # (it passed on the other thread)
        return instead(self._slow[key])


def _within(limit: float, work):
    """``(work(), True)``, or ``(None, busy)`` when the deadline stopped it (even if the code
    caught the interrupt and returned); ``busy``: its thread spent at least half the time
    computing (the code is slow), rather than waiting for the GIL (a cell holding it in a C
    call) or for a core (another program)."""
    deadline = Deadline(limit)
    began = time.thread_time()
    result = None
    try:
        with deadline:
            result = work()
    except KeyboardInterrupt:
        if not deadline.fired:
            raise                           # Ctrl-C, or the code's own: not the deadline
    finally:
        deadline.leave()                    # (out of this thread's deadlines, whatever happened)
    if deadline.fired:
        return None, time.thread_time() - began >= limit / 2
    return result, True
