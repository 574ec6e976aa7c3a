"""The public names of livelatent, in one place: what ``from livelatent import *`` gives, and
what every namespace a performer types in starts from (the engine-bound ones replaced by a
:class:`~livelatent.api.Performer`'s)."""

from .api import Performer, Voice, at, every, hush, source, stop, tempo, voice, voices
from .corpus.som import Som, build_som, load_som
from .curves import (Curve, as_curve, const, curve, env, noise, perlin, ramp, rand, saw, seq, sine,
                     square, tri)
from .engine.engine import Engine
from .engine.writers import writer_origin
from .errors import (AudioError, CurveError, DeviceError, LiveLatentError, ModelLoadError,
                     ParameterError, SetError, SomError)
from .model.codec import load_model
from .navigation import corpus, directions, show_map
from .paths.nodes import along, cloud, follow, plane
from .sources import Source

__all__ = [
    # engine and voices
    "Engine", "Performer", "voice", "Voice", "voices", "tempo", "hush", "stop", "source", "Source",
    "load_model", "at", "every", "writer_origin",
    # sample corpora
    "load_som", "build_som", "Som",
    # latent paths and where to find places
    "plane", "along", "cloud", "follow", "corpus", "directions", "show_map",
    # curves
    "Curve", "const", "sine", "tri", "saw", "square", "ramp", "env", "seq", "noise", "perlin",
    "rand", "curve", "as_curve",
    # errors
    "LiveLatentError", "AudioError", "ModelLoadError", "CurveError", "ParameterError",
    "DeviceError", "SetError", "SomError",
]


def names() -> dict:
    """The public names, by name."""
    scope = globals()
    return {name: scope[name] for name in __all__}
