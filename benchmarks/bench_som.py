"""How long building a SOM of a 1,100-file corpus takes (target: at most 60 s on 2 cores).

1,100 short sounds (0.5-2 s, 44.1 kHz, five families of synthetic sounds with random pitch,
length and level) are written to a temporary folder first; that is not timed. Then:

1. features: the vectorised thumbnails (``extract_features``) of all files;
2. the same thumbnails from a naive extractor that loops over frames in Python (the baseline,
   measured in the same run on every 10th file, scaled to 1,100 files, and checked to give the
   same numbers);
3. the SOM: standardising, training minisom on the default 13x13 grid, assigning files;
4. the whole ``build_som`` end to end, as ``livelatent som`` runs it (features, SOM, writing
   the JSON files and the U-matrix PNG).

Run: ``cd /work/main && nice -n 5 python benchmarks/bench_som.py``
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from livelatent.corpus import features as F  # noqa: E402
from synthetic_corpus import FAMILIES, SR, make_sound  # noqa: E402  (the SOM tests' corpus)
from livelatent.corpus.som import _best_matching, _train, build_som, default_grid, default_iterations  # noqa: E402

NUM_FILES = 1100
TARGET_S = 60.0
BASELINE_EVERY = 10


def write_corpus(folder: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(NUM_FILES):
        family = FAMILIES[i % len(FAMILIES)]
        path = folder / f"{i:04d}_{family}.wav"
        sf.write(path, make_sound(family, rng, seconds=(0.5, 2.0)), SR)
        paths.append(path)
    return paths


def naive_features(path: Path) -> np.ndarray:
    """The baseline: the same thumbnail, one frame at a time in a Python loop."""
    audio, rate = F.read_for_analysis(path)
    duration_s = audio.shape[0] / rate
    import soxr

    audio = soxr.resample(audio, rate, F.ANALYSIS_RATE, quality="HQ").astype(np.float64)
    padded = np.pad(audio, (0, max(0, F.FRAME_SIZE - audio.shape[0])))
    count = 1 + (padded.shape[0] - F.FRAME_SIZE) // F.HOP_SIZE
    rows = []
    for k in range(count):
        frame = padded[k * F.HOP_SIZE:k * F.HOP_SIZE + F.FRAME_SIZE]
        rms = math.sqrt(float(np.mean(frame * frame)))
        magnitude = np.abs(np.fft.rfft(frame * F._WINDOW))
        power = magnitude * magnitude
        total = max(float(magnitude.sum()), 1e-12)
        centroid = float(magnitude @ F._FREQS) / total
        cumulative = np.cumsum(magnitude)
        rolloff = F._FREQS[int(np.argmax(cumulative >= F.ROLLOFF_FRACTION * cumulative[-1]))]
        safe = np.maximum(power, 1e-10)
        flatness = math.exp(float(np.mean(np.log(safe)))) / float(np.mean(safe))
        crossings = sum(1 for a, b in zip(frame[:-1], frame[1:]) if (a < 0) != (b < 0))
        mfcc = (10 * np.log10(np.maximum(power @ F._MEL, 1e-10))) @ F._DCT
        rows.append([20 * math.log10(max(rms, 1e-10)), centroid, flatness, rolloff,
                     crossings / (F.FRAME_SIZE - 1), *mfcc])
    rows = np.array(rows)
    rows = rows[rows[:, 0] >= rows[:, 0].max() - F.ACTIVE_RANGE_DB]
    mean, std = rows.mean(0), rows.std(0)
    return np.concatenate([[duration_s], mean[:5], std[:5], mean[5:], std[5:]])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_som_") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        paths = write_corpus(corpus)
        seconds = sum(sf.info(str(p)).duration for p in paths)
        print(f"corpus: {len(paths)} files, {seconds / 60:.1f} min of audio at {SR} Hz")

        start = time.perf_counter()
        table = F.extract_features(paths, progress=False)
        features_s = time.perf_counter() - start

        subset = paths[::BASELINE_EVERY]             # the baseline is slow: every 10th file
        start = time.perf_counter()
        naive = np.vstack([naive_features(p) for p in subset])
        naive_s = time.perf_counter() - start
        fast = table.values[::BASELINE_EVERY]
        worst = float(np.max(np.abs(naive - fast) / (np.abs(fast) + 1e-6)))

        grid = default_grid(len(table))
        iterations = default_iterations(len(table))
        start = time.perf_counter()
        scaler = F.fit_scaler(table.values)
        points = scaler.transform(table.values)
        weights = _train(points, grid, seed=0, iterations=iterations)
        _best_matching(points, weights)
        som_s = time.perf_counter() - start

        start = time.perf_counter()
        som = build_som(corpus, Path(tmp) / "som", progress=False)
        build_s = time.perf_counter() - start

    print(f"features, vectorised numpy:        {features_s:6.2f} s  "
          f"({features_s / len(paths) * 1e3:.2f} ms/file)")
    naive_per_file = naive_s / len(subset)
    print(f"features, per-frame loop baseline: {naive_per_file * len(paths):6.2f} s  "
          f"({naive_per_file * 1e3:.2f} ms/file over {len(subset)} files, "
          f"{naive_per_file * len(paths) / features_s:.1f}x slower; "
          f"largest relative difference {worst:.1e})")
    print(f"SOM, minisom {grid[0]}x{grid[1]}, {iterations} steps:   {som_s:6.2f} s")
    print(f"build_som end to end (+ JSON, PNG): {build_s:6.2f} s  -> {som!r}")
    verdict = "meets" if build_s <= TARGET_S else "MISSES"
    print(f"target: {len(paths)} files in <= {TARGET_S:.0f} s: {verdict} it ({build_s:.1f} s)")


if __name__ == "__main__":
    main()
