"""The names a performer gets: the public API plus the demo sources of the model's pack.

Scripts (``livelatent play/render``), pattern files and the REPL all run in a namespace built
here, so ``voice(flute, cello, curve=sine(8))`` means the same everywhere.
"""

from __future__ import annotations

import keyword
from pathlib import Path

import livelatent

from ..audio import AUDIO_EXTENSIONS
from ..errors import LiveLatentError
from ..sources import Source, source

__all__ = ["pack_sources", "namespace"]


def pack_sources(engine) -> dict[str, Source]:
    """The demo sources shipped in the engine's model pack (``sources/*.flac``), by name."""
    model_file = engine.codec.path
    if model_file is None:
        return {}
    folder = Path(model_file).parent / "sources"
    found = {}
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            name = path.stem
            if path.suffix.lower() in AUDIO_EXTENSIONS and name.isidentifier() and not keyword.iskeyword(name):
                try:
                    found[name] = source(path, name=name)
                except LiveLatentError as exc:   # one broken demo file must not stop the show
                    engine.messages.append(f"skipped demo source {path.name}: {exc}")
    return found


def namespace(engine, *, extra: dict | None = None) -> dict:
    """A fresh namespace: ``from livelatent import *``, the pack's sources, and ``engine``."""
    names = {name: getattr(livelatent, name) for name in livelatent.__all__}
    # a demo source never hides a function of the API (the pack's voice.flac vs voice())
    names.update({k: v for k, v in pack_sources(engine).items() if k not in names})
    names["engine"] = engine
    names["__name__"] = "__livelatent__"
    if extra:
        names.update(extra)
    return names
