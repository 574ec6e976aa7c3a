"""Real-time capacity and code-to-sound latency, over a JACK server with the dummy driver.

1. Capacity: the most OLA voices that play ``--seconds`` (30) with zero underruns, at
   blocksize 1024 and 256 (a JACK server at the same period). Baseline, same run: how many
   voices the bare decoder could sustain if it did nothing else (its windows per second at the
   batch the engine uses, over the windows per second one OLA voice needs).
2. Latency at blocksize 256: from the moment a curve assignment returns to the first output
   sample it changes, located in the audio captured from JACK, in JACK frame time.
   Baseline, same run: the same measurement for a bare sounddevice stream (in a process of its
   own, as livelatent's audio process is) whose callback switches from silence to a constant
   as soon as a byte arrives on its standard input - the floor this device configuration
   allows any system.

Run: ``python benchmarks/bench_realtime.py [--seconds 30] [--model PATH]``
Needs jackd (Debian jackd2). Targets: >= 32 voices; latency <= 30 ms at blocksize 256.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import jackutil  # noqa: E402  (the tests' JACK helpers)

from livelatent import Engine, load_model, sine, source, voice  # noqa: E402


def _sources(sample_rate):
    t = np.arange(int(sample_rate * 6.0)) / sample_rate
    tone = source((0.4 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), name="tone")
    hiss = source((np.random.default_rng(0).normal(0, 0.2, t.size)).astype(np.float32), name="hiss")
    return tone, hiss


def plays_cleanly(codec, sources, voices, blocksize, seconds):
    with Engine(codec, seed=0, blocksize=blocksize) as engine:
        for i in range(voices):
            voice(*sources, synth="ola", curve=sine(3 + i * 0.1), gain=1.0 / voices)
        engine.start("system")
        time.sleep(seconds)
        underruns, load = engine.underruns, engine.status()["decode_load"]
        engine.stop_playback()
    return underruns == 0, underruns, load


def capacity(codec, sources, blocksize, seconds, log_dir):
    with jackutil.running_jack_server(period=blocksize, log_dir=log_dir) as server:
        good, bad, count = 0, None, 8
        trials = []
        while bad is None and count <= 512:           # double until it fails...
            ok, underruns, load = plays_cleanly(codec, sources, count, blocksize, seconds)
            trials.append((count, underruns, load))
            good, bad, count = (count, None, count * 2) if ok else (good, count, count)
        while bad is not None and bad - good > max(2, good // 8):   # ...then bisect
            middle = (good + bad) // 2
            ok, underruns, load = plays_cleanly(codec, sources, middle, blocksize, seconds)
            trials.append((middle, underruns, load))
            good, bad = (middle, bad) if ok else (good, middle)
        xruns = server.xruns()
    return good, trials, xruns


def bare_decoder_voices(codec, voices_guess, step):
    """Voices the bare decoder could feed: windows/s at the live batch over windows/s per voice."""
    batch = max(1, voices_guess)
    z = np.random.default_rng(0).standard_normal((batch, codec.latent_dim)).astype(np.float32)
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):   # as the live engine decodes
        codec.decode(z)
        count, began = 0, time.perf_counter()
        while time.perf_counter() - began < 1.0:
            codec.decode(z)
            count += batch
        rate = count / (time.perf_counter() - began)
    return rate / (codec.sample_rate / step)


def engine_latency(codec, server, runs):
    # two unrelated noises: the capture aligns with the render unambiguously, and amount 0 and
    # amount 1 sound nothing alike
    rng = np.random.default_rng(5)
    first_noise, second_noise = (source(rng.normal(0, 0.2, 4 * codec.sample_rate).astype(np.float32),
                                        name=name) for name in ("first", "second"))
    results = []
    for run in range(runs):
        with Engine(codec, seed=0, blocksize=256) as engine:
            v = voice(first_noise, second_noise, curve=0.0, deterministic=True)
            engine.start("system")
            with jackutil.JackRecorder(server, "PortAudio", seconds=4) as recorder:
                time.sleep(0.4 + 0.037 * run)          # land on different phases of the period
                v.curve = 1.0
                returned = recorder.frame_time()
                time.sleep(0.3)
                captured = recorder.stop()
            engine.stop_playback()
        # what it would have played without the change: an offline render of the same voice
        with Engine(codec, seed=0) as offline:
            voice(first_noise, second_noise, curve=0.0, deterministic=True)
            reference = offline.render_array(3.0)
        offset = jackutil.align(captured, reference)      # captured[offset + i] == reference[i]
        first = max(0, offset)
        last = min(len(captured), len(reference) + offset)
        diff = np.abs(captured[first:last] - reference[first - offset:last - offset]).max(axis=1)
        changed = np.flatnonzero(diff > 1e-3)
        if changed.size:
            results.append((recorder.frame_time_at(first + int(changed[0])) - returned) / codec.sample_rate)
        else:
            print(f"  run {run}: the change was not found in the capture (offset {offset})", file=sys.stderr)
    return results


_FLOOR_STREAM = """
import sys, threading, sounddevice as sd
flag = threading.Event()
def callback(outdata, frames, time_info, status):
    outdata.fill(0.5 if flag.is_set() else 0.0)
