"""Training that goes wrong says so in one line: divergence, non-finite settings, seeds and
sizes out of range, a corpus of one window, process counts; and the PCA warm start stays
moderate on a corpus of a few tones."""

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

import livelatent.model.train as train_module
from livelatent.errors import AudioError, LiveLatentError, ParameterError
from livelatent.model import distributed
from livelatent.model.checkpoint import load_checkpoint
from livelatent.model.train import train
from livelatent.model.vae import RawAudioVAE, VAEConfig
from livelatent.model.warmstart import pca_warm_start

from cliutil import one_line_error

TINY = dict(window=1024, hidden=48, latent=8, hop=512, batch_size=32, lr=3e-3, threads=1,
            device="cpu", progress=False)


def _tone(freq, seconds=0.5):
    t = np.arange(int(seconds * 44100)) / 44100
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tones")
    for i, freq in enumerate((110, 220, 330, 440)):
        sf.write(folder / f"tone{i}.wav", _tone(freq), 44100)
    return folder


def _training_calls_fail_after(monkeypatch, steps, value=math.nan):
    """vae_loss returns ``value`` from the training step after ``steps`` on."""
    real, calls = train_module.vae_loss, {"n": 0}

    def patched(*args, **kwargs):
        loss, mse, kl = real(*args, **kwargs)
        calls["n"] += torch.is_grad_enabled()
        if torch.is_grad_enabled() and calls["n"] > steps:
            return loss * value, mse, kl
        return loss, mse, kl
    monkeypatch.setattr(train_module, "vae_loss", patched)


