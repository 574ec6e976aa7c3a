"""Bag-of-frames thumbnails of sounds: what a self-organizing map sorts a corpus by.

Each sound is cut into frames (1024 samples, hop 512, at a fixed analysis rate of 22,050 Hz,
whatever the file's own rate), and each frame is described by its loudness, spectral centroid,
flatness, rolloff, zero-crossing rate and 13 MFCCs. A sound's thumbnail is the mean and the
standard deviation of each over its frames, plus its duration: 37 numbers that say how bright,
noisy, loud and steady it is, and how that changes. Frames more than 60 dB below the loudest
frame of the sound are left out, so a tail of silence does not drag the means.

Everything is numpy (a short-time Fourier transform, a mel filterbank, a DCT), vectorised over
the frames of a sound; there is no per-frame Python loop.

>>> table = extract_features(["kick.wav", "snare.wav"])
>>> table.values.shape
(2, 37)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from tqdm.auto import tqdm

from ..audio import AUDIO_EXTENSIONS, MAX_PEAK, SILENCE_PEAK
from ..blas import one_blas_thread
from ..errors import AudioError, ParameterError

__all__ = [
    "ANALYSIS_RATE",
    "FRAME_SIZE",
    "HOP_SIZE",
    "NUM_MFCC",
    "FEATURE_NAMES",
    "FEATURE_GROUPS",
    "FeatureTable",
    "Scaler",
    "frame_features",
    "features_of_audio",
    "read_for_analysis",
    "extract_features",
    "list_corpus_files",
    "group_weights",
    "fit_scaler",
]

ANALYSIS_RATE = 22050        # Hz; every sound is analysed at this rate, whatever its own
FRAME_SIZE = 1024            # samples per analysis frame (46 ms at 22,050 Hz)
HOP_SIZE = 512               # samples between frames
NUM_MFCC = 13
NUM_MELS = 40
ROLLOFF_FRACTION = 0.85      # rolloff: frequency below which 85 % of the spectral magnitude lies
ACTIVE_RANGE_DB = 60.0       # frames this far below the loudest frame do not count

_PER_FRAME = ["loudness_db", "centroid_hz", "flatness", "rolloff_hz", "zero_crossing_rate"] + [
    f"mfcc{i}" for i in range(1, NUM_MFCC + 1)]

#: The thumbnail's columns, in order: duration, then mean and std of each per-frame feature.
FEATURE_NAMES: list[str] = (["duration_s"]
                            + [f"{name}_mean" for name in _PER_FRAME[:5]]
                            + [f"{name}_std" for name in _PER_FRAME[:5]]
                            + [f"mfcc{i}_mean" for i in range(1, NUM_MFCC + 1)]
                            + [f"mfcc{i}_std" for i in range(1, NUM_MFCC + 1)])

#: Groups of columns that a weight applies to (``weights={"mfcc": 2.0, "duration": 0}``).
FEATURE_GROUPS: dict[str, list[str]] = {
    "duration": ["duration_s"],
    "loudness": ["loudness_db_mean", "loudness_db_std"],
    "centroid": ["centroid_hz_mean", "centroid_hz_std"],
    "flatness": ["flatness_mean", "flatness_std"],
    "rolloff": ["rolloff_hz_mean", "rolloff_hz_std"],
    "zcr": ["zero_crossing_rate_mean", "zero_crossing_rate_std"],
    "mfcc": [f"mfcc{i}_mean" for i in range(1, NUM_MFCC + 1)]
            + [f"mfcc{i}_std" for i in range(1, NUM_MFCC + 1)],
}


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def _mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular filters on the HTK mel scale, each of unit area: (n_fft // 2 + 1, n_mels)."""
    bin_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = _mel_to_hz(np.linspace(0.0, _hz_to_mel(sample_rate / 2), n_mels + 2))
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_hz[:, None] - lower) / (centre - lower)
    falling = (upper - bin_hz[:, None]) / (upper - centre)
    bank = np.maximum(0.0, np.minimum(rising, falling))
    bank *= 2.0 / (upper - lower)   # equal area, so wide high bands do not dominate
    return bank


