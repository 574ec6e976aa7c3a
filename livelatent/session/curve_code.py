"""Curves rebuilt from the code a journal or a set holds.

A curve's ``repr`` is code (``sine(8.0).range(0.2, 0.9)``, ``osc('/xy', 2, default=0.0)[1]``),
and that is how sets store curves. The text comes from a file, maybe from someone else
(``--no-code`` promises to run none of a set's code), so it is checked before it is evaluated:
only the shapes a curve's ``repr`` takes are allowed (calls of the curve names, their methods,
numbers, strings, lists, arithmetic with a curve on one side). ``eval`` with no builtins alone
is no sandbox: ``().__class__.__base__.__subclasses__()`` reaches ``os``, and ``9**9**9`` never
ends.
"""

from __future__ import annotations

import ast

from .. import curves
from ..controls import REBUILD_NAMES
from ..errors import SetError

__all__ = ["rebuild_curve"]

#: The methods a curve's code may call (``.range``, ``.smooth``...): Curve's public ones.
_METHODS = frozenset(name for name in dir(curves.Curve)
                     if not name.startswith("_") and callable(getattr(curves.Curve, name)))
_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd)
_PLAIN = (ast.Expression, ast.Load, ast.List, ast.Tuple, ast.UnaryOp) + _OPERATORS


# in curves' names, but in no curve's code: they build curves past the constructors' checks (a
# Python function's curve, a curve of no values)
_NOT_IN_CODE = frozenset({"Curve", "curve", "as_curve"})


def _names() -> dict:
    names = {name: getattr(curves, name) for name in curves.__all__ if name not in _NOT_IN_CODE}
    names.update(REBUILD_NAMES)                 # controller curves: values from the journal
    names["abs"] = abs                          # abs(curve) is how |c| reads as code
    return names


def _has_call(node) -> bool:
    return any(isinstance(n, ast.Call) for n in ast.walk(node))


def _refusal(tree, names: dict) -> str | None:
    """What in ``tree`` a curve's code never holds, or None."""
    for node in ast.walk(tree):
        if isinstance(node, _PLAIN):
            continue
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float, str, type(None))):
                return f"the constant {node.value!r}"
        elif isinstance(node, ast.Name):
            if node.id not in names:
                return f"the name {node.id!r}"
        elif isinstance(node, ast.Attribute):
            if node.attr not in _METHODS:
                return f"the attribute .{node.attr}"
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, (ast.Name, ast.Attribute)):
                return "a call of something that is not a curve function"
        elif isinstance(node, ast.keyword):
            if node.arg is None:
                return "**arguments"
        elif isinstance(node, ast.Subscript):     # osc('/xy', 2)[1]: one of a pad's curves
            if not (isinstance(node.slice, ast.Constant) and type(node.slice.value) is int):
                return "an index that is not a whole number"
        elif isinstance(node, ast.BinOp):
            # a curve's arithmetic has a curve on one side: numbers alone (9**9**9, "x" * 10**10)
            # could take forever or all the memory
            if not (_has_call(node.left) or _has_call(node.right)):
                return "arithmetic on numbers alone"
        else:
            return f"{type(node).__name__}"
    return None


def rebuild_curve(code: str, where: str):
    """A curve from its code (only the curve names are in scope, and only a curve's shapes)."""
    names = _names()
    try:
        tree = ast.parse(code, f"<{where}>", mode="eval")
        refused = _refusal(tree, names)
        if refused is not None:
            raise SetError(f"{where}: {code!r} is not a curve's code ({refused}); the file was "
                           f"edited or damaged")
        value = eval(compile(tree, f"<{where}>", "eval"), {"__builtins__": {}}, names)
        return curves.as_curve(value)
    except SetError:
        raise
    except Exception as exc:   # the text came from a file: anything may be wrong with it
        raise SetError(f"{where}: the curve {code!r} cannot be rebuilt ({type(exc).__name__}: "
                       f"{exc})") from None
