"""Sets: save and load a state, render and replay a journal, and every broken set's error."""

import json
import shutil
import threading
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

import jackutil
from packutil import small_pack
from livelatent import Engine, LiveLatentError
from livelatent.cli import main
from livelatent.errors import ParameterError, SetError
from livelatent.model.checkpoint import save_checkpoint
from livelatent.model.vae import RawAudioVAE, VAEConfig
from livelatent.session.performance import read_journal, read_performance
from livelatent.session.session import Session
from livelatent.session.sets import render_set, replay_set
from livelatent.session.state import load_set, read_state

SR = 44100
SOURCES = """\
import numpy as np
t = np.arange(2 * 44100) / 44100
tone = source((0.5 * np.sin(2 * np.pi * 220 * t)).astype("float32"), name="tone")
hiss = source(np.random.default_rng(1).normal(0, 0.2, 44100).astype("float32"), name="hiss")
"""


def make_model(folder, *, seed=0):
    """A small RawAudioVAE checkpoint: fast to decode, and ours to move or change."""
    torch.manual_seed(seed)
    config = VAEConfig(hidden=64, latent=8)
    return save_checkpoint(folder / "model.pt", RawAudioVAE(config), config)


@pytest.fixture
def model(tmp_path):
    (tmp_path / "model").mkdir()
    return make_model(tmp_path / "model")


def perform(session, cells):
    """Run cells with renders between them; returns the audio the engine played."""
    played = []
    for gap, code in cells:
        played.append(session.engine.render_array(samples=gap))
        try:
            session.run_cell(code)
        except Exception:
            pass            # a broken cell is part of the performance
    return played


PERFORMANCE = [
    (0, SOURCES),
    (3000, "drift = voice(tone, hiss, curve=sine(2), name='drift')"),
    (20000, "drift.curve = tri(1).range(0.2, 0.8)"),
    (9000, "drift.curve = 1 / 0"),                                    # broken: raises
    (7000, "voice(hiss, tone, strategy='extension', synth='concat', curve=saw(3), gain=0.5, pan=0.4)"),
    (12345, "drift.set(gain=0.4, quant='bar')"),
    (30000, "tempo(120)"),
]


def test_render_of_a_set_equals_what_the_session_played(tmp_path, model):
    with Engine(model, seed=5) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="gig")
        played = perform(session, PERFORMANCE)
        played.append(engine.render_array(samples=3 * SR))
        session.close()
    played = np.concatenate(played)
    assert main(["render", str(tmp_path / "sets" / "gig"), "-o", str(tmp_path / "gig.wav"),
                 "--seconds", str(len(played) / SR)]) == 0
    rendered, rate = sf.read(tmp_path / "gig.wav", dtype="float32")
    assert rate == SR and rendered.shape == played.shape
    assert np.max(np.abs(played)) > 0.05                     # something was heard
    assert np.max(np.abs(rendered - played)) <= 1e-4


def test_the_largest_seed_a_voice_takes_is_one_its_set_renders_again(tmp_path, model):
    # seed=2**62 played, then the set it was saved in would neither render nor load
    with Engine(model, seed=5) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="seeds")
        played = perform(session, [(0, SOURCES)])
        for refused in ("voice(tone, hiss, seed=2**62)", "voice(tone, hiss, noise_key=2**64)"):
            with pytest.raises(LiveLatentError, match=r"must be a whole number from 0 to 2\*\*62 - 1"):
                session.run_cell(refused)
        played += perform(session, [(0, "voice(tone, hiss, seed=2**62 - 1, noise_key=2**62 - 1)")])
        played.append(engine.render_array(samples=SR))
        session.save()
        session.close()
    played = np.concatenate(played)
    assert main(["render", str(tmp_path / "sets" / "seeds"), "-o", str(tmp_path / "s.wav"),
                 "--seconds", str(len(played) / SR)]) == 0
    assert np.max(np.abs(sf.read(tmp_path / "s.wav", dtype="float32")[0] - played)) <= 1e-4


def test_a_set_opened_again_renders_each_of_its_sessions_and_says_which(tmp_path, model, capsys):
    # a second session in the same set made `render` play only it: the first gig could no
    # longer be rendered from the command line, and nothing said so
    played = []
    for session_code in ("v = voice(tone, hiss, curve=sine(2))", "print('nothing plays')"):
        with Engine(model, seed=5) as engine:
            session = Session(engine, sets_root=tmp_path / "sets", set_name="twice")
            part = perform(session, [(0, SOURCES), (0, session_code)])
            part.append(engine.render_array(samples=SR))
            played.append(np.concatenate(part))
            session.close()
            said = [t for t in engine.events.texts() if "holds 1 performance already" in t]
    assert said and "added to its journal as session 2" in said[0]        # the second one says so
    folder = str(tmp_path / "sets" / "twice")
    capsys.readouterr()
    assert main(["render", folder, "-o", str(tmp_path / "last.wav"), "--seconds", "1"]) == 0
    assert "journal holds 2 sessions; this is session 2 (--session N renders another)" \
        in capsys.readouterr().err
    assert main(["render", folder, "-o", str(tmp_path / "first.wav"), "--session", "1",
                 "--seconds", str(len(played[0]) / SR)]) == 0
    first, _ = sf.read(tmp_path / "first.wav", dtype="float32")
    assert np.max(np.abs(first - played[0])) <= 1e-4 and np.abs(first).max() > 0.05
    for wrong, said in (("0", "sessions count from 1"), ("3", "--session 1 to 2")):
        assert main(["render", folder, "-o", str(tmp_path / "x.wav"), "--session", wrong]) == 2
        assert said in capsys.readouterr().err