def _dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II as a matrix: (n_in, n_out)."""
    k = np.arange(n_out)[None, :]
    n = np.arange(n_in)[:, None]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * math.sqrt(2.0 / n_in)
    basis[:, 0] /= math.sqrt(2.0)
    return basis


_WINDOW = np.hanning(FRAME_SIZE + 1)[:-1]      # periodic Hann
_FREQS = np.fft.rfftfreq(FRAME_SIZE, 1.0 / ANALYSIS_RATE)
_MEL = _mel_filterbank(ANALYSIS_RATE, FRAME_SIZE, NUM_MELS)
_DCT = _dct_matrix(NUM_MELS, NUM_MFCC)


def _frames(audio: np.ndarray) -> np.ndarray:
    """Cut mono audio into overlapping whole frames: (frames, FRAME_SIZE).

    The last partial frame is dropped (a half-empty frame would smear the spectrum); a sound
    shorter than one frame is zero-padded to one.
    """
    if audio.shape[0] < FRAME_SIZE:
        audio = np.pad(audio, (0, FRAME_SIZE - audio.shape[0]))
    return np.lib.stride_tricks.sliding_window_view(audio, FRAME_SIZE)[::HOP_SIZE]


def frame_features(audio: np.ndarray) -> np.ndarray:
    """Per-frame features of mono audio at :data:`ANALYSIS_RATE`: (frames, 18).

    Columns: loudness (dBFS), centroid (Hz), flatness (0..1), rolloff (Hz), zero-crossing rate
    (crossings per sample), then MFCC 1..13.
    """
    frames = _frames(np.asarray(audio, dtype=np.float64))            # (frames, FRAME_SIZE)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    loudness = 20.0 * np.log10(np.maximum(rms, 1e-10))
    magnitude = np.abs(np.fft.rfft(frames * _WINDOW, axis=1))          # (frames, bins)
    power = magnitude * magnitude
    total = np.maximum(magnitude.sum(axis=1), 1e-12)
    centroid = magnitude @ _FREQS / total
    cumulative = np.cumsum(magnitude, axis=1)
    rolloff_bin = np.argmax(cumulative >= ROLLOFF_FRACTION * cumulative[:, -1:], axis=1)
    rolloff = _FREQS[rolloff_bin]
    safe_power = np.maximum(power, 1e-10)
    flatness = np.exp(np.mean(np.log(safe_power), axis=1)) / np.mean(safe_power, axis=1)
    signs = np.signbit(frames)
    zcr = np.count_nonzero(signs[:, 1:] != signs[:, :-1], axis=1) / (FRAME_SIZE - 1)
    mel_db = 10.0 * np.log10(np.maximum(power @ _MEL, 1e-10))         # (frames, NUM_MELS)
    mfcc = mel_db @ _DCT                                              # (frames, NUM_MFCC)
    return np.column_stack([loudness, centroid, flatness, rolloff, zcr, mfcc])


def features_of_audio(audio: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """The thumbnail of one sound: a (37,) float64 vector in the order of :data:`FEATURE_NAMES`.

    ``audio`` is mono (or ``(samples, channels)``, mixed down) at ``sample_rate``; it is
    resampled to :data:`ANALYSIS_RATE` with soxr.

    >>> features_of_audio(np.sin(np.arange(22050) * 0.1), sample_rate=22050).shape
    (37,)
    """
    data = np.asarray(audio, dtype=np.float32)
    if data.ndim == 2:
        data = data.mean(axis=1, dtype=np.float32)
    if data.ndim != 1 or data.size == 0:
        raise AudioError(f"cannot describe audio of shape {data.shape}: need (samples,) with samples > 0")
    duration_s = data.shape[0] / float(sample_rate)
    if sample_rate != ANALYSIS_RATE:
        data = soxr.resample(data, sample_rate, ANALYSIS_RATE, quality="HQ")
    per_frame = frame_features(data)
    loudness = per_frame[:, 0]
    active = loudness >= loudness.max() - ACTIVE_RANGE_DB
    per_frame = per_frame[active]
    mean = per_frame.mean(axis=0)
    std = per_frame.std(axis=0)
    return np.concatenate([[duration_s], mean[:5], std[:5], mean[5:], std[5:]])


def read_for_analysis(path) -> tuple[np.ndarray, int]:
    """Read a file as mono float32 at its own rate, or raise AudioError saying why it cannot be used.

    The reasons are short, because they are listed next to the file: ``not an audio file``,
    ``empty (0 samples)``, ``silent``, ``contains NaN or infinite samples``, ``has samples
    beyond +-1000``.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError("no such file")
    try:
        data, rate = sf.read(os.fsencode(path), dtype="float32", always_2d=True)   # (bytes: any name)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        if path.suffix.lower() in AUDIO_EXTENSIONS:
            raise AudioError(f"unreadable audio ({exc})") from None
        raise AudioError("not an audio file") from None
    if data.shape[0] == 0:
        raise AudioError("empty (0 samples)")
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(mono)):
        raise AudioError("contains NaN or infinite samples")
    if float(np.max(np.abs(mono))) > MAX_PEAK:
        raise AudioError(f"has samples beyond +-{MAX_PEAK:g} (full scale is 1)")
    if float(np.max(np.abs(mono))) < SILENCE_PEAK:
        raise AudioError(f"silent (peak below {SILENCE_PEAK:g})")
    return np.ascontiguousarray(mono), int(rate)


