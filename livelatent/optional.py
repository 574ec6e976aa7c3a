"""The heavy dependencies livelatent imports only when a feature needs them, declared in one place.

Playing, rendering, sets and maps import none of them: loading torch alone costs about a
second of start-up, IPython half of one. Each is imported here, on first use, and a missing one
is one clear line (a :class:`~livelatent.errors.MissingDependency`) saying what to install:

==============  ===============================================  ===========================
dependency      needed for                                       install
==============  ===============================================  ===========================
torch           training, ``.pt`` checkpoints, the torch codec   ``pip install 'livelatent[train]'``
IPython         the REPL, ``%load_ext livelatent``               ``pip install ipython``
matplotlib      pictures (U-matrix PNGs, maps)                   ``pip install matplotlib``
umap-learn      maps projected by UMAP                           ``pip install umap-learn``
mido, rtmidi    MIDI controllers and clock                       ``pip install mido python-rtmidi``
aalink          Ableton Link                                     ``pip install aalink``
onnx            ``livelatent export --to onnx``                  ``pip install 'livelatent[train]'``
==============  ===============================================  ===========================

sounddevice (PortAudio) is imported only by the audio process program
(:mod:`livelatent.engine.audio_process`), which runs apart from livelatent's own process.
"""

from __future__ import annotations

import importlib

from .errors import MissingDependency

__all__ = ["torch", "vae", "terminal_shell", "ipython_magics", "matplotlib_figure", "umap",
           "midi", "aalink", "onnx"]


def _missing(what: str, why: str, install: str, exc: ImportError) -> MissingDependency:
    return MissingDependency(f"{why} needs {what}, which is not installed ({exc.name or exc}): "
                             f"{install}")


def _module(name: str, why: str, install: str, what: str | None = None):
    """The module ``name``, or a one-line error saying what needs it and how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise _missing(what or name, why, install, exc) from None


def torch():
    """The torch module."""
    return _module("torch", "training, a .pt checkpoint or an export",
                   "pip install 'livelatent[train]' (on a machine without a GPU, first: pip "
                   "install torch --index-url https://download.pytorch.org/whl/cpu)")


def vae():
    """:mod:`livelatent.model.vae` (the torch module of RawAudioVAE)."""
    torch()
    from .model import vae as module
    return module


def terminal_shell():
    """IPython's ``TerminalInteractiveShell`` and traitlets' ``Config``."""
    try:
        from IPython.terminal.interactiveshell import TerminalInteractiveShell
        from traitlets.config import Config
    except ImportError as exc:
        raise _missing("IPython", "the REPL", "pip install ipython", exc) from None
    return TerminalInteractiveShell, Config


def ipython_magics():
    """IPython's ``Magics``, ``line_magic`` and ``magics_class``."""
    try:
        from IPython.core.magic import Magics, line_magic, magics_class
    except ImportError as exc:
        raise _missing("IPython", "the REPL", "pip install ipython", exc) from None
    return Magics, line_magic, magics_class


def matplotlib_figure():
    """matplotlib's ``Figure`` and the Agg canvas (no display, no global backend)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise _missing("matplotlib", "drawing a picture", "pip install matplotlib", exc) from None
    return Figure, FigureCanvasAgg


def umap():
    """umap-learn (heavy: numba), for maps projected by UMAP instead of PCA."""
    return _module("umap", "method='umap'", "pip install umap-learn, or use method='pca'", "umap-learn")


def midi():
    """python-rtmidi (the ports) and mido (reading the messages)."""
    try:
        import mido
        rtmidi = importlib.import_module("rtmidi")
    except ImportError as exc:
        raise _missing("mido and python-rtmidi", "MIDI", "pip install mido python-rtmidi", exc) from None
    return rtmidi, mido


def aalink():
    """aalink (Ableton Link)."""
    return _module("aalink", "Ableton Link", "pip install aalink")


def onnx():
    """onnx (building ONNX graphs from a model's weights)."""
    return _module("onnx", "export --to onnx", "pip install 'livelatent[train]'")
