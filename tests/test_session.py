"""A performer's session: cells journaled before they run, landing on one sample, replayable."""

import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import jackutil
from livelatent import Engine
from livelatent.cli import main
from livelatent.errors import LiveLatentError, SetError
from livelatent.model.checkpoint import save_checkpoint
from livelatent.model.vae import RawAudioVAE, VAEConfig
from livelatent.session.performance import read_journal, read_sessions
from livelatent.session.session import Session
from livelatent.session.sets import render_set

SR = 44100
ROOT = Path(__file__).resolve().parent.parent
SOURCES = """\
import numpy as np
t = np.arange(2 * 44100) / 44100
tone = source((0.5 * np.sin(2 * np.pi * 220 * t)).astype("float32"), name="tone")
hiss = source(np.random.default_rng(1).normal(0, 0.2, 44100).astype("float32"), name="hiss")
"""


@pytest.fixture
def model(tmp_path):
    """A small RawAudioVAE checkpoint: fast to decode."""
    torch.manual_seed(0)
    config = VAEConfig(hidden=64, latent=8)
    return save_checkpoint(tmp_path / "model.pt", RawAudioVAE(config), config)


def test_each_cell_is_journaled_with_the_sample_it_landed_on(tmp_path, model):
    with Engine(model, seed=4) as engine:
        session = Session(engine, sets_root=tmp_path)
        session.run_cell(SOURCES)
        engine.render_array(samples=1000)
        session.run_cell("v = voice(tone, hiss, curve=sine(2))\nv.gain = 0.5")
        assert engine.landed_at == 1024                  # the next step, for both changes
        engine.render_array(samples=5000)
        session.run_cell("x = 1", origin="pattern patterns/drift.py")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d-\d{4}", session.set_dir.name)    # a name from the time
    entries = read_journal(session.set_dir / "journal.jsonl")
    assert [e.code for e in entries] == [SOURCES, "v = voice(tone, hiss, curve=sine(2))\nv.gain = 0.5",
                                         "x = 1"]
    assert [(e.position, e.sample, e.landed) for e in entries] == [(0, 0, False), (1000, 1024, True),
                                                                   (6000, 6000, False)]
    assert entries[2].origin == "pattern patterns/drift.py"
    (started,) = read_sessions(session.set_dir / "journal.jsonl")
    assert (started.seed, started.tempo, started.model_hash) == (4, 60.0, engine.codec.content_hash)


def test_a_cell_gives_the_value_of_its_last_expression_once_like_python(tmp_path, model):
    with Engine(model) as engine:
        session = Session(engine, sets_root=tmp_path)
        assert session.run_cell(SOURCES) is None
        made = session.run_cell("voice(tone, hiss, name='a')")          # evaluated once
        engine.render_array(samples=engine.step)                       # let it land
        assert made.name == "a" and [p.name for p in engine.voices()] == ["a"]
        assert session.run_cell("n = 2\nn * 21") == 42
        assert session.run_cell("v = voice(hiss, tone)\nv.gain = 0.5") is None
        engine.render_array(samples=engine.step)
        assert len(engine.voices()) == 2
        with pytest.raises(LiveLatentError, match=r"^<repl 4>:2: ZeroDivisionError"):
            session.run_cell("n = 3\n1 / 0")


def test_a_broken_cell_raises_one_line_and_leaves_the_voices_playing(tmp_path, model):
    with Engine(model) as engine:
        session = Session(engine, sets_root=tmp_path)
        session.run_cell(SOURCES + "v = voice(tone, hiss, curve=sine(2))")
        engine.render_array(samples=4096)
        with pytest.raises(LiveLatentError, match=r"^<repl 1>:2: ZeroDivisionError: division by zero$"):
            session.run_cell("v.gain = 0.25\nv.curve = 1 / 0\nv.pan = 1")
        with pytest.raises(LiveLatentError, match=r"^<repl 2>:1: syntax error"):
            session.run_cell("v.curve = (")
        after = engine.render_array(samples=4096)
        assert np.sqrt(np.mean(after ** 2)) > 0.01                         # still sounding
        assert engine.voices()[0].gain == 0.25 and engine.voices()[0].pan == 0.0   # as Python ran it
    entries = read_journal(session.set_dir / "journal.jsonl")
    assert "ZeroDivisionError" in entries[1].error and "syntax error" in entries[2].error
    assert entries[1].landed and not entries[2].landed


