"""Offline render speed of the engine, against the paper's notebook procedure.

For each strategy and synthesis mode, with 1 and 8 voices, renders a few seconds with the
engine (no disk: the null sink is just consuming the blocks) and prints:

- the engine's speed as a multiple of real time;
- the notebook baseline for the same interpolation, measured in the same run: a loop over
  frames that encodes a window of each source with the torch module, mixes mean and logvar,
  samples, decodes that one window and appends it with ``torch.cat`` (as the RawAudioVAE
  interpolation notebooks do), and the ratio;
- the bare decoder's time for the same windows, decoded in batches the size the engine uses
  (one render chunk of 256 steps), and the engine's speed as a share of it (target for one OLA
  voice: at least 90%); the two are measured alternately, ``--rounds`` times, and the median
  round is printed. Within a round each is timed the same way: the best of ``--best-of`` (3)
  renders from a fresh engine, and of as many passes of the bare decoder over the same windows.
- last, one OLA voice with its sampling noise off (``deterministic=True``) against the same bare
  decoder: what drawing and adding the noise (256 normal values a window, most of a
  millisecond a block of 256 windows) costs of that share.

Everything runs on one BLAS thread (``--blas-threads 1``, the default), the bare decoder's
baseline as the issue defines it; the engine's threads working ahead (each voice's next noise
block) use the other core, as they do live. ``--blas-threads 0`` leaves BLAS its own count (both
cores on this machine): a render goes about twice as fast then, and the noise drawn ahead
competes with the decoder's second thread.

Run: ``python benchmarks/bench_render.py [--seconds 20] [--model PATH] [--blas-threads N]``
Targets on a 2-core machine: one voice >= 300x real time with concat, >= 150x with OLA.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from livelatent import Engine, load_model, sine, source, voice
from livelatent.sinks.null import render_to_null
from livelatent.strategies import layout


def _sources(sample_rate: int):
    rng = np.random.default_rng(0)
    t = np.arange(int(sample_rate * 8.0)) / sample_rate
    tone = 0.4 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
    hiss = rng.normal(0, 0.2, t.size) * np.exp(-(t % 1.0) * 3)
    return source(tone.astype(np.float32), name="tone"), source(hiss.astype(np.float32), name="hiss")


def engine_speed(codec, sources, strategy, synth, voices, seconds, *, deterministic=False,
                 best_of=1):
    """The engine's speed (times real time) rendering ``seconds``: the best of ``best_of``
    renders, each from a fresh engine."""
    speeds = []
    for _ in range(best_of):
        with Engine(codec, seed=0) as engine:
            for i in range(voices):
                voice(*sources, strategy=strategy, synth=synth, curve=sine(4 + i), gain=1.0 / voices,
                      deterministic=deterministic)
            engine.render_array(0.5)   # warm: encodes and caches frames, first BLAS calls
            speeds.append(render_to_null(engine, seconds)["speed"])
    return max(speeds)


def windows_per_second_of_audio(codec, strategy, synth):
    lay = layout(strategy, synth, window=codec.window)
    return codec.sample_rate / lay.output_hop


def notebook_speed(codec, sources, strategy, synth, seconds):
    """The notebook's loop: per frame, torch encode both windows, mix, sample, decode, cat."""
    module = codec.module
    lay = layout(strategy, synth, window=codec.window)
    a, b = (torch.from_numpy(s.audio.copy()) for s in sources)
    frames = (min(a.numel(), b.numel()) - codec.window) // lay.input_hop + 1
    windows = int(seconds * windows_per_second_of_audio(codec, strategy, synth))
    generator = torch.Generator().manual_seed(0)
    began = time.perf_counter()
    output = torch.zeros(0)
    with torch.no_grad():
        for k in range(windows):
            i = (k % frames) * lay.input_hop
            amount = 0.5 - 0.5 * np.cos(2 * np.pi * k / 200)
            mu_a, lv_a = module.encode(a[i:i + codec.window][None])
            mu_b, lv_b = module.encode(b[i:i + codec.window][None])
            mu = (1 - amount) * mu_a + amount * mu_b
            lv = (1 - amount) * lv_a + amount * lv_b
            z = mu + torch.exp(0.5 * lv) * torch.randn(mu.shape, generator=generator)
            output = torch.cat([output, module.decode(z)[0]])
    elapsed = time.perf_counter() - began
    return seconds / elapsed


