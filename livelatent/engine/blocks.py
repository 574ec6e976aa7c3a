"""What a voice plays, computed a block of windows at a time: channels and noise.

Both are pure functions of (voice parameters, clock, engine seed, window index): the channels
are the weights and indices of the voice's latent series (:mod:`livelatent.paths.plan`) worked
out from its curve (or its stepwise values) and its path's curves at the window's time; the
noise is the window's row of a block drawn from a generator seeded by (engine seed, the voice's
noise key, block, grain). The voice
bank caches one block per voice and computes the next one ahead, each voice at its own phase,
so a step costs no per-voice Python work.

A curve that raises or returns NaN is found window by window, so it reverts to the last good
curve on the same window however the work is chunked (live and offline agree); a path's curve
that fails holds the path where it was from that window on.
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..curves import const
from ..deadline import interruptible
from ..errors import CurveError, described
from ..controls import evaluating
from ..paths.plan import Block
from ..voice import VoiceParams, curve_values
from .worker import POLL_S, WorkAhead

__all__ = ["BLOCK", "Revert", "block_amounts", "block_channels", "noise_entropy", "noise_block",
           "NoiseBlocks"]

BLOCK = 256   # windows per block: window k of a voice is row k % 256 of block k // 256
_MAX_READY = 512      # noise blocks drawn ahead, not taken yet (128 MB at most; one per voice)


@dataclass(frozen=True)
class Revert:
    """A voice's curve failed at ``window``: from there it plays ``params`` (its last good curve)."""

    window: int
    params: VoiceParams
    message: str


def _amounts(params: VoiceParams, k: np.ndarray, clock, curve, curve_start: int) -> np.ndarray:
    length = params.plan.length          # frames in one pass
    pass_index = k // length
    if curve is None:   # stepwise over `steps`
        return params.steps[pass_index % params.steps.size]
    if params.strategy == "stepwise":   # the curve sampled once per pass, at its first window
        k = pass_index * length
    positions = params.start + k * params.layout.output_hop
    origin = clock.beats(curve_start)
    with evaluating(params.controls, origin, clock.bpm_at(curve_start)):
        return curve_values(curve, clock.beats(positions) - origin)


def block_amounts(params: VoiceParams, k: np.ndarray, clock) -> tuple[np.ndarray, Revert | None]:
    """The amounts of windows ``k`` (ascending), and the revert a failing curve makes, if any.

    Windows from the first failing one on use the last good curve; if even that fails there,
    they hold the last amount.
    """
    try:
        return _amounts(params, k, clock, params.curve, params.curve_start), None
    except CurveError as exc:
        failure = str(exc)
    amounts = np.empty(k.size)
    first = 0
    for i in range(k.size):         # the first failing window, one by one
        try:
            amounts[i:i + 1] = _amounts(params, k[i:i + 1], clock, params.curve, params.curve_start)
        except CurveError as exc_i:
            first, failure = i, str(exc_i)
            break
    # (the block failed but no single window did: the curve is not elementwise; revert here)
    reverted = params.changed(curve=params.good_curve, curve_start=params.good_curve_start)
    try:
        amounts[first:] = _amounts(reverted, k[first:], clock, reverted.curve, reverted.curve_start)
    except CurveError:               # even the last good curve fails here: hold the last amount
        held = const(float(amounts[first - 1]) if first > 0 else 0.5)
        amounts[first:] = held(0.0)
        reverted = reverted.changed(curve=held, good_curve=held)
    message = f"voice {params.name}: {failure}; reverted to its last good curve"
    return amounts, Revert(int(k[first]), reverted, message)


def block_channels(params: VoiceParams, k: np.ndarray, clock) -> tuple[np.ndarray, Revert | None]:
    """The channels of windows ``k`` (ascending; a whole block for a path, so what a path
    chooses depends on the block only), and the revert a failing curve makes, if any."""
    amounts, revert = block_amounts(params, k, clock) if params.path is None else (None, None)
    plan = params.plan
    positions = params.start + k * params.layout.output_hop
    beats = clock.beats(positions) - clock.beats(params.curve_start)
    source_beats = clock.beats(positions) - clock.beats(params.sources_start)

    origins = (clock.beats(params.curve_start), clock.beats(params.sources_start))
    bpm = clock.bpm_at(params.curve_start)

    def channels(rows: slice) -> np.ndarray:
        try:
            return plan.channels(Block(k[rows], beats[rows], None if amounts is None else amounts[rows],
                                       source_beats=source_beats[rows], controls=params.controls,
                                       origins=origins, bpm=bpm, samples=positions[rows]))
        except CurveError:
            raise
        except BaseException as exc:    # a path's own fault (a model, a chooser; an exit() too):
            if isinstance(exc, KeyboardInterrupt) and interruptible():     # the voice holds, the
                raise                                                      # engine plays on, and
            where = traceback.extract_tb(exc.__traceback__)[-1]            # the line says where
            raise CurveError(f"{described(exc)} (at {Path(where.filename).name}:"
                             f"{where.lineno})") from exc

    values = np.zeros((k.size, plan.columns), dtype=np.float32)
    held = params.held
    live = k.size if held is None else int(np.searchsorted(k, held[0]))
    try:
        if live:
            values[:live] = channels(slice(0, live))
    except CurveError as exc:
        first, failure = 0, str(exc)
        for i in range(live):       # the first failing window, one by one
            try:
                channels(slice(i, i + 1))
            except CurveError as exc_i:
                first, failure = i, str(exc_i)
                break
        if first:                   # the windows before it, as one block (a chooser sees them whole)
            values[:first] = channels(slice(0, first))
            row = values[first - 1].copy()
        else:
            row = _row_before(params, k[0], clock, plan)
        base = revert.params if revert is not None else params
        held = (int(k[first]), row)
        revert = Revert(int(k[first]), base.changed(held=held),
                        f"voice {params.name}: {failure}; its path holds where it was")
        live = first
    if held is not None:
        values[live:] = held[1]
    return values, revert


