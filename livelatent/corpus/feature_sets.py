"""The thumbnails a map can sort sounds by: ``livelatent som --features bag|timbre|model``.

Every set's first column is the sound's duration (the map's data file keeps it); what else a
thumbnail holds:

- ``bag`` (:mod:`.features`): the bag-of-frames means and spreads of loudness, centroid,
  flatness, rolloff, zero-crossing rate and MFCCs 1-13: how bright, noisy, loud and steady.
- ``timbre``: descriptors that a note's pitch and level move little: MFCCs 1-12 without the 0th
  (the level), their spread, the spectral contrast of six octave bands (peaks over valleys:
  tonal against noisy, per register), the flatness, and the envelope's attack and decay times
  (log seconds): a plucked string, a bowed one and a blown pipe differ there at any pitch.
- ``model``: the codec's own view, the mean and the spread of the mean latent frames of the
  sound's windows (the default pack unless another model is given).

``timbre`` is the default: on held-out FluidR3 notes of eleven families it grouped families a
little better than ``bag`` (``benchmarks/bench_som_families.py``; none of the three does well).
Each set has groups of columns (``weights={"mfcc": 2}`` scales a group; every group adds the
same variance otherwise). Duration weighs 0 in ``timbre`` and ``model``: a note's length is not
its family.
"""

from __future__ import annotations

import functools
import os
import math
from dataclasses import dataclass

import numpy as np
import soxr

from ..errors import AudioError
from .features import (ANALYSIS_RATE, FEATURE_GROUPS, FEATURE_NAMES, HOP_SIZE, _FREQS, _WINDOW, _frames,
                       features_of_audio, frame_features)

__all__ = ["FeatureSet", "FEATURE_SETS", "feature_set", "DEFAULT_FEATURES"]

DEFAULT_FEATURES = "timbre"     # measured best (benchmarks/bench_som_families.py)
_CONTRAST_EDGES = 200.0 * 2.0 ** np.arange(7)        # six octave bands, 200 Hz to 12.8 kHz
_CONTRAST_SHARE = 0.2                                 # peak: top 20 % of a band's bins; valley: bottom


@dataclass(frozen=True)
class FeatureSet:
    """A kind of thumbnail: its column names, groups, default group weights, and the function
    that describes one sound (``describe(audio, rate)``; ``describe_many`` when it batches)."""

    name: str
    names: tuple
    groups: dict
    default_weights: dict
    describe: object

    @property
    def width(self) -> int:
        return len(self.names)


# -- timbre --------------------------------------------------------------------------------------
_TIMBRE_NAMES = (["duration_s"] + [f"mfcc{i}_mean" for i in range(1, 13)] + [f"mfcc{i}_std" for i in range(1, 13)]
                 + [f"contrast{b}" for b in range(6)] + ["flatness_mean", "flatness_std", "attack_log_s",
                                                          "decay_log_s"])
_TIMBRE_GROUPS = {"duration": ["duration_s"],
                  "mfcc": [n for n in _TIMBRE_NAMES if n.startswith("mfcc")],
                  "contrast": [f"contrast{b}" for b in range(6)],
                  "flatness": ["flatness_mean", "flatness_std"],
                  "envelope": ["attack_log_s", "decay_log_s"]}
_BANDS = [np.flatnonzero((_FREQS >= lo) & (_FREQS < hi)) for lo, hi in zip(_CONTRAST_EDGES[:-1], _CONTRAST_EDGES[1:])]


