"""What the records a journal or a set holds must be, checked as they are read back.

The files may have been edited by hand or damaged. A value of the wrong kind must be a clear
error naming the file when the set is opened, not a Python error in the middle of a render
(a voice number of 10**30, a noise key of -1) or a silent change of sound (a fit that is not
one, a gain of NaN). These raise ``ValueError`` or ``TypeError``; the readers turn them into a
:class:`~livelatent.errors.SetError` naming the file and the line.
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath

from ..strategies import FITS
from ..voice import MAX_KEY

__all__ = ["CHANGES", "checked_fit", "whole", "sample_in_set", "finite", "check_source_record",
           "MAX_SET_DAYS"]

#: What a recorded change of a voice may change (what ``encode_command`` writes of a SetVoice).
CHANGES = frozenset({"a", "b", "hop_a", "hop_b", "tail_a", "tail_b", "path", "curve", "gain", "pan",
                     "out", "cue"})


def checked_fit(fit) -> str:
    if not isinstance(fit, str) or fit not in FITS:
        raise ValueError(f"fit={fit!r} must be one of {FITS}")
    return fit


def whole(value, what: str) -> int:
    """A whole number from 0 (a voice's number, noise key or seed, a fade). A bool reads as the
    number it is: older journals hold ``seed=True``, played as 1."""
    if isinstance(value, float) and not math.isfinite(value):     # (json reads Infinity)
        raise ValueError(f"{what}={value!r} must be a whole number from 0")
    number = int(value)
    if number != value or not 0 <= number < MAX_KEY:
        raise ValueError(f"{what}={value!r} must be a whole number from 0 to 2**62 - 1")
    return number


def flag(value, what: str) -> bool:
    """A switch of a command (true or false; 0 or 1 as an older journal may hold it): a string
    such as "no" must not silently read as true."""
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise ValueError(f"{what}={value!r:.40} must be true or false")


#: Days a set's performance may run (an installation resumed after crashes too): a sample beyond
#: this (an ``end`` or ``heard`` record edited by hand, 10**15) is no performance's, and a
#: render or a resume would run on towards it, filling the disk.
MAX_SET_DAYS = 366


def sample_in_set(value, rate: int, what: str = "sample") -> int:
    """A sample of a performance at ``rate``: a whole number from 0, within :data:`MAX_SET_DAYS`."""
    number = whole(value, what)
    if number > MAX_SET_DAYS * 86400 * rate:
        raise ValueError(f"{what}={value!r} is {number / rate / 86400:.3g} days into the "
                         f"performance, more than a set holds ({MAX_SET_DAYS} days)")
    return number


def finite(value, what: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what}={value!r} must be a finite number")
    return number


def check_source_record(record) -> None:
    """Raise ValueError/TypeError unless ``record`` has the shape of a source's (or an array's)
    record: its key and hash as text, its files where a set keeps them."""
    if not isinstance(record, dict):
        raise TypeError(f"a source record is an object, not {type(record).__name__}")
    str(record["key"]), str(record["name"])
    if "array_hash" in record:                # an array a path needs (directions, a vector)
        str(record["array_hash"])
        _inside_the_set(record["file"])
        return
    str(record["audio_hash"]), int(record["sample_rate"])
    origin = record.get("origin", {})
    if not isinstance(origin, dict):
        raise TypeError(f"origin {origin!r} is not an object")
    if origin.get("kind") == "live":          # a live input, recorded into the set's inputs/
        _inside_the_set(origin["file"])
    if "paths" in record and not (isinstance(record["paths"], list)
                                  and all(isinstance(p, str) for p in record["paths"])):
        raise TypeError(f"paths {record['paths']!r} is not a list of file names")
    if "file" in record:
        _inside_the_set(record["file"])


def _inside_the_set(name) -> None:
    """A set's own copy of a source is a file inside the set folder, ``sources/KEY.npy``."""
    if not isinstance(name, str):
        raise TypeError(f"file {name!r} is not a file name")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name or not name:
        raise ValueError(f"file {name!r} is not inside the set folder")
