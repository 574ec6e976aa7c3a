"""The master bus: a stateless soft limiter, so any block can be recomputed alone (rewinds), and
the interleaving of channels into the (samples, channels) blocks the outputs take."""

from __future__ import annotations

import numpy as np

__all__ = ["soft_limit", "limit_with_peak", "interleaved", "LIMIT_THRESHOLD"]

LIMIT_THRESHOLD = 0.8   # below this the signal passes untouched


def soft_limit(x: np.ndarray, threshold: float = LIMIT_THRESHOLD) -> np.ndarray:
    """Identity below ``threshold``; above, a tanh knee that approaches but never reaches 1."""
    magnitude = np.abs(x)
    over = magnitude > threshold
    if not over.any():
        return x
    headroom = 1.0 - threshold
    limited = threshold + headroom * np.tanh((magnitude - threshold) / headroom)
    return np.where(over, np.sign(x) * limited, x).astype(np.float32)


def limit_with_peak(x: np.ndarray, threshold: float = LIMIT_THRESHOLD) -> tuple[np.ndarray, float]:
    """:func:`soft_limit` of ``x`` and the peak of the result, looking at ``x`` once when nothing
    is over the threshold (the usual case)."""
    peak = max(float(x.max()), -float(x.min())) if x.size else 0.0
    if peak <= threshold:
        return x, peak
    if peak != peak:     # a NaN (the bank holds points where they decode to numbers): never
        x = np.nan_to_num(x, nan=0.0)     # let one reach the device or a file; silence there
    limited = soft_limit(x, threshold)
    return limited, float(np.max(np.abs(limited)))


def interleaved(channels: np.ndarray) -> np.ndarray:
    """(channels, samples) -> (samples, channels), contiguous (strided copies, a channel at a
    time, beat a transposed copy)."""
    out = np.empty((channels.shape[1], channels.shape[0]), dtype=np.float32)
    for c in range(channels.shape[0]):
        out[:, c] = channels[c]
    return out