def test_a_pattern_file_that_fails_changes_nothing(tmp_path, model):
    with Engine(model) as engine:
        session = Session(engine, sets_root=tmp_path)
        session.run_cell(SOURCES + "v = voice(tone, hiss)")
        with pytest.raises(LiveLatentError):
            session.run_cell("v.gain = 0.1\nw = voice(hiss, tone)\nraise RuntimeError('half way')",
                             origin="pattern p.py", discard_on_error=True)
        engine.render_array(samples=2048)
        assert engine.voices()[0].gain == 1.0
        # nothing of it is left: the handle says what plays, the voice it made has no number
        assert session.namespace["v"].gain == 1.0 and [p.index for p in engine.intended_voices()] == [0]
        assert session.run_cell("voice(hiss, tone)").number == 1
    (_, failed, _) = read_journal(session.set_dir / "journal.jsonl")
    assert failed.discard_on_error and not failed.landed


def test_save_and_load_are_plain_functions_in_the_namespace(tmp_path, model):
    with Engine(model) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="tonight")
        session.run_cell(SOURCES + "v = voice(tone, hiss, curve=tri(2))\nsave('encore')")
        assert any(text.startswith("saved") for text in engine.events.texts())
        assert (tmp_path / "encore" / "state.json").exists()
        assert (tmp_path / "encore" / "journal.jsonl").read_text().count('"kind": "cell"') == 1
        session.run_cell("v.stop(0)")
        engine.render_array(samples=4096)
        assert engine.voices() == []
        session.run_cell("load('encore')")
        engine.render_array(samples=4096)
        assert [p.curve for p in engine.voices()] and repr(engine.voices()[0].curve) == "tri(2.0)"
        assert session.save() == tmp_path / "tonight"            # no name: the session's own set
    assert (tmp_path / "tonight" / "state.json").exists()


def test_a_reopened_set_appends_a_second_session(tmp_path, model):
    for value in (1, 2):
        with Engine(model, seed=value) as engine:
            Session(engine, sets_root=tmp_path, set_name="gig").run_cell(f"x = {value}")
    journal = tmp_path / "gig" / "journal.jsonl"
    assert [s.seed for s in read_sessions(journal)] == [1, 2]
    assert [e.code for e in read_journal(journal, session=-1)] == ["x = 2"]


def test_live_only_names_do_nothing_in_a_replay(tmp_path, model):
    calls = []
    with Engine(model) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="gig",
                          extra={"watch": lambda path: calls.append(path)})
        session.run_cell(SOURCES + "watch('patterns/')\nvoice(tone, hiss)")
        played = engine.render_array(samples=SR)
    assert calls == ["patterns/"]
    render_set(tmp_path / "gig", tmp_path / "gig.wav", seconds=1, progress=False)
    assert calls == ["patterns/"]                              # the replay did not watch again
    rendered, _ = sf.read(tmp_path / "gig.wav", dtype="float32")
    assert np.max(np.abs(rendered - played)) <= 1e-4


KILLED = """\
import os, numpy as np
from livelatent import Engine
from livelatent.session.session import Session
engine = Engine({model!r}, seed=6)
session = Session(engine, sets_root={root!r}, set_name="crash")
played = []
for gap, code in {cells!r}:
    played.append(engine.render_array(samples=gap))
    try:
        session.run_cell(code)
    except Exception as exc:
        print(exc)
played.append(engine.render_array(samples=3 * 44100))
np.save({played!r}, np.concatenate(played))
session.run_cell("import os, signal\\nos.kill(os.getpid(), signal.SIGKILL)")
print("still alive")
"""


