"""Controllers as curves: OSC over real UDP packets, merged to a batch a step, journaled and
replayed from the journal; bad input warns, rate-limited, and never changes the sound."""

import socket
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pythonosc.udp_client import SimpleUDPClient

from livelatent import CurveError, Engine, ParameterError, sine, source, voice
from livelatent.controllers import Controllers
from livelatent.controls import ControlState, osc_curve
from livelatent.engine.commands import SetControl
from livelatent.session.namespace import namespace
from livelatent.session.session import Session
from livelatent.session.sets import render_set
from replutil import free_udp_port

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "livelatent" / "packs" / "default" / "sources"


@pytest.fixture(scope="module")
def two():
    return source(PACK / "flute.flac"), source(PACK / "cello.flac")


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def test_a_controller_change_plays_like_the_same_change_of_curve(two):
    a, b = two
    with Engine(seed=1) as engine:
        v = voice(a, b, curve=osc_curve("/fader/1", default=0.0))
        before = engine.render_array(samples=512 * 100)
        engine.submit(SetControl("osc:/fader/1", 0.8))
        after = engine.render_array(samples=512 * 300)
        assert v.params.plan.controls == {"osc:/fader/1"}
    with Engine(seed=1) as engine:
        w = voice(a, b, curve=0.0)
        np.testing.assert_array_equal(engine.render_array(samples=512 * 100), before)
        w.curve = 0.8
        np.testing.assert_array_equal(engine.render_array(samples=512 * 300), after)


