"""Self-describing checkpoints, loaded safely.

A livelatent checkpoint is a plain dict saved with ``torch.save``::

    {"format": "livelatent.rawaudiovae", "format_version": 1,
     "config": {...VAEConfig...}, "sample_rate": 44100,
     "state_dict": {"fc1.weight": tensor, ...},
     "training": {...summary...}, "content_hash": "sha256 of the weights"}

It loads with ``torch.load(weights_only=True)``: nothing in the file can run code. Checkpoints
of the original rawaudiovae code (``{"state_dict": {"fc1.weight": ...}, ...}``) and bare
state dicts load too; their sizes are inferred from the weight shapes.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import ModelLoadError
from .vae import RawAudioVAE, VAEConfig

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CHECKPOINT_NAME",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "weights_hash",
]

FORMAT = "livelatent.rawaudiovae"
FORMAT_VERSION = 1
CHECKPOINT_NAME = "model.pt"      # the weights inside a model pack folder
LAYERS = ("fc1", "fc21", "fc22", "fc3", "fc4")


@dataclass
class Checkpoint:
    """What a checkpoint file holds, after validation."""

    config: VAEConfig
    state_dict: dict[str, torch.Tensor]
    content_hash: str
    path: Path | None = None
    training: dict = field(default_factory=dict)
    origin: str = FORMAT          # FORMAT, or "rawaudiovae" for the original code's files

    def build_module(self) -> RawAudioVAE:
        """The torch module with these weights, in float32 and eval mode."""
        module = RawAudioVAE(self.config)
        module.load_state_dict({k: v.float() for k, v in self.state_dict.items()})
        return module.eval()


def weights_hash(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over the layer names, dtypes, shapes and bytes of the weights."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def save_checkpoint(path, module_or_state, config: VAEConfig, *, training: dict | None = None,
                    dtype: torch.dtype = torch.float32) -> Path:
    """Write a self-describing checkpoint atomically and return its path.

    ``dtype=torch.float16`` halves the file; the codec computes in float32 either way.
    """
    state = module_or_state.state_dict() if hasattr(module_or_state, "state_dict") else module_or_state
    state = {k: v.detach().cpu().to(dtype).contiguous() for k, v in state.items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config.to_dict(),
        "sample_rate": config.sample_rate,
        "state_dict": state,
        "training": dict(training or {}),
        "content_hash": weights_hash(state),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path, *, sample_rate: int | None = None) -> Checkpoint:
    """Load and validate a checkpoint file, or the ``model.pt`` of a pack folder.

    Raises :class:`ModelLoadError` naming the file for a pickle that carries code, a truncated
    or corrupt file, a file that is not a checkpoint, and weights that do not match the config.
    ``sample_rate`` overrides the rate (needed for original rawaudiovae files, which lack one).
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.exists():
        raise ModelLoadError(f"no model file at {path}")
    raw = _safe_torch_load(path)
    if not isinstance(raw, dict):
        raise ModelLoadError(f"{path}: not a livelatent or rawaudiovae checkpoint "
                             f"(it holds a {type(raw).__name__}, expected a dict of weights)")
    if raw.get("format") == FORMAT:
        return _from_livelatent(path, raw, sample_rate)
    if isinstance(raw.get("state_dict"), dict) or "fc1.weight" in raw:
        return _from_original(path, raw, sample_rate)
    raise ModelLoadError(f"{path}: not a livelatent or rawaudiovae checkpoint "
                         f"(keys {sorted(map(str, raw))[:6]}; expected 'state_dict' with fc1..fc4)")


