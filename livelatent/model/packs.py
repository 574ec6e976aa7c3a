"""Model packs: finding their files again, and telling their versions apart.

Sets record the model and the file sources they use by absolute path and by content hash. A
pack moves when livelatent is reinstalled elsewhere or a set is opened on another machine, and a
pack's weights change when a new version of it ships. So:

- :func:`locate` maps a recorded path that is no longer there into an installed pack with the
  same folder name (the pack's name): ``/old/place/default/sources/flute.flac`` becomes
  ``<installed packs>/default/sources/flute.flac``.
- A pack folder holds ``pack.json`` (name, version, weights hash). :func:`locate_model` finds a
  set's model by its hash among the installed packs when the pack of its recorded name holds
  other weights (a newer default: the previous one stays installed as ``default-v1``).
- Callers check the content hash of whatever they load, so a pack of the same name with other
  weights is refused, never played, and :func:`describe_model` names the version to install.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..config import pack_roots
from ..errors import is_integral

__all__ = ["locate", "locate_model", "installed_packs", "pack_name", "pack_info", "PackInfo",
           "describe_model", "PACK_FILE"]

PACK_FILE = "pack.json"
MAX_PACK_VERSION = 1_000_000


@dataclass(frozen=True)
class PackInfo:
    """What a pack's ``pack.json`` says about it."""

    name: str
    version: int
    weights_hash: str
    folder: Path
    changes: str = ""         # what this version changed, in words

    def __str__(self) -> str:
        return f"pack {self.name!r} version {self.version}"

    def record(self) -> dict:
        """How a set names the pack it needs."""
        return {"name": self.name, "version": self.version}


def installed_packs() -> list[Path]:
    """Every pack folder in :func:`~livelatent.config.pack_roots`."""
    found = []
    for root in pack_roots():
        if root.is_dir():
            found += sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return found


def pack_info(folder) -> PackInfo | None:
    """The pack whose folder is ``folder`` (or holds the weights file ``folder``); None when it
    has no readable ``pack.json``."""
    folder = Path(folder)
    if not folder.is_dir():
        folder = folder.parent
    path = folder / PACK_FILE
    try:
        if path.exists() and not path.is_file():      # (a pipe: reading it would wait for ever)
            return _malformed(path, "not a regular file")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return _malformed(path, f"unreadable: {str(exc)[:200]}")
    except RecursionError:
        return _malformed(path, "unreadable: nested too deep to be a pack file")
    if not isinstance(data, dict):
        return _malformed(path, f"a {type(data).__name__}, not an object")
    name, version, digest = data.get("name"), data.get("version"), data.get("weights_hash")
    if not (isinstance(name, str) and name and isinstance(digest, str) and digest):
        return _malformed(path, "its name or weights_hash is missing or not text")
    if not (is_integral(version) and 1 <= version <= MAX_PACK_VERSION):
        return _malformed(path, f"version {version!r} is not a whole number from 1")
    return PackInfo(name, int(version), digest, folder, str(data.get("changes", "")))


def _malformed(path: Path, why: str) -> None:
    """Say once that a pack file is malformed (the folder is read as a plain model): None."""
    warnings.warn(f"{path}: not a valid pack file ({why}); the model there has no pack name or "
                  f"version", UserWarning, stacklevel=3)
    return None


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


def locate_model(recorded, content_hash: str | None) -> Path:
    """Where a set's model is now: the recorded file, or the same file in an installed pack of
    that name, unless that pack says it holds other weights and another installed pack holds
    ``content_hash`` (then that pack's weights file)."""
    path = locate(recorded)
    if content_hash is None:
        return path
    info = pack_info(path) if path.exists() else None
    if path.exists() and (info is None or info.weights_hash == content_hash):
        return path
    for folder in installed_packs():
        other = pack_info(folder)
        if other is not None and other.weights_hash == content_hash:
            return folder / path.name if (folder / path.name).exists() else folder
    return path


def describe_model(recorded, content_hash: str | None, pack: dict | None = None) -> str:
    """A set's model in words, with the pack and version it needs when it came from a pack,
    and what is installed under that pack's name."""
    name = (pack or {}).get("name") or pack_name(recorded)
    wanted = f"pack {name!r}" + (f" version {pack['version']}" if pack and "version" in pack else "")
    text = f"{wanted} (weights {str(content_hash)[:12]})"
    installed = [info for info in map(pack_info, installed_packs()) if info is not None and info.name == name]
    if installed:
        text += "; installed: " + ", ".join(f"{i.folder.name} = version {i.version} "
                                            f"(weights {i.weights_hash[:12]})" for i in installed)
    return text


def pack_name(model_path) -> str:
    """How a set names the pack of its model: the pack's own name, else the model file's folder."""
    path = Path(model_path)
    info = pack_info(path) if path.exists() else None
    if info is not None:
        return info.name
    # a pack folder names itself (a recorded folder may be gone: one without a suffix is taken
    # for a folder); a weights file, its folder; "model.pt" in the current folder, that folder
    folder = path if path.is_dir() or (not path.exists() and not path.suffix) else path.parent
    return folder.name or path.resolve().parent.name
