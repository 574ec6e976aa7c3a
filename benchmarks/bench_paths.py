"""Latent paths in real time: voices per path kind, and the cost per decoded window.

1. Cost per decoded window: the time of a live step (as the decode thread takes it, one BLAS
   thread, noise drawn ahead as live) divided by the windows it decoded, for 64 voices of each kind
   (a cloud of k points decodes k windows per output window: 64 / k voices). Baseline, same
   run: plain meso voices between two sources. Target: a cloud within 20% of meso.
2. Voices in real time (``--seconds`` of play with zero underruns, blocksize 1024, over a JACK
   dummy server, the overload guard off) for each kind, next to plain meso voices in the same
   run, found by doubling then bisecting.

Run: ``python benchmarks/bench_paths.py [--seconds 10] [--skip-capacity]``. Needs jackd.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import jackutil  # noqa: E402  (the tests' JACK helpers)

sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_realtime import timed_steps  # noqa: E402

from livelatent import (Engine, along, cloud, corpus, directions, follow, load_model, plane,  # noqa: E402
                        saw, sine, source, tri, voice)

PACK = ROOT / "livelatent" / "packs" / "default" / "sources"
CLOUD_POINTS = 4


def kinds(engine):
    """Voice factories by path kind: ``make(i, gain)`` starts voice i."""
    a, b, c, d = (source(PACK / f"{n}.flac") for n in ("flute", "cello", "choir", "harp"))
    dirs = directions([a, b, c, d], k=8)
    notes = corpus(sorted(PACK.glob("*.flac")))
    return {
        "meso (baseline)": (1, lambda i, g: voice(a, b, curve=sine(3 + i * 0.1), gain=g)),
        "plane": (1, lambda i, g: voice(plane(a, b, c, d, x=sine(3 + i * 0.1), y=tri(5)), gain=g)),
        "along (2 directions)": (1, lambda i, g: voice(along(a, dirs, {0: sine(2 + i * 0.1), 3: saw(4)}),
                                                       gain=g)),
        "scrub": (1, lambda i, g: voice(a.scrub(saw(4 + i * 0.1)), gain=g)),
        f"cloud ({CLOUD_POINTS} points)": (CLOUD_POINTS, lambda i, g: voice(
            cloud(a, spread=tri(4) + 0.2, points=CLOUD_POINTS), gain=g)),
        "follow": (1, lambda i, g: voice(follow(notes, centroid=tri(8 + i * 0.1) * 3000 + 500,
                                                loudness=-25), gain=g)),
    }


def cost_per_window(codec, name, voices, steps=400):
    """A live step's time per window it decoded (bench_realtime's step timing)."""
    def start(engine):
        points, make = kinds(engine)[name]
        for i in range(max(1, voices // points)):
            make(i, 1.0 / voices)
    total, _, windows = timed_steps(codec, start, steps)
    return total / max(1, windows) * 1e6, windows / steps


def plays_cleanly(codec, name, voices, seconds):
    with Engine(codec, seed=0, blocksize=1024) as engine:
        points, make = kinds(engine)[name]
        for i in range(voices):
            make(i, 1.0 / voices)
        engine.start("system", overload_guard=False)
        time.sleep(seconds)
        underruns = engine.underruns
        engine.stop_playback()
    return underruns == 0


def capacity(codec, name, seconds, start):
    good, bad, count = 0, None, start
    while bad is None and count <= 1024:
        ok = plays_cleanly(codec, name, count, seconds)
        good, bad, count = (count, None, count * 2) if ok else (good, count, count)
    while bad is not None and bad - good > max(2, good // 16):
        middle = (good + bad) // 2
        good, bad = (middle, bad) if plays_cleanly(codec, name, middle, seconds) else (good, middle)
    return good


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="play time per capacity trial")
    parser.add_argument("--model", default=None)
    parser.add_argument("--skip-capacity", action="store_true")
    parser.add_argument("--kinds", default=None,
                        help="comma-separated first words of the kinds to measure (default: all)")
    args = parser.parse_args(argv)
    codec = load_model(args.model)
    with Engine(codec) as engine:
        names = list(kinds(engine))          # (builds the descriptor index once, before timing)
    if args.kinds:
        wanted = {w.strip() for w in args.kinds.split(",")}
        names = [names[0]] + [n for n in names[1:] if n.split()[0] in wanted]   # meso: the baseline
    print("1. cost per decoded window, 64 voices' worth, one BLAS thread (us per window, rounds)")
    costs = {}
    for round_ in range(2):
        for name in names:
            us, per_step = cost_per_window(codec, name, 64)
            costs.setdefault(name, []).append(us)
    base = min(costs[names[0]])
    for name in names:
        best = min(costs[name])
        print(f"  {name:24s} {best:7.1f} us/window  ({best / base:.2f}x meso)   rounds: "
              + ", ".join(f"{c:.1f}" for c in costs[name]))
    if args.skip_capacity:
        return 0
    print(f"2. voices in real time, blocksize 1024, {args.seconds:g} s, zero underruns")
    with tempfile.TemporaryDirectory() as logs, \
            jackutil.running_jack_server(period=1024, log_dir=Path(logs)) as server:
        for name in names:
            points = kinds_points(name)
            found = capacity(codec, name, args.seconds, start=max(4, 64 // points))
            print(f"  {name:24s} {found:4d} voices ({found * points} decoded windows per output window)")
        print(f"  JACK xruns during the run: {server.xruns()}")
    return 0


def kinds_points(name: str) -> int:
    return CLOUD_POINTS if name.startswith("cloud") else 1


if __name__ == "__main__":
    sys.exit(main())
