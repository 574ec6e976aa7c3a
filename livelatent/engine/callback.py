"""The only code that runs inside the audio callback.

Inside :meth:`RingBuffer.callback` nothing may call torch, allocate arrays, log, print, touch
files, or wait on a lock: it copies finished samples from a preallocated ring buffer into the
device's buffer and moves two counters. The decode thread fills the ring ahead of ``read``
and publishes how far it got in ``written``; both are plain ints, whose assignment is atomic
under the GIL. When less than a block is ready the callback writes silence, counts an underrun
and does not advance, so the performance pauses rather than skipping.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RingBuffer"]


class RingBuffer:
    """Stereo float32 samples by absolute position; capacity is a power of two."""

    def __init__(self, capacity: int, channels: int = 2):
        if capacity & (capacity - 1):
            raise ValueError("ring capacity must be a power of two")
        self.data = np.zeros((capacity, channels), dtype=np.float32)
        self.capacity = capacity
        self.mask = capacity - 1
        self.written = 0      # samples [0, written) are final (set by the decode thread)
        self.read = 0         # samples [0, read) were handed to the device (set by the callback)
        self.underruns = 0    # blocks we had nothing for
        self.xruns = 0        # blocks the host reported as output underflow

    def reset(self, position: int = 0) -> None:
        self.written = self.read = position
        self.underruns = self.xruns = 0

    def write(self, position: int, block: np.ndarray) -> None:
        """Store ``block`` (frames, channels) at absolute ``position`` (decode thread)."""
        frames = block.shape[0]
        start = position & self.mask
        first = min(frames, self.capacity - start)
        self.data[start:start + first] = block[:first]
        if first < frames:
            self.data[:frames - first] = block[first:]

    def samples(self, start: int, end: int) -> np.ndarray:
        """A copy of the samples at absolute positions ``[start, end)`` (decode thread)."""
        index = np.arange(start, end) & self.mask
        return self.data[index]

    def callback(self, outdata, frames, time, status):  # runs in the audio thread
        if status.output_underflow:
            self.xruns += 1
        position = self.read
        if self.written - position < frames:
            outdata.fill(0)
            self.underruns += 1
            return
        start = position & self.mask
        first = self.capacity - start
        if first >= frames:
            outdata[:] = self.data[start:start + frames]
        else:
            outdata[:first] = self.data[start:]
            outdata[first:] = self.data[:frames - first]
        self.read = position + frames
