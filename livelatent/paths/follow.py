"""Following target descriptors: which frame of a corpus each window plays.

The chooser behind ``follow(corpus, centroid=..., loudness=...)``. For one block of consecutive
windows it picks, window by window, a frame of a :class:`~.descriptors.DescriptorIndex` whose
decoded window is near the targets, preferring to read a source's frames in order (a sound keeps
its own motion) over jumping between them. It is a shortest path through the frames, solved
exactly with a Viterbi pass:

    cost(path) = sum over windows t of  distance(frame[t], targets[t])
               + smooth * (number of windows where frame[t] != frame[t-1] + 1 in the same source)

``distance`` is a squared Euclidean distance in a normalised descriptor space: centroid and
pitch in octaves, loudness in dB, each divided by its spread over the index (the interquartile
range / 1.349, a robust standard deviation, with a floor), so one unit is "a typical difference
between two frames of this corpus". A frame without a value (no pitch, a silent window) costs
:data:`MISSING_COST` for that descriptor. Because a transition costs either nothing (the
successor) or ``smooth`` (anything else), each window costs O(frames), never O(frames^2).

The result depends on the block alone: the path starts free at the block's first window and
nothing is remembered between calls, so a voice that asks for whole fixed blocks gets the same
frames live, offline and after a rewind.
"""

from __future__ import annotations

import math
import threading
import weakref

import numpy as np

from ..errors import ParameterError
from .descriptors import DESCRIPTORS, DescriptorIndex

__all__ = ["DEFAULT_SMOOTH", "MISSING_COST", "choose", "descriptor_scales"]

DEFAULT_SMOOTH = 0.5
MISSING_COST = 9.0                 # a frame with no value: as far as three spreads
_LOG_DESCRIPTORS = ("centroid", "pitch")          # compared in octaves
_SPREAD_FLOOR = {"centroid": 0.25, "pitch": 0.25, "loudness": 3.0}   # octaves, octaves, dB
_MAX_WINDOWS = 4096                # one block at a time (the engine's blocks are 256 windows)
_scales: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()            # index -> spreads
_prepared_values: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # index -> arrays
_lock = threading.Lock()


def descriptor_scales(index: DescriptorIndex) -> dict[str, float]:
    """The unit of each descriptor in the chooser's distance: its robust spread over the index,
    in octaves for centroid and pitch and in dB for loudness (at least the floor)."""
    with _lock:
        scales = _scales.get(index)
    if scales is None:
        scales = {}
        for name in DESCRIPTORS:
            values = _compared(name, index.values[name])
            values = values[np.isfinite(values)]
            spread = 0.0
            if values.size:
                low, high = np.percentile(values, [25.0, 75.0])
                spread = float(high - low) / 1.349
            scales[name] = max(spread, _SPREAD_FLOOR[name])
        with _lock:
            _scales[index] = scales
    return dict(scales)


