"""The voice bank: every voice's windows for a span of steps, decoded and mixed at once.

The timeline says which voices play with which parameters; the bank turns a span of steps into
one mixed, limited block. It works on a table of the voices (structure of arrays, rebuilt only
when the score changes) and on flat arrays of (voice, window) pairs, so a step is a fixed number
of array operations whatever the number of voices:

- the windows each voice starts in the span, their frames (a gather per term and plane from the
  frame arena, for all voices), their amounts and noise (from per-voice blocks computed ahead, each voice at its
  own phase, see :mod:`.blocks`), fades and pan gains;
- one decode of every window;
- overlap-add and panning broadcast over (pairs, channels, window), each window landing on the
  two steps it spans;
- the overlap tails and last gains of all voices kept in arrays aligned with the table.

A checkpoint for a rewind is the table (immutable) plus a copy of those arrays. Amounts and noise
come from :class:`~.cache.BlockCache`, keyed on the parameters, which rewinds leave alone.
"""

from __future__ import annotations

import numpy as np

from .blocks import BLOCK
from .cache import BlockCache
from .mixer import interleaved, limit_with_peak
from .points import decoded_points
from .synth import synthesis_window
from .tails import Tails, panned
from .voice_table import VoiceTable

__all__ = ["Bank", "SpanResult", "PAIR_BUDGET"]

PAIR_BUDGET = 8192     # (voice, step) cells of one sub-span: bounds the scratch memory (~32 MB)


class SpanResult:
    """What a span produced besides its samples: voices to change or forget, and messages."""

    __slots__ = ("block", "reverted", "finished", "messages", "sound_end", "peak")

    def __init__(self, block, reverted, finished, messages, sound_end, peak):
        self.block, self.reverted, self.finished = block, reverted, finished
        self.messages, self.sound_end, self.peak = messages, sound_end, peak


