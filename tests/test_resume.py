"""Carrying on after a crash: a session rebuilt from its journal plays on the same timeline."""

import numpy as np
import pytest
import soundfile as sf

from livelatent import Engine
from livelatent.errors import SetError
from livelatent.session.performance import read_performance, read_sessions
from livelatent.session.resume import rebuild, resume_point
from livelatent.session.session import Session
from livelatent.session.sets import render_set
from test_sets import PERFORMANCE, SR, model, perform  # noqa: F401  (model is a fixture)

BEFORE = PERFORMANCE[:5]
AFTER = [
    (3000, "drift.curve = saw(2)"),                            # a name the first session made
    (2000, "w = voice(tone, hiss, curve=0.3, gain=0.3, name='late')"),
    (4000, "stop(w, fade=0.1)"),
]


def make(codec, **options):
    return Engine(codec, **options)


def crash(session):
    """What SIGKILL leaves: a journal with no end, a file closed by the OS. The REPL notes
    where the listener is twice a second; the last note was at the crash."""
    session.note_heard()
    session.engine.remove_recorder(session.recorder)
    session.journal.close()


def test_a_resumed_session_carries_on_the_timeline_and_renders_as_both_were_heard(tmp_path, model):
    sets = tmp_path / "sets"
    with Engine(model, seed=5) as first:
        session = Session(first, sets_root=sets, set_name="gig")
        played_first = np.concatenate(perform(session, BEFORE) + [first.render_array(samples=SR)])
        crash(session)                       # one second after the last change, the REPL dies
    folder = sets / "gig"
    joined = resume_point(read_performance(folder / "journal.jsonl"))
    rebuilt = rebuild(folder, make)
    second = rebuilt.engine
    with second:
        assert second.position == joined and not second.sealed
        assert [p.name for p in second.intended_voices()] == ["drift", "v1"]
        session = Session(second, sets_root=sets, set_name="gig", resumed=True)
        session.namespace = rebuilt.live_names(session.namespace)
        assert session.namespace["voice"].__self__ is session.performer      # live names again
        played_second = np.concatenate(perform(session, AFTER) + [second.render_array(samples=SR)])
        session.end()
        session.close()
    sessions = read_sessions(folder / "journal.jsonl")
    assert [s.resumed for s in sessions] == [False, True] and sessions[1].position == joined
    report = render_set(folder, tmp_path / "gig.wav", progress=False)
    rendered, rate = sf.read(tmp_path / "gig.wav", dtype="float32")
    assert rate == SR and report.samples == joined + len(played_second)
    # up to the crash, what the first session played; from there on, the second
    assert joined == len(played_first)
    assert np.max(np.abs(rendered[:joined] - played_first)) <= 1e-4
    assert np.max(np.abs(rendered[joined:] - played_second)) <= 1e-4
    assert np.max(np.abs(played_second)) > 0.05


def test_without_a_note_of_the_listener_a_resume_joins_at_the_last_change(tmp_path, model):
    with Engine(model, seed=5) as first:
        session = Session(first, sets_root=tmp_path, set_name="gig")
        perform(session, BEFORE)
        last = first.landed_at
        first.render_array(samples=SR)
        session.engine.remove_recorder(session.recorder)
        session.journal.close()
    assert resume_point(read_performance(tmp_path / "gig" / "journal.jsonl")) == last


def test_a_resumed_session_can_itself_be_resumed(tmp_path, model):
    sets = tmp_path / "sets"
    with Engine(model, seed=2) as first:
        session = Session(first, sets_root=sets, set_name="gig")
        perform(session, BEFORE)
        crash(session)
    folder = sets / "gig"
    rebuilt = rebuild(folder, make)
    with rebuilt.engine as second:
        session = Session(second, sets_root=sets, set_name="gig", resumed=True)
        session.namespace = rebuilt.live_names(session.namespace)
        perform(session, AFTER[:2])
        crash(session)
    again = rebuild(folder, make)
    with again.engine as third:
        assert [p.name for p in third.intended_voices()] == ["drift", "v1", "late"]
        assert third.position == resume_point(read_performance(folder / "journal.jsonl"))
        session = Session(third, sets_root=sets, set_name="gig", resumed=True)
        session.namespace = again.live_names(session.namespace)
        played_third = np.concatenate(perform(session, [(1000, "stop('v1')")]) + [third.render_array(samples=SR)])
        session.end()
        session.close()
    sessions = read_sessions(folder / "journal.jsonl")
    assert [s.resumed for s in sessions] == [False, True, True]
    render_set(folder, tmp_path / "three.wav", progress=False)
    rendered, _ = sf.read(tmp_path / "three.wav", dtype="float32")
    start = sessions[2].position
    assert np.max(np.abs(rendered[start:start + len(played_third)] - played_third)) <= 1e-4
    first_alone = read_performance(folder / "journal.jsonl", session=0)     # one session, unchained
    assert first_alone.resumed_at == () and len(first_alone.batches) < len(
        read_performance(folder / "journal.jsonl").batches)


