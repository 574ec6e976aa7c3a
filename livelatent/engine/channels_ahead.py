"""Each voice's next block of channels, worked out ahead on a thread of its own (live).

A block's channels are a pure function of the voice's parameters, the clock and the block
(:func:`block_values`), so whoever works them out gets the same numbers: the decode thread when
it must, or :class:`ChannelsAhead`'s worker a few seconds before it needs them.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np

from ..curves import Curve, const
from .blocks import BLOCK, Revert, block_channels
from .slow_blocks import runs_code
from .worker import POLL_S, WorkAhead

__all__ = ["ChannelsAhead", "block_values"]


def _first_window_of(params) -> int:
    """The first window of a voice that its curve (as it is in ``params``) plays."""
    if (params.curve is None and params.path is None) or params.curve_start <= params.start:
        return 0        # (stepwise amounts have no curve to wait for)
    return int(math.ceil((params.curve_start - params.start) / params.layout.output_hop))


def block_values(params, block: int, clock, slow=None, *, elsewhere_s: float = 0.0,
                 tries: int | None = None) -> tuple[np.ndarray, object]:
    """The channels of a voice's windows in ``block`` (zero before its curve takes effect: those
    never play), and the revert a failing curve makes there, if any. With ``slow`` (the cache's
    :class:`~.slow_blocks.SlowBlocks`), a block that runs performer code is worked out under its
    deadline, and one that is slow plays what :func:`_instead_of_slow` says (``elsewhere_s``:
    how long the worker has had this very block in hand; ``tries``: 1 where it is needed now;
    see :meth:`SlowBlocks.run`)."""
    k = np.arange(block * BLOCK, (block + 1) * BLOCK, dtype=np.int64)
    played = k >= _first_window_of(params)
    values = np.zeros((BLOCK, params.plan.columns), dtype=np.float32)
    found = None
    if played.any():
        values[played], found = _played_values(params, block, k[played], clock, slow,
                                               elsewhere_s=elsewhere_s, tries=tries)
    return values, found


def _played_values(params, block: int, k: np.ndarray, clock, slow, *, elsewhere_s: float = 0.0,
                   tries: int | None = None):
    if slow is None or not runs_code(params):
        return block_channels(params, k, clock)
    return slow.run(params, block, clock, lambda: block_channels(params, k, clock),
                    lambda limit: _instead_of_slow(params, block, k, clock, slow, limit, tries),
                    int(k[0]), elsewhere_s=elsewhere_s, tries=tries)


def _instead_of_slow(params, block: int, k: np.ndarray, clock, slow, limit: float, tries=None):
    """What a slow block plays from its first window ``k[0]``. A voice whose own curve calls
    the code goes back to its last good curve (worked out under the deadline in turn), or, when
    that is the slow one or fails or is slow in this block too, holds 0.5. A path voice, or one
    whose code is in its sources' curves, holds at the latent origin."""
    window = int(k[0])
    said = (f"voice {params.name}: its Python function took over {limit:g} s for "
            f"{BLOCK} windows")
    if params.path is None and isinstance(params.curve, Curve) and params.curve.calls_python:
        if params.curve is not params.good_curve or params.curve_start != params.good_curve_start:
            reverted = params.changed(curve=params.good_curve, curve_start=params.good_curve_start)
            values, found = _played_values(reverted, block, k, clock, slow, tries=tries)
            if found is None:
                return values, Revert(window, reverted, f"{said}; reverted to its last good curve")
        steady = const(0.5)
        held = params.changed(curve=steady, good_curve=steady)
        if not runs_code(held):
            return block_channels(held, k, clock)[0], Revert(
                window, held, f"{said}; it holds an amount of 0.5")
    held = params.changed(held=(window, np.zeros(params.plan.columns, dtype=np.float32)))
    return block_channels(held, k, clock)[0], Revert(
        window, held, f"{said}; it holds at the latent origin")


