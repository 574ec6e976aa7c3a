"""Files that are not checkpoints are named for what they are, in one line, without torch's
warnings: not the misleading "carries code" or an IndexError."""

import json
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

from livelatent.errors import ModelLoadError
from livelatent.model.checkpoint import load_checkpoint, save_checkpoint
from livelatent.model.export import export_nn_tilde, export_onnx
from livelatent.model.vae import RawAudioVAE, VAEConfig

SMALL = VAEConfig(window=256, hidden=32, latent=4)


@pytest.fixture
def model(tmp_path):
    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "m" / "model.pt", RawAudioVAE(SMALL), SMALL)


def _refusal(path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # torch's TorchScript warning must not show
        with pytest.raises(ModelLoadError) as info:
            load_checkpoint(path)
    text = str(info.value)
    assert str(path) in text and "\n" not in text
    assert "carries code" not in text and "Error" not in text, text
    return text


def test_random_bytes_text_json_and_markdown_are_not_torch_saves(tmp_path):
    cases = {"random.pt": np.random.default_rng(0).bytes(5000), "notes.md": b"# My model\n\nnotes\n",
             "summary.json": json.dumps({"epochs": 3}).encode(), "empty.pt": b""}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    assert "not a torch save" in _refusal(tmp_path / "random.pt")
    assert "a text file, not a torch save" in _refusal(tmp_path / "notes.md")
    assert "a JSON file, not a torch save" in _refusal(tmp_path / "summary.json")
    assert "empty" in _refusal(tmp_path / "empty.pt")


def test_audio_is_named_audio(tmp_path):
    sf.write(tmp_path / "tone.wav", np.zeros(1000, np.float32), 44100)
    sf.write(tmp_path / "tone.flac", np.zeros(1000, np.float32), 44100)
    for name in ("tone.wav", "tone.flac"):
        assert "an audio file, not a checkpoint" in _refusal(tmp_path / name)


def test_exports_name_where_they_came_from(model, tmp_path):
    ts = export_nn_tilde(model, tmp_path / "model.ts")
    assert "a TorchScript export (made by livelatent export)" in _refusal(ts)
    renamed = tmp_path / "exported.pt"          # the same, under a checkpoint's name
    renamed.write_bytes(ts.read_bytes())
    assert "give the checkpoint or pack it was exported from" in _refusal(renamed)
    encoder, _ = export_onnx(model, tmp_path / "onnx")
    assert "an ONNX file" in _refusal(encoder)


def test_a_safetensors_pack_under_another_name_still_loads(model, tmp_path):
    weights = save_checkpoint(tmp_path / "model.safetensors", load_checkpoint(model).state_dict, SMALL)
    renamed = tmp_path / "weights.bin"
    renamed.write_bytes(weights.read_bytes())
    assert load_checkpoint(renamed).content_hash == load_checkpoint(model).content_hash


def test_real_checkpoints_still_load(model):
    assert load_checkpoint(model).config == SMALL
    assert load_checkpoint(model.parent).config == SMALL


def _original(window=256, hidden=32, latent=4, dtype=torch.float32):
    torch.manual_seed(1)
    layers = {"fc1": (hidden, window), "fc21": (latent, hidden), "fc22": (latent, hidden),
              "fc3": (hidden, latent), "fc4": (window, hidden)}
    state = {}
    for name, shape in layers.items():
        state[f"{name}.weight"] = torch.randn(*shape).to(dtype)
        state[f"{name}.bias"] = torch.randn(shape[0]).to(dtype)
    return state


@pytest.mark.parametrize("window", [1001, 4, 1])
def test_a_window_no_voice_can_play_is_refused_at_load(tmp_path, window):
    path = tmp_path / f"w{window}.pt"
    torch.save(_original(window=window), path)
    assert "must be an even number of samples from 8" in _refusal(path)


def test_a_sample_rate_of_zero_is_refused_not_taken_as_44100(tmp_path):
    path = tmp_path / "zero.pt"
    torch.save({"state_dict": _original(), "sampling_rate": 0}, path)
    assert "sample_rate=0" in _refusal(path)


def test_bfloat16_safetensors_from_another_tool_load_exactly(tmp_path):
    from safetensors.torch import save_file
    state = _original(dtype=torch.bfloat16)
    save_file(state, tmp_path / "plain.safetensors")
    loaded = load_checkpoint(tmp_path / "plain.safetensors")
    assert loaded.config.window == 256 and loaded.origin == "rawaudiovae"
    for key, tensor in state.items():
        np.testing.assert_array_equal(loaded.state_dict[key], tensor.float().numpy())
