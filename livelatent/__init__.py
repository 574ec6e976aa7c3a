"""livelatent: live coding with RawAudioVAE latent audio.

``from livelatent import *`` gives a performer the names they type::

    from livelatent import *
    with Engine() as engine:
        v = voice(source("flute.wav"), source("cello.wav"), curve=sine(8))
        engine.start()
"""

from .api import Voice, hush, tempo, voice
from .curves import (Curve, as_curve, const, curve, env, noise, perlin, ramp, rand, saw, seq, sine,
                     square, tri)
from .engine.engine import Engine
from .errors import (AudioError, CurveError, DeviceError, LiveLatentError, ModelLoadError,
                     ParameterError, SetError, SomError)
from .model import load_model
from .corpus.som import Som, build_som, load_som
from .sources import Source, source

__all__ = [
    # engine and voices
    "Engine", "voice", "Voice", "tempo", "hush", "source", "Source", "load_model",
    # sample corpora
    "load_som", "build_som", "Som",
    # curves
    "Curve", "const", "sine", "tri", "saw", "square", "ramp", "env", "seq", "noise", "perlin",
    "rand", "curve", "as_curve",
    # errors
    "LiveLatentError", "AudioError", "ModelLoadError", "CurveError", "ParameterError",
    "DeviceError", "SetError", "SomError",
]


def load_ipython_extension(ip):
    """``%load_ext livelatent`` in IPython or Jupyter (see :mod:`livelatent.live.ipython`)."""
    from .live.ipython import load_ipython_extension as load
    load(ip)


def unload_ipython_extension(ip):
    """``%unload_ext livelatent``: fade out and close the stream."""
    from .live.ipython import unload_ipython_extension as unload
    unload(ip)
