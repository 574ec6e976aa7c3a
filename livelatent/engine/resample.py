"""Resampling the engine's output to a device's rate, exactly the same live and offline.

The engine runs at its model's rate; a 48 kHz interface or JACK server plays at 48 kHz. Output
sample ``m`` at the device's rate is a windowed-sinc interpolation of the engine's samples
around time ``m * rate_in / rate_out``: a pure function of its position and of the engine's
samples, with no running state. So a rewind only has to recompute the output samples whose
inputs changed, a live stream and ``livelatent render --rate`` agree sample for sample, and
renders in pieces join seamlessly. (soxr's streaming resampler keeps state that cannot be
saved and restored, so it cannot follow rewinds.)

The ratio is kept exact as two integers (48000 / 44100 = 160 / 147): output ``m`` reads phase
``m * M mod L`` of a polyphase bank of Kaiser-windowed sinc filters, ``ZEROS`` zero crossings
on each side, cut off a little below the lower Nyquist frequency.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Resampler", "StreamConverter", "ZEROS"]

ZEROS = 24            # zero crossings of the sinc on each side: 2 * ZEROS input samples per output
_KAISER_BETA = 8.6    # about 90 dB of stop-band attenuation
_ROLLOFF = 0.94       # the pass band ends at 94% of the lower Nyquist frequency


class Resampler:
    """From ``rate_in`` to ``rate_out`` (integers, any ratio); the identity when they are equal."""

    def __init__(self, rate_in: int, rate_out: int, *, zeros: int = ZEROS):
        g = math.gcd(int(rate_in), int(rate_out))
        self.rate_in, self.rate_out = int(rate_in), int(rate_out)
        self.up, self.down = self.rate_out // g, self.rate_in // g          # L, M
        self.identity = self.up == self.down
        self.reach = 0 if self.identity else int(zeros)                    # K input samples each side
        if not self.identity:
            self._bank = self._filters()

    def _filters(self) -> np.ndarray:
        """(L, 2K) taps: output phase p reads inputs base - K + 1 ... base + K."""
        L, M, K = self.up, self.down, self.reach
        cutoff = _ROLLOFF * min(1.0, L / M)                     # relative to the input's Nyquist
        phase = np.arange(L)[:, None] / L                       # phase p: output time = base + p / L
        offsets = np.arange(-K + 1, K + 1)[None, :] - phase     # input index minus exact time
        window = np.kaiser(2 * K + 1, _KAISER_BETA)
        taper = np.interp(offsets, np.arange(-K, K + 1), window)
        taps = cutoff * np.sinc(cutoff * offsets) * taper
        return (taps / taps.sum(axis=1, keepdims=True)).astype(np.float32)   # unity gain at DC

    # -- which samples depend on which ---------------------------------------------------------
    def first_output(self, sample_in: int) -> int:
        """The first output sample whose time is at or after input sample ``sample_in``."""
        return -(-sample_in * self.up // self.down)

    def input_time(self, sample_out: int) -> int:
        """The input sample at or before output sample ``sample_out``'s time."""
        return sample_out * self.down // self.up

    def ready(self, written_in: int) -> int:
        """How many output samples (from 0) the input samples ``[0, written_in)`` determine."""
        if self.identity:
            return written_in
        # output m needs inputs up to floor(m M / L) + K: floor(m M / L) <= last
        last = written_in - 1 - self.reach
        return -(-(last + 1) * self.up // self.down) if last >= 0 else 0

    def invalid_from(self, sample_in: int) -> int:
        """The first output sample that depends on input sample ``sample_in`` or later."""
        if self.identity:
            return sample_in
        return max(0, -(-(sample_in - self.reach) * self.up // self.down))

    def needed(self, first_out: int, end_out: int) -> tuple[int, int]:
        """The input samples ``[start, end)`` that outputs ``[first_out, end_out)`` read."""
        if self.identity:
            return first_out, end_out
        return (self.input_time(first_out) - self.reach + 1,
                self.input_time(end_out - 1) + self.reach + 1)

    # -- the work --------------------------------------------------------------------------------
    def process(self, inputs: np.ndarray, input_start: int, first_out: int, end_out: int) -> np.ndarray:
        """Outputs ``[first_out, end_out)`` from ``inputs`` (samples, channels), whose first row
        is input sample ``input_start`` (it must cover :meth:`needed`)."""
        if self.identity:
            return inputs[first_out - input_start:end_out - input_start]
        m = np.arange(first_out, end_out, dtype=np.int64)
        base = m * self.down // self.up                                     # floor(m M / L)
        phase = m * self.down % self.up
        index = base[:, None] - input_start + np.arange(-self.reach + 1, self.reach + 1)[None, :]
        taps = self._bank[phase]                                            # (n, 2K)
        gathered = inputs[index]                                            # (n, 2K, channels)
        return np.einsum("nk,nkc->nc", taps, gathered).astype(np.float32)


class StreamConverter:
    """Resamples a stream of blocks (a render, a stem) that starts at input sample ``start``;
    ``history`` holds the input samples just before it (silence when there are none)."""

    def __init__(self, resampler: Resampler, start: int, history: np.ndarray | None = None,
                 channels: int = 2):
        self.resampler = resampler
        reach = resampler.reach
        past = np.zeros((reach, channels), dtype=np.float32)
        if reach and history is not None and history.shape[0]:
            past[-min(reach, history.shape[0]):] = history[-reach:]
        self._buffer = past
        self._first_in = start - reach            # the input sample of the buffer's first row
        self._next_out = resampler.first_output(start)

    def push(self, block: np.ndarray) -> np.ndarray:
        """The output samples that ``block`` completes."""
        if self.resampler.identity:
            return block
        self._buffer = np.concatenate([self._buffer, block])
        return self._convert(self.resampler.ready(self._first_in + self._buffer.shape[0]))

    def flush(self, end: int, after: np.ndarray | None = None) -> np.ndarray:
        """The outputs up to input sample ``end``, reading ``after`` (the input samples that
        follow the stream, when known: a render that stops where the next one starts) and
        silence beyond it."""
        channels = self._buffer.shape[1]
        if self.resampler.identity:
            return np.zeros((0, channels), dtype=np.float32)
        tail = np.zeros((self.tail_needed, channels), dtype=np.float32)
        if after is not None:
            tail[:min(len(tail), len(after))] = after[:len(tail)]
        self._buffer = np.concatenate([self._buffer, tail])
        return self._convert(self.resampler.first_output(end))

    @property
    def tail_needed(self) -> int:
        """How many input samples after the stream's end its last outputs read."""
        return 0 if self.resampler.identity else 2 * self.resampler.reach + 2

    def _convert(self, end_out: int) -> np.ndarray:
        first = self._next_out
        if end_out <= first:
            return np.zeros((0, self._buffer.shape[1]), dtype=np.float32)
        out = self.resampler.process(self._buffer, self._first_in, first, end_out)
        self._next_out = end_out
        keep = self.resampler.needed(end_out, end_out + 1)[0]      # drop what no output reads
        self._buffer = self._buffer[keep - self._first_in:]
        self._first_in = keep
        return out