def threadpool_info_threads() -> int:
    """The BLAS thread count numpy's BLAS runs with now."""
    return max((pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"),
               default=1)


def bare_decode_seconds(codec, windows, batch, best_of=3):
    """The bare decoder's time for ``windows`` windows, ``batch`` at a time (best of
    ``best_of`` passes)."""
    z = np.random.default_rng(0).standard_normal((windows, codec.latent_dim)).astype(np.float32)
    codec.decode(z[:batch])
    best = float("inf")
    for _ in range(best_of):
        began = time.perf_counter()
        for start in range(0, windows, batch):
            codec.decode(z[start:start + batch])
        best = min(best, time.perf_counter() - began)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="audio rendered per measurement")
    parser.add_argument("--baseline-seconds", type=float, default=3.0,
                        help="audio the (slow) notebook baseline renders")
    parser.add_argument("--rounds", type=int, default=3,
                        help="engine and bare decoder measured alternately this many times (median)")
    parser.add_argument("--best-of", type=int, default=3,
                        help="renders (and bare decoder passes) a measurement takes the best of")
    parser.add_argument("--model", default=None)
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS threads for the engine and the bare decoder alike (0: BLAS's own)")
    args = parser.parse_args(argv)
    if args.blas_threads < 0:
        parser.error("--blas-threads must be 0 (BLAS's own count) or more")
    if args.blas_threads:
        torch.set_num_threads(args.blas_threads)      # the notebook's torch, alike
    with threadpool_limits(limits=args.blas_threads or None, user_api="blas"):
        _measure(args)


def _measure(args):
    best_of = args.best_of
    codec = load_model(args.model)
    srcs = _sources(codec.sample_rate)
    blas = threadpool_info_threads()
    print(f"model {codec.path} | torch {torch.__version__}, {torch.get_num_threads()} threads | "
          f"BLAS {blas} thread{'s' * (blas != 1)} | "
          f"{args.seconds:g} s per engine render, {args.baseline_seconds:g} s per baseline")
    print(f"{'strategy':<10} {'synth':<7} {'voices':>6} {'engine x RT':>12} {'notebook x RT':>14} "
          f"{'ratio':>7} {'bare decode x RT':>17} {'engine/bare':>12}")
    for strategy in ("meso", "stepwise", "extension"):
        for synth in ("concat", "ola"):
            baseline = notebook_speed(codec, srcs, strategy, synth, args.baseline_seconds)
            for voices in (1, 8):
                per_second = windows_per_second_of_audio(codec, strategy, synth)
                windows = int(args.seconds * per_second) * voices
                batch = int(round(256 * 512 / layout(strategy, synth, window=codec.window).output_hop)) * voices
                rounds = []          # engine and bare decoder alternate: a noisy machine hits both
                for _ in range(args.rounds):
                    speed = engine_speed(codec, srcs, strategy, synth, voices, args.seconds,
                                         best_of=best_of)
                    bare = args.seconds / bare_decode_seconds(codec, windows, batch, best_of)
                    rounds.append((speed / bare, speed, bare))
                share, speed, bare = sorted(rounds)[len(rounds) // 2]          # the median round
                print(f"{strategy:<10} {synth:<7} {voices:>6} {speed:>11.0f}x "
                      f"{baseline / voices:>13.1f}x {speed / (baseline / voices):>6.0f}x "
                      f"{bare:>16.0f}x {share:>11.0%}", flush=True)
    print("notebook x RT for 8 voices is its 1-voice speed / 8 (it renders one voice at a time)")
    print(f"the engine's decoder runs on {blas} BLAS thread{'s' * (blas != 1)}, as the bare decoder's; "
          f"the noise it draws ahead runs on a thread of its own, on the other core when there is one")
    windows = int(args.seconds * windows_per_second_of_audio(codec, "meso", "ola"))
    rounds = []
    for _ in range(args.rounds):
        sampled = engine_speed(codec, srcs, "meso", "ola", 1, args.seconds, best_of=best_of)
        bare = args.seconds / bare_decode_seconds(codec, windows, 256, best_of)
        plain = engine_speed(codec, srcs, "meso", "ola", 1, args.seconds, deterministic=True,
                             best_of=best_of)
        rounds.append((sampled / bare, plain / bare))
    rounds.sort()
    sampled_share, plain_share = rounds[len(rounds) // 2]
    print(f"one meso OLA voice against the bare decoder (median round): sampled {sampled_share:.0%}, "
          f"noise off (deterministic) {plain_share:.0%}")


if __name__ == "__main__":
    main()