def test_smooth_glides_from_where_the_last_glide_had_got_to():
    state = ControlState().after(1.0, 1.0).after(1.5, 0.0)
    np.testing.assert_allclose(state.at(np.array([0.5, 1.0, 1.25, 1.5, 2.0, 3.0]), 0.0, 0.3),
                               [0.3, 1.0, 1.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(state.at(np.array([0.5, 1.25, 1.5, 1.75, 2.0, 2.5]), 1.0, 0.3),
                               [0.3, 0.475, 0.65, 0.4875, 0.325, 0.0])
    assert repr(osc_curve("/x", 0.5).smooth(20)) == "osc('/x', default=0.5).smooth(20.0)"
    with pytest.raises(CurveError, match="smooth\\(\\) is for controller curves"):
        sine(2).smooth(20)
    for address in ("fader 1", "/a\x00b", "/a\nb"):       # (OSC can never deliver to a NUL)
        with pytest.raises(CurveError, match="no spaces, wildcards or control characters"):
            osc_curve(address)


def test_osc_messages_over_udp_land_merged_a_batch_a_step(two):
    a, b = two
    with Engine(seed=1) as engine:
        names = namespace(engine)
        port = names["osc_listen"](port=0)
        assert port > 0
        fader = names["osc"]("/fader/1", default=0.0, lo=0.0, hi=1.0)
        voice(a, b, curve=fader.smooth(20))
        client = SimpleUDPClient("127.0.0.1", port)
        for i in range(200):
            client.send_message("/fader/1", (i + 1) / 200)
        wait_for(lambda: "osc:/fader/1" in engine.intended().controls and
                 engine.intended().controls["osc:/fader/1"].value(0.0) == 1.0)
        service = Controllers.of(engine)
        assert service.listener.received == 200
        assert service.listener.sender.sent <= 40          # merged: at most one batch a step
        assert np.abs(engine.render_array(1.0)).max() > 0.01


def test_bad_osc_input_warns_once_in_a_while_and_changes_nothing(two):
    a, b = two
    with Engine(seed=1) as engine:
        names = namespace(engine)
        port = names["osc_listen"](port=0)
        v = voice(a, b, curve=names["osc"]("/fader/1", default=0.3, lo=0.0, hi=1.0))
        client = SimpleUDPClient("127.0.0.1", port)
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(30):
            raw.sendto(b"not osc at all", ("127.0.0.1", port))
            client.send_message("/nobody/listens", 0.5)
            client.send_message("/fader/1", "loud")
        client.send_message("/fader/1", float("nan"))
        time.sleep(0.5)
        texts = engine.events.texts()
        assert sum("malformed packet" in t for t in texts) == 1
        assert sum("no osc() curve listens to '/nobody/listens'" in t for t in texts) == 1
        assert sum("must be a finite number" in t for t in texts) == 1
        assert "osc:/fader/1" not in engine.intended().controls          # the sound is unchanged
        client.send_message("/fader/1", 7.0)
        wait_for(lambda: "osc:/fader/1" in engine.intended().controls)
        assert engine.intended().controls["osc:/fader/1"].value(0.0) == 1.0     # clipped
        assert any("outside [0.0, 1.0]; clipped to 1" in t for t in engine.events.texts())
        assert v.params.curve is not None
        # a port in use: one warning, osc() curves hold their defaults, nothing raises
        taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        taken.bind(("127.0.0.1", 0))
        assert names["osc_listen"](port=taken.getsockname()[1]) == 0
        assert any("cannot listen on 127.0.0.1" in t and "Choose another port" in t
                   for t in engine.events.texts())
        # a host that is not this machine's: the advice is about the host, not the port
        Controllers.of(engine).throttle.period = 0.0
        for host in ("no.such.host.invalid", "192.0.2.1"):
            assert names["osc_listen"](port=0, host=host) == 0
            said = engine.events.texts()[-2]              # (then: the old one listens on)
            assert f"cannot listen on {host}:0" in said and "Give an address of this machine" in said
            assert "still listening on 127.0.0.1" in engine.events.texts()[-1]
        with pytest.raises(ParameterError, match="lo must be below hi"):
            names["osc"]("/x", lo=1, hi=0)
        taken.close()
        raw.close()


def test_an_osc_message_cut_short_is_ignored_not_read_as_zero(two):
    # python-osc read a float whose last bytes were missing as if they were zeros: 0.75 cut by
    # four bytes moved the fader to 0.0, a value the controller never sent
    from pythonosc.osc_message_builder import OscMessageBuilder
    a, b = two
    with Engine(seed=1) as engine:
        names = namespace(engine)
        port = names["osc_listen"](port=0)
        voice(a, b, curve=names["osc"]("/fader/1", default=0.3))
        built = OscMessageBuilder("/fader/1")
        built.add_arg(0.75)
        whole = built.build().dgram
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for cut in (2, 4):
            raw.sendto(whole[:-cut], ("127.0.0.1", port))
        time.sleep(0.3)
        assert "osc:/fader/1" not in engine.intended().controls
        assert any("'/fader/1' was ignored (it is cut short" in t for t in engine.events.texts())
        raw.sendto(whole, ("127.0.0.1", port))                       # the whole one lands
        wait_for(lambda: "osc:/fader/1" in engine.intended().controls)
        assert engine.intended().controls["osc:/fader/1"].value(0.0) == 0.75
        raw.close()


def test_python_oscs_own_log_lines_never_reach_the_terminal_livelatent_says_it(two, caplog, capfd):
    import logging
    import struct
    caplog.set_level(logging.DEBUG)
    with Engine(seed=1) as engine:
        names = namespace(engine)
        port = names["osc_listen"](port=0)
        names["osc"]("/fader/1", default=0.3)
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        timetag = b"\x00" * 7 + b"\x01"
        raw.sendto(b"#bundle\x00" + timetag + struct.pack(">i", 0), ("127.0.0.1", port))   # an empty element
        raw.sendto(b"/fader/1\x00\x00\x00\x00,x\x00\x00", ("127.0.0.1", port))            # an unknown type tag
        raw.sendto(b"", ("127.0.0.1", port))                                           # nothing at all
        wait_for(lambda: any("part of a packet from 127.0.0.1 was ignored" in t for t in engine.events.texts()))
        time.sleep(0.3)
        raw.close()
    assert [r.getMessage() for r in caplog.records if r.name == "root"] == []
    assert "WARNING:root" not in capfd.readouterr().err
    assert sum("part of a packet" in t for t in engine.events.texts()) == 1        # rate-limited


def _bundle(*elements: bytes) -> bytes:
    import struct
    return b"#bundle\x00" + b"\x00" * 7 + b"\x01" + b"".join(
        struct.pack(">i", len(e)) + e for e in elements)


def test_a_bundle_with_a_lying_element_size_is_refused_not_parsed_forever(two):
    """A bundle element of size -4 sent python-osc back to the same element forever: the
    listener's thread spun and closing the engine waited on it. Too-deep nesting, likewise,
    recursed until Python gave up; a bundle above 8 KiB was cut short. Each is one warning now,
    and the listener goes on."""
    import struct
    import threading
    fader = b"/fader/1\x00\x00\x00\x00,f\x00\x00" + struct.pack(">f", 0.5)
    negative = _bundle(fader)[:16] + struct.pack(">i", -4) + fader
    nested = fader
    for _ in range(40):
        nested = _bundle(nested)
    with Engine(seed=1) as engine:
        names = namespace(engine)
        names["osc_listen"](port=0)
        names["osc"]("/fader/1", default=0.3)
        listener = Controllers.of(engine).listener
        parsing = threading.Thread(target=listener.call_handlers_for_packet,
                                   args=(negative, ("127.0.0.1", 0)), daemon=True)
        parsing.start()
        parsing.join(timeout=2.0)
        assert not parsing.is_alive(), "one packet spun the OSC listener"
        listener.throttle.period = 0.0
        listener.call_handlers_for_packet(nested, ("127.0.0.1", 0))
        assert any("nested more than" in t for t in engine.events.texts())
        assert any("size (-4) does not fit the packet" in t for t in engine.events.texts())
        assert "osc:/fader/1" not in engine.intended().controls
        big = _bundle(*[fader] * 999 + [fader[:-4] + struct.pack(">f", 0.75)])       # 20 KB
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        raw.sendto(big, ("127.0.0.1", listener.port))
        controls = lambda: engine.intended().controls     # (the bundle's values may land in
        wait_for(lambda: "osc:/fader/1" in controls() and      # two batches: its last one wins)
                 controls()["osc:/fader/1"].value(0.0) == 0.75)
        assert engine.intended().controls["osc:/fader/1"].value(0.0) == 0.75
        raw.close()


def test_a_session_with_osc_renders_from_its_journal_what_was_played(two, tmp_path):
    with Engine(seed=3) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="osc")
        port = session.run_cell("osc_listen(port=0)")
        session.run_cell("v = voice(flute, cello, curve=osc('/fader/1', default=0.1).smooth(15))")
        client = SimpleUDPClient("127.0.0.1", port)
        played = []
        for i in range(40):
            client.send_message("/fader/1", (i % 10) / 10)
            played.append(engine.render_array(samples=512 * 8))
            time.sleep(0.005)
        session.run_cell("v.curve = sine(4)")
        played.append(engine.render_array(samples=512 * 40))
        session.end()
        session.close()
    played = np.concatenate(played)
    report = render_set(tmp_path / "sets" / "osc", tmp_path / "osc.wav", progress=False)
    rendered, _ = sf.read(tmp_path / "osc.wav", dtype="float32")
    assert report.samples >= played.shape[0]
    np.testing.assert_allclose(rendered[:played.shape[0]], played, atol=1e-6)
    journal = (tmp_path / "sets" / "osc" / "journal.jsonl").read_text()
    assert '"kind": "controls", "origin": "osc"' in journal


def test_osc_live_over_jack_renders_from_the_journal_as_heard(jack_server, tmp_path):
    """The REPL plays over a JACK dummy server while this test sends 1,000 OSC messages over
    10 s and the REPL swaps a curve: `livelatent render` of the set equals the capture."""
    from livelatent.session.performance import read_performance
    from replutil import heard_is_rendered, last_underruns, recorded_repl

    sets, port = tmp_path / "sets", free_udp_port()
    with recorded_repl(jack_server, ["--blocksize", "1024", "--set", "osc"], sets,
                       env={"LIVELATENT_OSC_PORT": str(port)}) as (repl, recorder):
        repl.run("v = voice(flute, cello, curve=osc('/fader/1', default=0.2).smooth(10), name='v')\n"
                 "w = voice(piano, strings, curve=sine(2), gain=0.5, name='w')")
        client = SimpleUDPClient("127.0.0.1", port)
        began = time.monotonic()
        for i in range(1000):
            client.send_message("/fader/1", 0.5 + 0.5 * np.sin(i / 40))
            if i == 500:
                repl.run("w.curve = tri(3)")
            time.sleep(max(0.0, began + (i + 1) * 0.01 - time.monotonic()))
        repl.pump(0.5)
        assert repl.exit() == 0, repl.text[-2000:]
        captured = recorder.stop()
    assert "error:" not in repl.text, repl.text[-3000:]
    performance = read_performance(sets / "osc" / "journal.jsonl")
    osc_batches = [b for b in performance.batches if b.origin == "osc"]
    assert 100 <= len(osc_batches) <= 1000             # merged to at most one a step
    heard_is_rendered(captured, sets / "osc", tmp_path / "osc.wav", seconds=9, late=recorder.late_spans)
    assert last_underruns(repl.text) == 0


def _sender_connected(jack_server):
    """A JACK MIDI output port of a client of its own, ``sender``, connected to livelatent's input."""
    import subprocess

    import jackutil
    import rtmidi
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK)
    out.open_virtual_port("sender")
    ours = jackutil.livelatent_midi_input(jack_server)
    wait_for(lambda: subprocess.run(["jack_connect", "RtMidiOut Client:sender",
                                     ours]).returncode == 0, timeout=5)
    return out


