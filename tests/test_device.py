"""The audio devices and the audio process, against a private JACK server standing in for a
sound card. PortAudio never runs in this process: devices are listed, and streams played, by
the audio process."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import jackutil
from livelatent.engine.output import AudioProcess, SharedRing, explain
from livelatent.errors import DeviceError
from livelatent.sinks import device

REPO = Path(__file__).resolve().parent.parent
RATE = 44100


def _run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "livelatent.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_jack_system_device_is_found_by_name_host_api_index_and_default(jack_server):
    jack = device.find_output_device("system")
    info = {d["index"]: d for d in device.list_output_devices()}[jack]
    assert info["hostapi"] == "JACK Audio Connection Kit" and info["max_output_channels"] == 2
    assert info["default_samplerate"] == RATE
    assert device.find_output_device("jack") == jack
    assert device.find_output_device("JACK Audio Connection Kit") == jack
    assert device.find_output_device(str(jack)) == jack
    assert device.find_output_device(None) == jack


def test_unknown_device_error_lists_the_devices_that_exist(jack_server):
    with pytest.raises(DeviceError) as raised:
        device.find_output_device("focusrite")
    message = str(raised.value)
    assert "'focusrite'" in message and "'system'" in message and "JACK Audio Connection Kit" in message
    with pytest.raises(DeviceError, match="(?s)index 99.*'system'"):
        device.find_output_device(99)
    with pytest.raises(DeviceError, match="only 2 output channels, 8 needed"):
        device.find_output_device("system", channels=8)


def test_a_device_at_another_rate_opens_at_its_own_rate(jack_server):
    ring = SharedRing(1 << 16)
    process = AudioProcess(ring, device="jack", samplerate=48000, blocksize=1024)
    try:
        process.open()
        assert process.samplerate == 44100          # the engine resamples to it
    finally:
        process.kill()
        ring.close()


def test_a_device_with_no_usable_rate_names_the_rates_it_offers():
    message = {"event": "error", "kind": "open", "message": "48000 Hz: Invalid sample rate",
               "device": {"name": "Tiny USB", "hostapi": "ALSA", "default_samplerate": 8000.0},
               "devices": [{"index": 0, "name": "Tiny USB", "hostapi": "ALSA",
                            "max_output_channels": 2, "default_samplerate": 8000.0}],
               "rates": [8000, 11025]}
    text = explain(message)
    assert "cannot open output device 'Tiny USB' (ALSA) at any usable rate" in text
    assert "it offers 8000 Hz, 11025 Hz" in text and "Invalid sample rate" in text


def test_a_device_asked_for_where_there_is_none_is_named_in_the_message():
    none = {"event": "error", "devices": []}
    for text, named in (("no audio device with index 0", True),
                        ("no output device matches 'usb'", True),
                        ("no audio output devices", False)):
        said = explain(dict(none, message=text))
        assert "is a sound server running?" in said and said.count("no audio output devices") == 1
        assert said.startswith(text + ": ") if named else said.startswith(text + ": is a sound")


def test_livelatent_devices_prints_the_jack_device(jack_server, capsys):
    assert device.cli_devices(None) == 0
    table = capsys.readouterr().out
    assert "system" in table and "JACK Audio Connection Kit" in table and "44100 Hz" in table
    # A subprocess finds the same private server through JACK_DEFAULT_SERVER.
    result = _run_cli("devices")
    assert result.returncode == 0, result.stderr
    assert "system" in result.stdout and "JACK Audio Connection Kit" in result.stdout


def test_no_sound_server_gives_the_hint(monkeypatch):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"livelatent-absent-{os.getpid()}")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    if device.list_output_devices():
        pytest.skip("this machine has a sound card, so there is always a device")
    with pytest.raises(DeviceError, match="no audio output devices: is a sound server running?.*jackd -d dummy"):
        device.find_output_device(None)
    with pytest.raises(DeviceError, match="no audio output devices"):
        device.cli_devices(None)


def test_without_portaudio_only_the_device_fails_and_says_what_to_install(tmp_path):
    # A stand-in sounddevice that fails to load as the real one does when libportaudio2 is missing.
    (tmp_path / "sounddevice.py").write_text("raise OSError('PortAudio library not found')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    result = _run_cli("devices", env=env)
    assert result.returncode == 2
    assert "libportaudio2" in result.stderr and "Traceback" not in result.stderr


def _chirp(frames):
    """Two distinct, never-repeating test tones (float32, stereo)."""
    t = np.arange(frames) / RATE
    left = 0.5 * np.sin(2 * np.pi * (220 * t + 150 * t**2))
    right = 0.3 * np.sin(2 * np.pi * (660 * t - 90 * t**2)) * np.exp(-t)
    return np.stack([left, right], axis=1).astype(np.float32)


@pytest.mark.parametrize("blocksize", [1024, 256])
def test_what_the_audio_process_plays_reaches_jack_bit_exact_without_xruns(jack_server, blocksize):
    signal = _chirp(3 * RATE)
    ring = SharedRing(1 << 18)                     # 6 s: the whole signal fits
    ring.reset(0)
    ring.write(0, signal)
    process = AudioProcess(ring, device="jack", samplerate=RATE, blocksize=blocksize)
    try:
        assert process.open()["name"] == "system"
        with jackutil.JackRecorder(jack_server, "PortAudio", seconds=8) as recorder:
            assert recorder.sources == ["PortAudio:out_0", "PortAudio:out_1"]
            recorder.wait_frames(jack_server.period)
            ring.written = len(signal)                   # ready: the callback may take it all
            process.start()
            recorder.wait_frames(RATE)          # about a second, counted by JACK's clock
            process.stop()
            recorder.wait_frames(2 * jack_server.period)  # let the last block through
            captured = recorder.stop()
        played, underruns = ring.read, ring.underruns
    finally:
        process.kill()
        ring.close()
    assert RATE <= played < len(signal)
    reference = signal[:played]
    offset = jackutil.align(captured, reference)
    assert 0 < offset and offset + len(reference) <= len(captured), "the capture holds the whole signal"
    assert jackutil.max_abs_diff_aligned(captured, reference, offset=offset) <= 1e-6
    assert not captured[:offset].any() and not captured[offset + len(reference):].any(), "nothing else played"
    assert underruns == 0
    assert jack_server.xruns() == 0, jack_server.log()


def test_when_nothing_is_ready_the_callback_plays_silence_and_counts_an_underrun(jack_server):
    ring = SharedRing(1 << 14)
    ring.reset(0)
    process = AudioProcess(ring, device="jack", samplerate=RATE, blocksize=1024)
    try:
        process.open()
        process.start()
        deadline = time.monotonic() + 5
        while ring.underruns < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        underruns, read = ring.underruns, ring.read
    finally:
        process.stop()
        ring.close()
    assert underruns >= 3 and read == 0      # it waits for samples, it never skips ahead


class _LateOnce(jackutil.JackRecorder):
    """A recorder whose callback misses one period on purpose (as a GIL it waited for would)."""

    def __init__(self, *args, late_call: int, **kwargs):
        self._calls, self._late_call = 0, late_call
        super().__init__(*args, **kwargs)

    def _process(self, frames):
        self._calls += 1
        if self._calls == self._late_call:
            time.sleep(1.5 * 1024 / RATE)
        super()._process(frames)


def test_the_recorder_names_the_periods_it_read_late(jack_server):
    """The capture tests compare with a render must tell the recorder's own lateness (JACK logs
    an XRun naming it; it then reads the next period's samples twice) from the engine's: the
    late period is named, and every other frame is what was played, in order."""
    count = np.arange(RATE * 4, dtype=np.float32)
    ramp = np.stack([count, -count], axis=1) / np.float32(RATE * 4)   # each frame its own value
    player = jackutil.JackPlayer(jack_server, ramp, ports=None)
    recorder = _LateOnce(jack_server, "livelatent-player", seconds=3, late_call=20)
    try:
        player.start()
        recorder.start()
        recorder.wait_frames(40 * 1024)
        captured = recorder.stop()
    finally:
        recorder.close()
        player.close()
    assert jack_server.xruns() >= 1 and "livelatent-recorder" in jack_server.log()
    assert len(recorder.late_spans) == 1
    start, end = recorder.late_spans[0]
    assert end - start == 1024
    step = np.round(np.diff(captured[:, 0]) * RATE * 4).astype(int)
    jumps = np.flatnonzero(step != 1)
    # the late period holds the next one's frames: a jump into it, and one back out of it
    assert jumps.tolist() == [start - 1, end - 1] and step[start - 1] == 1025 and step[end - 1] == -1023


def test_an_audio_process_that_aborts_while_listing_is_said_with_its_signal(tmp_path, monkeypatch):
    # "could not list the devices (exit status -6): " with nothing after the colon (alsa-lib
    # aborts PortAudio when its configuration cannot be read, ALSA_CONFIG_PATH=/nonexistent)
    from livelatent.engine import output
    aborting = tmp_path / "aborts.py"
    aborting.write_text("import os\nos.abort()\n")
    monkeypatch.setattr(output, "PROGRAM", aborting)
    with pytest.raises(DeviceError, match="could not list the devices .killed by SIGABRT: "
                                          "PortAudio or the sound system below it gave up.$"):
        output.list_devices()
