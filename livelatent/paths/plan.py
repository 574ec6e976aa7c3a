"""A voice's path compiled for the voice bank: latent series (terms) and per-window channels.

Whatever the path, the point a voice plays at window k is a weighted sum of frames::

    point(k) = sum over terms t of  weight_t(k) * frames_t[index_t(k)]      (mean | log-variance)

A *term* is a latent series placed in the frame arena: a source's frames, a corpus's, or a
one-frame offset (a direction, whose log-variance is zero, so it moves the mean only). Its
index is either *sequential* (frame k of the pass, modulo its length) or given per window by a
channel (a scrubbed source, descriptor following). Two sources along a curve are two terms
with weights ``1 - a`` and ``a``; a plane's corners have bilinear weights; ``along`` adds one
offset term per direction. A cloud's grains are rows of the voice table of their own, sharing
the plan, each with its own noise; its spread is one more channel.

:meth:`Plan.channels` gives, for a block of windows, every weight, every given index and the
spread: one row of numbers per window, worked out a block of 256 windows ahead by the block
cache like a curve's amounts. The bank then does the same few array operations for every
voice, whatever its path (:mod:`livelatent.engine.bank`).
"""

from __future__ import annotations

import threading

import numpy as np

from ..controls import evaluating
from ..errors import CurveError, ParameterError
from ..live_source import LiveSource
from ..mapping.node import Mapped
from ..mapping.steering import Steered
from ..sources import LatentFrames
from ..strategies import frames_per_pass
from ..voice import curve_values
from .descriptors import descriptor_index
from .follow import choose
from .nodes import MAX_TERMS, Along, Cloud, Follow, Path, Plane

__all__ = ["Plan", "Block", "compile_plan", "with_plan", "warm", "BLOCK_WINDOWS"]

BLOCK_WINDOWS = 256     # windows per block of channels (the block cache's BLOCK)
WEIGHT_LIMIT = 1e30     # a term's weight is held within +-this (float32 reaches 3.4e38)
SPREAD_LIMIT = 1e18     # a cloud's spread, in deviations, is held within this: its square stays
                        # within float32 (beyond 1.8e19 it overflowed, and played as no spread)


class Block:
    """What channels are computed from: windows ``k``, the engine samples they start at, their
    times in beats since the path's curves started, and (two sources along a curve) the amounts
    and the times since the sources were set (their own scrub and offset curves start there)."""

    def __init__(self, k: np.ndarray, beats: np.ndarray, amounts: np.ndarray | None = None, *,
                 source_beats: np.ndarray | None = None, controls=None, origins=(0.0, 0.0),
                 bpm: float = 60.0, samples: np.ndarray | None = None):
        self.k, self.beats, self.samples = k, beats, samples
        self.source_beats = beats if source_beats is None else source_beats
        # held within the weights' limit: an amount of 1e308 (a controller's) overflowed
        # float32, and numpy said so on the terminal
        self.amounts = (None if amounts is None
                        else np.clip(amounts, -WEIGHT_LIMIT, WEIGHT_LIMIT).astype(np.float32))
        self.controls, self.origins, self.bpm = controls, origins, bpm     # controller curves
        self._values: dict[tuple, np.ndarray] = {}

    def value(self, curve, *, of_sources: bool = False) -> np.ndarray:
        """The curve at the block's times (each curve once per block)."""
        key = (id(curve), of_sources)
        found = self._values.get(key)
        if found is None:
            with evaluating(self.controls, self.origins[of_sources], self.bpm):
                found = self._values[key] = curve_values(
                    curve, self.source_beats if of_sources else self.beats)
        return found


class _Term:
    __slots__ = ("frames", "factors", "index", "main")

    def __init__(self, frames, factors, index=None, main=True):
        self.frames, self.factors, self.index, self.main = frames, tuple(factors), index, main