def _safe_torch_load(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" in text and ("GLOBAL" in text or "Unsupported" in text
                                                    or "global" in text):
            raise ModelLoadError(f"{path}: refused to load: the file carries code or objects "
                                 f"other than weights (a pickle with globals); only plain "
                                 f"checkpoints are loaded") from None
        raise ModelLoadError(f"{path}: not a checkpoint (the file is not a torch save: "
                             f"{text.splitlines()[-1] if text else 'unpickling failed'})") from None
    except (EOFError, zipfile.BadZipFile) as exc:
        raise ModelLoadError(f"{path}: truncated or corrupt checkpoint ({exc or 'unexpected end of file'})") from None
    except RuntimeError as exc:
        raise ModelLoadError(f"{path}: truncated or corrupt checkpoint ({str(exc).splitlines()[0]})") from None
    except (ValueError, TypeError, OSError, AttributeError, KeyError, IndexError) as exc:
        raise ModelLoadError(f"{path}: not a checkpoint ({type(exc).__name__}: {exc})") from None


def _tensor_dict(path: Path, state) -> dict[str, torch.Tensor]:
    if not isinstance(state, dict):
        raise ModelLoadError(f"{path}: 'state_dict' is a {type(state).__name__}, not a dict of weights")
    out = {}
    for layer in LAYERS:
        for part in ("weight", "bias"):
            key = f"{layer}.{part}"
            tensor = state.get(key)
            if tensor is None:
                raise ModelLoadError(f"{path}: weight '{key}' is missing; a RawAudioVAE has "
                                     f"{', '.join(LAYERS)} (weight and bias each)")
            if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
                raise ModelLoadError(f"{path}: '{key}' is not a floating-point tensor")
            out[key] = tensor
    return out


def _check_shapes(path: Path, state: dict[str, torch.Tensor], config: VAEConfig) -> None:
    w, h, z = config.window, config.hidden, config.latent
    expected = {
        "fc1.weight": (h, w), "fc1.bias": (h,),
        "fc21.weight": (z, h), "fc21.bias": (z,),
        "fc22.weight": (z, h), "fc22.bias": (z,),
        "fc3.weight": (h, z), "fc3.bias": (h,),
        "fc4.weight": (w, h), "fc4.bias": (w,),
    }
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise ModelLoadError(f"{path}: weights do not match the config: {key} is "
                                 f"{tuple(state[key].shape)}, config (window={w}, hidden={h}, "
                                 f"latent={z}) needs {shape}")
    for key, tensor in state.items():
        if not torch.isfinite(tensor).all():
            raise ModelLoadError(f"{path}: weight '{key}' contains NaN or infinite values")


def _from_livelatent(path: Path, raw: dict, sample_rate: int | None) -> Checkpoint:
    version = raw.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelLoadError(f"{path}: checkpoint format version {version!r} is newer than this "
                             f"livelatent reads ({FORMAT_VERSION}); upgrade livelatent")
    try:
        cfg = dict(raw["config"])
        if sample_rate is not None:
            cfg["sample_rate"] = int(sample_rate)
        config = VAEConfig.from_dict(cfg)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{path}: the checkpoint's config is malformed ({exc})") from None
    state = _tensor_dict(path, raw.get("state_dict"))
    _check_shapes(path, state, config)
    digest = weights_hash(state)
    if raw.get("content_hash") != digest:
        raise ModelLoadError(f"{path}: the weights do not match the checkpoint's content hash "
                             f"(file corrupted or edited)")
    return Checkpoint(config, state, digest, path, dict(raw.get("training") or {}), FORMAT)


def _from_original(path: Path, raw: dict, sample_rate: int | None) -> Checkpoint:
    state = _tensor_dict(path, raw["state_dict"] if "state_dict" in raw else raw)
    hidden, window = state["fc1.weight"].shape
    latent = state["fc21.weight"].shape[0]
    rate = sample_rate or raw.get("sample_rate") or raw.get("sampling_rate") or 44100
    try:
        config = VAEConfig(window=int(window), hidden=int(hidden), latent=int(latent),
                           sample_rate=int(rate))
    except ValueError as exc:
        raise ModelLoadError(f"{path}: {exc}") from None
    _check_shapes(path, state, config)
    training = {k: raw[k] for k in ("epoch", "loss") if isinstance(raw.get(k), (int, float))}
    return Checkpoint(config, state, weights_hash(state), path, training, "rawaudiovae")
