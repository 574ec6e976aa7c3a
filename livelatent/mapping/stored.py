"""Mappings in a set: ``save()`` writes every mapping the performer's names hold, ``load()``
puts them back under the same names, examples and trained weights included.

Each mapping is ``mappings/<name>.json`` (its settings, its inputs as code, and for drawings the
name of its features) beside ``mappings/<name>.npz`` (examples, the trained model's arrays, and
the features' arrays), written atomically. A loaded mapping plays the weights it was saved with;
training it again fits its examples afresh.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import SetError
from ..npy_files import read_npz
from .checks import note_name
from .mapping import Mapping
from .models import MAX_EXAMPLES, Model, older_k_and_seed
from .sketches import features_from

__all__ = ["save_mappings", "load_mappings", "MAPPINGS_FOLDER"]

MAPPINGS_FOLDER = "mappings"


def save_mappings(names: dict, folder: Path) -> list[str]:
    """Write the mappings bound in ``names`` into the set ``folder``; returns their names."""
    saved = []
    for variable, value in sorted(names.items()):
        if not isinstance(value, Mapping) or not variable.isidentifier() or variable.startswith("_"):
            continue
        arrays: dict[str, np.ndarray] = {}
        with value._lock:
            examples = list(value.examples)
        if examples:
            arrays["x"] = np.stack([e[0] for e in examples])
            arrays["y"] = np.stack([e[1] for e in examples])
        if value.model is not None:
            arrays.update({f"model.{k}": v for k, v in value.model.arrays().items()})
        features = value.features
        if features is not None:
            arrays.update({f"features.{k}": v for k, v in features.arrays().items()})
        settings = {"name": value.name, "kind": value.kind, "seed": value.seed, "k": value.k,
                    "inputs": [repr(c) for c in value.inputs],
                    "model": None if value.model is None else {"kind": value.model.kind, "k": value.model.k},
                    "features": None if features is None else {"name": features.name, "kind": features.kind,
                                                               "scale": features.scale}}
        target = Path(folder) / MAPPINGS_FOLDER
        target.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        with atomic_path(target / f"{variable}.npz") as tmp:
            tmp.write_bytes(buffer.getvalue())
        with atomic_path(target / f"{variable}.json") as tmp:
            tmp.write_text(json.dumps(settings, indent=1), encoding="utf-8")
        saved.append(variable)
    return saved


def note_saved_names(engine, folder: Path) -> None:
    """Count the names of the mappings saved in the set ``folder`` as taken on ``engine``, as
    :func:`load_mappings` does by making them: a replay's ``load()``, which makes none, then
    gives an unnamed mapping made later the name it had live (see :mod:`.checks`)."""
    for described in sorted((Path(folder) / MAPPINGS_FOLDER).glob("*.json")):
        try:
            note_name(engine, str(json.loads(described.read_text(encoding="utf-8"))["name"]))
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            pass                   # (load_mappings says what is wrong with it, live)


def load_mappings(engine, folder: Path, names: dict, *, rebuild_curve, replaying: bool = False) -> list[str]:
    """Bind the mappings saved in the set ``folder`` in ``names``; returns their names."""
    source = Path(folder) / MAPPINGS_FOLDER
    if not source.is_dir():
        return []
    loaded = []
    for described in sorted(source.glob("*.json")):
        variable = described.stem
        try:
            settings = json.loads(described.read_text(encoding="utf-8"))
            arrays = read_npz(described.with_suffix(".npz"))
            inputs = [rebuild_curve(code, f"{described.name}") for code in settings["inputs"]]
            features = None
            if settings.get("features"):
                kept = settings["features"]
                features = features_from(kept.get("kind", "image"), kept["name"],
                                         {k[9:]: v for k, v in arrays.items() if k.startswith("features.")},
                                         float(kept["scale"]))
            k, seed = older_k_and_seed(settings["k"], settings["seed"])   # (older sets: any)
            mapping = Mapping(engine, features if features is not None else inputs, name=settings["name"],
                              kind=settings["kind"], seed=seed, k=k, replaying=replaying)
            width = 2 * engine.codec.latent_dim
            if "x" in arrays:
                mapping.examples = _examples(arrays["x"], arrays["y"], len(mapping.inputs), width)
            if settings.get("model"):
                model = {k[6:]: v for k, v in arrays.items() if k.startswith("model.")}
                mapping.model = Model.from_arrays(settings["model"]["kind"], model,
                                                  settings["model"]["k"]).check(len(mapping.inputs), width)
        except (OSError, ValueError, KeyError, TypeError, EOFError, RecursionError,
                zipfile.BadZipFile) as exc:
            raise SetError(f"{described}: the mapping cannot be read ({type(exc).__name__}: {exc})") from None
        names[variable] = mapping
        loaded.append(variable)
    return loaded


def _examples(x, y, inputs: int, width: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The examples a set keeps, checked: ``x`` (n, inputs) beside ``y`` (n, width), numbers."""
    x, y = np.asarray(x), np.asarray(y)
    if (x.ndim != 2 or y.ndim != 2 or x.shape != (len(x), inputs) or y.shape != (len(x), width)
            or len(x) > MAX_EXAMPLES):
        raise ValueError(f"its examples must be (n, {inputs}) inputs beside (n, {width}) latent points, "
                         f"n at most {MAX_EXAMPLES}; found {x.shape} and {y.shape}")
    x, y = x.astype(np.float64), y.astype(np.float64)      # (a string array fails here)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("its examples hold values that are not finite numbers")
    return list(zip(x, y))
