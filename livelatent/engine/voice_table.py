"""The playing voices as arrays, for the voice bank (:mod:`.bank`): one row per voice, or per
grain of a cloud, in the score's order, made when the score's voices change and never changed
after. A step reads each row's parameters from here with one indexing operation per array (none
when every row has a window in it), and a rewind's checkpoint keeps the table by reference."""

from __future__ import annotations

import numpy as np

from ..voice import output_gains
from .blocks import BLOCK

__all__ = ["VoiceTable", "ONE_FRAME_PRODUCT"]

ONE_FRAME_PRODUCT = 4      # one-frame terms a row needs for them to be mixed by one product
_NO_STOP = np.iinfo(np.int64).max // 4


class VoiceTable:
    """The playing voices as arrays: one row per voice, or per grain of a cloud (a cloud of k
    points is k rows sharing its parameters, each with its own noise), in the score's order."""

    def __init__(self, voices, cache, arena, channels: int = 2):
        voice_params = list(voices.values())
        points = [p.plan.points for p in voice_params]
        params = [p for p, count in zip(voice_params, points) for _ in range(count)]
        self.voices = voices
        self.params = params
        self.identity = np.array([id(p) for p in params], dtype=np.int64)   # (the cache's key)
        self.n = len(params)
        self.numbers = np.array([p.index for p in params], dtype=np.int64)
        self.grain = np.concatenate([np.arange(c) for c in points]).astype(np.int64) if points \
            else np.zeros(0, dtype=np.int64)
        self.keys = self.numbers * 256 + self.grain           # a cloud has at most 32 grains
        ends = np.cumsum(points, dtype=np.int64)
        self.voice_rows = [(p, int(e - c), int(e)) for p, c, e in zip(voice_params, points, ends)]
        self.slots = cache.slots(list(self.keys))
        as_int = lambda values: np.array(list(values), dtype=np.int64)
        self.start = as_int(p.start for p in params)
        self.hop = as_int(p.layout.output_hop for p in params)
        self.ola = np.array([p.synth == "ola" for p in params], dtype=np.int64)
        self.all_ola = bool(self.ola.all())
        self.length = as_int(p.plan.length for p in params)
        self.window_count = np.array([p.window_count for p in params], dtype=np.float64)  # inf: loops
        self._place_terms(params, arena)
        self.width = max([p.plan.columns for p in params], default=2)
        self.spread_column = as_int(p.plan.spread_column for p in params)
        self.clouds = bool((self.spread_column >= 0).any())
        self.spread_std = (np.stack([p.plan.spread_std if p.plan.spread is not None
                                     else np.zeros(arena.latent, dtype=np.float32) for p in params])
                           if self.clouds else None)
        self.pan = np.array([output_gains(p.gain, p.pan, p.out, channels, p.cue) for p in params],
                            dtype=np.float64).reshape(-1, channels)
        self.pan /= np.array([p.plan.points for p in params], dtype=np.float64).reshape(-1, 1)
        self.pan32 = self.pan.astype(np.float32)
        self.has_stop = np.array([p.stop_at is not None for p in params], dtype=bool)
        self.stop_at = as_int(_NO_STOP if p.stop_at is None else p.stop_at for p in params)
        self.fade = as_int(p.fade for p in params)
        self.deterministic = np.array([p.deterministic for p in params], dtype=bool)
        # when each voice works ahead (a cloud's grains together: they share what they work out)
        self.phase = (self.numbers * 2654435761) % BLOCK

    def _place_terms(self, params, arena) -> None:
        """Each row's latent series: where they are in the arena, how long, how indexed."""
        terms = max([p.plan.terms for p in params], default=0)
        self.terms = terms
        self.term_offset = np.zeros((self.n, terms), dtype=np.int64)
        self.term_length = np.ones((self.n, terms), dtype=np.int64)
        self.term_column = np.full((self.n, terms), -1, dtype=np.int64)
        self.term_count = np.zeros(self.n, dtype=np.int64)
        while True:                      # again if the arena moved its rows meanwhile (a seqlock)
            generation = arena.steady_generation()
            for row, p in enumerate(params):
                plan = p.plan
                self.term_count[row] = plan.terms
                for j, frames in enumerate(plan.frames):
                    self.term_offset[row, j] = arena.offset(frames)
                    self.term_length[row, j] = len(frames)
                    self.term_column[row, j] = plan.index_column[j]
            self.arena = arena.rows      # after placing: it holds every offset above
            if arena.generation == generation:
                break
        self.indexed = bool((self.term_column >= 0).any())
        # rows whose many one-frame terms (a mapping's) are mixed by one product, not a loop
        present = np.arange(terms)[None, :] < self.term_count[:, None]
        self.one_frame = present & (self.term_length == 1) & (self.term_column < 0)
        self.one_frame &= (self.one_frame.sum(axis=1) >= ONE_FRAME_PRODUCT)[:, None]
        self.grouped = bool(self.one_frame.any())

    def with_slots(self, slots) -> "VoiceTable":
        """The same table, its voices' cache slots moved (after a rewind)."""
        table = object.__new__(VoiceTable)
        table.__dict__.update(self.__dict__)
        table.slots = slots
        return table
