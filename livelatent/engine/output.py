"""The engine's side of the audio process: the shared ring, and the process itself.

:class:`SharedRing` is the ring of samples that :mod:`.audio_process` plays: a file in shared
memory (``/dev/shm`` where there is one), mapped here and there. Positions are absolute sample
counts; the engine's decode thread writes samples and moves ``written``, the audio process moves
``read``. :class:`AudioProcess` starts that program, waits for its messages and stops it.
"""

from __future__ import annotations

import itertools
import json
import mmap
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path

import numpy as np

from ..errors import DeviceError, DeviceNotFound
from . import audio_process as program
from .audio_process import (CPU_LOAD, IN_LAG, IN_WRITTEN, READ, STAMP_FRAME, STAMP_NS, STAMP_SEQ,
                            UNDERRUNS, WRITTEN, XRUNS, layout_size, map_ring)

__all__ = ["SharedRing", "AudioProcess", "list_devices", "explain", "PROGRAM"]

PROGRAM = Path(program.__file__)
_names = itertools.count()
_OPEN_TIMEOUT_S = 20.0


def _shared_folder() -> Path:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


class SharedRing:
    """Samples by absolute position in a mapped file; capacity is a power of two.

    ``written`` (set here) and ``read`` (set by the audio process) live in the file's header.
    The file is removed from the folder as soon as both sides have mapped it (see
    :meth:`unlink`), so nothing is left behind however the processes end.
    """

    def __init__(self, capacity: int, channels: int = 2, inputs: int = 0):
        if capacity & (capacity - 1):
            raise ValueError("ring capacity must be a power of two")
        self.capacity, self.channels, self.mask = capacity, channels, capacity - 1
        self.inputs = inputs
        self.path = _shared_folder() / f"livelatent-ring-{os.getpid()}-{next(_names)}"
        size = layout_size(capacity, channels, inputs)
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self.ints, self.floats, self.data, self.taken = map_ring(self._map, capacity, channels, inputs)

    # counters
    written = property(lambda self: int(self.ints[WRITTEN]),
                       lambda self, value: self.ints.__setitem__(WRITTEN, value))
    read = property(lambda self: int(self.ints[READ]))
    underruns = property(lambda self: int(self.ints[UNDERRUNS]))
    xruns = property(lambda self: int(self.ints[XRUNS]))
    cpu_load = property(lambda self: float(self.floats[CPU_LOAD]))
    input_written = property(lambda self: int(self.ints[IN_WRITTEN]))
    input_lag = property(lambda self: int(self.ints[IN_LAG]))

    def input_samples(self, start: int, end: int) -> np.ndarray:
        """A copy of the input taken at positions ``[start, end)`` (those still in the ring)."""
        return self.taken[np.arange(start, end) & self.mask]

    def stamp(self) -> tuple[int, int] | None:
        """(device frame, nanoseconds): when the last block played reaches the output (see
        :data:`~.audio_process.STAMP_CLOCK`); None before the first."""
        ints = self.ints
        for _ in range(100):
            seq = int(ints[STAMP_SEQ])
            frame, ns = int(ints[STAMP_FRAME]), int(ints[STAMP_NS])
            if seq == 0:
                return None
            if not seq & 1 and int(ints[STAMP_SEQ]) == seq:
                return frame, ns
        return None

    def reset(self, position: int) -> None:
        """Empty, with ``read = written = position`` (before the audio process starts)."""
        self.ints[:] = 0
        self.ints[READ] = self.ints[WRITTEN] = position

    def write(self, position: int, block: np.ndarray) -> None:
        """Store ``block`` (frames, channels) at absolute ``position``; ``written`` is not moved."""
        frames = block.shape[0]
        start = position & self.mask
        first = min(frames, self.capacity - start)
        self.data[start:start + first] = block[:first]
        if first < frames:
            self.data[:frames - first] = block[first:]

    def samples(self, start: int, end: int) -> np.ndarray:
        """A copy of the samples at absolute positions ``[start, end)``."""
        return self.data[np.arange(start, end) & self.mask]

    def unlink(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def close(self) -> None:
        self.unlink()
        # its counters stay readable (a status read from another thread may come after this)
        self.ints, self.floats, self.data, self.taken = self.ints.copy(), self.floats.copy(), None, None
        try:
            self._map.close()
        except BufferError:    # a view is still held somewhere: the mapping goes with it
            pass


class AudioProcess:
    """The running :mod:`.audio_process`: start it, wait for its messages, stop it."""

    def __init__(self, ring: SharedRing, *, device, samplerate: int, blocksize: int, latency="low"):
        config = {"ring": str(ring.path), "capacity": ring.capacity, "channels": ring.channels,
                  "inputs": ring.inputs,
                  "device": device, "samplerate": samplerate, "blocksize": blocksize,
                  "latency": latency}
        self.messages: queue.SimpleQueue = queue.SimpleQueue()
        self.stderr: deque[str] = deque(maxlen=40)
        self.device: dict | None = None
        self.latency = 0.0
        self.samplerate = samplerate
        self.lost = threading.Event()
        self._stopping = False
        # in a process group of its own: the terminal's Ctrl-C and Ctrl-Z are the REPL's
        self._process = subprocess.Popen(
            [sys.executable, str(PROGRAM), json.dumps(config)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1, process_group=0)
        threading.Thread(target=self._read_stdout, name="livelatent-audio-messages", daemon=True).start()
        threading.Thread(target=self._read_stderr, name="livelatent-audio-stderr", daemon=True).start()

    def _read_stdout(self) -> None:
        for line in self._process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                self.stderr.append(line.rstrip())
                continue
            if message.get("event") == "lost":
                self.lost.set()
            self.messages.put(message)
        if not self._stopping:
            self.lost.set()             # it ended without being asked to: the device is gone
        self.messages.put({"event": "exited"})

    def _read_stderr(self) -> None:
        for line in self._process.stderr:
            self.stderr.append(line.rstrip())

    def wait_for(self, *events: str, timeout: float = _OPEN_TIMEOUT_S) -> dict:
        """The next message among ``events``; an ``error`` or an exit raises DeviceError."""
        while True:
            try:
                message = self.messages.get(timeout=timeout)
            except queue.Empty:
                self.kill()
                raise DeviceError(f"the audio process did not answer within {timeout:g} s"
                                  f"{self._stderr_tail()}") from None
            kind = message.get("event")
            if kind in events:
                return message
            if kind == "error":
                missing = message.get("kind") == "device" and any(
                    d["max_output_channels"] > 0 for d in message.get("devices") or [])
                raise (DeviceNotFound if missing else DeviceError)(explain(message))
            if kind == "exited":
                raise DeviceError(f"the audio process ended (exit status {self._process.wait()})"
                                  f"{self._stderr_tail()}")

    def open(self) -> dict:
        """Wait until the stream is open; returns the device. Raises DeviceError."""
        message = self.wait_for("opened")
        self.device, self.latency = message["device"], float(message["latency"])
        self.samplerate = int(message["samplerate"])
        return self.device

    def start(self) -> None:
        self._send("start")
        self.wait_for("started")

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the stream (the ring's ``read`` is final when this returns) and let the process
        leave; one that does not is killed."""
        self._stopping = True
        try:
            self._send("stop")
            try:
                self.wait_for("stopped", timeout=timeout)
            except DeviceError:
                pass                      # gone already, or stuck: killed below
            try:
                self._process.stdin.close()
            except OSError:
                pass
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        except BaseException:      # a Ctrl-C meanwhile (it no longer reaches the process itself):
            self.kill()            # the process must not go on holding the device
            raise

    def kill(self) -> None:
        self._stopping = True
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def _send(self, line: str) -> None:
        try:
            self._process.stdin.write(line + "\n")
            self._process.stdin.flush()
        except (OSError, ValueError):
            pass          # it has gone: wait_for says so

    def _stderr_tail(self) -> str:
        lines = [line for line in self.stderr if line.strip()]
        return f"; it said: {' | '.join(lines[-4:])}" if lines else ""


def explain(message: dict) -> str:
    """The audio process's error as the performer should read it."""
    text = message.get("message", "unknown error")
    devices = message.get("devices")
    where = program.describe_match_failure(devices) if devices is not None else ""
    if devices is not None and not any(d["max_output_channels"] > 0 for d in devices):
        # the device asked for (a name, an index) is named; a plain "none" needs no repeating
        return where if text == "no audio output devices" else f"{text}: {where}"
    if message.get("kind") == "open":
        device = message.get("device") or {}
        rates = message.get("rates")
        offers = (f"; it offers {', '.join(f'{r} Hz' for r in rates)}" if rates
                  else "; it accepted none of the common rates")
        if "jack" in str(device.get("hostapi", "")).lower():
            offers += (f" (a JACK device runs only at the JACK server's rate, "
                       f"{device.get('default_samplerate', 0):.0f} Hz here)")
        text = (f"cannot open output device {device.get('name')!r} ({device.get('hostapi')}) at "
                f"any usable rate: {text}{offers}")
    return f"{text}; {where}" if where else text


def list_devices(timeout: float = _OPEN_TIMEOUT_S) -> dict:
    """PortAudio's devices, listed by a fresh audio process (so a JACK server started a moment
    ago is seen, and PortAudio never runs in this process). Raises DeviceError."""
    try:
        done = subprocess.run([sys.executable, str(PROGRAM), "--list"], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"listing the audio devices took more than {timeout:g} s") from None
    for line in done.stdout.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if message.get("event") == "devices":
            return message
        if message.get("event") == "error":
            raise DeviceError(explain(message))
    how = (f"killed by {signal.Signals(-done.returncode).name}: PortAudio or the sound system "
           f"below it gave up" if done.returncode < 0 and -done.returncode in
           signal.valid_signals() else f"exit status {done.returncode}")
    said = done.stderr.strip()[-300:]
    raise DeviceError(f"the audio process could not list the devices ({how})"
                      + (f": {said}" if said else ""))