def test_midi_over_jack_drives_cc_note_and_bend_curves_and_note_functions(jack_server, two, tmp_path):
    a, b = two
    with Engine(seed=2) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="midi")
        session.run_cell("v = voice(flute, cello, curve=cc(74, channel=2).smooth(20), name='v')\n"
                         "w = voice(cello, flute, curve=note_on(60) * 0.5 + (pitchbend() + 1) / 4)\n"
                         "on_note(lambda note, velocity: v.set(gain=velocity), note=64)")
        out = _sender_connected(jack_server)
        for value in range(0, 128, 4):
            out.send_message([0xB1, 74, value])            # CC 74 on channel 2
        out.send_message([0x90, 60, 100])                  # note 60 held
        out.send_message([0xE0, 0x7F, 0x7F])               # pitch bend all the way up
        out.send_message([0x90, 64, 64])                   # note 64: on_note sets v's gain
        out.send_message([0xF8])                           # a clock tick: nothing reads it
        controls = lambda: engine.intended().controls
        wait_for(lambda: all(n in controls() for n in ("cc:2:74", "note:1:60", "bend:1")) and
                 abs(engine.intended().voices[0].gain - 64 / 127) < 1e-9)
        assert controls()["cc:2:74"].value(0.0) == 124 / 127
        assert controls()["note:1:60"].value(0.0) == 100 / 127
        assert controls()["bend:1"].value(0.0) == 1.0
        out.send_message([0x80, 60, 0])                    # note 60 released
        wait_for(lambda: controls()["note:1:60"].value(1.0) == 0.0)
        played = engine.render_array(samples=512 * 50)
        assert session.run_cell("midi_in('no such controller')") is None    # a warning, no error
        assert any("no MIDI output port named like 'no such controller'" in t
                   for t in engine.events.texts())
        session.end()
        session.close()
        out.close_port()
    journal = (tmp_path / "sets" / "midi" / "journal.jsonl").read_text()
    assert '"kind": "controls", "origin": "midi"' in journal and '"origin": "midi:note"' in journal
    report = render_set(tmp_path / "sets" / "midi", tmp_path / "midi.wav", progress=False)
    rendered, _ = sf.read(tmp_path / "midi.wav", dtype="float32")
    assert report.samples >= played.shape[0]
    np.testing.assert_allclose(rendered[:played.shape[0]], played, atol=1e-6)


