"""A mapping that drives a path's parameters instead of a raw latent point.

``m.then(plane(a, b, c, d))`` plays the plane with its ``x`` and ``y`` given by the mapping;
``m.then(along(cello, dirs, {0: 0, 3: 0}))`` gives the named directions' coefficients. The
path keeps what makes it a path (a plane's corners keep moving through their sources, a walk
along directions keeps its base), and the mapping chooses where in it.

The examples stay what they were taught as, places in the latent space; each place becomes the
path's parameters that come closest to it (for a plane, the (x, y) whose bilinear mix of the
corners' centroids is nearest, so a target given as ``plane.at(0.2, 0.7)`` gives back
(0.2, 0.7); for ``along``, the least-squares coefficients of the offset from the base's
centroid). A trained mlp or knn keeps its weights and mixes the targets' parameters instead of
the targets (the same movement between the examples); a linear mapping is fitted again to the
parameters. Each parameter is a curve of the inputs (``steer``), worked out per block of windows
like any curve, so the voice bank plays a steered path with no code of its own.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..curves import Curve, define_op
from ..errors import ParameterError
from ..paths.nodes import Along, Path, Plane
from ..sources import Source
from .models import Model, fit

__all__ = ["Steered", "slots_of", "parameters_of", "steer_model"]

_GRID = 33          # the coarse search of a plane's (x, y) before Gauss-Newton refines it


def _steer(t, model, column, lo, hi, *inputs):
    values = np.stack([c._eval(t) for c in inputs], axis=-1).reshape(-1, len(inputs))
    out = (model.weights(values) @ model.rows[:, column].astype(np.float64)).reshape(t.shape)
    return out if lo is None else np.clip(out, lo, hi)


define_op("steer", lambda model, column, lo, hi, *inputs:
          f"steer({column}, {', '.join(repr(c) for c in inputs)})")(_steer)


def slots_of(path) -> tuple:
    """The parameters a mapping can drive: a plane's ``("x", "y")``, an along's coefficients."""
    if isinstance(path, Plane):
        return ("x", "y")
    if isinstance(path, Along):
        return tuple(path.coefficients)
    raise ParameterError(f"then({type(path).__name__}): a mapping drives a plane's x and y or the "
                         f"coefficients of along(...); give one of those")


def _centroid(part, codec, hop: int, role: str) -> np.ndarray:
    if not isinstance(part, Source):
        raise ParameterError(f"then(...): {role} must be a source (its centroid is where the path's "
                             f"parameters are worked out from), not {type(part).__name__}")
    return part.frames(codec, hop).mu.mean(axis=0).astype(np.float64)


def parameters_of(path, points: np.ndarray, codec, hop: int = 512) -> np.ndarray:
    """``(n, slots)``: the path's parameters nearest to each latent point (``(n, 2 * latent)``,
    mean | log-variance; the mean is what is matched)."""
    slots = slots_of(path)                       # a path it cannot drive: a clear error
    means = np.asarray(points, dtype=np.float64)[:, :codec.latent_dim]
    if isinstance(path, Plane):
        a, b, c, d = (_centroid(p, codec, hop, "each corner") for p in path.corners)
        return _plane_xy(a, b, c, d, means)
    base = _centroid(path.base, codec, hop, "its base")
    vectors = np.stack([path.directions.vectors[i] for i in slots]).astype(np.float64)
    found, *_ = np.linalg.lstsq(vectors.T, (means - base).T, rcond=None)
    return found.T


def _plane_xy(a, b, c, d, targets: np.ndarray) -> np.ndarray:
    """Each target's nearest point of the bilinear patch ``a (0,0), b (1,0), c (0,1), d (1,1)``
    over the unit square: a grid search, then Gauss-Newton steps kept inside the square."""
    ex, ey, exy = b - a, c - a, a - b - c + d
    grid = np.linspace(0.0, 1.0, _GRID)
    gx, gy = (g.ravel() for g in np.meshgrid(grid, grid, indexing="ij"))
    patch = a + gx[:, None] * ex + gy[:, None] * ey + (gx * gy)[:, None] * exy       # (grid², latent)
    distance = ((targets[:, None, :] - patch[None, :, :]) ** 2).sum(axis=2)
    best = distance.argmin(axis=1)
    x, y = gx[best].copy(), gy[best].copy()
    for _ in range(30):
        residual = a + x[:, None] * ex + y[:, None] * ey + (x * y)[:, None] * exy - targets
        jx, jy = ex + y[:, None] * exy, ey + x[:, None] * exy
        gram = np.stack([np.stack([(jx * jx).sum(1), (jx * jy).sum(1)], -1),
                         np.stack([(jx * jy).sum(1), (jy * jy).sum(1)], -1)], -2)
        rhs = -np.stack([(jx * residual).sum(1), (jy * residual).sum(1)], -1)
        step = np.linalg.solve(gram + 1e-12 * np.eye(2), rhs[..., None])[..., 0]
        x, y = np.clip(x + step[:, 0], 0.0, 1.0), np.clip(y + step[:, 1], 0.0, 1.0)
    return np.stack([x, y], axis=1)


def steer_model(model: Model, path, x: np.ndarray, y: np.ndarray, codec, *, seed: int, k: int,
                each: bool) -> Model:
    """``model`` (fitted to latent points ``y`` from inputs ``x``) made to give ``path``'s
    parameters: an mlp or knn mixes its targets' parameters with the same weights; a linear
    mapping is fitted again to the examples' parameters."""
    if model.kind == "linear":
        return fit("linear", x, parameters_of(path, y, codec), seed=seed, k=k, each=each)
    rows = parameters_of(path, model.rows.astype(np.float64), codec)
    return dataclasses.replace(model, rows=rows.astype(np.float32))


class Steered(Path):
    """``path`` with its parameters ``slots`` given by ``model`` of ``inputs`` (curves).

    ``driven`` is the path as it plays: the same path with each slot's curve a ``steer`` curve
    (a plane's x and y kept inside the square). ``key`` is the mapping's name, which its voices
    follow when it is trained again."""

    def __init__(self, name: str, inputs, model: Model, path, slots=None, key: str = ""):
        if isinstance(path, Steered):
            raise ParameterError("then(...): this path is steered already; give the plain path")
        slots = slots_of(path) if slots is None else tuple(slots)
        if model.rows.shape[1] != len(slots):
            raise ParameterError(f"{name}: the model gives {model.rows.shape[1]} parameters; "
                                 f"{path!r} has {len(slots)}")
        inputs = tuple(inputs)
        bounded = isinstance(path, Plane)
        curves = [Curve("steer", model, j, 0.0 if bounded else None, 1.0 if bounded else None, *inputs)
                  for j in range(len(slots))]
        if isinstance(path, Plane):
            driven = Plane(*path.corners, x=curves[0], y=curves[1])
        else:
            driven = Along(path.base, path.directions, dict(zip(slots, curves)))
        self._init(name=name, inputs=inputs, model=model, path=path, slots=slots, key=key or name,
                   driven=driven)

    @property
    def grains(self):
        return self.driven.grains

    def walk(self):
        yield self
        yield from self.driven.walk()

    def curves(self):
        return self.driven.curves()

    def sources(self):
        return self.driven.sources()

    def __repr__(self) -> str:
        return f"{self.name}.then({self.path!r})"
