"""RawAudioVAE as published (Tatar, Cotton & Bisig): a two-layer MLP VAE over raw windows.

Encoder ``window -> hidden (ReLU) -> latent mu, latent logvar``; decoder
``latent -> hidden (ReLU) -> window (tanh)``. The layer names (fc1, fc21, fc22, fc3, fc4)
are the original code's, so its checkpoints load without renaming.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ParameterError

__all__ = ["VAEConfig", "RawAudioVAE", "vae_loss"]


@dataclass(frozen=True)
class VAEConfig:
    """Sizes and rate of a RawAudioVAE. The published model is the default."""

    window: int = 1024        # samples per window (input and output)
    hidden: int = 2048        # units in each hidden layer
    latent: int = 256         # latent dimensions
    sample_rate: int = 44100  # Hz the model was trained at
    beta: float = 1e-4        # weight of the KL term in the loss

    def __post_init__(self):
        for name in ("window", "hidden", "latent", "sample_rate"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ParameterError(f"{name}={value!r} must be a positive integer")
        if not self.beta >= 0:
            raise ParameterError(f"beta={self.beta!r} must be >= 0")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "VAEConfig":
        known = {k: data[k] for k in ("window", "hidden", "latent", "sample_rate", "beta") if k in data}
        return cls(**known)


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

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def forward(self, x: torch.Tensor):
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar) if self.training else mu
        return self.decode(z), mu, logvar


def vae_loss(recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MSE (mean) + beta * KL, with the KL averaged over batch *and* latent dims as the
    original code computes it (a KL summed over dims squeezes the latent and ruins
    reconstruction). Returns ``(loss, mse, kl)``."""
    mse = F.mse_loss(recon, x)
    kl = -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())
    return mse + beta * kl, mse, kl
