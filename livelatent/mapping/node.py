"""A mapping as a latent path: the point its trained model gives for its inputs, window by window.

:class:`Mapped` is immutable, like every path: a retrained mapping is a new node, sent to the
voices that play it as a change of path (journaled with its weights, so a replay never trains).
The plan compiles it to one one-frame term per row of the model, weighted per window by the
model's weights of the input curves' values (:mod:`livelatent.paths.plan`).
"""

from __future__ import annotations

import numpy as np

from ..paths.nodes import Path
from ..sources import Source
from .models import Model

__all__ = ["Mapped"]


class Mapped(Path):
    """The latent point ``model`` gives for ``inputs`` (curves: controllers, or any curve).

    ``rest`` is the source the voice names as its own (one silent window): a mapping has no
    source of its own, but a voice and its journal record name one.
    """

    def __init__(self, name: str, inputs: tuple, model: Model, rest: Source, key: str = ""):
        # key: which mapping it came from (its voices follow it when it is trained again)
        self._init(name=name, inputs=tuple(inputs), model=model, rest=rest, key=key or name)

    def curves(self) -> list:
        return list(self.inputs)

    def sources(self) -> list[Source]:
        return [self.rest]

    def weights(self, values: np.ndarray) -> np.ndarray:
        """``(windows, terms)`` float32 weights of the inputs' values ``(windows, inputs)``."""
        return self.model.weights(values).astype(np.float32)

    def __repr__(self) -> str:
        return (f"<mapping {self.name!r}: {self.model.kind}, {len(self.inputs)} inputs, "
                f"{self.model.terms} terms>")
