"""Mappings taught by example: a few inputs (faders, any curves) to places in the latent space.

``m = mapping(inputs=[cc(1), cc(2)], name="faders")``, then examples (``m.add(cello.at(1.5))``
takes the inputs' values now; ``m.add(target, inputs=[0.2, 0.9])`` gives them), then
``m.train()``: the regression is fitted on a thread of its own, and every voice playing the
mapping moves to the new one when it is ready, in one journaled change whose data carries the
trained weights (a replay plays those, it never trains). ``voice(m)`` plays wherever the
mapping points, the inputs moving the latent point window by window.

A target is a place in the latent space: a source (its centroid: a SOM cluster's, a file's),
a source at a time (``cello.at(1.5)``), a point of a plane (``plane(...).at(0.2, 0.7)``), where
a playing voice is now (``v.now()``), a raw latent vector (a narrow point: log-variance
:data:`RAW_LOGVAR`), or a pair ``(mean, logvar)``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ..controllers import Controllers
from ..controls import evaluating
from ..curves import as_curve
from ..errors import LiveLatentError, ParameterError
from ..engine.commands import SetVoice
from ..engine.writers import Batch
from ..paths.nodes import PlaneAt
from ..sources import Source, SourceAt
from ..voice import curve_values
from .models import KINDS, Model, fit
from .node import Mapped
from .sketches import Features, SketchWatcher, drawn, learn_features, send_sketch

__all__ = ["Mapping", "target_point", "names", "MAX_EXAMPLES"]

MAX_EXAMPLES = 63          # a knn mapping mixes every example's target: one term each
RAW_LOGVAR = -8.0          # the log-variance given to a raw latent vector (a narrow point)
_HOP = 512


def target_point(target, codec) -> np.ndarray:
    """``target`` as one latent point: ``(2 * latent,)`` mean | log-variance."""
    latent = codec.latent_dim
    if isinstance(target, SourceAt):
        frames = target.source.frames(codec, _HOP)
        index = min(len(frames) - 1, max(0, int(round(target.seconds * codec.sample_rate / _HOP))))
        return np.concatenate([frames.mu[index], frames.logvar[index]]).astype(np.float64)
    if isinstance(target, PlaneAt):
        corners = []
        for corner in target.plane.corners:
            if not isinstance(corner, Source):
                raise ParameterError("plane.at(...) as a target: its corners must be sources")
            corners.append(target_point(corner, codec))
        a, b, c, d = corners
        x, y = target.x, target.y
        return (1 - x) * (1 - y) * a + x * (1 - y) * b + (1 - x) * y * c + x * y * d
    if isinstance(target, Source):
        frames = target.frames(codec, _HOP)
        return np.concatenate([frames.mu.mean(axis=0), frames.logvar.mean(axis=0)]).astype(np.float64)
    if isinstance(target, tuple) and len(target) == 2:
        mu, logvar = (np.asarray(part, dtype=np.float64).ravel() for part in target)
    else:
        mu = np.asarray(target, dtype=np.float64).ravel() if not isinstance(target, str) else None
        logvar = None if mu is None else np.full(latent, RAW_LOGVAR)
    if mu is None or mu.shape != (latent,) or logvar.shape != (latent,):
        raise ParameterError(f"a target is a source, source.at(seconds), plane(...).at(x, y), v.now(), "
                             f"a latent vector of {latent} numbers or a pair (mean, logvar); not "
                             f"{type(target).__name__}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(logvar))):
        raise ParameterError("the target holds NaN or infinite numbers")
    return np.concatenate([mu, logvar])


class Mapping:
    """Inputs, examples and the trained model of one mapping (see the module's text)."""

    def __init__(self, engine, inputs, *, name: str, kind: str = "mlp", seed: int = 0, k: int = 4,
                 replaying: bool = False):
        self.features = inputs if isinstance(inputs, Features) else None
        if self.features is not None:
            curves = tuple(self.features.curves())
        elif isinstance(inputs, (list, tuple)) and inputs:
            curves = tuple(as_curve(c) for c in inputs)
        else:
            raise ParameterError("mapping(inputs=[...]): give the curves it reads, e.g. [cc(1), cc(2)], "
                                 "or features(...) of drawings")
        if kind not in KINDS:
            raise ParameterError(f"mapping(kind={kind!r}): one of {', '.join(KINDS)}")
        self.engine, self.name, self.inputs, self.kind = engine, str(name), curves, kind
        self.seed, self.k, self.replaying = int(seed), int(k), replaying
        self.examples: list[tuple[np.ndarray, np.ndarray]] = []
        self.model: Model | None = None
        rest = np.zeros(engine.codec.window, dtype=np.float32)
        self.rest = Source(rest, sample_rate=engine.sample_rate, name=f"{self.name}-rest")
        self._lock = threading.Lock()
        self._training: threading.Thread | None = None

    # -- examples ----------------------------------------------------------------------------------
    def values_now(self) -> np.ndarray:
        """The inputs' values where the listener is (controllers from the engine's score)."""
        engine = self.engine
        score = engine.intended()
        beat = float(score.clock.beats(engine.position))
        with evaluating(score.controls, 0.0, score.clock.bpm):
            return np.array([float(curve_values(c, np.array([beat]))[0]) for c in self.inputs])

    def add(self, target, *, inputs=None, image=None) -> int:
        """Pair ``target`` with the inputs' values now (or ``inputs``, or the features of the
        drawing ``image``); returns the count."""
        point = target_point(target, self.engine.codec)
        if image is not None:
            if self.features is None:
                raise ParameterError(f"{self.name}.add(image=...): this mapping reads curves, not "
                                     f"drawings; make it with mapping(inputs=features(...))")
            inputs = self.features.vector(image)
        if inputs is None:
            values = self.values_now()
        else:
            values = np.asarray(inputs, dtype=np.float64).ravel()
            if values.shape != (len(self.inputs),):
                raise ParameterError(f"{self.name}.add(inputs=...): {len(self.inputs)} numbers, one "
                                     f"per input; got {values.size}")
        if not np.all(np.isfinite(values)):
            raise ParameterError(f"{self.name}.add(): an input is NaN or infinite ({values.tolist()})")
        with self._lock:
            if len(self.examples) >= MAX_EXAMPLES:
                raise ParameterError(f"{self.name}: at most {MAX_EXAMPLES} examples")
            self.examples.append((values, point))
            return len(self.examples)

    # -- training --------------------------------------------------------------------------------
    def train(self, kind: str | None = None, *, wait: bool = False) -> "Mapping":
        """Fit the examples (on a thread: the voices keep the last model until this one is
        ready, then move to it together). ``wait=True`` returns when it is done."""
        kind = self.kind if kind is None else kind
        if kind not in KINDS:
            raise ParameterError(f"{self.name}.train(kind={kind!r}): one of {', '.join(KINDS)}")
        with self._lock:
            examples = list(self.examples)
        distinct = {tuple(x) for x, _ in examples}
        if len(examples) < 2 or len(distinct) < 2:
            raise ParameterError(f"{self.name}: {len(examples)} example(s) with {len(distinct)} "
                                 f"different input(s); a mapping needs at least two")
        x = np.stack([e[0] for e in examples])
        y = np.stack([e[1] for e in examples])
        self.kind = kind
        thread = threading.Thread(target=self._fit, args=(kind, x, y), name=f"livelatent-train-{self.name}",
                                  daemon=True)
        self._training = thread
        thread.start()
        if wait or self.replaying:
            thread.join()
        return self

    def _fit(self, kind: str, x: np.ndarray, y: np.ndarray) -> None:
        try:
            model = fit(kind, x, y, seed=self.seed, k=self.k, each=self.features is None)
        except Exception as exc:          # noqa: BLE001 - said, and the voices keep their mapping
            self.engine.events.error(f"{self.name}.train(): {type(exc).__name__}: {exc}")
            return
        self.model = model
        node = self.path()
        playing = [p for p in self.engine.intended_voices()
                   if isinstance(p.path, Mapped) and p.path.key == node.key]
        if playing and not self.engine.sealed:
            changes = [SetVoice(p.index, {"path": node}) for p in playing]
            self.engine.send(Batch(self.engine, f"mapping:{self.name}", commands=changes))
        self.engine.events.info(f"{self.name}: trained ({kind}, {len(x)} examples)")

    # -- playing -----------------------------------------------------------------------------------
    def path(self) -> Mapped:
        """The mapping as it is trained now, as a latent path (``voice(m)`` takes it). Its first
        training, when under way, is waited for (a fit takes well under a second)."""
        if self.model is None and self._training is not None:
            self._training.join(timeout=30.0)
        if self.model is None:
            raise LiveLatentError(f"{self.name} is not trained yet: add examples, then {self.name}.train()")
        return Mapped(self.name, self.inputs, self.model, self.rest)     # its name is its key

    as_path = path

    def predict(self, inputs) -> tuple[np.ndarray, np.ndarray]:
        """The (mean, logvar) the mapping gives for ``inputs``."""
        if self.model is None:
            raise LiveLatentError(f"{self.name} is not trained yet")
        point = self.model.predict(np.asarray(inputs, dtype=np.float64))[0]
        latent = point.shape[0] // 2
        return point[:latent], point[latent:]

    def show(self, path="mapping.png", *, method: str = "pca"):
        """Draw the examples' targets and the learned field (what the mapping gives along the
        straight lines between consecutive examples' inputs) on a latent map; a PNG."""
        from ..paths.cartography import draw_map
        if self.model is None:
            raise LiveLatentError(f"{self.name} is not trained yet")
        latent = self.engine.codec.latent_dim
        with self._lock:
            examples = list(self.examples)
        firsts: dict = {}                 # each target, labelled by the examples that teach it
        for i, (_, y) in enumerate(examples):
            firsts.setdefault(y[:latent].tobytes(), (y[:latent], []))[1].append(str(i + 1))
        groups = [(f"example {', '.join(numbers)}", point[None, :]) for point, numbers in firsts.values()]
        steps = np.linspace(0.0, 1.0, 16)[:, None]
        field = []
        for i, ((x1, _), (x2, _)) in enumerate(zip(examples, examples[1:])):
            along = self.model.predict(x1 + steps * (x2 - x1))[:, :latent]
            field.append((f"{i + 1}-{i + 2}", along))
        drawn = draw_map(Path(path), groups=groups, voice_paths=field, method=method,
                         title=f"{self.name}: {len(examples)} examples, {self.model.kind}")
        self.engine.events.info(f"{self.name}: drawn to {drawn.path}")
        return drawn

    def __repr__(self) -> str:
        state = "untrained" if self.model is None else f"trained ({self.model.kind})"
        return f"<mapping {self.name!r}: {len(self.inputs)} inputs, {len(self.examples)} examples, {state}>"


def names(engine, *, replaying: bool = False) -> dict:
    """The names a namespace gets: ``mapping``, ``features``, ``sketch``, ``sketch_watch``,
    ``drawn``."""
    made: list[Features] = []

    def mapping(inputs, *, name: str = "mapping", kind: str = "mlp", seed: int = 0, k: int = 4) -> Mapping:
        """A mapping from ``inputs`` (curves: ``[cc(1), cc(2)]``, ``[osc("/x"), osc("/y")]``, or
        ``features(...)`` of drawings) to the latent space, taught by example:
        ``m.add(cello.at(1.5))`` pairs the inputs' values now with a place (``image=`` a
        drawing's); ``m.train()`` fits it (``kind``: ``"mlp"``, ``"knn"`` or ``"linear"``);
        ``voice(m)`` plays wherever it points."""
        return Mapping(engine, inputs, name=name, kind=kind, seed=seed, k=k, replaying=replaying)

    def features(folder, *, kind: str = "image", dims: int = 32, name: str | None = None) -> Features:
        """Features learned from the drawings in ``folder`` (PNG or JPEG): a mapping's input."""
        if kind != "image":
            raise ParameterError(f"features(kind={kind!r}): only 'image' (principal components) is "
                                 f"built; a convolutional autoencoder ('image-ae') is not yet")
        made.append(learn_features(folder, dims=dims, name=name))
        return made[-1]

    def _features(given):
        if given is not None:
            return given
        if not made:
            raise ParameterError("no features yet: sketches = features('drawings/') first")
        return made[-1]

    def sketch(path, features: Features | None = None):
        """Make the drawing ``path`` the current sketch (of the last features made, or
        ``features``): mappings reading those features follow it. Journaled."""
        chosen = _features(features)
        if replaying or engine.sealed:
            return None
        return send_sketch(engine, chosen, path)

    def sketch_watch(path, features: Features | None = None):
        """Read ``path`` again each time it is saved (draw while the sound follows)."""
        chosen = _features(features)
        if replaying or engine.sealed:
            return None
        watcher = SketchWatcher(engine, chosen, path, Controllers.of(engine).throttle)
        engine.add_exit_hook(watcher.close)
        return watcher

    return {"mapping": mapping, "features": features, "sketch": sketch, "sketch_watch": sketch_watch,
            "drawn": drawn}
