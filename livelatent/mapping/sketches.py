"""Drawings as input: features learned from a folder of sketches, and lines read as curves.

``sketches = features("drawings/", dims=32)`` learns unsupervised features from the images in a
folder (PNG or JPEG, any size, read with Pillow): each drawing is cropped to its ink, padded to
a square, scaled to :data:`SIDE` pixels a side and softened (so position, size and stroke width
matter less than shape); its pixels and a description that turning it does not change (how its
ink lies around its centre, its spectrum across scales), weighed alike, are projected on the
principal components of the folder's drawings. ``kind="image-ae"`` learns a small convolutional
autoencoder of the square images instead, kept when it reconstructs held-out drawings better
than principal components of the same size (:mod:`.image_ae`).

A mapping reads those features as curves (``mapping(inputs=sketches)``): the current sketch's
features are controller values (``sketch:<name>:<i>``), set by ``sketch("new.png")`` or by
:class:`SketchWatcher` each time a drawing program saves a file, and journaled like any
controller's. ``drawn("line.png")`` reads a hand-drawn line as a curve instead.
"""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path

import numpy as np

from ..controls import sketch_curve
from ..curves import Curve, env
from ..errors import ParameterError, is_real
from ..engine.commands import SetControl
from ..engine.writers import Batch

__all__ = ["Features", "EncodedFeatures", "learn_features", "features_from", "read_drawing", "drawn",
           "SketchWatcher", "send_sketch", "SIDE", "FEATURE_KINDS", "MAX_DRAWN_POINTS"]

SIDE = 32
MAX_DRAWN_POINTS = 4096       # breakpoints of a drawn curve: far finer than a drawing is wide
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
FEATURE_KINDS = ("image", "image-ae")


def _ink(path) -> np.ndarray:
    """The image as ink (0 paper, 1 ink), float32, whichever of dark-on-light or light-on-dark."""
    from PIL import Image, UnidentifiedImageError
    if not isinstance(path, (str, os.PathLike)) and not hasattr(path, "read"):
        raise ParameterError(f"{path!r:.60}: give an image's file name (a .png or .jpg of a drawing)")
    try:
        with Image.open(path) as image:
            if image.mode.startswith("I"):     # (convert("L") clips 16-bit levels to 255; older
                grey = np.asarray(image, dtype=np.float32)            # Pillows open them as "I")
                grey /= 65535.0 if image.mode.startswith("I;16") or grey.max() > 255 else 255.0
            else:
                grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise ParameterError(f"{path}: not an image livelatent can read ({exc})") from None
    if grey.size == 0:
        raise ParameterError(f"{path}: the image is empty")
    paper = float(np.median(grey))
    ink = np.abs(grey - paper)
    if ink.max() < 0.1:
        raise ParameterError(f"{path}: nothing is drawn on it (one colour all over)")
    return ink / ink.max()


def _square(path) -> np.ndarray:
    """A drawing cropped to its ink, padded square, scaled to SIDE a side and softened."""
    from PIL import Image, ImageFilter
    ink = _ink(path)
    rows, cols = np.nonzero(ink > 0.25)
    ink = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    side = max(ink.shape)
    square = np.zeros((side, side), dtype=np.float32)
    top, left = (side - ink.shape[0]) // 2, (side - ink.shape[1]) // 2
    square[top:top + ink.shape[0], left:left + ink.shape[1]] = ink
    image = Image.fromarray((square * 255).astype(np.uint8)).resize((SIDE, SIDE), Image.BILINEAR)
    shaped = np.asarray(image.filter(ImageFilter.GaussianBlur(1.0)), dtype=np.float64) / 255.0
    if shaped.max() <= 0.1:            # (a thin line on a large canvas fades away: 0 / 0 below)
        raise ParameterError(f"{path}: its lines are too thin for its size to be read at "
                             f"{SIDE}x{SIDE}: draw them bolder, or on a smaller canvas")
    return shaped


_YY, _XX = np.mgrid[0:SIDE, 0:SIDE]
_RINGS = 16


def read_drawing(path) -> tuple[np.ndarray, np.ndarray]:
    """Two descriptions of a drawing: its shape (the square image's pixels), and how its ink
    lies around its centre and across scales (the share of ink at each distance from the ink's
    centre, and the log spectrum's mean at each distance from zero frequency), which turning or
    moving a drawing does not change."""
    a = _square(path)
    weight = a / a.sum()
    cy, cx = (weight * _YY).sum(), (weight * _XX).sum()
    distance = np.hypot(_YY - cy, _XX - cx)
    distance = distance / max(float(distance[a > 0.1].max(initial=0.0)), 1e-9)
    around, _ = np.histogram(distance, bins=_RINGS, range=(0.0, 1.0), weights=a)
    spectrum = np.log1p(10 * np.fft.fftshift(np.abs(np.fft.fft2(a))) / max(float(np.abs(a).sum()), 1e-9))
    radius = np.hypot(_YY - SIDE / 2, _XX - SIDE / 2) / np.hypot(SIDE / 2, SIDE / 2)
    totals, _ = np.histogram(radius, bins=_RINGS, range=(0.0, 1.0), weights=spectrum)
    counts, _ = np.histogram(radius, bins=_RINGS, range=(0.0, 1.0))
    return a.ravel(), np.concatenate([around / around.sum(), totals / np.maximum(counts, 1)])


