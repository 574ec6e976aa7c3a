"""The audio process: a small program that owns the audio stream and nothing else.

livelatent plays through PortAudio (sounddevice) from a child process, never from the
performer's interpreter:

- the audio callback runs in an interpreter that does nothing else, so a cell holding the
  GIL, a garbage collection or a long C call in the REPL cannot make it late;
- PortAudio is initialised and terminated only here. Terminating PortAudio after its JACK
  client lost the server (a busy machine's jackd drops a client that misses its deadline, or
  the server stopped) fails an assertion in PortAudio's JACK host and aborts the process: that
  was the test suite's one-in-five ``Fatal Python error: Aborted``. Here it cannot take the
  performance down, and this program leaves with ``os._exit`` without terminating PortAudio;
- a device that disappears ends this process, not the session: the engine starts a new one.

The engine decodes into a ring of samples in a shared file mapped by both processes (a
header of counters, then the samples). The engine writes samples and moves ``written``; the
callback here copies them out and moves ``read``. Each counter is an aligned 64-bit word
written by one process only, so every read sees a whole value; the engine writes samples
before it moves ``written``, and x86-64 keeps stores in order (other processors are not
tested here). When fewer than a block of samples is ready the callback plays silence, counts
an underrun and does not move ``read``: the performance pauses rather than skipping.

It runs as a script (``python audio_process.py CONFIG``), not as a module of the package, so it
imports only numpy and sounddevice and starts in a fraction of a second. Its messages go to
standard output as JSON lines; it takes ``start`` and ``stop`` on standard input and leaves
when standard input closes (so, once it reads its commands, it never outlives the engine's
process, however that ends). It runs in a process group of its own: in the REPL's, the
terminal's Ctrl-C (which stops a cell) and Ctrl-Z reached it too, and Ctrl-C killed it,
pausing the sound while the engine started another. ``--list`` prints the devices as JSON.

The device matching below is pure Python on the listed devices: the engine's process uses it
too, to explain a failure without opening PortAudio itself.
"""

from __future__ import annotations

import json
import mmap
import os
import sys
import threading
import time

import numpy as np

__all__ = ["HEADER_INTS", "HEADER_FLOATS", "WRITTEN", "READ", "UNDERRUNS", "XRUNS", "CPU_LOAD",
           "STAMP_SEQ", "STAMP_FRAME", "STAMP_NS", "STAMP_CLOCK", "IN_WRITTEN", "IN_LAG",
           "layout_size", "map_ring",
           "match_device", "describe_match_failure", "MatchError"]

# -- the shared ring: int64 header, float64 header, then float32 samples (capacity, channels) --
HEADER_INTS = 16
HEADER_FLOATS = 8
WRITTEN, READ, UNDERRUNS, XRUNS, STATE, CALLS = range(6)      # int slots
# when a played block reaches the device's output: its first frame STAMP_FRAME is heard at
# STAMP_NS (nanoseconds of STAMP_CLOCK, the clock Ableton Link keeps on Linux). STAMP_SEQ is
# odd while the two are written, so a reader can tell a torn pair and read again.
STAMP_SEQ, STAMP_FRAME, STAMP_NS = 6, 7, 8
STAMP_CLOCK = getattr(time, "CLOCK_MONOTONIC_RAW", time.CLOCK_MONOTONIC)
# live input (a duplex stream): the input is stored by the output position heard when it was
# taken (IN_LAG samples from the input's converter to the output's), up to IN_WRITTEN
IN_WRITTEN, IN_LAG = 9, 10
CPU_LOAD = 0                                           # float slot
IDLE, RUNNING, STOPPED, LOST = range(4)                # values of STATE (this program's own)


def layout_size(capacity: int, channels: int, inputs: int = 0) -> int:
    return HEADER_INTS * 8 + HEADER_FLOATS * 8 + capacity * (channels + inputs) * 4


