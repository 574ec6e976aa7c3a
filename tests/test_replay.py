"""Replays: every change, whoever sent it, comes back on its sample; code only rebuilds names.

Offline sessions (the engine renders between cells), so each test is exact and quick; the
JACK tests of the same mechanisms are in test_writers.py and test_sets.py.
"""

import json
import threading

import numpy as np
import pytest
import soundfile as sf
import torch

from livelatent import Engine, LiveLatentError, SetError
from livelatent.cli import main
from livelatent.model.checkpoint import save_checkpoint
from livelatent.model.vae import RawAudioVAE, VAEConfig
from livelatent.session.performance import read_performance
from livelatent.session.session import Session
from livelatent.session.sets import render_set

SR = 44100
SOURCES = """\
import numpy as np
t = np.arange(2 * 44100) / 44100
tone = source((0.5 * np.sin(2 * np.pi * 220 * t)).astype("float32"), name="tone")
hiss = source(np.random.default_rng(1).normal(0, 0.2, 44100).astype("float32"), name="hiss")
"""


@pytest.fixture
def model(tmp_path):
    torch.manual_seed(0)
    config = VAEConfig(hidden=64, latent=8)
    return save_checkpoint(tmp_path / "model.pt", RawAudioVAE(config), config)


def perform(session, cells):
    """Run (gap in samples, code) pairs, rendering between them; returns what played."""
    played = []
    for gap, code in cells:
        played.append(session.engine.render_array(samples=gap))
        try:
            session.run_cell(code)
        except LiveLatentError:
            pass                    # a broken cell is part of the performance
    return played


def rendered(folder, tmp_path, samples, **options):
    out = tmp_path / f"render-{len(list(tmp_path.glob('render-*')))}.wav"
    render_set(folder, out, seconds=samples / SR, progress=False, **options)
    return sf.read(out, dtype="float32")[0]


def test_a_curve_refused_for_its_speed_live_is_refused_in_the_replay_too(tmp_path, model):
    """The speed check reads the wall clock: the journal keeps its outcome, so a replay on a
    faster machine refuses the same curve, and every later voice keeps its number and noise."""
    flag = tmp_path / "slow-now"
    flag.touch()
    slow = (f"import os, time\n"
            f"def crawl(t):\n"
            f"    if os.path.exists({str(flag)!r}):\n"
            f"        time.sleep(0.005)\n"
            f"    return 0.5 + 0 * t\n")
    with Engine(model, seed=3) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="slow")
        played = perform(session, [(0, SOURCES + slow),
                                   (1000, "v = voice(tone, hiss, curve=crawl)\nbefore = 1"),
                                   (1000, "w = voice(hiss, tone)")])
        assert "w" in session.namespace and "v" not in session.namespace
        played.append(engine.render_array(samples=SR))
        session.close()
    flag.unlink()                                    # the replay's machine is fast
    entry = read_performance(tmp_path / "slow" / "journal.jsonl").cells[1]
    assert entry.error and "ms per 64 windows" in entry.checks[0]
    played = np.concatenate(played)
    assert np.abs(rendered(tmp_path / "slow", tmp_path, len(played)) - played).max() <= 1e-5


def test_a_set_saved_inside_a_cell_holds_that_cell(tmp_path, model):
    with Engine(model, seed=1) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="gig")
        played = perform(session, [(0, SOURCES),
                                   (2000, "v = voice(tone, hiss, curve=sine(2))\nsave('inside')")])
        played.append(engine.render_array(samples=SR))
        session.close()
    batches = read_performance(tmp_path / "inside" / "journal.jsonl").batches
    assert [b.sample for b in batches] == [2048]                 # where the cell landed
    played = np.concatenate(played)
    assert np.abs(rendered(tmp_path / "inside", tmp_path, len(played)) - played).max() <= 1e-5


def test_a_source_file_changed_since_the_performance_is_refused(tmp_path, model):
    wav = tmp_path / "pad.wav"
    sf.write(wav, 0.3 * np.sin(np.linspace(0, 900, SR)).astype("float32"), SR)
    with Engine(model) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="gig")
        perform(session, [(0, SOURCES + f"pad = source({str(wav)!r})"),
                          (512, "voice(pad, tone)")])
        session.close()
    sf.write(wav, 0.1 * np.sin(np.linspace(0, 300, SR)).astype("float32"), SR)
    with pytest.raises(SetError, match=r"pad.wav changed since it was recorded"):
        render_set(tmp_path / "gig", tmp_path / "out.wav", progress=False)