def test_a_burst_of_midi_messages_is_read_whole_and_its_last_values_land(jack_server, two, tmp_path):
    # thousands of messages at once overflowed rtmidi's queue (1024), read one message at a
    # time: the last values were lost (a released note held on), and rtmidi's complaints
    # flooded the terminal
    import time
    a, b = two
    with Engine(seed=2) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="burst")
        session.run_cell("v = voice(flute, cello, curve=cc(7) * note_on(60))")
        out = _sender_connected(jack_server)
        sent = 0
        for chunk in range(6):                       # (as fast as the sender's ring takes them)
            for _ in range(500):
                out.send_message([0x90, 60, 100])
                out.send_message([0x80, 60, 0])
                sent += 2
            time.sleep(0.005)
        out.send_message([0x90, 60, 90])
        out.send_message([0xB0, 7, 9])
        controls = lambda: engine.intended().controls
        wait_for(lambda: "cc:1:7" in controls() and controls()["cc:1:7"].value(0.0) == 9 / 127
                 and controls()["note:1:60"].value(0.0) == 90 / 127, timeout=10)
        listener = Controllers.of(engine).midi
        session.close()
        out.close_port()
    assert listener.received == sent + 2


def test_an_on_note_function_that_never_returns_is_interrupted_and_dropped(jack_server, two,
                                                                           monkeypatch, tmp_path):
    from livelatent.controllers import midi
    monkeypatch.setattr(midi, "RUN_LIMIT_S", 0.5)
    monkeypatch.setattr(midi, "STALE_NOTE_S", 0.2)
    with Engine(seed=2) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="stuck")
        session.run_cell("v = voice(flute, cello, curve=0.5, name='v')\n"
                         "def stuck(note, velocity):\n"
                         "    v.set(gain=0.1)\n"
                         "    while True:\n"
                         "        pass\n"
                         "on_note(stuck)\n"
                         "on_note(lambda note, velocity: v.set(gain=velocity))")
        out = _sender_connected(jack_server)
        out.send_message([0x90, 64, 64])          # the stuck function, then the other one
        out.send_message([0x90, 66, 100])         # waits behind them: too late, dropped
        gain = lambda: engine.intended().voices[0].gain
        wait_for(lambda: any("note 66 waited more than 0.2 s" in t for t in engine.events.texts()))
        assert abs(gain() - 64 / 127) < 1e-9
        errors = [t for t in engine.events.texts() if "on_note: stuck was still running" in t]
        assert len(errors) == 1 and "interrupted, and dropped" in errors[0]
        out.send_message([0x90, 65, 127])         # the stuck one is gone: this lands at once
        wait_for(lambda: abs(gain() - 1.0) < 1e-9, timeout=2)
        assert sum("on_note: stuck" in t for t in engine.events.texts()) == 1
        session.close()
        out.close_port()