def map_ring(buffer, capacity: int, channels: int, inputs: int = 0):
    """Views of a mapped ring: (ints, floats, samples, input samples)."""
    ints = np.frombuffer(buffer, dtype=np.int64, count=HEADER_INTS, offset=0)
    floats = np.frombuffer(buffer, dtype=np.float64, count=HEADER_FLOATS, offset=HEADER_INTS * 8)
    start = (HEADER_INTS + HEADER_FLOATS) * 8
    samples = np.frombuffer(buffer, dtype=np.float32, count=capacity * channels,
                            offset=start).reshape(capacity, channels)
    taken = np.frombuffer(buffer, dtype=np.float32, count=capacity * inputs,
                          offset=start + capacity * channels * 4).reshape(capacity, inputs)
    return ints, floats, samples, taken


# -- choosing a device from the listed ones (used on both sides) -------------------------------
class MatchError(Exception):
    """No device matches; the message says why."""


def match_device(devices: list[dict], spec, *, channels: int, default: int | None) -> dict:
    """The output device ``spec`` names among ``devices`` (dicts as ``--list`` prints them).

    ``None``: the default output, else JACK's ``system``. An int or digits: that index. Any
    other string: an exact device name, else the first whose name or host API contains it.
    """
    outputs = [d for d in devices if d["max_output_channels"] > 0]
    if spec is None:
        if default is not None and 0 <= default < len(devices) and \
                devices[default]["max_output_channels"] >= channels:
            return devices[default]
        for d in outputs:
            if "jack" in d["hostapi"].lower() and d["name"] == "system" and d["max_output_channels"] >= channels:
                return d
        if default is not None and 0 <= default < len(devices):
            return _with_channels(devices[default], channels)
        raise MatchError("no audio output devices")
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        index = int(spec)
        if not 0 <= index < len(devices):
            raise MatchError(f"no audio device with index {index}")
        return _with_channels(devices[index], channels)
    if not isinstance(spec, str) or not spec.strip():
        raise MatchError(f"device must be a name, an index or None, not {spec!r}")
    wanted = spec.strip().lower()
    exact = [d for d in devices if d["name"].lower() == wanted]
    partial = [d for d in devices if wanted in d["name"].lower() or wanted in d["hostapi"].lower()]
    matches = exact or partial
    if not matches:
        raise MatchError(f"no output device matches {spec!r}")
    for d in matches:
        if d["max_output_channels"] >= channels:
            return d
    return _with_channels(matches[0], channels)


def _with_channels(device: dict, channels: int) -> dict:
    have = device["max_output_channels"]
    if have < channels:
        what = "no output channels" if have == 0 else f"only {have} output channel{'s' * (have > 1)}"
        raise MatchError(f"device {device['index']} {device['name']!r} ({device['hostapi']}) has "
                         f"{what}, {channels} needed")
    return device


def describe_match_failure(devices: list[dict]) -> str:
    outputs = [d for d in devices if d["max_output_channels"] > 0]
    if not outputs:
        return ("no audio output devices: is a sound server running? "
                "For tests: jackd -d dummy -r 44100 -p 1024")
    lines = ["output devices:"]
    for d in outputs:
        lines.append(f"  {d['index']}: {d['name']!r} ({d['hostapi']}, {d['max_output_channels']} out, "
                     f"{d['default_samplerate']:.0f} Hz)")
    return "\n".join(lines)


