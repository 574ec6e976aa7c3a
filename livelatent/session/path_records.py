"""Latent series and paths as data, for journals and sets (see :mod:`.records`).

A plain source is its record's key (a string), as before. A latent series (``a.reverse()``,
``a.scrub(...)``...) is ``{"series": base, "ops": [...], "position": curve, "offsets": [...]}``
over a plain source or a corpus (``{"corpus": [keys], "name": ...}``). A path is a dict with a
``kind`` (plane, along, cloud, follow, mapped, steered) and its parts; a mapping's trained
weights travel with it. Arrays a path needs (principal directions,
raw offset vectors) travel inside the set like embedded audio, under keys of their own. Curves
are code, as everywhere; one that is not (``{"fn": ...}``) comes from the replayed cell.
"""

from __future__ import annotations

from ..errors import SetError
from ..mapping.models import Model
from ..mapping.node import Mapped
from ..mapping.steering import Steered
from ..paths.corpus import Corpus
from ..paths.directions import Direction
from ..paths.nodes import Along, Cloud, Follow, Path, Plane
from ..sources import Series, Source

__all__ = ["curve_data", "source_data", "path_data", "rebuild_source", "rebuild_path", "keys_used",
           "has_fn"]

_REFERENCE_FIELDS = ("a", "b", "series", "base", "directions", "array", "corpus", "corners", "rest")


def curve_data(curve):
    """A curve as code, or ``{"fn": repr}`` when it is a Python function (None stays None)."""
    if curve is None:
        return None
    return repr(curve) if curve.is_code else {"fn": repr(curve)}


# -- to data ------------------------------------------------------------------------------------
def source_data(src, store):
    """A source as data: a key (a plain source), or a latent series over one."""
    if isinstance(src, Corpus):
        return {"corpus": [store.describe(s) for s in src.sources], "name": src.name}
    if not isinstance(src, Series):
        return store.describe(src)
    ops = []
    for op in src.ops:
        ops.append(["sorted_by", op[1]] if op[0] == "order" else list(op))
    offsets = [{"vector": _vector_data(offset, store), "amount": curve_data(offset.amount)}
               for offset in src.offsets]
    return {"series": source_data(src.base, store), "ops": ops,
            "position": None if src.position is None else curve_data(src.position),
            "offsets": offsets}


def _vector_data(offset, store):
    if isinstance(offset.vector, Direction):
        direction = offset.vector
        return {"directions": store.describe_directions(direction.directions), "index": direction.index}
    return {"array": store.describe_array(offset.frames.mu[0], name=offset.code)}


def path_data(node, store):
    """A path (or a source) as data."""
    if not isinstance(node, Path):
        return source_data(node, store)
    if isinstance(node, Plane):
        return {"kind": "plane", "corners": [path_data(c, store) for c in node.corners],
                "x": curve_data(node.x), "y": curve_data(node.y)}
    if isinstance(node, Along):
        return {"kind": "along", "base": path_data(node.base, store),
                "directions": store.describe_directions(node.directions),
                "coefficients": {str(i): curve_data(c) for i, c in node.coefficients.items()}}
    if isinstance(node, Cloud):
        return {"kind": "cloud", "base": path_data(node.base, store), "spread": curve_data(node.spread),
                "points": node.points}
    if isinstance(node, Follow):
        return {"kind": "follow", "corpus": source_data(node.corpus, store),
                "targets": {name: curve_data(c) for name, c in node.targets.items()},
                "smooth": node.smooth}
    if isinstance(node, Mapped):        # the trained weights travel with it: a replay never trains
        return {"kind": "mapped", "name": node.name, "inputs": [curve_data(c) for c in node.inputs],
                "model": _model_data(node, store), "rest": source_data(node.rest, store)}
    if isinstance(node, Steered):
        return {"kind": "steered", "name": node.name, "inputs": [curve_data(c) for c in node.inputs],
                "model": _model_data(node, store), "path": path_data(node.path, store),
                "slots": list(node.slots)}
    raise TypeError(f"not a path: {node!r}")


def _model_data(node, store) -> dict:
    arrays = {field: {"array": store.describe_array(array, name=f"{node.name}.{field}", kind="mapping")}
              for field, array in node.model.arrays().items()}
    return {"kind": node.model.kind, "k": node.model.k, "arrays": arrays}