def test_a_controller_unplugged_and_plugged_back_is_reported_and_connected_again(jack_server,
                                                                                 two, monkeypatch):
    import rtmidi

    from livelatent.controllers import midi
    monkeypatch.setattr(midi, "CHECK_PORT_S", 0.2)
    a, b = two
    def plugged():
        device = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="nanoPAD")
        device.open_virtual_port("pads")
        return device
    out = plugged()
    with Engine(seed=2) as engine:
        names = namespace(engine)
        said = lambda text: any(text in t for t in engine.events.texts())
        assert "pads" in names["midi_in"]("pads")
        v = voice(a, b, curve=names["cc"](20))
        controls = lambda: engine.intended().controls
        value = lambda: controls()["cc:1:20"].value(0.0) if "cc:1:20" in controls() else None
        out.send_message([0xB0, 20, 64])
        wait_for(lambda: value() == 64 / 127)
        out.close_port()                                   # unplugged
        out.delete()
        wait_for(lambda: said("has gone away"), timeout=5)
        assert value() == 64 / 127                         # held
        out = plugged()                                    # plugged back
        wait_for(lambda: said("is back, connected again"), timeout=5)
        out.send_message([0xB0, 20, 127])
        wait_for(lambda: value() == 1.0, timeout=5)
        assert v.params.plan.controls == {"cc:1:20"}
        Controllers.of(engine).close()
    out.close_port()


def test_a_port_name_two_controllers_share_is_not_guessed_between(jack_server, two, monkeypatch):
    # midi_in("pads") took the first of padsA:pads and padsB:pads without a word, and when A
    # was unplugged it said "padsB:pads is back" and B's knobs drove A's controls
    import rtmidi

    from livelatent.controllers import midi
    monkeypatch.setattr(midi, "CHECK_PORT_S", 0.2)
    assert midi.port_named(["a:pads", "b:pads"], "pads") == (
        None, "'pads' names 2 ports (a:pads, b:pads): give more of the name of the one meant")
    assert midi.port_named(["a:pads", "b:pads"], "b:pads") == ("b:pads", None)
    assert midi.port_named(["b:pads", "c:pads 2"], "pads", "c:pads 2") == ("c:pads 2", None)
    devices = []
    for client in ("padsA", "padsB"):
        devices.append(rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=client))
        devices[-1].open_virtual_port("pads")
    a, b = two
    with Engine(seed=2) as engine:
        names = namespace(engine)
        said = lambda text: any(text in t for t in engine.events.texts())
        assert names["midi_in"]("pads") is None                      # said, not guessed
        assert said("'pads' names 2 MIDI output ports (padsA:pads, padsB:pads)")
        assert names["midi_in"]("padsA") == "padsA:pads"
        voice(a, b, curve=names["cc"](20))
        devices[0].close_port()                                     # A unplugged: B stays out
        wait_for(lambda: said("padsA:pads has gone away"), timeout=5)
        devices[1].send_message([0xB0, 20, 99])
        time.sleep(0.6)
        assert not said("back, connected again") and "cc:1:20" not in engine.intended().controls
        Controllers.of(engine).close()
    for device in devices:
        device.close_port()
        device.delete()


