"""Live playback through a JACK server: starting, stopping, failing, and what it leaves behind.

The stream plays in an audio process; this test process never runs PortAudio.
"""

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import jackutil
from livelatent import DeviceError, Engine, sine, voice
from livelatent.engine.output import AudioProcess
from livelatent.scripting import play

SR = 44100
ROOT = Path(__file__).resolve().parent.parent


def sounding(captured):
    loud = np.flatnonzero(np.any(captured != 0, axis=1))
    return captured[loud[0]:loud[-1] + 1] if loud.size else captured[:0]


def test_stop_then_start_fifty_times_plays_on_where_the_listener_was(jack_server, sources):
    # the REPL's lookahead (0.2 s): each start decodes it before the stream starts
    with Engine(seed=3, blocksize=1024, lookahead=8820) as engine:
        voice(*sources, curve=sine(2))
        pieces = []
        for attempt in range(50):
            engine.start("system")
            with jackutil.JackRecorder(jack_server, jackutil.SUBPROCESS_PORTS, seconds=2) as recorder:
                recorder.wait_frames(4 * 1024)
                assert engine.playback._thread.is_alive(), f"start {attempt}: no decode thread"
                underruns = engine.underruns
                engine.stop_playback()
                captured = recorder.stop()
            assert underruns == 0, f"start {attempt}: {underruns} underruns"
            assert np.abs(captured).max() > 0.01, f"start {attempt}: no sound"
            jack_server.wait_until_gone(jackutil.SUBPROCESS_PORTS)     # before the next recorder
            pieces.append((sounding(captured), engine.position))   # what it played, up to where
        heard = engine.position
    with Engine(seed=3) as offline:
        voice(*sources, curve=sine(2))
        reference = offline.render_array(samples=heard)
    previous = 0
    for attempt, (piece, stopped_at) in enumerate(pieces):   # each start went on from the last stop
        assert stopped_at - len(piece) >= previous - 1024, attempt   # (the recorder joins late)
        expected = reference[stopped_at - len(piece):stopped_at]
        assert np.abs(piece - expected).max() <= 1e-4, attempt
        previous = stopped_at


def test_portaudio_never_runs_in_the_engines_process(jack_server, sources):
    with Engine(blocksize=1024) as engine:
        voice(*sources)
        engine.start("system")
        time.sleep(0.2)
        engine.stop_playback()
    assert "sounddevice" not in sys.modules and "_sounddevice" not in sys.modules


def test_a_device_that_cannot_open_changes_nothing(jack_server, sources):
    with Engine(seed=1, blocksize=1024) as engine:
        voice(*sources)
        engine.render_array(samples=1000)                   # 24 samples of a step left over
        before = engine.position, engine.handoff.leftover_size, engine.timeline.step
        with pytest.raises(DeviceError, match="no output device matches 'nowhere'"):
            engine.start("nowhere")
        assert (engine.position, engine.handoff.leftover_size, engine.timeline.step) == before
        assert not engine.playing and engine.playback is None
        engine.start("system")                               # and then it plays as if nothing happened
        time.sleep(0.3)
        engine.stop_playback()
        assert engine.underruns == 0


def test_a_stream_that_fails_to_start_leaves_no_thread_and_no_change(jack_server, sources, monkeypatch):
    def fail(self):
        raise DeviceError("the stream would not start")

    monkeypatch.setattr(AudioProcess, "start", fail)
    with Engine(seed=1, blocksize=1024) as engine:
        voice(*sources)
        expected = Engine(engine.codec, seed=1)
        with expected:
            voice(*sources)
        engine.render_array(samples=1000)
        before = engine.position, engine.handoff.leftover_size, engine.timeline.step
        with pytest.raises(DeviceError, match="would not start"):
            engine.start("system")
        assert (engine.position, engine.handoff.leftover_size, engine.timeline.step) == before
        assert not engine.playing
        assert not any(t.name == "livelatent-decode" and t.is_alive() for t in threading.enumerate())
        # the decoded-ahead steps it took back render again exactly
        with expected:
            reference = expected.render_array(samples=1000 + 2 * SR)[1000:]
        np.testing.assert_allclose(engine.render_array(samples=2 * SR), reference, atol=1e-5)