class Bank:
    """The synthesis state of the voices: overlap tails and last gains, one row per table row."""

    def __init__(self, codec, *, seed: int, step: int, arena, channels: int = 2):
        self.codec = codec
        self.window = codec.window
        self.step = step
        self.latent = codec.latent_dim
        self.arena = arena
        self.shapes = np.stack([synthesis_window(s, self.window) for s in ("concat", "ola")])
        self.ramp = np.arange(self.window, dtype=np.float32) / np.float32(self.window)
        self.stem_sink = None          # callable(number, name, first_sample, block) for stems
        self.cache = BlockCache(seed=seed, latent=self.latent)
        self.channels = channels
        self._table = VoiceTable({}, self.cache, arena, channels)
        self._tails = Tails.silent(0, step, self.ramp[step:], channels)
        self._gains = np.zeros((0, channels), dtype=np.float32)
        self._ended = np.zeros(0, dtype=bool)
        self._held: set[int] = set()    # voices told their points left the decodable range

    def _table_for(self, voices) -> VoiceTable:
        old = self._table
        if old.voices is voices:
            return old
        table = VoiceTable(voices, self.cache, self.arena, self.channels)
        rows = {int(key): i for i, key in enumerate(old.keys)}
        from_old = np.array([rows.get(int(key), -1) for key in table.keys], dtype=np.int64)
        kept = from_old >= 0
        gains = np.zeros((table.n, self.channels), dtype=np.float32)   # new voices fade in from silence
        ended = np.zeros(table.n, dtype=bool)
        gains[kept], ended[kept] = self._gains[from_old[kept]], self._ended[from_old[kept]]
        self._table, self._tails = table, self._tails.moved(from_old, table.n)
        self._gains, self._ended = gains, ended
        return table

    def all_ended(self, numbers) -> bool:
        """Whether each of these voices has played its last window (or has none)."""
        table = self._table
        wanted = np.isin(table.numbers, list(numbers))
        return bool(self._ended[wanted].all())

    # -- rewinds ---------------------------------------------------------------------------------
    def snapshot(self):
        return self._table, self._tails, self._gains.copy(), self._ended.copy()   # tails: immutable

    def restore(self, snapshot) -> None:
        table, tails, gains, ended = snapshot
        slots = self.cache.slots(list(table.keys))          # the cache may have moved slots since
        if not np.array_equal(slots, table.slots):
            table = table.with_slots(slots)
        self._table, self._tails, self._gains, self._ended = table, tails, gains.copy(), ended.copy()

    # -- the work ----------------------------------------------------------------------------------
    def render(self, voices, clock, first: int, length: int) -> SpanResult:
        """Samples ``[first, first + length)`` of ``voices`` (VoiceParams by number)."""
        table = self._table_for(voices)
        steps = length // self.step
        per_span = min(BLOCK, max(1, PAIR_BUDGET // max(1, table.n)))   # the cache holds 2 blocks
        parts, reverted, finished, messages = [], {}, [], []
        sound_end, peak = 0, 0.0
        for offset in range(0, steps, per_span):
            span = min(per_span, steps - offset)
            block, end, part_peak = self._render_span(table, clock, first + offset * self.step, span,
                                                      reverted, finished, messages)
            parts.append(block)
            sound_end, peak = max(sound_end, end), max(peak, part_peak)
        block = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return SpanResult(block, reverted, finished, messages, sound_end, peak)

    def _render_span(self, t: VoiceTable, clock, first: int, span: int, reverted, finished, messages):
        S = self.step
        end = first + span * S
        if t.n == 0:
            return np.zeros((span * S, self.channels), dtype=np.float32), 0, 0.0
        # the windows each voice starts in the span
        k0 = np.maximum(0, -(-(first - t.start) // t.hop))
        k1 = np.maximum(k0, -(-(end - t.start) // t.hop))
        counts = k1 - k0
        cache = self.cache
        cache.prepare(t, clock, k0, k1, counts)
        single = bool(counts.max() <= 1)           # at most one window a voice (a live step)
        if single:
            v = np.flatnonzero(counts)
            every = v.size == t.n                  # (then v is every row, in order)
            k = k0 if every else k0[v]
        else:
            every = False
            v = np.repeat(np.arange(t.n), counts)
            k = np.arange(v.size, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts - k0, counts)

        def pairs(values):                         # each pair's value of a per-row array
            return values if every else values[v]
        position = pairs(t.start) + k * pairs(t.hop)
        # which frame of the pass, whether the voice still plays, and the fade of stop()
        frame = k % pairs(t.length)
        alive = k < pairs(t.window_count)
        fade_gain = None                                  # no voice stops: each its pan gains
        if t.has_stop.any():
            past = position - pairs(t.stop_at)
            fade = pairs(t.fade)
            fading = np.where(fade > 0, np.clip(1.0 - past / np.maximum(fade, 1), 0.0, 1.0), 0.0)
            fade_gain = np.where(past < 0, 1.0, fading)
            silent_from = t.stop_at + t.fade                  # the first window at zero is the last
            last = t.start + np.maximum(0, -(-(silent_from - t.start) // t.hop)) * t.hop
            alive &= position <= pairs(last)
        ended_now = None                                  # rows with a window past their end
        if not alive.all():
            ended_now = np.bincount(v[~alive], minlength=t.n) > 0
            keep = np.flatnonzero(alive)
            v, k, position, frame = v[keep], k[keep], position[keep], frame[keep]
            every = False
            fade_gain = None if fade_gain is None else fade_gain[keep]
        channels, noise, at = cache.gather(pairs(t.slots), k)   # (m, width): weights, indices, spread
        z, far, held = decoded_points(t, v, frame, channels, noise, at)
        decoded = self._decode(z, far)
        if held is not None:
            self._say_held(t, v[held], messages)
        # each window's gain ramps across it from the voice's previous window's gain
        gains = (pairs(t.pan32) if fade_gain is None                                 # (m, channels)
                 else (fade_gain[:, None] * pairs(t.pan)).astype(np.float32))
        if single:                        # each pair the only window of its row in the span
            previous = self._gains.copy() if every else self._gains[v]
        else:
            starts = np.ones(v.size, dtype=bool)
            starts[1:] = v[1:] != v[:-1]
            previous = np.empty_like(gains)
            previous[1:] = gains[:-1]
            previous[starts] = self._gains[v[starts]]
        ola = pairs(t.ola)                         # (no copy when every row has a window)
        if span == 1 and self.stem_sink is None and (t.all_ola or ola.all()):   # live OLA: shaped once
            block = self._one_step(t, v, decoded, previous, gains, first, shape=self.shapes[1])
        elif span == 1:
            block = self._one_step(t, v, self._shape(decoded, ola), previous, gains, first)
        elif self.stem_sink is None and np.array_equal(previous, gains):
            block = self._overlap_add_steady(t, v, self._shape(decoded, ola), gains, first, span,
                                             position)
        else:
            block = self._overlap_add(t, v, self._shape(decoded, ola), previous, gains, first, span,
                                      position)
        block, peak = limit_with_peak(block)
        sound_end = self._note_ends(t, v, single, gains, position, end, ended_now, finished)
        for i, revert in cache.take_reverts(t, k1):
            if int(t.numbers[i]) not in reverted:         # a cloud's grains find it each
                messages.append(revert.message)
            reverted[int(t.numbers[i])] = revert.params
        return block, sound_end, peak

    def _note_ends(self, t: VoiceTable, v, single: bool, gains, position, end: int, ended_now,
                   finished) -> int:
        """Keep each row's last gains; mark the voices whose last window has played (``ended_now``:
        rows with a window past their end, or None) and list those done. Returns where the last
        window's sound ends."""
        W = self.window
        if single:                 # no row has two windows: none ends in the span it is heard in
            self._gains[v] = gains
            if ended_now is not None or self._ended.any():
                silent = np.ones(t.n, dtype=bool)
                silent[v] = False
                done = self._ended & silent
                if ended_now is not None:
                    self._ended |= ended_now & ~done
                finished.extend(int(n) for n in t.numbers[done] if int(n) not in finished)
            return int(position.max()) + W if v.size else 0
        ends = np.ones(v.size, dtype=bool)
        ends[:-1] = v[1:] != v[:-1]
        self._gains[v[ends]] = gains[ends]
        windows = np.bincount(v, minlength=t.n)
        last_end = np.full(t.n, -1, dtype=np.int64)
        last_end[v[ends]] = position[ends] + W
        ended = np.zeros(t.n, dtype=bool) if ended_now is None else ended_now
        done = (self._ended & (windows == 0)) | (ended & (windows > 0) & (last_end <= end))
        self._ended |= ended & ~done
        finished.extend(int(n) for n in t.numbers[done] if int(n) not in finished)
        return int(last_end.max()) if v.size else 0

    def _say_held(self, t: VoiceTable, rows, messages) -> None:
        """Say once per voice that its points were held at the edge of the latent space."""
        for row in np.flatnonzero(np.bincount(rows)):      # (np.unique would import numpy.ma)
            number = int(t.numbers[row])
            if number not in self._held:
                self._held.add(number)
                messages.append(f"voice {t.params[row].name}: its latent points go so far out (an "
                                f"amount far outside 0..1, a cloud's spread, or a model that "
                                f"encodes its sources there) that the model cannot decode them; "
                                f"held at the edge of the latent space (harsh) while they do")

    def _decode(self, z, far=None) -> np.ndarray:
        """The windows of latent points ``z``; the cache's threads working ahead work meanwhile.
        The rows marked ``far`` are decoded one at a time: far out, how a batch rounds moves the
        samples, and live and a render batch windows differently (see points.FAR)."""
        if not z.shape[0]:
            return np.zeros((0, self.window), dtype=np.float32)
        decoding = self.cache.decoding if self.cache.work_wanted() else None
        if decoding is not None:           # with noise or channels to work out ahead: they are
            decoding.set()                 # worked out meanwhile
        try:
            if far is None:
                return self.codec.decode(z)
            decoded = np.empty((z.shape[0], self.window), dtype=np.float32)
            near = ~far
            if near.any():
                decoded[near] = self.codec.decode(z[near])
            for i in np.flatnonzero(far):
                decoded[i] = self.codec.decode(z[i:i + 1])[0]
            return decoded
        finally:
            if decoding is not None:
                decoding.clear()

    def _shape(self, decoded, ola):
        """Windows times their synthesis shape (Hann for ola, ones for concat)."""
        if not ola.any():
            return decoded
        decoded *= self.shapes[1] if ola.all() else self.shapes[ola]      # a fresh array of ours
        return decoded

    def _gained(self, windows, previous, gains, ramp):
        """``windows`` (m, samples) times each one's gain ramp per channel: (m, 2, samples). The
        ramp is skipped when no gain changes (the product is the same, number for number)."""
        if np.array_equal(previous, gains):
            return windows[:, None, :] * gains[:, :, None]
        return windows[:, None, :] * (previous[:, :, None] + (gains - previous)[:, :, None] * ramp)

    def _one_step(self, t: VoiceTable, v, windows, previous, gains, first: int, shape=None) -> np.ndarray:
        """Live: each voice starts at most one window, on this step. The mix is the tails plus
        each window's first half, panned: for all voices at once a (2, m) x (m, step) product (a
        vector product per channel from :data:`~.tails.PER_CHANNEL_FROM` voices on). With
        ``shape``, the windows are not shaped yet and all take that shape: it is applied to the
        mix and kept beside the tails (never with stems, which need each voice shaped)."""
        S = self.step
        head = windows[:, :S]
        if self.stem_sink is not None:
            out = self._tails.stereo()
            out[v] += self._gained(head, previous, gains, self.ramp[:S])
            self._stems(t, first, out, lambda part: part.T)
        if np.array_equal(previous, gains):        # whole windows panned: the tails' mix is kept
            whole = panned(gains, windows)                                  # (channels, W)
            if shape is not None:
                whole *= shape
            heads, next_mix = whole[:, :S], whole[:, S:]
        else:
            heads = panned(previous, head) + panned(gains - previous, head * self.ramp[:S])
            next_mix = None
            if shape is not None:
                heads *= shape[:S]
        mix = self._tails.mix() + heads
        self._tails = Tails.of_windows(t.n, v, windows[:, S:], previous, gains, self.ramp[S:],
                                       None if shape is None else shape[S:], next_mix)
        return interleaved(mix)

    def _stems(self, t: VoiceTable, first: int, out, as_block) -> None:
        """Each voice's own mix (its grains summed) to the stem sink."""
        for params, begin, end in t.voice_rows:
            part = out[begin] if end - begin == 1 else out[begin:end].sum(axis=0)
            self.stem_sink(params.index, params.name, first, as_block(part))

    def _overlap_add(self, t: VoiceTable, v, shaped, previous, gains, first: int, span: int,
                     position) -> np.ndarray:
        """Offline: each voice's windows over the span, every window's halves on the two steps it
        covers, then the voices summed."""
        S = self.step
        y = self._gained(shaped, previous, gains, self.ramp)                       # (m, 2, W)
        out = np.zeros((t.n, span, self.channels, S), dtype=np.float32)
        out[:, 0] = self._tails.stereo()
        step_of = (position - first) // S
        out[v, step_of] += y[:, :, :S]
        inside = step_of + 1 < span
        out[v[inside], step_of[inside] + 1] += y[inside, :, S:]
        if self.stem_sink is not None:
            self._stems(t, first, out, lambda part: part.transpose(0, 2, 1).reshape(-1, self.channels))
        last = ~inside                                    # windows whose second half is the new tail
        self._tails = Tails.of_windows(t.n, v[last], shaped[last, S:], previous[last], gains[last],
                                       self.ramp[S:])
        return interleaved(out.sum(axis=0).transpose(1, 0, 2).reshape(self.channels, -1))

    def _overlap_add_steady(self, t: VoiceTable, v, shaped, gains, first: int, span: int,
                            position) -> np.ndarray:
        """Offline, when no window's gain differs from the one before it (the usual case): each
        voice's windows overlap-added in mono, then panned and summed by one product of
        (samples, voices) by (voices, 2)."""
        S, W, n = self.step, self.window, t.n
        if v.size == n * span:      # a window on every step of every voice (hops are >= a step)
            grid = shaped.reshape(n, span, W)
        else:
            grid = np.zeros((n, span, W), dtype=np.float32)
            grid[v, (position - first) // S] = shaped
        mono = np.empty((n, span, S), dtype=np.float32)
        mono[:, 0] = grid[:, 0, :S]
        np.add(grid[:, 1:, :S], grid[:, :-1, S:], out=mono[:, 1:])
        voice_gains = self._gains.copy()
        voice_gains[v] = gains
        flat = mono.reshape(n, span * S)
        out = np.empty((span * S, self.channels), dtype=np.float32)
        if n == 1:
            for channel in range(self.channels):
                np.multiply(flat[0], voice_gains[0, channel], out=out[:, channel])
        else:
            out[:] = interleaved(panned(voice_gains, flat))
        out[:S] += self._tails.mix().T
        self._tails = Tails(grid[:, -1, S:].copy(), voice_gains, voice_gains.copy(), self.ramp[S:])
        return out
