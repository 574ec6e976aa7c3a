"""Self-organizing maps of sample corpora, and their clusters as sources.

In the RawAudioVAE workflow long sources are clusters of similar sounds from a performer's
library: a self-organizing map (SOM) sorts the sounds by their thumbnails
(:mod:`livelatent.corpus.features`), and each node of the map is a cluster whose files,
concatenated, make one long source for the meso-scale and extension strategies::

    som = load_som("soms/drums")
    som.clusters                  # which clusters hold how many files, how many seconds
    voice(som[18], som[24], strategy="meso", curve=sine(30))

Clusters are the map's nodes, numbered row by row (``row * columns + column``) as in MASOM, so
``som[k]`` exists for every ``k`` on the grid; a node no sound landed on is empty.

The folder a map lives in holds ``som.json`` (metadata, feature statistics), ``weights.npy``
(the node weights), ``umatrix.png`` (the picture to choose clusters from) and the MASOM files
``clusters.json`` and ``data-concatenated.json`` (:mod:`livelatent.corpus.masom`), so maps made
by either tool load in the other.
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import context
from ..audio import read_audio
from ..config import SAMPLE_RATE
from ..errors import AudioError, ParameterError, SomError
from . import masom
from .features import (ANALYSIS_RATE, FEATURE_NAMES, FRAME_SIZE, HOP_SIZE, Scaler, extract_features,
                       features_of_audio, fit_scaler, list_corpus_files, read_for_analysis)
from .umatrix import draw_umatrix, umatrix

__all__ = ["Som", "Cluster", "ClusterList", "build_som", "load_som", "default_grid",
           "default_iterations", "parse_grid", "cli_som"]

SOM_FILE = "som.json"
WEIGHTS_FILE = "weights.npy"
UMATRIX_FILE = "umatrix.png"
FORMAT = "livelatent.som"
VERSION = 1


def default_grid(num_files: int) -> tuple[int, int]:
    """The grid for a corpus: about ``5 * sqrt(files)`` nodes (Vesanto's rule), square.

    1,100 files give 13x13 (169 nodes, the size of the published RawAudioVAE example map);
    48 files give 6x6; never smaller than 2x2.
    """
    side = max(2, round(math.sqrt(5.0 * math.sqrt(max(1, num_files)))))
    return side, side


def default_iterations(num_files: int) -> int:
    """Training steps (one sample each): 30 passes over the corpus, at least 3,000."""
    return max(3000, 30 * num_files)


def parse_grid(grid) -> tuple[int, int]:
    """``"6x8"``, ``(6, 8)`` or ``None`` (default) -> ``(rows, columns)``."""
    if isinstance(grid, str):
        parts = grid.lower().replace("*", "x").replace(",", "x").split("x")
        try:
            rows, cols = (int(p) for p in parts)
        except ValueError:
            raise ParameterError(f"grid={grid!r} must be ROWSxCOLUMNS, e.g. '6x6'") from None
    else:
        try:
            rows, cols = (int(v) for v in grid)
        except (TypeError, ValueError):
            raise ParameterError(f"grid={grid!r} must be ROWSxCOLUMNS, e.g. '6x6' or (6, 6)") from None
    if rows < 1 or cols < 1 or rows * cols < 2:
        raise ParameterError(f"grid={grid!r} needs at least 2 nodes, e.g. '2x2'")
    return rows, cols


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


def _target_rate() -> int:
    engine = context.current_engine_or_none()
    return engine.sample_rate if engine is not None else SAMPLE_RATE


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
        return [tuple(item) for item in self.meta.get("skipped", [])]

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
        self._check_index(k)
        return [self.base / self._entry(k, i).path for i in self._clusters.get(k, [])]

    def __repr__(self) -> str:
        rows, cols = self.grid
        nonempty = sum(1 for m in self._clusters.values() if m)
        return (f"<Som {self.name!r}: {rows}x{cols} grid, {self.num_files} files in {nonempty} "
                f"clusters, base {str(self.base)!r}>")

    # -- clusters as sources --------------------------------------------------------------------
    def __getitem__(self, k):
        """Cluster ``k`` as a source: its files concatenated, at the current model's rate."""
        self._check_index(k)
        k = int(k)
        members = self._clusters.get(k, [])
        if not members:
            near = self.neighbors(k)
            hint = f"non-empty clusters next to it: {near}" if near else "see som.clusters"
            raise SomError(f"cluster {k} of {self.name!r} is empty: no sound landed on that node "
                           f"({hint})")
        rate = _target_rate()
        cached = self._sources.get((k, rate))
        if cached is not None:
            return cached
        entries = [self._entry(k, i) for i in members]
        missing = [e.path for e in entries if not (self.base / e.path).is_file()]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise SomError(f"cluster {k} of {self.name!r}: {len(missing)} of {len(entries)} audio files "
                           f"are missing under {self.base}: {shown}. Give the folder the paths are "
                           f"relative to: load_som({str(self.path)!r}, base=FOLDER)")
        parts, resampled = [], set()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for entry in entries:
                audio = read_audio(self.base / entry.path, target_rate=rate, allow_silent=True)
                parts.append(_segment(audio, entry, rate))
            resampled = {str(w.message).split(" is ")[-1].split(":")[0] for w in caught
                         if "resampled" in str(w.message)}
        if resampled:
            warnings.warn(f"cluster {k}: files at {', '.join(sorted(resampled))} were resampled to "
                          f"{rate} Hz", stacklevel=2)
        audio = np.concatenate(parts)
        if audio.size == 0 or float(np.max(np.abs(audio))) < 1e-4:
            raise AudioError(f"cluster {k} of {self.name!r} is silent: its {len(entries)} files hold "
                             f"nothing to encode")
        from ..sources import Source

        src = Source(audio, sample_rate=rate, name=f"{self.name}[{k}]",
                     paths=[self.base / e.path for e in entries],
                     origin={"kind": "som", "map": str(self.path), "cluster": k, "base": str(self.base)})
        self._sources[(k, rate)] = src
        return src

    def neighbors(self, k: int, *, include_empty: bool = False) -> list[int]:
        """The clusters next to ``k`` on the grid (above, below, left, right), ascending.

        Empty nodes are left out unless ``include_empty=True``, so each one works as ``som[j]``.
        """
        self._check_index(k)
        rows, cols = self.grid
        r, c = divmod(int(k), cols)
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
        if isinstance(sound, (str, os.PathLike)):
            try:
                audio, rate = read_for_analysis(sound)
            except AudioError as exc:
                raise AudioError(f"{sound}: {exc}") from None
        elif hasattr(sound, "audio") and hasattr(sound, "sample_rate"):
            audio, rate = sound.audio, sound.sample_rate
        else:
            audio, rate = sound, sample_rate or _target_rate()
        point = self._scaler.transform(features_of_audio(audio, sample_rate=rate)[None, :])[0]
        distances = np.linalg.norm(self._node_weights - point, axis=1)
        nonempty = np.array([bool(self._clusters.get(j)) for j in range(len(self))])
        distances[~nonempty] = np.inf
        return int(np.argmin(distances))

    # -- helpers ----------------------------------------------------------------------------------
    def _check_index(self, k) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise SomError(f"cluster index {k!r} must be an integer, 0..{len(self) - 1}")
        if not 0 <= int(k) < len(self):
            rows, cols = self.grid
            raise SomError(f"cluster {k} is off the grid: {self.name!r} is {rows}x{cols}, "
                           f"clusters 0..{len(self) - 1}")

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


# -- building -------------------------------------------------------------------------------------
def _train(points: np.ndarray, grid: tuple[int, int], *, seed: int, iterations: int) -> np.ndarray:
    """Train a minisom map; returns node weights (rows * cols, features)."""
    from minisom import MiniSom

    rows, cols = grid
    som = MiniSom(rows, cols, points.shape[1], sigma=max(rows, cols) / 2.0, learning_rate=0.5,
                  neighborhood_function="gaussian", decay_function="linear_decay_to_zero",
                  sigma_decay_function="linear_decay_to_one", random_seed=seed)
    if points.shape[0] >= 2 and np.linalg.matrix_rank(points) >= 2:
        som.pca_weights_init(points)      # deterministic, and orders the map from the start
    else:
        som.random_weights_init(points)
    som.train(points, iterations, random_order=True)
    return som.get_weights().reshape(rows * cols, -1).copy()


def _best_matching(points: np.ndarray, node_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest node for each point, and its distance."""
    d2 = ((points * points).sum(1)[:, None] - 2.0 * points @ node_weights.T
          + (node_weights * node_weights).sum(1)[None, :])
    best = np.argmin(d2, axis=1)
    return best, np.sqrt(np.maximum(d2[np.arange(len(points)), best], 0.0))


def _common_base(paths: list[Path]) -> Path:
    parents = [str(p.resolve().parent) for p in paths]
    return Path(os.path.commonpath(parents))


def build_som(data, output_dir, *, grid=None, seed: int = 0, iterations: int | None = None,
              weights: dict | None = None, progress: bool = True) -> Som:
    """Build a map of a corpus and write it to ``output_dir``.

    Parameters
    ----------
    data : str, Path, or list of them
        Audio files and folders (searched recursively). Files that are not audio, empty,
        unreadable or silent are skipped and listed with the reason; the build goes on.
    output_dir : str or Path
        The SOM folder to write (created if needed).
    grid : "RxC" or (rows, columns), optional
        Default :func:`default_grid`: about 5 * sqrt(files) nodes, square.
    seed : int
        Same files and seed give the same map.
    iterations : int, optional
        Training steps, default :func:`default_iterations`.
    weights : dict, optional
        Weight per feature group (see :func:`~livelatent.corpus.features.group_weights`).
    progress : bool
        Show a progress bar while features are extracted.

    >>> som = build_som("samples/", "soms/samples")
    """
    inputs = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    if not inputs:
        raise SomError("build_som needs audio files or folders, got none")
    output = Path(output_dir)
    files = list_corpus_files(*inputs, exclude=output)
    if not files:
        raise SomError(f"no files in {', '.join(map(str, inputs))}: nothing to map")
    table = extract_features(files, progress=progress)
    if table.skipped:
        print(f"livelatent som: skipped {len(table.skipped)} of {len(files)} files:", file=sys.stderr)
        for path, reason in table.skipped:
            print(f"  {path}: {reason}", file=sys.stderr)
    if len(table) == 0:
        raise SomError(f"none of the {len(files)} files in {', '.join(map(str, inputs))} is usable "
                       f"audio (see the list above)")
    rows, cols = default_grid(len(table)) if grid is None else parse_grid(grid)
    iterations = default_iterations(len(table)) if iterations is None else int(iterations)
    if iterations < 1:
        raise ParameterError(f"iterations={iterations} must be at least 1")
    scaler = fit_scaler(table.values, weights=weights)
    points = scaler.transform(table.values)
    node_weights = _train(points, (rows, cols), seed=int(seed), iterations=iterations)
    best, distance = _best_matching(points, node_weights)
    clusters = {node: [int(i) for i in np.flatnonzero(best == node)] for node in range(rows * cols)}

    base = (Path(inputs[0]).resolve() if len(inputs) == 1 and Path(inputs[0]).is_dir()
            else _common_base(table.paths))
    output.mkdir(parents=True, exist_ok=True)
    entries = [masom.Entry(p.resolve().relative_to(base).as_posix(), 0, round(v[0] * 1000.0, 6),
                           tuple(round(float(x), 6) for x in v[1:]))
               for p, v in zip(table.paths, table.values)]
    masom.write_data(output / masom.DATA_FILE, entries)
    masom.write_clusters(output / masom.CLUSTERS_FILE, clusters)
    np.save(output / WEIGHTS_FILE, node_weights.reshape(rows, cols, -1), allow_pickle=False)
    meta = {
        "format": FORMAT, "version": VERSION, "grid": [rows, cols],
        "node_numbering": "row * columns + column", "files": len(table),
        "base": os.path.relpath(base, output.resolve()), "base_absolute": str(base),
        "seed": int(seed), "iterations": iterations, "sigma": max(rows, cols) / 2.0,
        "learning_rate": 0.5, "neighborhood": "gaussian", "trainer": "minisom",
        "analysis_rate": ANALYSIS_RATE, "frame_size": FRAME_SIZE, "hop_size": HOP_SIZE,
        "feature_names": FEATURE_NAMES, "feature_weights": dict(weights or {}),
        "scaler": scaler.to_json(), "weights_file": WEIGHTS_FILE,
        "quantization_error": float(distance.mean()),
        "skipped": [[str(p), reason] for p, reason in table.skipped],
    }
    masom.write_json(output / SOM_FILE, meta, indent=1)
    sizes = np.bincount(best, minlength=rows * cols).reshape(rows, cols)
    draw_umatrix(output / UMATRIX_FILE, umatrix(node_weights.reshape(rows, cols, -1)), sizes,
                 title=f"{output.resolve().name}: {len(table)} files on {rows}x{cols} "
                       f"(big: files in the cluster, small: cluster index)")
    return load_som(output, base=base)


# -- loading --------------------------------------------------------------------------------------
def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SomError(f"{path} is not valid JSON ({exc}); rebuild the map") from None
    grid = meta.get("grid") if isinstance(meta, dict) else None
    if (meta.get("format") if isinstance(meta, dict) else None) != FORMAT or not (
            isinstance(grid, list) and len(grid) == 2 and all(isinstance(g, int) and g > 0 for g in grid)):
        raise SomError(f"{path} is not a livelatent SOM description (format {FORMAT!r} with a grid)")
    if meta.get("version", 0) > VERSION:
        raise SomError(f"{path} is version {meta['version']}; this livelatent reads up to {VERSION}")
    return meta


def _resolve_base(somdir: Path, meta: dict | None, entries: dict) -> Path:
    candidates = []
    if meta:
        if meta.get("base") is not None:
            candidates.append((somdir / meta["base"]).resolve())
        if meta.get("base_absolute"):
            candidates.append(Path(meta["base_absolute"]))
    candidates += [somdir.resolve(), somdir.resolve().parent, somdir.resolve().parent / "audio"]
    sample = [e.path for _, e in sorted(entries.items())[:5]]
    for folder in candidates:
        if sample and all((folder / p).is_file() for p in sample):
            return folder
    return candidates[0]


def load_som(somdir, *, base=None) -> Som:
    """Load a map from its folder: one we built, or one with only MASOM's two JSON files.

    Parameters
    ----------
    somdir : str or Path
        The folder holding ``clusters.json`` and ``data-concatenated.json`` (and, for maps built
        here, ``som.json`` and ``weights.npy``).
    base : str or Path, optional
        The folder the audio paths in ``data-concatenated.json`` are relative to. By default the
        first of these where the files are found: the corpus folder recorded by
        :func:`build_som`, the SOM folder, its parent, and ``audio/`` beside it (the layout of
        the RawAudioVAE example). Maps from MASOM do not record their grid: it is taken as the
        smallest square that holds the highest node id.

    >>> som = load_som("content/erokia/som", base="content/erokia/audio")
    """
    somdir = Path(somdir)
    if not somdir.is_dir():
        raise SomError(f"no SOM folder at {somdir}: build one with `livelatent som DATA -o {somdir}`")
    meta = _read_meta(somdir / SOM_FILE) if (somdir / SOM_FILE).exists() else None
    clusters = masom.read_clusters(somdir / masom.CLUSTERS_FILE)
    entries = masom.read_data(somdir / masom.DATA_FILE)
    if meta:
        grid = (meta["grid"][0], meta["grid"][1])
    else:
        side = max(1, math.isqrt(max(clusters, default=0)))
        side = side if side * side > max(clusters, default=0) else side + 1
        grid = (max(side, 1), max(side, 1))
    off = [k for k in clusters if k >= grid[0] * grid[1]]
    if off:
        raise SomError(f"{somdir / masom.CLUSTERS_FILE} names node(s) {off[:5]} beyond the "
                       f"{grid[0]}x{grid[1]} grid of {somdir / SOM_FILE}")
    node_weights = scaler = None
    if meta:
        try:
            node_weights = np.load(somdir / meta.get("weights_file", WEIGHTS_FILE), allow_pickle=False)
            scaler = Scaler.from_json(meta["scaler"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SomError(f"{somdir}: the node weights or feature statistics cannot be read ({exc}); "
                           f"rebuild the map") from None
        node_weights = node_weights.reshape(grid[0] * grid[1], -1)
        if node_weights.shape[1] != len(scaler.mean):
            raise SomError(f"{somdir / WEIGHTS_FILE} has {node_weights.shape[1]} features per node, "
                           f"{SOM_FILE} describes {len(scaler.mean)}; rebuild the map")
    base = Path(base).resolve() if base is not None else _resolve_base(somdir, meta, entries)
    return Som(somdir, base=base, grid=grid, clusters=clusters, entries=entries,
               node_weights=node_weights, scaler=scaler, meta=meta)


# -- command line ---------------------------------------------------------------------------------
def cli_som(args) -> int:
    """``livelatent som DATA... -o SOMDIR [--grid RxC] [--seed N] [--iterations N]``."""
    som = build_som(args.data, args.output, grid=args.grid, seed=args.seed,
                    iterations=args.iterations, progress=True)
    print(f"wrote {som.path}: {som.grid[0]}x{som.grid[1]} map of {som.num_files} files in "
          f"{len(som.clusters)} clusters")
    print(f"  picture: {som.path / UMATRIX_FILE}")
    print(f"  use it:  som = load_som({str(som.path)!r}); voice(som[k1], som[k2], strategy='meso')")
    return 0
