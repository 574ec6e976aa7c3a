"""Training data: audio files as windows, streamed from a disk cache, split by file.

A library can be larger than memory. :func:`cache_audio` reads the files one at a time (mono, at
the model's rate, skipping what cannot be read) and appends each to one float32 file on disk,
``<output>/cache/<name>.f32``, with an index beside it (the files, their sizes and times, and
where each starts); a run that finds an index for the same files reuses the cache. A
:class:`WindowCorpus` maps that file (``np.memmap``): drawing a batch of windows reads only their
pages, so memory holds what the operating system chooses to keep, never the whole library.
Processes of a distributed run open the cache rank 0 wrote.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..audio import list_audio_files, read_audio
from ..errors import AudioError, ParameterError, ResampledWarning

__all__ = ["WindowCorpus", "cache_audio", "open_cache", "corpus_of", "split_files", "describe_files"]

_INDEX_FORMAT = "livelatent.audio_cache.1"


class WindowCorpus:
    """The audio of many files (one array, usually a memory map) and the start of every window
    at ``hop``; files shorter than a window are padded with zeros to one window."""

    def __init__(self, files: list[Path], audio: np.ndarray, offsets, durations, *, window: int, hop: int):
        self.files, self.audio, self.window = list(files), audio, window
        self.durations = [int(d) for d in durations]
        self.offsets = [int(o) for o in offsets]
        lengths = [max(d, window) for d in self.durations]
        self.starts = np.concatenate(
            [o + np.arange(0, n - window + 1, hop) for o, n in zip(self.offsets, lengths)]
        ).astype(np.int64) if lengths else np.zeros(0, np.int64)
        self._ramp = np.arange(window)

    def __len__(self) -> int:
        return self.starts.size

    def windows(self, indices: np.ndarray) -> np.ndarray:
        """``(len(indices), window)`` float32 windows (read from disk as needed)."""
        return np.ascontiguousarray(self.audio[self.starts[np.asarray(indices)][:, None] + self._ramp])

    def batch(self, indices: np.ndarray):
        import torch
        return torch.from_numpy(self.windows(indices))

    def signals(self) -> list[np.ndarray]:
        """Each file's audio (views of the cache, unpadded)."""
        return [self.audio[o:o + d] for o, d in zip(self.offsets, self.durations)]


def _stamp(path: Path) -> list:
    stat = path.stat()
    return [str(path), stat.st_size, stat.st_mtime_ns]


def cache_audio(files: list[Path], folder: Path, name: str, *, sample_rate: int, window: int,
                label: str, progress: bool = True) -> dict:
    """Read ``files`` one by one into ``folder/name.f32`` (see the module's text); returns the
    index. Unreadable files are skipped with a line on stderr."""
    folder.mkdir(parents=True, exist_ok=True)
    index_path, data_path = folder / f"{name}.json", folder / f"{name}.f32"
    stamps = [_stamp(p) for p in files]
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        if (index.get("format") == _INDEX_FORMAT and index.get("stamps") == stamps
                and index.get("sample_rate") == sample_rate and index.get("window") == window
                and data_path.stat().st_size == 4 * index["samples"]):
            return index
    except (OSError, ValueError, KeyError, TypeError):
        pass
    kept, offsets, durations, resampled, total = [], [], [], 0, 0
    with atomic_path(data_path) as tmp, open(tmp, "wb") as out:
        for path in files:
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    signal = read_audio(path, target_rate=sample_rate)
                resampled += any(issubclass(w.category, ResampledWarning) for w in caught)
            except AudioError as exc:
                print(f"livelatent train: skipping {path}: {exc}", file=sys.stderr)
                continue
            padded = np.pad(signal, (0, max(0, window - signal.size))).astype(np.float32)
            out.write(padded.tobytes())
            kept.append(str(path))
            offsets.append(total)
            durations.append(int(signal.size))
            total += padded.size
    if resampled and progress:
        print(f"livelatent train: {resampled} {label} file(s) resampled to {sample_rate} Hz", file=sys.stderr)
    index = {"format": _INDEX_FORMAT, "stamps": stamps, "sample_rate": sample_rate, "window": window,
             "files": kept, "offsets": offsets, "durations": durations, "samples": total}
    with atomic_path(index_path) as tmp:
        tmp.write_text(json.dumps(index), encoding="utf-8")
    return index


def open_cache(folder: Path, name: str) -> tuple[dict, np.ndarray]:
    """The index and the audio (memory-mapped, read-only) of a cache :func:`cache_audio` wrote."""
    index = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    audio = (np.memmap(folder / f"{name}.f32", dtype=np.float32, mode="r", shape=(index["samples"],))
             if index["samples"] else np.zeros(0, np.float32))
    return index, audio


def corpus_of(index: dict, audio: np.ndarray, paths: list[Path], *, window: int, hop: int) -> WindowCorpus:
    """The windows of ``paths`` (those of them the cache holds, in that order)."""
    where = {f: i for i, f in enumerate(index["files"])}
    chosen = [where[str(p)] for p in paths if str(p) in where]
    return WindowCorpus([Path(index["files"][i]) for i in chosen], audio,
                        [index["offsets"][i] for i in chosen], [index["durations"][i] for i in chosen],
                        window=window, hop=hop)


def split_files(files: list[Path], val_fraction: float, val_files, seed: int) -> tuple[list[Path], list[Path]]:
    """Training and validation files: a seeded fraction of the files, or ``val_files``."""
    if val_files:
        held = list_audio_files(*val_files)
        held_set = {p.resolve() for p in held}
        return [p for p in files if p.resolve() not in held_set], held
    if not 0 <= val_fraction < 1:
        raise ParameterError(f"val_fraction={val_fraction} must be in [0, 1)")
    if len(files) < 2 or val_fraction == 0:
        return files, []
    count = min(len(files) - 1, max(1, int(round(len(files) * val_fraction))))
    order = np.random.default_rng(seed).permutation(len(files))
    held = sorted(int(i) for i in order[:count])
    held_set = set(held)
    return [f for i, f in enumerate(files) if i not in held_set], [files[i] for i in held]


def _families(paths: list[Path]) -> dict[str, str]:
    """Family of each file, from a ``manifest.json`` next to it (``{"files": {name: {"family"...}}}``)."""
    found: dict[str, str] = {}
    manifests: dict[Path, dict] = {}
    for path in paths:
        folder = path.parent
        if folder not in manifests:
            try:
                manifests[folder] = json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("files", {})
            except (OSError, ValueError, AttributeError):
                manifests[folder] = {}
        entry = manifests[folder].get(path.name)
        if isinstance(entry, dict) and "family" in entry:
            found[str(path)] = str(entry["family"])
    return found


def describe_files(paths: list[Path], durations: list[int], sample_rate: int) -> dict:
    """What the card says of a set of files: counts, seconds, families, the manifest's words."""
    families = _families(paths)
    counts: dict[str, int] = {}
    for p in paths:
        if str(p) in families:
            counts[families[str(p)]] = counts.get(families[str(p)], 0) + 1
    description = None
    for folder in sorted({p.parent for p in paths}):
        try:
            description = json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("description")
            break
        except (OSError, ValueError, AttributeError):
            continue
    seconds = [d / sample_rate for d in durations]
    return {
        "files": len(paths),
        "seconds": round(float(sum(seconds)), 2),
        "shortest_s": round(float(min(seconds)), 3) if seconds else 0.0,
        "longest_s": round(float(max(seconds)), 3) if seconds else 0.0,
        "families": dict(sorted(counts.items())),
        "description": description,
        "folders": sorted({str(p.parent) for p in paths})[:10],
    }
