"""Latent paths: what a voice plays, window by window, besides moving between two sources.

A path is an immutable description; :mod:`.plan` turns it into latent frames and per-window
weights for the voice bank. Every path is a pure function of (parameters, seed, window), so
live playback equals offline render and sets replay exactly; ``repr`` is code that rebuilds it.

- ``plane(a, b, c, d, x=curve, y=curve)``: bilinear mixing of four corners' frames (mean and
  log-variance alike): ``a`` at (0, 0), ``b`` at (1, 0), ``c`` at (0, 1), ``d`` at (1, 1).
- ``along(path, dirs, {0: sine(8) * 2, 3: saw(4)})``: a source or path moved along principal
  directions, each coefficient in units of that direction's standard deviation.
- ``cloud(path, spread=curve, points=k)``: k points drawn around the path (``spread`` in
  standard deviations of the path's frames, per latent dimension), decoded and overlap-added
  as grains, averaged. Seeded like all noise.
- ``follow(corpus, centroid=curve, loudness=curve, pitch=None, smooth=0.5)``: window by window,
  the corpus frame whose decoded window best matches the target descriptors (see :mod:`.follow`).

A path's sources may be any source: files, SOM clusters, latent series (``a.reverse()``...).
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

from ..curves import Curve, as_curve
from ..errors import ParameterError, is_real, real_value
from ..sources import Source
from .directions import Directions

__all__ = ["Path", "Plane", "PlaneAt", "Along", "Cloud", "Follow", "plane", "along", "cloud", "follow",
           "MAX_POINTS", "MAX_TERMS"]

MAX_POINTS = 32        # grains of a cloud
MAX_TERMS = 64         # latent series one voice mixes (corners, offsets, directions)


class Path:
    """Base of the path kinds: immutable, ``repr`` is code, ``curves()`` lists its curves."""

    grains = 1

    def walk(self):
        """This path and every path inside it."""
        yield self
        for part in getattr(self, "corners", None) or (getattr(self, "base", None),):
            if isinstance(part, Path):
                yield from part.walk()

    @property
    def follows(self) -> bool:
        """Whether descriptor following is part of it."""
        return any(isinstance(node, Follow) for node in self.walk())

    def curves(self) -> list[Curve]:
        return []

    def sources(self) -> list[Source]:
        return []

    def __setattr__(self, name, value):
        raise AttributeError("a path cannot be changed; build another (v.path = plane(...))")

    def _init(self, **fields):
        for name, value in fields.items():
            object.__setattr__(self, name, value)


def _part(value, role: str):
    """A path's part: a path, or a source (a latent series too)."""
    if isinstance(value, (Path, Source)):
        return value
    if hasattr(value, "sorted_by"):
        raise ParameterError(f"{role}: a corpus is many sources; give one of them, or a path "
                             f"through it: corpus.sorted_by('centroid'), follow(corpus, ...)")
    raise ParameterError(f"{role}: {type(value).__name__} is not a source or a path; give a "
                         f"source (source('x.wav'), som[3], a.reverse()...) or a path")


def _leaf_sources(part) -> list:
    return part.sources() if isinstance(part, Path) else [part]


def _leaf_curves(part) -> list:
    if isinstance(part, Path):
        return part.curves()
    found = [part.position] if getattr(part, "position", None) is not None else []
    return found + [offset.amount for offset in getattr(part, "offsets", ())]


def _code(part) -> str:
    return repr(part) if isinstance(part, Path) else part.code


class Plane(Path):
    def __init__(self, a, b, c, d, x, y):
        corners = tuple(_part(v, f"plane corner {n}") for n, v in zip("abcd", (a, b, c, d)))
        for corner in corners:
            if isinstance(corner, Path) and corner.grains > 1:
                raise ParameterError("a plane's corner cannot be a cloud: put the plane in the cloud")
        self._init(corners=corners, x=as_curve(x), y=as_curve(y))

    def curves(self):
        return [self.x, self.y] + [c for corner in self.corners for c in _leaf_curves(corner)]

    def sources(self):
        return [s for corner in self.corners for s in _leaf_sources(corner)]

    def __repr__(self):
        a, b, c, d = (_code(v) for v in self.corners)
        return f"plane({a}, {b}, {c}, {d}, x={self.x!r}, y={self.y!r})"

    def at(self, x: float, y: float) -> "PlaneAt":
        """The point (x, y) of the plane (its corners' centroids, mixed bilinearly): a place
        in the latent space, e.g. a mapping's target. 0 to 1 is inside the plane; beyond, the
        mix extrapolates, as a plane's x and y do when it plays (a point too far out for a
        mapping to keep is refused where it is used)."""
        for name, value in (("x", x), ("y", y)):
            if not (is_real(value) and math.isfinite(value)):
                raise ParameterError(f"plane.at({name}={value!r}): a finite number (0 to 1 is inside "
                                     f"the plane; beyond, it extrapolates)")
        return PlaneAt(self, float(x), float(y))


class PlaneAt(NamedTuple):
    """A point of a plane (see :meth:`Plane.at`)."""

    plane: Plane
    x: float
    y: float


