"""Test helpers for real-time audio without a sound card.

A private JACK server with the dummy driver stands in for the sound card: it pulls audio at
real-time pace, PortAudio (hence sounddevice and livelatent) sees it as the device ``system``,
and :class:`JackRecorder` captures, bit for bit, what a stream sent to it. Tests then compare
the capture with an offline render (:func:`align`, :func:`max_abs_diff_aligned`).

Each server gets a unique name (``jackd -n NAME``) and ``JACK_DEFAULT_SERVER=NAME`` is set in
``os.environ`` while it runs, so PortAudio in this process, and every subprocess started
meanwhile, finds that server and no other.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

import numpy as np

__all__ = ["JackServer", "running_jack_server", "JackRecorder", "RecorderProcess", "SUBPROCESS_PORTS",
           "align", "max_abs_diff_aligned", "aligned_gaps", "jackd_available", "until_stream_stopped", "late_spans"]

_running_names: set[str] = set()
_open_recorders: "weakref.WeakSet[JackRecorder]" = weakref.WeakSet()

#: Ports of the stream an audio process opens on the test's server. livelatent plays through a
#: child process (PortAudio never runs in the test's own process); the first such client is
#: ``PortAudio``, another one alive at the same time ``PortAudio-01``...
SUBPROCESS_PORTS = r"^PortAudio(-[0-9]+)?:out_"
SUBPROCESS_INPUTS = r"^PortAudio(-[0-9]+)?:in_"      # the same stream's inputs (live input)


try:   # loaded here, not in the child: between fork and exec the child must not import
    _LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:
    _LIBC = None
_PR_SET_PDEATHSIG = 1
# As root, jackd runs realtime (its default), and so do its clients' process threads (our
# stream's callback, the recorder): scheduling hiccups of a busy machine then no longer make
# the dummy driver miss periods. Without the privilege it would fail, so others ask for none.
_REALTIME = () if os.geteuid() == 0 else ("--no-realtime",)


def _die_with_parent() -> None:
    """In the jackd child: ask Linux to kill it when the test process dies, however it dies.

    A test run killed by a timeout skips its fixtures' teardown; its servers would live on, and
    a machine runs only a handful of JACK servers (later runs then fail to start one).
    """
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def jackd_available() -> bool:
    """Whether the ``jackd`` and ``jack_lsp`` programs are installed (Debian package jackd2)."""
    return shutil.which("jackd") is not None and shutil.which("jack_lsp") is not None


class JackServer:
    """A running ``jackd`` with the dummy driver (see :func:`running_jack_server`)."""

    def __init__(self, *, name: str, rate: int, period: int, log_path: Path, process: subprocess.Popen):
        self.name = name
        self.rate = rate
        self.period = period
        self.log_path = log_path
        self.process = process

    def log(self) -> str:
        """Everything jackd has printed so far."""
        return self.log_path.read_text(errors="replace")

    def xruns(self) -> int:
        """How many xruns jackd has logged (a client that did not finish its period in time)."""
        return sum("XRun" in line for line in self.log().splitlines())

    def ports(self) -> list[str]:
        """Names of all the server's ports, as ``jack_lsp`` lists them."""
        listed = subprocess.run(["jack_lsp", "-s", self.name], capture_output=True, text=True, timeout=10)
        return listed.stdout.split() if listed.returncode == 0 else []

    def wait_until_gone(self, pattern: str, timeout_s: float = 5.0) -> None:
        """Wait until no port matches ``pattern``: a client that has left keeps its ports a
        moment longer, and a recorder started then would find the old ones."""
        deadline = time.monotonic() + timeout_s
        while any(re.match(pattern, port) for port in self.ports()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"ports like {pattern!r} stayed on {self.name!r} for {timeout_s} s")
            time.sleep(0.01)

    def restart(self, ready_timeout_s: float = 15.0) -> None:
        """Start jackd again, under the same name, after :meth:`stop` (a server that came back)."""
        if self.process.poll() is None:
            raise RuntimeError(f"the JACK server {self.name!r} is still running")
        self.process = _start_jackd(self.name, self.rate, self.period, self.log_path)
        _wait_until_ready(self, ready_timeout_s)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop jackd and wait until it has exited (with a client connected it can take seconds)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        _remove_shared_memory(self.name)

    def __repr__(self):
        return f"JackServer(name={self.name!r}, rate={self.rate}, period={self.period})"


