"""Descriptors of what each latent frame sounds like, measured on its decoded window.

Descriptor-based synthesis (the timbre-space idea: describe every grain, then follow a target
through the description) needs, for every frame of a corpus, numbers a performer can aim at.
They are measured on what the decoder makes of the frame, not on the audio it was encoded from:
the frame's *mean* latent is decoded and the window analysed, so the numbers describe what a
voice playing that frame will sound like.

- ``centroid`` (Hz): spectral centroid of the Hann-windowed magnitude spectrum;
- ``loudness`` (dB): RMS of the window, floored at -120 dB;
- ``pitch`` (Hz): a YIN-style estimate (cumulative mean normalised difference, absolute
  threshold, parabolic refinement); NaN where the window is not clearly periodic. With 1024-sample
  windows at 44.1 kHz it finds fundamentals from about 86 Hz to 5 kHz.

>>> index = descriptor_index(codec, corpus("samples/strings"), 512)
>>> index.values["centroid"][:3]
"""

from __future__ import annotations

import threading
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..atomic import atomic_path
from ..config import cache_dir
from ..errors import ParameterError

__all__ = ["DESCRIPTORS", "DescriptorIndex", "descriptor_index", "window_descriptors"]

DESCRIPTORS = {"centroid": "Hz", "loudness": "dB", "pitch": "Hz"}

LOUDNESS_FLOOR_DB = -120.0
PITCH_THRESHOLD = 0.15        # YIN's absolute threshold on the normalised difference
PITCH_MAX_HZ = 5000.0
_DECODE_BATCH = 4096          # frames decoded and analysed at once
_CACHE_VERSION = 1
_MEMORY_ENTRIES = 32          # indexes kept in memory (each is a few floats per frame)


# -- analysis of windows -----------------------------------------------------------------------

def window_descriptors(windows, sample_rate) -> dict[str, np.ndarray]:
    """Descriptors of each window: ``{"centroid": Hz, "loudness": dB, "pitch": Hz}``, each
    ``(n,)`` float64. Silent windows (at the loudness floor) have NaN centroid and pitch;
    unpitched ones have NaN pitch.

    >>> t = np.arange(1024) / 44100
    >>> window_descriptors(np.sin(2 * np.pi * 440 * t)[None], 44100)["pitch"]   # ~ [440.]
    """
    x = np.asarray(windows, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] < 16:
        raise ParameterError(f"windows must have shape (n, samples) with at least 16 samples, "
                             f"got {np.shape(windows)}")
    try:
        rate = float(sample_rate)
    except (TypeError, ValueError):
        rate = float("nan")
    if not (np.isfinite(rate) and rate > 0):
        raise ParameterError(f"sample_rate={sample_rate!r} must be a positive number of Hz")
    if not np.all(np.isfinite(x)):
        raise ParameterError("windows hold NaN or infinite samples; descriptors need finite audio")
    loudness = _loudness(x)
    silent = loudness <= LOUDNESS_FLOOR_DB
    centroid = _centroid(x, rate)
    pitch = _pitch(x, rate)
    centroid[silent] = np.nan
    pitch[silent] = np.nan
    return {"centroid": centroid, "loudness": loudness, "pitch": pitch}


def _loudness(x: np.ndarray) -> np.ndarray:
    rms = np.sqrt(np.mean(np.square(x, dtype=np.float64), axis=1))
    floor = 10.0 ** (LOUDNESS_FLOOR_DB / 20.0)
    return 20.0 * np.log10(np.maximum(rms, floor))


def _centroid(x: np.ndarray, rate: float) -> np.ndarray:
    width = x.shape[1]
    hann = np.hanning(width + 1)[:-1].astype(np.float32)       # periodic Hann
    magnitude = np.abs(np.fft.rfft(x * hann, axis=1)).astype(np.float64)
    freqs = np.arange(magnitude.shape[1]) * (rate / width)
    total = magnitude.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid = (magnitude @ freqs) / total
    centroid[~(total > 0)] = np.nan
    return centroid


