"""Export a model to where performers already are: nn~ (Max/MSP, Pure Data) and ONNX.

``livelatent export MODEL --to nn~ -o model.ts`` writes a TorchScript module with the methods nn~
calls, each taking and returning one ``(batch, channels, samples)`` buffer:

- ``encode``: audio ``(b, 1, n)`` -> the mean latent ``(b, latent, n / window)``: the buffer cut
  into consecutive windows of ``window`` samples, as nn~ hands them over;
- ``decode``: latents ``(b, latent, t)`` -> audio ``(b, 1, t * window)``, window after window;
- ``forward``: both, audio to audio.

nn~ learns each method's shape from the buffer ``<method>_params`` (input channels, input
ratio, output channels, output ratio) and its inlets' and outlets' names from
``<method>_input_labels`` and ``<method>_output_labels``, and lists them through the exported
``get_methods()`` and ``get_attributes()``: the interface of the ``nn_tilde.Module`` of nn-tilde
1.5.6, which we target, written here so that exporting needs torch alone (nn-tilde 1.6 pins
another torch). Loading the file in Max or Pure Data cannot be tested on this machine; the tests
load it with ``torch.jit.load`` and match livelatent's own codec.

``livelatent export MODEL --to onnx -o DIR`` writes ``encoder.onnx`` (windows ``(batch, window)``
to ``mu`` and ``logvar``) and ``decoder.onnx`` (``z`` to windows), with a dynamic batch, built
with ``onnx.helper`` straight from the weights (no exporter, no tracing).

Any checkpoint livelatent loads exports: a pack, a training run's checkpoint, an original
rawaudiovae ``.pt``.
"""

# no `from __future__ import annotations`: TorchScript reads the exported module's annotations
import os
import warnings
from pathlib import Path

import numpy as np

from .. import optional
from ..atomic import PendingFile, file_in_the_way
from ..errors import ParameterError
from ..config import DEFAULT_MODEL_DIR
from .checkpoint import CHECKPOINT_NAME, PACK_WEIGHTS_NAME, load_checkpoint

__all__ = ["export_nn_tilde", "export_onnx", "cli_export", "NN_TILDE_VERSION", "ONNX_OPSET"]

NN_TILDE_VERSION = "1.5.6"
ONNX_OPSET = 17


def _scripted_module(state: dict, window: int, latent: int, hidden: int):
    import torch
    from torch import nn

    class NNTildeRawAudioVAE(nn.Module):
        """RawAudioVAE with nn~'s methods (see the module's text)."""

        window_size: int
        latent_size: int

        def __init__(self):
            super().__init__()
            self.window_size, self.latent_size = window, latent
            self.fc1, self.fc21 = nn.Linear(window, hidden), nn.Linear(hidden, latent)
            self.fc3, self.fc4 = nn.Linear(latent, hidden), nn.Linear(hidden, window)
            self.methods = ["encode", "decode", "forward"]
            self.attributes = ["none"]
            shapes = {"encode": (1, 1, latent, window), "decode": (latent, window, 1, 1),
                      "forward": (1, 1, 1, 1)}
            for name, shape in shapes.items():
                self.register_buffer(f"{name}_params", torch.tensor(shape))
            self.encode_input_labels = ["(signal) audio in"]
            self.encode_output_labels = [f"(signal) latent {i}" for i in range(latent)]
            self.decode_input_labels = [f"(signal) latent {i}" for i in range(latent)]
            self.decode_output_labels = ["(signal) audio out"]
            self.forward_input_labels = ["(signal) audio in"]
            self.forward_output_labels = ["(signal) audio out"]

        @torch.jit.export
        def encode(self, x: torch.Tensor) -> torch.Tensor:
            batch, frames = x.shape[0], x.shape[2] // self.window_size
            windows = x[:, 0, :frames * self.window_size].reshape(batch, frames, self.window_size)
            mu = self.fc21(torch.relu(self.fc1(windows)))
            return mu.permute(0, 2, 1).contiguous()

        @torch.jit.export
        def decode(self, z: torch.Tensor) -> torch.Tensor:
            batch, frames = z.shape[0], z.shape[2]
            windows = torch.tanh(self.fc4(torch.relu(self.fc3(z.permute(0, 2, 1)))))
            return windows.reshape(batch, 1, frames * self.window_size)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.decode(self.encode(x))

        @torch.jit.export
        def get_methods(self) -> list[str]:
            return self.methods

        @torch.jit.export
        def get_attributes(self) -> list[str]:
            return self.attributes

    module = NNTildeRawAudioVAE()
    wanted = {k: v for k, v in state.items() if k.split(".")[0] in ("fc1", "fc21", "fc3", "fc4")}
    module.load_state_dict({k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in wanted.items()},
                           strict=False)
    with warnings.catch_warnings():     # TorchScript is deprecated in torch, and what nn~ loads
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script(module.eval())


# -- where exports go: checked before any work, written atomically -------------------------------

