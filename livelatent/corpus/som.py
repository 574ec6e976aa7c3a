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
from pathlib import Path

import numpy as np
from minisom import MiniSom

from ..atomic import atomic_path, file_in_the_way
from ..errors import ParameterError, SomError, check_seed, is_integral
from . import masom
from .clusters import Cluster, ClusterList, Som
from .feature_sets import DEFAULT_FEATURES, feature_set
from .features import (ANALYSIS_RATE, FRAME_SIZE, HOP_SIZE, extract_features,
                       fit_scaler, list_corpus_files)
from .node_weights import check_feature_kind, read_node_weights, read_scaler
from .umatrix import draw_umatrix, umatrix

__all__ = ["Som", "Cluster", "ClusterList", "build_som", "load_som", "default_grid",
           "default_iterations", "parse_grid", "cli_som"]

SOM_FILE = "som.json"
WEIGHTS_FILE = "weights.npy"
UMATRIX_FILE = "umatrix.png"
FORMAT = "livelatent.som"
VERSION = 1


BATCH_FROM = 10_000       # more files than this: the batch map (one point at a time is too slow)
BATCH_EPOCHS = 20
MAX_ITERATIONS = 10_000_000   # one sample each: minutes at most, where 10**11 asked for 745 GiB
# Rows and columns at most: the default grid reaches 64 only past ~670,000 files, and the batch
# map's node-to-node matrices at 64x64 take 134 MB each (3000x3000 asked for terabytes).
MAX_SIDE = 64


def default_grid(num_files: int) -> tuple[int, int]:
    """The grid for a corpus: about ``5 * sqrt(files)`` nodes (Vesanto's rule), square.

    1,100 files give 13x13 (169 nodes, the size of the published RawAudioVAE example map);
    48 files give 6x6; never smaller than 2x2.
    """
    side = min(MAX_SIDE, max(2, round(math.sqrt(5.0 * math.sqrt(max(1, num_files))))))
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
    if rows > MAX_SIDE or cols > MAX_SIDE:
        raise ParameterError(f"grid={grid!r}: rows and columns must be at most {MAX_SIDE}, e.g. '13x13'")
    return rows, cols


def _check_output(output: Path) -> None:
    """The map's folder: a folder or none yet, not under a file, holding no more than a map."""
    blocking = file_in_the_way(output)
    if blocking is not None:
        raise SomError(f"-o {output}: {blocking} is a file; give a folder for the map")
    own = {SOM_FILE, WEIGHTS_FILE, UMATRIX_FILE, masom.CLUSTERS_FILE, masom.DATA_FILE}
    held = sorted(p.name for p in output.iterdir()) if output.is_dir() else []
    others = [name for name in held if name not in own]
    if others and SOM_FILE not in held:       # (its files went in among them without a word)
        raise SomError(f"-o {output} holds other files ({', '.join(others[:3])}): give the map a "
                       f"folder of its own")
    if SOM_FILE in held:
        print(f"livelatent som: replacing the map in {output}", file=sys.stderr)


# -- building -------------------------------------------------------------------------------------
def _train(points: np.ndarray, grid: tuple[int, int], *, seed: int, iterations: int) -> np.ndarray:
    """Train a minisom map; returns node weights (rows * cols, features)."""

    rows, cols = grid
    som = MiniSom(rows, cols, points.shape[1], sigma=max(rows, cols) / 2.0, learning_rate=0.5,
                  neighborhood_function="gaussian", decay_function="linear_decay_to_zero",
                  sigma_decay_function="linear_decay_to_one", random_seed=seed)
    if points.shape[0] >= 2 and np.linalg.matrix_rank(points) >= 2:
        with warnings.catch_warnings(action="ignore"):    # (it warns of a 1xN map: a line is
            som.pca_weights_init(points)  # ordered as well) deterministic, ordered from the start
    else:
        som.random_weights_init(points)
    som.train(points, iterations, random_order=True)
    return som.get_weights().reshape(rows * cols, -1).copy()


