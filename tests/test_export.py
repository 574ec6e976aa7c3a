"""Export: the default pack and an original rawaudiovae checkpoint, written for nn~ (TorchScript
with nn~'s method attributes) and as ONNX graphs, give livelatent's own encode and decode."""

import numpy as np
import onnxruntime
import pytest
import soundfile as sf
import torch

from livelatent import load_model
from livelatent.cli import main as cli_main
from livelatent.model.vae import RawAudioVAE, VAEConfig
from pathutil import PACK


def _audio(frames: int) -> np.ndarray:
    audio, _ = sf.read(PACK / "cello.flac", dtype="float32", always_2d=True)
    return audio[:frames * 1024, 0]


def _original(tmp_path):
    torch.manual_seed(2)
    module = RawAudioVAE(VAEConfig(window=1024, hidden=96, latent=16)).eval()
    path = tmp_path / "original.pt"
    torch.save({"state_dict": module.state_dict(), "epoch": 1}, path)
    return path


@pytest.mark.parametrize("which", ["pack", "original"])
def test_nn_tilde_export_has_nn_tilde_methods_and_matches_the_codec(tmp_path, which):
    model = None if which == "pack" else _original(tmp_path)
    codec = load_model(model)
    args = [] if model is None else [str(model)]
    assert cli_main(["export", *args, "--to", "nn~", "-o", str(tmp_path / "model.ts")]) == 0
    scripted = torch.jit.load(str(tmp_path / "model.ts"))
    latent = codec.latent_dim
    assert scripted.get_methods() == ["encode", "decode", "forward"]
    assert scripted.encode_params.tolist() == [1, 1, latent, 1024]
    assert scripted.decode_params.tolist() == [latent, 1024, 1, 1]
    assert scripted.forward_params.tolist() == [1, 1, 1, 1]
    assert len(scripted.encode_output_labels) == latent and len(scripted.decode_input_labels) == latent
    audio = _audio(8)
    buffers = np.stack([audio, audio[::-1].copy()])[:, None, :]            # (batch 2, 1, 8192)
    with torch.no_grad():
        encoded = scripted.encode(torch.from_numpy(buffers)).numpy()
        assert encoded.shape == (2, latent, 8)
        for b in range(2):                                                  # consecutive windows
            mu, _ = codec.encode(buffers[b, 0].reshape(8, 1024))
            np.testing.assert_allclose(encoded[b].T, mu, atol=1e-5)
        z = np.random.default_rng(0).standard_normal((3, latent, 5)).astype(np.float32)
        decoded = scripted.decode(torch.from_numpy(z)).numpy()
        assert decoded.shape == (3, 1, 5 * 1024)
        for b in range(3):
            np.testing.assert_allclose(decoded[b, 0].reshape(5, 1024), codec.decode(z[b].T), atol=1e-5)
        both = scripted.forward(torch.from_numpy(buffers)).numpy()
        mu, _ = codec.encode(buffers[0, 0].reshape(8, 1024))
        np.testing.assert_allclose(both[0, 0].reshape(8, 1024), codec.decode(mu), atol=1e-5)


@pytest.mark.parametrize("which", ["pack", "original"])
def test_onnx_export_runs_in_onnxruntime_with_any_batch_and_matches_the_codec(tmp_path, which):
    model = None if which == "pack" else _original(tmp_path)
    codec = load_model(model)
    args = [] if model is None else [str(model)]
    assert cli_main(["export", *args, "--to", "onnx", "-o", str(tmp_path / "onnx")]) == 0
    encoder = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "encoder.onnx"))
    decoder = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "decoder.onnx"))
    for batch in (1, 7):
        windows = _audio(batch).reshape(batch, 1024)
        mu, logvar = encoder.run(["mu", "logvar"], {"windows": windows})
        expected_mu, expected_logvar = codec.encode(windows)
        np.testing.assert_allclose(mu, expected_mu, atol=1e-5)
        np.testing.assert_allclose(logvar, expected_logvar, atol=1e-5)
        (decoded,) = decoder.run(["windows"], {"z": mu})
        np.testing.assert_allclose(decoded, codec.decode(mu), atol=1e-5)


def test_export_refuses_what_it_cannot_write(tmp_path, capsys):
    assert cli_main(["export", str(tmp_path / "nothing"), "--to", "onnx", "-o", str(tmp_path / "o")]) == 2
    assert "error" in capsys.readouterr().err
    # a failed export left behind, empty, the folders it had made to write in
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    for to, output in (("onnx", tmp_path / "new" / "onnx"), ("nn~", tmp_path / "new2" / "m.ts")):
        assert cli_main(["export", str(text), "--to", to, "-o", str(output)]) == 2
        assert "not a checkpoint" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    with pytest.raises(SystemExit):
        cli_main(["export", "--to", "coreml", "-o", str(tmp_path / "o")])


def test_export_never_writes_into_the_installed_default_pack(capsys):
    # --to onnx -o <the pack> wrote encoder.onnx and decoder.onnx among the installed files
    from livelatent.config import DEFAULT_MODEL_DIR
    before = sorted(p.name for p in DEFAULT_MODEL_DIR.iterdir())
    for to, output in (("onnx", DEFAULT_MODEL_DIR), ("nn~", DEFAULT_MODEL_DIR / "m.ts"),
                       ("onnx", DEFAULT_MODEL_DIR / "exports"), ("nn~", DEFAULT_MODEL_DIR / "sub" / "m.ts")):
        assert cli_main(["export", "--to", to, "-o", str(output)]) == 2
        assert "livelatent's installed default pack" in capsys.readouterr().err
    assert sorted(p.name for p in DEFAULT_MODEL_DIR.iterdir()) == before
