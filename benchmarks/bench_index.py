#!/usr/bin/env python
"""How long building a descriptor index of a 1,000-file corpus takes, next to the bare codec.

1,000 one-second files are cut from the default pack's FluidR3 notes (random note, offset,
gain and polarity) and written to a temporary folder; that is not timed. With an empty cache
folder, then:

1. read: ``corpus(folder)`` reads and hashes the files;
2. encode: the corpus's latent frames at hop 512 (``corpus.frames``), as a first
   ``descriptor_index`` of a new corpus needs them;
3. index: ``descriptor_index`` (decode every frame's mean latent, analyse the windows, write the
   disk cache);
4. the index again from its disk file (the memory copy dropped), as in a new session;
5. one call of the chooser (``choose``, one block of 256 windows, centroid + loudness) on it.

Baselines, measured in the same run on the same number of windows: the bare decoder
(``codec.decode`` of the frames' mean latents, 4096 at a time) and the bare encoder
(``codec.encode`` of the same windows, 2048 at a time), so that index - decode is the analysis.

Run: ``cd /work/main && nice -n 5 python benchmarks/bench_index.py``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from livelatent.audio import SILENCE_PEAK  # noqa: E402
from livelatent.model.codec import load_model  # noqa: E402
from livelatent.paths import descriptors  # noqa: E402
from livelatent.paths.corpus import corpus  # noqa: E402
from livelatent.paths.descriptors import descriptor_index  # noqa: E402
from livelatent.paths.follow import choose  # noqa: E402

PACK_SOURCES = Path(__file__).resolve().parent.parent / "livelatent" / "packs" / "default" / "sources"
HOP = 512


def write_files(folder: Path, count: int, seconds: float) -> int:
    """``count`` slices of the pack's notes, each ``seconds`` long; returns the sample rate."""
    notes, rate = [], None
    for path in sorted(PACK_SOURCES.glob("*.flac")):
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
        notes.append(audio.mean(axis=1))
    rng = np.random.default_rng(0)
    length = int(seconds * rate)
    written = 0
    while written < count:
        note = notes[rng.integers(len(notes))]
        start = int(rng.integers(0, max(1, note.shape[0] - length)))
        piece = note[start:start + length] * rng.uniform(0.2, 1.0) * rng.choice([-1.0, 1.0])
        if piece.shape[0] < length or np.max(np.abs(piece)) < 20 * SILENCE_PEAK:
            continue                                   # silent tails would be refused as sources
        sf.write(folder / f"{written:04d}.wav", piece.astype(np.float32), rate)
        written += 1
    return rate


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each file")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_index_") as tmp:
        os.environ["LIVELATENT_CACHE"] = str(Path(tmp) / "cache")   # cold: nothing encoded yet
        folder = Path(tmp) / "notes"
        folder.mkdir()
        rate = write_files(folder, args.files, args.seconds)
        codec = load_model()
        codec.decode(np.zeros((8, codec.latent_dim), np.float32))     # warm-up

        notes, read_s = timed(lambda: corpus(folder))
        frames, encode_s = timed(lambda: notes.frames(codec, HOP))
        index, index_s = timed(lambda: descriptor_index(codec, notes, HOP, progress=False))
        descriptors._memory.clear()
        _, warm_s = timed(lambda: descriptor_index(codec, notes, HOP, progress=False))

        t = np.arange(256) / 256
        targets = {"centroid": 400 * 10 ** (1 - np.abs(2 * t - 1)), "loudness": -26 + 10 * np.sin(2 * np.pi * t)}
        choose(index, targets)
        _, choose_s = timed(lambda: choose(index, targets))

        count = len(frames)
        mu = frames.mu
        _, decode_s = timed(lambda: [codec.decode(mu[s:s + 4096]) for s in range(0, count, 4096)])
        audio = np.concatenate([src.audio for src in notes.sources[:40]])
        windows = np.lib.stride_tricks.sliding_window_view(audio, codec.window)[::HOP]
        batch = np.ascontiguousarray(windows[:2048])                  # real audio windows
        _, bare_encode_s = timed(lambda: [codec.encode(batch[:min(2048, count - s)])
                                          for s in range(0, count, 2048)])

    seconds = args.files * args.seconds
    print(f"corpus: {args.files} files x {args.seconds:g} s ({seconds / 60:.1f} min at {rate} Hz), "
          f"{count:,} frames at hop {HOP}, model {codec.content_hash[:12]}, {os.cpu_count()} CPUs")
    print(f"read (corpus(folder)):            {read_s:6.2f} s")
    print(f"encode (corpus.frames, cold):     {encode_s:6.2f} s  ({count / encode_s:,.0f} windows/s)")
    print(f"descriptor_index, cold:           {index_s:6.2f} s  ({count / index_s:,.0f} frames/s)")
    print(f"descriptor_index, from disk:      {warm_s:6.3f} s")
    print(f"encode + index (a new corpus):    {encode_s + index_s:6.2f} s")
    print(f"choose, one block of 256 windows: {choose_s * 1e3:6.1f} ms over {count:,} frames "
          f"({256 * HOP / rate:.2f} s of sound at hop {HOP})")
    print(f"baseline, bare decoder:           {decode_s:6.2f} s  ({count / decode_s:,.0f} windows/s, "
          f"same {count:,} windows)")
    print(f"baseline, bare encoder:           {bare_encode_s:6.2f} s  ({count / bare_encode_s:,.0f} windows/s)")
    print(f"index / bare decode: {index_s / decode_s:.2f}x (the rest is the analysis: "
          f"{index_s - decode_s:.2f} s, {(index_s - decode_s) / count * 1e6:.1f} us/frame); "
          f"encode / bare encoder: {encode_s / bare_encode_s:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
