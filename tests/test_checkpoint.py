"""Checkpoints: self-describing round trips, original rawaudiovae files, and refusals."""

import json
import os
import pickle

import numpy as np
import pytest
import torch

from livelatent import ModelLoadError, ParameterError, load_model
from livelatent.model.checkpoint import load_checkpoint, save_checkpoint
from livelatent.model.vae import RawAudioVAE, VAEConfig

SMALL = VAEConfig(window=1024, hidden=96, latent=16, sample_rate=22050)


@pytest.fixture
def module():
    torch.manual_seed(1)
    return RawAudioVAE(SMALL).eval()


def _latents(n=6, dims=16):
    return np.random.default_rng(0).standard_normal((n, dims)).astype(np.float32)


def test_round_trip_gives_identical_decode_and_hash(module, tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", module, SMALL, training={"epoch": 4})
    first = load_model(path)
    again = load_model(path)
    assert first.config == SMALL and first.sample_rate == 22050
    assert first.checkpoint.training["epoch"] == 4
    assert first.content_hash == again.content_hash
    z = _latents()
    with torch.inference_mode():
        expected = module.decode(torch.from_numpy(z)).numpy()
    np.testing.assert_array_equal(first.decode(z), again.decode(z))
    np.testing.assert_allclose(first.decode(z), expected, atol=1e-5)
    # a pack folder loads its model.pt
    pack = tmp_path / "pack"
    save_checkpoint(pack / "model.pt", module, SMALL)
    assert load_model(pack).content_hash == first.content_hash


def test_float16_checkpoint_is_half_the_size_and_close(module, tmp_path):
    full = save_checkpoint(tmp_path / "f32.pt", module, SMALL)
    half = save_checkpoint(tmp_path / "f16.pt", module, SMALL, dtype=torch.float16)
    assert os.path.getsize(half) < 0.6 * os.path.getsize(full)
    z = _latents()
    np.testing.assert_allclose(load_model(half).decode(z), load_model(full).decode(z), atol=2e-2)


def _numpy_decode(state, z):
    w = {k: v.numpy().astype(np.float64) for k, v in state.items()}
    h = np.maximum(z @ w["fc3.weight"].T + w["fc3.bias"], 0.0)
    return np.tanh(h @ w["fc4.weight"].T + w["fc4.bias"])


def _numpy_encode(state, x):
    w = {k: v.numpy().astype(np.float64) for k, v in state.items()}
    h = np.maximum(x @ w["fc1.weight"].T + w["fc1.bias"], 0.0)
    return h @ w["fc21.weight"].T + w["fc21.bias"], h @ w["fc22.weight"].T + w["fc22.bias"]


def test_original_rawaudiovae_checkpoint_decodes_as_a_numpy_forward_pass(module, tmp_path):
    path = tmp_path / "original.pt"
    torch.save({"state_dict": module.state_dict(), "epoch": 3}, path)
    codec = load_model(path, sample_rate=22050)
    assert (codec.window, codec.config.hidden, codec.latent_dim) == (1024, 96, 16)   # inferred from shapes
    assert codec.sample_rate == 22050
    assert codec.checkpoint.origin == "rawaudiovae" and codec.checkpoint.training["epoch"] == 3
    z = _latents()
    np.testing.assert_allclose(codec.decode(z), _numpy_decode(module.state_dict(), z), atol=1e-5)
    x = np.sin(np.arange(2 * 1024) / 7.0).reshape(2, 1024).astype(np.float32)
    mu, logvar = codec.encode(x)
    mu_ref, logvar_ref = _numpy_encode(module.state_dict(), x)
    np.testing.assert_allclose(mu, mu_ref, atol=1e-5)
    np.testing.assert_allclose(logvar, logvar_ref, atol=1e-5)
    # without a rate the original file is taken to be 44.1 kHz, as the paper's model
    assert load_model(path).sample_rate == 44100


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_carries_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": _Payload(marker)}, path)
    with pytest.raises(ModelLoadError, match="evil.pt") as info:
        load_model(path)
    assert "refused" in str(info.value)
    assert not marker.exists()
    # the same payload as a plain pickle file
    plain = tmp_path / "evil.pkl"
    plain.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ModelLoadError, match="evil.pkl"):
        load_checkpoint(plain)
    assert not marker.exists()


