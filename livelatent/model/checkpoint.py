"""Self-describing checkpoints, loaded safely.

Two formats carry the same content. A model pack ships ``model.safetensors``: weights plus a
JSON header (config, sample rate, format version, training summary, content hash), loaded with
``safetensors.numpy`` so that playing never imports torch (it costs a second of start-up).
Training writes ``.pt`` files, plain dicts saved with ``torch.save``::

    {"format": "livelatent.rawaudiovae", "format_version": 1,
     "config": {...VAEConfig...}, "sample_rate": 44100,
     "state_dict": {"fc1.weight": tensor, ...},
     "training": {...summary...}, "content_hash": "sha256 of the weights"}

They load with ``torch.load(weights_only=True)``: nothing in either format can run code. Checkpoints
of the original rawaudiovae code (``{"state_dict": {"fc1.weight": ...}, ...}``) and bare
state dicts load too; their sizes are inferred from the weight shapes.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from .. import optional
from ..atomic import atomic_path
from ..errors import ModelLoadError, ParameterError, is_integral, is_whole
from .config import MAX_MODEL_RATE, MIN_MODEL_RATE, VAEConfig
from .safetensors_file import read_safetensors

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CHECKPOINT_NAME",
    "PACK_WEIGHTS_NAME",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "weights_hash",
]

FORMAT = "livelatent.rawaudiovae"
FORMAT_VERSION = 1
CHECKPOINT_NAME = "model.pt"      # the weights a training run writes in its folder
PACK_WEIGHTS_NAME = "model.safetensors"   # the weights a model pack ships (preferred when present)
LAYERS = ("fc1", "fc21", "fc22", "fc3", "fc4")


@dataclass
class Checkpoint:
    """What a checkpoint file holds, after validation. Weights are numpy arrays."""

    config: VAEConfig
    state_dict: dict[str, np.ndarray]
    content_hash: str
    path: Path | None = None
    training: dict = field(default_factory=dict)
    origin: str = FORMAT          # FORMAT, or "rawaudiovae" for the original code's files

    def build_module(self):
        """The torch module with these weights, in float32 and eval mode (imports torch)."""
        torch = optional.torch()
        module = optional.vae().RawAudioVAE(self.config)
        module.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype=np.float32))
                                for k, v in self.state_dict.items()})
        return module.eval()


def _as_numpy(weight) -> np.ndarray:
    if isinstance(weight, np.ndarray):
        return np.ascontiguousarray(weight)
    weight = weight.detach().cpu().contiguous()      # a torch tensor
    if str(weight.dtype) == "torch.bfloat16":
        weight = weight.float()
    return weight.numpy()


def weights_hash(state_dict) -> str:
    """sha256 over the layer names, dtypes, shapes and bytes of the weights.

    The same for torch tensors and numpy arrays of the same values (dtypes are named as torch
    names them), so a checkpoint keeps its hash when converted between the two formats.
    """
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        array = _as_numpy(state_dict[name])
        digest.update(f"{name}:torch.{array.dtype}:{tuple(array.shape)};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def save_checkpoint(path, module_or_state, config: VAEConfig, *, training: dict | None = None,
                    dtype="float32") -> Path:
    """Write a self-describing checkpoint atomically and return its path.

    A ``.safetensors`` path writes the pack format (no torch needed to load it); anything else a
    ``torch.save`` dict. ``dtype`` float16 (or ``torch.float16``) halves the file; the codec
    computes in float32 either way.
    """
    state = module_or_state.state_dict() if hasattr(module_or_state, "state_dict") else module_or_state
    dtype = np.dtype(str(dtype).replace("torch.", ""))
    arrays = {k: _as_numpy(v).astype(dtype) for k, v in state.items()}
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config.to_dict(),
        "sample_rate": config.sample_rate,
        "training": dict(training or {}),
        "content_hash": weights_hash(arrays),
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".safetensors":
            save_file(arrays, tmp, metadata={"livelatent": json.dumps(header)})
        else:
            torch = optional.torch()
            torch.save({**header, "state_dict": {k: torch.from_numpy(v) for k, v in arrays.items()}}, tmp)
    return path


def load_checkpoint(path, *, sample_rate: int | None = None) -> Checkpoint:
    """Load and validate a checkpoint file, or the ``model.pt`` of a pack folder.

    Raises :class:`ModelLoadError` naming the file for a pickle that carries code, a truncated
    or corrupt file, a file that is not a checkpoint, and weights that do not match the config.
    ``sample_rate`` is the rate of a file that records none (original rawaudiovae files); a file
    that records another is refused.
    """
    if sample_rate is not None and not (is_whole(sample_rate)
                                        and MIN_MODEL_RATE <= sample_rate <= MAX_MODEL_RATE):
        raise ParameterError(f"sample_rate={sample_rate!r} must be a whole number of Hz from "
                             f"{MIN_MODEL_RATE} to {MAX_MODEL_RATE}")
    path = Path(path)
    if path.is_dir():
        pack = path / PACK_WEIGHTS_NAME
        if not pack.exists() and not (path / CHECKPOINT_NAME).exists():
            raise ModelLoadError(f"no model in {path}: neither {PACK_WEIGHTS_NAME} nor "
                                 f"{CHECKPOINT_NAME} is there")
        path = pack if pack.exists() else path / CHECKPOINT_NAME
    if not path.exists():
        raise ModelLoadError(f"no model file at {path}")
    if path.is_dir():
        raise ModelLoadError(f"{path} is a folder, not a model file")
    if not path.is_file():          # a named pipe or a device: reading it would wait for ever
        raise ModelLoadError(f"{path} is not a regular file (a pipe or a device?): give a model "
                             f"pack folder or a checkpoint file")
    kind = _sniff(path)
    if path.suffix == ".safetensors" or kind == "safetensors":
        return _from_safetensors(path, sample_rate)
    if kind is not None:
        raise ModelLoadError(f"{path}: {kind}")
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


def _from_safetensors(path: Path, sample_rate: int | None) -> Checkpoint:
    try:
        metadata, state = read_safetensors(path)
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ModelLoadError(f"{path}: truncated or corrupt safetensors file "
                             f"({str(exc)[:200]})") from None
    if "livelatent" not in metadata and "fc1.weight" in state:     # weights saved by another tool
        return _from_original(path, state, sample_rate)
    try:
        header = json.loads(metadata["livelatent"])
    except (KeyError, TypeError, ValueError, RecursionError):     # (nested thousands deep)
        raise ModelLoadError(f"{path}: not a livelatent model (its safetensors header has no "
                             f"livelatent settings, and no RawAudioVAE weights)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelLoadError(f"{path}: not a livelatent model (format {header!r:.60})")
    return _from_livelatent(path, {**header, "state_dict": state}, sample_rate)


_AUDIO_MAGIC = (b"RIFF", b"RF64", b"FORM", b"fLaC", b"OggS", b"ID3", b"\xff\xfb", b"\xff\xf3",
                b"\xff\xf2")


def _sniff(path: Path) -> str | None:
    """What the file is when it is plainly not a torch save: None for a torch save (a zip
    without TorchScript code, or a pickle), ``"safetensors"`` for a safetensors file under
    another name, else the sentence the error gives. torch.load's own errors on such files
    mislead (random bytes or JSON "carry globals", a WAV fails with an IndexError)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not head:
        return "not a checkpoint: the file is empty"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            return "truncated or corrupt checkpoint (its zip archive is cut short or damaged)"
        if any("/code/" in n or n.endswith("/constants.pkl") for n in names):
            return ("a TorchScript export (made by livelatent export), not a checkpoint: give the "
                    "checkpoint or pack it was exported from")
        return None
    if head[:1] == b"\x80":                   # a pickle: torch's legacy format, or a plain one
        return None
    if len(head) > 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000:
        return "safetensors"
    if path.suffix.lower() == ".onnx" or (head[:1] == b"\x08" and head[2:3] in b"\x12\x1a\x22\x3a\x42"):
        return ("an ONNX file, not a checkpoint: livelatent loads torch checkpoints and packs; give "
                "the checkpoint or pack it was exported from")
    if head.startswith(_AUDIO_MAGIC):
        return "an audio file, not a checkpoint: give a model pack folder or a .pt checkpoint"
    if b"\x00" not in head:
        try:
            text = head.decode("utf-8").lstrip()
        except UnicodeDecodeError:
            text = None
        if text is not None:
            what = "a JSON file" if text[:1] in ("{", "[") else "a text file"
            return f"not a checkpoint: {what}, not a torch save"
    return "not a checkpoint: not a torch save (nor a safetensors file)"


