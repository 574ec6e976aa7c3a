"""Sources: audio to interpolate from, with its latent frames encoded once per hop.

A source is mono float32 audio at a sample rate, plus where it came from (``origin``, a
JSON-able dict that sets use to rebuild it). Its latent frames (mu, logvar) are encoded once for
each (model, hop) a strategy asks for and cached in memory and on disk, keyed by model hash,
audio hash and hop.
"""

from __future__ import annotations

import hashlib
import numbers
import os
import threading
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import context
from .atomic import atomic_path
from .audio import SILENCE_PEAK, as_mono, read_audio, resample
from .config import SAMPLE_RATE, cache_dir
from .framing import check_hop, frame_count
from .errors import AudioError, ParameterError, real_value

__all__ = ["Source", "SourceAt", "LatentFrames", "source"]

_ENCODE_BATCH = 2048   # windows per encode call: large enough for BLAS, small enough for memory


class LatentFrames:
    """The encoded frames of a source at one hop: ``mu`` and ``logvar``, each (frames, latent).

    ``tail``: whether the last partial window was kept (zero-padded), as the paper's notebook
    does; frames made before livelatent 0.3 dropped it, and old sets still read them that way.
    """

    __slots__ = ("mu", "logvar", "hop", "tail", "__weakref__")

    def __init__(self, mu: np.ndarray, logvar: np.ndarray, hop: int, tail: bool = True):
        self.mu, self.logvar, self.hop, self.tail = mu, logvar, hop, tail

    def __len__(self) -> int:
        return self.mu.shape[0]


