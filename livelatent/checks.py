"""Checks a performer's values pass before they are sent: curves (evaluated ahead, timed),
paths (every curve in them), fades.

A curve is evaluated over its next windows before it plays, so a curve that raises, returns
NaN or is too slow is refused in the writer's thread with a one-line error instead of
reverting on stage. How long it takes depends on the machine, so the outcome is part of the
writer's batch: the journal keeps it and a replay takes it from there.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from .curves import Curve, as_curve
from .engine.writers import current_batch
from .errors import CurveError, ParameterError, check_number
from .paths.nodes import Follow, Path
from .sources import Source
from .voice import curve_values

__all__ = ["check_curve", "checked_path", "check_fade", "CURVE_CHECK_WINDOWS", "CURVE_TIME_LIMIT_S"]

CURVE_CHECK_WINDOWS = 2048     # windows ahead a new curve is evaluated over before it plays
CURVE_TIME_LIMIT_S = 0.002     # a curve slower than this per 64 windows would starve the decoder


def check_curve(value, *, output_hop: int, engine) -> Curve:
    """Coerce ``value`` to a curve and evaluate it over its next windows before it plays.

    Raises :class:`CurveError` if it raises, returns NaN/inf or the wrong shape, or is too
    slow. How long it takes depends on the machine, so the outcome is part of the writer's
    batch: the journal keeps it, and a replay takes it from there instead of timing again.
    """
    curve = as_curve(value)
    batch = current_batch(engine)
    checks = batch.checks if batch is not None else None
    if checks is not None and checks.replaying:
        refused = checks.next_recorded()
        if refused:
            raise CurveError(refused)
        return curve
    try:
        _evaluate(curve, output_hop=output_hop, engine=engine)
    except CurveError as exc:
        if checks is not None:
            checks.add(str(exc))
        raise
    if checks is not None:
        checks.add(None)
    return curve


def _evaluate(curve: Curve, *, output_hop: int, engine) -> None:
    times = _check_times(output_hop, engine)
    first = curve_values(curve, times)[:64]
    probe = times[:64]
    fastest = math.inf
    for _ in range(3):
        began = time.perf_counter()
        again = curve_values(curve, probe)
        fastest = min(fastest, time.perf_counter() - began)
        if not np.allclose(again, first, rtol=1e-9, atol=1e-12):
            raise CurveError("the curve gives other values each time it is asked for the same "
                             "times (random numbers, a counter, the clock?): a set could not "
                             "render what was heard; use rand(), noise() or perlin(), which are "
                             "seeded, or a function of t alone")
    if fastest > CURVE_TIME_LIMIT_S:
        raise CurveError(f"the curve takes {fastest * 1e3:.1f} ms per 64 windows (limit "
                         f"{CURVE_TIME_LIMIT_S * 1e3:g} ms); vectorise it with numpy")


def checked_path(path, *, output_hop: int, engine):
    """A path (or a source, played alone) with every curve in it checked like a voice's curve."""
    if not isinstance(path, (Path, Source)):
        hint = (" (a mapping: give its path, m.path())" if hasattr(path, "path") and callable(path.path)
                else f" (a file: source({str(path)!r:.60}))" if isinstance(path, (str, os.PathLike))
                else "")
        raise ParameterError(f"{type(path).__name__} is not a path: give plane(...), along(...), "
                             f"cloud(...), follow(...) or a source{hint}")
    curves = path.curves() if isinstance(path, Path) else (
        ([path.position] if path.position is not None else []) + [o.amount for o in path.offsets])
    for curve in curves:
        check_curve(curve, output_hop=output_hop, engine=engine)
    for node in (path.walk() if isinstance(path, Path) else ()):
        for name in ("centroid", "pitch"):
            if isinstance(node, Follow) and name in node.targets:
                values = curve_values(node.targets[name], _check_times(output_hop, engine))
                if values.min() <= 0:
                    at = int(np.argmin(values))
                    raise CurveError(f"follow: the {name} target must stay above 0 Hz; it reaches "
                                     f"{values[at]:g} Hz at t={_check_times(output_hop, engine)[at]:.3f} beats")
    return path


def _check_times(output_hop: int, engine) -> np.ndarray:
    beats_per_window = output_hop / engine.sample_rate * engine.intended_tempo() / 60.0
    return np.arange(CURVE_CHECK_WINDOWS, dtype=np.float64) * beats_per_window


def check_fade(fade) -> float:
    return check_number(fade, name="fade", low=0.0, high=600.0, meaning="of seconds from 0 to 600")
