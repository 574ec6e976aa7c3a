"""RawAudioVAE as published (Tatar, Cotton & Bisig): a two-layer MLP VAE over raw windows.

Encoder ``window -> hidden (ReLU) -> latent mu, latent logvar``; decoder
``latent -> hidden (ReLU) -> window (tanh)``. The layer names (fc1, fc21, fc22, fc3, fc4)
are the original code's, so its checkpoints load without renaming.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .config import VAEConfig

__all__ = ["VAEConfig", "RawAudioVAE", "vae_loss"]


class RawAudioVAE(nn.Module):
    """The RawAudioVAE module (training and reference forward pass)."""

    def __init__(self, config: VAEConfig = VAEConfig()):
        super().__init__()
        self.config = config
        self.fc1 = nn.Linear(config.window, config.hidden)
        self.fc21 = nn.Linear(config.hidden, config.latent)
        self.fc22 = nn.Linear(config.hidden, config.latent)
        self.fc3 = nn.Linear(config.latent, config.hidden)
        self.fc4 = nn.Linear(config.hidden, config.window)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.fc1(x))                 # (batch, hidden)
        return self.fc21(h), self.fc22(h)       # (batch, latent) each

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc4(F.relu(self.fc3(z))))   # (batch, window)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor,
                       noise: torch.Tensor | None = None) -> torch.Tensor:
        noise = torch.randn_like(mu) if noise is None else noise.to(mu)
        return mu + noise * torch.exp(0.5 * logvar)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None):
        """``noise``: the standard normal draws of the sampled latent (default: drawn here)."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, noise) if self.training else mu
        return self.decode(z), mu, logvar


def vae_loss(recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MSE (mean) + beta * KL, with the KL averaged over batch *and* latent dims as the
    original code computes it (a KL summed over dims squeezes the latent and ruins
    reconstruction). Returns ``(loss, mse, kl)``."""
    mse = F.mse_loss(recon, x)
    kl = -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())
    return mse + beta * kl, mse, kl