def list_corpus_files(*paths, exclude=None) -> list[Path]:
    """Expand files and folders (recursively) into a sorted list of candidate files.

    Unlike :func:`livelatent.audio.list_audio_files`, every regular file in a folder is listed,
    audio or not, so that what cannot be used is reported rather than silently ignored. Hidden
    files (``.DS_Store``...) and anything under ``exclude`` (e.g. the SOM's own output folder)
    are left out.
    """
    exclude = Path(exclude).resolve() if exclude is not None else None
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                root_path = Path(root)
                if exclude is not None and (root_path.resolve() == exclude
                                            or exclude in root_path.resolve().parents):
                    continue
                found.extend(root_path / f for f in sorted(files) if not f.startswith("."))
        elif p.is_file():
            found.append(p)
        else:
            raise AudioError(f"no such file or folder: {p}")
    unique = list(dict.fromkeys(found))
    return sorted(unique, key=lambda q: q.as_posix())


@dataclass
class FeatureTable:
    """Thumbnails of a corpus: ``values[i]`` describes ``paths[i]``.

    ``skipped`` lists the files that could not be used, as ``(path, reason)``.
    """

    paths: list[Path]
    values: np.ndarray                                   # (files, len(FEATURE_NAMES)), float64
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def durations_s(self) -> np.ndarray:
        return self.values[:, 0].copy()

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return (f"<FeatureTable: {len(self.paths)} files x {self.values.shape[1]} features, "
                f"{len(self.skipped)} skipped>")


def extract_features(paths, *, progress: bool = True, features=None) -> FeatureTable:
    """Thumbnails of many files, skipping (and listing) those that cannot be used.

    Parameters
    ----------
    paths : iterable of str or Path
        Files, in the order the table keeps. Use :func:`list_corpus_files` to expand folders.
    progress : bool
        Show a tqdm progress bar (on stderr).
    features : FeatureSet, optional
        Which thumbnails (:mod:`.feature_sets`); default the bag of frames.

    Returns
    -------
    FeatureTable
        Non-audio, empty, unreadable and silent files are in ``.skipped`` with the reason.
    """

    paths = [Path(p) for p in paths]
    kept: list[Path] = []
    rows: list[np.ndarray] = []
    skipped: list[tuple[Path, str]] = []
    # the products are small (a file's frames x 513 bins x 40 mel bands): BLAS threads cost
    # more to wake than they save, 3-5x more on a busy 2-core machine
    with one_blas_thread():
        for path in tqdm(paths, desc="features", unit="file", disable=not progress, leave=False):
            try:
                audio, rate = read_for_analysis(path)
                rows.append(features_of_audio(audio, sample_rate=rate) if features is None
                            else features.describe(audio, rate))
            except AudioError as exc:                 # (a file too short to describe too)
                skipped.append((path, str(exc)))
                continue
            kept.append(path)
    width = len(FEATURE_NAMES) if features is None else features.width
    values = np.vstack(rows) if rows else np.zeros((0, width))
    return FeatureTable(kept, values, skipped)


def group_weights(weights: dict | None = None, features=None) -> np.ndarray:
    """Per-column multipliers from per-group weights: (len(FEATURE_NAMES),).

    Each group counts equally by default: a column's multiplier is
    ``weight / sqrt(columns in its group)``, so after standardisation every group adds the same
    variance (``weight ** 2``) to the distances the map sorts by, whether it has 1 column
    (duration) or 26 (MFCCs). Groups are :data:`FEATURE_GROUPS`; a weight of 0 ignores a group.

    >>> group_weights({"duration": 0})[0]
    0.0
    """
    groups, columns = ((FEATURE_GROUPS, FEATURE_NAMES) if features is None
                       else (features.groups, list(features.names)))
    weights = {**({} if features is None else features.default_weights), **dict(weights or {})}
    unknown = sorted(set(weights) - set(groups))
    if unknown:
        raise ParameterError(f"unknown feature group(s) {unknown} in weights: "
                             f"use {sorted(groups)}")
    multipliers = np.zeros(len(columns))
    for group, names in groups.items():
        weight = weights.get(group, 1.0)
        if not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            raise ParameterError(f"weights[{group!r}]={weight!r} must be a number >= 0")
        for name in names:
            multipliers[columns.index(name)] = weight / math.sqrt(len(names))
    return multipliers


@dataclass
class Scaler:
    """Standardise thumbnails (z-scores with stored mean and std), then weight the columns."""

    mean: np.ndarray
    std: np.ndarray
    multipliers: np.ndarray

    def transform(self, values: np.ndarray) -> np.ndarray:
        """(n, features) raw thumbnails -> (n, features) weighted z-scores."""
        return (np.asarray(values, dtype=np.float64) - self.mean) / self.std * self.multipliers

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(),
                "multipliers": self.multipliers.tolist()}


def fit_scaler(values: np.ndarray, *, weights: dict | None = None, features=None) -> Scaler:
    """A :class:`Scaler` fitted to a corpus's thumbnails (a column that never varies gets std 1)."""
    values = np.asarray(values, dtype=np.float64)
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std[~(std > 1e-12)] = 1.0
    return Scaler(mean, std, group_weights(weights, features))