def test_save_under_a_name_never_replaces_another_performance(tmp_path, model):
    # save('gig') from a new session replaced the journal of the gig saved under that name
    with Engine(model, seed=5) as engine:
        first = Session(engine, sets_root=tmp_path / "sets", set_name="first")
        perform(first, [(0, SOURCES), (0, "v = voice(tone, hiss)")])
        first.save("gig")
        perform(first, [(SR // 2, "v.curve = tri(1)")])
        first.save("gig")                         # its own earlier save: brought up to date
        first.close()
    before = (tmp_path / "sets" / "gig" / "journal.jsonl").read_bytes()
    assert b"tri(1)" in before
    with Engine(model, seed=5) as engine:
        second = Session(engine, sets_root=tmp_path / "sets", set_name="second")
        perform(second, [(0, SOURCES)])
        with pytest.raises(SetError, match="cannot save as gig: that set holds another performance"):
            second.save("gig")
        second.save("gig2")
        with pytest.raises(SetError, match="holds a character that is not printable"):
            second.save("a\nb")                       # (a newline broke the render hint)
        (second.set_dir / "inputs").mkdir()           # as a live input's recording would be
        (second.set_dir / "inputs" / "input1.flac").write_bytes(b"")
        with pytest.raises(SetError, match="live input recordings are in .*which a copy would lack"):
            second.save("gig3")                        # (the copy could not render: no inputs/)
        second.save()
        second.close()
    assert (tmp_path / "sets" / "gig" / "journal.jsonl").read_bytes() == before


def test_default_render_length_is_the_last_cell_plus_a_tail(tmp_path, model):
    with Engine(model, seed=5) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="gig")
        perform(session, PERFORMANCE)
        last = engine.landed_at
    report = render_set(tmp_path / "gig", tmp_path / "gig.flac", progress=False)
    assert report.cells == len(PERFORMANCE)
    assert sf.info(str(tmp_path / "gig.flac")).frames == last + 4 * SR


def test_save_then_load_restores_the_voices_sample_for_sample(tmp_path, model):
    here = 40 * 512 + 100
    with Engine(model, seed=9) as original:
        session = Session(original, sets_root=tmp_path)
        perform(session, [(0, SOURCES), (5000, "a = voice(tone, hiss, curve=sine(4), name='a')"),
                          (1000, "b = voice(hiss, tone, strategy='stepwise', steps=(0, 1, 0.25), "
                                 "gain=0.7, pan=-0.5, name='b')"),
                          (1000, "c = voice(tone, hiss, strategy='extension', stretch=2, seed=42)"),
                          (3000, "a.set(curve=tri(2).range(0.1, 0.9), gain=0.6)"),
                          (3000, "c.stop()")])
        original.render_array(samples=here - original.position)
        folder = session.save("snapshot")
    state = read_state(folder)
    assert [v["name"] for v in state["voices"]] == ["a", "b"]          # c was stopped
    assert state["voices"][0]["curve"] == "tri(2.0).range(0.1, 0.9)"

    # the same voices typed afresh at `here`, as the state describes them
    with Engine(model, seed=9) as typed:
        typed.render_array(samples=here)
        session = Session(typed, sets_root=tmp_path)
        session.run_cell(SOURCES + "voice(tone, hiss, curve=tri(2).range(0.1, 0.9), gain=0.6, name='a')\n"
                         "voice(hiss, tone, strategy='stepwise', steps=(0, 1, 0.25), gain=0.7, pan=-0.5)")
        expected = typed.render_array(samples=3 * SR)
    with Engine(model, seed=9) as fresh:
        fresh.render_array(samples=here)
        session = Session(fresh, sets_root=tmp_path)
        session.load("snapshot")                                       # journaled as a cell
        assert {"a", "b"} <= set(session.namespace)                   # handles by name
        restored = fresh.render_array(samples=3 * SR)
        assert not fresh.events.texts("warning")
    assert np.max(np.abs(expected)) > 0.05
    np.testing.assert_array_equal(restored, expected)
    assert read_journal_codes(session.set_dir) == ["load('snapshot')"]


def read_journal_codes(folder):
    return [e.code for e in read_journal(folder / "journal.jsonl")]


def test_load_replaces_the_voices_playing_and_is_replayed_exactly(tmp_path, model):
    with Engine(model, seed=1) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="first")
        perform(session, [(0, SOURCES), (512, "voice(tone, hiss, curve=sine(2))")])
        session.save()
    with Engine(model, seed=1) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="second")
        played = perform(session, [(0, SOURCES), (2000, "voice(hiss, tone, gain=0.3)"),
                                   (SR, "load('first')"), (SR, "v0.curve = 0.9")])
        # the old voice ended, the set's plays under a new number, with the noise it was saved with
        assert [(p.index, p.noise_key) for p in engine.voices()] == [(1, 0)]
        played.append(engine.render_array(samples=SR))
    played = np.concatenate(played)
    render_set(tmp_path / "second", tmp_path / "second.wav", seconds=len(played) / SR, progress=False)
    rendered, _ = sf.read(tmp_path / "second.wav", dtype="float32")
    assert np.max(np.abs(rendered - played)) <= 1e-4


def test_a_curve_that_is_not_code_is_restored_with_its_last_code_curve(tmp_path, model):
    with Engine(model, seed=1) as engine:
        session = Session(engine, sets_root=tmp_path)
        perform(session, [(0, SOURCES), (0, "v = voice(tone, hiss, curve=saw(2), name='v')"),
                          (512, "v.curve = curve(lambda t: t % 1)")])
        engine.render_array(samples=2048)
        folder = session.save("fn")
        assert any("is Python, not code" in m for m in engine.events.texts())
    saved = read_state(folder)["voices"][0]
    assert saved["curve"] == "saw(2.0)" and saved["curve_not_code"].startswith("curve(<function")
    with Engine(model, seed=1) as engine:
        (handle,) = load_set(engine, folder)
        assert repr(handle.curve) == "saw(2.0)"
        assert any("restored with saw(2.0)" in m for m in engine.events.texts())


def test_file_sources_are_stored_by_path_and_checked_when_loading(tmp_path, model):
    wav = tmp_path / "kick.wav"
    sf.write(wav, 0.5 * np.sin(np.linspace(0, 600, SR)).astype("float32"), SR)
    with Engine(model) as engine:
        session = Session(engine, sets_root=tmp_path)
        session.run_cell(SOURCES + f"voice(source({str(wav)!r}), tone)")
        folder = session.save("files")
    record = next(r for r in read_state(folder)["sources"].values() if r["name"] == "kick")
    assert record["paths"] == [str(wav.resolve())] and "file" not in record
    assert len(list((folder / "sources").glob("*.npy"))) == 1       # only the array is embedded
    sf.write(wav, 0.25 * np.sin(np.linspace(0, 600, SR)).astype("float32"), SR)
    with Engine(model) as engine, pytest.raises(SetError, match=r"kick.wav changed since it was recorded"):
        load_set(engine, folder)
    wav.unlink()
    with Engine(model) as engine, pytest.raises(SetError, match=r"source file .*kick.wav is missing"):
        load_set(engine, folder)
    with pytest.raises(SetError, match=r"source file .*kick.wav is missing"):
        render_set(folder, tmp_path / "out.wav", progress=False)


