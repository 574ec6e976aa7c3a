"""The null sink: run the engine and keep nothing, for measuring it and for dry runs."""

from __future__ import annotations

import time

import numpy as np

__all__ = ["render_to_null"]


def render_to_null(engine, seconds: float | None, *, chunk_steps: int | None = None) -> dict:
    """Render ``engine`` from its position and drop the samples.

    Returns what was produced: ``frames``, ``peak`` (largest absolute sample), ``elapsed_s``
    (wall time) and ``speed`` (times faster than real time).
    """
    chunks = {} if chunk_steps is None else {"chunk_steps": chunk_steps}
    frames, peak = 0, 0.0
    began = time.perf_counter()
    for block in engine.render_chunks(seconds, **chunks):
        frames += block.shape[0]
        if block.size:
            peak = max(peak, float(np.max(np.abs(block))))
    elapsed = time.perf_counter() - began
    audio_s = frames / engine.sample_rate
    return {"frames": frames, "peak": peak, "elapsed_s": elapsed,
            "speed": audio_s / elapsed if elapsed > 0 else float("inf")}
