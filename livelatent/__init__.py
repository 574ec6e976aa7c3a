"""livelatent: live coding with RawAudioVAE latent audio.

``from livelatent import *`` gives a performer the names they type::

    from livelatent import *
    with Engine() as engine:
        v = voice(source("flute.wav"), source("cello.wav"), curve=sine(8))
        engine.start()
"""

from .public import *  # noqa: F401,F403  (the public names, listed in livelatent.public)
from .public import __all__  # noqa: F401

__version__ = "0.3.0"


def load_ipython_extension(ip):
    """``%load_ext livelatent`` in IPython or Jupyter (see :mod:`livelatent.repl.ipython`)."""
    from .repl.ipython import load_ipython_extension as load   # IPython: optional, heavy
    load(ip)


def unload_ipython_extension(ip):
    """``%unload_ext livelatent``: fade out and close the stream."""
    from .repl.ipython import unload_ipython_extension as unload
    unload(ip)