def test_no_code_renders_from_the_journal_alone_and_names_what_only_code_holds(tmp_path, model):
    with Engine(model, seed=2) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="data")
        played = perform(session, [(0, SOURCES), (700, "v = voice(tone, hiss, curve=tri(1))"),
                                   (9000, "v.set(gain=0.5, quant='beat')"),
                                   (9000, "w = voice(hiss, tone, strategy='extension')")])
        played.append(engine.render_array(samples=SR))
        session.close()
    journal = tmp_path / "data" / "journal.jsonl"
    text = journal.read_text()
    journal.write_text(text.replace("np.random.default_rng", "__import__('os').system('false') or "
                                                            "np.random.default_rng"))   # hostile code
    played = np.concatenate(played)
    assert np.abs(rendered(tmp_path / "data", tmp_path, len(played), run_code=False) - played).max() <= 1e-5
    assert main(["render", "--no-code", str(tmp_path / "data"), "-o", str(tmp_path / "cli.wav")]) == 0

    with Engine(model, seed=2) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="lambda")
        perform(session, [(0, SOURCES), (700, "v = voice(tone, hiss, curve=lambda t: t % 1)")])
        session.close()
    with pytest.raises(SetError, match=r"--no-code.*batch \d+ \(repl.*curve\(<function <lambda>"):
        render_set(tmp_path / "lambda", tmp_path / "x.wav", progress=False, run_code=False)
    rendered(tmp_path / "lambda", tmp_path, SR)      # with its code, the lambda comes from the cell


def test_a_thread_started_from_a_cell_is_journaled_and_replayed_without_running_it(tmp_path, model):
    with Engine(model, seed=5) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="threads")
        perform(session, [(0, SOURCES), (0, "v = voice(tone, hiss, curve=0.0)")])
        played = [engine.render_array(samples=4096)]
        session.run_cell("import threading\n"
                         "done = threading.Event()\n"
                         "def sweep():\n"
                         "    v.curve = 0.7\n"
                         "    done.set()\n"
                         "threading.Thread(target=sweep, name='sweep').start()")
        assert session.namespace["done"].wait(10)
        played.append(engine.render_array(samples=SR))
        session.close()
    performance = read_performance(tmp_path / "threads" / "journal.jsonl")
    origins = [b.origin for b in performance.batches]
    assert origins == ["repl", "thread:sweep"]
    assert performance.batches[1].commands[0] == {"op": "set", "voice": 0, "quant": "now",
                                                 "changes": {"curve": "const(0.7)"}}
    played = np.concatenate(played)
    assert np.abs(rendered(tmp_path / "threads", tmp_path, len(played)) - played).max() <= 1e-5


def test_a_curve_that_is_not_code_from_outside_a_cell_is_refused(tmp_path, model):
    with Engine(model) as engine:
        session = Session(engine, sets_root=tmp_path)
        session.run_cell(SOURCES + "v = voice(tone, hiss)")
        handle = session.namespace["v"]
        errors = []

        def from_a_thread():
            try:
                handle.curve = lambda t: t % 1
            except LiveLatentError as exc:
                errors.append(str(exc))

        thread = threading.Thread(target=from_a_thread)
        thread.start()
        thread.join()
        assert errors and "is a Python function" in errors[0] and "from a cell" in errors[0]
        engine.render_array(samples=2048)
        assert repr(engine.voices()[0].curve) == "const(0.5)"     # nothing changed


