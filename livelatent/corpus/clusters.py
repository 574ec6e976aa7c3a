"""A loaded self-organizing map: its clusters as sources, their neighbours, and near().

:class:`Som` objects come from :func:`livelatent.corpus.som.load_som` (or ``build_som``); this
module holds what a performer does with one.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import SILENCE_PEAK, as_mono, read_audio
from ..errors import AudioError, SomError, ResampledWarning
from ..sources import Source, playing_rate
from . import masom
from .feature_sets import feature_set
from .features import Scaler, read_for_analysis

__all__ = ["Som", "Cluster", "ClusterList"]


@dataclass(frozen=True)
class Cluster:
    """One non-empty cluster: its index, place on the grid, number of files and seconds."""

    index: int
    row: int
    column: int
    size: int
    duration_s: float

    def __repr__(self) -> str:
        return f"Cluster({self.index}, size={self.size}, duration_s={self.duration_s:.1f})"


class ClusterList(list):
    """The non-empty clusters of a map, printed as a small table."""

    def __repr__(self) -> str:
        if not self:
            return "(no clusters)"
        lines = [f"{len(self)} clusters, {sum(c.size for c in self)} files:",
                 "  cluster  row  col  files  seconds"]
        lines += [f"  {c.index:7d}  {c.row:3d}  {c.column:3d}  {c.size:5d}  {c.duration_s:7.1f}"
                  for c in self]
        return "\n".join(lines)


class Som:
    """A self-organizing map of a corpus. Load one with :func:`load_som`, build one with
    :func:`build_som`.

    ``som[k]`` is cluster ``k`` as a source; ``som.clusters`` lists the non-empty clusters;
    ``som.near(sound)`` finds the cluster a sound belongs to; ``som.neighbors(k)`` the clusters
    next to ``k``; ``len(som)`` is the number of nodes (clusters) on the grid.
    """

    __iter__ = None  # som[k] raises for empty nodes: iterate over som.clusters instead

    def __init__(self, path: Path, *, base: Path, grid: tuple[int, int], clusters: dict,
                 entries: dict, node_weights=None, scaler: Scaler | None = None, meta=None):
        self.path = Path(path)
        self.base = Path(base)
        self.grid = grid
        self._clusters = clusters            # node -> [file index]
        self._entries = entries              # file index -> masom.Entry
        self._node_weights = node_weights    # (rows * cols, features) or None
        self._scaler = scaler
        self.meta = dict(meta or {})
        self._sources: dict[tuple[int, int], object] = {}

    # -- what the map holds ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.resolve().name

    @property
    def num_files(self) -> int:
        return len(self._entries)

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """Files the build could not use, with the reason (maps we built only)."""
        items = self.meta.get("skipped", [])
        if not (isinstance(items, list) and all(isinstance(item, list) and len(item) == 2 and all(
                isinstance(part, str) for part in item) for item in items)):
            raise SomError(f"som.json: skipped is {items!r:.60}, not a list of [file, reason] pairs")
        return [tuple(item) for item in items]

    def __len__(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def clusters(self) -> ClusterList:
        """The non-empty clusters with their sizes and durations, by index."""
        cols = self.grid[1]
        return ClusterList(
            Cluster(k, k // cols, k % cols, len(members),
                    sum(self._entries[i].duration_ms for i in members if i in self._entries) / 1000.0)
            for k, members in self._clusters.items() if members)

    def files_in(self, k: int) -> list[Path]:
        """The audio files of cluster ``k`` (under :attr:`base`), in order; [] if empty."""
        k = self._index(k)
        return [self.base / self._entry(k, i).path for i in self._clusters.get(k, [])]

    def __repr__(self) -> str:
        rows, cols = self.grid
        nonempty = sum(1 for m in self._clusters.values() if m)
        return (f"<Som {self.name!r}: {rows}x{cols} grid, {self.num_files} files in {nonempty} "
                f"clusters, base {str(self.base)!r}>")

    # -- clusters as sources --------------------------------------------------------------------
    def __getitem__(self, k):
        """Cluster ``k`` as a source: its files concatenated, at the current model's rate."""
        k = self._index(k)
        members = self._clusters.get(k, [])
        if not members:
            near = self.neighbors(k)
            hint = f"non-empty clusters next to it: {near}" if near else "see som.clusters"
            raise SomError(f"cluster {k} of {self.name!r} is empty: no sound landed on that node "
                           f"({hint})")
        rate = playing_rate()
        cached = self._sources.get((k, rate))
        if cached is not None:
            return cached
        entries = [self._entry(k, i) for i in members]
        missing = [e.path for e in entries if not (self.base / e.path).is_file()]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise SomError(f"cluster {k} of {self.name!r}: {len(missing)} of {len(entries)} audio files "
                           f"are missing under {self.base}: {shown}. Give the folder the paths are "
                           f"relative to: load_som({str(self.path)!r}, base=FOLDER) (livelatent map: --base "
                           f"FOLDER)")
        parts, resampled = [], 0
        with warnings.catch_warnings(record=True) as caught:   # one warning per cluster, not per file
            warnings.simplefilter("always")
            for entry in entries:
                audio = read_audio(self.base / entry.path, target_rate=rate, allow_silent=True)
                parts.append(_segment(audio, entry, rate))
        for w in caught:
            if issubclass(w.category, ResampledWarning):
                resampled += 1
            else:
                warnings.warn(w.message, w.category, stacklevel=2)
        if resampled:
            warnings.warn(f"cluster {k}: {resampled} of {len(entries)} files were not at the model's "
                          f"{rate} Hz and were resampled", stacklevel=2)
        audio = np.concatenate(parts)
        if audio.size == 0 or float(np.max(np.abs(audio))) < SILENCE_PEAK:
            raise AudioError(f"cluster {k} of {self.name!r} is silent: its {len(entries)} files hold "
                             f"nothing to encode")
        src = Source(audio, sample_rate=rate, name=f"{self.name}[{k}]",
                     paths=[self.base / e.path for e in entries],
                     origin={"kind": "som", "map": str(self.path), "cluster": k, "base": str(self.base)})
        self._sources[(k, rate)] = src
        return src

    def neighbors(self, k: int, *, include_empty: bool = False) -> list[int]:
        """The clusters next to ``k`` on the grid (above, below, left, right), ascending.

        Empty nodes are left out unless ``include_empty=True``, so each one works as ``som[j]``.
        """
        k = self._index(k)
        rows, cols = self.grid
        r, c = divmod(k, cols)
        around = [(r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)]
        found = sorted(rr * cols + cc for rr, cc in around if 0 <= rr < rows and 0 <= cc < cols)
        return found if include_empty else [j for j in found if self._clusters.get(j)]

    def near(self, sound, *, sample_rate: int | None = None) -> int:
        """The cluster a sound belongs to: the non-empty node nearest to its thumbnail.

        ``sound`` is a path, a :class:`~livelatent.sources.Source` or an array (at
        ``sample_rate``, default the current model's rate).

        >>> som[som.near("new_kick.wav")]      # the cluster of sounds most like new_kick.wav
        """
        if self._node_weights is None or self._scaler is None:
            raise SomError(f"near() needs the map's node weights and feature statistics, and "
                           f"{self.name!r} has only {masom.CLUSTERS_FILE} and {masom.DATA_FILE} "
                           f"(a map from MASOM?). Rebuild it here to use near(): "
                           f"livelatent som {self.base} -o {self.path}")
        if not any(self._clusters.values()):     # (argmin over nodes that are all empty: node 0)
            raise SomError(f"near() has no cluster to choose: every cluster of {self.name!r} is "
                           f"empty ({self.path / masom.CLUSTERS_FILE} puts no sound on any node)")
        if isinstance(sound, (str, os.PathLike)):
            try:
                audio, rate = read_for_analysis(sound)
            except AudioError as exc:
                raise AudioError(f"{sound}: {exc}") from None
        elif hasattr(sound, "audio") and hasattr(sound, "sample_rate"):
            audio, rate = sound.audio, sound.sample_rate
        else:
            audio, rate = sound, playing_rate() if sample_rate is None else sample_rate
        audio = as_mono(audio, sample_rate=rate, target_rate=rate, name="near()")   # checked
        chosen = self._feature_set()
        thumbnail = chosen.describe(audio, rate)
        if thumbnail.shape != (self._node_weights.shape[1],):
            raise SomError(f"map {self.name!r} has {self._node_weights.shape[1]} features per node, "
                           f"but its {chosen.name!r} thumbnails have {thumbnail.size}: its som.json "
                           f"does not describe its weights; rebuild it: "
                           f"livelatent som {self.base} -o {self.path}")
        with np.errstate(over="ignore", invalid="ignore"):        # (said below)
            point = self._scaler.transform(thumbnail[None, :])[0]
            distances = np.linalg.norm(self._node_weights - point, axis=1)
            if not np.isfinite(distances).all():       # (their squares overflowed: argmin took
                diff = self._node_weights - point      # node 0, maybe empty) at a common scale
                scale = np.abs(diff).max()
                if not np.isfinite(scale):
                    raise SomError(f"near(): the sound's thumbnail is beyond any number on map "
                                   f"{self.name!r} (its som.json's feature statistics scale it so); "
                                   f"rebuild the map: livelatent som {self.base} -o {self.path}")
                distances = np.linalg.norm(diff / scale, axis=1) if scale > 0 else np.zeros(len(diff))
        nonempty = np.array([bool(self._clusters.get(j)) for j in range(len(self))])
        distances[~nonempty] = np.inf
        return int(np.argmin(distances))

    # -- helpers ----------------------------------------------------------------------------------
    def _feature_set(self):
        """The features the map was built on (a map from before they were named: bag); for the
        model's thumbnails, the very model it used, found by its hash (a newer default pack
        would describe sounds in another latent space)."""
        name, model, wanted = (self.meta.get("features", "bag"), self._recorded_model(),
                               self.meta.get("model_hash"))
        if name != "model" or not wanted:
            return feature_set(name, model=model if name == "model" else None)
        from ..config import DEFAULT_MODEL_DIR
        from ..model.checkpoint import PACK_WEIGHTS_NAME
        from ..model.packs import describe_model, locate_model
        recorded = model or str(DEFAULT_MODEL_DIR / PACK_WEIGHTS_NAME)
        chosen = feature_set(name, model=str(locate_model(recorded, wanted)))
        if chosen.describe.codec.content_hash != wanted:
            raise SomError(f"map {self.name!r} was built on the thumbnails of the model "
                           f"{describe_model(recorded, wanted)}, which is not installed; install it "
                           f"or rebuild the map: livelatent som {self.base} -o {self.path} --features model")
        return chosen

    def _recorded_model(self) -> str | None:
        """The model som.json names, where it is now: relative to the map's folder, else the
        absolute path; a map from before these were recorded names it relative to the folder
        it was built from, tried from here, the map's folder and the folder above it."""
        model = self.meta.get("model")
        if model is None:
            return None
        here = Path(self.path)
        candidates = [here / self.meta["model_relative"]] if self.meta.get("model_relative") else []
        candidates += [Path(model)]
        if not Path(model).is_absolute():
            candidates += [here / model, here.parent / model]
        found = next((c for c in candidates if c.exists()), None)
        return str(found.resolve() if found is not None else Path(model))

    def _index(self, k) -> int:
        """A cluster index (or :class:`Cluster`) checked against the grid."""
        if isinstance(k, Cluster):
            k = k.index
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise SomError(f"cluster index {k!r} must be an integer, 0..{len(self) - 1}")
        if not 0 <= int(k) < len(self):
            rows, cols = self.grid
            raise SomError(f"cluster {k} is off the grid: {self.name!r} is {rows}x{cols}, "
                           f"clusters 0..{len(self) - 1}")
        return int(k)

    def _entry(self, k: int, index: int) -> masom.Entry:
        try:
            return self._entries[index]
        except KeyError:
            raise SomError(f"{self.path / masom.CLUSTERS_FILE} puts file {index} in cluster {k}, but "
                           f"{masom.DATA_FILE} has no entry {index}") from None


def _segment(audio: np.ndarray, entry: masom.Entry, rate: int) -> np.ndarray:
    """The part of a file an entry means: whole files unless start/duration say otherwise."""
    start = int(round(entry.start_ms * rate / 1000.0))
    length = int(round(entry.duration_ms * rate / 1000.0))
    if start == 0 and (length <= 0 or abs(length - audio.shape[0]) <= 1):
        return audio
    end = audio.shape[0] if length <= 0 else min(audio.shape[0], start + length)
    return audio[min(start, audio.shape[0]):end]
