"""How a training run measures a model: the validation loss each epoch, and the held-out metrics
of the card next to a PCA of the latent's size and silence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .data import WindowCorpus
from .metrics import PCABaseline, codec_reconstructor, reconstruction_metrics, silence_reconstructor
from .vae import RawAudioVAE, vae_loss

__all__ = ["validation_loss", "evaluate", "PCA_WINDOWS"]

PCA_WINDOWS = 40000        # training windows the PCA baseline is fit on (a seeded subsample)


@torch.no_grad()
def validation_loss(model: RawAudioVAE, signals: list[np.ndarray], window: int, beta: float,
                     device: torch.device, batch_size: int) -> float | None:
    """Loss on the non-overlapping windows of the validation files, with the mean latent."""
    if not signals:
        return None
    model.eval()
    windows = np.concatenate([np.pad(s, (0, -s.size % window)).reshape(-1, window) for s in signals])
    total, count = 0.0, 0
    for begin in range(0, len(windows), batch_size * 4):
        x = torch.from_numpy(windows[begin:begin + batch_size * 4]).to(device)
        recon, mu, logvar = model(x)
        loss, _, _ = vae_loss(recon, x, mu, logvar, beta)
        total += float(loss) * len(x)
        count += len(x)
    model.train()
    return total / count


def evaluate(model_path: Path, eval_signals: list[np.ndarray], train_corpus: WindowCorpus, *,
              latent: int, seed: int, sample_rate: int) -> dict:
    """Held-out metrics of the saved model next to PCA and silence baselines."""
    checkpoint = load_checkpoint(model_path)
    module = checkpoint.build_module()
    window = checkpoint.config.window

    def encode(x):
        with torch.inference_mode():
            mu, logvar = module.encode(torch.from_numpy(x))
        return mu.numpy(), logvar.numpy()

    def decode(z):
        with torch.inference_mode():
            return module.decode(torch.from_numpy(z)).numpy()

    rng = np.random.default_rng(seed)
    sample = rng.choice(len(train_corpus), size=min(PCA_WINDOWS, len(train_corpus)), replace=False)
    pca = PCABaseline(train_corpus.batch(np.sort(sample)).numpy(), dims=min(latent, window))
    results = {
        "model": reconstruction_metrics(eval_signals, codec_reconstructor(encode, decode),
                                        window=window, sample_rate=sample_rate),
        f"pca_{pca.dims}": reconstruction_metrics(eval_signals, pca, window=window, sample_rate=sample_rate),
        "silence": reconstruction_metrics(eval_signals, silence_reconstructor, window=window,
                                          sample_rate=sample_rate),
    }
    results[f"pca_{pca.dims}"]["explained_variance"] = pca.explained_variance
    return results