def test_saving_over_a_set_never_leaves_a_half_written_file(tmp_path, model, monkeypatch):
    with Engine(model) as engine:
        session = Session(engine, sets_root=tmp_path)
        session.run_cell(SOURCES + "voice(tone, hiss)")
        folder = session.save("gig")
        before = (folder / "state.json").read_bytes()
        session.run_cell("voice(hiss, tone)")

        def crash(*args, **kwargs):
            raise OSError(28, "No space left on device")
        monkeypatch.setattr("livelatent.session.state.os.replace", crash)
        with pytest.raises(SetError, match="No space left on device"):
            session.save("gig")
        monkeypatch.undo()
        assert (folder / "state.json").read_bytes() == before
        assert sorted(p.name for p in folder.iterdir()) == ["journal.jsonl", "sources", "state.json"]
        session.save("gig")                                     # and a good save replaces it
        assert len(read_state(folder)["voices"]) == 2
        (tmp_path / "notes").mkdir()
        (tmp_path / "notes" / "todo.txt").write_text("x")
        with pytest.raises(SetError, match="holds other files, not a set"):
            session.save("notes")


# -- broken sets: each fails with its own clear error ---------------------------------------------
@pytest.fixture
def saved_set(tmp_path, model):
    with Engine(model, seed=2) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="gig")
        perform(session, [(0, SOURCES), (1024, "v = voice(tone, hiss, curve=sine(2))"),
                          (SR, "v.curve = tri(1)")])
        session.save()
        session.close()
    return tmp_path / "sets" / "gig"


def test_a_render_does_not_print_again_what_the_cells_printed(tmp_path, model, capfd):
    with Engine(model, seed=2) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="loud")
        perform(session, [(0, SOURCES), (1024, "print('x' * 10000); v = voice(tone, hiss)")])
        session.save()
        session.close()
    capfd.readouterr()
    render_set(tmp_path / "sets" / "loud", tmp_path / "out.wav", seconds=0.5, progress=False)
    assert "x" * 100 not in capfd.readouterr().out            # (it was all printed again)
    assert sf.info(str(tmp_path / "out.wav")).frames == SR // 2


def test_a_set_render_never_replaces_a_file_the_set_plays(tmp_path, model):
    take = tmp_path / "take1.wav"
    sf.write(str(take), (0.3 * np.sin(np.arange(SR) / 9)).astype(np.float32), SR)
    with Engine(model, seed=2) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="takes")
        perform(session, [(0, f"t = source({str(take)!r}); v = voice(t, t)")])
        session.save()
        session.close()
    before = take.read_bytes()        # (no voice plays when a set's render starts: the check
    with pytest.raises(ParameterError, match="the set's source .* plays that file"):   # missed it)
        render_set(tmp_path / "sets" / "takes", take, seconds=0.5, progress=False)
    # a stem may be named take.<voice>.wav: take1.wav's stems could be named like a played file
    pad = tmp_path / "take1.pad.wav"
    take.rename(pad)
    with Engine(model, seed=2) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="pad")
        perform(session, [(0, f"t = source({str(pad)!r}); v = voice(t, t, name='pad')")])
        session.save()
        session.close()
    with pytest.raises(ParameterError, match="with stems: a stem could be named take1.pad.wav"):
        render_set(tmp_path / "sets" / "pad", take, seconds=0.5, stems=True, progress=False)
    assert pad.read_bytes() == before
    render_set(tmp_path / "sets" / "pad", take, seconds=0.5, progress=False)       # no stems: fine
    # a live input's recording, in the set's inputs/, is played as much as a file source is
    from livelatent.session.sets import _source_files
    from livelatent.sinks.file import check_not_played

    class Recorded:
        sources = {"ab12": {"origin": {"kind": "live", "file": "inputs/input1.flac"}}}
    set_dir = tmp_path / "sets" / "mic"
    with pytest.raises(ParameterError, match="the set's live input 'ab12' .* plays that file"):
        check_not_played(set_dir / "inputs" / "input1.flac", _source_files(Recorded, set_dir))


def test_a_stream_a_replayed_cell_keeps_writes_through_once_the_cell_is_done(capsys):
    import sys
    from livelatent.session.replay import quiet_stdout
    with quiet_stdout():
        print("shown when it was played")
        kept = sys.stdout                    # (a logging handler a cell made; a file closed
    kept.write("after\n")                    # after the cell made it raise on every write)
    assert capsys.readouterr().out == "after\n"


def test_a_set_folder_that_does_not_exist(saved_set, tmp_path):
    with pytest.raises(SetError, match=r"no set at .*gog: the folder does not exist; sets in .*: gig"):
        render_set(saved_set.parent / "gog", tmp_path / "out.wav")
    with Engine(make_model(tmp_path)) as engine, pytest.raises(SetError, match="no set at"):
        load_set(engine, saved_set.parent / "gog")
    assert main(["replay", str(saved_set.parent / "gog")]) == 2


def test_a_missing_model_file(saved_set, tmp_path, model):
    model.rename(tmp_path / "moved.pt")
    with pytest.raises(SetError, match=r"needs the model pack 'model' .* recorded at .*model.pt"):
        render_set(saved_set, tmp_path / "out.wav")
    assert main(["render", str(saved_set), "-o", str(tmp_path / "out.wav")]) == 2


def test_a_changed_model(saved_set, tmp_path, model):
    make_model(model.parent, seed=1)                   # other weights under the same name
    with pytest.raises(SetError, match=r"model file .*model.pt changed since the set was saved"):
        render_set(saved_set, tmp_path / "out.wav")
    with Engine(model) as engine, pytest.raises(SetError, match="changed since the set was saved"):
        load_set(engine, saved_set)


