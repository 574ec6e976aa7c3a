"""Real-time capacity, per-step overhead, stalls, overload and latency, over a JACK dummy server.

1. Capacity: the most OLA voices that play ``--seconds`` (30) with zero underruns, at
   blocksize 1024 and 256 (a JACK server at the same period), the overload guard off. Baseline,
   same run: how many voices the bare decoder could sustain if it did nothing else (its windows
   per second on one BLAS thread at a batch of that many voices, over the windows per second
   one OLA voice needs).
1b. Per-step overhead: a live step's time (what the decode thread does for a step: checkpoint,
   advance, and forget what the listener has passed) minus the time its decode took, at 1, 16
   and 128 voices, measured alternately ``--step-rounds`` times (medians). Then 16 voices with
   every decode padded to 128 windows (theirs and 112 decoded from the latent origin, then
   dropped) against 128 voices, alternately, so that the decode is as long at both counts: a
   longer decode leaves the processor's caches colder for the step's own work, and this says
   how much of the 128/16 ratio that is. Then one voice's step, the same work each time, after
   its own decode, after a decode padded to 128 windows, and after its own decode and 6 ms
   asleep: what a long wait before a step's own work adds to it on this machine. And the decode
   thread's time per block load (a voice's next 256 windows of channels and noise) at 128
   voices, its next blocks worked out ahead on another thread as live | baseline, same run: the
   decode thread working out every block itself.
1c. Stalls: 16 voices play while this process holds the GIL in one C call (a regex) for
   150 ms; and 1.5x the capacity with the overload guard on. Underruns counted.
2. Latency at blocksize 256: from the moment a curve assignment returns to the first output
   sample it changes, located in the audio captured from JACK, in JACK frame time.
   Baseline, same run: the same measurement for a bare sounddevice stream (in a process of its
   own, as livelatent's audio process is) whose callback switches from silence to a constant
   as soon as a byte arrives on its standard input - the floor this device configuration
   allows any system.

Run: ``python benchmarks/bench_realtime.py [--seconds 30] [--model PATH] [--lookahead SECONDS]
[--step-rounds N]`` (``--lookahead 0.2``: the capacity trials decode as far ahead as the REPL;
``--step-rounds 0`` skips the per-step overhead).
Needs jackd (Debian jackd2). Targets: >= 128 voices at blocksize 1024 and >= 65% of the bare
decoder; overhead at 128 voices <= 2x at 16; latency median <= floor + 12 ms at blocksize 256.
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
from livelatent.engine.engine import MAX_LOOKAHEAD_S  # noqa: E402


def _sources(sample_rate):
    t = np.arange(int(sample_rate * 6.0)) / sample_rate
    tone = source((0.4 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), name="tone")
    hiss = source((np.random.default_rng(0).normal(0, 0.2, t.size)).astype(np.float32), name="hiss")
    return tone, hiss


def plays_cleanly(codec, sources, voices, blocksize, seconds, lookahead=None):
    with Engine(codec, seed=0, blocksize=blocksize, lookahead=lookahead) as engine:
        for i in range(voices):
            voice(*sources, synth="ola", curve=sine(3 + i * 0.1), gain=1.0 / voices)
        engine.start("system", overload_guard=False)
        time.sleep(seconds)
        underruns, load = engine.underruns, engine.status()["decode_load"]
        engine.stop_playback()
    return underruns == 0, underruns, load


def capacity(codec, sources, blocksize, seconds, log_dir, start=32, lookahead=None):
    with jackutil.running_jack_server(period=blocksize, log_dir=log_dir) as server:
        good, bad, count = 0, None, start
        trials = []
        while bad is None and count <= 1024:          # double until it fails...
            ok, underruns, load = plays_cleanly(codec, sources, count, blocksize, seconds, lookahead)
            trials.append((count, underruns, load))
            good, bad, count = (count, None, count * 2) if ok else (good, count, count)
        while bad is not None and bad - good > max(2, good // 16):  # ...then bisect
            middle = (good + bad) // 2
            ok, underruns, load = plays_cleanly(codec, sources, middle, blocksize, seconds, lookahead)
            trials.append((middle, underruns, load))
            good, bad = (middle, bad) if ok else (good, middle)
        xruns = server.xruns()
    return good, trials, xruns


def step_overhead(codec, sources, voices, steps=600, *, channels_ahead=True, decode_rows=None,
                  pause_s=0.0):
    """A live step's time minus its decode's, on one BLAS thread, noise drawn ahead as live:
    (seconds of overhead per step, seconds of decode per step, seconds per block load in the
    decode thread, block loads per step). With ``decode_rows``, each decode is padded to that
    many windows (latent points at the origin), the step keeping its own; with ``pause_s``, the
    decode thread sleeps that long after each decode (counted as decode)."""
    def start(engine):
        for i in range(voices):
            voice(*sources, synth="ola", curve=sine(3 + i * 0.1), gain=1.0 / voices)
    loads = [0.0, 0]
    total, decoding, _ = timed_steps(codec, start, steps, loads=loads, channels_ahead=channels_ahead,
                                     decode_rows=decode_rows, pause_s=pause_s)
    return (total - decoding) / steps, decoding / steps, loads[0] / max(1, loads[1]), loads[1] / steps


def live_step(engine) -> None:
    """One step as the playback's decode thread takes the engine's timeline through it: a
    checkpoint, the step, then dropping what only a rewind to before the listener would need
    (live, the listener is about a lookahead behind, and the commands applied before it leave
    the schedule). Live, the decode thread also keeps those checkpoints and feeds the ring."""
    timeline = engine.timeline
    timeline.checkpoint()
    timeline.advance(1)
    timeline.forget_before(timeline.step - engine.lookahead // engine.step - 1)


def timed_steps(codec, start, steps, *, loads=None, channels_ahead=True, decode_rows=None,
                pause_s=0.0):
    """Live steps (:func:`live_step`, one BLAS thread, noise and each voice's next block
    worked out ahead and the GIL's switch interval as live) of the voices ``start(engine)``
    starts, after 300 to warm up: (seconds in all, seconds decoding, windows decoded). With
    ``loads`` ([seconds, count]), the time the decode thread spends loading blocks is added
    there; ``channels_ahead=False`` has it work out every block itself (the baseline);
    ``decode_rows`` pads each decode to that many windows (see :func:`step_overhead`)."""
    from threadpoolctl import threadpool_limits

    from livelatent.engine.playback import SWITCH_INTERVAL_S
    decoded = [0.0, 0]
    real_decode = codec.decode

    def padded_decode(z):           # as long a decode as decode_rows windows take
        padded = np.zeros((max(decode_rows, z.shape[0]), z.shape[1]), dtype=np.float32)
        padded[:z.shape[0]] = z
        return real_decode(padded)[:z.shape[0]]

    def timed_decode(z):
        began = time.perf_counter()
        out = (real_decode if decode_rows is None else padded_decode)(z)
        if pause_s:
            time.sleep(pause_s)
        decoded[0] += time.perf_counter() - began
        decoded[1] += z.shape[0]
        return out

    switch = sys.getswitchinterval()
    with threadpool_limits(limits=1, user_api="blas"), Engine(codec, seed=0) as engine:
        start(engine)
        timeline = engine.timeline
        timeline.work_ahead(True)
        cache = timeline._bank.cache
        if not channels_ahead:
            cache.ahead.request = lambda *args: None
        real_load = cache._load

        def timed_load(*args, **kwargs):
            began = time.perf_counter()
            real_load(*args, **kwargs)
            if loads is not None and codec.decode is timed_decode:     # after the warm-up
                loads[0] += time.perf_counter() - began
                loads[1] += 1
        cache._load = timed_load
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        try:
            for _ in range(300):                   # warm: every voice's first blocks
                live_step(engine)
            codec.decode = timed_decode
            began = time.perf_counter()
            for _ in range(steps):
                live_step(engine)
            total = time.perf_counter() - began
        finally:
            codec.decode = real_decode
            sys.setswitchinterval(switch)
    return total, decoded[0], decoded[1]


def stall_trials(codec, sources, capacity_voices, log_dir):
    """Underruns while a C call holds the GIL 150 ms, and at 1.5x the capacity (guard on)."""
    from livelatent.repl.setup import make_engine
    results = {}
    with jackutil.running_jack_server(period=1024, log_dir=log_dir):
        with make_engine(blocksize=1024) as engine:
            for i in range(16):
                voice(*sources, curve=sine(3 + i * 0.1), gain=1 / 16)
            engine.start("system")
            time.sleep(1.0)
            held = jackutil.hold_gil(0.15)
            time.sleep(1.0)
            results["gil"] = (held, engine.underruns)
            engine.stop_playback()
        count = int(1.5 * capacity_voices)
        with make_engine(blocksize=1024) as engine:
            for i in range(count):
                voice(*sources, curve=sine(3 + i * 0.1), gain=1 / count ** 0.5)
            engine.start("system")
            time.sleep(5.0)
            sounding = [p for p in engine.intended_voices() if p.stop_at is None]
            results["overload"] = (count, sum(p.synth == "ola" for p in sounding),
                                   sum(p.synth == "concat" for p in sounding), engine.underruns)
            engine.stop_playback()
    return results


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


def _typed(engine):
    """A curve assignment typed in code: the voice starts at amount 0, then ``v.curve = 1.0``."""
    return 0.0, lambda v: setattr(v, "curve", 1.0)


def engine_latency(codec, server, runs, change=_typed):
    """From the moment a change is made (``change(engine)`` gives the voice's first curve and
    a function that changes it from amount 0 to 1) to the first output sample it changes."""
    # two unrelated noises: the capture aligns with the render unambiguously, and amount 0 and
    # amount 1 sound nothing alike
    rng = np.random.default_rng(5)
    first_noise, second_noise = (source(rng.normal(0, 0.2, 4 * codec.sample_rate).astype(np.float32),
                                        name=name) for name in ("first", "second"))
    results = []
    for run in range(runs):
        with Engine(codec, seed=0, blocksize=256) as engine:
            curve, make_change = change(engine)
            v = voice(first_noise, second_noise, curve=curve, deterministic=True)
            engine.start("system")
            with jackutil.JackRecorder(server, "PortAudio", seconds=4) as recorder:
                time.sleep(0.4 + 0.037 * run)          # land on different phases of the period
                make_change(v)
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


def print_step_overhead(codec, sources, step_rounds):
    """Section 1b: the per-step overhead at 1, 16 and 128 voices, measured alternately
    ``step_rounds`` times, then 16 voices with each decode padded to 128 windows against 128
    voices, alternately, and the block loads."""
    rounds = {1: [], 16: [], 128: []}
    own = []                                   # the baseline of block loads: no channels ahead
    for _ in range(step_rounds):               # alternately: a noisy machine hits them all
        for count in rounds:
            rounds[count].append(step_overhead(codec, sources, count))
        own.append(step_overhead(codec, sources, 128, channels_ahead=False))
    median = lambda count, i: statistics.median(r[i] for r in rounds[count])
    ratios = [big[0] / small[0] for big, small in zip(rounds[128], rounds[16])]
    print("per-step overhead (step time minus its decode, one BLAS thread; median of "
          f"{step_rounds} rounds): " + ", ".join(
              f"{n} voices {median(n, 0) * 1e3:.2f} ms (decode {median(n, 1) * 1e3:.2f} ms)" for n in rounds)
          + f" | 128 voices / 16 voices: {statistics.median(ratios):.2f}x "
          f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)}; target <= 2x)", flush=True)
    padded, plain = [], []                     # alternately, as above
    for _ in range(step_rounds):
        padded.append(step_overhead(codec, sources, 16, decode_rows=128))
        plain.append(step_overhead(codec, sources, 128))
    ratios = [big[0] / small[0] for big, small in zip(plain, padded)]
    print(f"per-step overhead with the decode as long at both counts (what the decode's length "
          f"adds: the caches a long decode leaves cold): 16 voices, each decode padded to 128 "
          f"windows, {statistics.median(r[0] for r in padded) * 1e3:.2f} ms (decode "
          f"{statistics.median(r[1] for r in padded) * 1e3:.2f} ms) | 128 voices "
          f"{statistics.median(r[0] for r in plain) * 1e3:.2f} ms (decode "
          f"{statistics.median(r[1] for r in plain) * 1e3:.2f} ms) | {statistics.median(ratios):.2f}x "
          f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})", flush=True)
    alone = {"plain": [], "padded": [], "paused": []}     # one voice: the same work each time
    for _ in range(step_rounds):
        alone["plain"].append(step_overhead(codec, sources, 1))
        alone["padded"].append(step_overhead(codec, sources, 1, decode_rows=128))
        alone["paused"].append(step_overhead(codec, sources, 1, pause_s=0.006))
    one = {k: statistics.median(r[0] for r in v) * 1e3 for k, v in alone.items()}
    print(f"the same step's overhead after a longer decode (1 voice, the same work each time): "
          f"{one['plain']:.2f} ms after its own decode | {one['padded']:.2f} ms after a decode "
          f"padded to 128 windows | {one['paused']:.2f} ms after its own decode and 6 ms asleep "
          f"(what this machine adds to whatever a step does after a long wait: not the engine's "
          f"work)", flush=True)
    print(f"block loads in the decode thread at 128 voices ({median(128, 3):.2f} a step): "
          f"{median(128, 2) * 1e6:.0f} us each, each voice's next block worked out ahead | baseline, "
          f"the decode thread working out every block itself: "
          f"{statistics.median(r[2] for r in own) * 1e6:.0f} us each "
          f"(its overhead {statistics.median(r[0] for r in own) * 1e3:.2f} ms a step)", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="play time per capacity trial")
    parser.add_argument("--runs", type=int, default=10, help="latency measurements")
    parser.add_argument("--model", default=None)
    parser.add_argument("--skip-capacity", action="store_true")
    parser.add_argument("--step-rounds", type=int, default=5,
                        help="per-step overhead measurements (0: skip them)")
    parser.add_argument("--lookahead", type=float, default=None,
                        help="seconds decoded ahead in the capacity trials (default: the engine's "
                             "own, 8 steps; the REPL plays 0.2 s ahead)")
    args = parser.parse_args(argv)
    codec = load_model(args.model)
    step = codec.window // 2
    shortest = step / codec.sample_rate
    if args.lookahead is not None and not shortest <= args.lookahead <= MAX_LOOKAHEAD_S:
        parser.error(f"--lookahead must be from one step ({shortest:.4f} s) to {MAX_LOOKAHEAD_S:g} s")
    sources = _sources(codec.sample_rate)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-realtime-"))
    if args.step_rounds > 0:
        print_step_overhead(codec, sources, args.step_rounds)
    measured = None
    lookahead = None if args.lookahead is None else int(round(args.lookahead * codec.sample_rate))
    if not args.skip_capacity:
        for blocksize in (1024, 256):
            voices, trials, xruns = capacity(codec, sources, blocksize, args.seconds, log_dir,
                                             lookahead=lookahead)
            bare = bare_decoder_voices(codec, voices, step)
            measured = measured or voices
            ahead = ("the engine's own lookahead" if lookahead is None
                     else f"{args.lookahead:g} s decoded ahead")
            print(f"blocksize {blocksize}, {ahead}: {voices} OLA voices play {args.seconds:g} s "
                  f"with zero underruns "
                  f"(trials voices/underruns/decode load: "
                  f"{', '.join(f'{v}/{u}/{l:.2f}' for v, u, l in trials)}; jack xruns {xruns}) | "
                  f"baseline: the bare decoder alone could feed {bare:.0f} voices "
                  f"({voices / bare:.0%} of it; target >= 65%)", flush=True)
    stalls = stall_trials(codec, sources, measured or 128, log_dir)
    held, underruns = stalls["gil"]
    count, overlapping, switched, overload_underruns = stalls["overload"]
    print(f"a C call held the GIL {held * 1e3:.0f} ms with 16 voices playing: {underruns} underruns | "
          f"{count} voices (1.5x capacity), overload guard on: {overload_underruns} underruns, "
          f"{switched} switched to concat, {count - overlapping - switched} muted, "
          f"{overlapping} play on as they were", flush=True)
    with jackutil.running_jack_server(period=256, log_dir=log_dir) as server:
        floor = stream_floor_latency(server, args.runs, codec.sample_rate)
        ours = engine_latency(codec, server, args.runs)
    ms = lambda xs: "no measurement" if not xs else f"median {statistics.median(xs) * 1e3:.1f} ms, max {max(xs) * 1e3:.1f} ms, n={len(xs)}"
    print(f"code-to-sound latency at blocksize 256: livelatent {ms(ours)} | baseline bare stream "
          f"{ms(floor)} | target: median <= floor median + 12 ms")


if __name__ == "__main__":
    main()
