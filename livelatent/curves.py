"""Curves: pure functions of time in beats, composable, printable as code.

A curve maps time ``t`` (beats since it took effect) to a float. The engine evaluates it
vectorised, over the times of many windows at once; a plain float gives a plain float::

    >>> c = (sine(8).range(0.2, 0.9) + 0.1 * noise(3)).fast(2).clip(0, 1)
    >>> c(np.arange(4.0)).shape
    (4,)

Conventions, chosen once for every curve:

- Oscillators (``sine``, ``tri``, ``saw``, ``square``) and noises lie in [0, 1] and start
  at 0 at ``t = 0``: a voice on ``sine(8)`` starts on source A and reaches B after 4 beats.
- ``c.shift(beats)`` delays ``c`` like Tidal's ``beats ~> c``: its value at ``t`` is
  ``c(t - beats)``.
- ``repr(c)`` is Python that rebuilds ``c`` (how sets store curves), except for ``curve(fn)``
  from a Python function (``c.is_code``; ``c.calls_python``: one is inside).

A curve is an immutable expression tree (operations on numbers and other curves), with no state
and no global random generator: a replay gives the same values, sample for sample.
"""

import math
import numbers

import numpy as np

from .errors import CurveError, real_value
from .hashing import cells, hash01, lattice, seed_key

__all__ = ["Curve", "const", "sine", "tri", "saw", "square", "ramp", "env", "seq", "noise", "perlin",
           "rand", "curve", "as_curve"]

# op name -> (evaluate(t, *args) -> float64 array of t's shape, render(*args) -> source)
_OPS = {}
_NOT_CODE = {"fn", "steer"}    # ops whose repr does not rebuild them: a function's, a mapping's


def _op(name, render):
    def register(evaluate):
        _OPS[name] = (evaluate, render)
        return evaluate
    return register


define_op = _op     # for curve kinds defined elsewhere (controllers: livelatent.controls)


class Curve:
    """A function of time in beats. Build one with ``sine``, ``seq``... never directly.

    Call it with a float (returns a float) or an array of times (returns a float64 array
    of the same shape). Combine with numbers and other curves: ``+ - * / **``, unary
    ``-`` and ``abs()``.
    """

    __slots__ = ("_op", "_args")
    __array_ufunc__ = None  # so numpy scalars defer to our reflected operators

    def __init__(self, op, *args):
        self._op = op
        self._args = args

    def __call__(self, t):
        times = np.asarray(t, dtype=np.float64)
        if times.ndim == 0:  # evaluate as one element: every node then sees a 1-d array
            return float(self._eval(times.reshape(1))[0])
        return self._eval(times)

    def _eval(self, t):
        return _OPS[self._op][0](t, *self._args)

    def __repr__(self):
        return _OPS[self._op][1](*self._args)

    @property
    def is_code(self):           # ``repr(self)`` rebuilds it: no ``curve(fn)``, no ``steer`` inside
        return self._op not in _NOT_CODE and all(a.is_code for a in self._args if isinstance(a, Curve))

    @property
    def calls_python(self):      # a performer's function inside (``steer``, a mapping's, is ours)
        return self._op == "fn" or any(a.calls_python for a in self._args if isinstance(a, Curve))

    # -- arithmetic -------------------------------------------------------------------------
    def _binary(self, op, other, reflected=False):
        if isinstance(other, np.ndarray) and other.ndim == 0 and other.dtype.kind in "iuf":
            other = other.item()                   # (np.array(0.5) * sine(4), as gain= takes it)
        if isinstance(other, numbers.Real) and not isinstance(other, bool):
            other = _finite(other, f"a number combined with a curve by {op}")
        elif not isinstance(other, Curve):
            return NotImplemented
        return Curve(op, other, self) if reflected else Curve(op, self, other)

    def __add__(self, other): return self._binary("+", other)
    def __radd__(self, other): return self._binary("+", other, True)
    def __sub__(self, other): return self._binary("-", other)
    def __rsub__(self, other): return self._binary("-", other, True)
    def __mul__(self, other): return self._binary("*", other)
    def __rmul__(self, other): return self._binary("*", other, True)
    def __truediv__(self, other): return self._binary("/", other)
    def __rtruediv__(self, other): return self._binary("/", other, True)
    def __pow__(self, other): return self._binary("**", other)
    def __rpow__(self, other): return self._binary("**", other, True)
    def __neg__(self): return Curve("neg", self)
    def __pos__(self): return self
    def __abs__(self): return Curve("abs", self)

    # -- transformations --------------------------------------------------------------------
    def range(self, lo, hi):
        """Map [0, 1] onto [lo, hi]: ``lo + self * (hi - lo)``. ``sine(8).range(0.2, 0.9)``."""
        return Curve("range", self, _finite(lo, "range(lo)"), _finite(hi, "range(hi)"))

    def clip(self, lo, hi):
        """Limit values to [lo, hi]. ``(2 * saw(4)).clip(0, 1)``."""
        lo, hi = _finite(lo, "clip(lo)"), _finite(hi, "clip(hi)")
        if lo > hi:
            raise CurveError(f"clip({lo!r}, {hi!r}): lo must not exceed hi; swap them")
        return Curve("clip", self, lo, hi)

    def fast(self, k):
        """Speed up by ``k``: the value at ``t`` is the original's at ``t * k``."""
        return Curve("fast", self, _positive(k, "fast(k)"))

    def slow(self, k):
        """Slow down by ``k``: the value at ``t`` is the original's at ``t / k``."""
        return Curve("slow", self, _positive(k, "slow(k)"))

    def shift(self, beats):
        """Delay by ``beats`` (Tidal's ``~>``): the value at ``t`` is the original's at
        ``t - beats``; a negative shift moves it earlier."""
        return Curve("shift", self, _finite(beats, "shift(beats)"))

    def smooth(self, ms):
        """A controller curve (``osc``, ``cc``...) gliding to each new value over ``ms``
        milliseconds instead of jumping (no zipper noise). ``cc(74).smooth(30)``"""
        if self._op != "control":
            raise CurveError(f"smooth() is for controller curves (osc, cc, note_on, pitchbend), not "
                             f"{self!r}: other curves are smooth already or meant to step")
        ms = _finite(ms, "smooth(ms)")
        if not 0 <= ms <= 60_000:
            raise CurveError(f"smooth({ms!r}): give milliseconds from 0 to 60000")
        return Curve("control", *self._args[:-1], ms)

    def controls(self) -> frozenset:
        """The names of the controllers this curve reads (``{"osc:/fader/1"}``)."""
        inner = (arg.controls() for arg in self._args if isinstance(arg, Curve))
        return frozenset({self._args[0]} if self._op == "control" else ()).union(*inner)

    def segment(self, n):
        """Sample and hold ``n`` times per beat: the value at ``t`` is the original's at
        ``floor(t * n) / n``. ``sine(4).segment(2)`` changes every half beat."""
        return Curve("segment", self, _positive(n, "segment(n)"))


