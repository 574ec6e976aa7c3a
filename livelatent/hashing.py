"""Counter-based hashing for the curves' noises: a value for any integer, with no state, so a
noise curve gives the same values in any order of evaluation (rewinds, replays)."""

import numpy as np

from .errors import CurveError

__all__ = ["seed_key", "hash01", "lattice", "cells"]

_M0, _M1, _M2 = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9),
                 np.uint64(0x94D049BB133111EB))
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


def seed_key(seed, salt):
    """splitmix64 of the seed: a well-mixed 64-bit key, so seeds 0 and 1 are unrelated."""
    x = (seed * 0x9E3779B97F4A7C15 + salt) % 2**64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) % 2**64
    return np.uint64(x ^ (x >> 31))


def hash01(key, index):
    """A value in [0, 1) for each integer of ``index`` (an int64 array), fixed by ``key``."""
    h = index.astype(np.uint64)  # uint64 arithmetic wraps, as a hash wants
    h *= _M0
    h += key
    h ^= h >> _S30
    h *= _M1
    h ^= h >> _S27
    h *= _M2
    h ^= h >> _S31
    return (h >> _S11).astype(np.float64) * 2.0**-53


def _floor(x) -> np.ndarray:
    """``floor(x)``, each within int64's range. Past it (a step of 1e-300 beats, or a curve made
    1e308 times faster) the cast gave one wrong cell for every time, and numpy's warning on
    every block: a CurveError instead."""
    floor = np.floor(x)
    if not (np.abs(floor) < 2.0 ** 62).all():       # (NaN fails too)
        raise CurveError("the curve's times, counted in the steps or periods of its rand, seq, "
                         "noise or perlin, go past 2**62 (a step or period far too small, or a "
                         ".fast() far too fast)")
    return floor


def cells(x) -> np.ndarray:
    """Which held value each time falls in: ``floor(x)`` as int64."""
    return _floor(x).astype(np.int64)


def lattice(t, period):
    """Lattice cell, position in it and quintic fade of ``t / period``."""
    x = t / period
    floor = _floor(x)
    f = x - floor
    return floor.astype(np.int64), f, f * f * f * (f * (f * 6.0 - 15.0) + 10.0)
