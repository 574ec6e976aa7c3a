"""Reading, checking, resampling and writing audio.

Everything that enters livelatent as sound passes through :func:`read_audio` or
:func:`as_mono`: it comes out mono float32 at the requested rate, or raises an
:class:`~livelatent.errors.AudioError` that names the file and what is wrong with it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .atomic import atomic_path
from .errors import AudioError, ParameterError, ResampledWarning, check_number

__all__ = [
    "AUDIO_EXTENSIONS",
    "SILENCE_PEAK",
    "MAX_PEAK",
    "read_audio",
    "as_mono",
    "resample",
    "write_audio",
    "list_audio_files",
]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")
SILENCE_PEAK = 1e-4  # about -80 dBFS: below this a source has nothing to encode
MAX_PEAK = 1000.0    # 60 dB over full scale: beyond this the samples are broken, not loud
MIN_RATE, MAX_RATE = 1000, 768000    # sample rates an array of audio may be given at
MAX_CHANNELS = 64    # more "channels" than this is an array the wrong way round


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample mono ``audio`` with soxr (VHQ); returns float32."""
    if from_rate == to_rate:
        return np.ascontiguousarray(audio, dtype=np.float32)
    out = soxr.resample(np.asarray(audio, dtype=np.float32), from_rate, to_rate, quality="VHQ")
    return np.ascontiguousarray(out, dtype=np.float32)


def as_mono(audio, *, sample_rate: int, target_rate: int, name: str = "array",
            allow_silent: bool = False) -> np.ndarray:
    """Check an array of audio and return it mono float32 at ``target_rate``.

    ``audio`` is ``(frames,)`` or ``(frames, channels)``; channels are averaged. PCM integer
    samples (int16 as many libraries read them, int8, uint8, int32) are scaled to -1..1 as
    their full scale; other numbers (a list of Python ints) are taken as they are, up to
    :data:`MAX_PEAK` (beyond it, the samples are refused as broken).
    """
    if isinstance(sample_rate, str):
        raise ParameterError(f"sample_rate={sample_rate!r} must be a number, not a string")
    rate = check_number(sample_rate, name="sample_rate", low=MIN_RATE, high=MAX_RATE,
                        meaning=f"of Hz from {MIN_RATE} to {MAX_RATE}")
    if rate != int(rate):
        raise ParameterError(f"sample_rate={sample_rate!r} must be a whole number of Hz")
    try:
        data = _full_scale(np.asarray(audio))
    except (TypeError, ValueError) as exc:
        raise AudioError(f"{name}: not an array of audio samples ({exc})") from None
    if data.ndim == 2 and data.shape[1] > MAX_CHANNELS:
        hint = (": it looks like (channels, frames), so give its transpose (array.T)"
                if data.shape[0] <= MAX_CHANNELS else "")
        raise AudioError(f"{name}: audio must be (frames,) or (frames, channels); shape {data.shape} "
                         f"would be {data.shape[1]} channels{hint}")
    if data.ndim == 2 and data.shape[1] == 0:
        raise AudioError(f"{name}: the audio has no channels (shape {data.shape})")
    if data.ndim == 2:
        data = data.mean(axis=1, dtype=np.float32)
    elif data.ndim != 1:
        raise AudioError(f"{name}: audio must be (frames,) or (frames, channels), got shape {data.shape}")
    if data.size == 0:
        raise AudioError(f"{name}: the audio is empty (0 samples)")
    if not np.all(np.isfinite(data)):
        given = np.asarray(audio)
        if given.dtype.kind == "f" and np.isfinite(given).all():     # finite, beyond float32's
            raise AudioError(f"{name}: the audio has samples beyond +-{MAX_PEAK:g} (full scale is "
                             f"1): a broken file, or give it scaled down")
        raise AudioError(f"{name}: the audio contains NaN or infinite samples")
    if float(np.max(np.abs(data))) > MAX_PEAK:
        raise AudioError(f"{name}: the audio has samples beyond +-{MAX_PEAK:g} (full scale is 1): "
                         f"a broken file, or give it scaled down")
    data = resample(data, int(rate), int(target_rate))
    if data.size == 0:
        raise AudioError(f"{name}: too short ({np.asarray(audio).shape[0]} frames at {int(rate)} Hz "
                         f"are none at {int(target_rate)} Hz)")
    if not allow_silent and float(np.max(np.abs(data))) < SILENCE_PEAK:
        raise AudioError(f"{name}: the audio is silent (peak below {SILENCE_PEAK:g}); nothing to encode")
    return data