def test_timers_land_on_their_beats_and_a_replay_does_not_call_them(tmp_path, model):
    calls = []
    with Engine(model, seed=1, tempo=120) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="timed")
        session.namespace["calls"] = calls
        perform(session, [(0, SOURCES + "v = voice(tone, hiss, curve=0.0)\n"
                                        "every(1, lambda: (calls.append(1), v.set(gain=0.25 + len(calls) / 8)), start=1, times=3)\n"
                                        "at(2.5, lambda: v.set(curve=1.0))")])
        played = engine.render_array(samples=3 * SR)
        session.close()
    assert len(calls) == 3
    batches = read_performance(tmp_path / "timed" / "journal.jsonl").batches
    timer = [b for b in batches if b.origin == "timer"]
    on_steps = [-(-int(beat * SR / 2) // 512) * 512 for beat in (1, 2, 2.5, 3)]   # 2 beats a second
    assert [b.sample for b in timer] == on_steps                  # on the step each beat falls in
    calls.clear()
    assert np.abs(rendered(tmp_path / "timed", tmp_path, len(played)) - played).max() <= 1e-5
    assert calls == []                                            # the replay called no timer


def test_a_cell_that_raised_replays_up_to_the_line_that_raised(tmp_path, model):
    with Engine(model, seed=4) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="raised")
        perform(session, [(0, SOURCES), (512, "a = voice(tone, hiss, name='a')\n"
                                               "x = 1 / 0\n"
                                               "b = voice(hiss, tone, name='b')"),
                          (512, "c = voice(tone, tone, name='c')")])
        played = engine.render_array(samples=SR)
        session.close()
    entry = read_performance(tmp_path / "raised" / "journal.jsonl").cells[1]
    assert entry.error_line == 2 and "ZeroDivisionError" in entry.error
    report_path = tmp_path / "raised.wav"
    report = render_set(tmp_path / "raised", report_path, seconds=(1024 + SR) / SR, progress=False)
    assert report.notes == []                 # no "raised then, runs cleanly now"
    assert sf.read(report_path)[0].shape[0] == 1024 + SR
    del played


def test_the_cell_a_session_died_in_is_not_run_again_by_a_render_or_a_resume(tmp_path, model):
    """The last cell has no "applied" record: the process died inside it (here, of the cell
    itself). A render, and a resume, must not run it again (they would die the same way)."""
    from livelatent.session.resume import rebuild
    with Engine(model, seed=4) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="died")
        perform(session, [(0, SOURCES), (512, "a = voice(tone, hiss, name='a')")])
        played = engine.render_array(samples=SR)
        session.journal.append("import os; os._exit(3)", "repl", position=engine.position)
        session.close()                                   # (the process "died" in that cell)
    report = render_set(tmp_path / "died", tmp_path / "died.wav", seconds=2, progress=False)
    assert any("never finished" in note for note in report.notes), report.notes
    np.testing.assert_allclose(sf.read(tmp_path / "died.wav", dtype="float32")[0][512:512 + SR],
                               played, atol=1e-6)
    rebuilt = rebuild(tmp_path / "died", lambda codec, **options: Engine(codec, **options))
    with rebuilt.engine:
        assert "a" in rebuilt.names and any("never finished" in n for n in rebuilt.report.notes)


