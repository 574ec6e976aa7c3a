"""Training on one process and on several (DistributedDataParallel, gloo on CPU).

The published architecture (1024 -> 2048 -> 256) trains on ``--seconds`` of generated notes
(harmonic tones at many pitches) for two epochs at batch 256: the second epoch's windows per
second is the figure, for 1 process (all the cores' threads: the baseline, same run) and for
``--nproc`` processes (the cores shared out), with the same global batches and steps. The
parameters after the run are compared too (they should match to float rounding).

Run: ``python benchmarks/bench_ddp.py [--seconds 30] [--nproc 2]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from livelatent.model import distributed
from livelatent.model.train import TRAIN_STATE_NAME, train


def _notes(folder: Path, seconds: float) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(44100) / 44100
    for i in range(int(seconds)):
        pitch = 55 * 2 ** (rng.integers(0, 48) / 12)
        note = sum(0.4 / k * np.sin(2 * np.pi * pitch * k * t) for k in range(1, 6)) * np.exp(-3 * t)
        sf.write(folder / f"note{i:03d}.wav", note.astype(np.float32), 44100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--nproc", type=int, default=2)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "notes").mkdir()
        _notes(tmp / "notes", args.seconds)
        settings = dict(data=[tmp / "notes"], epochs=2, batch_size=256, init="random", val_fraction=0.1,
                        device="cpu", progress=False, seed=1)
        one = train(output_dir=tmp / "one", threads=cores, **settings)
        distributed.launch(dict(output_dir=tmp / "many", **settings), nproc=args.nproc)
        many = torch.load(tmp / "many" / TRAIN_STATE_NAME, weights_only=True)
        windows = one["data"]["windows_per_epoch"]
        base = windows / one["history"][-1]["seconds"]
        speed = windows / many["history"][-1]["seconds"]
        single = torch.load(tmp / "one" / TRAIN_STATE_NAME, weights_only=True)["model"]
        error = max(float((many["model"][k] - v).norm() / v.norm()) for k, v in single.items())
        print(f"{windows} windows an epoch, batch 256, {cores} cores")
        print(f"1 process, {cores} threads (baseline): {base:8.0f} windows/s")
        print(f"{args.nproc} processes, {max(1, cores // args.nproc)} thread(s) each: {speed:8.0f} windows/s "
              f"({speed / base:.2f}x)")
        print(f"after {one['history'][-1]['epoch']} epochs the parameters differ by at most "
              f"{error:.2e} (relative, per tensor)")


if __name__ == "__main__":
    main()