def _safe_torch_load(path: Path):
    torch = optional.torch()
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


def _tensor_dict(path: Path, state) -> dict[str, np.ndarray]:
    if not isinstance(state, dict):
        raise ModelLoadError(f"{path}: 'state_dict' is a {type(state).__name__}, not a dict of weights")
    out = {}
    for layer in LAYERS:
        for part in ("weight", "bias"):
            key = f"{layer}.{part}"
            tensor = state.get(key)
            if tensor is None:
                prefixed = [k for k in map(str, state) if k.endswith("." + key)][:1]
                hint = (f" (it holds {prefixed[0]!r}: weights saved from a wrapped module, such as "
                        f"DistributedDataParallel's 'module.'; save the inner module's state_dict)"
                        if prefixed else "")
                raise ModelLoadError(f"{path}: weight '{key}' is missing; a RawAudioVAE has "
                                     f"{', '.join(LAYERS)} (weight and bias each){hint}")
            try:
                array = _as_numpy(tensor)
            except (AttributeError, TypeError, RuntimeError):
                array = None
            if array is None or array.dtype.kind != "f":
                raise ModelLoadError(f"{path}: '{key}' is not a floating-point tensor")
            out[key] = array
    return out


def _check_shapes(path: Path, state: dict[str, np.ndarray], config: VAEConfig) -> None:
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
        if not np.isfinite(tensor).all():
            raise ModelLoadError(f"{path}: weight '{key}' contains NaN or infinite values")
        with np.errstate(over="ignore"):
            overflows = tensor.dtype.itemsize > 4 and not np.isfinite(tensor.astype(np.float32)).all()
        if overflows:
            raise ModelLoadError(f"{path}: weight '{key}' holds values beyond float32's range "
                                 f"(about 3.4e38), which the model plays in")


