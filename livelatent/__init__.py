"""livelatent: live coding with RawAudioVAE latent audio.

``from livelatent import *`` gives a performer the names they type.
"""

from .errors import (AudioError, CurveError, DeviceError, LiveLatentError, ModelLoadError,
                     ParameterError, SetError, SomError)
from .model import load_model

__all__ = [
    "LiveLatentError", "AudioError", "ModelLoadError", "CurveError", "ParameterError",
    "DeviceError", "SetError", "SomError",
    "load_model",
]
