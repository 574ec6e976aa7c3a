"""The invariant, through a real JACK server: what the device was fed equals the offline render.

A dummy-driver JACK server stands in for the sound card; a JACK client records what our stream
played, bit for bit, and the capture is aligned with an offline render of the same thing.
"""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

import jackutil
from livelatent import Engine, sine, source, tri, voice

SR = 44100
ROOT = Path(__file__).resolve().parent.parent

SCRIPT = '''
import numpy as np
t = np.arange(3 * 44100) / 44100
tone = source((0.5 * np.sin(2 * np.pi * 220 * t)).astype("float32"), name="tone")
hiss = source((np.random.default_rng(1).normal(0, 0.2, 2 * 44100)).astype("float32"), name="hiss")
voice(tone, hiss, curve=sine(2), name="drift")
voice(hiss, tone, strategy="extension", synth="concat", curve=tri(3), gain=0.5, pan=0.5)
voice(tone, hiss, strategy="stepwise", steps=(0, 1, 0.5), gain=0.4, pan=-0.5)
'''


def until_stream_stopped(captured):
    """The capture up to its last sound: after our stream stops, JACK plays silence."""
    loud = np.flatnonzero(np.any(captured != 0, axis=1))
    return captured[:loud[-1] + 1]


def sources():
    t = np.arange(3 * SR) / SR
    tone = source((0.5 * np.sin(2 * np.pi * 220 * t)).astype("float32"), name="tone")
    hiss = source((np.random.default_rng(1).normal(0, 0.2, 2 * SR)).astype("float32"), name="hiss")
    return tone, hiss


def test_cli_play_through_jack_equals_cli_render(jack_server, tmp_path):
    script = tmp_path / "layers.py"
    script.write_text(SCRIPT)
    command = [sys.executable, "-m", "livelatent.cli"]
    player = subprocess.Popen(command + ["play", str(script), "--seconds", "4", "--device", "system"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the recorder waits for the player's ports, then records until the player is done
        with jackutil.JackRecorder(jack_server, jackutil.SUBPROCESS_PORTS, seconds=20) as recorder:
            _, stderr = player.communicate(timeout=90)
            captured = until_stream_stopped(recorder.stop())
    finally:
        player.kill()
        player.wait()
    assert player.returncode == 0, stderr
    assert "underrun" not in stderr
    rendered = subprocess.run(command + ["render", str(script), "-o", str(tmp_path / "layers.wav"),
                                         "--seconds", "6"], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
    assert rendered.returncode == 0, rendered.stderr
    reference, rate = sf.read(tmp_path / "layers.wav", dtype="float32")
    assert rate == SR
    offset = jackutil.align(captured, reference)
    overlap = min(len(reference), len(captured) - offset)
    assert overlap >= 3 * SR                      # most of the 4 s were captured and compared
    assert jackutil.max_abs_diff_aligned(captured, reference, offset=offset) <= 1e-4
    assert jack_server.xruns() == 0


def test_live_hot_swap_is_heard_at_once_and_renders_identically(jack_server):
    tone, hiss = sources()
    with Engine(seed=4, blocksize=256) as engine:
        v = voice(tone, hiss, curve=sine(2))
        engine.start("system")        # its ports exist from here; the recording starts just after
        with jackutil.JackRecorder(jack_server, "PortAudio", seconds=8) as recorder:
            time.sleep(1.0)
            v.set(curve=tri(1).range(0.8, 1.0))
            swapped_at = engine.landed_at          # where the decode thread landed it
            time.sleep(1.0)
            engine.stop_playback()
            captured = until_stream_stopped(recorder.stop())
        assert engine.underruns == 0
        stopped_at = engine.position               # offline from here: where the listener was
        after_stop = engine.render_array(0.5)

    with Engine(seed=4) as offline:
        v = voice(tone, hiss, curve=sine(2))
        before = offline.render_array(swapped_at / SR)
        v.set(curve=tri(1).range(0.8, 1.0))
        assert offline.landed_at == swapped_at
        reference = np.concatenate([before, offline.render_array(samples=stopped_at + SR - swapped_at)])
    offset = jackutil.align(captured, reference)
    assert jackutil.max_abs_diff_aligned(captured, reference, offset=offset) <= 1e-4
    # stopping takes back what was decoded ahead but never heard: offline goes on from the
    # last sample the device took (within a JACK period of the capture's end)
    assert abs((len(captured) - offset) - stopped_at) <= 1024
    assert np.abs(after_stop - reference[stopped_at:stopped_at + SR // 2]).max() <= 1e-5
    # the swap landed within a couple of blocks of where the listener was
    assert swapped_at >= SR * 0.9
    assert jack_server.xruns() == 0


def test_a_lookahead_longer_than_the_default_ring_still_plays_exactly(jack_server):
    tone, hiss = sources()
    with Engine(seed=6, blocksize=1024, lookahead=4 * SR) as engine:      # 4 s decoded ahead
        voice(tone, hiss, curve=sine(2), loop=True)
        engine.start("system")        # its ports exist from here; the recording starts just after
        with jackutil.JackRecorder(jack_server, "PortAudio", seconds=8) as recorder:
            time.sleep(2.0)
            engine.stop_playback()
            captured = until_stream_stopped(recorder.stop())
        assert engine.underruns == 0
    with Engine(seed=6) as offline:
        voice(tone, hiss, curve=sine(2), loop=True)
        reference = offline.render_array(6.0)
    offset = jackutil.align(captured, reference)
    assert len(captured) >= SR                         # most of the 2 s were compared
    assert jackutil.max_abs_diff_aligned(captured, reference, offset=offset) <= 1e-4