class ChannelsAhead:
    """Live, each voice's next block of channels is worked out on a thread of the cache's own.

    When a voice loads a block, the decode thread asks here for the block after it, which it
    needs a few seconds later (256 windows). Working out a block evaluates the voice's curves
    and paths, and for a voice following descriptors chooses its frames (tens of milliseconds
    for a large corpus): in the decode thread that was about 150 us of every step at 128 voices.
    The worker's Python holds the GIL, which the decode thread would wait for on its way back
    from the decoder; so it starts each block while the decode thread is in the decoder
    (:attr:`decoding`, the cache's, set around each decode while a thread working ahead has
    work), mostly inside BLAS, where that thread holds
    no GIL. A block's channels are a pure function of the parameters, the clock and the block
    (:func:`block_values`), so they are the same whoever works them out; a revert that a failing
    curve makes there is found the same way too. The decode thread takes a result only when it
    was made for these very parameters, clock and block, and works the block out itself
    otherwise (its curve, a controller or the tempo changed meanwhile).

    One request and one result per cache slot, the newest winning: a voice whose parameters
    change on every step (a controller moving) leaves no backlog of blocks nobody will play.
    A block asked for and not worked out yet is left to the worker until the voice needs it
    (:meth:`working_on`): its code may be slow, and the deadline that stops it there
    (:mod:`.slow_blocks`) would stop the decode thread too.
    """

    def __init__(self, decoding: threading.Event, slow=None):
        # set while the decode thread is in the decoder, where it holds no GIL: the worker's turn
        self.decoding = decoding
        self.slow = slow                         # blocks of performer code: their deadline
        self._wanted: dict[int, tuple] = {}      # slot -> (params, clock, block), oldest first
        self._asked: dict[tuple, int] = {}       # (id(params), id(clock), block) -> slots asking
        self._ready: dict[int, tuple] = {}       # slot -> (params, clock, block, result)
        self._in_hand: tuple | None = None       # (params, clock, block) being worked out
        self._in_hand_since = 0.0                # (time.monotonic() when it was taken)
        self._lock = threading.Lock()
        self._worker = WorkAhead(self._work_once, self.wanted, "livelatent-channels")

    def request(self, slot: int, params, clock, block: int) -> None:
        with self._lock:
            self._drop(slot)
            self._wanted[slot] = (params, clock, block)
            key = (id(params), id(clock), block)     # (ids of objects the request keeps alive)
            self._asked[key] = self._asked.get(key, 0) + 1
        self._worker.wake()

    def forget(self, slot: int) -> None:
        """The voice of ``slot`` is gone: nothing asked or worked out for it is wanted."""
        with self._lock:
            self._drop(slot)
            self._ready.pop(slot, None)

    def _drop(self, slot: int):
        """The request of ``slot`` out of those waiting (under the lock): it, or None."""
        entry = self._wanted.pop(slot, None)
        if entry is not None:
            key = (id(entry[0]), id(entry[1]), entry[2])
            if self._asked[key] == 1:
                del self._asked[key]
            else:
                self._asked[key] -= 1
        return entry

    def wanted(self) -> bool:
        """Whether blocks wait to be worked out (read without the lock: a hint)."""
        return bool(self._wanted)

    def working_on(self, params, clock, block: int) -> bool:
        """Whether the block ``block`` of ``params`` with ``clock`` is asked for here and not
        worked out yet (in hand, or waiting)."""
        with self._lock:
            hand = self._in_hand
            return ((id(params), id(clock), block) in self._asked or hand is not None
                    and hand[0] is params and hand[1] is clock and hand[2] == block)

    def in_hand_for(self, params, clock, block: int) -> float:
        """How long the worker has been working out the block ``block`` of ``params`` with
        ``clock`` (0: it is not)."""
        with self._lock:
            hand = self._in_hand
            if hand is None or hand[0] is not params or hand[1] is not clock or hand[2] != block:
                return 0.0
            return time.monotonic() - self._in_hand_since

    def take(self, slot: int, params, clock, block: int):
        """``(values, revert)`` worked out ahead for exactly these ``params``, ``clock`` and
        ``block`` in ``slot``, or None."""
        with self._lock:
            entry = self._ready.get(slot)
            if entry is None or entry[0] is not params or entry[1] is not clock or entry[2] != block:
                return None
            del self._ready[slot]
        return entry[3]

    def _work_once(self) -> bool:
        """Work out a block asked for, the oldest slot's newest request (or wait for an ask):
        whether one was."""
        if not self._wanted:
            time.sleep(POLL_S)
            return False
        # Python work here holds the GIL, and a decode thread that wanted it back would wait
        # (up to the switch interval): start while it decodes (if it decodes at all), taking
        # the oldest slot asking, with its newest request
        self.decoding.wait(POLL_S)
        with self._lock:
            slot = next(iter(self._wanted), None)
            wanted = self._drop(slot) if slot is not None else None
            self._in_hand, self._in_hand_since = wanted, time.monotonic()
        if wanted is None:
            return False
        params, clock, block = wanted
        result = None
        try:
            result = block_values(params, block, clock, self.slow)
        except Exception:       # noqa: BLE001 - the decode thread works it out itself, and says so
            pass
        finally:
            with self._lock:
                self._in_hand = None
                if result is not None:
                    self._ready[slot] = (params, clock, block, result)
        return True