class Source:
    """Audio to interpolate from. Build one with :func:`source`.

    Attributes
    ----------
    name : str
    audio : ndarray, float32, (samples,)
    sample_rate : int
    paths : list of Path (empty for arrays)
    origin : dict
        How to rebuild this source: ``{"kind": "files", "paths": [...]}``, ``{"kind": "array"}``,
        or ``{"kind": "som", "map": ..., "cluster": k}``.
    """

    position = None       # a curve when the read position is scrubbed (see :meth:`scrub`)
    offsets = ()          # Offset(frames, code, amount, vector): added to every frame
    _base = None          # a Series's plain source

    def __init__(self, audio: np.ndarray, *, sample_rate: int, name: str, paths=(), origin=None):
        self.ops = ()
        self.audio = np.ascontiguousarray(audio, dtype=np.float32)
        self.audio.setflags(write=False)
        self.sample_rate = int(sample_rate)
        self.name = name
        self.paths = [Path(p) for p in paths]
        self.origin = dict(origin) if origin else (
            {"kind": "files", "paths": [str(p) for p in self.paths]} if self.paths else {"kind": "array"})
        self.audio_hash = hashlib.sha256(self.audio.tobytes() + str(self.sample_rate).encode()).hexdigest()
        self._frames: dict[tuple[str, int], LatentFrames] = {}
        self._lock = threading.Lock()

    @property
    def base(self) -> "Source":
        """The plain source underneath: this one, or a :class:`Series`'s. (Not an attribute
        holding ``self``: that cycle kept every source, and its frames' rows in the engine, alive
        until Python's collector ran.)"""
        return self if self._base is None else self._base

    @property
    def num_samples(self) -> int:
        return int(self.audio.shape[0])

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate

    def __repr__(self) -> str:
        return f"<Source {self.name!r}: {self.duration_s:.2f} s at {self.sample_rate} Hz>"

    def frames(self, codec, hop: int, *, tail: bool = True) -> LatentFrames:
        """Latent frames of this source for ``codec``, windows starting every ``hop`` samples.

        Frame i encodes samples ``[i*hop, i*hop + window)``. The last window that reaches past
        the end is padded with silence (``tail=False``: left out, as before livelatent 0.3); a
        source shorter than one window is padded to one frame. Encoded once, then cached in
        memory and on disk.
        """
        hop = check_hop(hop, codec.window)
        key = (codec.content_hash, hop, bool(tail))
        with self._lock:
            cached = self._frames.get(key)
            if cached is None:
                cached = self._load_or_encode(codec, hop, bool(tail))
                self._frames[key] = cached
        return cached

    # latent series operators: each gives a source again (a :class:`Series`)
    def reverse(self) -> "Source":
        """This source's latent frames in reverse order."""
        return _derive(self, ("reverse",))

    def slice(self, start: float = 0.0, stop: float | None = None) -> "Source":
        """The frames from ``start`` to ``stop`` seconds (default: the end)."""
        return _derive(self, ("slice", start, stop))

    def freeze(self, at: float) -> "Source":
        """The frame at ``at`` seconds, held for as long as the source lasts."""
        return _derive(self, ("freeze", at))

    def scrub(self, position) -> "Source":
        """The frame read follows ``position`` (a curve: 0 is the start, 1 the end)."""
        return _derive(self, ("scrub", position))

    def offset(self, vector, amount=1.0) -> "Source":
        """Every frame moved by ``vector`` (a direction, or a latent vector) times ``amount``
        (a number or a curve)."""
        return _derive(self, ("offset", vector, amount))

    def at(self, seconds: float) -> "SourceAt":
        """The place in the latent space this source is at ``seconds`` (a mapping's target)."""
        return SourceAt(self, _seconds(seconds, "seconds"))

    @property
    def code(self) -> str:
        """Code that rebuilds this source (files and SOM clusters), or a description."""
        origin = self.origin
        if origin.get("kind") == "som":
            return f"load_som({origin['map']!r})[{origin['cluster']}]"
        if origin.get("kind") == "files" and self.paths:
            paths = [str(p) for p in self.paths]
            return f"source({paths[0]!r})" if len(paths) == 1 else f"source({paths!r})"
        return f"source(<{self.name}>)"

    # -- encoding and its disk cache -----------------------------------------------------------
    def _cache_path(self, codec, hop: int, tail: bool) -> Path:
        version = "-v2" if tail else ""        # v2: the last partial window is kept
        return (cache_dir() / "frames" / codec.content_hash[:20]
                / f"{self.audio_hash[:24]}-hop{hop}{version}.npz")

    def _load_or_encode(self, codec, hop: int, tail: bool) -> LatentFrames:
        path = self._cache_path(codec, hop, tail)
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as data:
                    return LatentFrames(data["mu"], data["logvar"], hop, tail)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                path.unlink(missing_ok=True)   # a damaged cache entry is re-encoded, not trusted
        frames = self._encode(codec, hop, tail)
        try:
            with atomic_path(path, durable=False) as tmp:      # a cache: speed, not safety
                np.savez(tmp, mu=frames.mu, logvar=frames.logvar)
        except OSError:
            pass  # a read-only or full cache folder costs speed next time, never the performance
        return frames

    def _encode(self, codec, hop: int, tail: bool) -> LatentFrames:
        audio = self.audio
        if self.sample_rate != codec.sample_rate:
            audio = resample(audio, self.sample_rate, codec.sample_rate)
        window = codec.window
        if audio.shape[0] < window:
            audio = np.pad(audio, (0, window - audio.shape[0]))
        elif tail and (audio.shape[0] - window) % hop:     # the last window reaches past the end
            count = frame_count(audio.shape[0], window, hop)
            audio = np.pad(audio, (0, (count - 1) * hop + window - audio.shape[0]))
        windows = np.lib.stride_tricks.sliding_window_view(audio, window)[::hop]  # (frames, window)
        mus, logvars = [], []
        for start in range(0, windows.shape[0], _ENCODE_BATCH):
            mu, logvar = codec.encode(np.ascontiguousarray(windows[start:start + _ENCODE_BATCH]))
            mus.append(mu)
            logvars.append(logvar)
        return LatentFrames(np.concatenate(mus), np.concatenate(logvars), hop, tail)


class Offset(NamedTuple):
    """A latent offset of a series: ``amount`` (a curve) times ``vector`` (a direction or an
    array), as a one-frame LatentFrames (``frames``) the voice bank mixes in."""

    frames: LatentFrames
    code: str
    amount: object
    vector: object


class SourceAt(NamedTuple):
    """A source at a time: one latent frame, e.g. a mapping's target (``cello.at(1.5)``)."""

    source: "Source"
    seconds: float

    def __repr__(self) -> str:
        return f"{self.source.code}.at({self.seconds:g})"


