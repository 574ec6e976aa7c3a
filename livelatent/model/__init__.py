"""The model layer: the RawAudioVAE module, its checkpoints, and the inference codec.

``RawAudioVAE`` and ``vae_loss`` need torch and are imported on first use, so that loading a
model pack and playing it never imports torch.
"""

from .. import optional
from .codec import Codec, load_model
from .config import VAEConfig

__all__ = ["Codec", "load_model", "RawAudioVAE", "VAEConfig", "vae_loss"]


def __getattr__(name):
    if name in ("RawAudioVAE", "vae_loss"):
        return getattr(optional.vae(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
