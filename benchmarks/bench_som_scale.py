"""``livelatent som`` over a large library: 50,000 one-second files (target: at most 5 minutes).

The files are generated first (not timed): one-second sounds of six kinds (harmonic tones at
random pitches with plucked or sustained envelopes, noise bursts, chirps, clicks, chords), 16-bit
WAV at 44.1 kHz. Then ``build_som`` runs end to end, as the command does (features with a
progress bar, the map on its default grid and iterations, the files written), once with the
default features and once with ``--features model`` (the model's latent thumbnails). The figure
is the wall time of each; the baseline, measured in the same run, is the bag-of-frames features
of the first 1,000 files alone (what the map adds is the rest).

Run: ``python benchmarks/bench_som_scale.py [--files 50000] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from livelatent.corpus.feature_sets import DEFAULT_FEATURES, feature_set
from livelatent.corpus.features import extract_features
from livelatent.corpus.som import build_som, default_grid

RATE = 44100


def sound(kind: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(RATE) / RATE
    pitch = 55.0 * 2 ** rng.uniform(0, 5)
    if kind == 0:
        x = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 6)) * np.exp(-rng.uniform(2, 8) * t)
    elif kind == 1:
        x = sum(np.sin(2 * np.pi * pitch * k * t) / k ** 2 for k in range(1, 8)) * np.minimum(1, t * 20)
    elif kind == 2:
        x = rng.standard_normal(RATE) * np.exp(-rng.uniform(3, 20) * t)
    elif kind == 3:
        x = np.sin(2 * np.pi * np.cumsum(np.linspace(pitch, pitch * rng.uniform(2, 8), RATE)) / RATE)
    elif kind == 4:
        x = np.zeros(RATE)
        x[rng.integers(0, RATE - 200, 6)] = 1.0
        x = np.convolve(x, np.exp(-np.arange(200) / 20.0))[:RATE]
    else:
        x = sum(np.sin(2 * np.pi * pitch * r * t) for r in (1, 1.26, 1.5)) * np.exp(-2 * t)
    return (0.8 * x / max(1e-9, np.abs(x).max())).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--keep", default=None, help="generate into (and keep) this folder")
    parser.add_argument("--only", choices=["default", "model"], default=None)
    args = parser.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp())
    corpus = folder / "corpus"
    try:
        if not corpus.is_dir() or len(list(corpus.rglob("*.wav"))) != args.files:
            rng = np.random.default_rng(0)
            started = time.time()
            for i in range(args.files):
                sub = corpus / f"{i // 1000:03d}"
                sub.mkdir(parents=True, exist_ok=True)
                sf.write(sub / f"s{i:05d}.wav", sound(i % 6, rng), RATE, subtype="PCM_16")
            print(f"generated {args.files} one-second files in {time.time() - started:.0f} s")
        files = sorted(corpus.rglob("*.wav"))
        grid = default_grid(len(files))
        print(f"grid {grid[0]}x{grid[1]}")
        started = time.time()
        extract_features(files[:1000], progress=False, features=feature_set("bag"))
        baseline = time.time() - started
        print(f"baseline: bag-of-frames features of 1,000 files: {baseline:.1f} s "
              f"({baseline * len(files) / 1000:.0f} s scaled to {len(files)} files)")
        for kind in ("default", "model"):
            if args.only and args.only != kind:
                continue
            started = time.time()
            som = build_som(corpus, folder / f"map-{kind}", features=DEFAULT_FEATURES if kind == "default" else "model")
            took = time.time() - started
            print(f"livelatent som --features {som.meta['features']}: {took:.0f} s for {som.num_files} files "
                  f"({took / 60:.1f} min; target 5 min), {len(som.clusters)} clusters, trainer "
                  f"{som.meta['trainer']}")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