class Along(Path):
    def __init__(self, base, directions, coefficients):
        base = _part(base, "along")
        if not isinstance(directions, Directions):
            raise ParameterError(f"along: {type(directions).__name__} is not directions; make them "
                                 f"with directions(corpus, k=8)")
        if not isinstance(coefficients, dict) or not coefficients:
            raise ParameterError("along: give the coefficients as {direction: curve}, for example "
                                 "{0: sine(8) * 2, 3: saw(4)}")
        checked = {}
        for index, value in coefficients.items():
            directions[index]                        # not a number, or out of range: a clear error
            checked[int(index)] = as_curve(value)
        self._init(base=base, directions=directions,
                   coefficients=MappingProxyType(dict(sorted(checked.items()))))

    @property
    def grains(self):
        return getattr(self.base, "grains", 1)

    def curves(self):
        return list(self.coefficients.values()) + _leaf_curves(self.base)

    def sources(self):
        return _leaf_sources(self.base)

    def __repr__(self):
        coefs = ", ".join(f"{i}: {c!r}" for i, c in self.coefficients.items())
        return f"along({_code(self.base)}, {self.directions.code}, {{{coefs}}})"


class Cloud(Path):
    def __init__(self, base, spread, points):
        base = _part(base, "cloud")
        if isinstance(base, Path) and base.grains > 1:
            raise ParameterError("a cloud inside a cloud: give one cloud more points")
        if isinstance(points, bool) or not isinstance(points, (int, np.integer)) \
                or not 1 <= points <= MAX_POINTS:
            raise ParameterError(f"points={points!r} must be a whole number from 1 to {MAX_POINTS}")
        if is_real(spread) and spread < 0:           # (it played as its size: -1 as 1)
            raise ParameterError(f"spread={spread!r} must be 0 or more standard deviations")
        self._init(base=base, spread=as_curve(spread), points=int(points))

    @property
    def grains(self):
        return self.points

    def curves(self):
        return [self.spread] + _leaf_curves(self.base)

    def sources(self):
        return _leaf_sources(self.base)

    def __repr__(self):
        return f"cloud({_code(self.base)}, spread={self.spread!r}, points={self.points})"


class Follow(Path):
    def __init__(self, corpus, targets: dict, smooth):
        from .descriptors import DESCRIPTORS
        if not hasattr(corpus, "frames") or not hasattr(corpus, "content_hash"):
            raise ParameterError(f"follow: {type(corpus).__name__} is not a corpus; make one with "
                                 f"corpus(sources, som or folder)")
        given = {name: as_curve(value) for name, value in targets.items() if value is not None}
        unknown = sorted(set(given) - set(DESCRIPTORS))
        if unknown:
            raise ParameterError(f"follow: the index has no descriptor {unknown[0]!r} (it has "
                                 f"{', '.join(DESCRIPTORS)})")
        if not given:
            raise ParameterError("follow: give at least one target, e.g. centroid=ramp(500, 4000, 16)")
        value = real_value(smooth)        # (text and True are no numbers here)
        if not (math.isfinite(value) and 0 <= value <= 100):
            raise ParameterError(f"smooth={smooth!r} must be a number from 0 (jump freely) to 100")
        self._init(corpus=corpus, targets=MappingProxyType(given), smooth=value)

    def curves(self):
        return list(self.targets.values())

    def sources(self):
        return list(getattr(self.corpus, "sources", []))

    def __repr__(self):
        targets = ", ".join(f"{name}={curve!r}" for name, curve in self.targets.items())
        return f"follow({self.corpus.code}, {targets}, smooth={self.smooth!r})"



def plane(a, b, c, d, *, x=0.5, y=0.5) -> Plane:
    """Four sources (or paths) as the corners of a plane; ``x`` and ``y`` (curves, 0 to 1) move
    inside it. ``plane(flute, cello, som[3], organ, x=sine(8), y=tri(16))``"""
    return Plane(a, b, c, d, x, y)


def along(base, directions, coefficients: dict) -> Along:
    """``base`` (a source or path) moved along principal directions: ``{direction: curve}``,
    each in standard deviations. ``along(flute, dirs, {0: sine(8) * 2, 3: saw(4)})``"""
    return Along(base, directions, coefficients)


def cloud(base, *, spread=0.5, points: int = 4) -> Cloud:
    """``points`` grains drawn around ``base`` (a source or path), ``spread`` standard
    deviations away, decoded and averaged. ``cloud(plane(...), spread=tri(8) * 2, points=6)``

    The standard deviations are those of the path's own frames, per latent dimension: a path
    that holds still (``a.freeze(1)``) has none, so its cloud stays a point; move it with
    ``along`` or ``offset`` instead."""
    return Cloud(base, spread, points)


def follow(corpus, *, centroid=None, loudness=None, pitch=None, smooth: float = 0.5,
           **others) -> Follow:
    """The corpus frames whose decoded windows best match target descriptors, window by
    window: ``centroid`` and ``pitch`` in Hz, ``loudness`` in dB (curves or numbers); ``smooth``
    favours reading on in the corpus over jumping.
    ``follow(strings, centroid=tri(16) * 3600 + 400, loudness=-20)``"""
    return Follow(corpus, {"centroid": centroid, "loudness": loudness, "pitch": pitch, **others},
                  smooth)
