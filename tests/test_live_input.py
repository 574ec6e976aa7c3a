"""Live audio input as a source: encoded as it arrives, recorded into the set as 24-bit FLAC
(the very values encoded), played a declared delay later; a render of the set reads the
recording and plays what was heard."""

import re

import numpy as np
import pytest
import soundfile as sf

from livelatent import Engine, ParameterError, load_model
from livelatent.live_source import LiveSource, quantise24

from replutil import ROOT

PACK = ROOT / "livelatent" / "packs" / "default" / "sources"


def test_24_bit_values_are_what_the_file_gives_back(tmp_path):
    rng = np.random.default_rng(1)
    audio = np.concatenate([rng.uniform(-1.2, 1.2, 5000), [1.0, -1.0, 0.0]]).astype(np.float32)
    values, stored = quantise24(audio)
    path = tmp_path / "in.flac"
    sf.write(path, stored, 44100, subtype="PCM_24")
    back, _ = sf.read(path, dtype="float32")
    assert np.array_equal(back, values)
    assert np.abs(values - np.clip(audio, -1, 1)).max() <= 2.0 ** -23


def test_a_recorded_input_reads_its_delay_ago_and_silence_before(tmp_path):
    codec = load_model()
    rate, hop, delay, origin = codec.sample_rate, 512, 10000, 2000
    audio = (0.3 * np.sin(np.arange(3 * rate) * 0.05)).astype(np.float32)
    values, stored = quantise24(audio)
    (tmp_path / "inputs").mkdir()
    sf.write(tmp_path / "inputs" / "input1.flac", stored, rate, subtype="PCM_24")
    record = {"kind": "live", "file": "inputs/input1.flac", "channel": 1, "delay": delay, "origin": origin}
    mic = LiveSource.recorded(tmp_path, record, name="input1", rate=rate)
    frames = mic.frames(codec, hop)
    assert len(frames) == 1 + (len(values) - codec.window) // hop + 1
    silence = codec.encode(np.zeros((1, codec.window), np.float32))[0][0]
    np.testing.assert_allclose(frames.mu[0], silence, atol=1e-6)
    samples = np.array([0, origin + delay - 1, origin + delay, origin + delay + 5 * hop + 3, 10 ** 9])
    rows = mic.rows(hop, samples, len(frames))
    assert rows.tolist() == [0, 0, 1, 6, len(frames) - 1]
    first = codec.encode(values[None, :codec.window])[0][0]
    np.testing.assert_allclose(frames.mu[1], first, atol=1e-5)
    with pytest.raises(ParameterError, match="no end yet"):
        mic.reverse()


def test_live_input_needs_a_playing_engine_with_inputs(tmp_path):
    from livelatent.controllers.input_recorder import start_live_input
    from livelatent.controllers.throttle import Throttle
    engine = Engine()
    with pytest.raises(ParameterError, match="playing live"):
        start_live_input(engine, tmp_path, channel=1, delay=None, throttle=Throttle(engine.events))


def test_a_delay_longer_than_the_kept_input_is_refused(jack_server, tmp_path):
    """The frames of a live input are kept in a ring of RING_S seconds: a longer delay read a
    row written over since, another moment's input, while a render of the set (from the
    recording) read the right one. It is refused instead."""
    from livelatent.controllers.input_recorder import start_live_input
    from livelatent.controllers.throttle import Throttle
    from livelatent.live_source import RING_S
    with Engine(seed=1) as engine:
        engine.start("system", inputs=2)
        throttle = Throttle(engine.events)
        for delay in (RING_S + 1, 3600.0, 1e300):
            with pytest.raises(ParameterError, match=r"at most 59 s \(the last 60 s of input"):
                start_live_input(engine, tmp_path, channel=1, delay=delay, throttle=throttle)
        assert not (tmp_path / "inputs").exists()                   # nothing recorded
        assert start_live_input(engine, tmp_path, channel=1, delay=RING_S - 2,
                                throttle=throttle).delay == (RING_S - 2) * engine.sample_rate
        engine.stop_playback()


def test_live_input_over_jack_renders_from_its_recording_as_heard(jack_server, tmp_path):
    """A JACK client plays a file into livelatent's input while the output is captured: the
    input is recorded into the set, and `livelatent render` of the set equals the capture."""
    import jackutil
    from replutil import heard_is_rendered, last_underruns, recorded_repl, rendered_set

    rate, sets = 44100, tmp_path / "sets"
    t = np.arange(3 * rate) / rate
    tone = 0.4 * np.sin(2 * np.pi * (220 + 60 * t) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t))
    played = np.stack([tone, 0.5 * tone], axis=1).astype(np.float32)
    with recorded_repl(jack_server, ["--blocksize", "1024", "--inputs", "2", "--set", "heard"],
                       sets) as (repl, recorder), \
            jackutil.JackPlayer(jack_server, played, jackutil.SUBPROCESS_INPUTS):
        mark = len(repl.text)
        repl.run("mic = live_input(channel=1)")
        repl.wait_for("ms after it comes in", since=mark)       # the delay, said once
        repl.run("v = voice(mic, cello, curve=sine(2), name='v')")
        repl.pump(4.0)
        repl.run("v.curve = tri(3)")
        repl.pump(4.0)
        assert repl.exit() == 0, repl.text[-2000:]
        captured = recorder.stop()
    assert "error:" not in repl.text and "needed input" not in repl.text, repl.text[-3000:]
    assert re.search(r"input1 \+\d+ ms", repl.text)          # the delay in the status line
    recording = sets / "heard" / "inputs" / "input1.flac"
    assert sf.info(str(recording)).subtype == "PCM_24"
    heard, _ = sf.read(recording, dtype="float32")
    assert len(heard) >= 7 * rate
    values, _ = quantise24(played[:, 0])
    at = jackutil.align(heard, values)                 # the input is what the client played
    looped = values[np.arange(len(heard) - at) % len(values)]
    assert np.abs(heard[max(at, 0):] - looped[max(-at, 0):]).max() <= 1e-6
    reference, rate = heard_is_rendered(captured, sets / "heard", tmp_path / "heard.wav", seconds=7, late=recorder.late_spans)
    assert last_underruns(repl.text) == 0
    # and what came in is what shaped the sound: with the recording silenced, it plays otherwise
    sf.write(recording, np.zeros(len(heard), np.float32), rate, subtype="PCM_24")
    silenced, _ = rendered_set(sets / "heard", tmp_path / "silenced.wav")
    assert np.abs(silenced - reference).max() > 0.01
