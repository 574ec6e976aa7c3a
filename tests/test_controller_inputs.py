"""What controllers are given: listeners that survive a bad address, functions and senders
typed again that replace the old ones, OSC arguments that are not numbers, a clock that follows
a tempo change at once, and numbers beyond float's range: each a clear error or a warning."""

import time

import pytest
from pythonosc.udp_client import SimpleUDPClient

from livelatent import CurveError, Engine, ParameterError
from livelatent.controllers import Controllers
from livelatent.controls import evaluating
from livelatent.session.namespace import namespace
from test_controllers import wait_for


def test_an_osc_default_outside_its_range_and_huge_numbers_are_clear_errors():
    names = namespace(Engine())
    with pytest.raises(ParameterError, match="must lie in the range"):
        names["osc"]("/f", default=5, lo=0, hi=1)
    from livelatent.controllers import Controllers as Built                 # a replay of older
    old = Built.names(Engine(), replaying=True)["osc"]("/cut", lo=200, hi=8000)   # code takes it
    assert repr(old) == "osc('/cut', default=0.0, lo=200.0, hi=8000.0)" and old(0.0) == 0.0
    for call in (lambda: names["osc"]("/f", default=10**400), lambda: names["osc"]("/f", lo=10**400),
                 lambda: names["cc"](7, default=10**400), lambda: names["pitchbend"](default=10**400),
                 lambda: names["osc_send"](rate=10**400), lambda: names["osc_send"](rate=True),
                 lambda: names["link"](10**400)):
        with pytest.raises((ParameterError, CurveError)):
            call()


def test_osc_send_to_a_name_no_resolver_takes_is_a_clear_error_and_broadcast_is_sent():
    import socket
    # the first was a raw UnicodeError; the second repeated "PermissionError: [Errno 13]"
    with Engine(seed=1) as engine:
        names = namespace(engine)
        with pytest.raises(ParameterError, match="not an address"):
            names["osc_send"]("a" * 300, 9000)
        sender = names["osc_send"]("127.0.0.1", 9, rate=50)     # (a LAN's broadcast address too)
        assert sender.client._sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST)


def test_osc_listen_on_a_bad_host_or_a_busy_port_keeps_the_listener_that_works():
    import socket
    with Engine(seed=1) as engine:
        names = namespace(engine)
        port = names["osc_listen"](port=0)
        curve = names["osc"]("/f", default=0.3)
        for host in ("a" * 300, "0.0.0.0\x00"):
            with pytest.raises(ParameterError, match="not an address"):
                names["osc_listen"](port=port, host=host)
        busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        busy.bind(("127.0.0.1", 0))
        try:
            assert names["osc_listen"](port=busy.getsockname()[1]) == 0
        finally:
            busy.close()
        assert any("still listening on 127.0.0.1:" in t for t in engine.events.texts())
        listener = Controllers.of(engine).listener
        assert listener.listening and listener.port == port
        SimpleUDPClient("127.0.0.1", port).send_message("/f", 0.9)
        wait_for(lambda: "osc:/f" in engine.intended().controls)
        score = engine.intended()
        with evaluating(score.controls, 0.0, score.clock.bpm):
            assert curve(1000.0) == pytest.approx(0.9)


def test_on_note_and_osc_send_typed_again_replace_the_last_one():
    with Engine(seed=1) as engine:
        names = namespace(engine)
        controllers = Controllers.of(engine)
        hits = []
        for _ in range(3):                           # a cell run three times
            names["on_note"](lambda note, velocity: hits.append(note), note=64)
        names["on_note"](lambda note, velocity: None)                   # any note: another one

        def accent(note, velocity):
            pass
        names["on_note"](accent, note=63)
        names["on_note"](accent, note=64)                 # edited to another note: moved there
        assert [(n, c) for _, n, c in controllers.midi.note_functions] == [
            (64, None), (None, None), (64, None)]
        names["on_note"](None, note=64)
        assert [(n, c) for _, n, c in controllers.midi.note_functions] == [(None, None)]
        with pytest.raises(ParameterError, match="or None"):
            names["on_note"](5, note=64)
        for _ in range(3):
            names["osc_send"](port=9, rate=5)
        names["osc_send"](port=10, rate=5)
        assert sorted(s.port for s in controllers.senders) == [9, 10]


