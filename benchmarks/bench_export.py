"""How closely the exported models play the pack: nn~ (TorchScript) and ONNX against the codec.

64 consecutive windows of the pack's cello are encoded and decoded by livelatent's codec (numpy,
float32: what plays) and by each export (the nn~ module's ``encode``/``decode`` on one buffer;
the ONNX graphs in onnxruntime). The figures are the largest absolute differences; the baseline,
from the same run, is the difference between the codec's own two backends (numpy and torch),
the rounding any two float32 implementations of the same layers show.

Run: ``python benchmarks/bench_export.py`` (needs torch, onnx, onnxruntime).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnxruntime
import soundfile as sf
import torch

from livelatent.config import DEFAULT_MODEL_DIR
from livelatent.model.codec import load_model
from livelatent.model.export import export_nn_tilde, export_onnx

WINDOWS = 64


def main() -> None:
    warnings.simplefilter("ignore", DeprecationWarning)
    codec, reference = load_model(), load_model(backend="torch")
    audio, _ = sf.read(DEFAULT_MODEL_DIR / "sources" / "cello.flac", dtype="float32", always_2d=True)
    windows = audio[:WINDOWS * codec.window, 0].reshape(WINDOWS, codec.window)
    mu, logvar = codec.encode(windows)
    decoded = codec.decode(mu)
    mu_t, logvar_t = reference.encode(windows)
    print(f"baseline, the codec's numpy against its torch backend: encode {np.abs(mu - mu_t).max():.1e}, "
          f"decode {np.abs(decoded - reference.decode(mu)).max():.1e}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        scripted = torch.jit.load(str(export_nn_tilde(None, tmp / "pack.ts")))
        with torch.no_grad():
            encoded = scripted.encode(torch.from_numpy(windows.reshape(1, 1, -1).copy())).numpy()[0].T
            back = scripted.decode(torch.from_numpy(mu.T[None].copy())).numpy()[0, 0]
        print(f"nn~ (TorchScript): encode {np.abs(encoded - mu).max():.1e}, decode "
              f"{np.abs(back.reshape(WINDOWS, -1) - decoded).max():.1e}")
        encoder_path, decoder_path = export_onnx(None, tmp / "onnx")
        encoder = onnxruntime.InferenceSession(str(encoder_path))
        decoder = onnxruntime.InferenceSession(str(decoder_path))
        mu_o, logvar_o = encoder.run(["mu", "logvar"], {"windows": windows})
        (back_o,) = decoder.run(["windows"], {"z": mu})
        print(f"ONNX (onnxruntime): mu {np.abs(mu_o - mu).max():.1e}, logvar {np.abs(logvar_o - logvar).max():.1e}, "
              f"decode {np.abs(back_o - decoded).max():.1e}")


if __name__ == "__main__":
    main()