class Features:
    """Principal components of a folder's drawings: ``vector(path)`` gives a drawing's
    ``dims`` coordinates; ``curves()`` the controller curves a mapping reads them from."""

    kind = "image"
    measured: dict | None = None      # image-ae asked for: the held-out errors that chose

    def __init__(self, name: str, blocks: tuple, mean: np.ndarray, components: np.ndarray, scale: float):
        self.name, self.blocks, self.mean, self.components, self.scale = name, blocks, mean, components, scale

    def arrays(self) -> dict[str, np.ndarray]:
        """What a set keeps of it (:func:`features_from` rebuilds it)."""
        return {"mean": self.mean, "components": self.components, "blocks": np.asarray(self.blocks)}

    @property
    def dims(self) -> int:
        return int(self.components.shape[0])

    def described(self, path) -> np.ndarray:
        """The drawing's descriptions, each weighed as much as the other over the folder."""
        return np.concatenate([part / scale for part, scale in zip(read_drawing(path), self.blocks)])

    def vector(self, path) -> np.ndarray:
        return (self.components @ (self.described(path) - self.mean)) / self.scale

    def curves(self) -> list[Curve]:
        return [sketch_curve(self.name, i) for i in range(self.dims)]

    def __repr__(self) -> str:
        how = "principal components"
        if self.measured:
            how += (f" (an autoencoder measured worse on {self.measured['held_out']} held-out "
                    f"drawings: error {self.measured['image-ae']:.4f} against {self.measured['pca']:.4f})")
        return f"<features {self.name!r}: {self.dims} dimensions of drawings, {how}>"


class EncodedFeatures(Features):
    """A convolutional autoencoder's codes of the drawings (see :mod:`.image_ae`), scaled like
    the principal components are: centred, one scale for all (the first code's spread)."""

    kind = "image-ae"

    def __init__(self, name: str, weights: dict, mean: np.ndarray, scale: float, measured: dict | None = None):
        self.name, self.weights, self.mean, self.scale = name, weights, mean, scale
        self.measured, self.blocks = measured, ()

    @property
    def dims(self) -> int:
        return int(self.weights["code.weight"].shape[0])

    def codes(self, images: np.ndarray) -> np.ndarray:
        from .image_ae import encode
        return encode(self.weights, images)

    def vector(self, path) -> np.ndarray:
        return (self.codes(_square(path)[None])[0] - self.mean) / self.scale

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, **{f"encoder.{k}": v for k, v in self.weights.items()}}

    def __repr__(self) -> str:
        told = "" if not self.measured else (
            f" (held-out error {self.measured['image-ae']:.4f} against principal components' "
            f"{self.measured['pca']:.4f})")
        return f"<features {self.name!r}: {self.dims} dimensions of drawings, an autoencoder's{told}>"


def features_from(kind: str, name: str, arrays: dict, scale: float) -> Features:
    """Features as a set keeps them (see :meth:`Features.arrays`)."""
    if kind == "image-ae":
        weights = {k[len("encoder."):]: np.asarray(v, np.float64) for k, v in arrays.items()
                   if k.startswith("encoder.")}
        return EncodedFeatures(name, weights, np.asarray(arrays["mean"], np.float64), scale)
    return Features(name, tuple(np.asarray(arrays["blocks"]).tolist()), arrays["mean"],
                    arrays["components"], scale)


def _drawings(folder) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ParameterError(f"features({str(folder)!r}): no such folder")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(paths) < 2:
        raise ParameterError(f"features({str(folder)!r}): {len(paths)} image(s) (PNG or JPEG); "
                             f"at least two are needed")
    return paths


def learn_features(folder, *, dims: int = 32, name: str | None = None, kind: str = "image",
                   seed: int = 0) -> Features:
    """Features of the drawings in ``folder``: principal components (``kind="image"``), or an
    autoencoder's codes (``"image-ae"``) when it measures better (see the module's text)."""
    if kind not in FEATURE_KINDS:
        raise ParameterError(f"features(kind={kind!r}): one of {', '.join(FEATURE_KINDS)}")
    if not isinstance(folder, (str, os.PathLike)):        # (Path(None): a TypeError)
        raise ParameterError(f"features({folder!r:.60}): give a folder of drawings")
    if isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= 256:
        raise ParameterError(f"features(dims={dims!r}): a whole number from 1 to 256")
    name = name or Path(folder).name
    if kind == "image-ae":
        from .image_ae import held_out_errors, learn_autoencoder
        images = np.stack([_square(p) for p in _drawings(folder)])
        measured = held_out_errors(images, dims, seed=seed)
        if measured["image-ae"] < measured["pca"]:
            weights, _ = learn_autoencoder(images, dims, seed=seed)
            made = EncodedFeatures(name, weights, np.zeros(dims), 1.0, measured)
            codes = made.codes(images)
            made.mean = codes.mean(axis=0)
            made.scale = max(float(codes.std(axis=0).max()), 1e-12)
            return made
        chosen = learn_features(folder, dims=dims, name=name)
        chosen.measured = measured
        return chosen
    return _principal_features(folder, dims, name)


