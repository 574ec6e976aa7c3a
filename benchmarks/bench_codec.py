#!/usr/bin/env python
"""How fast the codec decodes, next to the original notebook's procedure.

Prints decode windows per second at batch 1, 8, 64 and 512 with 1 and 2 threads for both
codec backends (numpy/BLAS and torch ``inference_mode``), and in the same run the baseline:
the original RawAudioVAE notebook's reconstruction loop -- a ``torch.utils.data.DataLoader``
over non-overlapping 1024-sample windows of audio, the torch module's forward pass in eval
mode under ``no_grad`` (encode, mean latent, decode), and ``torch.cat`` of the batches. The
baseline is also timed as decode-only (a DataLoader over latent vectors, ``module.decode``,
``torch.cat``) so that decode is compared with decode. Ratios are codec / baseline at the
same batch size and thread count.

    python benchmarks/bench_codec.py [--model livelatent/packs/default] [--seconds 0.6]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from livelatent.model.codec import load_model  # noqa: E402

BATCHES = (1, 8, 64, 512)
THREADS = (1, 2)


def _rate(fn, windows_per_call: int, seconds: float) -> float:
    """Windows per second of ``fn``, repeated for at least ``seconds`` after one warm-up call."""
    fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and calls >= 3:
            return calls * windows_per_call / elapsed


def _notebook_forward(module, windows: torch.Tensor, batch: int) -> torch.Tensor:
    loader = DataLoader(TensorDataset(windows), batch_size=batch, shuffle=False)
    outputs = []
    with torch.no_grad():
        for (x,) in loader:
            recon, _, _ = module(x)
            outputs.append(recon)
    return torch.cat(outputs)


def _notebook_decode(module, latents: torch.Tensor, batch: int) -> torch.Tensor:
    loader = DataLoader(TensorDataset(latents), batch_size=batch, shuffle=False)
    outputs = []
    with torch.no_grad():
        for (z,) in loader:
            outputs.append(module.decode(z))
    return torch.cat(outputs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model pack or checkpoint (default pack)")
    parser.add_argument("--seconds", type=float, default=0.6, help="minimum timing per figure")
    args = parser.parse_args(argv)

    codecs = {b: load_model(args.model, backend=b) for b in ("numpy", "torch")}
    module = codecs["torch"].module.eval()
    rng = np.random.default_rng(0)
    latent, window = codecs["numpy"].latent_dim, codecs["numpy"].window
    print(f"model {codecs['numpy'].path} ({window} -> {codecs['numpy'].config.hidden} -> {latent}), "
          f"torch {torch.__version__}, numpy {np.__version__}")

    # audio for the baseline: ~12 s of a decaying chord with noise, cut into 512 windows
    t = np.arange(512 * window) / 44100
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 330 * t) + 0.02 *
             rng.standard_normal(t.size)).astype(np.float32)
    windows = torch.from_numpy(audio.reshape(-1, window))
    latents = torch.from_numpy(rng.standard_normal((512, latent)).astype(np.float32))

    rows = []
    limited = load_model(args.model, backend="numpy", threads=1)   # limits BLAS threads per call
    for threads in THREADS:
        torch.set_num_threads(threads)
        limited.threads = threads
        for batch in BATCHES:
            z = rng.standard_normal((batch, latent)).astype(np.float32)
            figures = {}
            # threads set once for the process (how an engine thread runs), for both backends
            with threadpool_limits(limits=threads, user_api="blas"):
                for backend, codec in codecs.items():
                    figures[backend] = _rate(lambda c=codec: c.decode(z), batch, args.seconds)
            # the codec's own threads= option, which sets the BLAS limit around every call
            figures["numpy_per_call"] = _rate(lambda: limited.decode(z), batch, args.seconds)
            # the baseline processes the whole 512-window clip per call, `batch` windows at a time
            figures["notebook_decode"] = _rate(lambda: _notebook_decode(module, latents, batch), 512, args.seconds)
            figures["notebook_forward"] = _rate(lambda: _notebook_forward(module, windows, batch), 512, args.seconds)
            rows.append((threads, batch, figures))

    print("\ndecode, windows per second (codec: one decode call of `batch` latents; notebook: "
          "DataLoader + module + torch.cat over 512 windows)")
    header = (f"{'threads':>7} {'batch':>5} {'numpy':>9} {'torch':>9} {'np per-call':>11} {'nb decode':>10} "
              f"{'nb forward':>10} {'numpy/nb':>9} {'torch/nb':>9}")
    print(header)
    for threads, batch, f in rows:
        print(f"{threads:>7} {batch:>5} {f['numpy']:>9,.0f} {f['torch']:>9,.0f} {f['numpy_per_call']:>11,.0f} "
              f"{f['notebook_decode']:>10,.0f} {f['notebook_forward']:>10,.0f} "
              f"{f['numpy'] / f['notebook_decode']:>9.2f} {f['torch'] / f['notebook_decode']:>9.2f}")
    real_time = 44100 / window
    best = max(max(f["numpy"], f["torch"]) for _, _, f in rows)
    print(f"\none second of 44.1 kHz audio is {real_time:.1f} windows without overlap; the fastest "
          f"figure above is {best / real_time:,.0f}x real time")
    print("numpy/torch: threads set once for the process; np per-call: Codec(threads=N), which sets the "
          "BLAS limit around every call. ratios: codec decode / notebook decode-only procedure at the same "
          "batch and threads (nb forward = encode + decode, as the notebook reconstructs audio)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