# -- the program ---------------------------------------------------------------------------
def _say(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _leave(code: int = 0) -> None:
    """Exit without terminating PortAudio (see the module docstring)."""
    try:
        sys.stdout.flush()
    finally:
        os._exit(code)


def _devices(sd) -> tuple[list[dict], int | None, list[str]]:
    hostapis = sd.query_hostapis()
    devices = []
    for index, info in enumerate(sd.query_devices()):
        devices.append({"index": index, "name": info["name"],
                        "hostapi": hostapis[info["hostapi"]]["name"],
                        "max_output_channels": int(info["max_output_channels"]),
                        "max_input_channels": int(info["max_input_channels"]),
                        "default_samplerate": float(info["default_samplerate"])})
    try:
        default = int(sd.query_devices(kind="output")["index"])
    except (sd.PortAudioError, ValueError):
        default = None
    return devices, default, [h["name"] for h in hostapis]


def _import_sounddevice():
    try:
        import sounddevice
    except OSError as exc:       # sounddevice raises OSError when libportaudio cannot be loaded
        _say({"event": "error", "kind": "portaudio",
              "message": f"PortAudio is not installed ({exc}): install it, e.g. `apt-get install "
                         f"libportaudio2`, to play through an audio device; rendering to a file "
                         f"works without it"})
        _leave(3)
    return sounddevice


_COMMON_RATES = (22050, 32000, 44100, 48000, 88200, 96000, 176400, 192000)


def _usable_rates(sd, device: dict, channels: int) -> list[int]:
    """The common rates the device says it can play."""
    usable = []
    for rate in _COMMON_RATES:
        try:
            sd.check_output_settings(device=device["index"], samplerate=rate, channels=channels,
                                     dtype="float32")
            usable.append(rate)
        except Exception:         # PortAudio refuses the rate (or the device is gone)
            pass
    return usable


def _list() -> None:
    sd = _import_sounddevice()
    devices, default, hostapis = _devices(sd)
    _say({"event": "devices", "devices": devices, "default": default, "hostapis": hostapis,
          "portaudio": sd.get_portaudio_version()[1]})
    _leave(0)


def _never_preempted_holding_the_gil() -> None:
    """Run this thread, and the watcher it starts, at the lowest real-time priority, where the
    system lets us (root, or a user with an rtprio limit, as audio users have for JACK).

    The callback needs this interpreter's GIL. If a thread here that holds it for a moment (the
    watcher, every 50 ms) were preempted by an ordinary busy process, the callback's real-time
    thread would wait for it and miss its period: JACK logged ``client = PortAudio was not
    finished`` on this 2-core machine with two busy loops beside the tests. These threads only
    wait (on standard input, on a timer), so a real-time priority costs the machine nothing.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))    # this thread; new ones inherit
    except (AttributeError, OSError):      # not Linux, or not allowed: as before
        pass


def _play(config: dict) -> None:
    sd = _import_sounddevice()
    capacity, channels = int(config["capacity"]), int(config["channels"])
    inputs = int(config.get("inputs", 0))
    with open(config["ring"], "r+b") as f:
        buffer = mmap.mmap(f.fileno(), layout_size(capacity, channels, inputs))
    try:
        os.unlink(config["ring"])     # both sides have it mapped now: leave no file behind
    except OSError:
        pass
    ints, floats, data, taken = map_ring(buffer, capacity, channels, inputs)
    mask = capacity - 1
    lag: list = []           # the input's lag behind the output, once known

    clock_ns, stamp_clock = time.clock_gettime_ns, STAMP_CLOCK

    def callback(outdata, frames, timing, status):   # the audio thread: copies, nothing more
        now = clock_ns(stamp_clock)
        ints[CALLS] += 1
        if status.output_underflow:
            ints[XRUNS] += 1
        position = int(ints[READ])
        if ints[WRITTEN] - position < frames:
            outdata.fill(0)
            ints[UNDERRUNS] += 1
            return None
        start = position & mask
        first = capacity - start
        if first >= frames:
            outdata[:] = data[start:start + frames]
        else:
            outdata[:first] = data[start:]
            outdata[first:] = data[:frames - first]
        ints[READ] = position + frames
        # PortAudio says how long after this call the block's first frame reaches the output
        ahead = timing.outputBufferDacTime - timing.currentTime
        if not 0.0 <= ahead < 1.0:                  # a host that does not know
            ahead = latency[0]
        ints[STAMP_SEQ] += 1
        ints[STAMP_FRAME] = position
        ints[STAMP_NS] = now + int(ahead * 1e9)
        ints[STAMP_SEQ] += 1
        return position

    def duplex(indata, outdata, frames, timing, status):
        position = callback(outdata, frames, timing, status)
        if position is None:        # an underrun: the performance waits, so does its input
            return
        if not lag:
            apart = timing.outputBufferDacTime - timing.inputBufferAdcTime
            lag.append(int(round(apart * rate_now[0])) if 0.0 <= apart < 1.0 else 0)
            ints[IN_LAG] = lag[0]
        first = position - lag[0]
        start = first & mask
        head = min(frames, capacity - start)
        taken[start:start + head] = indata[:head]
        if head < frames:
            taken[:frames - head] = indata[head:]
        ints[IN_WRITTEN] = first + frames

    latency, rate_now = [0.0], [0]          # the stream's own figures, once it is open
    devices, default, _ = _devices(sd)
    try:
        device = match_device(devices, config.get("device"), channels=channels, default=default)
    except MatchError as exc:
        _say({"event": "error", "kind": "device", "message": str(exc), "devices": devices})
        _leave(2)
    # the engine's rate if the device takes it, else the device's own (the engine resamples)
    rates = [int(config["samplerate"])]
    if int(device["default_samplerate"]) not in rates:
        rates.append(int(device["default_samplerate"]))
    reasons = []
    for rate in rates:
        try:
            common = dict(samplerate=rate, blocksize=int(config["blocksize"]), dtype="float32",
                          latency=config.get("latency", "low"))
            if inputs:
                stream = sd.Stream(device=(device["index"], device["index"]),
                                   channels=(inputs, channels), callback=duplex, **common)
            else:
                stream = sd.OutputStream(device=device["index"], channels=channels,
                                         callback=callback, **common)
            break
        except sd.PortAudioError as exc:
            reason = exc.args[0] if exc.args else str(exc)
            if len(exc.args) > 2 and exc.args[2] and exc.args[2][2]:
                reason += f" ({exc.args[2][2]})"
            reasons.append(f"{rate} Hz: {reason}")
    else:
        _say({"event": "error", "kind": "open", "message": "; ".join(reasons), "device": device,
              "devices": devices, "rates": _usable_rates(sd, device, channels)})
        _leave(2)
    latency[0] = float(stream.latency[1] if inputs else stream.latency)
    rate_now[0] = int(stream.samplerate)
    _say({"event": "opened", "device": device, "latency": latency[0],
          "samplerate": int(stream.samplerate)})
    lost = threading.Event()
    silence_limit = max(0.5, 8 * latency[0])   # no callback for this long: it is gone
    _never_preempted_holding_the_gil()

    def watch():     # a stream that stops, or stops calling back, lost its device
        last, since = int(ints[CALLS]), time.monotonic()
        while not lost.wait(0.05):
            floats[CPU_LOAD] = stream.cpu_load
            calls = int(ints[CALLS])
            if calls != last:
                last, since = calls, time.monotonic()
            if ints[STATE] == RUNNING and (not stream.active or time.monotonic() - since > silence_limit):
                ints[STATE] = LOST
                _say({"event": "lost", "read": int(ints[READ])})
                lost.set()
                _leave(0)         # release the dead connection: the engine starts a new process

    for line in sys.stdin:
        command = line.strip()
        if command == "start" and ints[STATE] != RUNNING:
            try:
                stream.start()
            except sd.PortAudioError as exc:
                _say({"event": "error", "kind": "start", "message": str(exc)})
                _leave(2)
            ints[STATE] = RUNNING
            threading.Thread(target=watch, daemon=True).start()
            _say({"event": "started"})
        elif command == "stop":
            break
    ints[STATE] = STOPPED      # stdin closed or "stop": the parent is done with us
    lost.set()
    try:
        stream.abort()
    except Exception:          # the device may be gone already: nothing left to stop
        pass
    _say({"event": "stopped", "read": int(ints[READ])})
    _leave(0)


def main(argv: list[str]) -> None:
    if argv[:1] == ["--list"]:
        _list()
    elif len(argv) == 1:
        _play(json.loads(argv[0]))
    else:
        sys.stderr.write("usage: audio_process.py --list | audio_process.py CONFIG_JSON\n")
        _leave(2)


if __name__ == "__main__":
    main(sys.argv[1:])