def test_truncated_file_is_a_clear_error(module, tmp_path):
    with pytest.raises(ParameterError, match="sample_rate=3 must be a whole number of Hz"):
        load_model(tmp_path / "flat.pt", sample_rate=3)          # the caller's, not the file's
    good = save_checkpoint(tmp_path / "good.pt", module, SMALL)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="cut.pt.*(truncated|corrupt)"):
        load_model(cut)


def test_text_file_is_not_a_checkpoint(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("these are my notes, not a model\n")
    with pytest.raises(ModelLoadError, match="notes.pt.*not a checkpoint"):
        load_model(text)


def test_dict_without_weights_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "dict.pt"
    torch.save({"epoch": 3, "loss": 0.1}, path)
    with pytest.raises(ModelLoadError, match="dict.pt.*not a livelatent or rawaudiovae checkpoint"):
        load_model(path)
    missing = tmp_path / "partial.pt"
    torch.save({"state_dict": {"fc1.weight": torch.zeros(4, 4)}}, missing)
    with pytest.raises(ModelLoadError, match="partial.pt.*fc1.bias.*missing"):
        load_model(missing)


def test_weights_that_do_not_match_the_config_are_refused(module, tmp_path):
    state = dict(module.state_dict())
    state["fc3.weight"] = torch.zeros(96, 12)          # latent 12 where fc21 says 16
    path = tmp_path / "mismatch.pt"
    torch.save({"state_dict": state}, path)
    with pytest.raises(ModelLoadError, match="mismatch.pt.*fc3.weight"):
        load_model(path)


def test_edited_weights_fail_the_content_hash(module, tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", module, SMALL)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["fc4.bias"] += 1.0
    torch.save(payload, path)
    with pytest.raises(ModelLoadError, match="m.pt.*content hash"):
        load_model(path)


def test_malformed_checkpoints_are_clear_errors(module, tmp_path):
    """What a probe built that ended in a traceback, or loaded as a 1 Hz model."""
    from safetensors.torch import save_file
    state = dict(module.state_dict())
    cases = {"flat.pt": {"state_dict": {**state, "fc1.weight": state["fc1.weight"].reshape(-1)}},
             "scalar.pt": {"state_dict": {**state, "fc21.weight": torch.tensor(1.0)}},
             "rate-list.pt": {"state_dict": state, "sample_rate": [1]},
             "rate-three.pt": {"state_dict": state, "sample_rate": 3}}
    for name, payload in cases.items():
        torch.save(payload, tmp_path / name)
    for name, match in [("flat.pt", r"fc1.weight has shape \(\d+,\), expected a 2-D weight"),
                        ("scalar.pt", r"fc21.weight has shape \(\), expected a 2-D weight"),
                        ("rate-list.pt", r"sample rate is \[1\], not a whole number"),
                        ("rate-three.pt", "sample_rate=3 must be from 1000 to 768000 Hz")]:
        with pytest.raises(ModelLoadError, match=f"{name}.*{match}"):
            load_model(tmp_path / name)
    good = save_checkpoint(tmp_path / "good.pt", module, SMALL)
    for training in ("abc", [1, 2], 5):
        payload = torch.load(good, weights_only=True)
        payload["training"] = training
        torch.save(payload, tmp_path / "training.pt")
        with pytest.raises(ModelLoadError, match="training summary is malformed"):
            load_model(tmp_path / "training.pt")
    header = {k: v for k, v in torch.load(good, weights_only=True).items() if k != "state_dict"}
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "t.safetensors",
              metadata={"livelatent": json.dumps({**header, "training": "abc"})})
    with pytest.raises(ModelLoadError, match="t.safetensors.*training summary is malformed"):
        load_model(tmp_path / "t.safetensors")


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(ModelLoadError, match="nowhere.pt"):
        load_model(tmp_path / "nowhere.pt")


def _state(module):
    return {k: v.numpy().copy() for k, v in module.state_dict().items()}


def test_weights_that_overflow_float32_are_refused_not_decoded_to_nan(module, tmp_path):
    # finite in float64 (1e300) became inf in the codec's float32 copy; 3e38 in float32 overflowed
    # inside a layer: both loaded, decoded NaN, and exported
    big = {k: v.astype(np.float64) for k, v in _state(module).items()}
    big["fc4.weight"][0, 0] = 1e300
    path = save_checkpoint(tmp_path / "f64.safetensors", big, SMALL, dtype="float64")
    with _no_warnings():                   # ("overflow encountered in cast" leaked)
        with pytest.raises(ModelLoadError, match="fc4.weight' holds values beyond float32's range"):
            load_model(path)
    huge = _state(module)
    huge["fc3.weight"][:] = 3e38
    path = save_checkpoint(tmp_path / "huge.safetensors", huge, SMALL)
    with pytest.raises(ModelLoadError, match="weights overflow float32 .* decoding gives NaN"):
        load_model(path)
    with pytest.raises(ModelLoadError, match="weights overflow float32"):
        load_checkpoint(path)                       # (what an export reads)


class _no_warnings:
    def __enter__(self):
        import warnings
        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)