class Plan:
    """Terms, how each one's weight and index are worked out, and the channel layout."""

    codec = None            # the model it was compiled for (to compile a change again)
    controls = frozenset()  # the controllers its curves read
    chooses = False         # whether a term's frames are chosen by descriptors (costly per block)

    def __init__(self, terms: list[_Term], *, fit: str, points: int = 1, spread=None,
                 spread_std=None):
        if len(terms) > MAX_TERMS:
            raise ParameterError(f"the path mixes {len(terms)} latent series; at most {MAX_TERMS}")
        self._terms = terms
        self.frames = [t.frames for t in terms]
        self.points, self.spread = points, spread
        self.spread_std = spread_std
        indexed = [i for i, t in enumerate(terms) if t.index is not None]
        self.index_column = [-1] * len(terms)
        for column, i in enumerate(indexed, start=len(terms)):
            self.index_column[i] = column
        self.spread_column = len(terms) + len(indexed) if spread is not None else -1
        self.columns = len(terms) + len(indexed) + (spread is not None)
        sequential = [len(t.frames) for t in terms if t.main and t.index is None]
        if sequential:
            length = sequential[0] if len(sequential) == 1 else frames_per_pass(fit, min(sequential),
                                                                               max(sequential))
        else:
            length = max(len(t.frames) for t in terms if t.main)
        self.length = int(length)

    @property
    def terms(self) -> int:
        return len(self._terms)

    def channels(self, block: Block) -> np.ndarray:
        """``(windows, columns)`` float32: weights, then given indices, then the spread."""
        out = np.empty((block.k.size, self.columns), dtype=np.float32)
        for column, term in enumerate(self._terms):
            weight = None
            with np.errstate(over="ignore", invalid="ignore"):      # (_float32_weight holds it)
                for factor in term.factors:
                    value = factor(block)
                    weight = value if weight is None else weight * value
            out[:, column] = 1.0 if weight is None else _float32_weight(weight)
            if term.index is not None:
                out[:, self.index_column[column]] = term.index(block)
        if self.spread is not None:
            out[:, self.spread_column] = np.minimum(np.abs(block.value(self.spread)), SPREAD_LIMIT)
        return out


def _float32_weight(weight):
    """A term's weight as float32 can hold it: beyond +-1e30 (an amount or a plane's x of 1e300),
    held there, and a product that lost its number (inf times 0) is 0, instead of an infinity
    that makes the voice's point NaN (silence) where the bank would hold it at its edge."""
    weight = np.nan_to_num(np.asarray(weight, dtype=np.float64), nan=0.0, posinf=WEIGHT_LIMIT,
                           neginf=-WEIGHT_LIMIT)
    return np.clip(weight, -WEIGHT_LIMIT, WEIGHT_LIMIT)


# -- compiling -------------------------------------------------------------------------------------
def _curve_factor(curve, of_sources: bool = False):
    return lambda block: block.value(curve, of_sources=of_sources)


def _corner_factor(i: int, x, y):
    def factor(block):
        u, v = block.value(x), block.value(y)
        return (u if i % 2 else 1.0 - u) * (v if i >= 2 else 1.0 - v)
    return factor


def _scrub_index(curve, count: int, of_sources: bool):
    return lambda block: np.rint(np.clip(block.value(curve, of_sources=of_sources), 0.0, 1.0) * (count - 1))


def _live_index(src, hop: int, count: int):
    return lambda block: src.rows(hop, block.samples, count)


class _Compiler:
    def __init__(self, codec, hop: int):
        self.codec, self.hop = codec, hop
        self.chooses = False
        self.terms: list[_Term] = []
        self.cloud = None

    def source(self, src, factors, frames=None, *, of_sources: bool = False):
        """A source's terms; ``of_sources``: its curves are timed from when the voice's sources
        were set (a voice between two sources), else from when the path was."""
        frames = src.frames(self.codec, self.hop) if frames is None else frames
        self._check_latent(frames, getattr(src, "code", "a source"))
        position = getattr(src, "position", None)
        index = None if position is None else _scrub_index(position, len(frames), of_sources)
        if isinstance(src, LiveSource):        # the input from its delay ago, by engine sample
            index = _live_index(src, self.hop, len(frames))
        self.terms.append(_Term(frames, factors, index))
        for offset in getattr(src, "offsets", ()):
            self._check_latent(offset.frames, offset.code)
            self.terms.append(_Term(offset.frames,
                                    list(factors) + [_curve_factor(offset.amount, of_sources)],
                                    main=False))

    def path(self, node, factors):
        if not isinstance(node, Path):
            self.source(node, factors)
        elif isinstance(node, Plane):
            for i, corner in enumerate(node.corners):
                self.path(corner, list(factors) + [_corner_factor(i, node.x, node.y)])
        elif isinstance(node, Along):
            self.path(node.base, factors)
            for index, curve in node.coefficients.items():
                frames = node.directions.frames(index)
                self._check_latent(frames, node.directions.code)
                self.terms.append(_Term(frames, list(factors) + [_curve_factor(curve)], main=False))
        elif isinstance(node, Cloud):
            first = len(self.terms)
            self.path(node.base, factors)
            mains = [t.frames.mu for t in self.terms[first:] if t.main]
            std = np.concatenate(mains).std(axis=0) if mains else np.zeros(self.codec.latent_dim)
            self.cloud = (node.points, node.spread, std.astype(np.float32))
        elif isinstance(node, Follow):
            self._follow(node, factors)
        elif isinstance(node, Mapped):
            self._mapped(node, factors)
        elif isinstance(node, Steered):        # the path, its parameters curves of the mapping
            self.path(node.driven, factors)
        else:
            raise ParameterError(f"{type(node).__name__} is not a path kind livelatent plays")

    def _mapped(self, node: Mapped, factors):
        """One one-frame term per row of the model, weighted by the model's weights of the
        inputs' values (worked out once per block for all the terms)."""
        rows, latent = node.model.rows, self.codec.latent_dim
        if rows.shape[1] != 2 * latent:
            raise ParameterError(f"{node!r} was trained for a model of {rows.shape[1] // 2} latent "
                                 f"dimensions; this one has {latent}")

        def weights(block):
            key = ("mapped", id(node))
            found = block._values.get(key)
            if found is None:
                values = np.stack([block.value(c) for c in node.inputs], axis=1)
                found = block._values[key] = node.weights(values)
            return found
        for t in range(rows.shape[0]):
            frames = LatentFrames(rows[t:t + 1, :latent], rows[t:t + 1, latent:], self.hop, tail=False)
            self.terms.append(_Term(frames, list(factors) + [lambda block, t=t: weights(block)[:, t]]))

    def _follow(self, node: Follow, factors):
        frames = node.corpus.frames(self.codec, self.hop)
        index = descriptor_index(self.codec, node.corpus, self.hop)
        targets, smooth = node.targets, node.smooth
        memo = _Memo()

        def chosen(block):
            # targets to a millionth of a Hz or dB: the same picks whoever works them out, at
            # times computed from any start sample (the writer's warm-up, the decode thread)
            values = {name: np.round(block.value(c), 6) for name, c in targets.items()}
            key = tuple((name, v.tobytes()) for name, v in sorted(values.items()))
            found = memo.get(key)
            if found is None:
                try:
                    found = memo.put(key, choose(index, values, smooth=smooth).astype(np.float32))
                except ParameterError as exc:   # a target out of range: the voice holds, says why
                    raise CurveError(f"follow: {exc}") from None
            return found
        self.terms.append(_Term(frames, factors, chosen))
        self.chooses = True

    def _check_latent(self, frames, what):
        if frames.mu.shape[1] != self.codec.latent_dim:
            raise ParameterError(f"{what} has {frames.mu.shape[1]} latent values; this model's "
                                 f"latent space has {self.codec.latent_dim}")