def test_a_controller_asked_for_before_it_is_plugged_in_is_connected_when_it_appears(
        jack_server, two, monkeypatch):
    import rtmidi

    from livelatent.controllers import midi
    monkeypatch.setattr(midi, "CHECK_PORT_S", 0.2)
    a, b = two
    with Engine(seed=2) as engine:
        names = namespace(engine)
        said = lambda text: any(text in t for t in engine.events.texts())
        assert names["midi_in"]("knobs") is None                    # not there yet: a warning
        assert said("no MIDI output port named like 'knobs'") and said("connects to it when it appears")
        voice(a, b, curve=names["cc"](21))
        device = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="knobbox")
        device.open_virtual_port("knobs")                          # plugged in
        wait_for(lambda: said("knobs is there, connected"), timeout=5)
        device.send_message([0xB0, 21, 127])
        wait_for(lambda: "cc:1:21" in engine.intended().controls and
                 engine.intended().controls["cc:1:21"].value(0.0) == 1.0, timeout=5)
        Controllers.of(engine).close()
    device.close_port()


def test_a_curve_set_to_a_controller_later_follows_it(two):
    a, b = two
    with Engine(seed=1) as engine:
        v = voice(a, b, curve=0.2)
        engine.render_array(samples=512 * 20)
        v.curve = osc_curve("/later", default=0.0)
        engine.submit(SetControl("osc:/later", 0.9))
        engine.render_array(samples=512 * 20)
        assert v.params.plan.controls == {"osc:/later"}
        assert v.params.controls["osc:/later"].value(0.0) == 0.9


def test_midi_clock_sends_start_24_ticks_a_beat_and_stop(jack_server, two):
    import subprocess

    import rtmidi
    a, b = two
    receiver = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="receiver")
    receiver.open_virtual_port("in")
    receiver.ignore_types(timing=False)
    with Engine(seed=1) as engine:
        names = namespace(engine)
        voice(a, b, curve=0.5)
        clock = names["midi_clock"]()
        wait_for(lambda: subprocess.run(["jack_connect", "livelatent-clock:clock",
                                         "receiver:in"]).returncode == 0, timeout=5)
        time.sleep(2.0)                                     # 60 bpm: about 48 ticks
        clock.close()
    received = []
    while (got := receiver.get_message()) is not None:
        received.append(got[0])
    receiver.close_port()
    ticks = received.count([0xF8])
    assert 30 <= ticks <= 60, received[:5]
    assert received[-1] == [0xFC] and [0xFA] not in received[1:]


def test_a_midi_clock_for_a_machine_plugged_in_later_and_unplugged_follows_it(jack_server, two,
                                                                              monkeypatch):
    """midi_clock("drum-machine") before the machine is there: it starts when it appears (Start,
    then ticks), sends nothing while it is unplugged, and starts it again when it is back."""
    import rtmidi

    from livelatent.controllers import midi
    monkeypatch.setattr(midi, "CHECK_PORT_S", 0.2)
    a, b = two

    def plugged():
        machine = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="drum-machine")
        machine.open_virtual_port("in")
        machine.ignore_types(timing=False)
        return machine

    def heard(machine, seconds):
        time.sleep(seconds)
        received = []
        while (got := machine.get_message()) is not None:
            received.append(got[0])
        return received

    with Engine(seed=1) as engine:
        names = namespace(engine)
        said = lambda text: any(text in t for t in engine.events.texts())
        voice(a, b, curve=0.5)
        clock = names["midi_clock"]("drum-machine")
        assert said("no MIDI input port named like 'drum-machine'") and said("starts when it appears")
        assert clock.sent == 0
        machine = plugged()
        wait_for(lambda: said("drum-machine:in is there, connected"), timeout=5)
        first = heard(machine, 1.0)                        # 60 bpm: about 24 ticks
        assert first[0] == [0xFA] and 12 <= first.count([0xF8]) <= 30, first[:5]
        machine.close_port()                               # unplugged
        machine.delete()
        wait_for(lambda: said("drum-machine:in has gone away"), timeout=5)
        sent = clock.sent
        time.sleep(0.5)
        assert clock.sent == sent                          # nothing sent to a machine not there
        machine = plugged()                                # plugged back
        wait_for(lambda: said("drum-machine:in is back, connected again"), timeout=5)
        again = heard(machine, 1.0)
        assert again[0] == [0xFA] and 12 <= again.count([0xF8]) <= 30, again[:5]
        Controllers.of(engine).close()
    rest = heard(machine, 0.2)
    machine.close_port()
    assert rest[-1:] == [[0xFC]]                           # Stop when the clock closes


