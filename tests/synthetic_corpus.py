"""A labelled corpus of synthetic sounds, for the SOM tests and the SOM benchmark.

Five families (sine tones, buzzes, noise bursts, plucked decays, chirps) with random pitch,
length and level: a good map puts each family in its own clusters.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FAMILIES", "SR", "make_sound"]

SR = 44100
FAMILIES = ("sine", "buzz", "noise", "pluck", "chirp")


def make_sound(family: str, rng: np.random.Generator, *, seconds=(0.4, 1.5)) -> np.ndarray:
    """One sound of ``family``, float32 mono at ``SR``, its length drawn from ``seconds``."""
    seconds = rng.uniform(*seconds)
    t = np.arange(int(seconds * SR)) / SR
    pitch = np.exp(rng.uniform(np.log(110), np.log(880)))
    if family == "sine":
        y = np.sin(2 * np.pi * pitch * t)
    elif family == "buzz":
        phase = (pitch * t) % 1.0
        y = np.sign(phase - 0.5) if rng.random() < 0.5 else 2 * phase - 1   # square or saw
    elif family == "noise":
        y = rng.standard_normal(t.size) * np.exp(-t / rng.uniform(0.2, 0.6))
    elif family == "pluck":
        y = sum(np.sin(2 * np.pi * pitch * h * t) / h for h in range(1, 6)) * np.exp(-t / rng.uniform(0.05, 0.15))
    else:
        start, end = (300, 5000) if rng.random() < 0.5 else (5000, 300)
        rate = np.log(end / start) / seconds
        y = np.sin(2 * np.pi * start * (np.exp(rate * t) - 1) / rate)
    y = y * np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)                   # 10 ms fades
    return (rng.uniform(0.1, 0.8) * y / np.max(np.abs(y))).astype(np.float32)