def test_an_osc_colour_or_midi_argument_is_not_taken_as_a_value():
    import socket
    from pythonosc.osc_message_builder import OscMessageBuilder
    with Engine(seed=1) as engine:
        names = namespace(engine)
        port = names["osc_listen"](port=0)
        curve = names["osc"]("/f", default=0.3)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for value, tag in ((0x01020304, "r"), ((0, 0x90, 60, 100), "m")):
            message = OscMessageBuilder("/f")
            message.add_arg(value, tag)
            sock.sendto(message.build().dgram, ("127.0.0.1", port))
        good = OscMessageBuilder("/f")
        good.add_arg(7, "i")
        sock.sendto(good.build().dgram, ("127.0.0.1", port))
        sock.close()
        wait_for(lambda: "osc:/f" in engine.intended().controls)
        score = engine.intended()
        with evaluating(score.controls, 0.0, score.clock.bpm):
            assert curve(1000.0) == 7.0
        assert any("must be a finite number" in t for t in engine.events.texts())


def test_an_osc_value_beyond_any_controllers_is_skipped_and_the_voice_keeps_following():
    # a double of 1e308 overflowed the curve reading it: the voice went back to its last good
    # curve, a constant, and no later value moved it again
    import socket
    from pythonosc.osc_message_builder import OscMessageBuilder
    with Engine(seed=1) as engine:
        names = namespace(engine)
        port = names["osc_listen"](port=0)
        g = names["osc"]("/g", default=0.3)
        v = names["voice"](names["flute"], names["cello"], curve=g * 10 - 2.5)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

        def send(value):
            message = OscMessageBuilder("/g")
            message.add_arg(value, "d")
            sock.sendto(message.build().dgram, ("127.0.0.1", port))
        send(0.29)
        wait_for(lambda: "osc:/g" in engine.intended().controls)
        for value in (1e308, -1e31):         # each heard for a while, when it was taken
            send(value)
            time.sleep(0.2)
            engine.render_array(0.5)
        send(0.31)
        wait_for(lambda: engine.intended().controls["osc:/g"].changes[-1][1] == 0.31)
        engine.render_array(0.5)
        sock.close()
        assert v.curve is not None and "osc" in repr(v.curve), v.curve      # still the fader's
        texts = engine.events.texts()
        assert any("sent 1e+308; a value must be within +-1e+30" in t for t in texts), texts
        assert not any("reverted" in t for t in texts), texts


def test_a_midi_clock_follows_a_faster_tempo_at_once_not_after_a_slow_tick(monkeypatch):
    """From 4 to 140 bpm: ticks at the new tempo from the change on, not a second of silence
    and then every missed tick at once."""
    import threading
    import numpy as np
    from livelatent.controllers import clock_out
    sent = []

    class Out:
        def send_message(self, message):
            sent.append((time.perf_counter(), message[0]))
        close_port = delete = lambda self: None
    monkeypatch.setattr(clock_out, "open_midi_port", lambda *args, **kwargs: (Out(), "clock", None))
    with Engine(seed=1) as engine:
        names = namespace(engine)
        names["tempo"](4)
        stop = threading.Event()

        def pace():                      # the engine's position moves at real time
            began, done = time.perf_counter(), 0
            while not stop.is_set():
                engine.render_array(samples=512)
                done += 512
                time.sleep(max(0.0, began + done / engine.sample_rate - time.perf_counter()))
        pacer = threading.Thread(target=pace)
        pacer.start()
        try:
            time.sleep(0.2)
            clock = names["midi_clock"]()
            time.sleep(0.3)
            changed = time.perf_counter()
            names["tempo"](140)
            time.sleep(1.0)
            clock.close()
        finally:
            stop.set()
            pacer.join()
    ticks = np.array([t - changed for t, m in sent if m == 0xF8 and t > changed])
    # 56 a second at 140 bpm; before, the clock waited out the slow tick (about 0.6 s), then
    # sent every tick it had missed at once
    assert ticks.size >= 35 and ticks[0] < 0.3, ticks[:5]
    assert (np.diff(ticks) < 0.002).sum() <= 3, np.diff(ticks)[:10]


def test_midi_that_cannot_open_says_so_in_one_line_without_the_c_libraries_own(tmp_path):
    # libjack's "Cannot connect to server socket" and libasound's "ALSA lib seq_hw.c..." lines
    # reached the terminal, and the warning spoke of cc() curves when on_note was typed
    import os
    import subprocess
    import sys
    code = ("from livelatent import Engine\nfrom livelatent.events import Printer\n"
            "from livelatent.session.namespace import namespace\n"
            "with Engine() as e, Printer(e.events):\n"
            "    namespace(e)['on_note'](lambda n, v: None, note=36)\n")
    env = dict(os.environ, JACK_DEFAULT_SERVER="nobody-here", JACK_NO_START_SERVER="1")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "ALSA lib" not in done.stderr and "Cannot connect to server" not in done.stderr, done.stderr
    if "cannot open a MIDI input" in done.stderr:          # (a machine with ALSA MIDI opens it)
        assert "on_note functions do not run" in done.stderr