class _Memo:
    """The frames a chooser picked, by the exact targets it was given (the same targets, the
    same frames: a pure function), the last few blocks' worth. A voice works out its first
    blocks in the writer's thread (:func:`warm`), so the decode thread finds them here."""

    def __init__(self, size: int = 8):
        self.size, self._found, self._lock = size, {}, threading.Lock()

    def get(self, key):
        with self._lock:
            return self._found.get(key)

    def put(self, key, value):
        with self._lock:
            self._found[key] = value
            while len(self._found) > self.size:
                del self._found[next(iter(self._found))]
        return value


def warm(params, clock, blocks: int = 2) -> None:
    """Work out the first ``blocks`` of a voice's channels now, in the writer's thread, at the
    tempo it will probably start with: a chooser's picks are then found, not computed, when the
    decode thread asks for them at the same times (any other time, it computes them itself)."""
    k = np.arange(blocks * BLOCK_WINDOWS, dtype=np.int64)
    seconds = k * params.layout.output_hop / clock.sample_rate
    beats = seconds * clock.bpm / 60.0
    for b in range(blocks):
        rows = slice(b * BLOCK_WINDOWS, (b + 1) * BLOCK_WINDOWS)
        try:
            params.plan.channels(Block(k[rows], beats[rows], source_beats=beats[rows],
                                       samples=k[rows] * params.layout.output_hop))
        except CurveError:
            return                                 # the voice finds out itself, and holds


def compile_plan(params, codec) -> Plan:
    """The plan of a voice: two sources along its curve (``params.path`` None), or its path."""
    compiler = _Compiler(codec, params.layout.input_hop)
    if params.path is None:
        compiler.source(params.a, [lambda block: 1.0 - block.amounts], params.frames_a, of_sources=True)
        compiler.source(params.b, [lambda block: block.amounts], params.frames_b, of_sources=True)
    else:
        compiler.path(params.path, [])
    points, spread, std = compiler.cloud if compiler.cloud is not None else (1, None, None)
    plan = Plan(compiler.terms, fit=params.fit, points=points, spread=spread, spread_std=std)
    plan.codec = codec
    plan.chooses = compiler.chooses
    curves = [params.curve, params.good_curve] + (
        params.path.curves() if isinstance(params.path, Path) else
        [c for src in (params.a, params.b) for c in _series_curves(src)])
    plan.controls = frozenset().union(*(c.controls() for c in curves if c is not None))
    return plan


def _series_curves(src) -> list:
    position = getattr(src, "position", None)
    return ([position] if position is not None else []) + [o.amount for o in getattr(src, "offsets", ())]


def with_plan(params, codec):
    """``params`` with its plan compiled (in the writer's thread: frames are encoded, indexes
    built, before the command is sent)."""
    return params.changed(plan=compile_plan(params, codec))
