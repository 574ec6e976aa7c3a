"""What the engine is told (commands) and what it keeps per voice between steps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..voice import VoiceParams

__all__ = ["Command", "VoiceRuntime", "QUANTS"]

QUANTS = ("now", "beat", "bar")


@dataclass
class Command:
    """A change to the engine, applied at the start of one step."""

    kind: str                     # "add", "set", "stop", "hush", "tempo"
    index: int | None = None      # the voice it concerns
    params: VoiceParams | None = None
    changes: dict = field(default_factory=dict)
    value: float = 0.0            # tempo bpm, or fade length in samples
    quant: str = "now"


class VoiceRuntime:
    """A voice as the engine plays it: params plus the state synthesis carries between steps."""

    __slots__ = ("params", "tail", "last_gain", "ended", "noise_cache")

    def __init__(self, params: VoiceParams, tail_len: int):
        self.params = params
        self.tail = np.zeros((2, tail_len), dtype=np.float32)
        self.last_gain = np.zeros(2, dtype=np.float32)     # voices fade in over their first window
        self.ended = False
        self.noise_cache: dict = {}

    def snapshot(self):
        return (self.params, self.tail.copy(), self.last_gain.copy(), self.ended)

    @classmethod
    def restore(cls, snap, noise_cache):
        runtime = cls.__new__(cls)
        runtime.params, tail, last_gain, runtime.ended = snap
        runtime.tail, runtime.last_gain = tail.copy(), last_gain.copy()
        runtime.noise_cache = noise_cache
        return runtime
