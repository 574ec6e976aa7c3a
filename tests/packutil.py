"""Small model packs for tests: a tiny RawAudioVAE in a folder with its pack.json."""

import json

import torch

from livelatent.model.checkpoint import load_checkpoint, save_checkpoint
from livelatent.model.vae import RawAudioVAE, VAEConfig


def small_pack(folder, name: str, version: int, *, seed: int):
    """A pack ``name`` at ``version`` in ``folder`` (weights from ``seed``): (weights path, hash)."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = VAEConfig(hidden=64, latent=8)
    weights = save_checkpoint(folder / "model.pt", RawAudioVAE(config), config)
    digest = load_checkpoint(weights).content_hash
    (folder / "pack.json").write_text(json.dumps({"name": name, "version": version, "weights_hash": digest}))
    return weights, digest
