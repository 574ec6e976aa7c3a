"""Synthesis: lay decoded windows into a voice's output, concatenated or overlap-added.

``concat`` lays whole windows end to end (the paper's raw texture, with its seams); ``ola``
multiplies each window by a periodic Hann window and overlap-adds at half a window, where the
windows sum exactly to one, so there are no seams. Gains ramp linearly across each window from
the previous window's gain, so gain, pan and fade changes never click.
"""

from __future__ import annotations

import numpy as np

__all__ = ["synthesis_window", "add_windows"]


def synthesis_window(synth: str, window: int) -> np.ndarray:
    """Ones for concat; a periodic Hann window (sums to 1 at hop window/2) for ola."""
    if synth == "concat":
        return np.ones(window, dtype=np.float32)
    n = np.arange(window)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / window)).astype(np.float32)


def add_windows(out: np.ndarray, decoded: np.ndarray, offsets_start: int, hop: int,
                shape: np.ndarray, gains: np.ndarray, previous_gain: np.ndarray) -> np.ndarray:
    """Add ``decoded`` windows into ``out`` (2, samples), the first at ``offsets_start``.

    decoded : (m, window) float32, windows ``hop`` apart
    shape : (window,) synthesis window
    gains : (m, 2) left/right gain each window ramps to; previous_gain (2,) the one before
    Returns the gain of the last window (for the next call).
    """
    m, window = decoded.shape
    if m == 0:
        return previous_gain
    ramp = np.arange(window, dtype=np.float32) / np.float32(window)      # (window,)
    start_gains = np.concatenate([previous_gain[None, :], gains[:-1]])    # (m, 2)
    shaped = decoded * shape                                              # (m, window)
    overlap = window // hop
    span = (m + overlap - 1) * hop
    for channel in range(2):
        g0 = start_gains[:, channel:channel + 1]
        g1 = gains[:, channel:channel + 1]
        y = shaped * (g0 + (g1 - g0) * ramp)                              # (m, window)
        lanes = out[channel, offsets_start:offsets_start + span].reshape(m + overlap - 1, hop)
        for part in range(overlap):
            lanes[part:part + m] += y[:, part * hop:(part + 1) * hop]
    return gains[-1].copy()