def test_sigkill_loses_nothing_that_was_evaluated(tmp_path, model):
    cells = [(0, SOURCES), (2000, "v = voice(tone, hiss, curve=sine(2))"),
             (SR // 2, "v.curve = tri(1)"), (SR // 3, "w = voice(hiss, tone, gain=0.4)"),
             (SR // 4, "v.curve = oops")]
    played_path = tmp_path / "played.npy"
    script = KILLED.format(model=str(model), root=str(tmp_path), cells=cells, played=str(played_path))
    killed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert killed.returncode == -9, killed.stderr
    assert "still alive" not in killed.stdout
    entries = read_journal(tmp_path / "crash" / "journal.jsonl")
    assert [e.code for e in entries][:-1] == [code for _, code in cells]
    assert entries[-1].code.endswith("os.kill(os.getpid(), signal.SIGKILL)") and not entries[-1].applied
    assert all(e.applied for e in entries[:-1]) and "NameError" in entries[-2].error
    # and the crashed session renders as it was heard
    played = np.load(played_path)
    render_set(tmp_path / "crash", tmp_path / "crash.wav", seconds=len(played) / SR, progress=False)
    rendered, _ = sf.read(tmp_path / "crash.wav", dtype="float32")
    assert np.max(np.abs(played)) > 0.05
    assert np.max(np.abs(rendered - played)) <= 1e-4


def test_a_live_session_through_jack_renders_as_it_was_heard(jack_server, tmp_path, model):
    with Engine(model, seed=3, blocksize=256) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="live")
        session.run_cell(SOURCES)
        engine.start("system")
        with jackutil.JackRecorder(jack_server, "PortAudio", seconds=12) as recorder:
            session.run_cell("v = voice(tone, hiss, curve=sine(2))")
            time.sleep(0.7)
            session.run_cell("v.curve = tri(1).range(0.5, 1)")              # a hot swap
            time.sleep(0.4)
            with pytest.raises(LiveLatentError, match="NameError"):
                session.run_cell("v.gain = 0.5\nv.curve = no_such_curve")    # broken, half applied
            time.sleep(0.4)
            session.run_cell("w = voice(hiss, tone, strategy='extension', gain=0.5, pan=-0.3)")
            time.sleep(0.7)
            engine.stop_playback()
            captured = recorder.stop()
        underruns = engine.underruns
        folder = session.save()
    assert underruns == 0
    loud = np.flatnonzero(np.any(captured != 0, axis=1))
    captured = captured[:loud[-1] + 1]
    assert main(["render", str(folder), "-o", str(tmp_path / "live.wav")]) == 0
    reference, _ = sf.read(tmp_path / "live.wav", dtype="float32")
    offset = jackutil.align(captured, reference)
    assert len(captured) - offset >= 2 * SR                    # the whole performance compared
    assert jackutil.max_abs_diff_aligned(captured, reference, offset=offset) <= 1e-4
    # (jackd's own xrun count follows the whole machine's load; what was heard is compared above)


def test_a_journal_that_cannot_be_written_does_not_stop_the_show(tmp_path, model):
    with Engine(model) as engine:
        session = Session(engine, sets_root=tmp_path)
        session.journal.close()                      # as if the disk had gone away
        session.run_cell(SOURCES + "v = voice(tone, hiss)")
        assert np.sqrt(np.mean(engine.render_array(samples=4096) ** 2)) > 0.01   # it plays
        assert any("not recorded" in message for message in engine.events.texts())


def test_a_set_whose_mapping_is_damaged_loads_nothing(tmp_path, model):
    # load() replaced the voices, then failed on mappings/: half a set, the error said none
    with Engine(model) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="live")
        session.run_cell(SOURCES + "keep = voice(tone, hiss, name='keep')\n"
                         "m = mapping(inputs=[const(0.2)], name='m')\n"
                         "m.add(tone, inputs=[0]); m.add(hiss, inputs=[1])")
        session.save("mapped")
        session.run_cell("stop('keep'); other = voice(hiss, tone, name='other')")
        engine.render_array(samples=8192)
        (tmp_path / "mapped" / "mappings" / "m.json").write_text("{damaged")
        with pytest.raises(LiveLatentError, match=r"m.json: the mapping cannot be read"):
            session.run_cell("load('mapped')")
        engine.render_array(samples=8192)
        assert [p.name for p in engine.voices()] == ["other"]


def test_a_set_name_no_file_system_takes_is_a_clear_error(tmp_path, model):
    with Engine(model) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="live")
        for name in ("x" * 300, "nul\0byte"):          # OSError, ValueError
            with pytest.raises(SetError, match="set"):
                session.save(name)
        assert sorted(p.name for p in (tmp_path / "sets").iterdir()) == ["live"]


