"""Training on a tiny generated corpus: the loss falls, the pack is written, runs resume."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

import livelatent.model.train as train_module
from livelatent import load_model
from livelatent.cli import main
from livelatent.errors import AudioError, ModelLoadError, ParameterError
from livelatent.model.train import TRAIN_STATE_NAME, train

TINY = dict(window=1024, hidden=48, latent=8, hop=128, batch_size=32, lr=3e-3, threads=1,
            device="cpu", progress=False)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Six short files: tones at several pitches (one stereo at 22.05 kHz), noise, and a text file."""
    folder = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    t = np.arange(int(0.4 * 44100)) / 44100
    for i, freq in enumerate((110, 220, 330, 440)):
        sf.write(folder / f"tone{i}.wav", (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 44100)
    t22 = np.arange(int(0.4 * 22050)) / 22050
    stereo = np.stack([0.4 * np.sin(2 * np.pi * 275 * t22)] * 2, axis=1).astype(np.float32)
    sf.write(folder / "stereo22k.wav", stereo, 22050)
    sf.write(folder / "noise.flac", (0.1 * rng.standard_normal(int(0.4 * 44100))).astype(np.float32), 44100)
    (folder / "broken.wav").write_text("not audio")
    return folder


def test_training_lowers_the_loss_and_writes_a_pack(corpus, tmp_path, capsys):
    out = tmp_path / "mine"
    summary = train([corpus], out, epochs=4, val_fraction=0.3, seed=1, **TINY)
    history = summary["history"]
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert history[-1]["loss"] < 0.7 * history[0]["loss"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    err = capsys.readouterr().err
    assert "skipping" in err and "broken.wav" in err         # the text file is skipped, not fatal
    data = summary["data"]
    assert data["train"]["files"] + data["validation"]["files"] == 6     # split by file, broken one out
    assert data["validation"]["files"] == 2
    codec = load_model(out)
    assert (codec.window, codec.latent_dim) == (1024, 8)
    assert codec.checkpoint.training["best_epoch"] == summary["best_epoch"]
    card = (out / "card.md").read_text()
    for needle in ("SNR", "spectral convergence", "pca_8", "silence", "held-out files"):
        assert needle in card
    metrics = summary["metrics"]
    assert metrics["silence"]["spectral_convergence"] == pytest.approx(1.0)
    assert set(metrics) == {"model", "model_sampled_3_seeds", "pca_8", "silence", "latent"}
    assert all(np.isfinite(metrics[name]["multiscale_spectral_distance"])
               for name in ("model", "model_sampled_3_seeds", "pca_8", "silence"))
    # noise on, the reconstruction is no better than from the mean latent
    assert metrics["model_sampled_3_seeds"]["snr_db"] <= metrics["model"]["snr_db"] + 0.05
    assert metrics["latent"]["latent_dims"] == 8 and 0 <= metrics["latent"]["active_dims"] <= 8
    assert metrics["latent"]["kl_per_dim"] > 0
    for needle in ("model_sampled_3_seeds", "nats per dimension", "dimensions active"):
        assert needle in card
    assert json.loads((out / "summary.json").read_text())["best_epoch"] == summary["best_epoch"]


def test_an_interrupted_run_resumes_from_its_last_checkpoint(corpus, tmp_path, monkeypatch):
    out = tmp_path / "run"
    real_loss, calls = train_module.vae_loss, {"n": 0}
    steps_per_epoch = None

    def interrupt_in_epoch_3(*args, **kwargs):
        calls["n"] += torch.is_grad_enabled()          # count training batches, not validation
        if steps_per_epoch and calls["n"] > 2 * steps_per_epoch:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    # learn how many batches an epoch has from a one-epoch run
    first = train([corpus], tmp_path / "probe", epochs=1, seed=2, **TINY)
    steps_per_epoch = -(-first["data"]["windows_per_epoch"] // TINY["batch_size"])
    monkeypatch.setattr(train_module, "vae_loss", interrupt_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train([corpus], out, epochs=5, seed=2, **TINY)
    state = torch.load(out / TRAIN_STATE_NAME, weights_only=True)     # safe to load
    assert state["epoch"] == 2                                        # epochs 1-2 were kept
    monkeypatch.setattr(train_module, "vae_loss", real_loss)
    summary = train([corpus], out, epochs=5, seed=2, resume=True, **TINY)
    assert [r["epoch"] for r in summary["history"]] == [1, 2, 3, 4, 5]
    resumed = torch.load(out / TRAIN_STATE_NAME, weights_only=True)
    assert resumed["epoch"] == 5
    # the resumed run ends with exactly the weights of a run that was never interrupted
    train([corpus], tmp_path / "straight", epochs=5, seed=2, **TINY)
    straight = torch.load(tmp_path / "straight" / TRAIN_STATE_NAME, weights_only=True)
    for name, tensor in straight["model"].items():
        assert torch.equal(resumed["model"][name], tensor), name


def test_resume_refuses_other_data_or_no_state(corpus, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                   # -o '' wrote the model among the current
    with pytest.raises(ParameterError, match="-o: give the folder to write the model in"):
        train([corpus], "", epochs=1, **TINY)       # folder's files
    assert not list(tmp_path.iterdir())
    with pytest.raises(ParameterError, match="no training state"):
        train([corpus], tmp_path / "empty", epochs=1, resume=True, **TINY)
    assert not (tmp_path / "empty").exists()      # (its audio was cached in a folder made first)
    (tmp_path / "silent").mkdir()
    with pytest.raises(AudioError, match="no usable training audio"):
        train([tmp_path / "silent"], tmp_path / "never", epochs=1, **TINY)
    assert not (tmp_path / "never").exists()                 # no half-made model folder
    mine = tmp_path / "mine"                                 # a folder of the user's, given as -o
    (mine / "cache").mkdir(parents=True)
    (mine / "cache" / "notes.txt").write_text("keep me")
    with pytest.raises(AudioError, match="no usable training audio"):
        train([tmp_path / "silent"], mine, epochs=1, **TINY)
    assert (mine / "cache" / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in (mine / "cache").iterdir()) == ["notes.txt"]
    out = tmp_path / "a"
    train([corpus / "tone0.wav", corpus / "tone1.wav", corpus / "noise.flac"], out, epochs=1, **TINY)
    with pytest.raises(ParameterError, match="training files differ"):
        train([corpus / "tone2.wav", corpus / "tone3.wav", corpus / "noise.flac"], out, epochs=2,
              resume=True, **TINY)
    # the same files split otherwise said "the training files differ"
    with pytest.raises(ParameterError, match="held-out split differs"):
        train([corpus / "tone0.wav", corpus / "tone1.wav", corpus / "noise.flac"], out, epochs=2,
              resume=True, val_files=[corpus / "tone1.wav"], **TINY)
    # every file held out said "no usable training audio"
    with pytest.raises(AudioError, match="every usable training file in .* is held out for validation"):
        train([corpus / "tone0.wav"], tmp_path / "all_held", epochs=1, val_files=[corpus / "tone0.wav"],
              **TINY)
    assert not (tmp_path / "all_held").exists()
    # data with no usable file, held-out files elsewhere: not "held out"
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.wav").write_bytes(b"not audio")
    with pytest.raises(AudioError, match="no usable training audio"):
        train([tmp_path / "broken"], tmp_path / "none", epochs=1, val_files=[corpus / "tone0.wav"], **TINY)


def test_resume_with_no_epoch_left_to_train_says_so(corpus, tmp_path, capsys):
    out = tmp_path / "run"
    train([corpus], out, epochs=1, seed=2, **TINY)
    capsys.readouterr()
    summary = train([corpus], out, epochs=1, seed=2, resume=True, **TINY)
    assert [r["epoch"] for r in summary["history"]] == [1]
    assert "--epochs 1, and epoch 1 is done: nothing to train" in capsys.readouterr().err
    # a resume carries on at the run's own learning rate: the card recorded the --lr asked for,
    # which nothing used
    asked = {**TINY, "lr": 10.0}
    summary = train([corpus], out, epochs=1, seed=2, resume=True, **asked)
    assert f"at its own --lr {TINY.get('lr', 1e-3):g}" in capsys.readouterr().err
    assert summary["settings"]["lr"] == TINY.get("lr", 1e-3)
    assert "| lr | 10.0 |" not in (out / "card.md").read_text()


def test_resume_with_damaged_best_weights_is_refused_before_training_then_goes_on_without_them(
        corpus, tmp_path):
    # it trained every epoch asked for, then failed reading model.pt at the end, every time
    out = tmp_path / "run"
    train([corpus], out, epochs=1, seed=2, **TINY)
    with open(out / "model.pt", "r+b") as damaged:
        damaged.truncate(500)
    before = (out / TRAIN_STATE_NAME).read_bytes()
    with pytest.raises(ParameterError, match="--resume: .*model.pt.*remove it to resume"):
        train([corpus], out, epochs=2, seed=2, resume=True, **TINY)
    assert (out / TRAIN_STATE_NAME).read_bytes() == before          # nothing trained
    (out / "model.pt").unlink()
    (out / TRAIN_STATE_NAME).write_bytes(bytes(range(256)) * 2)       # garbage: torch's text
    with pytest.raises(ModelLoadError, match="damaged, or not a plain torch save") as refused:
        train([corpus], out, epochs=2, seed=2, resume=True, **TINY)   # advised an unsafe load
    assert "weights_only" not in str(refused.value)
    (out / TRAIN_STATE_NAME).write_bytes(before)
    summary = train([corpus], out, epochs=2, seed=2, resume=True, **TINY)
    assert [r["epoch"] for r in summary["history"]] == [1, 2] and (out / "model.pt").exists()


def test_bad_options_name_the_value(corpus, tmp_path):
    with pytest.raises(ParameterError, match="lr_schedule='linear'"):
        train([corpus], tmp_path / "x", epochs=1, lr_schedule="linear", progress=False)
    with pytest.raises(ParameterError, match="epochs=0"):
        train([corpus], tmp_path / "x", epochs=0, progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="cuda"):
            train([corpus], tmp_path / "x", epochs=1, device="cuda", progress=False)


def test_cli_train_then_info_prints_the_card(corpus, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["train", str(corpus), "-o", str(out), "--epochs", "2", "--hidden", "32", "--latent", "4",
                 "--hop", "512", "--batch-size", "64", "--threads", "1", "--checkpoint-every", "2",
                 "--val-files", str(corpus / "noise.flac")])
    assert code == 0
    assert "SNR" in capsys.readouterr().out
    assert main(["info", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("# RawAudioVAE model: cli") and "pca_4" in printed
    # a checkpoint without a card next to it prints its config and training summary
    lone = tmp_path / "lone.pt"
    lone.write_bytes((out / "model.pt").read_bytes())
    assert main(["info", str(lone)]) == 0
    assert "latent" in capsys.readouterr().out


def test_info_on_a_broken_model_is_one_line(tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.pt").write_text("garbage")
    assert main(["info", str(broken)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("livelatent: error:") and "model.pt" in err and "\n" not in err
    assert main(["info", str(tmp_path / "absent")]) == 2
    assert "absent" in capsys.readouterr().err


def test_info_of_the_default_pack(capsys):
    assert main(["info"]) == 0
    card = capsys.readouterr().out
    assert "default model pack" in card and "pca_256" in card and "silence" in card


def test_the_corpus_streams_from_a_disk_cache_read_file_by_file(corpus, tmp_path):
    """The training audio is read once into a file on disk and mapped, not held in memory: a
    batch reads only its windows; the cache is reused while the files are unchanged."""
    from livelatent.audio import list_audio_files, read_audio
    from livelatent.model.data import cache_audio, corpus_of, open_cache
    files = list_audio_files(corpus)
    index = cache_audio(files, tmp_path / "cache", "audio", sample_rate=44100, window=1024, label="input",
                        progress=False)
    assert len(index["files"]) == 6 and not any(f.endswith("broken.wav") for f in index["files"])
    index, audio = open_cache(tmp_path / "cache", "audio")
    assert isinstance(audio, np.memmap) and not audio.flags.writeable
    tone = corpus / "tone2.wav"
    windows = corpus_of(index, audio, [tone], window=1024, hop=128)
    expected = read_audio(tone, target_rate=44100)
    np.testing.assert_array_equal(windows.windows(np.array([0, 3])),
                                  np.stack([expected[:1024], expected[384:1408]]))
    stamp = (tmp_path / "cache" / "audio.f32").stat().st_mtime_ns
    cache_audio(files, tmp_path / "cache", "audio", sample_rate=44100, window=1024, label="input",
                progress=False)
    assert (tmp_path / "cache" / "audio.f32").stat().st_mtime_ns == stamp       # reused


def test_latent_statistics_and_the_family_table():
    from livelatent.model.card import card_text
    from livelatent.model.evaluation import latent_statistics
    rng = np.random.default_rng(0)
    signals = [rng.normal(size=1024 * 50).astype(np.float32)]

    def encode(windows):            # dimension 0 follows the windows, 1 barely, 2 not at all
        n = len(windows)
        mu = np.stack([windows[:, 0], 0.01 * windows[:, 1], np.full(n, 0.5)], axis=1)
        return mu, np.full_like(mu, -2.0)
    stats = latent_statistics(encode, signals, 1024)
    windows = signals[0].reshape(-1, 1024).astype(np.float64)
    mu, logvar = encode(windows)
    expected = -0.5 * np.mean(1 + logvar - mu ** 2 - np.exp(logvar))
    assert stats["kl_per_dim"] == pytest.approx(expected)
    assert (stats["active_dims"], stats["latent_dims"], stats["windows"]) == (1, 3, 50)
    card = card_text({"families": {"bass": {"files": 4, "model": 31.4, "pca_256": 48.9},
                                   "organ": {"files": 2, "model": 22.0, "pca_256": 21.5}}})
    assert "| bass | 4 | 31.4 | 48.9 | -17.5 |" in card and "| organ | 2 | 22.0 | 21.5 | +0.5 |" in card


def test_training_into_a_model_pack_is_refused_before_anything_is_read(corpus, tmp_path):
    # the pack's model.safetensors loads before model.pt: the run was never used, and the pack's
    # card was replaced
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "pack.json").write_text("{}")
    (pack / "card.md").write_text("the pack's card")
    with pytest.raises(ParameterError, match="is a model pack .*train into a folder of its own"):
        train([corpus], pack, epochs=1, **TINY)
    assert (pack / "card.md").read_text() == "the pack's card" and not (pack / "cache").exists()
    # a set took model.pt, card.md, summary.json and train_state.pt among its own files
    played = tmp_path / "gig"
    played.mkdir()
    (played / "journal.jsonl").write_text("")
    with pytest.raises(ParameterError, match="is a set .it holds journal.jsonl.: train into a folder"):
        train([corpus], played, epochs=1, **TINY)
    assert sorted(p.name for p in played.iterdir()) == ["journal.jsonl"]


def test_held_out_files_with_no_usable_audio_are_said_so_on_the_card(corpus, tmp_path):
    # the card said "no held-out files were given" of files that were given, and silent
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(44100, dtype=np.float32), 44100)
    train([corpus], tmp_path / "m", epochs=1, seed=2, val_files=[silent], **TINY)
    card = (tmp_path / "m" / "card.md").read_text()
    assert "the held-out files given had no usable audio" in card
    assert "no held-out files were given" not in card
