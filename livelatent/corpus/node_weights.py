"""A built map's node weights and feature statistics, read and checked before they are used.

``som.json`` holds the feature statistics (``scaler``: the mean, std and multiplier of each
column of a thumbnail) and names the file of the node weights (``weights.npy``: one thumbnail
per node, scaled). :func:`~livelatent.corpus.som.load_som` reads both here, so that a file
edited by hand, cut short or of another kind is one clear :class:`SomError` at load, not a
numpy error (or a wrong cluster) at ``near()``. The weights file's header is read before its
data: a header that claims a terabyte is refused without numpy trying to allocate it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from ..errors import SomError
from ..npy_files import read_npy
from .feature_sets import FEATURE_SETS
from .features import Scaler

__all__ = ["read_scaler", "read_node_weights", "check_feature_kind"]

REBUILD = "rebuild the map"


def read_scaler(meta: dict, path: Path) -> Scaler:
    """``meta["scaler"]`` as a :class:`Scaler`: mean, std and multipliers are lists of finite
    numbers, all of one length, and every std is above 0 (a thumbnail is divided by it)."""
    scaler = meta.get("scaler")
    if not isinstance(scaler, dict):
        raise SomError(f"{path}: scaler is {scaler!r:.40}, not the feature statistics "
                       f"{{\"mean\": [...], \"std\": [...], \"multipliers\": [...]}}; {REBUILD}")
    columns = {}
    for key in ("mean", "std", "multipliers"):
        value = scaler.get(key)
        if not (isinstance(value, list) and value):
            raise SomError(f"{path}: scaler {key} is {value!r:.40}, not a list of finite numbers; {REBUILD}")
        bad = [v for v in value if not (isinstance(v, (int, float)) and not isinstance(v, bool)
                                        and math.isfinite(v))]
        if bad:
            raise SomError(f"{path}: scaler {key} holds {bad[0]!r:.40}, not only finite numbers; {REBUILD}")
        columns[key] = np.asarray(value, dtype=np.float64)
    lengths = [len(column) for column in columns.values()]
    if len(set(lengths)) > 1:
        raise SomError(f"{path}: scaler mean, std and multipliers have {lengths[0]}, {lengths[1]} "
                       f"and {lengths[2]} columns, not one number per feature; {REBUILD}")
    if not (columns["std"] > 0).all():
        raise SomError(f"{path}: scaler std has a column of {columns['std'].min():g}; every std must "
                       f"be above 0 (a thumbnail is divided by it); {REBUILD}")
    return Scaler(columns["mean"], columns["std"], columns["multipliers"])


def _header(path: Path) -> tuple[tuple, np.dtype]:
    """The shape and dtype a .npy file's header declares, its data not read."""
    try:
        if path.exists() and not path.is_file():     # (a pipe's open() would wait for a writer)
            raise SomError(f"{path} is not a file of node weights (a folder, a pipe or the like); "
                           f"{REBUILD}")
        with open(path, "rb") as f:
            start = f.read(6)
            if not start:
                raise SomError(f"{path} cannot be read (it is empty); {REBUILD}")
            if start.startswith(b"PK"):
                raise SomError(f"{path} is a zip archive (.npz?), not a .npy array of node weights; "
                               f"{REBUILD}")
            if start != npy_format.MAGIC_PREFIX:
                raise SomError(f"{path} is not a .npy array of node weights (it begins {start!r}); "
                               f"{REBUILD}")
            f.seek(0)
            version = npy_format.read_magic(f)
            read = {(1, 0): npy_format.read_array_header_1_0,
                    (2, 0): npy_format.read_array_header_2_0}.get(version)
            if read is None:
                raise SomError(f"{path} is a .npy file of version {version}, not one of node weights "
                               f"(version 1 or 2); {REBUILD}")
            shape, _, dtype = read(f)
    except (OSError, ValueError, EOFError) as exc:
        raise SomError(f"{path} cannot be read ({exc}); {REBUILD}") from None
    return shape, dtype


def read_node_weights(path: Path, grid: tuple[int, int], features: int, meta_path: Path) -> np.ndarray:
    """The ``(rows * columns, features)`` node weights in ``path``: a .npy array of floats, as
    many as ``meta_path`` says (its header checked before the data is read), all finite."""
    rows, cols = grid
    nodes = rows * cols
    shape, dtype = _header(path)
    size = math.prod(shape)
    if len(shape) < 1 or size == 0 or size % nodes or dtype.kind != "f":
        raise SomError(f"{path} ({dtype} {shape}) does not hold finite weights for the {rows}x{cols} "
                       f"nodes of {meta_path.name}; {REBUILD}")
    if size // nodes != features:
        raise SomError(f"{path} ({dtype} {shape}) has {size // nodes} features per node, "
                       f"{meta_path.name} describes {features}; {REBUILD}")
    try:
        weights = read_npy(path)
    except (OSError, ValueError, EOFError) as exc:      # (a file cut short: EOF or too few values)
        raise SomError(f"{path} cannot be read ({exc}); {REBUILD}") from None
    if not isinstance(weights, np.ndarray) or weights.shape != tuple(shape) \
            or not np.isfinite(weights).all():
        raise SomError(f"{path} does not hold finite weights for the {rows}x{cols} nodes of "
                       f"{meta_path.name}; {REBUILD}")
    return weights.reshape(nodes, features)


def check_feature_kind(meta: dict, features: int, meta_path: Path) -> None:
    """The kind of thumbnail som.json names has as many columns as the weights, where the kind
    says how many (``bag`` and ``timbre``; a map from before they were named is ``bag``). A
    ``model`` map's width depends on its model: near() checks it once the model is loaded."""
    kind = meta.get("features", "bag")
    if not isinstance(kind, str):
        raise SomError(f"{meta_path}: features is {kind!r:.40}, not the name of a kind of thumbnail "
                       f"({', '.join([*FEATURE_SETS, 'model'])}); {REBUILD}")
    known = FEATURE_SETS.get(kind)
    if known is not None and known.width != features:
        raise SomError(f"{meta_path}: {kind!r} thumbnails have {known.width} features, the node "
                       f"weights {features}; {REBUILD}")