def _principal_features(folder, dims: int, name: str) -> Features:
    folder = Path(folder)
    paths = _drawings(folder)
    read = [read_drawing(p) for p in paths]
    spreads = [float(np.sqrt(np.stack(part).var(axis=0).sum())) for part in zip(*read)]
    if max(spreads) < 1e-6:            # (scaled by a spread of about 0: features of 1e13)
        raise ParameterError(f"features({str(folder)!r}): its drawings are all alike; give "
                             f"drawings that differ")
    blocks = tuple(max(spread, 1e-9) for spread in spreads)
    described = np.stack([np.concatenate([p / s for p, s in zip(parts, blocks)]) for parts in read])
    mean = described.mean(axis=0)
    _, singular, components = np.linalg.svd(described - mean, full_matrices=False)
    keep = min(dims, int(np.sum(singular > 1e-9)))
    # one scale for every component (the first's spread): the weak ones stay weak
    scale = max(float(singular[0]) / np.sqrt(max(1, len(paths) - 1)), 1e-12)
    return Features(name, blocks, mean, components[:keep], scale)


def send_sketch(engine, features: Features, path) -> np.ndarray:
    """Set the current sketch of ``features`` to the drawing ``path`` (journaled controller
    values, origin ``sketch``); returns its features."""
    vector = features.vector(path)
    commands = [SetControl(f"sketch:{features.name}:{i}", float(v)) for i, v in enumerate(vector)]
    engine.send(Batch(engine, "sketch", commands=commands))
    return vector


class SketchWatcher:
    """Re-reads ``path`` whenever it changes (a drawing program saved it) and sends its features."""

    POLL_S = 0.2

    def __init__(self, engine, features: Features, path, throttle):
        self.engine, self.features, self.path, self.throttle = engine, features, Path(path), throttle
        self._stop = threading.Event()
        self._seen = None
        self._thread = threading.Thread(target=self._run, name="livelatent-sketch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.POLL_S):
            try:
                stamp = self.path.stat().st_mtime_ns
            except OSError:
                continue
            if stamp == self._seen:
                continue
            self._seen = stamp
            try:
                send_sketch(self.engine, self.features, self.path)
            except Exception as exc:       # noqa: BLE001 - a half-saved file: the next save
                self.throttle.warn("sketch", f"sketch_watch: {exc}")

    def close(self) -> None:
        self._stop.set()


def _real(value) -> bool:
    """A finite real number (numpy's too, not a bool)."""
    return is_real(value) and math.isfinite(value)


def drawn(path, *, lo: float = 0.0, hi: float = 1.0, beats: float = 4.0, points: int = 64) -> Curve:
    """A hand-drawn line as a curve: its height (bottom ``lo``, top ``hi``) across its width,
    over ``beats`` beats (then it holds its last value), as ``points`` breakpoints (2 to
    :data:`MAX_DRAWN_POINTS`)."""
    # hi - lo must be finite too: 1e308 and -1e308 are finite numbers whose span is not
    if not (_real(lo) and _real(hi)) or lo == hi or not math.isfinite(float(hi) - float(lo)):
        raise ParameterError(f"drawn(lo={lo!r}, hi={hi!r}): two different numbers")
    if not (_real(beats) and beats > 0):
        raise ParameterError(f"drawn(beats={beats!r}): a positive number of beats")
    # each breakpoint is a Python pair: millions of them take seconds to build and to play
    if not (_real(points) and float(points).is_integer() and 2 <= points <= MAX_DRAWN_POINTS):
        raise ParameterError(f"drawn(points={points!r}): a whole number of breakpoints from 2 to "
                             f"{MAX_DRAWN_POINTS}")
    ink = _ink(path)
    height, width = ink.shape
    weight = np.where(ink > 0.25, ink, 0.0)
    column = weight.sum(axis=0)
    drawn_cols = np.flatnonzero(column > 0)
    rows = (weight * np.arange(height)[:, None]).sum(axis=0)[drawn_cols] / column[drawn_cols]
    level = 1.0 - rows / max(1, height - 1)                 # 0 at the bottom, 1 at the top
    x = (drawn_cols - drawn_cols[0]) / max(1, drawn_cols[-1] - drawn_cols[0])
    grid = np.linspace(0.0, 1.0, int(points))
    values = lo + (hi - lo) * np.interp(grid, x, level)
    return env([(round(float(t * beats), 6), round(float(v), 6)) for t, v in zip(grid, values)])