def _timbre(audio: np.ndarray, rate: int) -> np.ndarray:
    data = np.asarray(audio, dtype=np.float32)
    duration = data.shape[0] / float(rate)
    if rate != ANALYSIS_RATE:
        data = soxr.resample(data, rate, ANALYSIS_RATE, quality="HQ")
    per_frame = frame_features(data)             # loudness, ..., flatness, ..., MFCC 0-12
    loudness = per_frame[:, 0]
    active = loudness >= loudness.max() - 60.0
    mfcc = per_frame[active, 6:]                 # MFCC 1-12: without the 0th (the level)
    flatness = per_frame[active, 2]
    frames = _frames(np.asarray(data, dtype=np.float64))[active]
    power = np.maximum(np.abs(np.fft.rfft(frames * _WINDOW, axis=1)) ** 2, 1e-10)
    contrast = []
    for bins in _BANDS:
        band = np.sort(power[:, bins], axis=1)
        take = max(1, int(round(_CONTRAST_SHARE * band.shape[1])))
        contrast.append(np.mean(10.0 * np.log10(band[:, -take:].mean(axis=1) / band[:, :take].mean(axis=1))))
    peak = int(np.argmax(loudness))
    start = int(np.argmax(loudness >= loudness[peak] - 40.0))
    after = np.flatnonzero(loudness[peak:] < loudness[peak] - 20.0)
    end = peak + (int(after[0]) if after.size else len(loudness) - 1 - peak)
    hop_s = HOP_SIZE / ANALYSIS_RATE
    attack = math.log(max(peak - start, 0) * hop_s + hop_s / 2)
    decay = math.log(max(end - peak, 0) * hop_s + hop_s / 2)
    return np.concatenate([[duration], mfcc.mean(axis=0), mfcc.std(axis=0), contrast,
                           [flatness.mean(), flatness.std(), attack, decay]])


# -- the model's thumbnails ------------------------------------------------------------------------
class _ModelThumbnails:
    """Mean and spread of the mean latent frames of a sound's non-overlapping windows (the loud
    ones: within 60 dB of the loudest), with the codec loaded once."""

    def __init__(self, model=None):
        self.model, self._codec = model, None

    @property
    def codec(self):
        if self._codec is None:
            from ..model.codec import load_model
            self._codec = load_model(self.model)
        return self._codec

    def __call__(self, audio: np.ndarray, rate: int) -> np.ndarray:
        codec = self.codec
        data = np.asarray(audio, dtype=np.float32)
        duration = data.shape[0] / float(rate)
        if rate != codec.sample_rate:
            data = soxr.resample(data, rate, codec.sample_rate, quality="HQ")
        if data.size == 0:
            raise AudioError(f"too short ({audio.shape[0]} frames at {rate} Hz are none at "
                             f"{codec.sample_rate} Hz)")
        window = codec.window
        data = np.pad(data, (0, -data.shape[0] % window)).reshape(-1, window)
        level = 20.0 * np.log10(np.maximum(np.sqrt(np.mean(data * data, axis=1)), 1e-10))
        mu, _ = codec.encode(data[level >= level.max() - 60.0])
        return np.concatenate([[duration], mu.mean(axis=0), mu.std(axis=0)])


FEATURE_SETS = {
    "bag": FeatureSet("bag", tuple(FEATURE_NAMES), FEATURE_GROUPS, {},
                      lambda audio, rate: features_of_audio(audio, sample_rate=rate)),
    "timbre": FeatureSet("timbre", tuple(_TIMBRE_NAMES), _TIMBRE_GROUPS, {"duration": 0.0}, _timbre),
}


def _stamp(model) -> tuple | None:
    """What tells a model file's versions apart for the cache: its size and time (a pack
    replaced in place by a newer version is another model)."""
    if model is None:
        from ..config import DEFAULT_MODEL_DIR
        from ..model.checkpoint import PACK_WEIGHTS_NAME
        model = DEFAULT_MODEL_DIR / PACK_WEIGHTS_NAME
    try:
        info = os.stat(model)
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns


@functools.lru_cache(maxsize=4)
def _model_set(model, stamp) -> FeatureSet:
    thumbnails = _ModelThumbnails(model)
    latent = 256 if model is None else thumbnails.codec.latent_dim
    names = tuple(["duration_s"] + [f"latent{i}_mean" for i in range(latent)] + [f"latent{i}_std" for i in range(latent)])
    return FeatureSet("model", names, {"duration": ["duration_s"], "latent": list(names[1:])},
                      {"duration": 0.0}, thumbnails)


def feature_set(name: str, *, model=None) -> FeatureSet:
    """The feature set called ``name`` (``model``: the codec's thumbnails of ``model``; one set,
    its codec loaded once, per model)."""
    from ..errors import ParameterError
    if name == "model":
        return _model_set(None if model is None else str(model), _stamp(model))
    if name not in FEATURE_SETS:
        raise ParameterError(f"features={name!r}: one of {', '.join([*FEATURE_SETS, 'model'])}")
    if model is not None:              # (it was ignored without a word)
        raise ParameterError(f"a model ({str(model)!r:.60}) is for the model's thumbnails "
                             f"(--features model); {name} thumbnails use none")
    return FEATURE_SETS[name]