# The integer sample formats audio libraries read files as; other integers (int64 is what a
# list of Python ints becomes) are taken as the values they are.
_PCM_TYPES = (np.int8, np.uint8, np.int16, np.int32)


def _full_scale(data: np.ndarray) -> np.ndarray:
    """``data`` as float32, PCM integer samples divided by their type's full scale."""
    if data.dtype == np.bool_ or data.dtype.kind not in "iuf":
        raise TypeError(f"samples of type {data.dtype}")
    if data.dtype.type not in _PCM_TYPES:
        with np.errstate(over="ignore"):         # (1e300 becomes infinite: said by the caller)
            return data.astype(np.float32, copy=False)
    info = np.iinfo(data.dtype)
    middle = (int(info.max) + 1) // 2 if data.dtype.kind == "u" else 0
    return ((data.astype(np.float64) - middle) / (int(info.max) + 1 - middle)).astype(np.float32)


def read_audio(path, *, target_rate: int, allow_silent: bool = False) -> np.ndarray:
    """Read one audio file as mono float32 at ``target_rate``.

    Stereo and multichannel files are mixed down; other rates are resampled with soxr and a
    warning says so. Missing, non-audio, empty and silent files raise :class:`AudioError`.

    >>> read_audio("kick.wav", target_rate=44100).dtype
    dtype('float32')
    """
    path = Path(path)
    try:
        exists, is_dir, is_file = path.exists(), path.is_dir(), path.is_file()
    except (OSError, ValueError) as exc:              # a name too long, a NUL byte in it
        raise AudioError(f"cannot read {str(path)[:80]!r}: {exc}") from None
    if not exists:
        raise AudioError(f"no such audio file: {path}")
    if is_dir:
        raise AudioError(f"{path} is a folder, not an audio file")
    if not is_file:                                    # (a pipe would be waited on for ever)
        raise AudioError(f"{path} is not an audio file (a pipe, a device or the like)")
    try:
        data, rate = sf.read(os.fsencode(path), dtype="float32", always_2d=True)   # (bytes: any name)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"not an audio file (or unreadable): {path} ({exc})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: the audio file is empty (0 frames)")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"{path}: its sample rate, {rate} Hz, is outside {MIN_RATE} to {MAX_RATE} Hz")
    if rate != target_rate:
        warnings.warn(f"model expects {target_rate} Hz, {path.name} is {rate} Hz: it was resampled",
                      ResampledWarning, stacklevel=2)
    return as_mono(data, sample_rate=rate, target_rate=target_rate, name=str(path),
                   allow_silent=allow_silent)


def list_audio_files(*paths) -> list[Path]:
    """Expand files and folders (recursively) into a sorted list of audio files."""
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*") if q.suffix.lower() in AUDIO_EXTENSIONS
                                and q.is_file()))
        elif p.exists():
            found.append(p)
        else:
            raise AudioError(f"no such file or folder: {p}")
    return found


def write_audio(path, audio: np.ndarray, sample_rate: int, *, subtype: str | None = None) -> Path:
    """Write ``audio`` ((frames,) or (frames, channels)) atomically: a temporary file in the
    same folder is renamed over ``path`` only once it is complete."""
    path = Path(path)
    fmt = _format_for(path)
    with atomic_path(path) as tmp:
        sf.write(tmp, audio, sample_rate, format=fmt, subtype=subtype)
    return path


def _format_for(path: Path) -> str:
    ext = path.suffix.lower().lstrip(".")
    formats = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "aiff": "AIFF", "aif": "AIFF"}
    if ext not in formats:
        raise ParameterError(f"cannot write {path.name}: use .wav or .flac (or .ogg, .aiff)")
    return formats[ext]