def keys_used(data) -> list[str]:
    """Every record key a command's data refers to (sources, directions, arrays), in order."""
    found: list[str] = []

    def walk(value, field=None):
        if isinstance(value, str):
            if field in _REFERENCE_FIELDS:
                found.append(value)
        elif isinstance(value, dict):
            for name, item in value.items():
                walk(item, name)
        elif isinstance(value, list):
            for item in value:
                walk(item, field if field in ("corpus", "corners") else None)
    walk(data)
    return list(dict.fromkeys(found))


def has_fn(data) -> list[str]:
    """The curves in ``data`` that are Python functions, not code."""
    found = []

    def walk(value):
        if isinstance(value, dict):
            if set(value) == {"fn"}:
                found.append(value["fn"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
    walk(data)
    return found


# -- from data ----------------------------------------------------------------------------------
class _Rebuilder:
    def __init__(self, store, rate: int, where: str, rebuild_curve):
        self.store, self.rate, self.where, self.curve = store, rate, where, rebuild_curve

    def source(self, value):
        if isinstance(value, str):
            return self.store.get(value, rate=self.rate)
        if "corpus" in value:
            return Corpus([self.store.get(k, rate=self.rate) for k in value["corpus"]],
                          name=str(value.get("name", "corpus")))
        src = self.source(value["series"])
        for op in value.get("ops", []):
            if op[0] == "sorted_by":
                src = src.sorted_by(op[1])
            elif op[0] in ("reverse", "slice", "freeze"):
                src = getattr(src, op[0])(*op[1:])
            else:
                raise SetError(f"{self.where}: unknown latent series operator {op[0]!r}")
        if value.get("position") is not None:
            src = src.scrub(self._curve(value["position"]))
        for offset in value.get("offsets", []):
            src = src.offset(self._vector(offset["vector"]), self._curve(offset["amount"]))
        return src

    def path(self, value):
        if not isinstance(value, dict) or "kind" not in value:
            return self.source(value)
        kind = value["kind"]
        if kind == "plane":
            a, b, c, d = (self.path(v) for v in value["corners"])
            return Plane(a, b, c, d, self._curve(value["x"]), self._curve(value["y"]))
        if kind == "along":
            return Along(self.path(value["base"]), self.store.get_directions(value["directions"]),
                         {int(i): self._curve(c) for i, c in value["coefficients"].items()})
        if kind == "cloud":
            return Cloud(self.path(value["base"]), self._curve(value["spread"]), int(value["points"]))
        if kind == "follow":
            return Follow(self.source(value["corpus"]),
                          {name: self._curve(c) for name, c in value["targets"].items()},
                          float(value["smooth"]))
        if kind == "mapped":
            inputs = [self._curve(c) for c in value["inputs"]]
            return Mapped(str(value["name"]), inputs, self._model(value["model"], len(inputs)),
                          self.source(value["rest"]))
        if kind == "steered":
            inputs = [self._curve(c) for c in value["inputs"]]
            return Steered(str(value["name"]), inputs, self._model(value["model"], len(inputs)),
                           self.path(value["path"]), value["slots"])
        raise SetError(f"{self.where}: unknown path kind {kind!r}; the set is from a newer livelatent?")

    def _model(self, value, inputs: int) -> Model:
        arrays = {field: self.store.get_array(ref["array"]) for field, ref in value["arrays"].items()}
        model = Model.from_arrays(str(value["kind"]), arrays, int(value["k"]))
        try:
            return model.check(inputs)
        except ValueError as exc:
            raise SetError(f"{self.where}: a mapping's model cannot be used: {exc}") from None

    def _vector(self, value):
        if "directions" in value:
            return self.store.get_directions(value["directions"])[int(value["index"])]
        return self.store.get_array(value["array"])

    def _curve(self, value):
        return self.curve(value, self.where)


def rebuild_source(value, *, store, rate: int, where: str, rebuild_curve) -> Source:
    """The source ``value`` describes (a key or a latent series)."""
    return _Rebuilder(store, rate, where, rebuild_curve).source(value)


def rebuild_path(value, *, store, rate: int, where: str, rebuild_curve):
    """The path ``value`` describes."""
    return _Rebuilder(store, rate, where, rebuild_curve).path(value)