def _start_jackd(name: str, rate: int, period: int, log_path: Path, playback: int = 2,
                 capture: int = 2) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            ["jackd", "-n", name, *_REALTIME, "-d", "dummy", "-r", str(rate), "-p", str(period),
             "-P", str(playback), "-C", str(capture)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)


def _wait_until_ready(server: "JackServer", ready_timeout_s: float) -> None:
    deadline = time.monotonic() + ready_timeout_s
    while not _accepts_clients(server.name):
        if server.process.poll() is not None:
            raise RuntimeError(f"jackd exited with code {server.process.returncode}:\n{server.log()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"jackd did not accept clients within {ready_timeout_s} s:\n{server.log()}")
        time.sleep(0.02)


def _accepts_clients(name: str) -> bool:
    return subprocess.run(["jack_lsp", "-s", name], capture_output=True, timeout=10).returncode == 0


@contextlib.contextmanager
def running_jack_server(*, period: int = 1024, rate: int = 44100, log_dir: Path, ready_timeout_s: float = 15.0,
                        playback: int = 2, capture: int = 2):
    """Start a private dummy-driver JACK server, make it the default one, and stop it afterwards.

    While it runs, ``JACK_DEFAULT_SERVER`` names it (for this process and its subprocesses: the
    audio processes that play livelatent's streams find it there). On exit the environment is
    restored, jackd stopped and waited for, and any shared memory it left removed.

    Yields
    ------
    JackServer
    """
    # One name per test process, reused by each server it starts in turn: JACK keeps a slot per
    # server name in its shared registry, and after about ten distinct names in one process a
    # new server never accepted clients (measured). Only a server started inside another's
    # lifetime gets a name of its own.
    name = f"livelatent-test-{os.getpid()}"
    for number in itertools.count(1):
        if name not in _running_names:
            break
        name = f"livelatent-test-{os.getpid()}-{number}"
    _running_names.add(name)
    log_path = Path(log_dir) / f"jackd-{name}-{time.monotonic_ns()}.log"
    saved_env = {key: os.environ.get(key) for key in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    process = _start_jackd(name, rate, period, log_path, playback, capture)
    server = JackServer(name=name, rate=rate, period=period, log_path=log_path, process=process)
    try:
        _wait_until_ready(server, ready_timeout_s)
        os.environ["JACK_DEFAULT_SERVER"] = name
        os.environ["JACK_NO_START_SERVER"] = "1"  # never let a client spawn a server of its own
        yield server
    finally:
        for recorder in list(_open_recorders):   # a test that failed may have left one open
            if recorder._server_name == name:
                recorder.close()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()
        _running_names.discard(name)


def _remove_shared_memory(name: str) -> None:
    """A jackd that was killed leaves its shared memory (``/dev/shm/jack_NAME_*`` and the
    semaphores ``jack_sem.*_NAME_*``) behind."""
    shm = Path("/dev/shm")
    for leftover in [*shm.glob(f"jack_{name}_*"), *shm.glob(f"jack_sem.*_{name}_*")]:
        with contextlib.suppress(OSError):
            leftover.unlink()


def livelatent_midi_input(server, timeout_s: float = 10.0) -> str:
    """The name of livelatent's own MIDI input port (``livelatent:livelatent``, as JACK MIDI
    names it) on ``server``, once it is there."""
    deadline = time.monotonic() + timeout_s
    while True:
        ports = server.ports()
        ours = [p for p in ports if p.startswith("livelatent") and p.split(":")[-1].startswith("livelatent")]
        if ours:
            return ours[0]
        if time.monotonic() > deadline:
            raise TimeoutError(f"no MIDI input port of livelatent's on JACK: {ports}")
        time.sleep(0.05)


class _Client:
    """A JACK client of the tests': ``with`` starts it, and it leaves the server once, however
    the block ends (a client still open when its server stops crashes the interpreter)."""

    _closed = False

    def close(self) -> None:
        """Leave the JACK server (idempotent)."""
        if not self._closed:
            self._closed = True
            self._client.deactivate(ignore_errors=True)
            self._client.close(ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


class JackPlayer(_Client):
    """A JACK client that plays ``audio`` (frames, channels), looped, into the input ports that
    match ``ports`` (a regular expression), from when :meth:`start` finds them."""

    def __init__(self, server, audio: np.ndarray, ports: str, *, client_name: str = "livelatent-player"):
        import jack

        self._audio = np.ascontiguousarray(audio, dtype=np.float32)
        self._spec = ports
        name = server if isinstance(server, str) else server.name
        self._client = jack.Client(client_name, no_start_server=True, servername=name)
        self._outputs = [self._client.outports.register(f"out_{i + 1}") for i in range(self._audio.shape[1])]
        self._position = 0
        self._closed = False
        self._client.set_process_callback(self._process)

    def _process(self, frames):       # JACK's thread: copies only
        index = (self._position + np.arange(frames)) % self._audio.shape[0]
        for channel, port in enumerate(self._outputs):
            port.get_array()[:] = self._audio[index, channel]
        self._position += frames

    def start(self, *, timeout_s: float = 20.0) -> "JackPlayer":
        """Wait for the input ports to play into and connect them (``ports=None``: play, and let
        the client reading this one connect itself)."""
        try:
            deadline = time.monotonic() + timeout_s
            while self._spec is not None and len(targets := [p.name for p in self._client.get_ports(
                    name_pattern=self._spec, is_audio=True, is_input=True)]) < len(self._outputs):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no {len(self._outputs)} input ports match {self._spec!r}")
                time.sleep(0.01)
            self._client.activate()
            for port, target in zip(self._outputs, targets if self._spec is not None else ()):
                self._client.connect(port, target)
        except BaseException:
            self.close()
            raise
        return self



class JackRecorder(_Client):
    """Record what some JACK output ports play, every frame, with its JACK frame time.

    Parameters
    ----------
    server : JackServer or str
        The server (or its name).
    ports : str or sequence of str
        A client name (``"PortAudio"``: its audio outputs, in order), a regular expression
        containing ``:``, or exact port names. A stream opened in this process plays from
        ``PortAudio:out_0`` and ``PortAudio:out_1``; PortAudio in a subprocess finds the name
        ``PortAudio`` taken (this process holds it since :func:`running_jack_server`), so its
        ports are ``PortAudio-01:out_0`` ..., matched by :data:`SUBPROCESS_PORTS`.
    channels : int
        Ports to record; the first ``channels`` ports that match.
    seconds : float
        Capacity of the preallocated buffer; frames beyond it are dropped (see ``overflowed``).

    Examples
    --------
    >>> with JackRecorder(server, "PortAudio") as recorder:      # doctest: +SKIP
    ...     stream.start(); ...; stream.stop()
    ...     recorder.wait_frames(2 * server.period)
    ...     captured = recorder.stop()                            # (frames, 2) float32
    """

    def __init__(self, server, ports="PortAudio", *, channels: int = 2, seconds: float = 10.0,
                 client_name: str = "livelatent-recorder"):
        import jack

        self._server_name = server if isinstance(server, str) else server.name
        self._ports_spec = ports
        self._client = jack.Client(client_name, no_start_server=True, servername=self._server_name)
        rate = self._client.samplerate
        capacity = int(round(seconds * rate))
        self._buffer = np.zeros((capacity, channels), dtype=np.float32)
        max_blocks = capacity // 16 + 2  # JACK periods are at least 16 frames
        self._block_starts = np.zeros(max_blocks, dtype=np.int64)     # buffer index of each block
        self._block_times = np.zeros(max_blocks, dtype=np.int64)      # its JACK frame time
        self._inputs = [self._client.inports.register(f"in_{i + 1}") for i in range(channels)]
        self._written = 0
        self._blocks = 0
        self._recording = False
        self._closed = False
        self.overflowed = False
        self.xruns = 0
        self.late_spans: list[tuple[int, int]] = []
        self.sources: list[str] = []
        self._client.set_process_callback(self._process)
        self._client.set_xrun_callback(self._xrun)
        _open_recorders.add(self)

    # Runs on JACK's thread: only copies into preallocated arrays.
    def _process(self, frames):
        if not self._recording:
            return
        start, end = self._written, self._written + frames
        if end > len(self._buffer) or self._blocks >= len(self._block_starts):
            self.overflowed = True
            return
        for channel, port in enumerate(self._inputs):
            self._buffer[start:end, channel] = port.get_array()
        self._block_starts[self._blocks] = start
        self._block_times[self._blocks] = self._client.last_frame_time
        self._blocks += 1
        self._written = end

    def _xrun(self, delay_usecs):
        self.xruns += 1

    def _find_sources(self) -> list[str]:
        spec = self._ports_spec
        if not isinstance(spec, str):
            names = {p.name for p in self._client.get_ports(is_audio=True, is_output=True)}
            return list(spec) if all(name in names for name in spec) else []
        pattern = spec if ":" in spec else f"^{re.escape(spec)}:"
        return [p.name for p in self._client.get_ports(name_pattern=pattern, is_audio=True, is_output=True)]

    def start(self, *, timeout_s: float = 10.0) -> "JackRecorder":
        """Wait until the ports to record exist, connect them, and start recording.

        On failure the client is closed at once: a JACK client left open when its server stops
        crashes the interpreter when it is garbage-collected.
        """
        try:
            deadline = time.monotonic() + timeout_s
            while len(sources := self._find_sources()) < len(self._inputs):
                if time.monotonic() > deadline:
                    existing = [p.name for p in self._client.get_ports()]
                    raise TimeoutError(f"no {len(self._inputs)} output ports match {self._ports_spec!r} on "
                                       f"JACK server {self._server_name!r} after {timeout_s} s; ports: {existing}")
                time.sleep(0.01)
            self.sources = sources[:len(self._inputs)]
            self._client.activate()
            for source, port in zip(self.sources, self._inputs):
                self._client.connect(source, port)
        except BaseException:
            self.close()
            raise
        self._recording = True
        return self

    def frames_recorded(self) -> int:
        return self._written

    def wait_frames(self, frames: int, *, timeout_s: float = 10.0) -> None:
        """Wait until ``frames`` more frames have been recorded (JACK's clock, not the wall's)."""
        target = self._written + frames
        deadline = time.monotonic() + timeout_s
        while self._written < target and not self.overflowed:
            if time.monotonic() > deadline:
                raise TimeoutError(f"recorded {self._written} of {target} frames in {timeout_s} s: "
                                   "is the JACK server running?")
            time.sleep(0.005)

    def frame_time(self) -> int:
        """JACK's current frame time (an estimate between periods), e.g. when code was evaluated."""
        return self._client.frame_time

    def frame_time_at(self, index: int) -> int:
        """JACK frame time at which captured sample ``index`` was played."""
        starts = self._block_starts[:self._blocks]
        block = int(np.searchsorted(starts, index, side="right")) - 1
        if block < 0 or index >= self._written:
            raise IndexError(f"sample {index} was not recorded (0..{self._written - 1})")
        return int(self._block_times[block] + index - starts[block])

    def stop(self) -> np.ndarray:
        """Stop recording; the frames recorded so far, shape (frames, channels), float32.
        :attr:`late_spans` then says which of them this recorder read a period late."""
        self._recording = False
        self.close()
        self.late_spans = late_spans(self._block_starts[:self._blocks], self._block_times[:self._blocks],
                                     self._written)
        return self._buffer[:self._written].copy()

    def close(self) -> None:
        self._recording = False
        super().close()


def late_spans(starts, times, written: int) -> list[tuple[int, int]]:
    """The spans ``[start, end)`` of a capture that its recorder read a period late.

    A recorder whose process callback misses its period (JACK logs an XRun naming it: on a busy
    machine its thread may wait for this interpreter's GIL) reads its ports only once the next
    period is in them, and again in that period's own call: its period and the next one carry
    the same JACK frame time, and the first holds the second's samples. What was played in the
    period it missed is not known; comparisons leave those frames out (and say so).
    """
    starts, times = np.asarray(starts), np.asarray(times)
    ends = np.append(starts[1:], written)
    repeated = np.flatnonzero(times[1:] == times[:-1])
    return [(int(starts[i]), int(ends[i])) for i in repeated]


def _as_frames(audio) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    return audio[:, None] if audio.ndim == 1 else audio


def align(captured, reference, *, probe: int = 64, tolerance: float = 1e-5) -> int:
    """Where ``reference`` starts inside ``captured``: ``captured[offset + i] ~ reference[i]``.

    Looks for ``probe`` samples of the reference, from its first clearly audible one, in the
    capture (each within ``tolerance``: a live stream and a render decode in other batch sizes,
    so they differ in the last bits); failing that, takes the peak of the FFT cross-correlation.
    The offset is negative when the capture began after the reference did.

    Parameters
    ----------
    captured, reference : array, shape (frames,) or (frames, channels)
        Same number of channels.
    """
    cap, ref = _as_frames(captured), _as_frames(reference)
    if cap.shape[1] != ref.shape[1]:
        raise ValueError(f"captured has {cap.shape[1]} channels, reference {ref.shape[1]}")
    if not np.any(np.abs(ref) > 1e-3):
        raise ValueError("the reference is silent: nothing to align")
    found = _find(cap, ref, probe, tolerance)            # the reference's start in the capture
    if found is not None:
        return found
    found = _find(ref, cap, probe, tolerance)            # or the capture's start in the reference
    if found is not None:
        return -found
    size = 1 << int(np.ceil(np.log2(len(cap) + len(ref))))
    correlation = np.fft.irfft(np.fft.rfft(cap.sum(axis=1), size) * np.conj(np.fft.rfft(ref.sum(axis=1), size)),
                               size)
    lag = int(np.argmax(correlation))
    return lag if lag < len(cap) else lag - size


def _find(haystack, needle, probe: int, tolerance: float):
    """Where ``needle`` starts in ``haystack`` (by ``probe`` samples from its first audible one)."""
    loud = np.flatnonzero(np.any(np.abs(needle) > 1e-3, axis=1))
    if len(loud) == 0:
        return None
    first = int(loud[0])
    head = needle[first:first + probe]
    for position in np.flatnonzero(np.all(np.abs(haystack - needle[first]) <= tolerance, axis=1)):
        window = haystack[position:position + len(head)]
        if window.shape == head.shape and np.all(np.abs(window - head) <= tolerance):
            return int(position) - first
    return None


def max_abs_diff_aligned(captured, reference, *, offset: int | None = None) -> float:
    """Largest sample difference where the aligned capture and reference overlap.

    ``offset`` defaults to :func:`align`'s answer; raises ``ValueError`` when they do not overlap.
    """
    cap, ref = _as_frames(captured), _as_frames(reference)
    _, gap = aligned_gaps(cap, ref, align(cap, ref) if offset is None else offset)
    return float(gap.max())


def aligned_gaps(captured, reference, offset: int, late=()) -> tuple[int, np.ndarray]:
    """``(first, gap)``: where ``captured[offset + i]`` and ``reference[i]`` overlap, the largest
    difference over channels of each frame, ``gap[i - first]``; zero over ``late`` (spans of the
    capture its recorder read a period late, :func:`late_spans`: what was played there is not
    known). Raises ``ValueError`` when they do not overlap."""
    cap, ref = _as_frames(captured), _as_frames(reference)
    first, last = max(0, -offset), min(len(ref), len(cap) - offset)
    if last <= first:
        raise ValueError(f"at offset {offset} the capture ({len(cap)} frames) and the reference "
                         f"({len(ref)} frames) do not overlap")
    gap = np.abs(cap[first + offset:last + offset] - ref[first:last]).max(axis=1)
    for start, end in late:
        gap[max(0, start - offset - first):max(0, end - offset - first)] = 0.0
    return first, gap


_RECORDER_CHILD = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import jackutil
recorder = jackutil.JackRecorder(sys.argv[2], sys.argv[3], seconds=float(sys.argv[4]),
                                 channels=int(sys.argv[7]))
print("ready", flush=True)
recorder.start(timeout_s=float(sys.argv[6]))
print("recording", flush=True)
sys.stdin.readline()
captured = recorder.stop()
np.savez(sys.argv[5], captured=captured, late=np.array(recorder.late_spans, dtype=np.int64).reshape(-1, 2))
"""


class RecorderProcess:
    """A :class:`JackRecorder` in a process of its own, whose interpreter does nothing else.

    Its JACK callback is Python, so it needs its interpreter's GIL at every period: in the
    test's process, any thread holding the GIL (a test that holds it on purpose, the one reading
    a REPL's output, a busy core's preempted thread) can make it miss a period. Here the only
    other thread waits on standard input. ``stop()`` returns the capture; ``late_spans`` then
    lists what it read late all the same (see :func:`late_spans`).
    """

    def __init__(self, server, ports="PortAudio", *, seconds: float, folder: Path, timeout_s: float = 20.0,
                 channels: int = 2, wait: bool = True):
        name = server if isinstance(server, str) else server.name
        self._path = Path(folder) / f"capture-{time.monotonic_ns()}.npz"
        self.late_spans: list[tuple[int, int]] = []
        self._child = subprocess.Popen(
            [sys.executable, "-c", _RECORDER_CHILD, str(Path(__file__).parent), name, ports, str(seconds),
             str(self._path), str(timeout_s), str(channels)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._expect("ready")
        if wait:
            self.wait_recording()

    def wait_recording(self) -> None:
        """Wait until the ports are there and it records (``wait=False`` started it before
        they were: its start-up, a Python process and a JACK client, then takes the cores
        before what is measured, not during it)."""
        self._expect("recording")

    def _expect(self, word: str) -> None:
        line = self._child.stdout.readline()
        if line.strip() != word:
            self._child.kill()
            self._child.wait()
            raise RuntimeError(f"the recorder process did not start ({word!r}): {line!r}")

    def stop(self) -> np.ndarray:
        self._child.stdin.write("stop\n")
        self._child.stdin.flush()
        self._child.wait(timeout=30)
        with np.load(self._path) as saved:
            self.late_spans = [(int(a), int(b)) for a, b in saved["late"]]
            captured = saved["captured"]
        self._path.unlink()
        return captured

    def close(self) -> None:
        if self._child.poll() is None:
            self._child.kill()
            self._child.wait()


def until_stream_stopped(captured: np.ndarray) -> np.ndarray:
    """The capture up to its last sound: after our stream stops, JACK plays silence."""
    loud = np.flatnonzero(np.any(captured != 0, axis=1))
    return captured[:loud[-1] + 1]


def hold_gil(seconds: float) -> float:
    """One C call that holds the GIL for ``seconds`` of wall time (``usleep`` called through
    ``ctypes.PyDLL``, which keeps the GIL, unlike ``CDLL``): the interpreter stalls exactly as
    long, whatever the machine's speed (a long regular expression or ``gc.collect()`` stalls it
    for as long as that machine takes). Returns how long it was held."""
    began = time.perf_counter()
    ctypes.PyDLL(None).usleep(int(seconds * 1e6))
    return time.perf_counter() - began
