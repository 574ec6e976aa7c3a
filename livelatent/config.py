"""Defaults shared across livelatent. Sizes live in the model's own config, not here."""

import os
from pathlib import Path

import numpy as np

from .errors import ParameterError

__all__ = [
    "SAMPLE_RATE",
    "BLOCKSIZE",
    "DEFAULT_TEMPO_BPM",
    "BEATS_PER_BAR",
    "PACKS_DIR",
    "DEFAULT_MODEL_DIR",
    "cache_dir",
    "pack_roots",
    "sets_dir",
]

SAMPLE_RATE = 44100          # Hz; the default model's rate
BLOCKSIZE = 256              # samples per audio callback
DEFAULT_TEMPO_BPM = 60.0     # a beat is a second until tempo() changes it
BEATS_PER_BAR = 4

PACKS_DIR = Path(__file__).resolve().parent / "packs"    # model packs shipped as package data
DEFAULT_MODEL_DIR = PACKS_DIR / "default"


def cache_dir() -> Path:
    """Folder for encoded latent frames; ``$LIVELATENT_CACHE`` overrides it."""

    root = os.environ.get("LIVELATENT_CACHE")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "livelatent"


def pack_roots() -> list[Path]:
    """Folders holding model packs: the installed ones, then ``$LIVELATENT_PACKS`` (a list of
    folders, separated like ``PATH``)."""
    extra = [Path(p) for p in os.environ.get("LIVELATENT_PACKS", "").split(os.pathsep) if p]
    return [PACKS_DIR, *extra]


def sets_dir() -> Path:
    """Folder where sets are saved; ``$LIVELATENT_SETS`` overrides ``./sets`` (set empty, it is
    unset, as ``$LIVELATENT_CACHE``: sets went into the current folder itself)."""

    return Path(os.environ.get("LIVELATENT_SETS") or "sets")


OSC_PORT = 57130             # where osc() curves listen (127.0.0.1) unless told otherwise


def osc_port() -> int:
    """The port ``osc()`` curves listen on: ``$LIVELATENT_OSC_PORT``, or :data:`OSC_PORT`."""
    text = os.environ.get("LIVELATENT_OSC_PORT", "").strip()
    if not text:
        return OSC_PORT
    if not (text.isascii() and text.isdecimal()) or int(text) > 65535:      # (garbage fell back to 57130 silently)
        from .errors import ParameterError
        raise ParameterError(f"LIVELATENT_OSC_PORT={text[:20]!r} must be a UDP port from 0 to "
                             f"65535 (0: any free one)")
    return int(text)


MAX_CHANNELS = 64            # output channels an engine may have


def check_blocksize(blocksize) -> int:
    if not isinstance(blocksize, (int, np.integer)) or isinstance(blocksize, bool) \
            or not 16 <= blocksize <= 16384:
        raise ParameterError(f"blocksize={blocksize!r} must be an integer from 16 to 16384")
    return int(blocksize)


def check_inputs(inputs) -> int:
    """Input channels a stream opens with (0: none)."""
    if isinstance(inputs, bool) or not isinstance(inputs, (int, np.integer)) or \
            not 0 <= inputs <= MAX_CHANNELS:
        raise ParameterError(f"inputs={inputs!r} must be a whole number from 0 to {MAX_CHANNELS}")
    return int(inputs)


def check_channels(channels) -> int:
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or \
            not 2 <= channels <= MAX_CHANNELS:
        raise ParameterError(f"channels={channels!r} must be a whole number from 2 to {MAX_CHANNELS}")
    return int(channels)
