"""The master bus: a stateless soft limiter, so any block can be recomputed alone (rewinds)."""

from __future__ import annotations

import numpy as np

__all__ = ["soft_limit", "LIMIT_THRESHOLD"]

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