class Series(Source):
    """A source whose latent frames are another's, transformed: what :meth:`Source.reverse`,
    ``slice``, ``freeze``, ``scrub`` and ``offset`` give (and ``corpus.sorted_by``).

    ``base`` is the plain source (or corpus) underneath; ``ops`` the static operators in order
    (they change which frames there are); ``position`` and ``offsets`` are curves read window
    by window by the voice (:mod:`livelatent.paths.plan`). Its audio is the base's: what it
    plays comes from the latent frames only.
    """

    def __init__(self, base, ops: tuple, position, offsets: tuple, code: str):
        self._base, self.ops, self.position, self.offsets = base, ops, position, offsets
        self._code = code
        self.name = code if len(code) <= 40 else code[:37] + "..."
        for name in ("audio", "sample_rate", "paths", "origin", "audio_hash"):
            setattr(self, name, getattr(base, name, None))
        self._frames = {}
        self._lock = threading.Lock()

    @property
    def code(self) -> str:
        return self._code

    @property
    def num_samples(self) -> int:
        return int(getattr(self.base, "num_samples", 0))

    def __repr__(self) -> str:
        return self._code                     # code that rebuilds it, as a path's repr is

    def frames(self, codec, hop: int, *, tail: bool = True) -> LatentFrames:
        key = (codec.content_hash, int(hop), bool(tail))
        with self._lock:
            cached = self._frames.get(key)
        if cached is not None:
            return cached
        frames = self.base.frames(codec, hop, tail=tail)
        for op in self.ops:
            frames = _static_op(frames, op, codec, rate=codec.sample_rate, name=self._code)
        with self._lock:
            self._frames.setdefault(key, frames)
        return frames


def _static_op(frames: LatentFrames, op: tuple, codec, *, rate: int, name: str) -> LatentFrames:
    hop = frames.hop
    count = len(frames)
    if op[0] == "reverse":
        rows = np.arange(count)[::-1]
    elif op[0] == "slice":        # (times far past the end: the end, not an overflow)
        first = int(np.ceil(min(op[1] * rate / hop, count + 1) - 1e-9))
        last = count if op[2] is None else int(np.ceil(min(op[2] * rate / hop, count + 1) - 1e-9))
        rows = np.arange(max(first, 0), min(last, count))
        if rows.size == 0:
            raise ParameterError(f"{name}: the slice holds no frames (the source has "
                                 f"{count * hop / rate:.2f} s of frames)")
    elif op[0] == "freeze":
        at = int(round(min(op[1] * rate / hop, count)))
        if not 0 <= at < count:
            raise ParameterError(f"{name}: freeze at {op[1]} s is outside the source "
                                 f"(0 to {(count - 1) * hop / rate:.2f} s)")
        rows = np.full(count, at)
    elif op[0] == "order":                  # corpus.sorted_by: an order computed for the model
        rows = np.asarray(op[2](codec, hop), dtype=np.int64)
    else:
        raise ParameterError(f"unknown latent series operator {op[0]!r}")
    return LatentFrames(np.ascontiguousarray(frames.mu[rows]), np.ascontiguousarray(frames.logvar[rows]),
                        hop, frames.tail)


def _seconds(value, what: str) -> float:
    seconds = real_value(value)   # float() would take "1" and True, which are mistakes here
    if not np.isfinite(seconds) or seconds < 0:
        raise ParameterError(f"{what}={value!r} must be a number of seconds from 0")
    return seconds


def offset_frames(vector) -> tuple[LatentFrames, str]:
    """A latent offset as (one-frame LatentFrames, code): a direction (anything with
    ``latent_frames`` and ``code``) or a 1-d array of finite numbers. The frame's log-variance
    is zero, so an offset moves the mean only."""
    if hasattr(vector, "latent_frames"):
        return vector.latent_frames, vector.code
    try:
        array = np.asarray(vector)
    except (TypeError, ValueError):          # a ragged list
        array = np.zeros(0, dtype=np.float32)
    # real numbers only: a complex vector cast to float32 would silently lose its imaginary part
    with np.errstate(over="ignore"):         # beyond float32: infinite, refused just below
        array = array.astype(np.float32) if array.dtype.kind in "iuf" else np.zeros(0, dtype=np.float32)
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        raise ParameterError(f"offset: {type(vector).__name__} is not a direction or a latent "
                             f"vector of finite numbers")
    mu = array[None, :].copy()
    return LatentFrames(mu, np.zeros_like(mu), 0), f"<vector of {array.size}>"