def test_loading_into_an_engine_with_another_model(saved_set, tmp_path):
    with Engine(make_model(tmp_path, seed=3)) as engine, \
            pytest.raises(SetError, match="this engine runs another"):
        load_set(engine, saved_set)


def test_malformed_json(saved_set, tmp_path, model):
    render_set(saved_set, tmp_path / "intact.wav", seconds=1, progress=False)
    path = saved_set / "state.json"
    path.write_text(path.read_text()[:-40])
    # a render needs only the journal: a damaged state.json no longer locks the set away
    with pytest.warns(UserWarning, match=r"state.json:\d+:\d+: malformed JSON .* replayed from journal"):
        render_set(saved_set, tmp_path / "out.wav", seconds=1, progress=False)
    assert np.array_equal(sf.read(tmp_path / "out.wav")[0], sf.read(tmp_path / "intact.wav")[0])
    with Engine(model) as engine, pytest.raises(SetError, match="malformed JSON"):
        load_set(engine, saved_set)
    for text in ('{"schema": 1' + "0" * 5000 + "}", "[" * 100_000):   # (json's own limits)
        path.write_text(text)
        with Engine(model) as engine, pytest.raises(SetError, match="malformed JSON"):
            load_set(engine, saved_set)
    path.write_text(json.dumps({"schema": 1, "model": {}}))
    with Engine(model) as engine, pytest.raises(SetError, match="malformed state"):
        load_set(engine, saved_set)


def test_a_newer_schema_version(saved_set, tmp_path, model):
    path = saved_set / "state.json"
    state = json.loads(path.read_text())
    state["schema"] = 4
    path.write_text(json.dumps(state))
    with pytest.raises(SetError, match="schema version 4 is newer than this livelatent reads"):
        render_set(saved_set, tmp_path / "out.wav")
    with Engine(model) as engine, pytest.raises(SetError, match="schema version 4 is newer"):
        load_set(engine, saved_set)


def test_a_set_rendered_at_another_rate_for_some_seconds_is_that_long_and_replays_once(saved_set,
                                                                                        tmp_path):
    # the file's end reads the samples after it: the journal player replayed the whole
    # performance again for them, its batches landing late (a SetError), before this was mended
    report = render_set(saved_set, tmp_path / "at48k.wav", seconds=2, rate=48000, progress=False)
    assert report.batches == 2
    audio, rate = sf.read(tmp_path / "at48k.wav", dtype="float32")
    assert rate == 48000 and audio.shape == (2 * 48000, 2) and np.abs(audio).max() > 0.01


def test_options_a_set_decides_for_itself_are_refused_not_ignored(saved_set, tmp_path, capsys):
    # render SET --channels 4 wrote the set's 2 channels without a word
    for option in (["--channels", "4"], ["--tempo", "90"]):
        assert main(["render", str(saved_set), "-o", str(tmp_path / "o.wav"), *option]) == 2
        assert f"{option[0]} {option[1]} does not apply to a set" in capsys.readouterr().err
    assert not (tmp_path / "o.wav").exists()


def test_a_journal_whose_last_entry_was_cut_off_replays_the_rest(saved_set, tmp_path):
    render_set(saved_set, tmp_path / "whole.wav", seconds=3, progress=False)
    journal = saved_set / "journal.jsonl"
    swap = read_journal(journal)[-1].sample            # where the curve swap landed
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:-2]) + lines[-2][:30])   # the curve swap, cut mid-line
    with pytest.warns(UserWarning, match="cut off by a crash"):
        report = render_set(saved_set, tmp_path / "cut.wav", seconds=3, progress=False)
    assert report.batches == 1                        # the voice started; its curve swap is lost
    whole, _ = sf.read(tmp_path / "whole.wav", dtype="float32")
    cut, _ = sf.read(tmp_path / "cut.wav", dtype="float32")
    assert np.max(np.abs(cut[:swap] - whole[:swap])) <= 1e-5     # (decode batches split otherwise)
    assert np.max(np.abs(cut[swap + 4096:] - whole[swap + 4096:])) > 1e-3


@pytest.mark.parametrize("edit, said", [
    ({"kind": "end", "sample": 10 ** 15}, r"sample=1000000000000000 is 2.62e\+05 days into the "
                                          r"performance, more than a set holds \(366 days\)"),
    ({"kind": "heard", "sample": 10 ** 15}, "more than a set holds"),
    ({"kind": "end", "sample": -5}, "sample=-5 must be a whole number from 0"),
    ({"kind": "end", "sample": "900"}, "sample='900' must be a whole number"),
    # within a year (an installation resumed for days is one), but not rendered unasked
    ({"kind": "end", "sample": 44100 * 3600 * 72}, r"ran 72.0 hours, longer than a render makes "
                                                   r"unasked \(48 hours\): give --seconds"),
])
def test_a_hand_edited_end_or_heard_record_is_refused_not_rendered_for_ever(saved_set, tmp_path,
                                                                            edit, said):
    # an end at 10**15 rendered on and on (1.7 GB in 40 s), and so did a resume's rebuild
    journal = saved_set / "journal.jsonl"
    version = json.loads(journal.read_text().splitlines()[0])["v"]
    with open(journal, "a") as f:
        f.write(json.dumps(dict(edit, v=version)) + "\n")
    with pytest.raises(SetError, match=said):
        render_set(saved_set, tmp_path / "out.wav", progress=False)


@pytest.mark.parametrize("readings", [[1, 2], "abc"])
def test_a_batch_whose_readings_are_not_objects_is_a_malformed_record(saved_set, tmp_path, readings):
    # AttributeError: 'int' object has no attribute 'items', mid-render
    journal = saved_set / "journal.jsonl"
    lines = journal.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if json.loads(line).get("kind") == "batch")
    record = json.loads(lines[at])
    record["readings"] = readings
    lines[at] = json.dumps(record)
    journal.write_text("\n".join(lines) + "\n")
    with pytest.raises(SetError, match=f"journal.jsonl:{at + 1}: malformed batch record .*readings "
                                       f"is not a list of objects"):
        render_set(saved_set, tmp_path / "out.wav", progress=False)


