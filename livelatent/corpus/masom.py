"""The cluster files of the RawAudioVAE / MASOM workflow, read and written.

A map made by MASOM (Tatar's Max patches) and used by the RawAudioVAE tutorial is two JSON files
in a folder:

``clusters.json``
    ``{"node": [file indices]}``: node ids are strings of integers, the SOM's nodes numbered row
    by row (``row * columns + column``), and only nodes that hold files are listed.
``data-concatenated.json``
    ``{"index": [1, "relative/path.wav", start_ms, duration_ms, feature, ...]}``: file indices
    are strings; the path is relative to the corpus folder; ``start_ms`` and ``duration_ms`` say
    which segment of the file is meant (``0`` and the whole length for whole files); the
    features that follow are whatever the tool that wrote the file computed.

The RawAudioVAE tutorial builds a cluster's source by reading each file of
``clusters[str(k)]`` from ``audio_folder / data[str(index)][1]`` and concatenating them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_path
from ..errors import SomError, real_value

__all__ = ["CLUSTERS_FILE", "DATA_FILE", "Entry", "read_clusters", "read_data", "write_clusters",
           "write_data", "write_json"]

CLUSTERS_FILE = "clusters.json"
DATA_FILE = "data-concatenated.json"
MAX_MS = 1e12              # an entry's start and duration: up to 30 years of audio
MAX_PATH, MAX_NAME = 4096, 255   # bytes in an entry's path, and in each of its parts (Linux's)


@dataclass(frozen=True)
class Entry:
    """One sound of the corpus as ``data-concatenated.json`` describes it."""

    path: str                 # relative to the map's base folder, '/'-separated
    start_ms: float
    duration_ms: float
    features: tuple = ()


def write_json(path: Path, data, *, indent=None) -> None:
    """Write JSON atomically (a temporary file renamed over ``path``)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=indent, allow_nan=False)
        f.write("\n")


def _load(path: Path):
    if not path.is_file():
        raise SomError(f"{path} is missing: a SOM folder holds {CLUSTERS_FILE} and {DATA_FILE} "
                       f"(build one with `livelatent som DATA -o SOMDIR`)")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f, object_pairs_hook=lambda pairs: _unique(pairs, path))
    except (ValueError, RecursionError) as exc:   # (not UTF-8, not JSON, nested too deep, 5,000 digits)
        raise SomError(f"{path} is not valid JSON ({exc}); rebuild the map or fix the file") from None


def _unique(pairs: list, path: Path) -> dict:
    """A JSON object whose keys are all different (json keeps the last of a repeated key)."""
    found = dict(pairs)
    if len(found) < len(pairs):
        keys = [key for key, _ in pairs]
        twice = next(key for key in keys if keys.count(key) > 1)
        raise SomError(f"{path}: key {twice!r} appears more than once; keep one")
    return found


def _int_key(key, path: Path, what: str) -> int:
    try:
        value = int(key)
    except (TypeError, ValueError):
        value = -1
    if value < 0 or str(value) != str(key).strip():
        raise SomError(f"{path}: {what} {key!r} is not a non-negative integer")
    return value


def _once(number: int, seen: dict, data: dict, key: str, path: Path, what: str) -> None:
    """Two keys for one node (or file), ``"0"`` and ``" 0"``, would keep only the second."""
    if number in seen:
        first = next(k for k in data if k != key and _int_key(k, path, what) == number)
        raise SomError(f"{path}: {what} keys {first!r} and {key!r} are both {what} {number}; "
                       f"keep one")


def read_clusters(path) -> dict[int, list[int]]:
    """``clusters.json`` -> ``{node: [file indices]}`` (nodes ascending)."""
    path = Path(path)
    data = _load(path)
    if not isinstance(data, dict):
        raise SomError(f"{path}: expected an object {{\"node\": [file indices]}}, "
                       f"got {type(data).__name__}")
    clusters: dict[int, list[int]] = {}
    for key, members in data.items():
        node = _int_key(key, path, "node id")
        _once(node, clusters, data, key, path, "node")
        if not isinstance(members, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in members):
            raise SomError(f"{path}: node {key!r} must list file indices (non-negative integers), "
                           f"got {members!r:.80}")
        clusters[node] = list(members)
    return dict(sorted(clusters.items()))


def read_data(path) -> dict[int, Entry]:
    """``data-concatenated.json`` -> ``{file index: Entry}``."""
    path = Path(path)
    data = _load(path)
    if not isinstance(data, dict):
        raise SomError(f"{path}: expected an object {{\"index\": [1, \"path.wav\", 0, duration_ms, ...]}}, "
                       f"got {type(data).__name__}")
    entries: dict[int, Entry] = {}
    for key, row in data.items():
        index = _int_key(key, path, "file index")
        _once(index, entries, data, key, path, "file index")
        if (not isinstance(row, list) or len(row) < 4 or not isinstance(row[1], str)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row[2:4])):
            raise SomError(f"{path}: entry {key!r} must be [1, \"relative/path.wav\", start_ms, "
                           f"duration_ms, features...], got {row!r:.100}")
        start, duration = real_value(row[2]), real_value(row[3])
        if not (0 <= start <= MAX_MS and abs(duration) <= MAX_MS):           # (NaN fails too)
            raise SomError(f"{path}: entry {key!r} has start_ms={row[2]!r:.40}, "
                           f"duration_ms={row[3]!r:.40} (from 0 to {MAX_MS:g} ms)")
        if not _is_file_name(row[1]):                                 # (stat() of it raised)
            raise SomError(f"{path}: entry {key!r} names {row[1]!r:.60}, not a file name")
        entries[index] = Entry(row[1], start, duration, tuple(row[4:]))
    return entries


def _is_file_name(text: str) -> bool:
    """Whether ``text`` can name a file: no NUL, and parts and whole of lengths Linux takes."""
    encoded = text.encode("utf-8", "surrogatepass")
    return (0 < len(encoded) <= MAX_PATH and b"\0" not in encoded
            and all(len(part) <= MAX_NAME for part in encoded.split(b"/")))


def write_clusters(path, clusters: dict[int, list[int]]) -> None:
    """Write ``clusters.json``: non-empty nodes only, as MASOM does."""
    write_json(Path(path), {str(node): [int(i) for i in members]
                            for node, members in sorted(clusters.items()) if members}, indent=1)


def write_data(path, entries: list[Entry]) -> None:
    """Write ``data-concatenated.json``, one entry per file index ``0..n-1``."""
    write_json(Path(path), {str(i): [1, e.path, e.start_ms, e.duration_ms, *e.features]
                            for i, e in enumerate(entries)}, indent=1)
