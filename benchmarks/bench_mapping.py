"""Learned mappings: training time, prediction cost while playing, sketch accuracy.

1. Training time of each kind for 20 and 50 examples (two faders to distinct pack notes'
   centroids), median of ``--runs``.
2. Prediction cost: the weights of a block of 256 windows from the inputs (what the block cache
   works out per voice and block), per window; and offline render speed of ``--voices`` voices
   playing a trained mlp mapping against the same number of voices moving between two sources
   along a curve (baseline, same run): the render speed in multiples of real time, so the
   voices a machine keeps in real time scale by the same ratio.
3. Sketch accuracy: tests/drawings.py's four kinds (8 drawings each learn the features, 6 each
   teach the mapping, 12 new ones each are held out), per kind and overall, for each kind of
   mapping; and ``features(kind="image-ae")``: the autoencoder's reconstruction error on held-out
   drawings against principal components of the same size (the baseline), on lines at any angle
   and on the mixed drawings.

Run: ``python benchmarks/bench_mapping.py [--runs 5] [--voices 8]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from drawings import KINDS, draw_lines, draw_many  # noqa: E402

from livelatent import Engine, sine, source  # noqa: E402
from livelatent.mapping.mapping import Mapping, target_point  # noqa: E402
from livelatent.mapping.models import KINDS as MODEL_KINDS, fit  # noqa: E402
from livelatent.mapping.sketches import learn_features  # noqa: E402
from livelatent.session.namespace import namespace  # noqa: E402
from livelatent.sinks.null import render_to_null  # noqa: E402

PACK = ROOT / "livelatent" / "packs" / "default" / "sources"
NOTES = sorted(p.stem for p in PACK.glob("*.flac"))


def examples(engine, count: int):
    rng = np.random.default_rng(count)
    targets = [target_point(source(PACK / f"{NOTES[i % len(NOTES)]}.flac"), engine.codec)
               for i in range(count)]
    return rng.uniform(0, 1, (count, 2)), np.stack(targets)


def training(engine, runs: int) -> None:
    for count in (20, 50):
        x, y = examples(engine, count)
        for kind in MODEL_KINDS:
            times = []
            for run in range(runs):
                began = time.perf_counter()
                fit(kind, x, y, seed=run)
                times.append(time.perf_counter() - began)
            print(f"train {kind:6s} {count} examples: {1000 * statistics.median(times):7.1f} ms")


def render_speed(engine_seconds: float, voices: int, mapped: bool) -> float:
    with Engine(seed=1) as engine:
        names = namespace(engine)
        if mapped:
            m = Mapping(engine, [sine(4), sine(3) * 0.5 + 0.25], name="bench")
            x, y = examples(engine, 20)
            for inputs, target in zip(x, y):
                m.add((target[:engine.codec.latent_dim], target[engine.codec.latent_dim:]), inputs=inputs)
            m.train(wait=True)
        with engine.batch():
            for i in range(voices):
                if mapped:
                    names["voice"](m, gain=0.1)
                else:
                    names["voice"](names["flute"], names["cello"], curve=sine(4 + i), gain=0.1)
        engine.render_array(0.5)                          # warm: caches, first blocks
        began = time.perf_counter()
        render_to_null(engine, engine_seconds)
        return engine_seconds / (time.perf_counter() - began)


def prediction(voices: int, runs: int) -> None:
    engine = Engine()
    m = Mapping(engine, [sine(4), sine(3)], name="bench")
    x, y = examples(engine, 20)
    for inputs, target in zip(x, y):
        m.add((target[:engine.codec.latent_dim], target[engine.codec.latent_dim:]), inputs=inputs)
    m.train(wait=True)
    node = m.path()
    values = np.random.default_rng(0).uniform(0, 1, (256, 2))
    times = []
    for _ in range(200):
        began = time.perf_counter()
        node.weights(values)
        times.append(time.perf_counter() - began)
    print(f"mlp weights of 256 windows: {1e6 * statistics.median(times) / 256:.2f} us a window "
          f"({node.model.terms} terms)")
    mapped = statistics.median(render_speed(6.0, voices, True) for _ in range(runs))
    plain = statistics.median(render_speed(6.0, voices, False) for _ in range(runs))
    print(f"{voices} voices offline: a mapping {mapped:.1f}x real time | two sources along a curve "
          f"(baseline, same run) {plain:.1f}x | ratio {mapped / plain:.2f}")


def sketches() -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-sketches-"))
    train = draw_many(folder / "drawings", 8, seed=1)
    held = draw_many(folder / "held", 12, seed=2)
    features = learn_features(folder / "drawings", dims=32)
    engine = Engine()
    sounds = {k: source(PACK / f"{n}.flac") for k, n in zip(KINDS, ("flute", "cello", "choir", "harp"))}
    targets = {k: target_point(s, engine.codec) for k, s in sounds.items()}
    for kind in MODEL_KINDS:
        m = Mapping(engine, features, name="sketches", kind=kind)
        for k in KINDS:
            for path in train[k][:6]:
                m.add(sounds[k], image=path)
        m.train(wait=True)
        right = {}
        for k in KINDS:
            nearest = [min(KINDS, key=lambda q: np.linalg.norm(
                np.concatenate(m.predict(features.vector(p))) - targets[q])) for p in held[k]]
            right[k] = float(np.mean([n == k for n in nearest]))
        shown = ", ".join(f"{k} {100 * v:.0f}%" for k, v in right.items())
        print(f"sketches, {kind:6s}: {shown}; overall {100 * np.mean(list(right.values())):.0f}%")
    draw_lines(folder / "lines", np.random.default_rng(3).uniform(0, 180, 40), seed=1)
    for name, where, dims in (("40 lines at any angle", folder / "lines", 4),
                              ("the mixed drawings", folder / "drawings", 8)):
        measured = learn_features(where, dims=dims, kind="image-ae").measured
        print(f"image-ae on {name}, {dims} dims: held-out error {measured['image-ae']:.4f} | "
              f"principal components (baseline, same run) {measured['pca']:.4f} "
              f"({measured['held_out']} held out)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--voices", type=int, default=8)
    args = parser.parse_args()
    training(Engine(), args.runs)
    prediction(args.voices, max(1, args.runs // 2))
    sketches()


if __name__ == "__main__":
    main()
