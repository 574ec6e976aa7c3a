"""What a mapping is given, checked: its name, an example's input values, a target's numbers.

A mapping's name is what its voices follow: a voice playing ``m`` moves to whichever mapping of
that name is trained next (a journal and a set record only the name). So a mapping made without
a name gets one no other mapping of its engine has had (``mapping``, ``mapping2``...), as a
voice made without a name does; giving the same name again is how a performer redefines a
mapping in place, and the voices follow the new one.
"""

from __future__ import annotations

import weakref

import numpy as np

from ..errors import ParameterError, is_real, is_short_name

__all__ = ["check_name", "default_name", "note_name", "input_values", "FLOAT32_MAX"]

FLOAT32_MAX = float(np.finfo(np.float32).max)
DEFAULT_STEM = "mapping"

# per engine: the names its mappings have had, and the last default number given
_named: "weakref.WeakKeyDictionary[object, tuple[set, list]]" = weakref.WeakKeyDictionary()


def _book(engine) -> tuple[set, list]:
    return _named.setdefault(engine, (set(), [0]))


def check_name(name) -> str:
    if not is_short_name(name):
        raise ParameterError(f"mapping(name={name!r}): a short printable string (or leave it out)")
    return name


def default_name(engine) -> str:
    """A name no mapping of ``engine`` has had (counted in the order they are made, so a replay
    that runs the same code gives the same names)."""
    taken, last = _book(engine)
    while True:
        last[0] += 1       # the first is plain "mapping", the name all of them had before, so a
        name = DEFAULT_STEM if last[0] == 1 else f"{DEFAULT_STEM}{last[0]}"    # set of one replays
        if name not in taken:
            return name


def note_name(engine, name: str) -> bool:
    """Record that a mapping of ``engine`` is called ``name``; whether one was before."""
    taken, _ = _book(engine)
    before = name in taken
    taken.add(name)
    return before


def input_values(where: str, inputs, count: int) -> np.ndarray:
    """``inputs`` (``count`` real numbers: a list, a tuple or an array) as float64, or a clear
    ParameterError: strings, bools, complex numbers and dicts are not input values."""
    wanted = f"{where}: {count} number{'s' if count != 1 else ''}, one per input"
    if isinstance(inputs, np.ndarray):
        if inputs.dtype.kind not in "iuf":
            raise ParameterError(f"{wanted}; got an array of {inputs.dtype}")
        values = inputs.astype(np.float64).ravel()
    elif isinstance(inputs, (list, tuple)) or is_real(inputs):
        flat = list(_flatten(inputs))
        if not flat or not all(is_real(v) for v in flat):
            raise ParameterError(f"{wanted}; got {inputs!r:.80}")
        values = np.array([float(v) for v in flat], dtype=np.float64)
    else:
        raise ParameterError(f"{wanted}; got {type(inputs).__name__}")
    if values.shape != (count,):
        raise ParameterError(f"{wanted}; got {values.size}")
    return values


def _flatten(value):
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _flatten(item)
    elif isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        yield from value.ravel().tolist()
    else:
        yield value
