"""The REPL's helpers: the status line, render() in the background beside live playback, and
the priority the REPL asks for."""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import jackutil
from livelatent import Engine, LiveLatentError, ParameterError, saw, sine, tempo, tri, voice
from livelatent.repl.background import render_in_background
from livelatent.session.namespace import pack_sources
from livelatent.repl.setup import make_engine, start_playing
from livelatent.repl.toolbar import peak_meter, status_line


@pytest.fixture
def engine():
    with Engine(seed=2) as engine:
        yield engine


def test_the_status_line_shows_transport_voices_meters_and_pending_changes(engine):
    sources = pack_sources(engine)
    tempo(120)
    drift = voice(sources["flute"], sources["cello"], curve=sine(8), name="drift")
    voice(sources["cello"], sources["flute"], strategy="extension", curve=0.8, name="stretch")
    engine.render_array(1.25)                      # 2.5 beats at 120 bpm
    drift.set(curve=tri(2), quant="bar")
    text = status_line(engine)
    first, second = text.splitlines()
    assert first.startswith("offline | bar 1 beat 3.50 | 120 bpm | decode ")
    assert "underruns 0" in first and "peak [" in first and " dB" in first
    assert second.startswith("drift meso ") and "stretch ext 0.80" in second
    assert "pending: drift curve @ bar 2" in second
    engine.render_array(1.0)                       # past the bar: the change has landed
    assert "pending" not in status_line(engine)
    assert "render layer.wav 40%" in status_line(engine, extra="render layer.wav 40%")


def test_the_peak_meter_reads_in_decibels():
    assert peak_meter(0.0) == "[----------]  -inf dB"
    assert peak_meter(1.0).startswith("[##########]!")
    assert peak_meter(0.5) == "[#########-]   -6 dB"
    assert peak_meter(10 ** (-30 / 20)) == "[#####-----]  -30 dB"   # -60..0 dB in ten cells
    assert peak_meter(float("nan")) == "[----------]  -inf dB"
    # the tail of a fade: numbers like -2311 dB mean nothing to a listener
    for quiet in (10 ** (-746 / 20), 1e-116, 1e-300, 10 ** (-91 / 20)):
        assert peak_meter(quiet) == "[----------]  -inf dB"
    assert peak_meter(10 ** (-89 / 20)) == "[----------]  -89 dB"


def test_the_status_line_with_no_voices_says_what_to_type(engine):
    assert "try voice(flute, cello, curve=sine(8))" in status_line(engine)


def test_render_takes_the_voices_as_the_performer_last_set_them(engine, tmp_path):
    sources = pack_sources(engine)
    a = voice(sources["flute"], sources["cello"], curve=sine(4), name="a")       # offline: pending
    b = voice(sources["cello"], sources["flute"], name="b")
    engine.render_array(0.5)
    b.stop()
    a.set(curve=saw(1), quant="bar")
    assert [(p.name, repr(p.curve)) for p in engine.intended_voices()] == [("a", repr(saw(1)))]

    job = render_in_background(engine, tmp_path / "layer.wav", 3)
    assert job.wait(timeout=60) == tmp_path / "layer.wav"
    with Engine(seed=2) as reference:
        voice(sources["flute"], sources["cello"], curve=saw(1), name="a")
        expected = reference.render_array(3)
    written, rate = sf.read(tmp_path / "layer.wav", dtype="float32")
    assert written.shape == (3 * rate, 2)
    assert np.abs(written - expected).max() <= 1e-5     # decoded in other batch sizes: rounding
    assert "done in" in repr(job)


def test_render_in_the_cell_that_starts_the_voice_renders_it(engine, tmp_path):
    # `v = voice(...); render("x.wav", 1)` in one REPL cell: the voice is still held by the batch
    sources = pack_sources(engine)
    with engine.batch():
        voice(sources["flute"], sources["cello"], name="v")
        job = render_in_background(engine, tmp_path / "same_cell.wav", 1)
    assert job.voices == 1 and job.wait(timeout=60) == tmp_path / "same_cell.wav"
    assert np.abs(sf.read(tmp_path / "same_cell.wav")[0]).max() > 0.01


