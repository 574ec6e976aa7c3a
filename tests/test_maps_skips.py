"""``livelatent map`` skips unusable audio in a folder and lists it, as ``som`` and ``train`` do,
and says a resampled cluster in one plain line."""

import numpy as np
import pytest
import soundfile as sf

from livelatent.cli import main
from livelatent.corpus.som import build_som
from synthetic_corpus import SR, make_sound


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVELATENT_CACHE", str(tmp_path / "cache"))


def run_map(capsys, *args):
    code = main(["map", *map(str, args), "--method", "pca"])
    out, err = capsys.readouterr()
    return code, out, err


def test_unusable_files_in_a_folder_are_skipped_and_listed(tmp_path, capsys):
    rng = np.random.default_rng(0)
    folder = tmp_path / "odd"
    folder.mkdir()
    for i in range(2):
        sf.write(folder / f"tone{i}.wav", make_sound("sine", rng, seconds=(0.3, 0.4)), SR)
    (folder / "garbage.wav").write_bytes(rng.bytes(1700))
    (folder / "zero.wav").write_bytes(b"")
    sf.write(folder / "silent.wav", np.zeros(4410, np.float32), SR)
    code, out, err = run_map(capsys, folder, "-o", tmp_path / "map.png")
    assert code == 0, err
    assert ": 2 groups" in out
    assert "skipped 3 unusable audio file(s)" in err
    listed = [line for line in err.splitlines() if line.startswith("  ")]
    assert len(listed) == 3, err
    for name, line in zip(("garbage.wav", "silent.wav", "zero.wav"), listed):
        assert name in line, err


def test_a_folder_with_nothing_usable_is_one_line(tmp_path, capsys):
    folder = tmp_path / "onlygarbage"
    folder.mkdir()
    (folder / "garbage.wav").write_bytes(b"not audio at all" * 50)
    code, out, err = run_map(capsys, folder, "-o", tmp_path / "map.png")
    assert code == 2 and err.startswith("livelatent: error: none of the 1 audio files")
    assert err.count("\n") == 1
    assert not (tmp_path / "map.png").exists()


def test_a_resampled_cluster_is_one_plain_line(tmp_path, capsys):
    rng = np.random.default_rng(1)
    data = tmp_path / "sounds"
    data.mkdir()
    for i in range(3):
        sound = make_sound("pluck", rng, seconds=(0.3, 0.4))[::2]
        sf.write(data / f"low{i}.wav", sound, SR // 2)
    som = build_som(data, tmp_path / "som", grid="2x1", iterations=100, progress=False)
    code, out, err = run_map(capsys, som.path, "-o", tmp_path / "map.png")
    assert code == 0, err
    assert "UserWarning" not in err and "warnings.warn" not in err
    lines = [line for line in err.splitlines() if "resampled" in line]
    assert lines and all(line.startswith("livelatent map: cluster ") for line in lines), err
