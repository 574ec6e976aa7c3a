"""A live input as a source: latent frames encoded from the audio as it arrives.

``mic = live_input(channel=1)`` is a :class:`LiveSource`. Its frame ``i`` encodes the input's
samples ``[origin + i*hop, origin + i*hop + window)``, where input samples are counted in engine
samples: each one is stored at the output sample heard when it was taken. A window a voice
plays at engine sample ``p`` reads the frame of the input from ``p - delay``: the *declared
delay* (at least the lookahead, plus a window and the device's blocks) that lets the input
arrive and be encoded before the decoder needs it. Before the input began, it reads the frame
of silence.

Live, the frames are kept in a ring (:class:`LiveFrames`: row 0 the silence, then the last
``RING_S`` seconds), written by the recorder (:mod:`livelatent.controllers.input_recorder`) as
windows complete, and mirrored into the engine's frame arena. The recorder writes the very
samples it encodes to the set as 24-bit FLAC; offline (a render of the set), the source is
rebuilt from that file (:meth:`LiveSource.recorded`) and its frames encoded from it, so the
render reads what the performance heard.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from .errors import ParameterError, SetError
from .sources import LatentFrames, Source

__all__ = ["LiveSource", "LiveFrames", "quantise24", "RING_S"]

RING_S = 60.0              # seconds of live frames kept (rewinds reach back a lookahead at most)
_FULL_SCALE = float(1 << 23)


def quantise24(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(float32 samples, int32 for a 24-bit file): the values a 24-bit FLAC holds, exactly as
    reading the file back gives them."""
    q = np.clip(np.rint(np.asarray(audio, dtype=np.float64) * _FULL_SCALE), -_FULL_SCALE, _FULL_SCALE - 1)
    return (q / _FULL_SCALE).astype(np.float32), (q.astype(np.int32) << 8)


class LiveFrames(LatentFrames):
    """A ring of latent frames written as they are encoded: row 0 the frame of silence, row
    ``1 + i % ring`` frame ``i``. Each frame arena it is placed in gets the rows written after
    (:meth:`mirror`)."""

    live = True

    def __init__(self, latent: int, ring: int, hop: int, silence: tuple[np.ndarray, np.ndarray]):
        mu = np.zeros((ring + 1, latent), dtype=np.float32)
        logvar = np.zeros((ring + 1, latent), dtype=np.float32)
        mu[0], logvar[0] = silence
        super().__init__(mu, logvar, hop, tail=False)
        self.ring = ring
        self.lock = threading.Lock()
        self._mirrors: list[tuple[object, int]] = []

    def mirror(self, arena, offset: int) -> None:
        """``arena`` holds these rows from ``offset`` (called with :attr:`lock` held)."""
        self._mirrors.append((arena, offset))

    def write(self, first: int, mu: np.ndarray, logvar: np.ndarray) -> None:
        """Frames ``first, first + 1, ...`` encoded."""
        rows = 1 + (np.arange(first, first + mu.shape[0]) % self.ring)
        with self.lock:
            self.mu[rows], self.logvar[rows] = mu, logvar
            for arena, offset in self._mirrors:
                arena.write_live(self, offset + rows, mu, logvar)


class LiveSource(Source):
    """Input ``channel`` of the device, delayed by ``delay`` engine samples, from ``origin``
    (the engine sample its recording starts at), recorded in the set as ``file``."""

    def __init__(self, *, name: str, channel: int, delay: int, origin: int, sample_rate: int,
                 file: str, audio: np.ndarray | None = None, recorder=None):
        super().__init__(np.zeros(0, dtype=np.float32) if audio is None else audio,
                         sample_rate=sample_rate, name=name,
                         origin={"kind": "live", "file": str(file), "channel": int(channel),
                                 "delay": int(delay), "origin": int(origin)})
        self.channel, self.delay, self.start_sample, self.file = int(channel), int(delay), int(origin), str(file)
        self.recorder = recorder
        identity = f"live:{file}:{channel}:{delay}:{origin}:{sample_rate}"
        self.audio_hash = hashlib.sha256(identity.encode()).hexdigest()

    @classmethod
    def recorded(cls, folder: Path, origin: dict, *, name: str, rate: int) -> "LiveSource":
        """The source as the set recorded it (``origin``: the record's), read from its FLAC."""
        import soundfile as sf
        path = Path(folder) / origin["file"]
        try:
            audio, file_rate = sf.read(os.fsencode(path), dtype="float32", always_2d=True)
        except (OSError, RuntimeError) as exc:
            raise SetError(f"the recording of live input {name!r} ({path}) cannot be read: {exc}") from None
        if file_rate != rate:
            raise SetError(f"{path} is at {file_rate} Hz; the set plays at {rate} Hz")
        return cls(name=name, channel=origin["channel"], delay=origin["delay"], origin=origin["origin"],
                   sample_rate=rate, file=origin["file"], audio=audio[:, 0].copy())

    def __repr__(self) -> str:
        return (f"<live input {self.name!r}: channel {self.channel}, delay "
                f"{1000 * self.delay / self.sample_rate:.0f} ms>")

    def frames(self, codec, hop: int, *, tail: bool = True) -> LatentFrames:
        if not isinstance(hop, (int, np.integer)) or hop <= 0:
            raise ParameterError(f"hop={hop!r} must be a positive number of samples")
        if self.recorder is not None:
            return self.recorder.track(codec, int(hop))
        key = (codec.content_hash, int(hop))
        with self._lock:
            cached = self._frames.get(key)
            if cached is None:
                cached = self._frames[key] = self._recorded_frames(codec, int(hop))
        return cached

    def _recorded_frames(self, codec, hop: int) -> LatentFrames:
        silence = codec.encode(np.zeros((1, codec.window), dtype=np.float32))
        audio, window = self.audio, codec.window
        mus, logvars = [silence[0]], [silence[1]]
        if audio.shape[0] >= window:
            windows = np.lib.stride_tricks.sliding_window_view(audio, window)[::hop]
            for start in range(0, windows.shape[0], 256):
                mu, logvar = codec.encode(np.ascontiguousarray(windows[start:start + 256]))
                mus.append(mu)
                logvars.append(logvar)
        return LatentFrames(np.concatenate(mus), np.concatenate(logvars), hop, tail=False)

    def rows(self, hop: int, samples: np.ndarray, count: int) -> np.ndarray:
        """The rows of this source's frames (``count`` of them) that windows starting at engine
        ``samples`` read: the input from ``delay`` before, the silence before it began."""
        index = np.floor((np.asarray(samples, dtype=np.float64) - self.delay - self.start_sample) / hop)
        if self.recorder is not None:
            rows = 1 + np.mod(index, count - 1)
        else:
            rows = 1 + np.minimum(index, count - 2)
        return np.where(index < 0, 0, rows).astype(np.float32)

    # a live input has no end yet: the latent series operators do not apply
    def _no_series(self, *_args, **_kwargs):
        raise ParameterError("a live input has no end yet: reverse, slice, freeze, scrub and "
                             "offset apply to recorded sources")

    reverse = slice = freeze = scrub = offset = _no_series
