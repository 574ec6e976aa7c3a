"""One connection to an audio device: the audio process, its ring, and the resampler between.

The engine hands a :class:`Connection` its samples at the engine's rate (:meth:`feed`), and
takes back, on a rewind, those the device has not played (:meth:`rewind`). The connection keeps
a little of what it was fed (the resampler reads around each output sample), converts to the
device's rate, and moves the ring's ``written``. Positions the playback asks about are in engine
samples: where the listener is, and the first engine sample a change can still alter.

A device that is lost (its process reports it, or ends without being asked) is noticed through
:attr:`lost`; the playback then makes a new connection.
"""

from __future__ import annotations

import numpy as np

from ..errors import DeviceError, ParameterError
from .output import AudioProcess, SharedRing
from .resample import Resampler

__all__ = ["Connection"]


class Connection:
    """The audio process playing ``device``, fed at ``engine_rate``.

    Parameters
    ----------
    device : str, int or None
        What :func:`~livelatent.engine.audio_process.match_device` accepts.
    engine_rate, blocksize : int
    ahead : int
        Engine samples decoded ahead of the listener at most (sizes the rings).
    """

    def __init__(self, *, device, engine_rate: int, blocksize: int, ahead: int, latency="low",
                 channels: int = 2, inputs: int = 0):
        if isinstance(inputs, bool) or not isinstance(inputs, int) or not 0 <= inputs <= 64:
            raise ParameterError(f"inputs={inputs!r}: input channels from 0 to 64")
        self.engine_rate = engine_rate
        self.blocksize = blocksize
        # the device may run at up to 4x the engine's rate: size the shared ring for that
        needed = 4 * (ahead + 8 * blocksize)
        self.ring = SharedRing(1 << (needed - 1).bit_length(), channels, inputs)
        self.process = AudioProcess(self.ring, device=device, samplerate=engine_rate,
                                    blocksize=blocksize, latency=latency)
        self.device: dict | None = None
        self.resampler: Resampler | None = None
        self.host_block = blocksize                       # device samples one pull may take
        self._inputs = np.zeros((1 << (ahead + 4 * blocksize + 256).bit_length(), channels),
                                dtype=np.float32)
        self._in_mask = self._inputs.shape[0] - 1
        self._fed = 0                                     # engine samples [.., fed) are here

    # -- opening ---------------------------------------------------------------------------------
    def open(self) -> dict:
        """Start the audio process and open the stream; returns the device. Raises DeviceError
        (and leaves nothing running) when it cannot."""
        try:
            self.device = self.process.open()
        except BaseException:
            self.close()
            raise
        self.ring.unlink()
        if self.ring.inputs and self.process.samplerate != self.engine_rate:
            self.close()
            raise DeviceError(f"live input needs the device at the model's rate, "
                              f"{self.engine_rate} Hz; it plays at {self.process.samplerate} Hz")
        self.resampler = Resampler(self.engine_rate, self.process.samplerate)
        # PortAudio's JACK host asks for a whole server period at once (4 blocks of 256 on a
        # 1024 period): a change must land beyond what one such pull can take
        self.host_block = max(self.blocksize, int(round(self.process.latency * self.process.samplerate)))
        return self.device

    @property
    def rate(self) -> int:
        return self.process.samplerate

    def begin(self, position: int, history: np.ndarray) -> None:
        """Play from engine sample ``position``; ``history`` holds the samples just before it."""
        start = self.resampler.first_output(position)
        self.ring.reset(start)
        reach = self.resampler.reach
        past = np.zeros((reach, self._inputs.shape[1]), dtype=np.float32)
        if reach and history.shape[0]:
            past[-min(reach, history.shape[0]):] = history[-reach:]
        self._fed = position - reach
        self.feed(self._fed, past)

    def start(self) -> None:
        self.process.start()

    # -- samples in, samples out ---------------------------------------------------------------
    def feed(self, position: int, block: np.ndarray) -> None:
        """Engine samples ``block`` from ``position`` (which must follow what was fed): the
        device samples they complete go to the ring."""
        count = block.shape[0]
        index = np.arange(position, position + count) & self._in_mask
        self._inputs[index] = block
        self._fed = position + count
        ring, resampler = self.ring, self.resampler
        end = resampler.ready(self._fed)
        first = ring.written
        if end > first:
            start_in, end_in = resampler.needed(first, end)
            inputs = self._inputs[np.arange(start_in, end_in) & self._in_mask]
            ring.write(first, resampler.process(inputs, start_in, first, end))
            ring.written = end

    def rewind(self, position: int) -> int:
        """Engine samples from ``position`` on will be fed again; returns the engine sample from
        which the caller must feed (what the device already took stays)."""
        resampler = self.resampler
        keep = max(self.ring.read + self.host_block, resampler.invalid_from(position))
        self.ring.written = min(self.ring.written, keep)
        self._fed = min(self._fed, position)
        return self._fed

    @property
    def fed(self) -> int:
        return self._fed

    # -- where the listener is -----------------------------------------------------------------
    @property
    def heard(self) -> int:
        """The engine sample the listener is at."""
        return self.resampler.input_time(self.ring.read)

    def heard_stamp(self) -> tuple[float, int] | None:
        """(engine sample, nanoseconds): a sample and when it reaches the output, from the last
        block the device played; None before the first."""
        stamp = self.ring.stamp()
        if stamp is None:
            return None
        frame, ns = stamp
        return frame * self.engine_rate / self.rate, ns

    @property
    def input_written(self) -> int:
        """The live input is here up to this engine sample (as heard when it was taken)."""
        return self.ring.input_written

    def input_samples(self, start: int, end: int) -> np.ndarray:
        """The live input at engine samples ``[start, end)`` (those still in the ring)."""
        return self.ring.input_samples(start, end)

    def untouchable(self) -> int:
        """The first engine sample no pull by the device can have used yet (a change may land
        there): the device may take one more host block at any moment."""
        resampler = self.resampler      # the last device sample it may take reads this far
        return resampler.input_time(self.ring.read + self.host_block - 1) + resampler.reach + 1

    def recent(self, count: int) -> np.ndarray:
        """The ``count`` engine samples before what the listener is at (resampling history)."""
        end = self.heard
        return self._inputs[np.arange(end - count, end) & self._in_mask].copy()

    def taken_back(self, position: int, end: int) -> np.ndarray:
        """Engine samples ``[position, end)`` that were fed (to hand back on a stop)."""
        return self._inputs[np.arange(position, end) & self._in_mask].copy()

    @property
    def lost(self) -> bool:
        return self.process.lost.is_set()

    def counters(self) -> dict:
        ring = self.ring
        return {"underruns": ring.underruns, "xruns": ring.xruns, "callback_load": ring.cpu_load}

    # -- closing ---------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop the stream; ``heard`` is final when this returns."""
        self.process.stop()

    def close(self) -> None:
        self.process.kill()
        self.ring.close()