def _same_rate(path: Path, recorded, asked: int) -> None:
    """A rate asked for must be the one the file records, if it records one: the model made
    its windows at that rate, and played at another every sound would move in pitch and speed."""
    valid = is_integral(recorded) and MIN_MODEL_RATE <= recorded <= MAX_MODEL_RATE
    if valid and recorded != asked:            # (a malformed one: the rate asked for replaces it)
        raise ModelLoadError(f"{path} records its sample rate, {recorded!r} Hz; sample_rate={asked} "
                             f"would play it at the wrong pitch and speed (sample_rate is for "
                             f"files that record none)")


def _check_computes(path: Path, state: dict[str, np.ndarray], config: VAEConfig) -> None:
    """Finite weights can still overflow float32 inside a layer (weights of 1e38 multiplied
    and summed): such a model decodes NaN, which silences every voice of a mix. Encode a few
    windows (silence, a full-scale tone, noise) and decode a few latent points (the origin and
    standard normal draws) the way the codec does, in float32: each must come out finite.
    Half-precision weights (the default pack's) need no check, and get none: at most 65504
    each, two layers of them cannot reach float32's range from any window or from any point
    within the engine's limit (2048 * 65504 * 256 * 65504 * 1e6 is about 2e21), and widening
    them here took half the load's time, which the codec then spends again."""
    if all(value.dtype == np.float16 for value in state.values()):
        return
    w = {key: np.asarray(value, dtype=np.float32) for key, value in state.items()}
    layer = lambda x, name: x @ w[f"{name}.weight"].T + w[f"{name}.bias"]
    rng = np.random.default_rng(0)
    windows = np.stack([np.zeros(config.window), np.sin(np.arange(config.window) * 0.1),
                        rng.uniform(-1, 1, config.window)]).astype(np.float32)
    points = np.concatenate([np.zeros((1, config.latent)),
                             rng.standard_normal((4, config.latent))]).astype(np.float32)
    with np.errstate(all="ignore"):
        hidden = np.maximum(layer(windows, "fc1"), 0)
        encoded = [layer(hidden, "fc21"), layer(hidden, "fc22")]
        decoded = np.tanh(layer(np.maximum(layer(points, "fc3"), 0), "fc4"))
    for what, values in (("encoding", encoded[0]), ("encoding", encoded[1]), ("decoding", decoded)):
        if not np.isfinite(values).all():
            raise ModelLoadError(f"{path}: the model's weights overflow float32 (the largest is "
                                 f"{max(float(np.abs(v).max()) for v in w.values()):.3g}): "
                                 f"{what} gives NaN or infinite values")


