#!/usr/bin/env python
"""What the overload guard's changes cost the decoder on the step they land, offline.

With ``--voices`` overlap-add voices playing (one BLAS thread, noise drawn ahead, as live), this
prints the time of the steps around a change's landing next to the median step before it (the
baseline, same run):

- ``mute``: the guard's mutes only (its answer to a heavy overload: it sheds as if the decoder
  were at 3x real time);
- ``switch``: with ``--switch-voices`` voices, the guard sheds as if the decoder were at
  ``--load``: the newest voices switched to concat twins (its answer to a moderate overload, at
  most ``overload.MAX_TWINS`` of them), and the time the guard's own thread spent preparing them
  (their first noise, their slots' memory, their frames);
- ``add``: one more voice added (the cache has slots reserved for it: no growth);
- ``grow``: the cache's reserved slots filled with silent voices (the baseline is then taken
  again), and one more voice added, so that the cache doubles (copying every slot in use).

First it prints what writing a slot's noise rows (512 KB) costs the first time, in memory fresh
from ``np.zeros`` against memory populated ahead (``engine/prefault.py``), same run.

    python benchmarks/bench_overload.py [--voices 300] [--switch-voices 120] [--load 0.95]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from bench_realtime import _sources, live_step  # the real-time figures' sources and steps
from livelatent import Engine, load_model, sine, voice
from livelatent.engine.blocks import BLOCK
from livelatent.engine.overload import OverloadGuard
from livelatent.engine.prefault import populate


class _Playback:                 # what the guard reads of a playback, offline
    def __init__(self, engine):
        self.engine = engine


def _steps(engine, count):
    """The times of ``count`` steps, each taken as the playback's decode thread takes it."""
    spans = []
    for _ in range(count):
        began = time.perf_counter()
        live_step(engine)
        spans.append(time.perf_counter() - began)
    return spans


def first_writes(slots: int = 32) -> tuple[float, float]:
    """Milliseconds a slot's first write takes: fresh pages, and pages populated ahead."""
    fresh = np.zeros((slots, 2 * BLOCK, 256), dtype=np.float32)
    ahead = np.zeros_like(fresh)
    for slot in range(slots):
        populate(ahead[slot])
    times = []
    for memory in (fresh, ahead):
        began = time.perf_counter()
        for slot in range(slots):
            memory[slot].fill(1.0)
        times.append((time.perf_counter() - began) / slots * 1e3)
    return times[0], times[1]


def trial(codec, sources, voices, kind, load):
    with threadpool_limits(limits=1, user_api="blas"), Engine(codec, seed=0) as engine:
        for i in range(voices):
            voice(*sources, curve=sine(3 + i * 0.1), gain=1.0 / voices)
        timeline = engine.timeline
        timeline.work_ahead(True)
        _steps(engine, 300)                                # every voice's first blocks
        baseline = statistics.median(_steps(engine, 100))
        at = (engine.position // engine.step + 2) * engine.step
        guard = OverloadGuard(_Playback(engine))
        began = time.perf_counter()
        if kind == "add":
            voice(*sources, curve=sine(2), gain=0.0)
        elif kind == "grow":
            for i in range(timeline.free_voice_slots()):   # fill the cache, let them start
                voice(*sources, curve=sine(2), gain=0.0)
            _steps(engine, 300)
            baseline = statistics.median(_steps(engine, 100))
            began = time.perf_counter()
            voice(*sources, curve=sine(2), gain=0.0)       # then one more: the cache doubles
        else:
            guard._shed(load if kind == "switch" else 3.0, at=at)
        prepared = time.perf_counter() - began
        after = _steps(engine, 12)
        return baseline, prepared, after, len(guard.switched), len(guard.muted)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", type=int, default=300)
    parser.add_argument("--switch-voices", type=int, default=120, help="voices playing for the switch")
    parser.add_argument("--load", type=float, default=0.95, help="the load a switch answers")
    args = parser.parse_args(argv)
    codec = load_model()
    sources = _sources(codec.sample_rate)
    fresh, ahead = first_writes()
    print(f"a slot's first write: {fresh:.2f} ms to fresh memory, {ahead:.2f} ms to memory populated ahead")
    print(f"{args.voices} overlap-add voices ({args.switch_voices} for the switch), one BLAS thread; "
          f"step times in ms")
    for kind in ("mute", "switch", "add", "grow"):
        voices = args.switch_voices if kind == "switch" else args.voices
        baseline, prepared, after, switched, muted = trial(codec, sources, voices, kind, args.load)
        what = {"mute": f"muted {muted}", "switch": f"switched {switched}, muted {muted}",
                "add": "a voice added", "grow": "a voice added to a full cache"}[kind]
        print(f"{kind:6s} {what:36s} | baseline step (median of 100 before) {baseline * 1e3:6.1f} | "
              f"longest step after {max(after) * 1e3:7.1f} | first 6 after "
              f"{' '.join(f'{a * 1e3:.0f}' for a in after[:6])} | guard/caller {prepared * 1e3:.0f}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