def test_a_source_file_whose_name_is_no_utf8_plays_saves_and_renders(tmp_path, model):
    # soundfile could not open it, and the error about it could not be journaled (the cell's
    # record was lost); a save could not write state.json
    import os
    take = tmp_path / os.fsdecode(b"caf\xe9.wav")
    sf.write(os.fsencode(take), (0.3 * np.sin(np.arange(SR) / 9)).astype(np.float32), SR)
    with Engine(model, seed=2) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="cafe")
        played = perform(session, [(0, f"t = source({str(take)!r}); v = voice(t, t)")])
        played.append(engine.render_array(samples=SR))
        session.save()
        session.close()
    played = np.concatenate(played)
    assert np.abs(played).max() > 0.05                         # (perform() goes past a failed cell)
    render_set(tmp_path / "sets" / "cafe", tmp_path / "out.wav", seconds=len(played) / SR,
               progress=False)
    assert np.max(np.abs(sf.read(tmp_path / "out.wav", dtype="float32")[0] - played)) <= 1e-4


def test_a_journal_from_when_stretch_took_text_or_a_bool_plays_as_it_did(tmp_path, model):
    # stretch='4' and True are refused now; journals that hold them must still render and load
    with Engine(model, seed=2) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="old")
        played = perform(session, [(0, SOURCES), (0, "v = voice(tone, hiss, strategy='extension', "
                                                     "stretch=4)")])
        played.append(engine.render_array(samples=SR))
        session.close()
    played = np.concatenate(played)
    journal = tmp_path / "sets" / "old" / "journal.jsonl"
    text = journal.read_text()
    assert '"stretch": 4' in text and "stretch=4)" in text
    journal.write_text(text.replace('"stretch": 4', '"stretch": "4"').replace("stretch=4)", "stretch='4')"))
    report = render_set(tmp_path / "sets" / "old", tmp_path / "out.wav",
                        seconds=len(played) / SR, progress=False)
    assert report.notes == []                              # the cell rebuilt its names too
    assert np.max(np.abs(sf.read(tmp_path / "out.wav", dtype="float32")[0] - played)) <= 1e-4


def test_a_source_only_the_state_names_is_not_needed_to_render(saved_set, tmp_path, model):
    # "render needs only the journal", but a missing file the journal never plays blocked it
    path = saved_set / "state.json"
    state = json.loads(path.read_text())
    record = dict(next(r for r in state["sources"].values() if "paths" in r or "file" in r))
    record.update(key="feedfeedfeedfeed", name="gone", paths=[str(tmp_path / "gone.wav")])
    record.pop("file", None)
    state["sources"]["feedfeedfeedfeed"] = record
    path.write_text(json.dumps(state))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # (the state is sound: nothing to warn of)
        render_set(saved_set, tmp_path / "out.wav", seconds=0.5, progress=False)
    assert sf.info(str(tmp_path / "out.wav")).frames == SR // 2


def test_a_missing_source_file_named_by_the_journal(tmp_path, model):
    wav = tmp_path / "pad.wav"
    sf.write(wav, 0.3 * np.sin(np.linspace(0, 900, SR)).astype("float32"), SR)
    with Engine(model) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="crashed")     # never saved
        session.run_cell(f"v = voice(source({str(wav)!r}), source({str(wav)!r}))")
        session.close()
    wav.unlink()
    with pytest.raises(SetError, match=r"source file .*pad.wav is missing \(source 'pad'\)"):
        render_set(tmp_path / "crashed", tmp_path / "out.wav", progress=False)


# -- live replay ---------------------------------------------------------------------------------
def test_replay_plays_the_journal_live_as_the_render_has_it(jack_server, saved_set, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # nothing skipped, nothing cut off
        render_set(saved_set, tmp_path / "gig.wav", seconds=4, progress=False)
    done = {}
    player = threading.Thread(target=lambda: done.setdefault(
        "report", replay_set(saved_set, device="system", seconds=3.5)))
    player.start()
    with jackutil.JackRecorder(jack_server, "PortAudio", seconds=12) as recorder:   # once it plays
        player.join(timeout=30)
        captured = recorder.stop()
    report = done["report"]
    assert report.late == [] and report.underruns == 0 and report.cells == 3
    loud = np.flatnonzero(np.any(captured != 0, axis=1))
    captured = captured[:loud[-1] + 1]
    reference, _ = sf.read(tmp_path / "gig.wav", dtype="float32")
    offset = jackutil.align(captured, reference)
    assert len(captured) - offset >= 2 * SR
    assert jackutil.max_abs_diff_aligned(captured, reference, offset=offset) <= 1e-4
    # (jackd's own xrun count follows the whole machine's load; what was heard is compared above)


def test_a_saved_set_holds_the_state_and_the_journal(saved_set, model):
    state = read_state(saved_set)
    assert state["schema"] == 3 and state["seed"] == 2 and state["tempo"] == 60.0
    assert state["model"] == {"path": str(model.resolve()), "hash": state["model"]["hash"]}
    assert len(state["voices"]) == 1 and state["voices"][0]["curve"] == "tri(1.0)"
    assert len(read_journal(saved_set / "journal.jsonl")) == 3       # the cells, as code
    performance = read_performance(saved_set / "journal.jsonl")
    assert [b.commands[0]["op"] for b in performance.batches] == ["add", "set"]     # and as data


def test_a_set_made_with_a_pack_that_moved_since_finds_it_installed(tmp_path):
    """Sets record the pack's files by absolute path; a reinstall elsewhere moves them."""
    from livelatent.config import DEFAULT_MODEL_DIR
    with Engine(seed=2) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="gig")
        session.run_cell("v = voice(flute, cello, curve=sine(2))")
        played = engine.render_array(samples=SR)
        session.end()
        session.save()
        session.close()
    folder = tmp_path / "sets" / "gig"
    old_place = "/nowhere/old-install/packs/default"
    for name in ("journal.jsonl", "state.json"):
        path = folder / name
        path.write_text(path.read_text().replace(str(DEFAULT_MODEL_DIR), old_place))
    assert old_place in (folder / "journal.jsonl").read_text()
    render_set(folder, tmp_path / "gig.wav", progress=False)
    rendered, _ = sf.read(tmp_path / "gig.wav", dtype="float32")
    assert np.max(np.abs(rendered[:SR] - played)) <= 1e-6
    with Engine(seed=2) as engine:                        # load() finds it too
        session = Session(engine, sets_root=tmp_path / "sets")
        session.run_cell("load('gig')")
        assert [p.name for p in engine.intended_voices()] == ["v0"]
        session.close()


