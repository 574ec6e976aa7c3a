"""The names a performer gets: the public API bound to an engine, plus the model pack's sources.

Scripts (``livelatent play/render``), pattern files, the REPL and replays all run in a
namespace built here, so ``voice(flute, cello, curve=sine(8))`` means the same everywhere, and
a thread or timer a cell starts acts on the same engine as the cell.
"""

from __future__ import annotations

import keyword
from pathlib import Path

from .. import public
from ..api import Performer
from ..audio import AUDIO_EXTENSIONS
from ..errors import LiveLatentError
from ..controllers import Controllers
from ..mapping.names import names as mapping_names
from ..navigation import Navigator
from ..sources import Source, source

__all__ = ["pack_sources", "namespace", "OWN_PERFORMER"]


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
                    found[name] = source(path, name=name, rate=engine.sample_rate)
                except LiveLatentError as exc:   # one broken demo file must not stop the show
                    engine.events.warning(f"skipped demo source {path.name}: {exc}")
    return found


OWN_PERFORMER = "_livelatent_performer"


def namespace(engine, *, performer: Performer | None = None, extra: dict | None = None,
              listening: bool = True) -> dict:
    """A fresh namespace: the public names (those that act on an engine bound to ``engine``),
    the pack's sources, and ``engine``. ``listening=False``: controllers listen to nothing
    (a script rendered offline, see :meth:`Controllers.names`)."""
    names = public.names()
    performer = performer or Performer(engine)
    names.update(performer.names())
    names.update(Navigator(engine).names())
    names.update(mapping_names(engine, replaying=performer.replaying))
    names.update(Controllers.names(engine, replaying=performer.replaying, listening=listening))
    names["performer"] = performer
    names[OWN_PERFORMER] = performer     # what code livelatent writes calls (a performer may
                                         # well name something else ``performer``)
    # a demo source never hides a function of the API (the pack's voice.flac vs voice())
    names.update({k: v for k, v in pack_sources(engine).items() if k not in names})
    names["engine"] = engine
    names["__name__"] = "__livelatent__"
    if extra:
        names.update(extra)
    return names