def test_a_source_that_cannot_be_written_into_the_set_plays_and_is_written_later(
        tmp_path, model, monkeypatch):
    """A full disk when a voice's array source is written into the set: the voice plays, the
    performer is told, and the next change writes it (the set then renders as played)."""
    import errno
    import livelatent.session.set_files as set_files
    real_save = set_files.np.save

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    with Engine(model, seed=4) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="full")
        perform(session, [(0, SOURCES)])
        monkeypatch.setattr(set_files.np, "save", full)
        session.run_cell("a = voice(tone, hiss, name='a')")
        assert [p.name for p in engine.intended_voices()] == ["a"]
        assert any("cannot write" in t and "No space left" in t for t in engine.events.texts())
        played = engine.render_array(samples=SR)
        session.run_cell("a.set(gain=0.9)")                   # tried again: still full
        with pytest.raises(SetError, match="cannot save the set"):
            session.save("kept")
        assert sum("cannot write" in t for t in engine.events.texts()) == 1     # said once
        monkeypatch.setattr(set_files.np, "save", real_save)
        session.run_cell("a.set(gain=0.5)")
        played = np.concatenate([played, engine.render_array(samples=SR // 2)])
        session.close()
    out = rendered(tmp_path / "full", tmp_path, played.shape[0])
    np.testing.assert_allclose(out, played, atol=1e-6)


def test_the_end_of_a_performance_is_where_a_render_stops(tmp_path, model):
    with Engine(model, seed=4) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="ended")
        perform(session, [(0, SOURCES), (512, "voice(tone, hiss)")])
        engine.render_array(samples=SR)
        session.run_cell("hush(fade=0.1)", origin="exit")
        engine.render_array(samples=SR // 2)
        session.end()
        end = engine.position
        session.close()
    assert read_performance(tmp_path / "ended" / "journal.jsonl").end == end
    report = render_set(tmp_path / "ended", tmp_path / "end.wav", progress=False)
    assert report.samples == end and sf.info(str(tmp_path / "end.wav")).frames == end


def test_a_journal_of_livelatent_0_1_still_renders(tmp_path, model):
    folder = tmp_path / "old"
    folder.mkdir()
    lines = [{"v": 1, "kind": "session", "wall": "", "model": {"path": str(model), "hash": None},
              "seed": 0, "tempo": 60.0, "sample_rate": SR, "position": 0},
             {"v": 1, "kind": "cell", "id": 0, "origin": "repl", "code": SOURCES + "voice(tone, hiss)",
              "wall": "", "position": 0},
             {"v": 1, "kind": "applied", "id": 0, "sample": 0, "landed": True}]
    from livelatent.model.codec import load_model
    lines[0]["model"]["hash"] = load_model(model).content_hash
    (folder / "journal.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    with Engine(model, seed=0) as engine:
        session = Session(engine, sets_root=tmp_path)
        session.run_cell(SOURCES + "voice(tone, hiss)")
        expected = engine.render_array(samples=SR)
        session.close()
    assert np.abs(rendered(folder, tmp_path, SR) - expected).max() <= 1e-5
    with pytest.raises(SetError, match="livelatent 0.1.*--no-code cannot render it"):
        render_set(folder, tmp_path / "no.wav", progress=False, run_code=False)


def test_bad_timer_input_is_a_clear_error(tmp_path, model):
    with Engine(model) as engine:
        session = Session(engine, sets_root=tmp_path)
        with pytest.raises(LiveLatentError, match="is not a function"):
            session.run_cell("at(4, 'v.stop()')")
        with pytest.raises(LiveLatentError, match="beats=0 must be"):
            session.run_cell("every(0, lambda: None)")
        with pytest.raises(LiveLatentError, match="times=True must be"):     # (ran once)
            session.run_cell("every(1, lambda: None, times=True)")
        engine.render_array(2.0)
        with pytest.raises(LiveLatentError, match="beat 1 has passed"):
            session.run_cell("at(1, lambda: None)")


def test_timers_can_be_cancelled_and_hush_drops_them(tmp_path, model):
    # after hush(), an every() that starts voices started them again: no way to stop it but
    # leaving the REPL
    calls = []
    with Engine(model, seed=1, tempo=120) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="cancel")
        session.namespace["calls"] = calls
        session.run_cell("t = every(1, lambda: calls.append('t'), start=1)\n"
                         "u = every(1, lambda: calls.append('u'), start=1)")
        assert "every 1 beats" in session.run_cell("repr(t)") and session.run_cell("t.active")
        engine.render_array(samples=SR)                      # beats 1, 2
        session.run_cell("t.cancel()")
        assert session.run_cell("t.active") is False and "done" in session.run_cell("repr(t)")
        engine.render_array(samples=SR)                      # beats 3, 4
        session.run_cell("blip = every(1, lambda: voice(tone, hiss, name='blip'))\n" + SOURCES)
        session.run_cell("hush()")
        engine.render_array(samples=SR)
        session.close()
    assert calls == ["t", "u", "t", "u", "u", "u"]
    assert not [p for p in engine.voices() if p.name == "blip"]
    with Engine(model) as engine:
        session = Session(engine, sets_root=tmp_path)
        with pytest.raises(LiveLatentError, match="async or generator function"):
            session.run_cell("async def f():\n    pass\nat(4, f)")
        with pytest.raises(LiveLatentError, match="async or generator function"):
            session.run_cell("def g():\n    yield\nevery(1, g)")
        # one that takes arguments was taken, then dropped at its first beat with a TypeError
        with pytest.raises(LiveLatentError, match="takes arguments: a timer calls its function with none"):
            session.run_cell("every(1, lambda x: None)")
        session.run_cell("def h(x=1):\n    pass\nat(4, h)\nat(4, print)")      # (defaults: fine)
        session.run_cell("import functools\ndef f(x):\n    pass\n"                # (a decorator
                         "@functools.wraps(f)\ndef w():\n    return f(1)\nat(4, w)")   # gives it)


def test_a_timer_setting_itself_again_on_its_own_beat_is_dropped_not_run_for_ever(tmp_path, model):
    # a function that re-armed itself at its own beat was due again at once: the render never
    # ended (live, the timers' thread spun). Timers set from a timer's own beat on still run.
    from livelatent.timers import MAX_PER_STEP
    calls = []
    with Engine(model, seed=1, tempo=120) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="chains")
        session.namespace["calls"] = calls
        session.run_cell("def again():\n    calls.append('again')\n    at(0.5, again)\n"
                         "def later():\n    calls.append('later')\n    at(1, lambda: calls.append('same beat'))\n"
                         "    every(1, lambda: calls.append('tick'), times=2)\n"
                         "at(0.5, again)\nat(1, later)")
        engine.render_array(samples=3 * SR // 2)             # 3 beats
        session.close()
    errors = engine.events.texts("error")
    assert calls.count("again") == MAX_PER_STEP, len(calls)
    assert any(f"timer again at beat 0.5: more than {MAX_PER_STEP} timers ran on one step" in e
               for e in errors), errors
    assert [c for c in calls if c != "again"] == ["later", "same beat", "tick", "tick"], calls


def test_a_timer_that_calls_exit_is_dropped_and_the_other_timers_go_on(tmp_path, model):
    """``at(2, exit)``: SystemExit is not an Exception, so it went past the timer's handler,
    ending the scheduler thread (live: every other timer stopped without a word) or the
    render (offline). It is reported and dropped like any failing timer now."""
    calls = []
    with Engine(model, seed=1, tempo=120) as engine:
        session = Session(engine, sets_root=tmp_path, set_name="exits")
        session.namespace["calls"] = calls
        session.run_cell("import sys\nevery(1, lambda: calls.append(1), start=1)\n"
                         "at(2, lambda: sys.exit(3))")
        engine.render_array(samples=3 * SR)                  # 6 beats
        session.close()
    assert len(calls) == 6
    assert any("timer <lambda> at beat 2: SystemExit: 3; it is dropped" in t
               for t in engine.events.texts("error"))


def test_a_timer_that_never_returns_is_interrupted_in_a_render_too(monkeypatch, model):
    """Offline the render's caller runs a timer's function: one that never returned hung the
    render for good (``livelatent render script.py`` run unattended never ended), where playing
    the same script dropped it after RUN_LIMIT_S."""
    import livelatent.timers
    from livelatent.timers import Timers
    monkeypatch.setattr(livelatent.timers, "RUN_LIMIT_S", 0.3)
    ticks = []

    def forever():
        while True:
            pass
    with Engine(model, seed=1, tempo=120) as engine:     # a beat every 0.5 s
        timers = Timers.of(engine)
        timers.every(1, lambda: ticks.append(1))
        timers.at(2, forever)
        engine.render_array(samples=3 * SR)                # 6 beats
        errors = engine.events.texts("error")
    assert any("timer test_a_timer_that_never_returns_is_interrupted_in_a_render_too" in e
               and "still running after 0.3 s: interrupted; it is dropped" in e for e in errors), errors
    assert len(ticks) >= 6                                # every beat: the others went on


def test_a_timer_that_never_returns_is_interrupted_live_and_the_other_timers_go_on(
        jack_server, monkeypatch):
    # live, a timer's function runs on the timers' thread, which no Ctrl-C reaches: a loop that
    # never ended there held up every later timer for good
    import time
    import livelatent.timers
    from livelatent.timers import Timers
    monkeypatch.setattr(livelatent.timers, "RUN_LIMIT_S", 0.5)
    ticks = []

    def forever():
        while True:
            pass
    with Engine(seed=1, tempo=120) as engine:       # a beat every 0.5 s
        timers = Timers.of(engine)
        timers.every(1, lambda: ticks.append(engine.position))
        timers.at(2, forever)
        engine.start("system")
        time.sleep(4.0)
        engine.stop_playback()
        errors = engine.events.texts("error")
    assert any("timer test_a_timer_that_never_returns" in e and "still running after 0.5 s: "
               "interrupted; it is dropped" in e for e in errors), errors
    assert len(ticks) >= 5                          # ticks after it went on (7 beats in 4 s)