def test_two_midi_clocks_closed_in_turn_give_the_interpreter_its_switch_interval_back(monkeypatch):
    """Each clock shortens the interpreter's switch interval while it runs; the second one used
    to save the first's short value and put it back, leaving every thread switching ten times
    as often for the rest of the session."""
    import sys

    from livelatent.controllers import clock_out

    class Port:
        def send_message(self, message):
            pass

        def close_port(self):
            pass

        def delete(self):
            pass

    monkeypatch.setattr(clock_out, "open_midi_port", lambda *args, **kwargs: (Port(), "clock", None))
    before = sys.getswitchinterval()
    with Engine(seed=1) as engine:
        throttle = Controllers.of(engine).throttle
        first = clock_out.MidiClock(engine, None, throttle)
        second = clock_out.MidiClock(engine, None, throttle)
        assert sys.getswitchinterval() == min(before, clock_out.SWITCH_S)
        first.close()
        assert sys.getswitchinterval() == min(before, clock_out.SWITCH_S)     # one still runs
        second.close()
    assert sys.getswitchinterval() == before


def test_playback_and_a_midi_clock_share_the_switch_interval_in_any_order():
    # playback (1 ms) and a clock (0.5 ms) each saved and restored it for themselves: a clock
    # closed while playing set the interval it found before playback under the decode thread
    import sys

    from livelatent.switching import hold_switch_interval, release_switch_interval
    before = sys.getswitchinterval()
    hold_switch_interval(0.0005)                     # a clock starts
    hold_switch_interval(0.001)                      # playback starts
    release_switch_interval(0.0005)                  # the clock closes while playing
    assert sys.getswitchinterval() == min(before, 0.001)
    release_switch_interval(0.001)                   # playback stops
    assert sys.getswitchinterval() == before


def test_a_midi_port_named_by_nothing_or_a_number_is_a_clear_error():
    """midi_in("") matched every port and connected to whichever came first; midi_in(1) said
    "TypeError: 'in <string>' requires string..." in a warning. Both are refused at once."""
    names = Controllers.names(Engine())
    for function in ("midi_in", "midi_clock"):
        for bad in ("", "  ", 1, b"nano"):
            with pytest.raises(ParameterError, match=f"{function}\\(.*a part of the port's name"):
                names[function](bad)


def test_a_loaded_set_listens_to_the_controllers_its_voices_read_within_their_range(
        tmp_path, monkeypatch):
    from livelatent.controls import evaluating
    monkeypatch.setenv("LIVELATENT_OSC_PORT", "0")
    with Engine(seed=1) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="faders")
        session.run_cell("v = voice(flute, cello, curve=osc('/fader/9', default=0.3, lo=0, hi=1)"
                         ".smooth(10))")
        session.run_cell("save()")
        session.close()
    with Engine(seed=1) as engine:                       # a new engine: nothing listens yet
        other = Session(engine, sets_root=tmp_path / "sets", set_name="again")
        other.run_cell("load('faders')")
        listener = Controllers.of(engine).listener
        assert listener is not None and "/fader/9" in listener.routes
        curve = next(iter(engine.intended().voices.values())).curve     # the range came back
        assert repr(curve) == "osc('/fader/9', default=0.3, lo=0.0, hi=1.0).smooth(10.0)"
        SimpleUDPClient("127.0.0.1", listener.port).send_message("/fader/9", 5.0)
        wait_for(lambda: "osc:/fader/9" in engine.intended().controls)
        score = engine.intended()
        with evaluating(score.controls, 0.0, score.clock.bpm):
            assert curve(1000.0) == 1.0                  # 5.0 sent, clipped by the curve itself
        other.close()


def test_an_xy_pad_is_two_controllers_of_one_address(two):
    """``osc("/xy", 2)``: two curves, one per argument of the messages to /xy; they rebuild
    from their code; a mapping takes them as two inputs."""
    from livelatent.session.records import rebuild_curve
    a, b = two
    with Engine(seed=1) as engine:
        names = namespace(engine)
        port = names["osc_listen"](port=0)
        x, y = names["osc"]("/xy", 2, default=0.5)
        assert repr(y) == "osc('/xy', 2, default=0.5)[1]" and repr(x) == "osc('/xy', default=0.5)"
        assert repr(rebuild_curve(repr(y), "test")) == repr(y)
        m = names["mapping"](inputs=[names["osc"]("/xy", 2), names["cc"](1)], name="pad")
        assert len(m.inputs) == 3
        SimpleUDPClient("127.0.0.1", port).send_message("/xy", [0.25, 0.75])
        wait_for(lambda: "osc:/xy#1" in engine.intended().controls)
        controls = engine.intended().controls
        assert controls["osc:/xy"].value(0.0) == 0.25 and controls["osc:/xy#1"].value(0.0) == 0.75
        with pytest.raises(CurveError, match="how many numbers"):
            names["osc"]("/xy", 0.5)


