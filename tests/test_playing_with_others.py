"""Everything from outside at once, over a JACK dummy server: an OSC sender, a MIDI CC sweep on
a JACK MIDI port, a live input fed from a file, and the REPL swapping a curve. What JACK heard
equals `livelatent render` of the set; malformed OSC and MIDI only warn."""

import socket
import subprocess
import time

import numpy as np
from pythonosc.udp_client import SimpleUDPClient


def _free_udp_port() -> int:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def _livelatent_midi_port(deadline: float) -> str:
    while True:
        ports = subprocess.run(["jack_lsp"], capture_output=True, text=True).stdout.split("\n")
        ours = [p for p in ports if p.startswith("livelatent") and p.split(":")[-1].startswith("livelatent")]
        if ours:
            return ours[0]
        assert time.monotonic() < deadline, f"no MIDI input port of livelatent's on JACK: {ports}"
        time.sleep(0.05)


def test_osc_midi_live_input_and_the_repl_at_once_render_as_heard(jack_server, tmp_path):
    import jackutil
    import rtmidi
    from livelatent.session.performance import read_performance
    from replutil import Repl, last_underruns, rendered_set

    rate, sets, port = 44100, tmp_path / "sets", _free_udp_port()
    t = np.arange(2 * rate) / rate
    tone = (0.4 * np.sin(2 * np.pi * 330 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * t))).astype(np.float32)
    repl = Repl(["live", "--device", "system", "--blocksize", "1024", "--inputs", "2", "--set", "together"],
                env={"LIVELATENT_SETS": str(sets), "LIVELATENT_OSC_PORT": str(port)})
    recorder = jackutil.JackRecorder(jack_server, jackutil.SUBPROCESS_PORTS, seconds=60)
    player = jackutil.JackPlayer(jack_server, np.stack([tone, tone], axis=1), r"^PortAudio(-[0-9]+)?:in_")
    midi = rtmidi.MidiOut(rtmidi.API_UNIX_JACK)
    try:
        recorder.start(timeout_s=60)
        player.start(timeout_s=60)
        repl.wait_prompt()
        repl.run("mic = live_input(channel=1)")
        repl.run("v = voice(mic, cello, curve=osc('/fader/1', default=0.2).smooth(10), name='v')")
        repl.run("w = voice(piano, strings, curve=cc(74).smooth(20), gain=0.5, name='w')")
        midi.open_virtual_port("sweep")
        ours = _livelatent_midi_port(time.monotonic() + 10)
        subprocess.run(["jack_connect", "RtMidiOut Client:sweep", ours], check=True)
        client = SimpleUDPClient("127.0.0.1", port)
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        began = time.monotonic()
        for i in range(1000):                           # 10 s: OSC at 100/s, MIDI CC at 50/s
            client.send_message("/fader/1", 0.5 + 0.5 * np.sin(i / 40))
            if i % 2 == 0:
                midi.send_message([0xB0, 74, (i // 2) % 128])
            if i == 300:                                # bad input: warnings, nothing else
                raw.sendto(b"\x00garbage, not OSC", ("127.0.0.1", port))
                client.send_message("/nobody/listens", 1.0)
                client.send_message("/fader/1", "loud")
                midi.send_message([0xB0, 74])           # a control change cut short
            if i == 500:
                repl.run("w.curve = cc(74).smooth(20) * tri(3)")
            time.sleep(max(0.0, began + (i + 1) * 0.01 - time.monotonic()))
        repl.pump(0.5)
        assert repl.exit() == 0, repl.text[-2000:]
        captured = recorder.stop()
    finally:
        midi.close_port()
        player.close()
        recorder.close()
        repl.close()
    text = repl.text
    assert "Traceback" not in text and "needed input" not in text, text[-3000:]
    for warned in ("osc: a malformed packet", "no osc() curve listens to '/nobody/listens'",
                   "its first argument", "midi: a message could not be read"):
        assert warned in text, (warned, text[-3000:])
    performance = read_performance(sets / "together" / "journal.jsonl")
    origins = {b.origin for b in performance.batches}
    assert {"osc", "midi"} <= origins, origins
    captured = jackutil.until_stream_stopped(captured)
    reference, rate = rendered_set(sets / "together", tmp_path / "together.wav")
    offset = jackutil.align(captured, reference)
    assert len(captured) - offset >= 9 * rate
    assert jackutil.max_abs_diff_aligned(captured, reference, offset=offset) <= 1e-4
    assert last_underruns(text) == 0