def test_a_model_that_is_a_pipe_or_a_folder_is_refused_at_once(module, tmp_path):
    # a named pipe waited for a writer for ever
    os.mkfifo(tmp_path / "pipe.pt")
    with pytest.raises(ModelLoadError, match="pipe.pt is not a regular file"):
        load_model(tmp_path / "pipe.pt")
    pack = tmp_path / "pack"
    (pack / "model.safetensors").mkdir(parents=True)
    with pytest.raises(ModelLoadError, match="model.safetensors is a folder, not a model file"):
        load_model(pack)


def test_json_nested_thousands_deep_is_a_clear_error_not_a_recursion_error(module, tmp_path):
    from safetensors.numpy import save_file
    deep = "[" * 100000 + "]" * 100000
    path = tmp_path / "deep.safetensors"
    save_file({k: np.ascontiguousarray(v) for k, v in _state(module).items()}, str(path),
              metadata={"livelatent": deep})
    with pytest.raises(ModelLoadError, match="deep.safetensors: not a livelatent model"):
        load_model(path)
    pack = tmp_path / "pack"
    save_checkpoint(pack / "model.safetensors", module, SMALL)
    (pack / "pack.json").write_text(deep)
    with pytest.warns(UserWarning, match="pack.json: not a valid pack file .*nested too deep"):
        assert load_model(pack).config == SMALL


def test_a_rate_asked_for_that_the_file_contradicts_is_refused(module, tmp_path):
    # load_model(path, sample_rate=...) played a 22050 Hz model at 44100 without a word
    path = save_checkpoint(tmp_path / "m.safetensors", module, SMALL)
    assert load_model(path, sample_rate=22050).sample_rate == 22050
    with pytest.raises(ModelLoadError, match="records its sample rate, 22050 Hz; sample_rate=44100 "
                                             "would play it at the wrong pitch"):
        load_model(path, sample_rate=44100)
    original = tmp_path / "original.pt"
    torch.save({"state_dict": module.state_dict(), "sample_rate": 16000}, original)
    with pytest.raises(ModelLoadError, match="records its sample rate, 16000 Hz"):
        load_model(original, sample_rate=44100)


def test_info_shows_the_config_loaded_and_survives_a_malformed_training_summary(module, tmp_path,
                                                                               capsys):
    from livelatent.cli import main
    summary = {"config": {"sample_rate": 44100}, "metrics": {"model": {"files": 1}}, "history": [1, 2]}
    path = save_checkpoint(tmp_path / "m.safetensors", module, SMALL, training=summary)
    assert main(["info", str(path)]) == 0               # AttributeError, KeyError before
    shown = capsys.readouterr().out
    assert "sample_rate: 22050" in shown and "training summary cannot be shown as a card" in shown
    good = {"config": {"sample_rate": 44100}, "history": [{"epoch": 1, "loss": 0.5, "lr": 1e-3}]}
    path = save_checkpoint(tmp_path / "g.safetensors", module, SMALL, training=good)
    assert main(["info", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "22050 Hz mono" in shown and "44100" not in shown     # the loaded config's, not the summary's


def test_weights_saved_from_a_wrapped_module_say_what_to_save_instead(module, tmp_path):
    # a DistributedDataParallel model's state_dict names every weight "module.fc1.weight"
    path = tmp_path / "ddp.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in module.state_dict().items()}}, path)
    with pytest.raises(ModelLoadError, match="it holds 'module.fc1.weight': weights saved from a "
                                             "wrapped module"):
        load_model(path)


def test_a_rate_asked_for_replaces_a_malformed_recorded_one(module, tmp_path):
    for recorded in (0, "44.1k"):
        path = tmp_path / "original.pt"
        torch.save({"state_dict": module.state_dict(), "sample_rate": recorded}, path)
        assert load_model(path, sample_rate=22050).sample_rate == 22050
