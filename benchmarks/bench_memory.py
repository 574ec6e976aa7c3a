"""A long session's memory: cells that play new sources for ``--minutes`` of audio, offline.

Every cell (half a second of audio) starts a voice, swaps a curve, changes a gain or pan,
stops a voice or hushes, at random (seeded), over at most 16 voices; most cells make a new
3-second source from an array (new numbers, as a performer generating or recording sound in code
does), and the cell before's is dropped. Prints this process's resident memory every
``--every`` minutes of audio and the frame arena's size. Baseline, same run, in a process of its
own: the same cells whose sources repeat the same three arrays (what a performer re-typing
``source("file")`` gives), which the arena holds once each.

Run: ``python benchmarks/bench_memory.py [--minutes 30] [--every 5]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np


def resident_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def session(minutes: float, every: float, repeat: bool) -> None:
    from livelatent import Engine, hush, load_model, sine, source, tri, voice

    codec = load_model(None)
    rate = codec.sample_rate
    rng = np.random.default_rng(1)
    t = np.arange(int(rate * 3.0)) / rate
    cells_per_minute = 120
    with Engine(codec, seed=0) as engine:
        voices = []
        for cell in range(int(minutes * cells_per_minute) + 1):
            if cell % int(every * cells_per_minute) == 0:
                arena = engine.frames
                print(f"  {cell / cells_per_minute:5.1f} min of audio: resident {resident_mb():6.0f} MB, "
                      f"frame arena {arena.rows.nbytes / 2**20:5.0f} MB ({len(arena)} rows used)",
                      flush=True)
            a = source((0.4 * np.sin(2 * np.pi * 110 * (1 + cell % 7) * t)).astype(np.float32), name="tone")
            noise_seed = cell % 3 if repeat else 1000 + cell
            b = source(np.random.default_rng(noise_seed).normal(0, 0.2, t.size).astype(np.float32),
                       name="hiss")
            draw = rng.random()
            if draw < 0.3 or not voices:
                voices.append(voice(a, b, synth="ola", curve=sine(1 + rng.random() * 4), gain=0.1))
            elif draw < 0.6:
                voices[rng.integers(len(voices))].curve = tri(2 + rng.random())
            elif draw < 0.75:
                voices.pop(rng.integers(len(voices))).stop()
            elif draw < 0.8:
                voices[rng.integers(len(voices))].set(gain=rng.random() * 0.2, pan=rng.random() * 2 - 1)
            elif draw < 0.83:
                hush()
                voices = []
            else:
                voices[rng.integers(len(voices))].set(a=a, b=b)
            while len(voices) > 16:
                voices.pop(0).stop()
            del a, b
            engine.render_array(0.5)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="minutes of audio")
    parser.add_argument("--every", type=float, default=5.0, help="minutes of audio between readings")
    parser.add_argument("--session", choices=("new", "repeat"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.session:
        session(args.minutes, args.every, args.session == "repeat")
        return
    for kind, title in (("new", "new sources in most cells"),
                        ("repeat", "baseline: the same three sources again and again")):
        print(f"{title}:", flush=True)
        subprocess.run([sys.executable, __file__, "--minutes", str(args.minutes), "--every",
                        str(args.every), "--session", kind], check=True)


if __name__ == "__main__":
    main()
