"""Inference only: encode windows to latent frames, decode latent vectors to windows.

The codec holds float32 copies of the weights and runs the two-layer MLPs either with
numpy/BLAS or with torch ``inference_mode``. ``benchmarks/bench_codec.py`` measures both; the
faster one on this kind of CPU (numpy, at every batch size we play at) is the default.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

from .. import optional
from ..config import DEFAULT_MODEL_DIR
from ..errors import ModelLoadError, ParameterError
from .checkpoint import Checkpoint, load_checkpoint
from .config import VAEConfig
from .packs import PACK_FILE, pack_info

__all__ = ["Codec", "load_model", "BACKENDS", "DEFAULT_BACKEND"]

BACKENDS = ("numpy", "torch")
DEFAULT_BACKEND = "numpy"


class Codec:
    """A loaded RawAudioVAE for inference.

    Parameters
    ----------
    checkpoint : Checkpoint
        Validated weights and config (see :func:`load_model`).
    backend : {"numpy", "torch"}
        Which library runs the matrix work.
    threads : int or None
        BLAS / torch threads for this codec's calls; None leaves the library's default.
    """

    def __init__(self, checkpoint: Checkpoint, *, backend: str = DEFAULT_BACKEND,
                 threads: int | None = None):
        if backend not in BACKENDS:
            raise ParameterError(f"backend={backend!r} must be one of {BACKENDS}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ParameterError(f"threads={threads!r} must be a positive integer or None")
        self.checkpoint = checkpoint
        self.config: VAEConfig = checkpoint.config
        self.backend = backend
        self.threads = threads
        self._module = None
        w = {k: np.asarray(v, dtype=np.float32) for k, v in checkpoint.state_dict.items()}
        # numpy keeps transposed, contiguous copies so each layer is one GEMM: x @ W.T
        self._enc = (np.ascontiguousarray(w["fc1.weight"].T), w["fc1.bias"],
                     np.ascontiguousarray(np.concatenate([w["fc21.weight"], w["fc22.weight"]]).T),
                     np.concatenate([w["fc21.bias"], w["fc22.bias"]]))
        self._dec = (np.ascontiguousarray(w["fc3.weight"].T), w["fc3.bias"],
                     np.ascontiguousarray(w["fc4.weight"].T), w["fc4.bias"])
        self._limiter = None
        if threads is not None and backend == "numpy":
            self._limiter = ThreadpoolController()

    # -- what a caller needs to know ---------------------------------------------------------
    @property
    def module(self):
        """The torch module (built on first use: playing with numpy never imports torch)."""
        if self._module is None:
            self._module = self.checkpoint.build_module()
        return self._module

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def window(self) -> int:
        return self.config.window

    @property
    def latent_dim(self) -> int:
        return self.config.latent

    @property
    def content_hash(self) -> str:
        return self.checkpoint.content_hash

    @property
    def path(self) -> Path | None:
        return self.checkpoint.path

    def __repr__(self) -> str:
        c = self.config
        return (f"Codec({str(self.path)!r}, window={c.window}, hidden={c.hidden}, latent={c.latent}, "
                f"sample_rate={c.sample_rate}, backend={self.backend!r})")

    # -- inference ---------------------------------------------------------------------------
    def encode(self, windows) -> tuple[np.ndarray, np.ndarray]:
        """``(n, window)`` samples -> ``(mu, logvar)``, each ``(n, latent)`` float32."""
        x = self._check(windows, self.config.window, "windows")
        if self.backend == "torch":
            torch = optional.torch()
            with self._threads(), torch.inference_mode():
                mu, logvar = self.module.encode(torch.from_numpy(x))
            return mu.numpy(), logvar.numpy()
        w1, b1, w2, b2 = self._enc
        with self._threads():
            h = x @ w1                                   # (n, hidden)
            h += b1
            np.maximum(h, 0.0, out=h)
            out = h @ w2                                 # (n, 2 * latent)
        out += b2
        z = self.config.latent
        return np.ascontiguousarray(out[:, :z]), np.ascontiguousarray(out[:, z:])

    def decode(self, z) -> np.ndarray:
        """``(n, latent)`` latent vectors -> ``(n, window)`` float32 samples in [-1, 1]."""
        z = self._check(z, self.config.latent, "z")
        if self.backend == "torch":
            torch = optional.torch()
            with self._threads(), torch.inference_mode():
                return self.module.decode(torch.from_numpy(z)).numpy()
        w3, b3, w4, b4 = self._dec
        with self._threads():
            h = z @ w3                                   # (n, hidden)
            h += b3
            np.maximum(h, 0.0, out=h)
            y = h @ w4                                   # (n, window)
        y += b4
        return np.tanh(y, out=y)

    def _check(self, array, width: int, name: str) -> np.ndarray:
        a = np.asarray(array, dtype=np.float32)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2 or a.shape[1] != width:
            raise ParameterError(f"{name} must have shape (n, {width}), got {np.shape(array)}")
        return np.ascontiguousarray(a)

    def _threads(self):
        if self.threads is None:
            return contextlib.nullcontext()
        if self.backend == "torch":
            return _TorchThreads(self.threads)
        return self._limiter.limit(limits=self.threads, user_api="blas")


class _TorchThreads:
    def __init__(self, threads: int):
        self.threads = threads

    def __enter__(self):
        torch = optional.torch()
        self.previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)

    def __exit__(self, *exc):
        optional.torch().set_num_threads(self.previous)
        return False


def load_model(path=None, *, sample_rate: int | None = None, backend: str = DEFAULT_BACKEND,
               threads: int | None = None) -> Codec:
    """Load a model for inference.

    ``path`` is a model pack folder, one of our checkpoints, or an original rawaudiovae
    checkpoint; None loads the default pack shipped in ``livelatent/packs/default``. ``sample_rate``
    sets the rate of files that do not record one.

    >>> codec = load_model()
    >>> codec.decode(np.zeros((1, codec.latent_dim))).shape
    (1, 1024)
    """
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise ModelLoadError(f"model={path!r}: give a model pack folder or checkpoint file's path "
                             f"(or None for the default pack)")
    if isinstance(path, str) and not path.strip():          # (Path("") is the current folder)
        raise ModelLoadError("model='': an empty name; give a model pack folder or checkpoint file")
    target = Path(path) if path is not None else DEFAULT_MODEL_DIR
    if path is None and not target.exists():
        raise ModelLoadError(f"the default model pack is missing at {target}; rebuild it with "
                             f"scripts/build_default_pack.py or pass a model path")
    checkpoint = load_checkpoint(target, sample_rate=sample_rate)
    _check_pack_hash(checkpoint)
    return Codec(checkpoint, backend=backend, threads=threads)


def _check_pack_hash(checkpoint: Checkpoint) -> None:
    """Warn when the pack a model file lies in names other weights: its weights were replaced
    or its pack.json copied from another pack, so sets will not name the pack (they record
    the weights' own hash, which is what replays them)."""
    info = None if checkpoint.path is None else pack_info(checkpoint.path)
    if info is not None and info.weights_hash != checkpoint.content_hash:
        warnings.warn(f"{info.folder / PACK_FILE} names weights {info.weights_hash[:12]}, but "
                      f"{Path(checkpoint.path).name} holds {checkpoint.content_hash[:12]}: sets made "
                      f"with it record it as a plain model, not as pack {info.name!r}",
                      UserWarning, stacklevel=3)
