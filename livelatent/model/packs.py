"""Finding a model pack's files again after the pack moved.

Sets record the model and the file sources they use by absolute path (and by content hash).
A pack moves when livelatent is reinstalled elsewhere, or a set is opened on another machine.
:func:`locate` maps a recorded path that is no longer there into an installed pack with the
same folder name (the pack's name): ``/old/place/default/sources/flute.flac`` becomes
``<installed packs>/default/sources/flute.flac``. Callers check the content hash of whatever
they load, so a pack of the same name with other contents is refused, never played.
"""

from __future__ import annotations

from pathlib import Path

from ..config import pack_roots

__all__ = ["locate", "installed_packs", "pack_name"]


def installed_packs() -> list[Path]:
    """Every pack folder in :func:`~livelatent.config.pack_roots`."""
    found = []
    for root in pack_roots():
        if root.is_dir():
            found += sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return found


def locate(recorded) -> Path:
    """``recorded`` if it exists, else the same file in an installed pack of the same name, else
    ``recorded`` (missing: the caller says what is missing)."""
    path = Path(recorded)
    if path.exists():
        return path
    packs = {p.name: p for p in reversed(installed_packs())}     # the first root wins
    for ancestor in path.parents:
        pack = packs.get(ancestor.name)
        if pack is not None:
            candidate = pack / path.relative_to(ancestor)
            if candidate.exists():
                return candidate
    return path


def pack_name(model_path) -> str:
    """How a set names the pack of its model: the model file's folder."""
    return Path(model_path).parent.name
