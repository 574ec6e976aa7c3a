"""What a performer's namespace gets for mappings: ``mapping``, ``features``, ``sketch``,
``sketch_watch`` and ``drawn`` (see :mod:`.mapping` and :mod:`.sketches`)."""

from __future__ import annotations

from ..controllers import Controllers
from ..errors import ParameterError
from .checks import default_name
from .mapping import Mapping
from .sketches import Features, SketchWatcher, drawn, learn_features, send_sketch

__all__ = ["names"]


def names(engine, *, replaying: bool = False) -> dict:
    """The names a namespace gets: ``mapping``, ``features``, ``sketch``, ``sketch_watch``,
    ``drawn``."""
    made: list[Features] = []

    def mapping(inputs, *, name: str | None = None, kind: str = "mlp", seed: int = 0, k: int = 4) -> Mapping:
        """A mapping from ``inputs`` (curves: ``[cc(1), cc(2)]``, ``[osc("/x"), osc("/y")]``, or
        ``features(...)`` of drawings) to the latent space, taught by example:
        ``m.add(cello.at(1.5))`` pairs the inputs' values now with a place (``image=`` a
        drawing's); ``m.train()`` fits it (``kind``: ``"mlp"``, ``"knn"`` or ``"linear"``;
        ``k``: how many nearest examples a knn mixes); ``voice(m)`` plays wherever it points.
        The voices follow the mapping of their mapping's ``name`` when it is trained: give a
        name to redefine a mapping in place; without one, each mapping is its own
        (``mapping``, ``mapping2``...)."""
        if name is None:
            name = default_name(engine)
        return Mapping(engine, inputs, name=name, kind=kind, seed=seed, k=k, replaying=replaying)

    def features(folder, *, kind: str = "image", dims: int = 32, name: str | None = None,
                 seed: int = 0) -> Features:
        """Features learned from the drawings in ``folder`` (PNG or JPEG): a mapping's input.
        ``kind="image"``: principal components; ``"image-ae"``: a small convolutional
        autoencoder (trained now, with torch), kept when it reconstructs held-out drawings
        better than principal components of the same size."""
        made.append(learn_features(folder, dims=dims, name=name, kind=kind, seed=seed))
        if made[-1].measured:
            engine.events.info(repr(made[-1]))
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
