"""The paper's three interpolation strategies as frame schedules.

Given window indices ``k`` of a voice (0, 1, 2, ... from the voice's start), a strategy says
which latent frame of each source window k reads and whether the voice is still playing:

- ``stepwise`` (Algorithm 1): one pass over the sources per step; the amount is held for a
  pass at the next value of ``steps`` (or of the curve sampled at the pass's first window).
- ``meso`` (Algorithm 2): consecutive frames; the amount follows the curve window by window.
- ``extension`` (Algorithm 3): frames read at a hop ``stretch`` times shorter than the output
  hop and laid end to end, so the sources play ``stretch`` times longer.

How frames are read and laid out depends on the synthesis too (:func:`layout`): ``concat``
lays whole windows end to end as in the paper; ``ola`` overlap-adds Hann windows at half a
window, reading frames at half the hop so the duration is the same as with concat.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .errors import ParameterError, real_value

__all__ = ["STRATEGIES", "SYNTHS", "FITS", "Layout", "layout", "legacy_stretch", "frames_per_pass",
           "step_values"]

STRATEGIES = ("stepwise", "meso", "extension")
SYNTHS = ("concat", "ola")
FITS = ("crop", "loop")


@dataclass(frozen=True)
class Layout:
    """How a voice reads its sources and writes its output, in samples."""

    window: int       # samples per decoded window
    input_hop: int    # hop between the source frames consecutive windows read
    output_hop: int   # hop between consecutive output windows

    @property
    def stretch(self) -> float:
        return self.output_hop / self.input_hop


def legacy_stretch(stretch):
    """A stretch as older livelatent took it (it read ``"4"`` and ``True`` with ``float()``):
    journals and replayed cells may hold those, and must play as they did."""
    if isinstance(stretch, (str, bool, np.bool_)):
        try:
            return float(stretch)
        except ValueError:
            return stretch                   # (refused below, as it was then)
    return stretch


def layout(strategy: str, synth: str, *, window: int, stretch: float = 4) -> Layout:
    """The hops a strategy and synthesis use for a model's window size."""
    if not isinstance(strategy, str) or strategy not in STRATEGIES:      # (an array: ambiguous)
        raise ParameterError(f"strategy={strategy!r} must be one of {STRATEGIES}")
    if not isinstance(synth, str) or synth not in SYNTHS:
        raise ParameterError(f"synth={synth!r} must be 'concat' (as in the paper) or 'ola' (seamless)")
    output_hop = window if synth == "concat" else window // 2
    ok = 1 <= real_value(stretch) <= output_hop        # ("4" and True are not numbers; NaN fails)
    if not ok:
        raise ParameterError(f"stretch={stretch!r} must be a number from 1 to {output_hop} "
                             f"(4 plays the sources 4x longer)")
    if strategy != "extension":
        return Layout(window, output_hop, output_hop)
    input_hop = max(1, int(round(output_hop / float(stretch))))
    return Layout(window, input_hop, output_hop)


def step_values(steps) -> np.ndarray:
    """The amounts of a stepwise voice: ``(start, stop, step)`` inclusive of stop, or a list."""
    # ("123" played amounts 1, 2 and 3, a dict its keys, a set in no order)
    if isinstance(steps, (str, bytes, dict, set, frozenset)):
        raise ParameterError(f"steps={steps!r:.60} must be (start, stop, step) or a list of "
                             f"amounts (not text, a dict or a set)")
    try:
        items = list(steps)
    except TypeError:
        raise ParameterError(f"steps={steps!r} must be (start, stop, step) or a list of amounts") from None
    if any(isinstance(v, (bool, np.bool_, str, bytes)) for v in items):
        raise ParameterError(f"steps={steps!r:.80}: amounts are numbers, not True, False or text")
    if isinstance(steps, tuple) and len(steps) == 3 and all(isinstance(v, numbers.Real) for v in steps):
        start, stop, size = (float(v) for v in steps)
        if not np.all(np.isfinite((start, stop, size))):
            raise ParameterError(f"steps={steps!r} must be three finite numbers (start, stop, step)")
        if size == 0 or (stop - start) / size < 0:
            raise ParameterError(f"steps={steps!r}: the step size must move from start towards stop")
        passes = (stop - start) / size
        if passes >= 100_000:                       # refused before an array that size is made
            raise ParameterError(f"steps={steps!r} must give between 1 and 100000 finite amounts")
        count = int(np.floor(passes + 1e-9)) + 1
        values = start + size * np.arange(count)
    else:
        try:
            values = np.asarray(items, dtype=np.float64)
        except (TypeError, ValueError):
            raise ParameterError(f"steps={steps!r} must be (start, stop, step) or a list of amounts") from None
        if values.ndim != 1:
            raise ParameterError(f"steps={steps!r} must be a flat list of amounts, not an array of "
                                 f"shape {values.shape}")
    if values.size == 0 or values.size > 100_000 or not np.all(np.isfinite(values)):
        raise ParameterError(f"steps={steps!r} must give between 1 and 100000 finite amounts")
    return values


def frames_per_pass(fit: str, frames_a, frames_b):
    """Frames in one pass over two sources: the shorter when cropping, the longer when looping."""
    return np.minimum(frames_a, frames_b) if fit == "crop" else np.maximum(frames_a, frames_b)
