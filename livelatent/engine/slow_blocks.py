"""Blocks whose performer code turned slow: interrupted once live, journaled, replayed the same.

A voice's block of channels (:func:`~.channels_ahead.block_values`, 256 windows) runs the
performer's Python when one of its curves is a ``curve(fn)`` (its own, its last good one, its
path's or its sources'). A new curve is timed before it plays (:mod:`livelatent.checks`), but a
function may turn slow later (``lambda t: heavy(t) if t > 64 else 0.5``), or never return; the
block is worked out on the thread working ahead, or on the decode thread, and either would hold
up the sound for as long as it ran.

So such a block is worked out under a :class:`~livelatent.deadline.Deadline`: :data:`LIVE_LIMIT_S`
live (half the REPL's lookahead; a curve that passed its check takes at most 8 ms a block), and
:data:`OFFLINE_LIMIT_S` in a render of a script (as a timer's, so a function that never returns
cannot hang it). A block interrupted there plays as a failing curve would, from its first
window: a curve voice goes back to its last good curve (or holds 0.5 when that is the one that
is slow, or slow too), a path voice holds at the latent origin, and one warning says so.

How long code takes depends on the machine, so the outcome is decided once per block and kept:
keyed by everything the block's values depend on (:func:`block_key`: the voice, the block, where
its curves and sources start, the tempo map and the controllers' histories), told to the
engine's recorders (the journal writes a ``slow`` record) and consulted before any block is
worked out. A replay is handed the journal's keys (:meth:`SlowBlocks.replay`) and works blocks
out with no deadline: a recorded block is never run, any other one runs as long as it takes, so
the render is what was heard on any machine. A block is found slow only when its thread spent at
least half the deadline computing: one stopped while its thread mostly waited (for the GIL, which
a cell holds through a long C call, or for a core another program took) is tried again, up to
:data:`_TRIES` times, so the machine's load alone does not change what plays. The first outcome
wins: a block that passed once
and times out later (worked out again after a rewind, the machine busy) runs to its end again
instead, with no deadline.
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
OFFLINE_LIMIT_S = 10.0    # ... in a render of a script (as a timer's run)
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
    return any(isinstance(curve, Curve) and not curve.is_code for curve in curves)


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
    held = None if params.held is None else params.held[0]
    parts = (params.index, block, params.start, params.curve_start, params.good_curve_start,
             params.sources_start, params.curve is params.good_curve, held,
             _plain(clock.segments),
             tuple((str(name), _plain((state.base, state.changes)))
                   for name, state in sorted(controls.items())))
    return hashlib.blake2b(repr(_plain(parts)).encode(), digest_size=12).hexdigest()


class SlowBlocks:
    """The blocks of performer code that ran past their deadline, and the running of them.

    :attr:`limit_s` is the deadline (None: none, as in a replay). ``on_slow(key, params,
    window)`` is told of each block found slow here (not of those a replay was handed)."""

    def __init__(self):
        self.limit_s: float | None = OFFLINE_LIMIT_S
        self.on_slow = None
        self._slow: set[str] = set()
        self._passed: OrderedDict[str, None] = OrderedDict()
        self._replaying = False
        self._live = False
        self._lock = threading.Lock()

    def replay(self, keys) -> None:
        """A replay: the blocks a performance found slow (its journal's keys) are never run,
        and any other runs with no deadline (until :meth:`replay_over`)."""
        with self._lock:
            self._slow.update(keys)
        self._replaying = True
        self._set_limit()

    def replay_over(self) -> None:
        """The engine plays on from where a replay left it (a resumed set): deadlines again,
        the replayed keys kept."""
        self._replaying = False
        self._set_limit()

    def live(self, live: bool) -> None:
        """Live playback's deadline, or a render's (a replay keeps none)."""
        self._live = live
        self._set_limit()

    def _set_limit(self) -> None:
        self.limit_s = (None if self._replaying else LIVE_LIMIT_S if self._live
                        else OFFLINE_LIMIT_S)

    def is_slow(self, key: str) -> bool:
        with self._lock:
            return key in self._slow

    def run(self, params, block: int, clock, work, instead, window: int):
        """``work()``, or ``instead()`` when the block of ``params`` at ``block`` is (or turns
        out, past the deadline) slow; ``window`` is where it starts playing (for the record)."""
        key = block_key(params, block, clock)
        if self.is_slow(key):
            return instead()
        limit = self.limit_s
        if limit is None:
            return work()
        for _ in range(_TRIES):
            result, busy = _within(limit, work)
            if result is not None or busy:
                break
        if result is not None:
            with self._lock:
                slow = key in self._slow     # (found slow meanwhile, on the other thread)
                if not slow:
                    self._passed[key] = None
                    self._passed.move_to_end(key)
                    if len(self._passed) > _PASSED_KEPT:
                        self._passed.popitem(last=False)
            return instead() if slow else result
        with self._lock:
            passed = key in self._passed
            new = not passed and key not in self._slow
            if not passed:
                self._slow.add(key)
        if passed:                           # it played as worked out before: the same again
            return work()
        if new and self.on_slow is not None:
            self.on_slow(key, params, window)
        return instead()


def _within(limit: float, work):
    """``(work(), True)``, or ``(None, busy)`` when the deadline stopped it; ``busy``: its
    thread spent at least half the time computing (the code is slow), rather than waiting for
    the GIL (a cell holding it in a C call) or for a core (another program)."""
    deadline = Deadline(limit)
    began = time.thread_time()
    try:
        with deadline:
            return work(), True
    except KeyboardInterrupt:
        if not deadline.fired:
            raise                           # Ctrl-C, or the code's own: not the deadline
    return None, time.thread_time() - began >= limit / 2