def _derive(src, op: tuple) -> Series:
    from .curves import as_curve
    if not isinstance(src, (Source, Series)) and not hasattr(src, "frames"):
        raise ParameterError(f"{type(src).__name__} is not a source")
    ops, position, offsets = src.ops, src.position, src.offsets
    code = src.code
    kind = op[0]
    if kind == "reverse":
        ops, code = ops + (op,), f"{code}.reverse()"
    elif kind == "slice":
        start = _seconds(op[1], "start")
        stop = None if op[2] is None else _seconds(op[2], "stop")
        if stop is not None and stop <= start:
            raise ParameterError(f"slice({op[1]!r}, {op[2]!r}): stop must come after start")
        ops, code = ops + (("slice", start, stop),), f"{code}.slice({start!r}, {stop!r})"
    elif kind == "freeze":
        at = _seconds(op[1], "at")
        ops, code = ops + (("freeze", at),), f"{code}.freeze({at!r})"
    elif kind == "order":
        ops, code = ops + (op,), f"{code}.sorted_by({op[1]!r})"
    elif kind == "scrub":
        if position is not None:
            raise ParameterError(f"{code} is scrubbed already: scrub the source underneath "
                                 f"({src.base.code}) with the position you want")
        position = as_curve(op[1])
        code = f"{code}.scrub({position!r})"
    elif kind == "offset":
        frames, vector_code = offset_frames(op[1])
        amount = as_curve(op[2])
        offsets = offsets + (Offset(frames, vector_code, amount, op[1]),)
        code = f"{code}.offset({vector_code}, {amount!r})"
    return Series(src.base, ops, position, offsets, code)


def playing_rate() -> int:
    """The sample rate sources are prepared at: the default engine's, or the default rate."""
    engine = context.default_engine_or_none()
    return engine.sample_rate if engine is not None else SAMPLE_RATE


def source(audio, *, sample_rate: int | None = None, name: str | None = None,
           rate: int | None = None) -> Source:
    """A source from a file, several files (concatenated in order), or an array.

    Audio is mixed to mono and resampled with soxr to the model's rate. Unreadable, empty or
    silent audio raises :class:`~livelatent.errors.AudioError` naming the file.

    Parameters
    ----------
    audio : str, Path, list of them, or array
        The sound. An array is ``(samples,)`` or ``(samples, channels)``.
    sample_rate : int, optional
        Rate of an array (default: the model's rate). Files carry their own.
    name : str, optional
        How the status line and sets call it (default: the file's stem).
    rate : int, optional
        The rate to prepare it at (default: the engine's; names bound to an engine give it).

    >>> flute_to_cello = voice(source("flute.wav"), source(["c1.wav", "c2.wav"]))
    """
    rate = int(rate) if rate is not None else playing_rate()
    if name is not None and not isinstance(name, str):        # (a journal writes it; "": the
        raise ParameterError(f"source(name={name!r:.60}) must be a string")     # default name)
    if isinstance(audio, Source):
        return audio
    if audio is None or isinstance(audio, (numbers.Number, dict, set)) or hasattr(audio, "params"):
        raise AudioError(f"{audio!r:.60} is not a source: give one (a pack's sound such as "
                         f"flute, source('take.wav'), an array of samples)")   # (a voice has params)
    names = [audio] if isinstance(audio, str) else audio if isinstance(audio, (list, tuple)) else ()
    if any(isinstance(p, str) and not p.strip() for p in names):   # (Path("") is the current folder)
        raise AudioError(f"source({audio!r:.60}): an empty file name; give an audio file's name")
    if isinstance(audio, (str, os.PathLike)):
        path = Path(audio)
        return Source(read_audio(path, target_rate=rate), sample_rate=rate,
                      name=name or path.stem, paths=[path])
    if isinstance(audio, (list, tuple)) and audio and all(isinstance(p, (str, os.PathLike)) for p in audio):
        paths = [Path(p) for p in audio]
        joined = np.concatenate([read_audio(p, target_rate=rate, allow_silent=True) for p in paths])
        label = name or (paths[0].stem if len(paths) == 1 else f"{paths[0].stem}+{len(paths) - 1}")
        if float(np.max(np.abs(joined))) < SILENCE_PEAK:
            raise AudioError(f"{label}: all {len(paths)} files are silent; nothing to encode")
        return Source(joined, sample_rate=rate, name=label, paths=paths)
    if isinstance(audio, (list, tuple)) and not audio:
        raise AudioError("source([]) has no files: give a path, a list of paths, or an array")
    data = as_mono(audio, sample_rate=rate if sample_rate is None else sample_rate, target_rate=rate,
                   name=name or "array")
    return Source(data, sample_rate=rate, name=name or "array")