stream = sd.OutputStream(device="system", samplerate=int(sys.argv[1]), blocksize=256, channels=2,
                         dtype="float32", latency="low", callback=callback)
stream.start()
print("started", flush=True)
sys.stdin.read(1)
flag.set()
sys.stdin.read(1)
"""


def stream_floor_latency(server, runs, sample_rate):
    """Bare sounddevice stream in its own process: silence, then a constant once told."""
    import subprocess
    results = []
    for run in range(runs):
        child = subprocess.Popen([sys.executable, "-c", _FLOOR_STREAM, str(sample_rate)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            child.stdout.readline()
            with jackutil.JackRecorder(server, jackutil.SUBPROCESS_PORTS, seconds=3) as recorder:
                time.sleep(0.3 + 0.037 * run)
                child.stdin.write("x")
                child.stdin.flush()
                returned = recorder.frame_time()
                time.sleep(0.2)
                captured = recorder.stop()
        finally:
            child.kill()
            child.wait()
        changed = np.flatnonzero(captured[:, 0] != 0)
        if not changed.size:
            print(f"  floor run {run}: no sound captured", file=sys.stderr)
        if changed.size:
            results.append((recorder.frame_time_at(int(changed[0])) - returned) / sample_rate)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="play time per capacity trial")
    parser.add_argument("--runs", type=int, default=10, help="latency measurements")
    parser.add_argument("--model", default=None)
    parser.add_argument("--skip-capacity", action="store_true")
    args = parser.parse_args(argv)
    codec = load_model(args.model)
    sources = _sources(codec.sample_rate)
    step = codec.window // 2
    log_dir = Path(tempfile.mkdtemp(prefix="bench-realtime-"))
    if not args.skip_capacity:
        for blocksize in (1024, 256):
            voices, trials, xruns = capacity(codec, sources, blocksize, args.seconds, log_dir)
            bare = bare_decoder_voices(codec, voices, step)
            print(f"blocksize {blocksize}: {voices} OLA voices play {args.seconds:g} s with zero underruns "
                  f"(trials voices/underruns/decode load: "
                  f"{', '.join(f'{v}/{u}/{l:.2f}' for v, u, l in trials)}; jack xruns {xruns}) | "
                  f"baseline: the bare decoder alone could feed {bare:.0f} voices "
                  f"({voices / bare:.0%} of it)", flush=True)
    with jackutil.running_jack_server(period=256, log_dir=log_dir) as server:
        floor = stream_floor_latency(server, args.runs, codec.sample_rate)
        ours = engine_latency(codec, server, args.runs)
    ms = lambda xs: "no measurement" if not xs else f"median {statistics.median(xs) * 1e3:.1f} ms, max {max(xs) * 1e3:.1f} ms, n={len(xs)}"
    print(f"code-to-sound latency at blocksize 256: livelatent {ms(ours)} | baseline bare stream "
          f"{ms(floor)} | target <= 30 ms; live-coding systems schedule 100-500 ms ahead")


if __name__ == "__main__":
    main()
