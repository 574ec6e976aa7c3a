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

import os
import threading
from pathlib import Path

import numpy as np

from ..controls import evaluating
from ..curves import as_curve
from ..errors import LiveLatentError, ParameterError, check_seed
from ..engine.commands import SetVoice
from ..engine.writers import Batch, current_batch, default_origin
from ..handle import VoiceNow
from ..paths.nodes import Path as LatentPath, PlaneAt
from ..sources import Source, SourceAt
from ..voice import curve_values
from .beside import fit_beside, warm_up
from .checks import FLOAT32_MAX, check_name, input_values, note_name
from .models import KINDS, MAX_EXAMPLES, Model, check_inputs, check_k, fit, older_k_and_seed
from .node import Mapped
from .steering import Steered, steer_model
from .sketches import Features

__all__ = ["Mapping", "target_point", "MAX_EXAMPLES"]

RAW_LOGVAR = -8.0          # the log-variance given to a raw latent vector (a narrow point)
_HOP = 512


def target_point(target, codec, sample: int | None = None) -> np.ndarray:
    """``target`` as one latent point: ``(2 * latent,)`` mean | log-variance (``v.now()`` read
    at ``sample``, default where the listener is)."""
    latent = codec.latent_dim
    if isinstance(target, VoiceNow):
        target = target.at(sample)
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
        with np.errstate(over="ignore", invalid="ignore"):     # far out: refused just below
            point = (1 - x) * (1 - y) * a + x * (1 - y) * b + (1 - x) * y * c + x * y * d
        return _storable(target, point)
    if isinstance(target, Source):
        frames = target.frames(codec, _HOP)
        return np.concatenate([frames.mu.mean(axis=0), frames.logvar.mean(axis=0)]).astype(np.float64)
    if isinstance(target, LatentPath):      # a path moves; a target is one place
        raise ParameterError(f"a target is one place, not a path ({type(target).__name__}): give a "
                             f"point, e.g. plane(...).at(x, y), a source, source.at(seconds) or v.now()")
    if isinstance(target, tuple) and len(target) == 2:
        mu, logvar = (_numbers(part) for part in target)
    else:
        mu = _numbers(target)
        logvar = None if mu is None else np.full(latent, RAW_LOGVAR)
    if mu is None or logvar is None or mu.shape != (latent,) or logvar.shape != (latent,):
        raise ParameterError(f"a target is a source, source.at(seconds), plane(...).at(x, y), v.now(), "
                             f"a latent vector of {latent} numbers or a pair (mean, logvar); not "
                             f"{type(target).__name__}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(logvar))):
        raise ParameterError("the target holds NaN or infinite numbers")
    return _storable(target, np.concatenate([mu, logvar]))


def _numbers(part) -> np.ndarray | None:
    """A raw latent vector's numbers (real ones only: a string or a complex vector is no place)."""
    try:
        array = np.asarray(part)
    except (TypeError, ValueError):          # a ragged list
        return None
    return array.astype(np.float64).ravel() if array.dtype.kind in "iuf" else None


def _storable(target, point: np.ndarray) -> np.ndarray:
    """``point``, refused when float32 (what the journal and a set keep) cannot hold it: kept,
    it would become infinite there and play as silence."""
    if not np.all(np.abs(point) <= FLOAT32_MAX):
        shown = (f"plane(...).at({target.x:g}, {target.y:g})" if isinstance(target, PlaneAt)
                 else type(target).__name__)
        raise ParameterError(f"the target {shown} has numbers beyond +-3.4e38, more than a "
                             f"mapping can keep; give a place nearer the sources")
    return point


class Mapping:
    """Inputs, examples and the trained model of one mapping (see the module's text)."""

    def __init__(self, engine, inputs, *, name: str, kind: str = "mlp", seed: int = 0, k: int = 4,
                 replaying: bool = False):
        self.features = inputs if isinstance(inputs, Features) else None
        if self.features is not None:
            curves = tuple(self.features.curves())
        elif isinstance(inputs, (list, tuple)) and inputs:    # osc("/xy", 2): two of them
            curves = tuple(as_curve(c) for item in inputs
                           for c in (item if isinstance(item, (list, tuple)) else (item,)))
        else:
            curves = ()
        if not curves:
            raise ParameterError("mapping(inputs=[...]): give the curves it reads, e.g. [cc(1), cc(2)], "
                                 "or features(...) of drawings")
        if kind not in KINDS:
            raise ParameterError(f"mapping(kind={kind!r}): one of {', '.join(KINDS)}")
        if replaying:          # a journal's code that older livelatent ran, as it ran it
            (k, seed), name = older_k_and_seed(k, seed), str(name)
        self.engine, self.name, self.inputs, self.kind = engine, check_name(name), curves, kind
        self.seed, self.k, self.replaying = check_seed(seed, high=None), check_k(k), replaying
        if note_name(engine, self.name) and not replaying:    # see checks.py: the name is the key
            engine.events.info(f"mapping {self.name!r} is made again: voices playing it follow "
                               f"this one when it is trained")
        self.examples: list[tuple[np.ndarray, np.ndarray]] = []
        self.model: Model | None = None
        self._fitted: tuple[np.ndarray, np.ndarray] | None = None    # the examples it was fitted to
        rest = np.zeros(engine.codec.window, dtype=np.float32)
        self.rest = Source(rest, sample_rate=engine.sample_rate, name=f"{self.name}-rest")
        self._lock = threading.Lock()
        self._training: threading.Thread | None = None
        self._pending = 0            # examples waiting for their cell to land
        if engine.playing and not replaying:
            warm_up()                # the fitting process starts while examples are taught

    # -- examples ----------------------------------------------------------------------------------
    def values_at(self, sample: int | None = None) -> np.ndarray:
        """The inputs' values at ``sample`` (default: the listener's), controllers from the score."""
        engine = self.engine
        score = engine.intended()
        beat = float(score.clock.beats(engine.position if sample is None else int(sample)))
        with evaluating(score.controls, 0.0, score.clock.bpm):
            return np.array([float(curve_values(c, np.array([beat]))[0]) for c in self.inputs])

    def add(self, target, *, inputs=None, image=None) -> int:
        """Pair ``target`` with the inputs' values (or ``inputs``, or the features of the drawing
        ``image``); returns the count. What is read from the timeline (the inputs, ``v.now()``)
        is read at the sample where the cell lands, and the example is journaled there."""
        if not isinstance(target, VoiceNow):
            target_point(target, self.engine.codec)          # a bad target is refused now
        if image is not None:
            if self.features is None:
                raise ParameterError(f"{self.name}.add(image=...): this mapping reads curves, not "
                                     f"drawings; make it with mapping(inputs=features(...))")
            inputs = self.features.vector(image)
        values = None
        if inputs is not None:
            values = input_values(f"{self.name}.add(inputs=...)", inputs, len(self.inputs))
            _check_finite(self.name, values)
        example = _Example(self, target, values)
        with self._lock:
            if len(self.examples) + self._pending >= MAX_EXAMPLES:
                raise ParameterError(f"{self.name}: at most {MAX_EXAMPLES} examples")
            self._pending += 1
        batch = current_batch(self.engine)
        if batch is not None and batch.capture:       # a replayed cell: what was read live
            if batch.recorded:
                example.take(batch.recorded.pop(0))
            else:                                     # (a journal from before examples were)
                example.read(self.engine.position)
        else:
            if values is not None and not isinstance(target, VoiceNow):
                example.read(None)                    # nothing to read from the timeline
            try:
                with self.engine.batch(origin=default_origin()) as batch:
                    batch.readings.append(example)
            except BaseException:
                example.cancel()
                raise
        with self._lock:
            return len(self.examples) + self._pending

    def _settle(self) -> None:
        """Read this cell's examples of this mapping now, where the cell would land now (a
        train() in the same cell needs them before the cell lands)."""
        batch = current_batch(self.engine)
        if batch is None or batch.capture:
            return
        waiting = [r for r in batch.readings if isinstance(r, _Example) and r.mapping is self and r.data is None]
        if waiting:     # where a batch that only reads lands now: the next step to decode
            engine = self.engine
            sample = int(batch.at) if batch.at is not None else engine.timeline.step * engine.step
            for reading in waiting:
                reading.read(sample)

    def _example(self, values: np.ndarray, point: np.ndarray, *, pending: bool = True) -> None:
        with self._lock:
            self._pending -= pending
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append((values, point))

    def replayed_example(self, data: dict) -> None:
        """An example a replay hands back from the journal, added live by a writer whose code
        does not run again in a replay (a timer, a thread)."""
        if "refused" not in data:
            self._example(np.asarray(data["inputs"], dtype=np.float64),
                          np.asarray(data["target"], dtype=np.float64), pending=False)

    # -- training --------------------------------------------------------------------------------
    def train(self, kind: str | None = None, *, wait: bool = False) -> "Mapping":
        """Fit the examples (on a thread: the voices keep the last model until this one is
        ready, then move to it together). ``wait=True`` returns when it is done."""
        kind = self.kind if kind is None else kind
        if kind not in KINDS:
            raise ParameterError(f"{self.name}.train(kind={kind!r}): one of {', '.join(KINDS)}")
        self._settle()
        with self._lock:
            examples = list(self.examples)
        distinct = {tuple(x) for x, _ in examples}
        if len(examples) < 2 or len(distinct) < 2:
            raise ParameterError(f"{self.name}: {len(examples)} example(s) with {len(distinct)} "
                                 f"different input(s); a mapping needs at least two")
        x = check_inputs(np.stack([e[0] for e in examples]), self.name)   # (in the cell, not the worker)
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
            model = (fit_beside(kind, x, y, seed=self.seed, k=self.k, each=self.features is None,
                                events=self.engine.events) if self.engine.playing
                     else fit(kind, x, y, seed=self.seed, k=self.k, each=self.features is None))
        except Exception as exc:          # noqa: BLE001 - said, and the voices keep their mapping
            self.engine.events.error(f"{self.name}.train(): {type(exc).__name__}: {exc}")
            return
        self.model, self._fitted = model, (x, y)
        node, changes = self.path(), []
        for p in self.engine.intended_voices():
            if isinstance(p.path, Mapped) and p.path.key == node.key:
                changes.append(SetVoice(p.index, {"path": node}))
            elif isinstance(p.path, Steered) and p.path.key == node.key:
                try:
                    changes.append(SetVoice(p.index, {"path": self._steered(p.path.path, model, x, y)}))
                except LiveLatentError as exc:   # its path's sources changed under it: it keeps the last
                    self.engine.events.error(f"{self.name}: voice {p.name!r} keeps its mapping ({exc})")
            elif p.path is not None and any(isinstance(part, Mapped) and part.key == node.key
                                            for part in p.path.walk()):
                self.engine.events.warning(
                    f"{self.name}: voice {p.name!r} plays the mapping inside a "
                    f"{type(p.path).__name__.lower()}, which keeps the mapping it was made with; "
                    f"assign its path again (with {self.name}.path()) to play the new training")
        if changes and not self.engine.sealed:
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

    def then(self, path) -> Steered:
        """``path`` (a plane, or along(...)) with its parameters given by the mapping: a plane's
        x and y, the coefficients of the directions an along names. ``voice(m.then(plane(a, b,
        c, d)))``; trained again, its voices follow."""
        self.path()                               # trained (or waits for its first training)
        if self._fitted is not None:
            x, y = self._fitted
        else:                                     # loaded from a set: fitted to its examples
            with self._lock:
                x = np.stack([e[0] for e in self.examples])
                y = np.stack([e[1] for e in self.examples])
        return self._steered(path, self.model, x, y)

    def _steered(self, path, model: Model, x: np.ndarray, y: np.ndarray) -> Steered:
        steered = steer_model(model, path, x, y, self.engine.codec, seed=self.seed, k=self.k,
                              each=self.features is None)
        return Steered(self.name, self.inputs, steered, path)

    def predict(self, inputs) -> tuple[np.ndarray, np.ndarray]:
        """The (mean, logvar) the mapping gives for ``inputs``."""
        if self.model is None:
            raise LiveLatentError(f"{self.name} is not trained yet")
        values = input_values(f"{self.name}.predict(...)", inputs, len(self.inputs))
        _check_finite(self.name, values, "predict")
        point = self.model.predict(values)[0]
        latent = point.shape[0] // 2
        return point[:latent], point[latent:]

    def show(self, path="mapping.png", *, method: str = "pca"):
        """Draw the examples' targets and the learned field (what the mapping gives along the
        straight lines between consecutive examples' inputs) on a latent map; a PNG."""
        from ..paths.cartography import draw_map
        if not isinstance(path, (str, os.PathLike)):          # (Path(None): a TypeError)
            raise ParameterError(f"{self.name}.show({path!r:.60}): give a .png file name")
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


def _check_finite(name: str, values: np.ndarray, call: str = "add") -> None:
    """Inputs a mapping can take: finite, and for an example within what it learns from (one
    beyond would stop every later train(), and be saved with the set)."""
    if not np.all(np.isfinite(values)):
        raise ParameterError(f"{name}.{call}(): an input is NaN or infinite ({values.tolist()})")
    if call == "add" and values.size:
        check_inputs(values, f"{name}.add()")


class _Example:
    """An example as a batch's reading: what it reads from the timeline (the inputs unless given,
    ``v.now()``) is read at the sample where its cell lands (or, when a train() in the same cell
    needs it first, where the cell would land then), and journaled; a replayed cell takes the
    journaled values instead of reading them again."""

    def __init__(self, mapping: Mapping, target, values: np.ndarray | None):
        self.mapping, self.target, self.values = mapping, target, values
        self.data, self._point = None, None

    def read(self, sample: int | None) -> dict:
        if self.data is None:
            self.data = self._read(sample)
        return self.data

    def _read(self, sample: int | None) -> dict:
        mapping = self.mapping
        try:
            values = mapping.values_at(sample) if self.values is None else self.values
            _check_finite(mapping.name, values)
            point = target_point(self.target, mapping.engine.codec, sample)
        except LiveLatentError as exc:         # a controller read NaN, the voice has ended...
            with mapping._lock:
                mapping._pending -= 1
            mapping.engine.events.error(f"{exc}; the example is not added")
            return {"mapping": mapping.name, "refused": str(exc)}
        point = point.astype(np.float32)         # as the set keeps it
        self._point = point.astype(np.float64)
        mapping._example(values, self._point)
        return {"mapping": mapping.name, "inputs": values.tolist(), "target": point}

    def take(self, data: dict) -> None:
        self.data = data
        if "refused" in data:
            with self.mapping._lock:
                self.mapping._pending -= 1
            return
        self._point = np.asarray(data["target"], dtype=np.float64)
        self.mapping._example(np.asarray(data["inputs"], dtype=np.float64), self._point)

    def cancel(self) -> None:
        """Its cell's changes were dropped (a pattern file that raised): so is the example."""
        mapping = self.mapping
        with mapping._lock:
            if self.data is None:
                mapping._pending -= 1
                self.data = {"mapping": mapping.name, "refused": "its cell's changes were dropped"}
            elif self._point is not None:
                mapping.examples = [e for e in mapping.examples if e[1] is not self._point]