def _model_files(model) -> list:
    """The files ``load_checkpoint(model)`` may read (a pack folder: either weights file)."""
    path = Path(DEFAULT_MODEL_DIR if model is None else model)
    if path.is_dir():
        return [path / PACK_WEIGHTS_NAME, path / CHECKPOINT_NAME]
    return [path]


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):      # (RuntimeError: a symlink loop, on Python 3.11)
        return False


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or inside it."""
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):      # (RuntimeError: a symlink loop, on Python 3.11)
        return False


def _check_target(output, model, *, folder: bool) -> Path:
    """``output`` as a Path, or a one-line ParameterError when it cannot be written: empty, the
    wrong kind of thing already there, under a regular file, or the model being exported."""
    if output is None or not str(output).strip():
        raise ParameterError("-o: give the " + ("folder to write encoder.onnx and decoder.onnx in"
                                                if folder else ".ts file to write"))
    output = Path(output)
    if folder and output.exists() and not output.is_dir():
        raise ParameterError(f"-o {output}: a file is there; --to onnx writes a folder "
                             f"(encoder.onnx and decoder.onnx): give a folder")
    if not folder and output.is_dir():
        raise ParameterError(f"-o {output}: a folder is there; --to nn~ writes one file: "
                             f"give a file path such as {output / 'model.ts'}")
    blocking = file_in_the_way(output if folder else output.parent)
    if blocking is not None:
        raise ParameterError(f"-o {output}: {blocking} is a file, not a folder")
    if _inside(output if folder else output.parent, DEFAULT_MODEL_DIR):      # (a reinstall would
        raise ParameterError(f"-o {output}: that is livelatent's installed default pack; write "
                             f"the export in a folder of your own")          # drop what it holds)
    targets = [output / "encoder.onnx", output / "decoder.onnx"] if folder else [output]
    for target in targets:
        for source in _model_files(model):
            if _same_file(target, source):
                raise ParameterError(f"-o {output}: that would overwrite {source}, the model being "
                                     f"exported; write the export somewhere else")
    if not folder and output.suffix.lower() != ".ts":
        raise ParameterError(f"-o {output}: nn~ loads TorchScript files named .ts: give a name "
                             f"such as {output.with_suffix('.ts').name}")
    return output


def export_nn_tilde(model, output) -> Path:
    """Write ``model`` (a pack or checkpoint path, or None: the default pack) for nn~."""
    optional.torch()                      # a clear line if torch is missing
    output = _check_target(output, model, folder=False)
    pending = PendingFile(output)     # made now: an unwritable place is said before the work
    try:
        checkpoint = load_checkpoint(DEFAULT_MODEL_DIR if model is None else model)
        c = checkpoint.config
        scripted = _scripted_module(checkpoint.state_dict, c.window, c.latent, c.hidden)
        try:
            scripted.save(str(pending.tmp))
        except (OSError, RuntimeError) as exc:
            raise ParameterError(f"cannot write {output}: {str(exc).splitlines()[0] if str(exc) else exc!r}") from None
    except BaseException:
        pending.discard()
        raise
    return pending.commit()


def _graph(name: str, layers: list, given: str, width: int, outputs: list[str]):
    """A model of dense layers (``layers``: [(weight (out, in), bias, activation)]) from the input
    ``given`` (``(batch, width)``) to ``outputs``: the last layer's columns split equally."""
    from onnx import TensorProto, helper, numpy_helper
    nodes, weights, current = [], [], given
    for i, (weight, bias, activation) in enumerate(layers):
        w, b = f"{name}_w{i}", f"{name}_b{i}"
        weights += [numpy_helper.from_array(np.ascontiguousarray(np.asarray(weight, np.float32).T), w),
                    numpy_helper.from_array(np.asarray(bias, np.float32), b)]
        nodes += [helper.make_node("MatMul", [current, w], [f"{name}_m{i}"]),
                  helper.make_node("Add", [f"{name}_m{i}", b], [f"{name}_a{i}"])]
        current = f"{name}_a{i}"
        if activation:
            nodes.append(helper.make_node(activation, [current], [f"{name}_h{i}"]))
            current = f"{name}_h{i}"
    part = len(layers[-1][1]) // len(outputs)
    if len(outputs) > 1:
        weights.append(numpy_helper.from_array(np.full(len(outputs), part, np.int64), f"{name}_split"))
        nodes.append(helper.make_node("Split", [current, f"{name}_split"], list(outputs), axis=1))
    else:
        nodes.append(helper.make_node("Identity", [current], list(outputs)))
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info(given, TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["batch", part]) for o in outputs],
        initializer=weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
                             producer_name="livelatent")


def export_onnx(model, output) -> tuple[Path, Path]:
    """Write ``encoder.onnx`` and ``decoder.onnx`` of ``model`` into the folder ``output``."""
    onnx = optional.onnx()
    folder = _check_target(output, model, folder=True)
    pending = [PendingFile(folder / "encoder.onnx")]   # (made before the work)
    try:
        pending.append(PendingFile(folder / "decoder.onnx"))
        checkpoint = load_checkpoint(DEFAULT_MODEL_DIR if model is None else model)
        c, w = checkpoint.config, checkpoint.state_dict
        encoder = _graph("encoder", [(w["fc1.weight"], w["fc1.bias"], "Relu"),
                                     (np.concatenate([w["fc21.weight"], w["fc22.weight"]]),
                                      np.concatenate([w["fc21.bias"], w["fc22.bias"]]), None)],
                         "windows", c.window, ["mu", "logvar"])
        decoder = _graph("decoder", [(w["fc3.weight"], w["fc3.bias"], "Relu"),
                                     (w["fc4.weight"], w["fc4.bias"], "Tanh")], "z", c.latent, ["windows"])
        for graph, file in zip((encoder, decoder), pending):
            onnx.checker.check_model(graph)
            try:
                onnx.save(graph, str(file.tmp))
            except OSError as exc:
                raise ParameterError(f"cannot write {file.path}: {exc.strerror or exc}") from None
    except BaseException:
        for file in reversed(pending):      # (the folder made for them goes with the first)
            file.discard()
        raise
    return pending[0].commit(), pending[1].commit()


def cli_export(args) -> int:
    """``livelatent export [MODEL] --to {nn~,onnx} -o PATH``."""
    if args.to == "nn~":
        written = [export_nn_tilde(args.model, args.output)]
    elif args.to == "onnx":
        written = list(export_onnx(args.model, args.output))
    else:
        raise ParameterError(f"--to {args.to!r}: nn~ or onnx")
    for path in written:
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0
