"""The voice bank's cache: each voice's channels and noise, a block of windows ahead.

Each voice (each grain of a cloud) has a slot holding up to two consecutive blocks
(:data:`~.blocks.BLOCK` windows each) of its channels (the weights and indices of its latent
series, :mod:`livelatent.paths.plan`) and of its noise, block b in half b % 2
(:func:`BlockCache.rows`), so moving on by a block copies nothing. A step reads every voice's
rows with one indexing operation. A voice whose windows leave the blocks it holds, or whose
parameters changed, works out the block it is in (only); and each voice, when it reaches its
own phase inside the last block it holds, computes the next one in place of the older, so the
work spreads over the steps instead of falling on one when voices start together (or when a
controller moves many voices at once). The block after that is worked out ahead on other
threads: its noise (:class:`~.blocks.NoiseBlocks`; offline too, a span ahead) and, live, its
channels (:class:`~.channels_ahead.ChannelsAhead`).

The cache is keyed on the immutable parameters (and the clock, on which amounts depend): a
change replaces the parameters and the voice loads again; noise, which depends only on the
voice's noise key, is kept. Rewinds leave the cache alone: what it holds is a pure function of
what it is keyed on.
"""

from __future__ import annotations

import threading

import numpy as np

from .blocks import BLOCK, NoiseBlocks, noise_entropy
from .channels_ahead import ChannelsAhead, block_values
from .slow_blocks import SlowBlocks
from .prefault import populate

__all__ = ["BlockCache", "RESERVED_SLOTS"]

# Slots reserved when an engine starts: voices (grains) up to this many start without the cache
# growing, which copies every slot in use (half a megabyte each) on the step that needs it.
# Reserved pages cost no memory until written (:meth:`BlockCache._grow`).
RESERVED_SLOTS = 1024
SLOTS_AHEAD = 64       # live: slots beyond those used so far whose memory is populated ahead


