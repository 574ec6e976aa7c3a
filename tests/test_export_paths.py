"""Where exports go: never over the model being exported, never half-written, and a place that
cannot be written is said in one line before the export's work."""

from pathlib import Path

import pytest
import torch

import livelatent.model.export as export
from livelatent.errors import ParameterError
from livelatent.model.checkpoint import save_checkpoint
from livelatent.model.vae import RawAudioVAE, VAEConfig

from cliutil import one_line_error


@pytest.fixture
def pack(tmp_path):
    torch.manual_seed(0)
    config = VAEConfig(window=256, hidden=32, latent=4)
    folder = tmp_path / "m_copy"
    save_checkpoint(folder / "model.pt", RawAudioVAE(config), config)
    return folder


def _one_line(capsys, *args):
    return one_line_error(capsys, "export", *args)


def test_an_export_never_overwrites_the_model_it_reads(pack, capsys, monkeypatch):
    before = (pack / "model.pt").read_bytes()
    monkeypatch.chdir(pack.parent)
    for model, output in ((pack, pack / "model.pt"), ("m_copy", "m_copy/model.pt"),
                          (pack / "model.pt", "m_copy/../m_copy/model.pt"),
                          (pack, pack / "model.safetensors")):
        err = _one_line(capsys, model, "--to", "nn~", "-o", output)
        assert "the model being exported" in err
    assert (pack / "model.pt").read_bytes() == before
    assert sorted(p.name for p in pack.iterdir()) == ["model.pt"]     # no temporary file left


@pytest.mark.parametrize("kind, make, to, words", [
    ("folder", lambda p: p.mkdir(parents=True), "nn~", "a folder is there"),
    ("under a file", lambda p: p.parent.write_text("x"), "nn~", "is a file, not a folder"),
    ("empty", None, "nn~", "-o: give the .ts file"),
    ("not .ts", lambda p: None, "nn~", "nn~ loads TorchScript files named .ts: give a name such as x.ts"),
    ("onnx over a file", lambda p: p.parent.mkdir() or p.write_text("x"), "onnx", "a file is there; --to onnx writes a folder"),
    ("onnx under a file", lambda p: p.parent.write_text("x"), "onnx", "is a file, not a folder"),
])
def test_unwritable_outputs_are_one_line_before_any_work(pack, tmp_path, capsys, monkeypatch,
                                                         kind, make, to, words):
    monkeypatch.setattr(export, "load_checkpoint", lambda *a: pytest.fail("the work started"))
    target = tmp_path / "out" / ("x.wav" if kind == "not .ts" else "x.ts")    # (a .wav exited 0)
    if make is not None:
        make(target)
    err = _one_line(capsys, pack, "--to", to, "-o", "" if make is None else target)
    assert words in err


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_a_place_the_system_refuses_is_one_line(pack, capsys, monkeypatch):
    monkeypatch.setattr(export, "load_checkpoint", lambda *a: pytest.fail("the work started"))
    assert "cannot write /proc/x.ts" in _one_line(capsys, pack, "--to", "nn~", "-o", "/proc/x.ts")


def test_a_failed_export_leaves_the_previous_file_whole(pack, tmp_path, monkeypatch):
    target = tmp_path / "model.ts"
    export.export_nn_tilde(pack, target)
    before = target.read_bytes()
    assert torch.jit.load(str(target)).encode(torch.zeros(1, 1, 512)).shape == (1, 4, 2)

    def broken(*args):
        raise RuntimeError("disk full")
    monkeypatch.setattr(export, "_scripted_module", broken)
    with pytest.raises(RuntimeError):
        export.export_nn_tilde(pack, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m_copy", "model.ts"]


def test_onnx_exports_are_written_whole(pack, tmp_path):
    encoder, decoder = export.export_onnx(pack, tmp_path / "onnx")
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == ["decoder.onnx", "encoder.onnx"]
    assert encoder.stat().st_size > 0 and decoder.stat().st_size > 0
    with pytest.raises(ParameterError, match="a file is there"):
        export.export_onnx(pack, encoder)


def test_a_symbolic_link_loop_as_the_model_or_the_output_is_one_line(pack, tmp_path, capsys,
                                                                     monkeypatch):
    # Path.resolve() raises RuntimeError on a loop (Python 3.11): it came out as a traceback
    monkeypatch.chdir(tmp_path)
    Path("loop").symlink_to("loop")
    assert "loop is a symbolic link to nothing" in _one_line(capsys, pack, "--to", "nn~", "-o",
                                                             "loop/x.ts")
    assert "loop" in _one_line(capsys, "loop", "--to", "nn~", "-o", "out/x.ts")