def choose(index: DescriptorIndex, targets: dict, *, smooth: float = DEFAULT_SMOOTH) -> np.ndarray:
    """The frame of ``index`` each window of one block plays, following ``targets``.

    Parameters
    ----------
    index : DescriptorIndex
    targets : dict of str -> array (n,) or None
        The target of each window: ``centroid`` (Hz), ``loudness`` (dB), ``pitch`` (Hz). None
        (or a missing name) does not take part. At least one target is needed; arrays have the
        same length ``n``.
    smooth : float >= 0
        The cost of not reading on in the same source, in units of squared spreads. 0 picks the
        nearest frame window by window; larger values keep reading a sound for longer.

    Returns
    -------
    ndarray int64 (n,)
        Frame indices. Equal inputs give equal outputs: among equally cheap paths the one
        that reads on is kept, then the lowest frame index.
    """
    if not isinstance(index, DescriptorIndex):
        raise ParameterError(f"choose needs a DescriptorIndex (descriptor_index(...)), "
                             f"got {type(index).__name__}")
    smooth = _check_smooth(smooth)
    wanted = _check_targets(index, targets)
    prepared = _prepared(index)
    # (in spreads: a target a million spreads away from every frame is as far as one further,
    # and its square must not overflow: 1e300 Hz picks the highest centroid, without a warning)
    goals = {name: np.clip(_compared(name, t) / prepared[name][2], -1e6, 1e6)
             for name, t in wanted.items()}
    count = len(index)
    windows = next(iter(goals.values())).shape[0]
    gap = np.empty(count)

    def add_local(total: np.ndarray, t: int) -> None:
        for name, goal in goals.items():
            values, missing, _ = prepared[name]
            np.subtract(values, goal[t], out=gap)
            np.multiply(gap, gap, out=gap)
            if missing is not None:
                gap[missing] = MISSING_COST
            total += gap

    starts = index.spans[:, 0][index.spans[:, 0] < count]   # no free way into a source's start
    reads_on = np.zeros((windows, (count + 7) // 8), dtype=np.uint8)   # one bit per frame
    jumped_from = np.zeros(windows, dtype=np.int64)
    total = np.zeros(count)
    add_local(total, 0)
    on = np.empty(count)
    for t in range(1, windows):
        best = int(np.argmin(total))
        jump = total[best] + smooth
        on[0] = np.inf
        on[1:] = total[:-1]
        on[starts] = np.inf
        reads_on[t] = np.packbits(on <= jump)
        jumped_from[t] = best
        np.minimum(on, jump, out=total)
        add_local(total, t)
    path = np.empty(windows, dtype=np.int64)
    frame = int(np.argmin(total))
    for t in range(windows - 1, 0, -1):
        path[t] = frame
        kept = (reads_on[t, frame >> 3] >> (7 - (frame & 7))) & 1
        frame = frame - 1 if kept else int(jumped_from[t])
    path[0] = frame
    return path


def _prepared(index: DescriptorIndex) -> dict:
    """Per descriptor: the index's values in spreads (0 where missing), the missing frames
    (None if none), and the spread; worked out once per index."""
    with _lock:
        found = _prepared_values.get(index)
    if found is None:
        scales = descriptor_scales(index)
        found = {}
        for name, scale in scales.items():
            values = _compared(name, index.values[name]) / scale
            missing = ~np.isfinite(values)
            found[name] = (np.where(missing, 0.0, values), missing if missing.any() else None, scale)
        with _lock:
            _prepared_values[index] = found
    return found


def _compared(name: str, values) -> np.ndarray:
    """Values in the units the chooser compares: octaves (log2 Hz) or dB."""
    values = np.asarray(values, dtype=np.float64)
    if name in _LOG_DESCRIPTORS:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.log2(np.where(values > 0, values, np.nan))
    return values


def _check_smooth(smooth) -> float:
    try:
        value = float(smooth)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(smooth, bool) or not (math.isfinite(value) and value >= 0):
        raise ParameterError(f"smooth={smooth!r} must be a number >= 0 (0: nearest frame each "
                             f"window; larger: read each sound for longer)")
    return value


def _check_targets(index: DescriptorIndex, targets) -> dict[str, np.ndarray]:
    if not isinstance(targets, dict):
        raise ParameterError(f"targets must be a dict of descriptor -> values per window, "
                             f"got {type(targets).__name__}")
    wanted: dict[str, np.ndarray] = {}
    for name, value in targets.items():
        index.check_name(name)
        if value is None:
            continue
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ParameterError(f"target {name}: {type(value).__name__} is not numbers "
                                 f"({DESCRIPTORS[name]} per window)") from None
        if array.ndim != 1 or not 1 <= array.shape[0] <= _MAX_WINDOWS:
            raise ParameterError(f"target {name} must be a 1-D array of values per window "
                                 f"(1 to {_MAX_WINDOWS}), got shape {array.shape}")
        bad = ~np.isfinite(array)
        if name in _LOG_DESCRIPTORS:
            bad |= ~(array > 0)
        if bad.any():
            where = int(np.argmax(bad))
            unit = DESCRIPTORS[name]
            need = f"a positive number of {unit}" if name in _LOG_DESCRIPTORS else f"a finite number of {unit}"
            raise ParameterError(f"target {name} is {float(array[where])} at window {where}: each value "
                                 f"must be {need}")
        wanted[name] = array
    if not wanted:
        raise ParameterError(f"follow needs at least one target: give one of "
                             f"{', '.join(f'{k} ({u})' for k, u in DESCRIPTORS.items())}")
    lengths = {name: a.shape[0] for name, a in wanted.items()}
    if len(set(lengths.values())) != 1:
        raise ParameterError(f"targets must have one value per window, the same number each; got "
                             f"{', '.join(f'{k}: {n}' for k, n in lengths.items())}")
    return wanted