class BlockCache:
    """Channels and noise of the voices, in slots (one per voice number and grain)."""

    def __init__(self, *, seed: int, latent: int):
        self.seed = seed
        self.latent = latent
        # set while the decode thread is in the decoder, holding no GIL: the turn of the threads
        # working ahead, whose Python it would otherwise wait for on its way back
        self.decoding = threading.Event()
        self.noise = NoiseBlocks(latent, self.decoding)
        self.slow = SlowBlocks()         # blocks of performer code that ran past their deadline
        self.ahead = ChannelsAhead(self.decoding, self.slow)
        self.live = False                # live playback: blocks worked out seconds ahead
        self._slot_of: dict[int, int] = {}
        self._free: list[int] = []
        self._capacity = 0
        self.width = 2                   # channels per window: the widest plan's
        self.channels = np.zeros((0, 2 * BLOCK, self.width), dtype=np.float32)
        self.noise_rows = np.zeros((0, 2 * BLOCK, latent), dtype=np.float32)
        self.first_block = np.zeros(0, dtype=np.int64)
        self.last_block = np.zeros(0, dtype=np.int64)      # the slot holds first..last (1 or 2)
        # the params each slot's blocks were worked out for, and their id() (0: none), which a
        # step compares with its table's (comparing the objects calls Python per voice)
        self._params = np.empty(0, dtype=object)
        self._params_id = np.zeros(0, dtype=np.int64)
        self._noise_of = np.empty(0, dtype=object)
        # slot -> (the params whose curve failed, the revert), taken when the voice gets there
        self._reverts: dict[int, tuple] = {}
        self._clock = None
        self._frontier = 0               # slots handed out so far (fresh ones go in order)
        self._populated = 0              # slots 0.. whose memory is populated (:meth:`populate_slots`)
        self._populate_lock = threading.Lock()
        self._populating: threading.Thread | None = None
        self._populate_wanted = False
        self._grow(RESERVED_SLOTS)

    def _grow(self, capacity: int) -> None:
        """Room for ``capacity`` slots. The big arrays are made with ``np.zeros``, whose pages the
        operating system gives only when first written: the room reserved up front costs no
        memory until voices use it, and growing past it copies the slots used so far."""
        used, touched = self._capacity, self._frontier
        for name in ("channels", "noise_rows"):          # slots past ``touched`` were never written
            old = getattr(self, name)
            grown = np.zeros((capacity, *old.shape[1:]), dtype=old.dtype)
            grown[:touched] = old[:touched]
            setattr(self, name, grown)
        for name, fill in (("first_block", -10), ("last_block", -10), ("_params", None),
                           ("_params_id", 0), ("_noise_of", None)):
            old = getattr(self, name)
            grown = np.empty((capacity, *old.shape[1:]), dtype=old.dtype)
            grown[:used] = old
            grown[used:] = fill
            setattr(self, name, grown)
        self._free.extend(range(capacity - 1, used - 1, -1))
        self._capacity = capacity
        self._populated = touched

    def widen(self, width: int) -> None:
        """Room for ``width`` channels per window (everything is worked out again)."""
        if width > self.width:
            self.width = width
            self.channels = np.zeros((self._capacity, 2 * BLOCK, width), dtype=np.float32)
            self._forget_params()
            self._populated = 0

    def slots(self, numbers) -> np.ndarray:
        """The slot of each key (voice number and grain), in order, freeing those not listed."""
        wanted = set(numbers)
        for number in [n for n in self._slot_of if n not in wanted]:
            slot = self._slot_of.pop(number)
            self._reverts.pop(slot, None)
            self._params[slot] = None          # (its frames may go: the arena reuses their rows)
            self._params_id[slot] = 0
            self.ahead.forget(slot)
            self._free.append(slot)
        found = []
        for number in numbers:
            slot = self._slot_of.get(number)
            if slot is None:
                if not self._free:
                    self._grow(2 * self._capacity)
                slot = self._slot_of[number] = self._free.pop()
                self._params[slot] = self._noise_of[slot] = None
                self._params_id[slot] = 0
                self._frontier = max(self._frontier, slot + 1)
            found.append(slot)
        if self.live and self._populated < self._frontier + SLOTS_AHEAD // 2:
            self.populate_ahead()
        return np.array(found, dtype=np.int64)

    def work_wanted(self) -> bool:
        """Whether a thread working ahead has work waiting for the decoder's turn (a hint)."""
        return self.noise.wanted() or self.ahead.wanted()

    def work_ahead(self, live: bool) -> None:
        """Live (playback turns it on): each voice's next block is worked out seconds ahead, its
        noise and its channels, and the next slots' memory is populated ahead (now, in the
        caller's thread; then on a thread of its own as voices start). Offline only the noise
        is drawn ahead, a span early."""
        self.live = live
        self.slow.live(live)
        self.noise.ahead = live
        if live:
            self.populate_slots()

    def populate_slots(self, count: int | None = None) -> bool:
        """Have the memory of the next ``count`` slots that voices will take given now, those
        not given yet (None: up to :data:`SLOTS_AHEAD` beyond those used so far), in the caller's
        thread, which must not be the decoder's (on some machines this takes milliseconds a
        slot): the last ``count`` of the free list, which new voices take from its end (freed
        slots, then fresh ones in order). Slots are populated in order, those in use too (the
        pages they have written already cost nothing). False when there was nothing to do (the
        thread populating ahead may still be giving the memory of those it took on)."""
        with self._populate_lock:
            first = self._populated
            if count is None:
                last = min(self._capacity, self._frontier + SLOTS_AHEAD)
            elif count > 0:     # (more than are free: the cache grows when they start)
                last = max(self._free[-count:], default=-1) + 1
            else:
                last = first
            if last <= first:
                return False
            self._populated = last
            channels, noise_rows = self.channels, self.noise_rows
        for slot in range(first, last):     # a slot at a time: each call holds the memory map's
            populate(channels[slot])        # lock, and the decoder's own allocations wait for it
            populate(noise_rows[slot])
        return True

    def populate_ahead(self) -> None:
        """Live: :meth:`populate_slots` on a thread of its own until it has caught up with the
        slots used (one such thread at a time; asked while it runs, it goes round again)."""
        with self._populate_lock:
            self._populate_wanted = True
            if self._populating is None:
                self._populating = threading.Thread(target=self._populate_until_ahead,
                                                    name="livelatent-slots", daemon=True)
                self._populating.start()

    def _populate_until_ahead(self) -> None:
        while True:
            with self._populate_lock:
                if not self._populate_wanted:
                    self._populating = None
                    return
                self._populate_wanted = False
            while self.populate_slots():
                pass

    def free_slots(self) -> int:
        """Voices that can start without the cache growing (growing copies every slot used so
        far: hundreds of megabytes with hundreds of voices)."""
        return len(self._free)

    @staticmethod
    def rows(k):
        """Where window ``k`` is in its slot's arrays."""
        return (k // BLOCK) % 2 * BLOCK + k % BLOCK

    def gather(self, slots, k):
        """The channels of windows ``k`` of the voices in ``slots`` (m, width), the noise rows
        as one (slots x rows, latent) array and where each window's row is in it (one gather
        along one axis: numpy indexes two axes at once more slowly)."""
        at = slots * (2 * BLOCK) + self.rows(k)
        channels = self.channels.reshape(-1, self.channels.shape[2]).take(at, axis=0)
        return channels, self.noise_rows.reshape(-1, self.noise_rows.shape[2]), at

    # -- keeping the blocks ahead of the voices ------------------------------------------------------
    def prepare(self, table, clock, k0, k1, counts) -> None:
        """Make sure every voice's slot holds the blocks its windows ``[k0, k1)`` fall in, and
        work one block ahead for the voices whose phase has come."""
        self.widen(table.width)
        if clock is not self._clock:         # channels depend on the tempo: work them out again
            self._clock = clock
            self._forget_params()
        playing = counts > 0
        if not playing.any():
            return
        slots = table.slots
        cached_first, cached_last = self.first_block[slots], self.last_block[slots]
        current = self._params_id[slots] == table.identity
        for i in np.flatnonzero(~current & (counts > 0)):      # a stop, gain or pan changes
            held = self._params[slots[i]]                     # nothing a block holds (unless a
            if (held is not None and int(slots[i]) not in self._reverts   # revert found ahead
                    and _same_blocks(held, table.params[i])):          # carries the old params)
                self._hold(slots[i], table.params[i])
                current[i] = True
        first, last = k0 // BLOCK, (k1 - 1) // BLOCK
        # a span covers at most BLOCK windows, so ``last`` is ``first`` or the block after it.
        # A voice whose parameters changed (a new curve, a controller's value) works out only
        # the blocks it needs now; the next one comes at its phase, as for every voice.
        stale = playing & (~current | (first < cached_first) | (first > cached_last))
        ahead = playing & ~stale & (cached_last == first) & ((last > first) | (k0 % BLOCK >= table.phase))
        shared = {}                          # a cloud's grains share their channels
        for i in np.flatnonzero(stale):
            blocks = [int(first[i])] if last[i] == first[i] else [int(first[i]), int(first[i]) + 1]
            self._load(int(slots[i]), table.params[i], int(table.grain[i]), clock, blocks,
                       first=int(first[i]), shared=shared)
        for i in np.flatnonzero(ahead):
            if (self.live and last[i] == first[i]       # not needed yet, and the worker has it:
                    and self.ahead.working_on(table.params[i], clock, int(first[i]) + 1)):
                continue                                # taken at a later step
            self._load(int(slots[i]), table.params[i], int(table.grain[i]), clock, [int(first[i]) + 1],
                       first=int(first[i]), shared=shared)

    def _load(self, slot: int, params, grain: int, clock, blocks: list, *, first: int,
              shared: dict) -> None:
        """Work out ``blocks`` (one or two consecutive) into ``slot``, which then holds
        ``first`` to the last of them. Noise is kept when only the curve, a controller's value
        or the tempo changed."""
        B = BLOCK
        sampled = not params.deterministic or params.plan.spread is not None
        noise_key = (params.seed, params.noise_key, params.index, grain) if sampled else None
        same_noise = self._noise_of[slot] == noise_key
        kept_first, kept_last = int(self.first_block[slot]), int(self.last_block[slot])
        fresh = blocks
        noisy = [b for b in blocks if not (same_noise and kept_first <= b <= kept_last)]
        pending = self._reverts.get(slot)
        revert = pending[1] if pending is not None and pending[0] is params else None
        for b in fresh:
            source = revert.params if revert is not None and revert.window < b * B else params
            computed = shared.get((id(source), b))      # a cloud's grains: the first one's
            if computed is None:
                computed = self.ahead.take(slot, source, clock, b)
                if computed is None:        # (the worker may be stuck in it: see SlowBlocks.run)
                    computed = block_values(source, b, clock, self.slow, tries=1,
                                            elsewhere_s=self.ahead.in_hand_for(source, clock, b))
                shared[(id(source), b)] = computed
            values, found = computed
            if found is not None and revert is None:
                revert = found
                self._reverts[slot] = (params, found)
            half = self.channels[slot, b % 2 * B:(b % 2 + 1) * B]
            half[:, :values.shape[1]] = values
            half[:, values.shape[1]:] = 0.0
        if noise_key is not None:
            for b in noisy:
                self.noise_rows[slot, b % 2 * B:(b % 2 + 1) * B] = self.noise.get(
                    noise_entropy(params, self.seed, b, grain))
        following = blocks[-1] + 1
        if noise_key is not None and following * B < params.window_count:     # the next, if played
            self.noise.prefetch(noise_entropy(params, self.seed, following, grain))
        if self.live and grain == 0:           # live: its next block's channels, on another thread
            plays = revert.params if revert is not None and revert.window < following * B else params
            self.ahead.request(slot, plays, clock, following)
        self._noise_of[slot] = noise_key
        self.first_block[slot] = first
        self.last_block[slot] = blocks[-1]
        self._hold(slot, params)

    def _hold(self, slot: int, params) -> None:
        """Slot ``slot`` holds blocks worked out for ``params``."""
        self._params[slot] = params
        self._params_id[slot] = id(params)     # (unique: the slot keeps ``params`` alive)

    def _forget_params(self) -> None:
        """Every slot's blocks are to be worked out again."""
        self._params[:] = None
        self._params_id[:] = 0

    def take_reverts(self, table, k1) -> list:
        """The reverts found ahead whose window the voice has reached: [(row, revert)]."""
        taken = []
        for slot, (params, revert) in list(self._reverts.items()):
            rows = np.flatnonzero(table.slots == slot)
            if rows.size and table.params[rows[0]] is params and revert.window < k1[rows[0]]:
                taken.append((int(rows[0]), revert))
                del self._reverts[slot]
        return taken


def _same_blocks(old, new) -> bool:
    """Whether ``new`` (a change of ``old``) plays the same channels and noise: only its gain,
    pan, outputs or stop changed."""
    return (old.plan is new.plan and old.curve is new.curve and old.good_curve is new.good_curve
            and old.curve_start == new.curve_start and old.good_curve_start == new.good_curve_start
            and old.start == new.start and old.sources_start == new.sources_start
            and old.held is new.held and old.controls is new.controls and old.steps is new.steps
            and old.seed == new.seed and old.noise_key == new.noise_key and old.index == new.index
            and old.deterministic == new.deterministic and old.path is new.path
            and old.a is new.a and old.b is new.b and old.layout == new.layout)
