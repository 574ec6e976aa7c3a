"""A corpus: many sources read as one collection of latent frames.

Directions (:mod:`.directions`), descriptor indexes (:mod:`.descriptors`) and the map
(:mod:`.cartography`) work on every latent frame of a set of sounds. ``corpus(x)`` accepts what a
performer has at hand: sources, a SOM (every non-empty cluster), a folder of audio files (one
source per file), single files, or a list mixing them. Its frames are the sources' frames side
by side (``spans`` says where each source's frames are), encoded and cached like a source's.

>>> strings = corpus("samples/strings")          # a folder
>>> both = corpus([flute, cello, som])           # sources and a whole SOM
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from ..audio import list_audio_files
from ..corpus.clusters import Som
from ..errors import ParameterError
from ..sources import LatentFrames, Series, Source, _derive, playing_rate, source

__all__ = ["Corpus", "corpus"]


class Corpus:
    """Sources read together. Build one with :func:`corpus`.

    Attributes
    ----------
    sources : list of Source
    name : str
    content_hash : str
        Hash of the sources' audio hashes, in order: what disk caches are keyed on.
    """

    def __init__(self, sources, *, name: str):
        self.sources = list(sources)
        for src in self.sources:
            if isinstance(src, Series):     # its frames are not its audio's: caches would mix them up
                raise ParameterError(f"corpus: {src.code} is a latent series; a corpus holds sounds "
                                     f"(the sources underneath), and paths go through it")
        if not self.sources:
            raise ParameterError(f"corpus {name!r} has no sounds: give sources, a SOM, a folder "
                                 f"of audio files or files")
        self.name = name
        digest = hashlib.sha256()
        for src in self.sources:
            digest.update(src.audio_hash.encode())
        self.content_hash = digest.hexdigest()
        self._frames: dict[tuple[str, int], tuple[LatentFrames, np.ndarray]] = {}
        self._lock = threading.Lock()

    ops = ()
    position = None
    offsets = ()

    @property
    def base(self) -> "Corpus":
        return self

    @property
    def code(self) -> str:
        return f"corpus({', '.join(src.code for src in self.sources)})"

    def __len__(self) -> int:
        return len(self.sources)

    def sorted_by(self, descriptor: str) -> Series:
        """A source that traverses every frame of the corpus in ``descriptor`` order
        ("centroid", "loudness" or "pitch"), from the lowest."""
        from .descriptors import DESCRIPTORS, descriptor_index
        if descriptor not in DESCRIPTORS:
            raise ParameterError(f"sorted_by({descriptor!r}): the descriptors are "
                                 f"{', '.join(DESCRIPTORS)}")

        def order(codec, hop):
            return descriptor_index(codec, self, hop).sorted_order(descriptor)
        return _derive(self, ("order", descriptor, order))

    def __repr__(self) -> str:
        seconds = sum(s.duration_s for s in self.sources)
        return f"<Corpus {self.name!r}: {len(self.sources)} sources, {seconds:.1f} s>"

    def frames(self, codec, hop: int, *, tail: bool = True) -> LatentFrames:
        """Every source's latent frames at ``hop``, side by side (always with their last
        partial window: ``tail`` is there to read like a source's)."""
        return self._framed(codec, hop)[0]

    def spans(self, codec, hop: int) -> np.ndarray:
        """``(sources, 2)``: the first and one-past-last frame of each source in :meth:`frames`."""
        return self._framed(codec, hop)[1]

    def _framed(self, codec, hop: int):
        key = (codec.content_hash, int(hop))
        with self._lock:
            found = self._frames.get(key)
            if found is None:
                parts = [src.frames(codec, hop) for src in self.sources]
                counts = np.array([len(p) for p in parts], dtype=np.int64)
                ends = np.cumsum(counts)
                spans = np.stack([ends - counts, ends], axis=1)
                frames = LatentFrames(np.concatenate([p.mu for p in parts]),
                                      np.concatenate([p.logvar for p in parts]), int(hop))
                found = self._frames[key] = (frames, spans)
        return found


def corpus(*items, name: str | None = None, rate: int | None = None) -> Corpus:
    """A corpus from sources, SOMs, folders (every audio file under them), files, or lists of
    those, in the order given.

    >>> c = corpus("samples/strings", flute)
    """
    rate = int(rate) if rate is not None else playing_rate()
    if name is not None and not isinstance(name, str):      # ("": the default name)
        raise ParameterError(f"corpus(name={name!r:.60}) must be a string")
    if len(items) == 1 and isinstance(items[0], Corpus):
        return items[0]
    found: list[Source] = []
    labels: list[str] = []
    for item in items:
        _collect(item, found, labels, rate)
    unique = list({src.audio_hash: src for src in found}.values())
    return Corpus(unique, name=name or (labels[0] if len(labels) == 1 else "+".join(labels[:3])))


def _collect(item, found: list, labels: list, rate: int) -> None:
    if isinstance(item, Corpus):
        found.extend(item.sources)
        labels.append(item.name)
    elif isinstance(item, Series):
        raise ParameterError(f"corpus: {item.code} is a latent series; a corpus holds sounds "
                             f"(the sources underneath), and paths go through it")
    elif isinstance(item, Source):
        found.append(item)
        labels.append(item.name)
    elif isinstance(item, Som):
        found.extend(item[c.index] for c in item.clusters)
        labels.append(item.name)
    elif isinstance(item, (str, os.PathLike)):
        path = Path(item)
        if path.is_dir():
            files = list_audio_files(path)
            if not files:
                raise ParameterError(f"corpus: the folder {path} holds no audio files")
            found.extend(source(f, rate=rate) for f in files)
            labels.append(path.name)
        else:
            found.append(source(path, rate=rate))
            labels.append(path.stem)
    elif isinstance(item, (list, tuple)):
        if not item:
            raise ParameterError("corpus: an empty list has no sounds")
        for part in item:
            _collect(part, found, labels, rate)
    else:
        raise ParameterError(f"corpus: {type(item).__name__} is not a sound: give sources, a SOM, "
                             f"a folder or files")
