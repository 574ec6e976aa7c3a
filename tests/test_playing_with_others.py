"""Everything from outside at once, over a JACK dummy server: an OSC sender, a MIDI CC sweep on
a JACK MIDI port, a live input fed from a file, and the REPL swapping a curve. What JACK heard
equals `livelatent render` of the set; malformed OSC and MIDI only warn."""

import socket
import subprocess
import time

import numpy as np
from pythonosc.udp_client import SimpleUDPClient


def test_osc_midi_live_input_and_the_repl_at_once_render_as_heard(jack_server, tmp_path):
    import jackutil
    import rtmidi
    from livelatent.session.performance import read_performance
    from replutil import free_udp_port, heard_is_rendered, last_underruns, recorded_repl

    rate, sets, port = 44100, tmp_path / "sets", free_udp_port()
    t = np.arange(2 * rate) / rate
    tone = (0.4 * np.sin(2 * np.pi * 330 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * t))).astype(np.float32)
    midi = rtmidi.MidiOut(rtmidi.API_UNIX_JACK)
    try:
        with recorded_repl(jack_server, ["--blocksize", "1024", "--inputs", "2", "--set", "together"], sets,
                           env={"LIVELATENT_OSC_PORT": str(port)}) as (repl, recorder), \
                jackutil.JackPlayer(jack_server, np.stack([tone, tone], axis=1), jackutil.SUBPROCESS_INPUTS):
            repl.run("mic = live_input(channel=1)")
            repl.run("v = voice(mic, cello, curve=osc('/fader/1', default=0.2).smooth(10), name='v')")
            repl.run("w = voice(piano, strings, curve=cc(74).smooth(20), gain=0.5, name='w')")
            midi.open_virtual_port("sweep")
            ours = jackutil.livelatent_midi_input(jack_server)
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
    text = repl.text
    assert "Traceback" not in text and "needed input" not in text, text[-3000:]
    for warned in ("osc: a malformed packet", "no osc() curve listens to '/nobody/listens'",
                   "its first argument", "midi: a message could not be read"):
        assert warned in text, (warned, text[-3000:])
    performance = read_performance(sets / "together" / "journal.jsonl")
    origins = {b.origin for b in performance.batches}
    assert {"osc", "midi"} <= origins, origins
    heard_is_rendered(captured, sets / "together", tmp_path / "together.wav", seconds=9, late=recorder.late_spans)
    assert last_underruns(text) == 0