def test_render_says_what_is_wrong(engine, tmp_path):
    with pytest.raises(LiveLatentError, match="no voices are playing"):
        render_in_background(engine, tmp_path / "x.wav", 10)
    voice(pack_sources(engine)["flute"], pack_sources(engine)["cello"])
    with pytest.raises(ParameterError, match="use a .wav or .flac"):
        render_in_background(engine, tmp_path / "x.mp4", 10)
    with pytest.raises(ParameterError, match="seconds"):
        render_in_background(engine, tmp_path / "x.wav", -1)
    for seconds in ("1", True):                   # (float() took them)
        with pytest.raises(ParameterError, match="seconds"):
            render_in_background(engine, tmp_path / "x.wav", seconds)
    for path in (5, None, b"x.wav"):              # (a TypeError from Path())
        with pytest.raises(ParameterError, match="cannot render to .*: give a file name"):
            render_in_background(engine, path, 1)
    job = render_in_background(engine, tmp_path / "long.wav", 3600)
    job.cancel()
    with pytest.raises(LiveLatentError, match="cancelled"):
        job.wait(timeout=60)
    assert not (tmp_path / "long.wav").exists() and list(tmp_path.iterdir()) == []


def test_a_long_background_render_runs_beside_live_playback_with_zero_underruns(jack_server, tmp_path):
    engine = make_engine(blocksize=1024)           # the REPL's engine
    with engine:
        sources = pack_sources(engine)
        start_playing(engine, "system")
        voice(sources["flute"], sources["cello"], curve=sine(4), name="drift")
        voice(sources["cello"], sources["flute"], strategy="extension", curve=tri(3), gain=0.5,
              name="stretch")
        with jackutil.JackRecorder(jack_server, "PortAudio", seconds=120) as recorder:
            recorder.wait_frames(22050)
            job = render_in_background(engine, tmp_path / "layer.wav", 60)
            job.wait(timeout=300)
            recorder.wait_frames(22050)
            captured = recorder.stop()
        engine.stop_playback()
        assert engine.underruns == 0             # the audio callback always found samples ready
    sounding = captured[np.flatnonzero(np.abs(captured).max(axis=1) > 0)[0]:]
    blocks = np.abs(sounding[:len(sounding) // 1024 * 1024]).reshape(-1, 1024, 2).max(axis=(1, 2))
    assert blocks.min() > 1e-3                     # the live sound never stopped

    with Engine(engine.codec, seed=engine.seed) as reference:
        voice(sources["flute"], sources["cello"], curve=sine(4), name="drift")
        voice(sources["cello"], sources["flute"], strategy="extension", curve=tri(3), gain=0.5,
              name="stretch")
        expected = reference.render_array(60)
    written, rate = sf.read(tmp_path / "layer.wav", dtype="float32")
    assert written.shape == (60 * rate, 2)
    assert np.abs(written - expected).max() <= 1e-5


def test_the_repl_raises_its_sessions_scheduling_group_until_it_exits():
    """Niceness orders threads only within their session's group; the REPL raises the group
    too, and gives the session (a terminal's, which goes on) its niceness back as it exits."""
    code = ("import atexit, sys\n"
            "from pathlib import Path\n"
            "from livelatent.repl.setup import raise_process_priority\n"
            "group = Path('/proc/self/autogroup')\n"
            "try:\n"
            "    before = group.read_text().split('nice')[1].strip()\n"
            "    group.write_text('-10'); group.write_text(before)   # allowed here at all?\n"
            "except (OSError, IndexError) as exc:\n"
            "    print('cannot', exc); sys.exit()\n"
            "raise_process_priority()\n"
            "print(before, group.read_text().split('nice')[1].strip())\n"
            "atexit._run_exitfuncs()\n"
            "print(group.read_text().split('nice')[1].strip())\n")
    done = subprocess.run([sys.executable, "-c", code], start_new_session=True, capture_output=True,
                          text=True, timeout=120)
    if done.stdout.startswith("cannot"):
        pytest.skip(f"no autogroup whose niceness this user may lower: {done.stdout.strip()}")
    assert done.stdout.split() == ["0", "-10", "0"], done.stdout + done.stderr


@pytest.mark.parametrize("variable, value, said", [
    ("LIVELATENT_BLOCKSIZE", "abc", "LIVELATENT_BLOCKSIZE='abc' must be a whole number of frames"),
    ("LIVELATENT_BLOCKSIZE", "0", "blocksize=0 must be"),
    ("LIVELATENT_MODEL", "/nonexistent", "no model in /nonexistent"),
])
def test_load_ext_with_a_bad_variable_says_so_in_one_line(monkeypatch, capsys, variable, value, said):
    # a raw ValueError, or a full traceback naming no variable
    from livelatent.repl.ipython import load_ipython_extension
    monkeypatch.setenv(variable, value)
    load_ipython_extension(object())
    err = capsys.readouterr().err
    assert err.startswith("livelatent: not loaded: ") and said in err and variable in err, err


def test_a_bad_osc_port_variable_is_said_not_taken_for_the_default(monkeypatch):
    from livelatent.config import OSC_PORT, osc_port
    from livelatent.errors import ParameterError
    for value, port in (("", OSC_PORT), ("0", 0), ("9000", 9000)):
        monkeypatch.setenv("LIVELATENT_OSC_PORT", value)
        assert osc_port() == port
    for value in ("abc", "99999", "-5"):
        monkeypatch.setenv("LIVELATENT_OSC_PORT", value)
        with pytest.raises(ParameterError, match="LIVELATENT_OSC_PORT=.* must be a UDP port"):
            osc_port()


def test_input_channels_are_a_whole_number_from_0(tmp_path):
    # `livelatent live --offline --inputs -1` was taken
    from livelatent.config import check_inputs
    for wrong in (-1, 65, True, 1.5):
        with pytest.raises(ParameterError, match="inputs=.* must be a whole number from 0 to 64"):
            check_inputs(wrong)
    done = subprocess.run([sys.executable, "-m", "livelatent.cli", "live", "--offline",
                           "--inputs", "-1"], input="", capture_output=True, text=True,
                          timeout=120, env={**os.environ, "LIVELATENT_SETS": str(tmp_path)})
    assert done.returncode == 2 and "inputs=-1 must be a whole number" in done.stderr


def test_the_thread_error_hook_is_shared_and_goes_when_the_last_session_stops():
    # each session put back the hook it found: detached out of order, a detached session's hook
    # stayed, and thread errors went to events nothing printed
    import threading

    from livelatent.events import Events
    from livelatent.repl.thread_errors import report_thread_errors
    before = threading.excepthook
    first, second = Events(), Events()
    stop_first, stop_second = report_thread_errors(first), report_thread_errors(second)

    def fail():
        thread = threading.Thread(target=lambda: 1 / 0, name="mine")
        thread.start()
        thread.join()
    stop_first()                                   # out of order
    fail()
    assert any("thread mine: ZeroDivisionError" in t for t in second.texts())
    assert not any("thread mine" in t for t in first.texts())
    stop_second()
    assert threading.excepthook is before


def test_render_in_the_background_has_the_engines_outputs(tmp_path):
    # its copy of the engine had two: a voice on outputs 3 and 4 was an IndexError, no file
    with Engine(channels=4) as engine:
        sources = pack_sources(engine)
        voice(sources["flute"], sources["cello"], curve=0.5, out=(3, 4))
        job = render_in_background(engine, tmp_path / "four.wav", 1)
        assert job.wait(timeout=60) == tmp_path / "four.wav"
    audio, _ = sf.read(tmp_path / "four.wav")
    assert audio.shape[1] == 4 and np.abs(audio[:, 2:]).max() > 0.01 and np.abs(audio[:, :2]).max() == 0