def test_a_script_rendered_offline_listens_to_no_controller(tmp_path, capsys):
    # values sent during `livelatent render` landed wherever the render was, with no journal:
    # two renders of one script differed
    from livelatent.cli import main
    port = free_udp_port()
    script = tmp_path / "faders.py"
    script.write_text(f"assert osc_listen({port}) == 0\n"
                      "voice(flute, cello, curve=osc('/f', lo=0, hi=1, default=0.25), name='f')\n")
    held = tmp_path / "held.py"
    held.write_text("voice(flute, cello, curve=0.25, name='f')\n")
    assert main(["render", str(script), "-o", str(tmp_path / "a.wav"), "--seconds", "1"]) == 0
    assert "listens to no controller (OSC, MIDI, Link): their curves hold their defaults" \
        in capsys.readouterr().err
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", port))                   # nothing took the port
    assert main(["render", str(held), "-o", str(tmp_path / "b.wav"), "--seconds", "1"]) == 0
    assert np.array_equal(sf.read(tmp_path / "a.wav")[0], sf.read(tmp_path / "b.wav")[0])


def test_an_address_clips_to_the_widest_range_of_its_curves(two):
    from livelatent.controls import evaluating
    # typing osc('/f', lo=0, hi=1) clipped what a playing osc('/f', lo=0, hi=100) received to 1
    a, b = two
    with Engine(seed=1) as engine:
        names = namespace(engine)
        port = names["osc_listen"](port=0)
        wide = names["osc"]("/f", lo=0, hi=100)
        narrow = names["osc"]("/f", lo=0, hi=1)
        voice(a, b, curve=wide / 100)
        SimpleUDPClient("127.0.0.1", port).send_message("/f", 50.0)
        wait_for(lambda: "osc:/f" in engine.intended().controls)
        score = engine.intended()
        assert score.controls["osc:/f"].value(0.0) == 50.0
        assert not any("clipped" in t for t in engine.events.texts())
        with evaluating(score.controls, 0.0, score.clock.bpm):
            assert wide(0.0) == 50.0 and narrow(0.0) == 1.0     # each curve clips to its own
        SimpleUDPClient("127.0.0.1", port).send_message("/f", 500.0)
        wait_for(lambda: engine.intended().controls["osc:/f"].value(0.0) == 100.0)
        assert any("outside [0.0, 100.0]; clipped to 100" in t for t in engine.events.texts())


def test_a_message_that_cannot_be_handled_loses_only_itself_not_its_bundle():
    # arrays nested 3000 deep made the warning's repr recurse past Python's limit, and the
    # whole bundle was lost with it, the good /f 0.7 too
    import struct

    def padded(text):
        data = text.encode() + b"\x00"
        return data + b"\x00" * (-len(data) % 4)
    nested = padded("/f") + padded("," + "[" * 3000 + "]" * 3000)
    good = padded("/f") + padded(",f") + struct.pack(">f", 0.7)
    bundle = b"#bundle\x00" + b"\x00" * 7 + b"\x01" + b"".join(
        struct.pack(">i", len(element)) + element for element in (nested, good))
    with Engine(seed=1) as engine:
        names = namespace(engine)
        port = names["osc_listen"](port=0)
        names["osc"]("/f")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.sendto(bundle, ("127.0.0.1", port))
        wait_for(lambda: "osc:/f" in engine.intended().controls)
        assert abs(engine.intended().controls["osc:/f"].value(0.0) - 0.7) < 1e-6


def test_an_on_note_function_raising_a_base_exception_leaves_the_notes_thread_playing(jack_server, two,
                                                                                       tmp_path):
    # a GeneratorExit (not an Exception) ended the note functions' thread with a traceback:
    # no note function ran again for the rest of the session, without a word
    with Engine(seed=2) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="gone")
        session.run_cell("v = voice(flute, cello, curve=0.5, name='v')\n"
                         "def odd(note, velocity):\n"
                         "    if note == 61:\n"
                         "        raise GeneratorExit('bye')\n"
                         "on_note(odd)\n"
                         "on_note(lambda note, velocity: v.set(gain=velocity))")
        out = _sender_connected(jack_server)
        out.send_message([0x90, 61, 64])
        wait_for(lambda: any("on_note: odd raised GeneratorExit: bye" in t for t in engine.events.texts()))
        out.send_message([0x90, 62, 127])
        wait_for(lambda: abs(engine.intended().voices[0].gain - 1.0) < 1e-9, timeout=2)
        session.close()
        out.close_port()