# -- validation and source text ---------------------------------------------------------------
def _finite(value, what):
    number = real_value(value)
    if not math.isfinite(number):
        raise CurveError(f"{what} = {value!r:.60}: give a finite number")
    return number


def _positive(value, what):
    if (value := _finite(value, what)) <= 0:
        raise CurveError(f"{what} = {value!r}: give a number of beats above 0")
    return value


def _seed(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise CurveError(f"{what}(seed={value!r}): the seed must be a whole number, e.g. 3")
    return int(value)


def _operand(x):
    """Source of a binary operand: a curve, or a number kept safe from precedence."""
    text = repr(x)
    return f"({text})" if isinstance(x, float) and text.startswith("-") else text


def _phase(t, period):
    return np.mod(t / period, 1.0)


# -- nodes ------------------------------------------------------------------------------------
def _binary_node(symbol, ufunc):
    def evaluate(t, a, b):  # one side may be a plain float: numpy broadcasts it
        return ufunc(a._eval(t) if isinstance(a, Curve) else a,
                     b._eval(t) if isinstance(b, Curve) else b)
    _op(symbol, lambda a, b: f"({_operand(a)} {symbol} {_operand(b)})")(evaluate)


for _symbol, _ufunc in {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide,
                        "**": np.power}.items():
    _binary_node(_symbol, _ufunc)

_op("neg", lambda c: f"(-{c!r})")(lambda t, c: np.negative(c._eval(t)))
_op("abs", lambda c: f"abs({c!r})")(lambda t, c: np.abs(c._eval(t)))
_op("range", lambda c, lo, hi: f"{c!r}.range({lo!r}, {hi!r})")(
    lambda t, c, lo, hi: lo + c._eval(t) * (hi - lo))
_op("clip", lambda c, lo, hi: f"{c!r}.clip({lo!r}, {hi!r})")(
    lambda t, c, lo, hi: np.clip(c._eval(t), lo, hi))
_op("fast", lambda c, k: f"{c!r}.fast({k!r})")(lambda t, c, k: c._eval(t * k))
_op("slow", lambda c, k: f"{c!r}.slow({k!r})")(lambda t, c, k: c._eval(t / k))
_op("shift", lambda c, b: f"{c!r}.shift({b!r})")(lambda t, c, b: c._eval(t - b))
_op("segment", lambda c, n: f"{c!r}.segment({n!r})")(
    lambda t, c, n: c._eval(np.floor(t * n) / n))
_op("const", lambda v: f"const({v!r})")(lambda t, v: np.full(t.shape, v))
_op("sine", lambda p: f"sine({p!r})")(
    lambda t, p: 0.5 - 0.5 * np.cos(2.0 * np.pi * _phase(t, p)))
_op("tri", lambda p: f"tri({p!r})")(lambda t, p: 1.0 - np.abs(2.0 * _phase(t, p) - 1.0))
_op("saw", lambda p: f"saw({p!r})")(_phase)
_op("square", lambda p, duty: f"square({p!r}, duty={duty!r})")(
    lambda t, p, duty: (_phase(t, p) >= 1.0 - duty).astype(np.float64))
_op("ramp", lambda d, a, b: f"ramp({d!r}, {a!r}, {b!r})")(
    lambda t, d, a, b: a + (b - a) * np.clip(t / d, 0.0, 1.0))
_op("env", lambda ts, vs: f"env({list(zip(ts.tolist(), vs.tolist()))!r})")(
    lambda t, ts, vs: np.interp(t, ts, vs))
_op("seq", lambda vs, step: f"seq({vs.tolist()!r}, {step!r})")(
    lambda t, vs, step: vs[cells(t / step) % len(vs)])


# -- noises from a counter-based hash (see .hashing) ---------------------------------------
@_op("noise", lambda seed, period, key: f"noise({seed!r}, {period!r})")
def _noise(t, seed, period, key):
    i, _, fade = lattice(t, period)
    a, b = hash01(key, np.stack((i, i + 1)))  # one hash call for both ends: half the cost
    return a + (b - a) * fade


@_op("perlin", lambda seed, period, key: f"perlin({seed!r}, {period!r})")
def _perlin(t, seed, period, key):
    i, f, fade = lattice(t, period)
    gradient = 2.0 * hash01(key, np.stack((i, i + 1))) - 1.0
    left, right = gradient[0] * f, gradient[1] * (f - 1.0)
    return 0.5 + left + (right - left) * fade  # 1-d gradient noise stays within +-0.5


@_op("rand", lambda seed, step, key: f"rand({seed!r}, step={step!r})")
def _rand(t, seed, step, key):
    return hash01(key, cells(t / step))


# -- curves from Python functions -------------------------------------------------------------
def _call_fn_per_time(fn, t):
    out = np.empty(t.shape)
    for index, time in np.ndenumerate(t):
        value = fn(float(time))
        try:
            if isinstance(value, (str, bytes)) or getattr(value, "dtype", None) is not None \
                    and value.dtype.kind in "US":
                raise TypeError("text")           # (text would be read as a number)
            out[index] = complex(value) if np.iscomplexobj(value) else value
        except (TypeError, ValueError):
            raise CurveError(f"curve({_fn_name(fn)}) returned {value!r} at t={float(time)!r}: "
                             "a curve must return one real number per time") from None
    return out


def _fn_name(fn):
    return f"<function {getattr(fn, '__qualname__', None) or repr(fn)}>"


@_op("fn", lambda fn: f"curve({_fn_name(fn)})")
def _fn(t, fn):
    # The same call whatever the number of times: the whole array first (numpy code), then one
    # float per time if it cannot take an array (math code). Live a step evaluates one window, a
    # render hundreds: one time is passed as two, so the function sees what it sees offline.
    flat = t.ravel()
    probe = flat if flat.size > 1 else np.concatenate([flat, flat])
    try:
        raw = fn(probe)
        if raw is None or np.iscomplexobj(raw):   # (numpy reads None as NaN, drops imaginary parts)
            what = "None (a missing return?)" if raw is None else "complex numbers"
            raise CurveError(f"curve({_fn_name(fn)}) returned {what}: a curve returns real amounts")
        raw = np.asarray(raw)
        if raw.dtype.kind in "US":         # ("0.5" is no amount, though numpy reads one)
            raise TypeError("text")
        out = np.array(raw, dtype=np.float64)      # a copy: fn may return its argument
    except (TypeError, ValueError):
        return _call_fn_per_time(fn, t)
    if out.ndim == 0:
        return np.full(t.shape, out)
    if out.shape == probe.shape:
        return out[:flat.size].reshape(t.shape)
    return _call_fn_per_time(fn, t)


# -- constructors -----------------------------------------------------------------------------
def const(value):
    """A curve that is always ``value``. ``const(0.5)``."""
    return Curve("const", _finite(value, "const(value)"))


def sine(period=1.0):
    """Raised cosine in [0, 1], 0 at t=0 and 1 at ``period / 2`` beats. ``sine(8)``."""
    return Curve("sine", _positive(period, "sine(period)"))


def tri(period=1.0):
    """Triangle in [0, 1]: rises from 0 to 1 over half a period, falls back. ``tri(4)``."""
    return Curve("tri", _positive(period, "tri(period)"))


def saw(period=1.0):
    """Sawtooth in [0, 1): rises from 0 over each period, then drops. ``saw(2)``."""
    return Curve("saw", _positive(period, "saw(period)"))


def square(period=1.0, duty=0.5):
    """0 then 1 within each period; 1 for the last ``duty`` fraction of it. ``square(2)``."""
    duty = _finite(duty, "square(duty)")
    if not 0.0 <= duty <= 1.0:
        raise CurveError(f"square(duty={duty!r}): duty is the fraction of the period at 1, "
                         "give a number from 0 to 1")
    return Curve("square", _positive(period, "square(period)"), duty)


def ramp(duration, start=0.0, end=1.0):
    """Straight line from ``start`` to ``end`` over ``duration`` beats, then holds ``end``:
    ``ramp(16)`` crossfades from source A to B over 16 beats; ``ramp(8, 1, 0)`` goes back."""
    return Curve("ramp", _positive(duration, "ramp(duration)"),
                 _finite(start, "ramp(start)"), _finite(end, "ramp(end)"))


def env(points):
    """Piecewise-linear envelope through ``(beats, value)`` breakpoints; holds both ends. Times
    must not decrease; a repeated time makes a jump. ``env([(0, 0), (4, 1), (6, 0)])``."""
    try:
        pairs = [(_finite(p[0], "env time"), _finite(p[1], "env value")) for p in points]
        if len(pairs) == 0 or any(len(p) != 2 for p in points):
            raise TypeError
    except (TypeError, IndexError, KeyError):
        raise CurveError(f"env({points!r}): give a list of (beats, value) pairs, "
                         "e.g. env([(0, 0), (4, 1)])") from None
    times, values = np.array(pairs).T.copy()  # read-only columns: a curve never changes
    if np.any(np.diff(times) < 0):
        raise CurveError(f"env({points!r}): breakpoint times must not decrease; sort them")
    times.flags.writeable = values.flags.writeable = False
    return Curve("env", times, values)


def seq(values, step=1.0):
    """Hold each of ``values`` for ``step`` beats, in turn, cycling. ``seq([0, 0.5, 1], 2)``."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise CurveError(f"seq({values!r}): give a list of numbers, e.g. seq([0, 0.5, 1])")
    floats = np.array([_finite(v, "seq value") for v in values], dtype=np.float64)
    if floats.size == 0:
        raise CurveError("seq([]): give at least one value, e.g. seq([0, 1])")
    floats.flags.writeable = False
    return Curve("seq", floats, _positive(step, "seq(step)"))


def noise(seed=0, period=1.0):
    """Smooth random curve in [0, 1): a new random value every ``period`` beats, joined
    smoothly. The same seed gives the same curve, always. ``noise(3)``."""
    seed = _seed(seed, "noise")
    return Curve("noise", seed, _positive(period, "noise(period)"), seed_key(seed, 1))


def perlin(seed=0, period=1.0):
    """Gradient (Perlin) noise in [0, 1], centred on 0.5 and passing through 0.5 every
    ``period`` beats: gentler than ``noise``. ``perlin(3, 2)``."""
    seed = _seed(seed, "perlin")
    return Curve("perlin", seed, _positive(period, "perlin(period)"), seed_key(seed, 2))


def rand(seed=0, step=None):
    """Random value in [0, 1), held for ``step`` beats (default 1/16 beat), fixed by
    ``seed``: a replay gives the same values. ``rand(7, step=0.25)``."""
    seed = _seed(seed, "rand")
    step = 0.0625 if step is None else _positive(step, "rand(step)")
    return Curve("rand", seed, step, seed_key(seed, 3))


def curve(fn):
    """A curve from any Python function of time in beats. ``curve(lambda t: t % 1)``.

    ``fn`` is called with an array of times when it can take one (numpy code), else once
    per time (``math`` code); a number it returns holds for every time. Errors it raises
    reach the caller unchanged. Its ``repr`` cannot rebuild it: ``is_code`` is False.
    """
    if isinstance(fn, Curve):
        return fn
    if not callable(fn):
        raise CurveError(f"curve({fn!r}): give a function of time in beats, "
                         "e.g. curve(lambda t: t % 1)")
    return Curve("fn", fn)


def as_curve(value):
    """A number, a curve or a function of time, as a curve. Anything else is a CurveError."""
    if isinstance(value, Curve):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return const(value)
    if callable(value):
        return curve(value)
    raise CurveError(f"{value!r} cannot be a curve: give a number (0.5), a curve (sine(8)) "
                     "or a function of time in beats (lambda t: t % 1)")
