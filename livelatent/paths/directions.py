"""Principal directions of a corpus's latent frames (GANSpaceSynth's navigation).

``dirs = directions(corpus, k=8)`` finds the k directions along which the corpus's latent
means vary most (PCA by singular value decomposition of the centred means). ``dirs[i]`` is one
of them as an offset *in units of its standard deviation*: moving a frame by ``dirs[0] * 2``
(``along(a, dirs, {0: 2})``, or ``a.offset(dirs[0], 2)``) moves it two standard deviations of
the corpus along its first direction. The sign of each direction is fixed (its largest
component is positive), so the same corpus always gives the same directions.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..errors import ParameterError
from ..sources import LatentFrames

__all__ = ["Directions", "Direction", "principal_directions"]


class Direction:
    """One principal direction, scaled to one standard deviation: an offset for
    :meth:`~livelatent.sources.Source.offset`."""

    def __init__(self, directions: "Directions", index: int):
        self.directions, self.index = directions, index

    @property
    def latent_frames(self) -> LatentFrames:
        """The direction as one latent frame (log-variance 0: it moves the mean only)."""
        return self.directions.frames(self.index)

    @property
    def code(self) -> str:
        return f"{self.directions.code}[{self.index}]"

    def __repr__(self) -> str:
        share = self.directions.explained[self.index]
        return f"<Direction {self.index} of {self.directions.name}: {share:.1%} of the variance>"


class Directions:
    """The first k principal directions of a corpus, each scaled to one standard deviation.

    Attributes
    ----------
    vectors : ndarray (k, latent) float32
        Unit direction times its standard deviation.
    std : ndarray (k,)
    explained : ndarray (k,)
        Share of the total variance along each.
    name : str
        What it was computed from.
    """

    def __init__(self, vectors, std, explained, *, name: str):
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.vectors.setflags(write=False)
        self.std = np.asarray(std, dtype=np.float64)
        self.explained = np.asarray(explained, dtype=np.float64)
        self.name = name
        self.content_hash = hashlib.sha256(self.vectors.tobytes()).hexdigest()
        self._frames = [LatentFrames(v[None, :].copy(), np.zeros((1, v.size), dtype=np.float32), 0)
                        for v in self.vectors]

    def frames(self, index: int) -> LatentFrames:
        """Direction ``index`` as one latent frame, the same object every time."""
        return self._frames[index]

    @property
    def code(self) -> str:
        return f"directions({self.name})"        # the name is "corpus(...), k=8"

    def __len__(self) -> int:
        return self.vectors.shape[0]

    def __getitem__(self, index) -> Direction:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise ParameterError(f"directions[{index!r}]: give a direction's number, 0 to {len(self) - 1}")
        if not 0 <= index < len(self):
            raise ParameterError(f"direction {index} is out of range: {self.name} has {len(self)} "
                                 f"directions (0 to {len(self) - 1}); ask for more with k=")
        return Direction(self, int(index))

    def __repr__(self) -> str:
        shares = ", ".join(f"{e:.1%}" for e in self.explained[:4])
        return f"<Directions of {self.name}: {len(self)}, explaining {shares}{'...' if len(self) > 4 else ''}>"


def principal_directions(mu: np.ndarray, k: int, *, name: str) -> Directions:
    """The first ``k`` principal directions of the latent means ``mu`` (frames, latent)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError(f"k={k!r} must be a positive number of directions")
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[0] < 2:
        raise ParameterError(f"{name}: a corpus needs at least two latent frames to have directions "
                             f"(it has {0 if mu.ndim != 2 else mu.shape[0]})")
    if k > min(mu.shape):
        raise ParameterError(f"k={k}: {name} has {mu.shape[0]} frames of {mu.shape[1]} values, so "
                             f"at most {min(mu.shape)} directions")
    centred = mu - mu.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    variance = singular ** 2 / (mu.shape[0] - 1)
    units = vt[:k]
    signs = np.sign(units[np.arange(k), np.argmax(np.abs(units), axis=1)])
    units = units * signs[:, None]
    std = np.sqrt(variance[:k])
    total = variance.sum()
    explained = variance[:k] / total if total > 0 else np.zeros(k)
    return Directions(units * std[:, None], std, explained, name=name)