def test_a_cell_holding_a_lone_surrogate_is_a_clear_error_and_the_journal_stays_readable(tmp_path):
    from livelatent.session.performance import read_performance
    with Engine() as engine:
        session = Session(engine, sets_root=tmp_path, set_name="text")
        with pytest.raises(LiveLatentError, match="not text"):
            session.run_cell("x = 1  # \ud800")
        session.run_cell("y = 'é'")
        session.close()
    cells = read_performance(tmp_path / "text" / "journal.jsonl").cells
    assert [c.code for c in cells] == ["y = 'é'"]


def test_a_session_is_not_opened_among_a_folders_other_files(tmp_path, model):
    # `live --set .` wrote journal.jsonl and state.json among the files of the folder typed in
    from livelatent.errors import SetError
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with Engine(model) as engine:
        with pytest.raises(SetError, match="holds other files, not a set"):
            Session(engine, set_name=str(folder))
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_what_a_cell_or_a_timer_raises_is_one_line_whatever_it_raises(tmp_path, model):
    # a GeneratorExit (or a BaseException of the performer's own) went past the one-line
    # errors as a traceback, an exception whose __str__ raised escaped as that error, and a
    # timer raising GeneratorExit ended a render
    with Engine(model) as engine:
        session = Session(engine, sets_root=tmp_path)
        session.run_cell(SOURCES + "v = voice(tone, hiss, curve=sine(2))\n"
                         "class Odd(Exception):\n    def __str__(self):\n        raise ValueError('x')\n"
                         "class Mine(BaseException):\n    pass")
        for code, said in (("raise GeneratorExit('bye')", "GeneratorExit: bye"),
                           ("raise Mine('mine')", "Mine: mine"),
                           ("raise Odd()", "Odd: (its message cannot be shown: its __str__ raised)")):
            with pytest.raises(LiveLatentError, match=r"^<repl \d>:1: " + re.escape(said) + "$"):
                session.run_cell(code)
        with pytest.raises(LiveLatentError, match=r"the curve raised Odd: \(its message cannot be shown"):
            session.run_cell("def odd(t):\n    raise Odd()\nv.curve = curve(odd)")
        session.run_cell("def bad():\n    raise GeneratorExit('gone')\n"
                         "every(1, bad)\nevery(1, lambda: setattr(v, 'gain', 0.5))")
        engine.render_array(3.0)
        assert any("GeneratorExit: gone; it is dropped" in t for t in engine.events.texts())
        assert engine.voices()[0].gain == 0.5


def test_ctrl_c_inside_a_group_of_exceptions_is_still_ctrl_c(tmp_path, model):
    # asyncio's TaskGroup wraps a Ctrl-C in a BaseExceptionGroup: it became a one-line error,
    # and the REPL did not say "interrupted"
    with Engine(model) as engine:
        session = Session(engine, sets_root=tmp_path)
        with pytest.raises(KeyboardInterrupt):
            session.run_cell("raise BaseExceptionGroup('tasks', [KeyboardInterrupt()])")
        with pytest.raises(LiveLatentError, match="ExceptionGroup: tasks"):
            session.run_cell("raise ExceptionGroup('tasks', [ValueError('x')])")


def test_an_empty_livelatent_sets_is_unset(monkeypatch):
    # sets went into the current folder itself, among its files
    from livelatent.config import sets_dir
    monkeypatch.setenv("LIVELATENT_SETS", "")
    assert str(sets_dir()) == "sets"
