"""A built map's feature statistics, read and checked before they are used.

``som.json`` holds the feature statistics (``scaler``: the mean, std and multiplier of each
column of a thumbnail). :func:`~livelatent.corpus.som.load_som` reads them here, so that a
file edited by hand is one clear :class:`SomError` at load, not a numpy error (or a wrong
cluster) at ``near()``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import SomError
from .features import Scaler

__all__ = ["read_scaler"]

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
        if not (isinstance(value, list) and value and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)):
            raise SomError(f"{path}: scaler {key} is {value!r:.40}, not a list of finite numbers; {REBUILD}")
        columns[key] = np.asarray(value, dtype=np.float64)
    lengths = [len(column) for column in columns.values()]
    if len(set(lengths)) > 1:
        raise SomError(f"{path}: scaler mean, std and multipliers have {lengths[0]}, {lengths[1]} "
                       f"and {lengths[2]} columns, not one number per feature; {REBUILD}")
    if not (columns["std"] > 0).all():
        raise SomError(f"{path}: scaler std has a column of {columns['std'].min():g}; every std must "
                       f"be above 0 (a thumbnail is divided by it); {REBUILD}")
    return Scaler(columns["mean"], columns["std"], columns["multipliers"])
