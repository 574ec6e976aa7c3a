"""Finding places in the latent space: corpora, principal directions, and the map.

These are the performer's names for the tools of :mod:`livelatent.paths` that need the
engine's model (``directions`` reads latent frames, ``show_map`` decodes): bound to one engine
by a :class:`Navigator`, like the voice names are by a :class:`~livelatent.api.Performer`. The
module-level functions use the default engine of the context.
"""

from __future__ import annotations

from .context import default_engine
from . import maps
from .paths.corpus import Corpus, corpus as make_corpus
from .paths.directions import Directions, principal_directions

__all__ = ["Navigator", "corpus", "directions", "show_map"]


class Navigator:
    """``corpus``, ``directions`` and ``show_map`` bound to ``engine``."""

    def __init__(self, engine):
        self.engine = engine

    def names(self) -> dict:
        return {"corpus": self.corpus, "directions": self.directions, "show_map": self.show_map}

    def corpus(self, *items, name: str | None = None) -> Corpus:
        """Sources, SOMs, folders or files as one corpus, at the engine's rate.
        ``corpus("samples/strings", flute, som)``"""
        return make_corpus(*items, name=name, rate=self.engine.sample_rate)

    def directions(self, items, k: int = 8) -> Directions:
        """The ``k`` principal directions of a corpus's latent frames (sources, a SOM, a folder
        or a corpus), each scaled to one standard deviation. ``dirs = directions(som, k=8)``"""
        found = items if isinstance(items, Corpus) else self.corpus(items)
        engine = self.engine
        frames = found.frames(engine.codec, engine.window // 2)
        return principal_directions(frames.mu, k, name=f"{found.code}, k={k}")


    def show_map(self, items=None, *, seconds: float = 10.0, grid=None, method: str = "auto",
                 colour: str = "centroid", path="map.png"):
        """A map of the latent space: ``items`` (default: the sources the voices play) projected
        to the plane, coloured by ``colour``, with the paths the voices took over the last
        ``seconds``; ``grid=(8, 8)`` adds the spectrogram decoded at each place. Inline in
        Jupyter, else a PNG at ``path``. ``show_map(som, grid=(6, 6))``"""
        return maps.show_map(self.engine, items, seconds=seconds, grid=grid, method=method,
                             colour=colour, path=path)


def corpus(*items, name: str | None = None) -> Corpus:
    """:meth:`Navigator.corpus` on the default engine."""
    return Navigator(default_engine()).corpus(*items, name=name)


def directions(items, k: int = 8) -> Directions:
    """:meth:`Navigator.directions` on the default engine."""
    return Navigator(default_engine()).directions(items, k=k)


def show_map(items=None, **options):
    """:meth:`Navigator.show_map` on the default engine."""
    return Navigator(default_engine()).show_map(items, **options)
