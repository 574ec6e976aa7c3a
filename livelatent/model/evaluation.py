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

__all__ = ["validation_loss", "evaluate", "measure_model", "module_functions", "latent_statistics",
           "sampled_reconstructor", "PCA_WINDOWS", "ACTIVE_VARIANCE"]

PCA_WINDOWS = 40000        # training windows the PCA baseline is fit on (a seeded subsample)
SAMPLED_SEEDS = 3          # noise seeds the sampled-latent reconstruction is averaged over
ACTIVE_VARIANCE = 0.01     # a latent dimension is active when its mean varies more than this


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
    """Held-out metrics of the saved model (mean latent, and the sampled latent voices play) next
    to PCA and silence baselines, and its latent statistics (under the key ``"latent"``)."""
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(train_corpus), size=min(PCA_WINDOWS, len(train_corpus)), replace=False)
    return measure_model(model_path, eval_signals, train_corpus.batch(np.sort(sample)).numpy(),
                         latent=latent, sample_rate=sample_rate)


def measure_model(model_path: Path, eval_signals: list[np.ndarray], pca_windows: np.ndarray, *,
                  latent: int, sample_rate: int, seeds: int = SAMPLED_SEEDS) -> dict:
    """The card's figures for a saved model: :func:`evaluate` with the PCA fit on ``pca_windows``."""
    encode, decode = module_functions(model_path)
    window = pca_windows.shape[1]
    pca = PCABaseline(pca_windows, dims=min(latent, window))
    sampled = [reconstruction_metrics(eval_signals, sampled_reconstructor(encode, decode, seed),
                                      window=window, sample_rate=sample_rate) for seed in range(seeds)]
    results = {
        "model": reconstruction_metrics(eval_signals, codec_reconstructor(encode, decode),
                                        window=window, sample_rate=sample_rate),
        f"model_sampled_{seeds}_seeds": {key: float(np.mean([m[key] for m in sampled]))
                                         if isinstance(sampled[0][key], float) else sampled[0][key]
                                         for key in sampled[0]},
        f"pca_{pca.dims}": reconstruction_metrics(eval_signals, pca, window=window, sample_rate=sample_rate),
        "silence": reconstruction_metrics(eval_signals, silence_reconstructor, window=window,
                                          sample_rate=sample_rate),
        "latent": latent_statistics(encode, eval_signals, window),
    }
    results[f"pca_{pca.dims}"]["explained_variance"] = pca.explained_variance
    return results


def module_functions(model_path: Path):
    """``encode(windows) -> (mu, logvar)`` and ``decode(z) -> windows`` of a saved model, in torch."""
    return torch_functions(load_checkpoint(model_path).build_module())


def torch_functions(module):
    """``encode(windows) -> (mu, logvar)`` and ``decode(z) -> windows`` of a RawAudioVAE module."""
    def encode(x):
        with torch.inference_mode():
            mu, logvar = module.encode(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        return mu.numpy(), logvar.numpy()

    def decode(z):
        with torch.inference_mode():
            return module.decode(torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))).numpy()
    return encode, decode


def sampled_reconstructor(encode, decode, seed: int):
    """Reconstruction through the sampled latent ``mu + exp(logvar / 2) * noise`` (what voices
    play with noise on), the noise drawn from ``seed``."""
    rng = np.random.default_rng(seed)

    def run(windows):
        mu, logvar = encode(windows)
        return decode(mu + np.exp(0.5 * logvar) * rng.standard_normal(mu.shape, dtype=np.float32))
    return run


def latent_statistics(encode, signals: list[np.ndarray], window: int) -> dict:
    """The KL of the held-out windows' posteriors, averaged over windows and dimensions as the loss
    averages it, and the active dimensions: those whose mean latent varies across the windows
    with a variance above :data:`ACTIVE_VARIANCE` (Burda et al.'s active units)."""
    windows = np.concatenate([np.pad(s, (0, -s.size % window)).reshape(-1, window) for s in signals])
    mu, logvar = encode(windows.astype(np.float32))
    mu, logvar = mu.astype(np.float64), logvar.astype(np.float64)
    kl = -0.5 * np.mean(1 + logvar - mu ** 2 - np.exp(logvar))
    return {"kl_per_dim": float(kl), "active_dims": int(np.sum(mu.var(axis=0) > ACTIVE_VARIANCE)),
            "active_variance": ACTIVE_VARIANCE, "latent_dims": int(mu.shape[1]),
            "windows": int(len(windows))}