def _pitch(x: np.ndarray, rate: float) -> np.ndarray:
    """YIN on each window: the mean squared difference of the window with itself shifted by
    each lag (up to half the window), from one autocorrelation per window."""
    n, width = x.shape
    span = width // 2                                          # the longest lag
    size = _fft_size(width + span)                             # no circular wrap-around
    spectrum = np.fft.rfft(x, size, axis=1)
    spectrum *= np.conj(spectrum)
    acf = np.fft.irfft(spectrum, size, axis=1)[:, :span + 1]   # acf[:, tau], tau = 0..span
    power = np.zeros((n, width + 1), dtype=np.float32)
    np.cumsum(np.square(x), axis=1, out=power[:, 1:])
    # sum over j < width - tau of (x[j] - x[j + tau])^2, per term (its count shrinks with tau)
    head = power[:, width:width - span - 1:-1]                 # energy of x[: width - tau]
    tail = power[:, width:width + 1] - power[:, :span + 1]     # energy of x[tau:]
    diff = head + tail - 2.0 * acf
    np.maximum(diff, 0.0, out=diff)
    diff /= np.arange(width, width - span - 1, -1, dtype=np.float32)
    lags = np.arange(span + 1, dtype=np.float32)
    running = np.cumsum(diff[:, 1:], axis=1)
    cmnd = np.ones_like(diff)                                  # cmnd[:, tau], tau = 0..span
    np.divide(diff[:, 1:] * lags[1:], running, out=cmnd[:, 1:], where=running > 0)
    low = max(2, int(np.floor(rate / PITCH_MAX_HZ)))
    high = span - 1                                            # keeps a neighbour each side
    if high <= low:
        return np.full(n, np.nan)
    search = cmnd[:, low:high]
    below = search < PITCH_THRESHOLD
    found = below.any(axis=1)
    first = np.argmax(below, axis=1)
    # walk from the first dip below the threshold to the bottom of that dip; a dip still
    # falling at the longest lag is a period the window is too short for (a chord's): no pitch
    rising = cmnd[:, low + 1:high + 1] >= search
    rising &= np.arange(high - low)[None, :] >= first[:, None]
    found &= rising.any(axis=1)
    tau = low + np.argmax(rising, axis=1)
    rows = np.arange(n)
    a, b, c = (cmnd[rows, tau + k].astype(np.float64) for k in (-1, 0, 1))
    curve = a - 2.0 * b + c
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(curve > 0, 0.5 * (a - c) / curve, 0.0)
    pitch = rate / (tau + np.clip(shift, -0.5, 0.5))
    pitch[~found] = np.nan
    return pitch


def _fft_size(least: int) -> int:
    """The smallest 2^k or 3 * 2^k of at least ``least`` (both fast FFT lengths)."""
    power = 1 << max(0, int(least - 1).bit_length())
    return 3 * power // 4 if 3 * power // 4 >= least and power >= 4 else power


# -- the index ---------------------------------------------------------------------------------

class DescriptorIndex:
    """Descriptors of every frame of a corpus at one hop. Build one with :func:`descriptor_index`.

    Attributes
    ----------
    names : tuple of str
        The descriptors, in the order of :data:`DESCRIPTORS`.
    values : dict of str -> ndarray (frames,) float64
        Centroid (Hz), loudness (dB), pitch (Hz; NaN where unpitched) of each frame.
    hop : int
    spans : ndarray (sources, 2) int64
        First and one-past-last frame of each source: frame ``j`` follows ``j - 1`` in time
        only inside a span.
    """

    def __init__(self, values: dict, *, hop: int, spans=None):
        missing = [name for name in DESCRIPTORS if name not in values]
        if missing:
            raise ParameterError(f"a descriptor index needs {', '.join(DESCRIPTORS)}; "
                                 f"missing {', '.join(missing)}")
        arrays = {name: np.asarray(values[name], dtype=np.float64) for name in DESCRIPTORS}
        sizes = {a.shape for a in arrays.values()}
        if len(sizes) != 1 or len(next(iter(sizes))) != 1:
            raise ParameterError(f"descriptor values must be 1-D arrays of one length, got shapes "
                                 f"{ {k: a.shape for k, a in arrays.items()} }")
        count = next(iter(sizes))[0]
        if count == 0:
            raise ParameterError("a descriptor index needs at least one frame")
        spans = np.array([[0, count]] if spans is None else spans, dtype=np.int64).reshape(-1, 2)
        if spans[0, 0] != 0 or spans[-1, 1] != count or np.any(spans[1:, 0] != spans[:-1, 1]) \
                or np.any(spans[:, 1] < spans[:, 0]):
            raise ParameterError(f"spans must cover frames 0..{count} in order")
        for a in (*arrays.values(), spans):
            a.setflags(write=False)
        self.names = tuple(DESCRIPTORS)
        self.values = arrays
        self.hop = int(hop)
        self.spans = spans
        follows = np.ones(count, dtype=bool)
        follows[spans[:, 0][spans[:, 0] < count]] = False
        follows.setflags(write=False)
        self.follows = follows     # follows[j]: frame j comes right after frame j - 1 in its source

    def __len__(self) -> int:
        return int(self.follows.shape[0])

    def __repr__(self) -> str:
        return f"<DescriptorIndex: {len(self)} frames at hop {self.hop}, {len(self.spans)} sources>"

    def check_name(self, name) -> str:
        """``name`` if it is a descriptor, else a ParameterError listing the known ones."""
        if not isinstance(name, str) or name not in self.values:
            raise ParameterError(f"unknown descriptor {name!r}: the descriptors are "
                                 f"{', '.join(f'{k} ({u})' for k, u in DESCRIPTORS.items())}")
        return name

    def sorted_order(self, name: str) -> np.ndarray:
        """Frame indices from the lowest value of descriptor ``name`` to the highest (a stable
        sort; frames without a value, NaN, come last), int64."""
        return np.argsort(self.values[self.check_name(name)], kind="stable").astype(np.int64)


