"""The model layer: the RawAudioVAE module, its checkpoints, and the inference codec."""

from .codec import Codec, load_model
from .vae import RawAudioVAE, VAEConfig, vae_loss

__all__ = ["Codec", "load_model", "RawAudioVAE", "VAEConfig", "vae_loss"]