def _from_livelatent(path: Path, raw: dict, sample_rate: int | None) -> Checkpoint:
    version = raw.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelLoadError(f"{path}: checkpoint format version {version!r} is not a whole "
                             f"number from 1 (the file is damaged or not livelatent's)")
    if version > FORMAT_VERSION:
        raise ModelLoadError(f"{path}: checkpoint format version {version!r} is newer than this "
                             f"livelatent reads ({FORMAT_VERSION}); upgrade livelatent")
    try:
        cfg = dict(raw["config"])
        if sample_rate is not None:
            _same_rate(path, cfg.get("sample_rate"), sample_rate)
            cfg["sample_rate"] = int(sample_rate)
        config = VAEConfig.from_dict(cfg)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{path}: the checkpoint's config is malformed ({exc})") from None
    state = _tensor_dict(path, raw.get("state_dict"))
    _check_shapes(path, state, config)
    _check_computes(path, state, config)
    digest = weights_hash(state)
    if raw.get("content_hash") != digest:
        raise ModelLoadError(f"{path}: the weights do not match the checkpoint's content hash "
                             f"(file corrupted or edited)")
    training = raw.get("training") or {}
    if not isinstance(training, dict):
        raise ModelLoadError(f"{path}: the checkpoint's training summary is malformed (a "
                             f"{type(training).__name__}, not a dict)")
    return Checkpoint(config, state, digest, path, dict(training), FORMAT)


def _from_original(path: Path, raw: dict, sample_rate: int | None) -> Checkpoint:
    state = _tensor_dict(path, raw["state_dict"] if "state_dict" in raw else raw)
    for key in ("fc1.weight", "fc21.weight"):          # the sizes are read from these two
        if state[key].ndim != 2:
            raise ModelLoadError(f"{path}: malformed checkpoint: {key} has shape "
                                 f"{tuple(state[key].shape)}, expected a 2-D weight")
    hidden, window = state["fc1.weight"].shape
    latent = state["fc21.weight"].shape[0]
    recorded = [r for r in (raw.get("sample_rate"), raw.get("sampling_rate")) if r is not None]
    if sample_rate is not None and recorded:
        _same_rate(path, recorded[0], sample_rate)
    given = [r for r in (sample_rate, *recorded) if r is not None]
    rate = given[0] if given else 44100             # (a rate of 0 is a malformed one, said below)
    if not is_integral(rate):
        raise ModelLoadError(f"{path}: malformed checkpoint: its sample rate is {rate!r}, not a "
                             f"whole number of Hz")
    try:
        config = VAEConfig(window=int(window), hidden=int(hidden), latent=int(latent),
                           sample_rate=int(rate))
    except ValueError as exc:
        raise ModelLoadError(f"{path}: {exc}") from None
    _check_shapes(path, state, config)
    _check_computes(path, state, config)
    training = {k: raw[k] for k in ("epoch", "loss") if isinstance(raw.get(k), (int, float))}
    return Checkpoint(config, state, weights_hash(state), path, training, "rawaudiovae")
