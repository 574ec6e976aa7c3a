"""Files are replaced whole or not at all, and get the permissions an ordinary new file would."""

import os
import stat

import numpy as np
import pytest
import soundfile as sf

from livelatent import Engine, source, voice
from livelatent.atomic import atomic_path
from livelatent.errors import ParameterError
from livelatent.session.state import save_set
from livelatent.sinks.file import render_to_file


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_an_error_while_writing_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "take.txt"
    target.write_text("the old take")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("the disk filled up")
    assert target.read_text() == "the old take"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.txt"]
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".txt" and tmp.name.startswith(".")
        tmp.write_text("the new take")
    assert target.read_text() == "the new take"


def test_renders_and_sets_are_readable_like_any_new_file(tmp_path, umask_022):
    # tempfile makes private (0600) files and (0700) folders; a render shared with a
    # collaborator or a set copied to another account must not be
    with Engine(seed=1) as engine:
        tone = np.sin(np.arange(44100) / 10).astype(np.float32)
        voice(tone, tone[::-1].copy())
        (render,) = render_to_file(engine, tmp_path / "layer.wav", 0.5)
        folder = save_set(engine, tmp_path / "sets" / "encore")
    assert sf.info(str(render)).frames == 22050
    assert mode(render) == 0o644
    assert mode(folder) == 0o755 and mode(folder / "state.json") == 0o644


def test_a_place_that_cannot_be_written_is_one_clear_error_before_any_work(tmp_path, capsys):
    from livelatent.cli import main
    from livelatent.errors import WriteError
    (tmp_path / "taken.wav").mkdir()
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")            # ("a file is in the way", it said)
    for target, reason in [(tmp_path / "taken.wav", "it is a folder"),
                           (tmp_path / "a_file" / "out.wav", "a file is in the way"),
                           (tmp_path / ("x" * 300 + ".wav"), "cannot write .*: File name too long"),
                           (tmp_path / "loop" / "out.wav", "loop is a symbolic link to nothing")]:
        with pytest.raises(WriteError, match=reason), atomic_path(target):
            pytest.fail("the work began before the place was found unwritable")
    script = tmp_path / "one.py"
    script.write_text("voice(flute, cello)\n")
    assert main(["render", str(script), "-o", str(tmp_path / "taken.wav"), "--seconds", "1"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"livelatent: error: cannot write {tmp_path / 'taken.wav'}: "
                                        f"it is a folder"]


def test_a_render_never_replaces_a_file_that_a_voice_plays(tmp_path):
    take = tmp_path / "take1.wav"
    sf.write(str(take), (0.3 * np.sin(np.arange(44100) / 9)).astype(np.float32), 44100)
    before = take.read_bytes()
    with Engine(seed=1) as engine:
        recorded = source(str(take))
        voice(recorded, recorded, name="loop")
        for target in (take, tmp_path / "elsewhere" / ".." / "take1.wav"):
            with pytest.raises(ParameterError, match="voice loop .source 'take1'. plays that file"):
                render_to_file(engine, target, 0.2)
        assert take.read_bytes() == before
        (render,) = render_to_file(engine, tmp_path / "take2.wav", 0.2)
    assert sf.info(str(render)).frames == 8820


def test_a_render_to_a_name_that_is_no_utf8_is_written_and_leaves_no_temporary(tmp_path):
    # soundfile could not encode the name: a UnicodeEncodeError after the work, and a
    # temporary file left beside it on every try
    out = tmp_path / os.fsdecode(b"take\xff.wav")
    with Engine() as engine:
        render_to_file(engine, out, 0.5, progress=False)
    assert sf.info(os.fsencode(out)).frames == 22050
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_a_name_near_the_systems_limit_is_written(tmp_path):
    # 245 characters are a name the system takes; its temporary, ".NAME.random.wav", was not
    for name in ("y" * 245, "\u97f3" * 82):          # (the second: 246 bytes of UTF-8)
        out = tmp_path / name / (name + ".wav")
        with Engine() as engine:
            render_to_file(engine, out, 0.1, progress=False)
        assert [p.name for p in out.parent.iterdir()] == [out.name]


def test_a_render_abandoned_into_a_new_folder_takes_that_folder_away(tmp_path):
    # the folders a render made to write in stayed behind, empty (with stems: the mix was
    # discarded first, and its folder still held the stems' temporaries)
    def stop(_frames):
        raise KeyboardInterrupt
    with Engine(seed=0) as engine:
        tone = source((0.3 * np.sin(np.arange(44100) / 9)).astype(np.float32), name="tone")
        voice(tone, tone, curve=0.5, name="pad")
        for stems in (False, True):
            with pytest.raises(KeyboardInterrupt):
                render_to_file(engine, tmp_path / "new" / "deeper" / "take.wav", 0.5, stems=stems,
                               progress=False, on_block=stop)
            assert list(tmp_path.iterdir()) == []