def test_a_jack_server_that_dies_under_a_playing_engine_does_not_end_the_process(jack_server, sources):
    with Engine(blocksize=1024) as engine:
        voice(*sources)
        engine.start("system")
        time.sleep(0.3)
        jack_server.process.send_signal(signal.SIGKILL)     # the sound card is gone
        jack_server.process.wait()
        deadline = time.monotonic() + 10
        while not engine.playback.status()["lost"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.playback.status()["lost"]
        engine.stop_playback()                              # and everything still works
        assert not engine.playing
        assert np.abs(engine.render_array(0.5)).max() > 0.01
        assert any("stopped" in text for text in engine.events.texts("error"))


def test_play_stops_only_when_the_listener_has_heard_the_end(jack_server, sources):
    recorder = jackutil.JackRecorder(jack_server, jackutil.SUBPROCESS_PORTS, seconds=8)
    waiting = threading.Thread(target=recorder.start, kwargs={"timeout_s": 20})
    with Engine(seed=2, blocksize=1024) as engine:
        voice(*sources, loop=False)                           # 2 s, then it ends by itself
        waiting.start()
        try:
            play(engine, device="system")
        finally:
            waiting.join()
        captured = recorder.stop()
    with Engine(seed=2) as offline:
        voice(*sources, loop=False)
        reference = offline.render_array()                    # until its very end
    last = int(np.flatnonzero(np.any(reference != 0, axis=1))[-1])
    offset = jackutil.align(captured, reference)
    assert offset + last < len(captured)                      # the last sound was played...
    assert jackutil.max_abs_diff_aligned(captured, reference, offset=offset) <= 1e-4   # ...as rendered


@pytest.mark.parametrize("jack_server", [{"rate": 48000}], indirect=True)
def test_a_48_khz_server_plays_the_engine_resampled_as_render_rate_writes_it(jack_server, sources,
                                                                              tmp_path):
    script = tmp_path / "tone.py"
    script.write_text(
        "import numpy as np\n"
        "t = np.arange(3 * 44100) / 44100\n"
        "tone = source((0.5 * np.sin(2 * np.pi * 220 * t)).astype('float32'), name='tone')\n"
        "hiss = source(np.random.default_rng(1).normal(0, 0.2, 2 * 44100).astype('float32'), name='hiss')\n"
        "voice(tone, hiss, curve=sine(2))\n")
    command = [sys.executable, "-m", "livelatent.cli"]
    player = subprocess.Popen(command + ["play", str(script), "--seconds", "3", "--device", "system"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with jackutil.JackRecorder(jack_server, jackutil.SUBPROCESS_PORTS, seconds=20) as recorder:
            _, stderr = player.communicate(timeout=90)
            captured = sounding(recorder.stop())
    finally:
        player.kill()
        player.wait()
    assert player.returncode == 0, stderr
    done = subprocess.run(command + ["render", str(script), "-o", str(tmp_path / "48k.wav"),
                                     "--seconds", "5", "--rate", "48000"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    reference, rate = sf.read(tmp_path / "48k.wav", dtype="float32")
    assert rate == 48000 and len(reference) == 5 * 48000
    offset = jackutil.align(captured, reference)
    assert len(captured) - offset >= 2 * 48000
    assert jackutil.max_abs_diff_aligned(captured[:-64], reference, offset=offset) <= 1e-4


def test_underruns_are_counted_and_still_told_once_the_stream_has_stopped(jack_server, sources):
    with Engine(seed=9, blocksize=1024, lookahead=2048) as engine:
        voice(*sources, curve=sine(2))
        engine.start("system")
        time.sleep(0.3)
        jackutil.hold_gil(0.5)                        # far longer than what is decoded ahead
        time.sleep(0.3)
        engine.stop_playback()
        assert engine.underruns > 0


def test_the_c_call_of_the_gil_test_keeps_every_other_thread_out():
    counted, stop = [0], threading.Event()

    def count():
        while not stop.is_set():
            counted[0] += 1
    counter = threading.Thread(target=count)
    counter.start()
    try:
        time.sleep(0.05)
        before = counted[0]
        time.sleep(0.1)                                # the GIL let go: the counter runs
        free = counted[0] - before
        jackutil.hold_gil(0.01)                       # take the GIL back from the counter
        before = counted[0]
        held = jackutil.hold_gil(0.1)
        during = counted[0] - before
    finally:
        stop.set()
        counter.join()
    assert held >= 0.1 and during < free / 3       # (it counts a few switch intervals before)


def test_a_long_c_call_holding_the_gil_does_not_stall_the_sound(jack_server, sources, tmp_path):
    """The callback plays in another process; what is decoded ahead covers the decode thread."""
    with Engine(seed=9, blocksize=1024, lookahead=int(0.25 * SR)) as engine:
        voice(*sources, curve=sine(2))
        engine.start("system")
        recorder = jackutil.RecorderProcess(jack_server, "PortAudio", seconds=8, folder=tmp_path)
        try:
            time.sleep(0.5)
            held = jackutil.hold_gil(0.15)            # one C call: the GIL is held all along
            time.sleep(0.5)
            engine.stop_playback()
            captured = sounding(recorder.stop())
        finally:
            recorder.close()
        underruns = engine.underruns
        heard = engine.position
    assert held >= 0.15, f"the GIL was held only {held * 1e3:.0f} ms"
    assert underruns == 0
    with Engine(seed=9) as offline:
        voice(*sources, curve=sine(2))
        reference = offline.render_array(samples=heard)
    offset = jackutil.align(captured, reference)
    assert jackutil.max_abs_diff_aligned(captured, reference, offset=offset) <= 1e-4, offset
    blocks = np.abs(captured[:len(captured) // 1024 * 1024]).reshape(-1, 1024, 2).max(axis=(1, 2))
    assert blocks.min() > 1e-3                    # no gap


def _voices_the_decoder_feeds(codec, batch: int) -> float:
    """OLA voices the bare decoder could feed on one BLAS thread (its windows per second at this
    batch, over the 86 windows per second one voice needs)."""
    from threadpoolctl import threadpool_limits
    z = np.random.default_rng(0).standard_normal((batch, codec.latent_dim)).astype(np.float32)
    with threadpool_limits(limits=1, user_api="blas"):
        codec.decode(z)
        count, began = 0, time.perf_counter()
        while time.perf_counter() - began < 0.5:
            codec.decode(z)
            count += batch
        rate = count / (time.perf_counter() - began)
    return rate / (codec.sample_rate / (codec.window // 2))


def _captured_while(engine, jack_server, tmp_path, seconds: float, during):
    """Start ``engine`` on JACK, record up to ``seconds`` while ``during()`` runs, stop: (what
    sounded, the engine's underruns). The recorder's process starts first: its start-up would
    otherwise take the cores just as the engine starts playing."""
    recorder = jackutil.RecorderProcess(jack_server, "PortAudio", seconds=seconds, folder=tmp_path,
                                        wait=False)
    try:
        engine.start("system")
        recorder.wait_recording()
        during()
        underruns = engine.underruns
        engine.stop_playback()
        return sounding(recorder.stop()), underruns
    finally:
        recorder.close()


def test_voices_switched_to_concat_while_playing_sound_as_the_set_renders(jack_server, tmp_path):
    """The guard's first step, live: its decision taken as if the decoder were at full load (the
    step itself is the same whatever the load), the newest voices are switched to concat twins
    while JACK plays; the capture equals the set's render and nothing underruns."""
    from livelatent.engine.overload import OverloadGuard
    from livelatent.session.session import Session
    from livelatent.session.sets import render_set
    from livelatent.repl.setup import make_engine
    engine = make_engine(blocksize=1024)
    with engine, Session(engine, sets_root=tmp_path, set_name="switch") as session:
        session.run_cell("for i in range(10):\n"
                         "    voice(flute, cello, curve=sine(3 + i / 5), gain=0.3, name=f'n{i}')")
        guard = None

        def switch():
            nonlocal guard
            time.sleep(2.0)
            guard = OverloadGuard(engine.playback)
            guard._shed(1.0)                       # to 0.75 of the decodes: the newest 5 switch
            time.sleep(2.5)
        captured, underruns = _captured_while(engine, jack_server, tmp_path, 9, switch)
        session.end()
        synths = {p.name: p.synth for p in engine.intended_voices() if p.stop_at is None}
    assert len(guard.switched) == 5 and underruns == 0
    assert synths == {**{f"n{i}": "ola" for i in range(5)}, **{f"n{i}": "concat" for i in range(5, 10)}}
    render_set(tmp_path / "switch", tmp_path / "switch.wav", progress=False)
    reference, _ = sf.read(tmp_path / "switch.wav", dtype="float32")
    offset = jackutil.align(captured, reference)
    assert len(captured) - offset >= 3 * SR
    assert jackutil.max_abs_diff_aligned(captured, reference, offset=offset) <= 1e-4


def test_an_overloaded_decoder_sheds_the_newest_voices_instead_of_clicking(jack_server, tmp_path):
    from livelatent.session.session import Session
    from livelatent.session.sets import render_set
    from livelatent.repl.setup import make_engine
    engine = make_engine(blocksize=1024)                  # the REPL's engine: 0.2 s decoded ahead
    capacity = 0.85 * _voices_the_decoder_feeds(engine.codec, 200)
    count = int(1.5 * capacity)
    with engine, Session(engine, sets_root=tmp_path, set_name="crowd") as session:
        session.run_cell(f"for i in range({count}):\n"
                         f"    voice(flute, cello, curve=sine(3 + i / 50), gain=1 / {count} ** 0.5)")
        captured, underruns = _captured_while(engine, jack_server, tmp_path, 12, lambda: time.sleep(4.0))
        session.end()
        events = engine.events.texts("warning")
        overlapping = sum(p.synth == "ola" for p in engine.intended_voices() if p.stop_at is None)
    assert any(text.startswith("overload:") for text in events), events
    assert overlapping < count and underruns == 0           # switched to concat, or muted
    blocks = np.abs(captured[:len(captured) // 1024 * 1024]).reshape(-1, 1024, 2).max(axis=(1, 2))
    assert blocks.min() > 1e-3                                      # no gap
    render_set(tmp_path / "crowd", tmp_path / "crowd.wav", progress=False)
    reference, _ = sf.read(tmp_path / "crowd.wav", dtype="float32")
    offset = jackutil.align(captured, reference)
    assert len(captured) - offset >= 3 * SR
    assert jackutil.max_abs_diff_aligned(captured, reference, offset=offset) <= 1e-4


@pytest.mark.parametrize("jack_server", [256], indirect=True)   # it can stop inside a step
def test_stems_after_playback_stopped_hold_the_rest_of_the_step_it_was_in(jack_server, sources,
                                                                          tmp_path):
    # stopping leaves the rest of the step being heard as leftover; a render with stems made
    # right after starts with it. Before, the stems were silent there
    from livelatent.sinks.file import render_to_file

    with Engine(seed=3, blocksize=256) as engine:
        voice(*sources, curve=sine(2), gain=0.3, pan=-0.4, name="a")
        voice(*sources[::-1], curve=0.3, gain=0.3, pan=0.4, name="b")
        for attempt in range(8):               # until it stops inside a step (half the time)
            engine.start("system")
            # a period more each try: an idle machine stops after the same number of periods
            # try after try, which was a whole number of steps 4 runs in 10
            time.sleep(0.3 + attempt * 256 / SR)
            engine.stop_playback()
            jack_server.wait_until_gone(jackutil.SUBPROCESS_PORTS)
            if engine.handoff.leftover_size:
                break
        assert engine.handoff.leftover_size
        position = engine.position
        mix_path, *stem_paths = render_to_file(engine, tmp_path / "after.wav", 1.0, stems=True)
    mix = sf.read(mix_path, dtype="float32")[0]
    stems = sum(sf.read(p, dtype="float32")[0] for p in stem_paths)
    assert len(stem_paths) == 2 and np.abs(stems - mix).max() < 1e-5
    with Engine(seed=3) as offline:
        voice(*sources, curve=sine(2), gain=0.3, pan=-0.4, name="a")
        voice(*sources[::-1], curve=0.3, gain=0.3, pan=0.4, name="b")
        reference = offline.render_array(samples=position + SR)[position:]
    assert np.abs(mix - reference).max() <= 1e-5
