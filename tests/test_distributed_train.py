"""Training on two processes (DistributedDataParallel over gloo, CPU): a step is the step one
process takes, the loss falls, a run killed mid-epoch resumes on another number of processes,
and torchrun starts the module made for it."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import torch

from livelatent.model import distributed
from livelatent.model.train import TRAIN_STATE_NAME, train

SMALL = dict(window=1024, hidden=48, latent=8, hop=128, lr=3e-3, device="cpu", init="random",
             progress=False, threads=1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Four tones of 60 windows each (240 windows at hop 128), one noise file held out."""
    folder = tmp_path_factory.mktemp("ddp-corpus")
    n = 1024 + 128 * 59
    t = np.arange(n) / 44100
    for i, freq in enumerate((110, 233, 370, 523)):
        sf.write(folder / f"tone{i}.wav", (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 44100)
    held = tmp_path_factory.mktemp("ddp-held")
    sf.write(held / "noise.wav", (0.1 * np.random.default_rng(0).standard_normal(n)).astype(np.float32), 44100)
    return folder, held


def _state(folder):
    return torch.load(folder / TRAIN_STATE_NAME, weights_only=True)


def test_two_processes_take_the_step_one_process_takes(corpus, tmp_path):
    data, held = corpus
    settings = dict(data=[data], epochs=1, batch_size=240, seed=3, val_files=[held], **SMALL)
    train(output_dir=tmp_path / "one", **settings)
    distributed.launch(dict(output_dir=tmp_path / "two", **settings), nproc=2)
    one, two = _state(tmp_path / "one"), _state(tmp_path / "two")
    assert one["epoch"] == two["epoch"] == 1 and one["scheduler"]["last_epoch"] == 1   # one step
    for name, tensor in one["model"].items():
        other = two["model"][name]
        assert float((other - tensor).norm() / tensor.norm()) <= 1e-5, name
    assert not (tmp_path / "two" / "cache").exists()          # the audio cache goes with the run
    card = (tmp_path / "two" / "card.md").read_text()
    assert "held-out files" in card


def test_the_loss_falls_on_two_processes_and_a_killed_run_resumes_on_one(corpus, tmp_path):
    data, held = corpus
    out = tmp_path / "run"
    command = [sys.executable, "-m", "livelatent", "train", str(data), "-o", str(out), "--val-files",
               str(held), "--epochs", "200", "--batch-size", "8", "--hidden", "48", "--latent", "8",
               "--lr", "3e-3", "--device", "cpu", "--init", "random", "--seed", "5", "--nproc", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and process.poll() is None:
            state = out / TRAIN_STATE_NAME
            if state.exists() and _state(out)["epoch"] >= 3:
                break
            time.sleep(0.2)
        time.sleep(0.3)                                       # into the next epoch
        assert process.poll() is None, process.stdout.read()[-3000:]
    finally:
        os.killpg(process.pid, signal.SIGKILL)                 # killed: no chance to save anything
        process.wait()
    saved = _state(out)
    assert 3 <= saved["epoch"] < 200
    history = saved["history"]
    assert history[-1]["loss"] < history[0]["loss"]           # the loss falls on two processes
    summary = train([data], out, epochs=saved["epoch"] + 2, batch_size=8, seed=5, val_files=[held],
                    resume=True, **SMALL)                    # one process now
    assert [r["epoch"] for r in summary["history"]] == list(range(1, saved["epoch"] + 3))
    assert summary["settings"]["processes"] == 1


def test_torchrun_trains_with_the_module_made_for_it(corpus, tmp_path):
    data, held = corpus
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "2", "-m", "livelatent.model.distributed", str(data),
                           "-o", str(tmp_path / "tr"), "--val-files", str(held), "--epochs", "2",
                           "--batch-size", "16", "--hidden", "48", "--latent", "8", "--device", "cpu",
                           "--init", "random", "--threads", "1"],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert _state(tmp_path / "tr")["epoch"] == 2 and (tmp_path / "tr" / "card.md").exists()
    assert "wrote" in done.stdout


def test_bad_distributed_options_are_one_line(corpus, tmp_path, capsys):
    from livelatent.cli import main
    data, _ = corpus
    assert main(["train", str(data), "-o", str(tmp_path / "x"), "--nnodes", "2"]) == 2
    assert "--master-addr" in capsys.readouterr().err
    # a name no host has: torch's rendezvous retried it for ever, a warning every few seconds
    assert main(["train", str(data), "-o", str(tmp_path / "x"), "--nnodes", "2", "--master-addr",
                 "nonexist.invalid", "--master-port", "29556"]) == 2
    assert "--master-addr nonexist.invalid: no such host here" in capsys.readouterr().err
    assert main(["train", str(data), "-o", str(tmp_path / "x"), "--nproc", "2", "--master-port",
                 "99999"]) == 2
    assert "--master-port 99999 must be from 0 to 65535" in capsys.readouterr().err
    assert main(["train", str(data), "-o", str(tmp_path / "x"), "--nproc", "2", "--batch-size", "1",
                 "--epochs", "1", "--device", "cpu"]) == 2
    assert "smaller than the 2 processes" in capsys.readouterr().err