def test_a_run_that_diverges_stops_in_one_line_and_saves_no_nan(tones, tmp_path, monkeypatch):
    out = tmp_path / "m"
    first = train([tones], out, epochs=1, seed=1, **TINY)
    assert (out / "summary.json").exists() and (out / "card.md").exists()
    steps = -(-first["data"]["windows_per_epoch"] // TINY["batch_size"])      # steps per epoch
    _training_calls_fail_after(monkeypatch, steps)           # NaN from epoch 2 on
    with pytest.raises(ParameterError, match=r"training diverged in epoch 2 \(loss nan\): start again "
                                             r"with a lower --lr \(this run: 0\.003\)") as info:
        train([tones], out, epochs=3, seed=7, **TINY)
    assert "\n" not in str(info.value)
    saved = load_checkpoint(out / "model.pt")              # finite weights (the loader checks)
    assert saved.training["epoch"] == 1 and saved.training["seed"] == 7     # this run's epoch 1
    # the older run's card and summary described weights that are gone
    assert not (out / "summary.json").exists() and not (out / "card.md").exists()


def test_a_huge_learning_rate_diverges_for_real(tones, tmp_path):
    with pytest.raises(ParameterError, match=r"training diverged in epoch 1 .*this run: 1e\+30"):
        train([tones], tmp_path / "m", epochs=2, seed=1, **{**TINY, "lr": 1e30})
    assert not (tmp_path / "m" / "model.pt").exists()


def test_a_non_finite_validation_score_never_keeps_an_older_runs_model(tones, tmp_path, monkeypatch):
    out = tmp_path / "m"
    train([tones], out, epochs=1, seed=1, **TINY)
    older = load_checkpoint(out / "model.pt").content_hash
    monkeypatch.setattr(train_module, "validation_loss", lambda *a, **k: math.inf)
    summary = train([tones], out, epochs=2, seed=7, val_fraction=0.3, **TINY)
    saved = load_checkpoint(out / "model.pt")
    assert saved.content_hash != older and saved.training["settings"]["seed"] == 7
    assert summary["best_epoch"] == 1 == saved.training["best_epoch"]   # inf in epoch 2: worse
    assert json.loads((out / "summary.json").read_text())["settings"]["seed"] == 7


@pytest.mark.parametrize("bad, match", [
    ({"lr": math.inf}, "lr=inf must be a finite number above 0"),
    ({"lr": math.nan}, "lr=nan"),
    ({"lr": 0.0}, "lr=0.0"),
    ({"lr": 1e38}, r"lr=1e\+38 must be at most 1e\+30"),     # (Adam's step overflowed: a traceback)
    ({"beta": math.inf}, "beta=inf must be a finite number >= 0"),
    ({"grad_clip": math.inf}, "grad_clip=inf"),
    ({"seed": -1}, "seed=-1 must be a whole number from 0 to 4294967295"),
    ({"seed": 10 ** 20}, "seed=100000000000000000000"),
    ({"hidden": 10 ** 12}, r"hidden=1000000000000.*GB.*limit"),
    ({"threads": 100000}, r"threads=100000 must be a whole number from 1 to \d+"),   # (a segfault)
    ({"sample_rate": 1}, "sample_rate=1 must be from 1000 to 768000 Hz"),   # (a 1 Hz model)
    ({"sample_rate": 10 ** 11}, "sample_rate=100000000000"),       # (out of memory, resampling)
])
def test_settings_that_cannot_work_are_refused_before_any_audio_is_read(tmp_path, bad, match):
    with pytest.raises(ParameterError, match=match):
        train([tmp_path / "no-such-folder"], tmp_path / "m", epochs=1, **{**TINY, **bad})
    assert not (tmp_path / "m" / "cache").exists()


def test_a_corpus_of_one_window_is_refused_before_training(tmp_path):
    sf.write(tmp_path / "short.wav", _tone(440)[:500], 44100)
    with pytest.raises(AudioError, match=r"only one training window .*short.wav.*smaller --hop"):
        train([tmp_path / "short.wav"], tmp_path / "m", epochs=1, **TINY)
    assert not (tmp_path / "m" / "model.pt").exists()
    # four files of one sample each, each padded to a window, were trained on: "success"
    clicks = tmp_path / "clicks"
    clicks.mkdir()
    for i in range(4):
        sf.write(clicks / f"c{i}.wav", np.array([0.5], dtype=np.float32), 44100)
    with pytest.raises(AudioError, match=r"only [34] samples of sound in .*clicks, padded to [34] windows"):
        train([clicks], tmp_path / "m2", epochs=1, **TINY)
    assert not (tmp_path / "m2" / "model.pt").exists()


@pytest.mark.parametrize("option", [["--nproc", "0"], ["--nproc", "-3"], ["--nnodes", "0"],
                                    ["--node-rank", "5"], ["--seed", "-1"]])
def test_process_options_are_checked_on_one_process_too(tones, tmp_path, capsys, option):
    err = one_line_error(capsys, "train", tones, "-o", tmp_path / "m", "--epochs", "1", *option)
    assert option[0] in err or "seed=-1" in err
    assert not (tmp_path / "m").exists()


def test_every_process_of_a_distributed_run_stops_alike_when_it_diverges(tones, tmp_path, capfd):
    settings = dict(data=[tones], output_dir=tmp_path / "m", epochs=2, seed=1,
                    **{**TINY, "lr": 1e30, "init": "random"})
    with pytest.raises(LiveLatentError, match="distributed training stopped"):
        distributed.launch(settings, nproc=2)
    err = capfd.readouterr().err
    for rank in (0, 1):        # both decided from the same all-reduced numbers
        assert f"(process {rank}): training diverged in epoch 1" in err, err
    assert not (tmp_path / "m" / "model.pt").exists()


def test_the_pca_warm_start_of_a_few_tones_keeps_held_out_latents_moderate():
    def windows(freq):
        x = _tone(freq, 1.0)
        return np.stack([x[i:i + 1024] for i in range(0, x.size - 1024, 1024)])
    training = np.concatenate([windows(f) for f in (110, 220, 330)])
    torch.manual_seed(0)
    module = RawAudioVAE(VAEConfig(window=1024, hidden=64, latent=8))
    pca_warm_start(module, training)
    with torch.no_grad():
        held, _ = module.encode(torch.from_numpy(windows(440)))
        seen, _ = module.encode(torch.from_numpy(training))
    assert float(seen.abs().max()) < 10                       # standardised on its own windows
    assert float(held.abs().max()) < 200                      # was ~5e5 with a 1e-12 variance floor
    with torch.no_grad():
        recon, mu, logvar = module(torch.from_numpy(windows(440)))
        loss, _, _ = train_module.vae_loss(recon, torch.from_numpy(windows(440)), mu, logvar, 1e-4)
    assert math.isfinite(float(loss)) and float(loss) < 10