# -- pack versions: a new version of a pack does not break the sets made with the previous one ----
def test_a_set_finds_the_previous_version_of_its_pack(tmp_path, monkeypatch, capsys):
    import shutil
    packs = tmp_path / "packs"
    monkeypatch.setenv("LIVELATENT_PACKS", str(packs))
    weights, old_hash = small_pack(packs / "band", "band", 1, seed=0)
    with Engine(weights, seed=2) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="gig")
        perform(session, [(0, SOURCES), (1024, "v = voice(tone, hiss, curve=sine(2))")])
        session.save()
        session.close()
    gig = tmp_path / "sets" / "gig"
    assert read_state(gig)["model"]["pack"] == {"name": "band", "version": 1}
    assert read_performance(gig / "journal.jsonl").session.model_pack == {"name": "band", "version": 1}
    render_set(gig, tmp_path / "before.wav", seconds=1, progress=False)

    shutil.copytree(packs / "band", packs / "band-v1")          # what the pack builder does
    _, new_hash = small_pack(packs / "band", "band", 2, seed=1)     # version 2: other weights
    render_set(gig, tmp_path / "after.wav", seconds=1, progress=False)
    before, _ = sf.read(tmp_path / "before.wav", dtype="float32")
    after, _ = sf.read(tmp_path / "after.wav", dtype="float32")
    assert np.max(np.abs(before)) > 0.01 and np.array_equal(before, after)
    with Engine(packs / "band-v1" / "model.pt") as engine:
        load_set(engine, gig)                                   # the set's own version plays it
    with Engine(weights) as engine, \
            pytest.raises(SetError, match=r"runs another .* --model .*band-v1.model\.pt"):
        load_set(engine, gig)                                   # version 2 says which to start

    assert main(["info", str(packs / "band")]) == 0
    assert "pack 'band' version 2" in capsys.readouterr().out

    shutil.rmtree(packs / "band-v1")                            # version 1 gone: say which to fetch
    message = (rf"needs the model pack 'band' version 1 \(weights {old_hash[:12]}\).*installed: "
               rf"band = version 2 \(weights {new_hash[:12]}\)")
    with pytest.raises(SetError, match=message):
        render_set(gig, tmp_path / "out.wav", seconds=1, progress=False)
    with Engine(weights) as engine, pytest.raises(SetError, match=message):
        load_set(engine, gig)


def test_the_default_pack_names_its_version(capsys):
    from livelatent.config import DEFAULT_MODEL_DIR
    from livelatent.model.checkpoint import load_checkpoint
    from livelatent.model.packs import pack_info
    info = pack_info(DEFAULT_MODEL_DIR)
    assert info.name == "default" and info.version >= 1
    assert info.weights_hash == load_checkpoint(DEFAULT_MODEL_DIR).content_hash
    assert main(["info"]) == 0
    assert f"pack 'default' version {info.version}" in capsys.readouterr().out
    # every earlier version's model ships beside it, for the sets made with it
    for version in range(1, info.version):
        old = pack_info(DEFAULT_MODEL_DIR.parent / f"default-v{version}")
        assert (old.name, old.version) == ("default", version)
        assert old.weights_hash == load_checkpoint(old.folder).content_hash != info.weights_hash


# -- hostile and hand-edited sets -----------------------------------------------------------------
def edit_journal(folder, change):
    """Rewrite the set's journal with ``change(records)`` applied to its parsed lines."""
    path = folder / "journal.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    change(records)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def batch_records(records):
    return [r for r in records if r["kind"] == "batch"]


def test_no_code_runs_no_code_hidden_in_a_curve(saved_set, tmp_path):
    # eval() without builtins is no sandbox: a curve's text reached os.system through
    # ().__class__ (a set from a stranger ran its code under --no-code), and 9**9**9 never ended
    marker = tmp_path / "ran"
    escape = ("[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'catch_warnings']"
              f"[0]()._module.__builtins__['__import__']('os').system('touch {marker}') and tri(1)")
    for code in (escape, "9**9**9 * tri(1)"):
        edit_journal(saved_set, lambda records: batch_records(records)[1]["commands"][0]["changes"]
                     .update(curve=code))
        with pytest.raises(SetError, match="journal line .* is not a curve's code"):
            render_set(saved_set, tmp_path / "out.wav", seconds=1, run_code=False, progress=False)
    assert not marker.exists()


def test_a_curve_built_past_the_curve_functions_is_not_a_curves_code(saved_set, tmp_path):
    # Curve, curve and as_curve are in the curves module but in no curve's code: Curve('fn', abs)
    # smuggled a Python function into a set, Curve('sine', 0.0) played NaN
    for code in ("Curve('fn', abs)", "Curve('sine', 0.0)", "curve(abs)", "as_curve(0.5)"):
        edit_journal(saved_set, lambda records: batch_records(records)[1]["commands"][0]["changes"]
                     .update(curve=code))
        with pytest.raises(SetError, match="is not a curve's code"):
            render_set(saved_set, tmp_path / "out.wav", seconds=1, run_code=False, progress=False)


def test_abs_of_a_curve_is_rebuilt_from_a_set(saved_set, tmp_path):
    # repr(abs(c)) is "abs(...)", which a curve rebuilt without builtins could not call
    edit_journal(saved_set, lambda records: batch_records(records)[1]["commands"][0]["changes"]
                 .update(curve="(abs(sine(2.0)) - 0.5)"))
    report = render_set(saved_set, tmp_path / "out.wav", seconds=2, run_code=False, progress=False)
    assert report.batches == 2


