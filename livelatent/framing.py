"""How a sound is cut into latent frames: windows of the model's length every ``hop`` samples,
the last one padded with silence, a sound shorter than a window padded to one."""

from __future__ import annotations

import numpy as np

from .errors import ParameterError

__all__ = ["MAX_HOP", "check_hop", "frame_count"]

# samples between a source's frames (24 s at 44.1 kHz): more padded a short source to gigabytes
MAX_HOP = 1 << 20


def check_hop(hop, window: int, *, said: str = "hop=") -> int:
    """``hop`` as a whole number of samples from 1 to :data:`MAX_HOP`, or a ParameterError
    (``said``: how the message names it, ``"--hop "`` on a command line)."""
    if isinstance(hop, bool) or not isinstance(hop, (int, np.integer)) or not 0 < hop <= MAX_HOP:
        raise ParameterError(f"{said}{hop!r} must be a whole number of samples from 1 to "
                             f"{MAX_HOP} (a window is {window})")
    return int(hop)


def frame_count(samples: int, window: int, hop: int) -> int:
    """The frames of ``samples`` samples: one more than the hops that fit past the first window,
    the last window padded."""
    return max(1, -(-max(0, samples - window) // hop) + 1)
