"""A voice: two sources, a strategy, a curve, gain and pan -> latent vectors per window.

:class:`VoiceParams` is the immutable description of a voice at one moment; every change a
performer makes replaces it with a new one (so the engine can keep cheap snapshots for rewinds).
:func:`plan_windows` turns params and window indices into latent vectors and gains: everything
here is a pure function of (params, engine seed, window index), which is what makes renders
and replays sample-exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from .curves import const
from .errors import CurveError, check_number
from .sources import LatentFrames, Source
from .strategies import Layout, frame_schedule

__all__ = ["VoiceParams", "WindowPlan", "plan_windows", "curve_values", "pan_gains", "check_gain",
           "check_pan", "NOISE_BLOCK"]

NOISE_BLOCK = 256  # windows of latent noise drawn per generator; window k uses block k // 256


@dataclass(frozen=True, eq=False)
class VoiceParams:
    """Everything that decides what a voice plays. Samples are engine samples."""

    index: int                    # the voice's number: unique in its engine, never reused
    name: str
    a: Source
    b: Source
    frames_a: LatentFrames
    frames_b: LatentFrames
    strategy: str
    synth: str
    layout: Layout
    curve: object | None          # a Curve, or None: stepwise amounts come from `steps`
    steps: np.ndarray
    loop: bool
    fit: str
    seed: int | None
    deterministic: bool
    gain: float
    pan: float
    start: int = 0                # sample where window 0 starts
    curve_start: int = 0          # sample where the curve's t = 0 falls
    stop_at: int | None = None    # sample from which the voice fades out
    fade: int = 0                 # fade length in samples
    good_curve: object | None = None      # what to revert to when the curve fails
    good_curve_start: int = 0
    options: dict = field(default_factory=dict)   # how the performer built it (for sets)
    noise_key: int | None = None  # with the engine's seed, seeds its noise (default: its number)

    def changed(self, **changes) -> "VoiceParams":
        return replace(self, **changes)


@dataclass
class WindowPlan:
    """The windows one voice starts in a span of engine steps."""

    positions: np.ndarray     # output start sample of each window, int64 (m,)
    z: np.ndarray             # latent vectors, float32 (m, latent)
    gains: np.ndarray         # left/right gain at the end of each window, float32 (m, 2)
    ended: bool               # the voice has played its last window
    reverted_at: int | None   # sample where a failing curve was replaced by its last good one
    error: str | None         # why it was reverted


def pan_gains(gain: float, pan: float) -> tuple[float, float]:
    """Equal-power pan: pan -1 is left, 0 centre (-3 dB each side), 1 right."""
    theta = (min(max(pan, -1.0), 1.0) + 1.0) * math.pi / 4.0
    return gain * math.cos(theta), gain * math.sin(theta)


def curve_values(curve, times: np.ndarray) -> np.ndarray:
    """Evaluate ``curve`` at ``times`` (beats), checking shape and finiteness.

    Raises :class:`CurveError` saying what went wrong and at which time.
    """
    try:
        values = curve(times)
    except CurveError:
        raise
    except Exception as exc:  # a performer's function may raise anything; it must not stop sound
        raise CurveError(f"the curve raised {type(exc).__name__}: {exc}") from None
    try:
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), times.shape)
    except (TypeError, ValueError):
        raise CurveError(f"the curve returned {type(values).__name__} of shape {np.shape(values)}, "
                         f"expected one number per time") from None
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.argmax(bad))
        raise CurveError(f"the curve returned {values[first]} at t={times[first]:.3f} beats")
    return values


def _noise(params: VoiceParams, engine_seed: int, k: np.ndarray, latent: int,
           cache: dict) -> np.ndarray:
    """Standard normal noise for windows ``k``: a pure function of (seed, voice, k)."""
    out = np.empty((k.size, latent), dtype=np.float32)
    blocks = k // NOISE_BLOCK
    for block in np.unique(blocks):
        key = (params.seed, int(block))
        noise = cache.get(key)
        if noise is None:
            voice_key = params.index if params.noise_key is None else params.noise_key
            entropy = ([1, params.seed, int(block)] if params.seed is not None
                       else [0, engine_seed, voice_key, int(block)])
            noise = np.random.default_rng(entropy).standard_normal((NOISE_BLOCK, latent), dtype=np.float32)
            if len(cache) >= 4:
                cache.pop(next(iter(cache)))
            cache[key] = noise
        rows = blocks == block
        out[rows] = noise[k[rows] % NOISE_BLOCK]
    return out


def _amounts(params: VoiceParams, pass_first_k: np.ndarray, pass_index: np.ndarray,
             positions: np.ndarray, clock, curve, curve_start: int) -> np.ndarray:
    if curve is None:   # stepwise over `steps`
        return params.steps[pass_index % params.steps.size]
    if params.strategy == "stepwise":   # the curve sampled once per pass, at its first window
        positions = params.start + pass_first_k * params.layout.output_hop
    times = clock.beats(positions) - clock.beats(curve_start)
    return curve_values(curve, times)


def plan_windows(params: VoiceParams, first_sample: int, end_sample: int, *, clock,
                 engine_seed: int, latent: int, noise_cache: dict) -> tuple[WindowPlan, VoiceParams]:
    """Latent vectors for the windows this voice starts in ``[first_sample, end_sample)``.

    Returns the plan and the params to carry on with (the last good curve, if the curve
    failed at some window: windows from that one on use the last good curve).
    """
    hop = params.layout.output_hop
    k0 = max(0, -(-(first_sample - params.start) // hop))
    k1 = max(k0, -(-(end_sample - params.start) // hop))
    k = np.arange(k0, k1, dtype=np.int64)
    positions = params.start + k * hop
    index_a, index_b, pass_index, pass_first_k, alive = frame_schedule(
        params.strategy, k, frames_a=len(params.frames_a), frames_b=len(params.frames_b),
        fit=params.fit, passes=params.steps.size, loop=params.loop)

    # the fade of stop(): gain falls linearly from stop_at over `fade` samples; the first window
    # at zero (wherever it falls, whatever span is asked) ramps down to silence and is the last
    fade_gain = np.ones(k.size)
    if params.stop_at is not None:
        past = positions - params.stop_at
        fade_gain = np.where(past < 0, 1.0, np.clip(1.0 - past / max(params.fade, 1), 0.0, 1.0)
                             if params.fade > 0 else np.where(past < 0, 1.0, 0.0))
        silent_from = params.stop_at + params.fade      # gain is 0 from here on
        last = params.start + max(0, -(-(silent_from - params.start) // hop)) * hop
        alive &= positions <= last
    ended = not alive.all()
    keep = np.flatnonzero(alive)
    k, positions, index_a, index_b = k[keep], positions[keep], index_a[keep], index_b[keep]
    pass_index, pass_first_k, fade_gain = pass_index[keep], pass_first_k[keep], fade_gain[keep]

    reverted_at, error = None, None
    try:
        amounts = _amounts(params, pass_first_k, pass_index, positions, clock,
                           params.curve, params.curve_start)
    except CurveError as exc:
        # find the first failing window one by one, so the revert lands on the same window
        # however the engine chunks its work (live and offline must agree)
        amounts = np.empty(k.size)
        for i in range(k.size):
            sl = slice(i, i + 1)
            try:
                amounts[sl] = _amounts(params, pass_first_k[sl], pass_index[sl],
                                       positions[sl], clock, params.curve, params.curve_start)
            except CurveError as exc_i:
                reverted_at, error = int(positions[i]), str(exc_i)
                break
        else:  # the batch failed but no single window did: the curve is not elementwise
            reverted_at, error = (int(positions[0]) if k.size else first_sample), str(exc)
            i = 0
        params = params.changed(curve=params.good_curve, curve_start=params.good_curve_start)
        if i < k.size:
            try:
                amounts[i:] = _amounts(params, pass_first_k[i:], pass_index[i:],
                                       positions[i:], clock, params.curve, params.curve_start)
            except CurveError:   # even the last good curve fails here: hold the last amount
                held = const(float(amounts[i - 1]) if i > 0 else 0.5)
                amounts[i:] = held(0.0)
                params = params.changed(curve=held, good_curve=held)

    a = amounts[:, None].astype(np.float32)
    fa, fb = params.frames_a, params.frames_b
    mean = (1.0 - a) * fa.mu[index_a] + a * fb.mu[index_b]             # (m, latent)
    if params.deterministic:
        z = mean
    else:
        logvar = (1.0 - a) * fa.logvar[index_a] + a * fb.logvar[index_b]
        z = mean + np.exp(0.5 * logvar) * _noise(params, engine_seed, k, latent, noise_cache)
    left, right = pan_gains(params.gain, params.pan)
    gains = (fade_gain[:, None] * np.array([left, right])[None, :]).astype(np.float32)
    plan = WindowPlan(positions, np.ascontiguousarray(z, dtype=np.float32), gains,
                      ended, reverted_at, error)
    return plan, params


def check_gain(gain) -> float:
    return check_number(gain, name="gain", low=0.0, high=16.0, meaning="from 0 to 16 (1 is unity)")


def check_pan(pan) -> float:
    return check_number(pan, name="pan", low=-1.0, high=1.0, meaning="from -1 (left) to 1 (right)")