@pytest.mark.parametrize("field, value, why", [
    ("voice", 10 ** 20, "voice=100000000000000000000 must be a whole number"),   # OverflowError
    ("noise_key", -7, "noise_key=-7 must be a whole number"),                    # numpy's ValueError
    ("seed", -1, "seed=-1 must be a whole number"),
    ("voice", "x", "invalid literal"),                                           # ValueError
    ("timing", [1], "timing=.* is not 4 samples"),
    ("fit", "bogus", "fit='bogus' must be one of"),                              # played as "loop"
    ("quant", "sometime", "quant='sometime' must be one of"),                    # played as "now"
    ("seed", float("inf"), "seed=inf must be a whole number"),        # json's Infinity: OverflowError
    ("voice", float("inf"), "voice=inf must be a whole number"),
])
def test_a_hand_edited_voice_is_a_clear_error_not_a_wrong_render(saved_set, tmp_path, field, value, why):
    edit_journal(saved_set, lambda records: batch_records(records)[0]["commands"][0].update({field: value}))
    with pytest.raises(SetError, match=f"journal line \\d+: malformed command .*{why}"):
        render_set(saved_set, tmp_path / "out.wav", seconds=1, progress=False)


@pytest.mark.parametrize("command, why", [
    ({"op": "set", "voice": 0, "changes": [1], "quant": "now"}, "TypeError"),        # AttributeError
    ({"op": "set", "voice": 0, "changes": {"bogus": 3}, "quant": "now"}, "no 'bogus' to change"),
    ({"op": "set", "voice": 0, "changes": {"gain": float("nan")}, "quant": "now"}, "gain=nan"),
    ({"op": "set", "voice": 0, "changes": {"pan": 50}, "quant": "now"}, "pan=50"),
    ({"op": "stop", "voice": 0, "fade": -100, "quant": "now"}, "fade=-100"),
    ({"op": "sync", "bpm": 60, "beat": float("nan"), "sample": 5}, "beat=nan"),
    ({"op": "control", "name": "osc:/x", "value": float("inf")}, "value=inf"),
    ({"op": "hush", "fade": float("inf"), "quant": "now"}, "fade=inf"),
    ({"op": "sync", "bpm": 60, "beat": 1.0, "sample": float("inf")}, "sample=inf"),
    ({"op": "tempo", "bpm": 0, "quant": "now"}, "tempo=0"),          # failed mid-render, no line
    ({"op": "tempo", "bpm": float("inf"), "quant": "now"}, "tempo=inf"),
    ({"op": "sync", "bpm": -60, "beat": 1.0, "sample": 5}, "tempo=-60"),
])
def test_a_hand_edited_change_is_a_clear_error_not_a_wrong_render(saved_set, tmp_path, command, why):
    edit_journal(saved_set, lambda records: batch_records(records)[1].update(commands=[command]))
    with pytest.raises(SetError, match=f"journal line \\d+: malformed command .*{why}"):
        render_set(saved_set, tmp_path / "out.wav", seconds=1, progress=False)


def test_a_hand_edited_change_of_a_voice_never_started_is_said_not_dropped_quietly(saved_set,
                                                                                  tmp_path):
    # the render left the line out without a word, like one that played it
    played = render_set(saved_set, tmp_path / "played.wav", seconds=1, progress=False)
    assert not any("no earlier record" in n for n in played.notes), played.notes
    edit_journal(saved_set, lambda records: batch_records(records)[1].update(
        commands=[{"op": "set", "voice": 41, "changes": {"gain": 0.5}, "quant": "now"},
                  {"op": "stop", "voice": 42, "fade": 0, "quant": "now"}]))
    report = render_set(saved_set, tmp_path / "out.wav", seconds=1, progress=False)
    assert any("changes voice 41, which no earlier record of the session starts" in n
               for n in report.notes), report.notes
    assert any("stops voice 42" in n for n in report.notes), report.notes


@pytest.mark.parametrize("field, value", [("seed", 1.5), ("sample_rate", 44100.5), ("channels", 2.5)])
def test_a_hand_edited_session_header_is_a_clear_error_not_a_wrong_render(saved_set, tmp_path,
                                                                         field, value):
    # "seed": 1.5 rendered with seed 1, up to 0.028 away from what was heard, without a word
    edit_journal(saved_set, lambda records: [r for r in records if r["kind"] == "session"][0]
                 .update({field: value}))
    with pytest.raises(SetError, match=f"malformed session record .*{field}={value} must be a whole"):
        render_set(saved_set, tmp_path / "out.wav", seconds=1, progress=False)


def test_a_cut_journal_is_one_warning_line_from_the_command_line(saved_set, tmp_path, capsys):
    journal = saved_set / "journal.jsonl"
    journal.write_bytes(journal.read_bytes()[:-20])
    assert main(["render", str(saved_set), "-o", str(tmp_path / "cut.wav"), "--seconds", "1"]) == 0
    err = capsys.readouterr().err
    assert "livelatent: warning: " in err and "cut off by a crash" in err, err
    assert "UserWarning" not in err and "warnings.warn" not in err, err


def test_a_batch_moved_before_the_one_it_follows_names_the_journal_line(saved_set, tmp_path):
    edit_journal(saved_set, lambda records: batch_records(records)[1].update(sample=100))
    with pytest.raises(SetError, match=r"batch 1 \(repl\), journal line \d+: at=100 is before"):
        render_set(saved_set, tmp_path / "out.wav", seconds=1, progress=False)
    edit_journal(saved_set, lambda records: batch_records(records)[1].update(sample=-4096))
    with pytest.raises(SetError, match=r"journal.jsonl:\d+: malformed batch record .*sample=-4096"):
        render_set(saved_set, tmp_path / "out.wav", seconds=1, progress=False)