_memory: OrderedDict[tuple, DescriptorIndex] = OrderedDict()
_memory_lock = threading.Lock()
_build_lock = threading.Lock()


def descriptor_index(codec, corpus, hop: int, *, progress: bool = True) -> DescriptorIndex:
    """The descriptors of every frame of ``corpus`` at ``hop``, measured on decoded windows.

    Each frame's mean latent is decoded (a few thousand at a time) and the window analysed with
    :func:`window_descriptors`. Built once per (model, corpus, hop), then kept in memory and on
    disk in the cache folder. ``progress`` shows a tqdm bar (on stderr) for long builds.
    """
    if not isinstance(hop, (int, np.integer)) or isinstance(hop, bool) or hop <= 0:
        raise ParameterError(f"hop={hop!r} must be a positive number of samples")
    hop = int(hop)
    content_hash = getattr(corpus, "content_hash", None)
    if not isinstance(content_hash, str) or not hasattr(corpus, "frames"):
        raise ParameterError(f"descriptor_index needs a corpus (livelatent.paths.corpus.corpus(...)), "
                             f"got {type(corpus).__name__}")
    key = (codec.content_hash, content_hash, hop)
    with _memory_lock:
        found = _memory.get(key)
        if found is not None:
            _memory.move_to_end(key)
            return found
    with _build_lock:
        with _memory_lock:
            found = _memory.get(key)
        if found is None:
            found = _load_or_build(codec, corpus, hop, progress)
        with _memory_lock:
            _memory[key] = found
            _memory.move_to_end(key)
            while len(_memory) > _MEMORY_ENTRIES:
                _memory.popitem(last=False)
    return found


def cache_path(codec, corpus, hop: int) -> Path:
    """Where the descriptor index of (codec, corpus, hop) is kept on disk."""
    return (cache_dir() / "descriptors" / codec.content_hash[:20]
            / f"{corpus.content_hash[:24]}-hop{int(hop)}-v{_CACHE_VERSION}.npz")


def _load_or_build(codec, corpus, hop: int, progress: bool) -> DescriptorIndex:
    path = cache_path(codec, corpus, hop)
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as data:
                if int(data["version"]) != _CACHE_VERSION or int(data["hop"]) != hop:
                    raise ValueError("another version")
                return DescriptorIndex({name: data[name] for name in DESCRIPTORS}, hop=hop,
                                       spans=data["spans"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, ParameterError):
            path.unlink(missing_ok=True)   # a damaged cache entry is rebuilt, not trusted
    index = _build(codec, corpus, hop, progress)
    try:
        with atomic_path(path, durable=False) as tmp:          # a cache: speed, not safety
            np.savez(tmp, version=_CACHE_VERSION, hop=hop, spans=index.spans,
                     **{name: index.values[name] for name in DESCRIPTORS})
    except OSError:
        pass  # a read-only or full cache folder costs speed next time, never the performance
    return index


def _build(codec, corpus, hop: int, progress: bool) -> DescriptorIndex:
    frames = corpus.frames(codec, hop)
    mu = frames.mu
    count = int(mu.shape[0])
    if count == 0:
        raise ParameterError(f"corpus {getattr(corpus, 'name', '')!r} has no latent frames at hop "
                             f"{hop}: nothing to describe")
    spans = np.asarray(corpus.spans(codec, hop), dtype=np.int64) if hasattr(corpus, "spans") else None
    parts: dict[str, list[np.ndarray]] = {name: [] for name in DESCRIPTORS}
    with tqdm(total=count, desc="descriptors", unit="frame", disable=not progress,
              leave=False, delay=0.5) as bar:
        for start in range(0, count, _DECODE_BATCH):
            windows = codec.decode(mu[start:start + _DECODE_BATCH])
            for name, value in window_descriptors(windows, codec.sample_rate).items():
                parts[name].append(value)
            bar.update(windows.shape[0])
    values = {name: np.concatenate(chunks) for name, chunks in parts.items()}
    return DescriptorIndex(values, hop=hop, spans=spans)