def _row_before(params: VoiceParams, window: int, clock, plan) -> np.ndarray:
    """The channels of the window before ``window`` (what a hold from ``window`` keeps)."""
    if window > 0:
        try:
            return block_channels(params.changed(held=None), np.array([window - 1]), clock)[0][0]
        except CurveError:
            pass
    return np.zeros(plan.columns, dtype=np.float32)      # nothing played before it


def noise_entropy(params: VoiceParams, engine_seed: int, block: int, grain: int = 0) -> tuple:
    """What seeds the generator of a voice's noise block: its own seed, or the engine's seed and
    the voice's noise key (and, for a cloud's grains after the first, the grain)."""
    key = params.index if params.noise_key is None else params.noise_key
    entropy = ((1, params.seed, int(block)) if params.seed is not None
               else (0, engine_seed, key, int(block)))
    return entropy + (int(grain),) if grain else entropy


def noise_block(entropy: tuple, latent: int) -> np.ndarray:
    """Standard normal noise of one block of windows: (BLOCK, latent), row k % BLOCK for window k."""
    return np.random.default_rng(list(entropy)).standard_normal((BLOCK, latent), dtype=np.float32)


class NoiseBlocks:
    """Noise blocks, drawn ahead on a thread of their own.

    Drawing a block (256 windows of 256 values) takes most of a millisecond, and numpy lets the
    GIL go while it draws. Live, the voice bank asks for each voice's next block a few seconds
    before it needs it, and the other core draws it; the drawer polls for asks, so an ask costs
    the decode thread no wake-up (a queue's put did, at every ask). Offline, the next block is
    needed one span later (tens of milliseconds), so each ask wakes the drawer at once, and a block
    still being drawn is waited for rather than drawn twice. The values are the same whoever draws
    them.

    The drawer's own Python (seeding a generator, keeping the block) holds the GIL, and a decode
    thread coming back from the decoder then waited for it: offline, as long as the drawing
    itself. So the drawer starts a block when ``decoding`` is set (the decode thread is in the
    decoder, holding no GIL), or after :data:`~.worker.POLL_S` without a decode. Without
    ``decoding``, it draws at once.
    """

    def __init__(self, latent: int, decoding: threading.Event | None = None):
        self.latent = latent
        if decoding is None:
            decoding = threading.Event()
            decoding.set()
        self._decoding = decoding
        self._ready: dict[tuple, np.ndarray] = {}
        self._wanted: dict[tuple, None] = {}    # asked for, oldest first (once each)
        self._drawing: tuple | None = None       # the block the drawer has in hand
        self._changed = threading.Condition()    # guards the three above
        self._worker = WorkAhead(self._draw_one, self.wanted, "livelatent-noise")
        self.ahead = False               # live: asked for seconds ahead (playback turns it on)

    def get(self, entropy: tuple) -> np.ndarray:
        with self._changed:
            while entropy == self._drawing:      # in hand: it comes within a millisecond
                self._changed.wait()
            ready = self._ready.pop(entropy, None)
            self._wanted.pop(entropy, None)      # drawn here: not again on the drawer's thread
        return ready if ready is not None else noise_block(entropy, self.latent)

    def draw(self, entropy: tuple) -> None:
        """Draw a block now, in the caller's thread, for the decode thread to take (the overload
        guard's concat twins: hundreds of voices starting on one step must not draw there)."""
        block = noise_block(entropy, self.latent)
        with self._changed:
            self._ready[entropy] = block

    def prefetch(self, entropy: tuple) -> None:
        """Have the block of ``entropy`` drawn on the drawer's thread (at once, offline)."""
        with self._changed:
            self._wanted[entropy] = None
            if not self.ahead:
                self._changed.notify_all()
        self._worker.wake()

    def wanted(self) -> bool:
        """Whether blocks wait to be drawn (read without the lock: a hint)."""
        return bool(self._wanted)

    def _draw_one(self) -> bool:
        """Draw the oldest block asked for (or wait for an ask): whether one was drawn."""
        with self._changed:
            if not self._wanted:
                self._changed.wait(POLL_S)
                return False
        self._decoding.wait(POLL_S)           # the decode thread's turn in the decoder: ours
        with self._changed:
            if not self._wanted:              # (drawn meanwhile by the decode thread's get())
                return False
            entropy = next(iter(self._wanted))
            del self._wanted[entropy]
            if entropy in self._ready:
                return True
            self._drawing = entropy
        block = None
        try:                             # (whatever happens, a get() waiting for it wakes)
            block = noise_block(entropy, self.latent)
        finally:
            with self._changed:
                if block is not None:
                    self._ready[entropy] = block
                while len(self._ready) > _MAX_READY:      # blocks of voices gone: oldest first
                    del self._ready[next(iter(self._ready))]
                self._drawing = None
                self._changed.notify_all()
        return True