@pytest.mark.parametrize("change, why", [
    (lambda r: r.update(paths=5), "paths 5 is not a list of file names"),        # TypeError
    (lambda r: r.update(file=5), "file 5 is not a file name"),
    (lambda r: r.update(file="../../../etc/passwd"), "is not inside the set folder"),
    (lambda r: r.update(origin="x"), "origin 'x' is not an object"),             # AttributeError
])
def test_a_hand_edited_source_record_is_a_clear_error(saved_set, tmp_path, model, change, why):
    edit_journal(saved_set, lambda records: change(next(r for r in records if r["kind"] == "source")))
    with pytest.raises(SetError, match=f"journal.jsonl:\\d+: malformed source record .*{why}"):
        render_set(saved_set, tmp_path / "out.wav", seconds=1, progress=False)
    path = saved_set / "state.json"
    state = json.loads(path.read_text())
    change(next(iter(state["sources"].values())))
    path.write_text(json.dumps(state))
    with Engine(model) as engine, pytest.raises(SetError, match=f"malformed state .*{why}"):
        load_set(engine, saved_set)


def test_a_journal_that_is_a_folder_is_said_to_be_one(saved_set, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(saved_set, damaged)
    (damaged / "journal.jsonl").unlink()
    (damaged / "journal.jsonl").mkdir()          # (was "no journal at .../journal.jsonl/journal.jsonl")
    with pytest.raises(SetError, match=r"damaged/journal.jsonl is a folder, not a journal"):
        render_set(damaged, tmp_path / "out.wav", seconds=1, progress=False)


def test_an_empty_copy_of_a_source_is_a_clear_error(saved_set, tmp_path, model):
    for copy in (saved_set / "sources").glob("*.npy"):
        copy.write_bytes(b"")                                  # np.load raised EOFError
    with pytest.raises(SetError, match=r"cannot read .*\.npy"):
        render_set(saved_set, tmp_path / "out.wav", seconds=1, progress=False)
    with Engine(model) as engine, pytest.raises(SetError, match=r"cannot read .*\.npy"):
        load_set(engine, saved_set)


def test_a_model_record_of_the_wrong_kind_is_a_clear_error(saved_set, tmp_path, model):
    edit_journal(saved_set, lambda records: records[0].update(model="x"))       # AttributeError
    with pytest.raises(SetError, match=r"journal.jsonl:1: malformed session record"):
        render_set(saved_set, tmp_path / "out.wav", seconds=1, progress=False)
    path = saved_set / "state.json"
    state = json.loads(path.read_text())
    state["model"]["path"] = 5                                                  # TypeError
    path.write_text(json.dumps(state))
    with Engine(model) as engine, pytest.raises(SetError, match="malformed state .*model.path 5"):
        load_set(engine, saved_set)
    state["model"]["path"] = None
    state["voices"][0].pop("seed")                                              # KeyError
    path.write_text(json.dumps(state))
    with Engine(model) as engine, pytest.raises(SetError, match=r"malformed state .'voices\[0\]\.seed' is missing.;"):
        load_set(engine, saved_set)
    state["voices"][0] = "v0"
    path.write_text(json.dumps(state))
    with Engine(model) as engine, pytest.raises(SetError, match=r"malformed state .voices\[0\] is "
                                                                r"a str, not an object.;"):
        load_set(engine, saved_set)


def test_a_state_with_a_tempo_out_of_range_is_refused_before_anything_changes(saved_set, tmp_path,
                                                                             model):
    # load() sent the tempo: every later step of the engine failed, for good, and so did its set
    from livelatent.engine.commands import SetTempo
    from livelatent.errors import ParameterError
    path = saved_set / "state.json"
    state = json.loads(path.read_text())
    for tempo in (0.5, 2000, 1e9):
        state["tempo"] = tempo
        path.write_text(json.dumps(state))
        with Engine(model) as engine:
            before = engine.intended_tempo()
            with pytest.raises(SetError, match="tempo=.* must be a number of beats per minute"):
                load_set(engine, saved_set)
            assert np.isfinite(engine.render_array(0.1)).all() and engine.intended_tempo() == before
    with pytest.raises(ParameterError, match="tempo=0.5"):
        SetTempo(0.5)                      # whoever sends it: never into the timeline


def test_a_cell_that_called_exit_does_not_end_the_render(saved_set, tmp_path):
    # the REPL carried on after sys.exit() in a cell; the render stopped there, writing nothing
    edit_journal(saved_set, lambda records: next(r for r in records if r["kind"] == "cell")
                 .update(code=SOURCES + "import sys; sys.exit(3)"))
    report = render_set(saved_set, tmp_path / "out.wav", seconds=2, progress=False)
    assert report.batches == 2 and any("called exit()" in note for note in report.notes)


def test_rendering_a_set_for_infinite_seconds_is_refused(saved_set, tmp_path):
    assert main(["render", str(saved_set), "-o", str(tmp_path / "out.wav"), "--seconds", "inf"]) == 2
    with pytest.raises(ParameterError, match="must be positive and finite"):
        render_set(saved_set, tmp_path / "out.wav", seconds=float("inf"))
    with pytest.raises(SetError, match="state.json is a file, not a set"):
        render_set(saved_set / "state.json", tmp_path / "out.wav")


def test_a_copy_of_a_source_whose_header_declares_gigabytes_is_a_clear_error(saved_set, tmp_path, model):
    # np.load took the header at its word: a traceback after trying to allocate 37 GiB
    from numpy.lib import format as npy_format
    for copy in (saved_set / "sources").glob("*.npy"):
        with open(copy, "wb") as f:
            npy_format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (10 ** 10,)})
            f.write(b"\0" * 64)
    with pytest.raises(SetError, match=r"cannot read .*\.npy"):
        render_set(saved_set, tmp_path / "out.wav", seconds=1, progress=False)
    with Engine(model) as engine, pytest.raises(SetError, match=r"cannot read .*\.npy"):
        load_set(engine, saved_set)


@pytest.mark.parametrize("key, value", [("deterministic", "no"), ("loop", "yes"), ("tail_a", "x"),
                                        ("cue", 2)])
def test_a_switch_of_a_journaled_voice_is_true_or_false(saved_set, tmp_path, key, value):
    # bool() read "no" as true: a hand-edited set rendered deterministic, without a word
    def edit(records):
        add = next(c for r in batch_records(records) for c in r["commands"] if c["op"] == "add")
        add[key] = value
    edit_journal(saved_set, edit)
    with pytest.raises(SetError, match=f"{key}={value!r} must be true or false"):
        render_set(saved_set, tmp_path / "out.wav", seconds=1, run_code=False, progress=False)
