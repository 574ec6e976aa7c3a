"""Multichannel outputs: voices routed to channels (out=), the cue pair, stems, sets, and a
4-channel JACK capture equal to the 4-channel render."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import jackutil
from livelatent import Engine, ParameterError, sine, source
from livelatent.session.namespace import namespace
from livelatent.sinks.file import render_to_file

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "livelatent" / "packs" / "default" / "sources"


@pytest.fixture(scope="module")
def two():
    return source(PACK / "flute.flac"), source(PACK / "cello.flac")


def loud(audio):
    return np.sqrt(np.mean(audio.astype(np.float64) ** 2, axis=0)) > 1e-3


def test_voices_go_to_their_channels_and_the_cue_pair(two):
    a, b = two
    with Engine(seed=1, channels=6) as engine:
        names = namespace(engine)
        names["voice"](a, b, curve=sine(2), name="main")
        engine_audio = engine.render_array(1.0)
        assert engine_audio.shape == (44100, 6)
        assert list(loud(engine_audio)) == [True, True, False, False, False, False]
    with Engine(seed=1, channels=6) as engine:
        names = namespace(engine)
        v = names["voice"](a, b, curve=sine(2), out=(3, 4), pan=-1)
        w = names["voice"](b, a, curve=0.3, out=5)
        audio = engine.render_array(1.0)
        assert list(loud(audio)) == [False, False, True, False, True, False]     # hard left on 3
        names["cue"](w)                                        # w also to the cue pair (5, 6)
        audio = engine.render_array(1.0)[4096:]
        assert list(loud(audio)) == [False, False, True, False, True, True]
        names["cue"](v, only=True)                             # v only in the cue pair
        v.pan = 0
        names["cue"](w, False)
        audio = engine.render_array(1.0)[4096:]
        assert list(loud(audio)) == [False, False, False, False, True, True]
        with pytest.raises(ParameterError, match="out=\\(1, 9\\) must be one channel or a pair"):
            names["voice"](a, b, out=(1, 9))
        with pytest.raises(ParameterError, match="out=\\(2, 2\\)"):
            v.out = (2, 2)
    with Engine(seed=1) as engine, pytest.raises(ParameterError, match="at least 4 outputs"):
        namespace(engine)["cue"](namespace(engine)["voice"](a, b))
    with pytest.raises(ParameterError, match="channels=1"):
        Engine(channels=1)


def test_stems_have_the_engines_channels_and_sum_to_the_mix(two, tmp_path):
    a, b = two
    with Engine(seed=1, channels=4) as engine:
        names = namespace(engine)
        names["voice"](a, b, curve=sine(2), gain=0.3, name="one")
        names["voice"](b, a, curve=sine(3), gain=0.3, out=(3, 4), name="two")
        written = render_to_file(engine, tmp_path / "mix.wav", seconds=2.0, stems=True)
    mix, _ = sf.read(written[0], dtype="float32")
    stems = [sf.read(p, dtype="float32")[0] for p in written[1:]]
    assert mix.shape[1] == 4 and all(s.shape == mix.shape for s in stems)
    np.testing.assert_allclose(sum(stems), mix, atol=1e-5)
    assert list(loud(stems[1])) == [False, False, True, True]


def test_a_four_channel_session_plays_over_jack_as_its_set_renders(tmp_path):
    """A JACK dummy server with 4 playback ports: the 4-channel capture of a live session
    equals `livelatent render` of its set, channel for channel."""
    if not jackutil.jackd_available():
        pytest.skip("jackd is not installed")
    from replutil import heard_is_rendered, last_underruns, recorded_repl
    sets = tmp_path / "sets"
    with jackutil.running_jack_server(log_dir=tmp_path, playback=4) as server:
        with recorded_repl(server, ["--blocksize", "1024", "--channels", "4", "--set", "four"], sets,
                           channels=4, record_seconds=40) as (repl, recorder):
            repl.run("v = voice(flute, cello, curve=sine(2), name='front')\n"
                     "w = voice(choir, strings, curve=tri(3), out=(3, 4), name='back')")
            repl.pump(3.0)
            repl.run("w.out = 4")
            repl.pump(2.0)
            assert repl.exit() == 0, repl.text[-2000:]
            captured = recorder.stop()
    assert "error:" not in repl.text, repl.text[-3000:]
    reference, rate = heard_is_rendered(captured, sets / "four", tmp_path / "four.wav", seconds=4, late=recorder.late_spans)
    assert reference.shape[1] == 4
    assert all(loud(reference[2 * rate:3 * rate]))                  # something on every channel
    assert last_underruns(repl.text) == 0


def test_more_outputs_than_flac_holds_is_one_line_and_no_file(two, tmp_path):
    # libsndfile's "Format not recognised" traceback
    with Engine(channels=9) as engine:
        namespace(engine)["voice"](*two, curve=0.5)
        with pytest.raises(ParameterError, match="cannot render 9 outputs to nine.flac: FLAC holds "
                                                 "at most 8 channels; use a .wav file"):
            render_to_file(engine, tmp_path / "nine.flac", 1.0, progress=False)
        assert not list(tmp_path.iterdir())
        render_to_file(engine, tmp_path / "nine.wav", 0.5, progress=False)
    assert sf.info(tmp_path / "nine.wav").channels == 9
