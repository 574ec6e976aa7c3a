"""The settings that build a RawAudioVAE (no torch here: loading a pack must not import it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import ParameterError

__all__ = ["VAEConfig", "MIN_MODEL_RATE", "MAX_MODEL_RATE", "MIN_WINDOW"]

MIN_MODEL_RATE, MAX_MODEL_RATE = 1000, 768000     # a model's rate: what audio arrays may have
MIN_WINDOW = 8                 # samples: the smallest window every strategy can play


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
        if self.window % 2 or self.window < MIN_WINDOW:     # (an odd one has no half to overlap)
            raise ParameterError(f"window={self.window} must be an even number of samples from "
                                 f"{MIN_WINDOW}: voices overlap windows by half")
        if not MIN_MODEL_RATE <= self.sample_rate <= MAX_MODEL_RATE:   # (a 1 Hz model rendered
            raise ParameterError(f"sample_rate={self.sample_rate} must be from {MIN_MODEL_RATE} "
                                 f"to {MAX_MODEL_RATE} Hz")            # one frame a second)
        if not self.beta >= 0:
            raise ParameterError(f"beta={self.beta!r} must be >= 0")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "VAEConfig":
        known = {k: data[k] for k in ("window", "hidden", "latent", "sample_rate", "beta") if k in data}
        return cls(**known)
