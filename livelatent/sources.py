"""Sources: audio to interpolate from, with its latent frames encoded once per hop.

A source is mono float32 audio at a sample rate, plus where it came from (``origin``, a
JSON-able dict that sets use to rebuild it). Its latent frames (mu, logvar) are encoded once for
each (model, hop) a strategy asks for and cached in memory and on disk, keyed by model hash,
audio hash and hop.
"""

from __future__ import annotations

import hashlib
import os
import threading
import zipfile
from pathlib import Path

import numpy as np

from . import context
from .atomic import atomic_path
from .audio import SILENCE_PEAK, as_mono, read_audio, resample
from .config import SAMPLE_RATE, cache_dir
from .errors import AudioError, ParameterError

__all__ = ["Source", "LatentFrames", "source"]

_ENCODE_BATCH = 2048   # windows per encode call: large enough for BLAS, small enough for memory


class LatentFrames:
    """The encoded frames of a source at one hop: ``mu`` and ``logvar``, each (frames, latent)."""

    __slots__ = ("mu", "logvar", "hop")

    def __init__(self, mu: np.ndarray, logvar: np.ndarray, hop: int):
        self.mu, self.logvar, self.hop = mu, logvar, hop

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

    def __init__(self, audio: np.ndarray, *, sample_rate: int, name: str, paths=(), origin=None):
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
    def num_samples(self) -> int:
        return int(self.audio.shape[0])

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate

    def __repr__(self) -> str:
        return f"<Source {self.name!r}: {self.duration_s:.2f} s at {self.sample_rate} Hz>"

    def frames(self, codec, hop: int) -> LatentFrames:
        """Latent frames of this source for ``codec``, windows starting every ``hop`` samples.

        Frame i encodes samples ``[i*hop, i*hop + window)``; a source shorter than one window is
        padded with silence to one frame. Encoded once, then cached in memory and on disk.
        """
        if not isinstance(hop, (int, np.integer)) or hop <= 0:
            raise ParameterError(f"hop={hop!r} must be a positive number of samples")
        key = (codec.content_hash, int(hop))
        with self._lock:
            cached = self._frames.get(key)
            if cached is None:
                cached = self._load_or_encode(codec, int(hop))
                self._frames[key] = cached
        return cached

    # -- encoding and its disk cache -----------------------------------------------------------
    def _cache_path(self, codec, hop: int) -> Path:
        return cache_dir() / "frames" / codec.content_hash[:20] / f"{self.audio_hash[:24]}-hop{hop}.npz"

    def _load_or_encode(self, codec, hop: int) -> LatentFrames:
        path = self._cache_path(codec, hop)
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as data:
                    return LatentFrames(data["mu"], data["logvar"], hop)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                path.unlink(missing_ok=True)   # a damaged cache entry is re-encoded, not trusted
        frames = self._encode(codec, hop)
        try:
            with atomic_path(path, durable=False) as tmp:      # a cache: speed, not safety
                np.savez(tmp, mu=frames.mu, logvar=frames.logvar)
        except OSError:
            pass  # a read-only or full cache folder costs speed next time, never the performance
        return frames

    def _encode(self, codec, hop: int) -> LatentFrames:
        audio = self.audio
        if self.sample_rate != codec.sample_rate:
            audio = resample(audio, self.sample_rate, codec.sample_rate)
        window = codec.window
        if audio.shape[0] < window:
            audio = np.pad(audio, (0, window - audio.shape[0]))
        windows = np.lib.stride_tricks.sliding_window_view(audio, window)[::hop]  # (frames, window)
        mus, logvars = [], []
        for start in range(0, windows.shape[0], _ENCODE_BATCH):
            mu, logvar = codec.encode(np.ascontiguousarray(windows[start:start + _ENCODE_BATCH]))
            mus.append(mu)
            logvars.append(logvar)
        return LatentFrames(np.concatenate(mus), np.concatenate(logvars), hop)


def playing_rate() -> int:
    """The sample rate sources are prepared at: the default engine's, or the default rate."""
    engine = context.default_engine_or_none()
    return engine.sample_rate if engine is not None else SAMPLE_RATE


def source(audio, *, sample_rate: int | None = None, name: str | None = None,
           rate: int | None = None) -> Source:
    """A source from a file, several files (concatenated in order), or an array.

    Audio is mixed to mono and resampled with soxr to the current model's rate. Unreadable,
    empty or silent audio raises :class:`~livelatent.errors.AudioError` naming the file.

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
    if isinstance(audio, Source):
        return audio
    if isinstance(audio, (str, os.PathLike)):
        path = Path(audio)
        return Source(read_audio(path, target_rate=rate), sample_rate=rate,
                      name=name or path.stem, paths=[path])
    if isinstance(audio, (list, tuple)) and audio and all(isinstance(p, (str, os.PathLike)) for p in audio):
        paths = [Path(p) for p in audio]
        parts = [read_audio(p, target_rate=rate, allow_silent=True) for p in paths]
        joined = np.concatenate(parts)
        label = name or (paths[0].stem if len(paths) == 1 else f"{paths[0].stem}+{len(paths) - 1}")
        if float(np.max(np.abs(joined))) < SILENCE_PEAK:
            raise AudioError(f"{label}: all {len(paths)} files are silent; nothing to encode")
        return Source(joined, sample_rate=rate, name=label, paths=paths)
    if isinstance(audio, (list, tuple)) and not audio:
        raise AudioError("source([]) has no files: give a path, a list of paths, or an array")
    data = as_mono(audio, sample_rate=sample_rate or rate, target_rate=rate, name=name or "array")
    return Source(data, sample_rate=rate, name=name or "array")
