"""Voice names: unique among the voices that sound; handles follow their voice by name."""

import numpy as np
import pytest

from livelatent import Engine
from livelatent.session.session import Session

SOURCES = """\
import numpy as np
t = np.arange(44100) / 44100
tone = source((0.5 * np.sin(2 * np.pi * 220 * t)).astype("float32"), name="tone")
hiss = source(np.random.default_rng(1).normal(0, 0.2, 44100).astype("float32"), name="hiss")
"""


@pytest.fixture
def session(tmp_path):
    with Engine(seed=3) as engine:
        session = Session(engine, sets_root=tmp_path)
        session.run_cell(SOURCES)
        yield session
        session.close()


def sounding(session) -> list[str]:
    return [p.name for p in session.engine.intended_voices()]


def test_a_new_voice_with_a_sounding_voices_name_replaces_it(session):
    session.run_cell("a = voice(tone, hiss, name='drift')")
    session.engine.render_array(0.2)
    session.run_cell("b = voice(hiss, tone, name='drift')")
    assert sounding(session) == ["drift"]
    assert session.namespace["a"].number == session.namespace["b"].number   # a follows
    session.engine.render_array(0.2)
    assert [p.name for p in session.engine.heard().score.voices.values()] == ["drift"]


def test_automatic_names_never_repeat_and_skip_a_name_a_named_voice_holds(session):
    session.run_cell("voice(tone, hiss, name='v1')")                 # number 0, named v1
    session.run_cell("x = voice(tone, hiss)")                        # number 1 would be v1: skipped
    assert sorted(sounding(session)) == ["v1", "v2"]
    session.run_cell("hush()")
    session.engine.render_array(0.3)
    session.run_cell("y = voice(tone, hiss)")
    assert sounding(session) == ["v3"]


def test_stopping_a_handle_stops_the_voice_it_follows(session):
    session.run_cell("a = voice(tone, hiss, name='drift')")
    session.run_cell("voice(hiss, tone, name='drift')")              # replaces it
    session.engine.render_array(0.2)
    session.run_cell("stop(a)")
    assert sounding(session) == []


def test_a_handle_whose_voice_is_gone_says_so(session):
    session.run_cell("a = voice(tone, hiss)")
    session.run_cell("a.stop(fade=0)")
    session.engine.render_array(0.3)
    assert session.namespace["a"].state == "stopped"
    with pytest.raises(Exception, match="has stopped and no voice is called 'v0'"):
        session.run_cell("a.curve = 0.3")
    session.run_cell("a.stop()")                                     # stopping again: nothing


def test_the_same_name_twice_in_one_cell_plays_only_the_second(tmp_path):
    def render(code):
        with Engine(seed=3) as engine:
            session = Session(engine, sets_root=tmp_path)
            session.run_cell(SOURCES)
            session.run_cell(code)
            audio = engine.render_array(0.5)
            session.close()
        return audio
    both = render("voice(tone, hiss, name='x', noise_key=7); voice(hiss, tone, name='x', noise_key=8)")
    second = render("voice(hiss, tone, name='x', noise_key=8)")
    assert np.max(np.abs(both - second)) <= 1e-6                     # the first is never heard


def test_a_bad_name_is_a_clear_error(session):
    for bad in ("''", "'a' * 100", "'tab\\there'", "3"):
        with pytest.raises(Exception, match="name=.* must be a short printable string"):
            session.run_cell(f"voice(tone, hiss, name={bad})")
    assert sounding(session) == []


def test_a_misspelled_or_read_only_setting_on_a_handle_is_refused_and_changes_nothing(session):
    session.run_cell("v = voice(tone, hiss, gain=0.5)")
    with pytest.raises(Exception, match="has no setting 'gian': did you mean v.gain"):
        session.run_cell("v.gian = 0.0")
    for attribute in ("strategy", "name", "state"):
        with pytest.raises(Exception, match=f"{attribute} cannot be set"):
            session.run_cell(f"v.{attribute} = 'meso'")
    handle = session.namespace["v"]
    assert handle.gain == 0.5 and handle.name == "v0" and not hasattr(handle, "gian")
    session.run_cell("v.gain = 0.25")                                # a real setting still works
    assert handle.gain == 0.25


def test_a_voice_replaced_before_any_of_it_was_rendered_is_not_heard_fading_out(tmp_path):
    # offline, each call outside a batch is a batch of its own: the replaced voices each
    # faded out for 50 ms from the sample the last one started on, all sounding together
    from livelatent import source, voice
    t = np.arange(44100) / 44100
    with Engine(seed=3) as engine:
        tone = source((0.5 * np.sin(2 * np.pi * 220 * t)).astype("float32"), name="tone")
        hiss = source(np.random.default_rng(1).normal(0, 0.2, 44100).astype("float32"), name="hiss")
        voice(tone, hiss, name="x")
        alone = engine.render_array(0.5)
    with Engine(seed=3) as engine:
        for _ in range(20):
            voice(tone, hiss, name="x")
        assert len(engine.intended_voices()) == 1
        assert sum(p.fade == 0 for p in engine.intended().voices.values() if p.stop_at is not None) == 19
        replaced = engine.render_array(0.5)
        assert np.abs(replaced).max() <= np.abs(alone).max() * 1.5
        engine.render_array(0.1)                      # now heard: its replacement fades it out
        voice(tone, hiss, name="x")
        stopped = [p for p in engine.intended().voices.values() if p.stop_at is not None]
        assert stopped[-1].fade > 0
    from livelatent import at
    with Engine(seed=3) as engine:                    # a timer's, in the span it is heard in
        voice(tone, hiss, name="x")
        at(2, lambda: voice(hiss, tone, name="x"))     # (beat 2: 2 s in, at 60 bpm)
        engine.render_array(2.02)                     # (the fade still going)
        stopped = [p for p in engine.intended().voices.values() if p.stop_at is not None]
        assert len(stopped) == 1 and stopped[0].fade > 0
