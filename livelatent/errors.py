"""The errors livelatent raises on purpose.

Every error a performer can cause derives from :class:`LiveLatentError`, and its message
names the bad value (the file, the number) and what to do about it. The command line and the
REPL print these as one short line, never as a traceback.
"""

__all__ = [
    "LiveLatentError",
    "AudioError",
    "ModelLoadError",
    "CurveError",
    "ParameterError",
    "DeviceError",
    "SetError",
    "SomError",
]


class LiveLatentError(Exception):
    """Base class of every error livelatent raises on purpose."""


class ParameterError(LiveLatentError, ValueError):
    """A parameter has a value that cannot work (``hop=0``, ``strategy='mesa'``...)."""


class AudioError(LiveLatentError):
    """Audio that cannot be used: missing, unreadable, empty or silent."""


class ModelLoadError(LiveLatentError):
    """A model file that cannot be loaded safely or does not describe a RawAudioVAE."""


class CurveError(LiveLatentError):
    """A curve that raises, returns NaN/inf, has the wrong shape, or is too slow."""


class DeviceError(LiveLatentError):
    """An audio device that cannot be opened; the message lists the devices that exist."""


class SetError(LiveLatentError):
    """A saved set that cannot be loaded, replayed or rendered."""


class SomError(LiveLatentError):
    """A self-organizing map, or one of its clusters, that cannot be used."""