def test_voices_a_timer_started_keep_their_numbers_after_a_resume(tmp_path, model):
    sets = tmp_path / "sets"
    with Engine(model, seed=5) as first:
        session = Session(first, sets_root=sets, set_name="gig")
        perform(session, BEFORE[:1] + [(0, "every(1, lambda: voice(tone, hiss, gain=0.1), times=2)")])
        first.render_array(samples=3 * SR)                  # the timer starts two voices
        numbers = sorted(p.index for p in first.intended_voices())
        crash(session)
    assert len(numbers) == 2
    rebuilt = rebuild(sets / "gig", make)
    with rebuilt.engine as second:
        assert sorted(p.index for p in second.intended_voices()) == numbers
        session = Session(second, sets_root=sets, set_name="gig", resumed=True)
        session.namespace = rebuilt.live_names(session.namespace)
        session.run_cell("w = voice(hiss, tone)")
        second.render_array(samples=2048)
        assert sorted(p.index for p in second.intended_voices()) == numbers + [max(numbers) + 1]
        session.close()


def test_a_set_that_is_not_there_cannot_be_resumed(tmp_path):
    with pytest.raises(SetError):
        rebuild(tmp_path / "nothing", make)


def test_the_cell_a_session_died_in_stays_unrun_after_a_resume_and_more_cells(tmp_path, model):
    """Die inside a cell (it never finished: no "applied" record, nothing of it landed), resume,
    play on: neither the resume nor a later render runs that cell again."""
    sets = tmp_path / "sets"
    with Engine(model, seed=5) as first:
        session = Session(first, sets_root=sets, set_name="gig")
        played_first = np.concatenate(perform(session, BEFORE) + [first.render_array(samples=SR)])
        session.journal.append("import os; os._exit(3)", "repl", position=first.position)
        crash(session)
    folder = sets / "gig"
    rebuilt = rebuild(folder, make)
    assert any("never finished" in note for note in rebuilt.report.notes)
    with rebuilt.engine as second:
        session = Session(second, sets_root=sets, set_name="gig", resumed=True)
        session.namespace = rebuilt.live_names(session.namespace)
        played_second = np.concatenate(perform(session, AFTER) + [second.render_array(samples=SR)])
        session.end()
        session.close()
    report = render_set(folder, tmp_path / "gig.wav", progress=False)       # (would exit here)
    rendered = sf.read(tmp_path / "gig.wav", dtype="float32")[0]
    assert any("never finished" in note for note in report.notes)
    joined = len(played_first)
    assert np.max(np.abs(rendered[:joined] - played_first)) <= 1e-4
    assert np.max(np.abs(rendered[joined:] - played_second)) <= 1e-4


def test_a_resume_names_what_the_set_up_calls_before_it_do_not_bring_back(tmp_path, model, capsys,
                                                                          monkeypatch):
    # timers were named; on_note functions, osc_send and the like went without a word
    from livelatent.repl import shell
    monkeypatch.setenv("LIVELATENT_OSC_PORT", "0")
    sets = tmp_path / "sets"
    with Engine(model, seed=5) as first:
        session = Session(first, sets_root=sets, set_name="gig")
        perform(session, BEFORE[:1] + [(0, "osc_send(port=9)\non_note(lambda n, v: None, note=36)")])
        first.render_array(samples=SR)
        crash(session)
    capsys.readouterr()
    resumed = shell._resumed_session(sets / "gig", None, None)
    err = capsys.readouterr().err
    resumed.close()
    resumed.engine.__exit__(None, None, None)
    assert "what on_note(), osc_send() set up before is not set up again: call them anew" in err


def test_resume_refuses_outputs_of_its_own_and_takes_a_lookahead(tmp_path, model):
    # --channels was ignored (a set keeps its own), and --lookahead too, nan as well
    import os
    import subprocess
    import sys
    with Engine(model) as engine:
        with Session(engine, set_name="gig", sets_root=tmp_path / "sets") as session:
            session.run_cell("x = 1")
    env = {**os.environ, "LIVELATENT_SETS": str(tmp_path / "sets")}

    def live(*options):
        return subprocess.run([sys.executable, "-m", "livelatent.cli", "live", "--offline",
                               "--resume", "gig", *options], input="exit(force=True)\n",
                              capture_output=True, text=True, timeout=120, env=env)
    done = live("--channels", "4")
    assert done.returncode == 2 and "gig plays 2 outputs, and a resumed set keeps them" in done.stderr, \
        done.stderr[-500:]
    assert live("--channels", "2").returncode == 0          # (its own: taken)
    done = live("--lookahead", "nan")
    assert done.returncode == 2 and "--lookahead nan" in done.stderr, done.stderr[-500:]
