#!/usr/bin/env python
"""What a linear start gives a RawAudioVAE with its tanh output, on the default pack's held-out notes.

The warm start (livelatent.model.warmstart) puts the PCA of the training windows inside the
network exactly, but the published decoder ends in tanh: a linear start decodes
``tanh(PCA(x))``, not ``PCA(x)``. This measures, on the held-out notes of the pack's own corpus
(rendered from FluidR3 with ``scripts/fluidr3_corpus.py`` into ``--build`` if not there):

- the PCA-256 baseline (the card's), fit on training windows;
- ``tanh(PCA(x))``: a linear start through the tanh output (the warm start before it undid the tanh);
- the best linear readout through tanh: least squares of ``atanh(x)`` on the PCA coefficients;
- the warm-started network at step 0 (``pca_warm_start``: the PCA with the tanh undone on the
  samples its hidden units allow), run in torch;
- the default pack as shipped;
- with ``--finetune N``: the warm-started network after N steps of VAE training (MSE + beta KL,
  sampled latent, Adam at ``--lr``, batch 256, float32) on the training windows, so that what
  training does to held-out notes is measured against the start it began from, in the same run;
- with ``--hidden H [H ...]``: the warm start (and its fine-tuning) for each hidden layer size
  (``livelatent train --hidden``): a larger layer has units to undo the tanh on more samples.

    python benchmarks/bench_warm_start.py [--build build] [--finetune 500 --lr 1e-5] [--hidden 2048 2560]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import fluidr3_corpus as corpus  # noqa: E402

from livelatent.audio import read_audio  # noqa: E402
from livelatent.config import DEFAULT_MODEL_DIR  # noqa: E402
from livelatent.model.evaluation import module_functions, torch_functions  # noqa: E402
from livelatent.model.metrics import PCABaseline, codec_reconstructor, reconstruction_metrics  # noqa: E402

WINDOW, LATENT, HOP = 1024, 256, 512


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=str(ROOT / "build"), help="folder holding (or to hold) corpus/")
    parser.add_argument("--finetune", type=int, default=0, help="training steps from the warm start")
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--hidden", type=int, nargs="+", default=[2048],
                        help="hidden layer sizes of the warm-started networks")
    args = parser.parse_args(argv)
    corpus_dir = Path(args.build) / "corpus"
    if not (corpus_dir / "heldout" / "manifest.json").exists():
        print("rendering the corpus:", corpus.render_corpus(corpus_dir), flush=True)
    train = [read_audio(p, target_rate=corpus.SAMPLE_RATE) for p in sorted((corpus_dir / "train").glob("*.flac"))]
    held = [read_audio(p, target_rate=corpus.SAMPLE_RATE) for p in sorted((corpus_dir / "heldout").glob("*.flac"))]
    windows = np.concatenate([np.stack([x[o:o + WINDOW] for o in range(0, x.size - WINDOW + 1, HOP)])
                              for x in train]).astype(np.float64)
    pca = PCABaseline(windows, dims=LATENT)

    import torch
    from livelatent.model.vae import RawAudioVAE, VAEConfig
    from livelatent.model.warmstart import pca_warm_start

    def through(network):                    # the card's reconstruction: mean latent, decoded
        return codec_reconstructor(*torch_functions(network.eval()))
    subset = windows[np.linspace(0, len(windows) - 1, 100_000).astype(int)]
    starts = {}
    for hidden in args.hidden:
        torch.manual_seed(0)
        module = RawAudioVAE(VAEConfig(window=WINDOW, hidden=hidden, latent=LATENT))
        start = pca_warm_start(module, subset)
        print(f"warm start, hidden {hidden}:", start["tanh_inverse"])
        starts[hidden] = module.eval()

    coefficients = (windows - pca.mean) @ pca.components
    design = np.c_[coefficients, np.ones(len(coefficients))]
    readout, *_ = np.linalg.lstsq(design, np.arctanh(np.clip(windows, -0.99, 0.99)), rcond=None)

    def linear_through_tanh(x):
        c = (x.astype(np.float64) - pca.mean) @ pca.components
        return np.tanh(np.c_[c, np.ones(len(c))] @ readout)

    encode, decode = module_functions(DEFAULT_MODEL_DIR)
    rows = {"PCA-256 (baseline)": pca, "tanh(PCA): a linear start": lambda x: np.tanh(pca(x)),
            "best linear readout through tanh": linear_through_tanh,
            "default pack (hidden 2048)": codec_reconstructor(encode, decode)}
    for hidden, module in starts.items():
        rows[f"warm start {hidden}, step 0"] = through(module)
        if args.finetune:
            rows[f"warm start {hidden} + {args.finetune} steps, lr {args.lr:g}"] = through(
                finetuned(module, windows, args.finetune, args.lr))
    print(f"held-out notes: {len(held)} files; PCA fit on {len(windows)} training windows")
    print(f"{'reconstruction':40s} {'SNR dB':>8s} {'SC':>7s} {'MSS':>7s}")
    for name, run in rows.items():
        m = reconstruction_metrics(held, run, window=WINDOW)
        print(f"{name:40s} {m['snr_db']:8.2f} {m['spectral_convergence']:7.4f} "
              f"{m['multiscale_spectral_distance']:7.4f}", flush=True)
    return 0


def finetuned(module, windows, steps: int, lr: float):
    """A copy of ``module`` after ``steps`` steps of VAE training on ``windows``."""
    import copy

    import torch
    from livelatent.model.vae import vae_loss
    network = copy.deepcopy(module).train()
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    rng = np.random.default_rng(0)
    data = torch.from_numpy(windows.astype(np.float32))
    for _ in range(steps):
        x = data[rng.integers(0, len(data), 256)]
        recon, mu, logvar = network(x)
        loss, _, _ = vae_loss(recon, x, mu, logvar, network.config.beta)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
        optimizer.step()
    return network.eval()


if __name__ == "__main__":
    sys.exit(main())