def _train_batch(points: np.ndarray, grid: tuple[int, int], *, seed: int, epochs: int = BATCH_EPOCHS) -> np.ndarray:
    """The batch SOM (Kohonen's batch map) for large corpora: each epoch, every point goes to
    its nearest node, and each node becomes the mean of the points of its grid neighbourhood
    (a Gaussian whose width falls from half the grid to one node). Vectorised over the points
    (minisom updates one point at a time), and deterministic: ``seed`` only breaks the PCA
    start's ties. Returns node weights (rows * cols, features)."""
    rows, cols = grid
    mean = points.mean(axis=0)
    _, singular, axes = np.linalg.svd(points[:: max(1, len(points) // 20000)] - mean, full_matrices=False)
    spread = singular[:2] / math.sqrt(max(1, min(len(points), 20000) - 1))
    r, c = np.meshgrid(np.linspace(-1, 1, rows), np.linspace(-1, 1, cols), indexing="ij")
    weights = mean + r.reshape(-1, 1) * spread[0] * axes[0] + c.reshape(-1, 1) * (spread[1] if len(spread) > 1 else 0) * axes[min(1, len(axes) - 1)]
    coords = np.stack([r.ravel() * (rows - 1) / 2, c.ravel() * (cols - 1) / 2], axis=1)
    grid_d2 = ((coords[:, None, :] - coords[None, :, :]) ** 2).sum(axis=2)
    for epoch in range(epochs):
        sigma = max(rows, cols) / 2.0 + (1.0 - max(rows, cols) / 2.0) * epoch / max(1, epochs - 1)
        best, _ = _best_matching(points, weights)
        counts = np.bincount(best, minlength=len(weights)).astype(np.float64)
        sums = np.stack([np.bincount(best, weights=points[:, j], minlength=len(weights))
                         for j in range(points.shape[1])], axis=1)
        reach = np.exp(-grid_d2 / (2.0 * sigma * sigma))
        total = reach @ counts
        weights = np.where(total[:, None] > 1e-12, (reach @ sums) / np.maximum(total, 1e-12)[:, None], weights)
    return weights


def _best_matching(points: np.ndarray, node_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest node for each point, and its distance (in chunks of points)."""
    best = np.empty(len(points), dtype=np.int64)
    distance = np.empty(len(points))
    squares = (node_weights * node_weights).sum(1)[None, :]
    for begin in range(0, len(points), 8192):
        chunk = points[begin:begin + 8192]
        d2 = (chunk * chunk).sum(1)[:, None] - 2.0 * chunk @ node_weights.T + squares
        found = np.argmin(d2, axis=1)
        best[begin:begin + len(chunk)] = found
        distance[begin:begin + len(chunk)] = np.sqrt(np.maximum(d2[np.arange(len(chunk)), found], 0.0))
    return best, distance


def _common_base(paths: list[Path]) -> Path:
    parents = [str(p.resolve().parent) for p in paths]
    return Path(os.path.commonpath(parents))


def _model_record(model, output: Path) -> dict:
    """How som.json names the model of ``--features model``, as sets do: absolute, and relative
    to the map's folder (found again from any folder, and when map and model move together)."""
    if model is None:
        return {"model": None}
    where = Path(model).resolve()
    return {"model": str(where), "model_relative": os.path.relpath(where, output.resolve())}


def build_som(data, output_dir, *, grid=None, seed: int = 0, iterations: int | None = None,
              weights: dict | None = None, progress: bool = True, features: str = DEFAULT_FEATURES,
              model=None) -> Som:
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
    features : {"bag", "timbre", "model"}
        The thumbnails the map sorts by (:mod:`~livelatent.corpus.feature_sets`); ``model``
        names the codec of the ``model`` thumbnails (default: the default pack).
    progress : bool
        Show a progress bar while features are extracted.

    >>> som = build_som("samples/", "soms/samples")
    """
    inputs = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    if not inputs:
        raise SomError("build_som needs audio files or folders, got none")
    output = Path(output_dir)
    check_seed(seed)              # MiniSom seeds numpy's RandomState: 0 to 2**32 - 1
    if iterations is not None and not (is_integral(iterations) and 1 <= iterations <= MAX_ITERATIONS):
        raise ParameterError(f"iterations={iterations!r} must be a whole number from 1 to "
                             f"{MAX_ITERATIONS}")
    rows, cols = (None, None) if grid is None else parse_grid(grid)
    files = list_corpus_files(*inputs, exclude=output)
    if not files:
        out = Path(output).resolve()
        holds_inputs = any(out == Path(i).resolve() or out in Path(i).resolve().parents for i in inputs)
        if holds_inputs and list_corpus_files(*inputs):
            raise SomError(f"the map's folder {output} is the folder of its sounds (or holds it): "
                           f"give the map a folder of its own (-o)")
        raise SomError(f"no files in {', '.join(map(str, inputs))}: nothing to map")
    _check_output(output)
    made = not output.exists()
    try:                                 # (a place that cannot be written: said before the work)
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SomError(f"-o {output}: cannot make the folder ({exc.strerror or exc})") from None
    try:
        return _build(inputs, files, output, rows, cols, seed, iterations, progress, features,
                      weights, model)
    except BaseException:
        if made and not any(output.iterdir()):
            output.rmdir()
        raise


def _build(inputs, files, output, rows, cols, seed, iterations, progress, features, weights, model):
    chosen = feature_set(features, model=model)
    table = extract_features(files, progress=progress, features=chosen)
    if table.skipped:
        print(f"livelatent som: skipped {len(table.skipped)} of {len(files)} files:", file=sys.stderr)
        for path, reason in table.skipped:
            print(f"  {path}: {reason}", file=sys.stderr)
    if len(table) == 0:
        raise SomError(f"none of the {len(files)} files in {', '.join(map(str, inputs))} is usable "
                       f"audio (see the list above)")
    if rows is None:
        rows, cols = default_grid(len(table))
    iterations = default_iterations(len(table)) if iterations is None else int(iterations)
    scaler = fit_scaler(table.values, weights=weights, features=chosen)
    points = scaler.transform(table.values)
    batch = len(points) > BATCH_FROM
    node_weights = (_train_batch(points, (rows, cols), seed=int(seed)) if batch
                    else _train(points, (rows, cols), seed=int(seed), iterations=iterations))
    best, distance = _best_matching(points, node_weights)
    clusters = {node: [int(i) for i in np.flatnonzero(best == node)] for node in range(rows * cols)}

    base = (Path(inputs[0]).resolve() if len(inputs) == 1 and Path(inputs[0]).is_dir()
            else _common_base(table.paths))
    entries = [masom.Entry(p.resolve().relative_to(base).as_posix(), 0, round(v[0] * 1000.0, 6),
                           tuple(round(float(x), 6) for x in v[1:]))
               for p, v in zip(table.paths, table.values)]
    masom.write_data(output / masom.DATA_FILE, entries)
    masom.write_clusters(output / masom.CLUSTERS_FILE, clusters)
    with atomic_path(output / WEIGHTS_FILE) as tmp:
        np.save(tmp, node_weights.reshape(rows, cols, -1), allow_pickle=False)
    meta = {
        "format": FORMAT, "version": VERSION, "grid": [rows, cols],
        "node_numbering": "row * columns + column", "files": len(table),
        "base": os.path.relpath(base, output.resolve()), "base_absolute": str(base),
        "seed": int(seed), "iterations": iterations, "sigma": max(rows, cols) / 2.0,
        "learning_rate": 0.5, "neighborhood": "gaussian",
        "trainer": f"batch ({BATCH_EPOCHS} epochs)" if batch else "minisom",
        "analysis_rate": ANALYSIS_RATE, "frame_size": FRAME_SIZE, "hop_size": HOP_SIZE,
        "features": chosen.name, **_model_record(model, output),
        **({"model_hash": chosen.describe.codec.content_hash} if chosen.name == "model" else {}),
        "feature_names": list(chosen.names),
        "feature_weights": {**chosen.default_weights, **dict(weights or {})},
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
    except (ValueError, RecursionError) as exc:   # (not UTF-8, not JSON, nested too deep, 5,000 digits)
        raise SomError(f"{path} is not valid JSON ({exc}); rebuild the map") from None
    except OSError as exc:                                # (a folder, a file we may not read)
        raise SomError(f"{path} cannot be read ({exc.strerror or exc}); rebuild the map") from None
    grid = meta.get("grid") if isinstance(meta, dict) else None
    if (meta.get("format") if isinstance(meta, dict) else None) != FORMAT or grid is None:
        raise SomError(f"{path} is not a livelatent SOM description (format {FORMAT!r} with a grid)")
    if not (isinstance(grid, list) and len(grid) == 2 and all(
            isinstance(g, int) and not isinstance(g, bool) and g > 0 for g in grid)):   # (true is 1)
        raise SomError(f"{path}: grid {grid!r:.40} is not [rows, columns], two whole numbers above 0; "
                       f"rebuild the map")
    version = meta.get("version", 0)
    if not is_integral(version) or version < 0:
        raise SomError(f"{path}: version {version!r:.40} is not a whole number; rebuild the map")
    if version > VERSION:
        raise SomError(f"{path} is version {meta['version']}; this livelatent reads up to {VERSION}")
    for key in ("base", "base_absolute", "weights_file", "model", "model_relative"):
        if meta.get(key) is not None and not (isinstance(meta[key], str) and "\0" not in meta[key]):
            raise SomError(f"{path}: {key} is {meta[key]!r:.40}, not a folder or file name")
    return meta


_BASE_SAMPLE = 16     # files looked for in each candidate folder of a map's audio


def _resolve_base(somdir: Path, meta: dict | None, entries: dict) -> Path:
    candidates = []
    if meta:
        if meta.get("base") is not None:
            candidates.append((somdir / meta["base"]).resolve())
        if meta.get("base_absolute"):
            candidates.append(Path(meta["base_absolute"]))
    candidates += [somdir.resolve(), somdir.resolve().parent, somdir.resolve().parent / "audio"]
    # the first folder that holds every file of a sample, else the one that holds the most (a
    # file deleted since must not send the map to a folder that holds none of them)
    sample = [e.path for _, e in sorted(entries.items())[:_BASE_SAMPLE]]
    best, most = candidates[0], 0
    for folder in candidates:
        found = sum((folder / p).is_file() for p in sample)
        if sample and found == len(sample):
            return folder
        if found > most:
            best, most = folder, found
    return best


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
        scaler = read_scaler(meta, somdir / SOM_FILE)
        node_weights = read_node_weights(somdir / meta.get("weights_file", WEIGHTS_FILE), grid,
                                         len(scaler.mean), somdir / SOM_FILE)
        check_feature_kind(meta, len(scaler.mean), somdir / SOM_FILE)
    base = Path(base).resolve() if base is not None else _resolve_base(somdir, meta, entries)
    return Som(somdir, base=base, grid=grid, clusters=clusters, entries=entries,
               node_weights=node_weights, scaler=scaler, meta=meta)


# -- command line ---------------------------------------------------------------------------------
def cli_som(args) -> int:
    """``livelatent som DATA... -o SOMDIR [--grid RxC] [--seed N] [--iterations N] [--features K]``."""
    som = build_som(args.data, args.output, grid=args.grid, seed=args.seed,
                    iterations=args.iterations, progress=True,
                    features=getattr(args, "features", DEFAULT_FEATURES), model=getattr(args, "model", None))
    print(f"wrote {som.path}: {som.grid[0]}x{som.grid[1]} map of {som.num_files} files in "
          f"{len(som.clusters)} clusters")
    print(f"  picture: {som.path / UMATRIX_FILE}")
    print(f"  use it:  som = load_som({str(som.path)!r}); voice(som[k1], som[k2], strategy='meso')")
    return 0
