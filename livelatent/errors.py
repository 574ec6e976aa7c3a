"""The errors livelatent raises on purpose.

Every error a performer can cause derives from :class:`LiveLatentError`, and its message
names the bad value (the file, the number) and what to do about it. The command line and the
REPL print these as one short line, never as a traceback.
"""

import math
import numbers

import numpy as np

__all__ = [
    "LiveLatentError",
    "AudioError",
    "ResampledWarning",
    "ModelLoadError",
    "CurveError",
    "ParameterError",
    "DeviceError",
    "SetError",
    "SomError",
    "MissingDependency",
    "check_number",
]


class LiveLatentError(Exception):
    """Base class of every error livelatent raises on purpose."""


class ParameterError(LiveLatentError, ValueError):
    """A parameter has a value that cannot work (``hop=0``, ``strategy='mesa'``...)."""


def check_number(value, *, name: str, low: float, high: float, meaning: str) -> float:
    """``value`` as a finite float in [low, high], or a ParameterError saying what it means.

    >>> check_number(3, name="pan", low=-1, high=1, meaning="from -1 (left) to 1 (right)")
    Traceback (most recent call last):
    ParameterError: pan=3 must be a number from -1 (left) to 1 (right)
    """
    number = real_value(value)
    if not (math.isfinite(number) and low <= number <= high):
        raise ParameterError(f"{name}={value!r:.40} must be a number {meaning}")   # (10**400: not
    return number                                                               # every digit)


def is_real(value) -> bool:
    """A real number, numpy's too; a bool is a mistake there, not 0 or 1 (and "1" is text)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def real_value(value) -> float:
    """``value`` as a float (a numpy 0-d array: its number), or NaN when it is no real number
    (text, a bool, a complex) or an int beyond float's range (``10**400``)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if not is_real(value):
        return math.nan
    try:
        return float(value)
    except OverflowError:
        return math.nan


def is_whole(value) -> bool:
    """A whole number, numpy's too, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_integral(value) -> bool:
    """A real number of whole value (``2`` or ``2.0``, as JSON or ``1e6`` gives it), not a bool."""
    number = real_value(value)       # (an int beyond float's range: beyond any bound we check)
    return math.isfinite(number) and number.is_integer()


def described(exc: BaseException) -> str:
    """``TypeName: message`` for an exception a performer's code raised, in one line, even when
    its ``__str__`` raises too."""
    try:
        text = str(exc)
    except BaseException:   # noqa: BLE001 - their __str__ may raise anything (an exit() too)
        text = "(its message cannot be shown: its __str__ raised)"
    return f"{type(exc).__name__}: {text}"


def is_short_name(value) -> bool:
    """A name a performer gives a voice or a mapping: a short printable string,
    which the status line shows and the journal writes."""
    return isinstance(value, str) and bool(value.strip()) and len(value) <= 64 and value.isprintable()


def is_flag(value) -> bool:
    """True or False (numpy's too), or 0 or 1: a switch, not any value that is truthy."""
    return isinstance(value, (bool, np.bool_)) or (is_whole(value) and value in (0, 1))


MAX_SEED = 2 ** 32 - 1     # what numpy's RandomState (MiniSom's) and torch's loaders take


def check_seed(seed, *, name: str = "seed", high: int | None = MAX_SEED) -> int:
    """``seed`` as an int from 0 (to ``high``), or a ParameterError saying so."""
    if not is_whole(seed) or seed < 0 or (high is not None and seed > high):
        upper = "" if high is None else f" to {high}"
        raise ParameterError(f"{name}={seed!r} must be a whole number from 0{upper}")
    return int(seed)


class AudioError(LiveLatentError):
    """Audio that cannot be used: missing, unreadable, empty or silent."""


class WriteError(LiveLatentError, OSError):
    """A file or folder that cannot be written where it was asked for (a folder in the way, no
    permission, a read-only or missing place)."""


class ResampledWarning(UserWarning):
    """An audio file was not at the model's rate and was resampled (callers count these by
    category, not by the words of the message)."""


class ModelLoadError(LiveLatentError):
    """A model file that cannot be loaded safely or does not describe a RawAudioVAE."""


class CurveError(LiveLatentError):
    """A curve that raises, returns NaN/inf, has the wrong shape, or is too slow."""


class DeviceError(LiveLatentError):
    """An audio device that cannot be opened; the message lists the devices that exist."""


class DeviceNotFound(DeviceError):
    """Output devices exist, but none is the one asked for (a typo, a card unplugged)."""


class SetError(LiveLatentError):
    """A saved set that cannot be loaded, replayed or rendered."""


class SomError(LiveLatentError):
    """A self-organizing map, or one of its clusters, that cannot be used."""


class MissingDependency(LiveLatentError, ImportError):
    """A feature needs a package that is not installed; the message says what to install."""
