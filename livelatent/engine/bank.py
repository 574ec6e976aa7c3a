"""The voice bank: every playing voice's windows for a span of steps, decoded and mixed.

The timeline (:mod:`.engine`) says which voices play with which parameters; the bank keeps
what synthesis carries from one step to the next (each voice's overlap tail, its last gain)
and turns a span of steps into one mixed, limited block: plan every voice's windows, decode
them all in one batch, overlap-add, pan and sum.
"""

from __future__ import annotations

import numpy as np

from ..voice import plan_windows
from .mixer import soft_limit
from .synth import add_windows, synthesis_window

__all__ = ["VoiceRuntime", "Bank", "SpanResult"]


class VoiceRuntime:
    """What synthesis carries between steps for one voice."""

    __slots__ = ("tail", "last_gain", "ended", "noise_cache")

    def __init__(self, tail_len: int):
        self.tail = np.zeros((2, tail_len), dtype=np.float32)
        self.last_gain = np.zeros(2, dtype=np.float32)     # voices fade in over their first window
        self.ended = False
        self.noise_cache: dict = {}

    def snapshot(self):
        return (self.tail.copy(), self.last_gain.copy(), self.ended)

    @classmethod
    def restore(cls, snap, noise_cache) -> "VoiceRuntime":
        runtime = cls.__new__(cls)
        tail, last_gain, runtime.ended = snap
        runtime.tail, runtime.last_gain = tail.copy(), last_gain.copy()
        runtime.noise_cache = noise_cache
        return runtime


class SpanResult:
    """What a span produced besides its samples: voices to change or forget, and messages."""

    __slots__ = ("block", "reverted", "finished", "messages", "sound_end", "peak")

    def __init__(self, block, reverted, finished, messages, sound_end, peak):
        self.block, self.reverted, self.finished = block, reverted, finished
        self.messages, self.sound_end, self.peak = messages, sound_end, peak


class Bank:
    """The synthesis state of the voices, keyed by voice number."""

    def __init__(self, codec, *, seed: int, step: int):
        self.codec = codec
        self.seed = seed
        self.window = codec.window
        self.step = step
        self.tail_len = self.window - step
        self.shapes = {s: synthesis_window(s, self.window) for s in ("concat", "ola")}
        self.runtimes: dict[int, VoiceRuntime] = {}
        self.stem_sink = None          # callable(number, name, first_sample, block) for stems

    def snapshot(self) -> dict:
        return {n: rt.snapshot() for n, rt in self.runtimes.items()}

    def restore(self, snapshot: dict) -> None:
        caches = {n: rt.noise_cache for n, rt in self.runtimes.items()}
        self.runtimes = {n: VoiceRuntime.restore(s, caches.get(n, {})) for n, s in snapshot.items()}

    def render(self, voices, clock, first: int, length: int) -> SpanResult:
        """Samples ``[first, first + length)`` of ``voices`` (VoiceParams by number)."""
        end = first + length
        plans, reverted, messages = [], {}, []
        for number, params in voices.items():
            runtime = self.runtimes.get(number)
            if runtime is None:
                runtime = self.runtimes[number] = VoiceRuntime(self.tail_len)
            plan, carried = plan_windows(params, first, end, clock=clock, engine_seed=self.seed,
                                         latent=self.codec.latent_dim, noise_cache=runtime.noise_cache)
            if plan.reverted_at is not None:
                messages.append(f"voice {params.name}: {plan.error}; reverted to its last good curve")
            if carried is not params:
                reverted[number] = carried
            plans.append((number, carried, runtime, plan))
        batch = [plan.z for *_, plan in plans if plan.z.shape[0]]
        decoded = self.codec.decode(np.concatenate(batch)) if batch else None
        mix = np.zeros((2, length), dtype=np.float32)
        row, sound_end, finished = 0, 0, []
        for number, params, runtime, plan in plans:
            buffer = np.zeros((2, length + self.tail_len), dtype=np.float32)
            buffer[:, :self.tail_len] += runtime.tail
            m = plan.z.shape[0]
            if m:
                sound_end = max(sound_end, int(plan.positions[-1]) + self.window)
                runtime.last_gain = add_windows(
                    buffer, decoded[row:row + m], int(plan.positions[0] - first),
                    params.layout.output_hop, self.shapes[params.synth], plan.gains,
                    runtime.last_gain)
                row += m
            mix += buffer[:, :length]
            runtime.tail = buffer[:, length:].copy()
            if self.stem_sink is not None:
                self.stem_sink(number, params.name, first, buffer[:, :length].T)
            if (runtime.ended and not m) or (plan.ended and m and
                                             int(plan.positions[-1]) + self.window <= end):
                finished.append(number)             # its tail is out: it is done
                del self.runtimes[number]
            elif plan.ended:
                runtime.ended = True
        block = np.ascontiguousarray(soft_limit(mix.T))
        peak = float(np.max(np.abs(block))) if length else 0.0
        return SpanResult(block, reverted, finished, messages, sound_end, peak)
