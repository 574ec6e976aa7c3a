"""Ableton Link: livelatent's beats follow a shared session's tempo and phase, and what
arrives from the session is journaled (a SyncTempo command), so a set replays exactly.

The two-process test runs livelatent's REPL and a small aalink peer (link_peer.py) in one
private network namespace with only loopback (private_net.sh): Link sends multicast on every
interface, and nothing may leave this machine.
"""

import json
import os
import shutil
import subprocess
import time

import numpy as np
import pytest

from livelatent import Engine, ParameterError
from livelatent.controllers import Controllers
from livelatent.controllers.link import JUMP_S, HeardClock
from livelatent.engine.clock import Clock
from livelatent.engine.commands import SyncTempo
from livelatent.session.records import decode_command, encode_command

from replutil import ROOT


def test_a_sync_lands_the_sessions_tempo_and_phase_wherever_it_lands():
    engine = Engine(tempo=100)
    rate = engine.sample_rate
    command = SyncTempo(bpm=120.0, beat=10.25, sample=44100)
    engine.render_array(0.5)
    landed = engine.submit(command)
    assert 0 < landed < 44100
    clock = engine.intended().clock
    assert clock.bpm == 120.0
    # beat 10.25 falls on sample 44100 on the new line, even though it landed elsewhere
    assert clock.beats(max(landed, 44100) + rate) == pytest.approx(
        10.25 + (max(landed, 44100) + rate - 44100) * 2 / rate)
    # and before it landed the old clock still holds
    assert clock.beats(landed - 1) == pytest.approx(Clock(rate, 100.0).beats(landed - 1))


def test_a_sync_is_journaled_as_data():
    command = SyncTempo(bpm=91.5, beat=3.75, sample=123456)
    data = encode_command(command, store=None)
    assert data == {"op": "sync", "bpm": 91.5, "beat": 3.75, "sample": 123456}
    assert decode_command(data, engine=None, store=None, where="test") == command


def test_the_heard_clock_keeps_the_earliest_stamp_and_forgets_a_restart():
    heard = HeardClock(1000)
    heard.add(0, 5_000_000_000)                 # sample 0 heard at 5 s
    heard.add(1000, 6_000_400_000)              # a callback 0.4 ms late
    assert heard.sample_at(7_000_000_000) == pytest.approx(2000)
    later = 6_000_000_000 + int(2 * JUMP_S * 1e9)
    heard.add(1000, later)                      # the stream started again, later
    assert heard.sample_at(later + 1_000_000_000) == pytest.approx(2000)


def test_link_arguments_are_checked():
    names = Controllers.names(Engine())
    for bad in (0, 100, float("nan"), "4", True):
        with pytest.raises(ParameterError, match="quantum"):
            names["link"](bad)
    assert Controllers.names(Engine(), replaying=True)["link"]() is None
    offline = Engine()
    assert Controllers.names(offline)["link"]() is None          # a render has no "now" to share
    assert any("renders offline" in text for text in offline.events.texts("warning"))


class _ClampingLink:
    """A stand-in for aalink's Link (no network): it keeps the tempo between 20 and 999 bpm as
    Link does, and no peer ever joins."""

    def __init__(self, bpm):
        self._tempo, self.quantum, self.enabled, self.num_peers, self.beat = bpm, 4, False, 0, 0.0

    @property
    def tempo(self):
        return self._tempo

    @tempo.setter
    def tempo(self, bpm):
        self._tempo = min(max(bpm, 20.0), 999.0)


def test_a_tempo_link_cannot_share_says_what_the_session_plays(monkeypatch):
    """tempo(5) while linked: Link keeps sessions from 20 to 999 bpm, so the session (and the
    engine, following it) goes to 20; that used to happen without a word."""
    import types

    from livelatent.controllers import link as link_module
    from livelatent.controllers.throttle import Throttle
    from livelatent.engine.commands import SetTempo
    monkeypatch.setattr(link_module, "aalink", lambda: types.SimpleNamespace(Link=_ClampingLink))
    engine = Engine(tempo=120)
    follower = link_module.LinkFollower(engine, 4.0, Throttle(engine.events, period=0.0))
    try:
        for asked, plays in ((5.0, 20.0), (1000.0, 999.0), (90.0, 90.0)):
            engine.submit(SetTempo(asked))
            deadline = time.monotonic() + 5
            while follower._link.tempo != plays:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            time.sleep(0.05)
            assert follower.tempo == plays
        warned = engine.events.texts("warning")
        assert sum("tempo(5) plays at 20 bpm while linked" in t for t in warned) == 1, warned
        assert sum("tempo(1000) plays at 999 bpm" in t for t in warned) == 1, warned
        assert not any("tempo(90)" in t for t in warned)
    finally:
        follower.leave()


def _private_network_available() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    done = subprocess.run(["unshare", "-n", "bash", str(ROOT / "tests" / "private_net.sh"), "true"],
                          capture_output=True)
    return done.returncode == 0


@pytest.fixture
def private_network():
    if not _private_network_available():
        message = "no private network namespace here (unshare -n needs root and iproute2)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI runs as root, so it must not skip this")
        pytest.skip(message)


def _phase_apart_ms(ours_path, peer_log) -> np.ndarray:
    ours = np.array(json.loads(ours_path.read_text()), dtype=np.float64)
    assert len(ours) >= 100
    peer = np.loadtxt(peer_log)
    beat = np.interp(ours[:, 0], peer[:, 0], peer[:, 1])
    bpm = np.interp(ours[:, 0], peer[:, 0], peer[:, 2])
    apart = (ours[:, 1] - beat + 2.0) % 4.0 - 2.0
    return apart * 60.0 / bpm * 1000.0


def test_two_processes_share_a_link_session_and_the_set_replays_it(private_network, jack_server,
                                                                   tmp_path):
    """livelatent and an aalink peer join one session: their beat phases agree within 2 ms,
    the peer's tempo change lands in livelatent and its journal, ``tempo()`` reaches the peer,
    leaving keeps the tempo, and ``livelatent render`` of the set equals what JACK heard."""
    from livelatent.session.performance import read_performance
    from replutil import heard_is_rendered, last_underruns, recorded_repl

    sets, commands, peer_log = tmp_path / "sets", tmp_path / "peer.commands", tmp_path / "peer.log"
    commands.write_text("")
    env = {"LINK_PEER_COMMANDS": str(commands), "LINK_PEER_LOG": str(peer_log),
           "LINK_PEER_PYTHON": os.sys.executable}

    def tell_peer(line):
        with open(commands, "a") as f:
            f.write(line + "\n")

    def sample_beats(path):
        repl.run(f"S = [(L.heard_beat(), time.sleep(0.005))[0] for _ in range(200)]; "
                 f"json.dump(S, open({str(path)!r}, 'w'))")

    def shown_tempo():
        return float(repl.run("print(f'<{engine.tempo:.3f}>')").split("<")[-1].split(">")[0])

    try:
        with recorded_repl(jack_server, ["--blocksize", "1024", "--set", "linked"], sets, env=env,
                           wrapper=["unshare", "-n", "bash", str(ROOT / "tests" / "private_net.sh")]) \
                as (repl, recorder):
            repl.run("import json, time")
            repl.run("v = voice(flute, cello, curve=sine(2), name='v')")
            repl.run("L = link()")
            deadline = time.monotonic() + 20
            while "1 peer" not in repl.run("L"):
                assert time.monotonic() < deadline, repl.text[-2000:]
                repl.pump(0.5)
            repl.pump(1.5)
            sample_beats(tmp_path / "joined.json")
            tell_peer("tempo 90")                        # a peer changes the tempo
            repl.pump(1.5)
            assert shown_tempo() == pytest.approx(90.0, abs=1e-3)
            sample_beats(tmp_path / "after.json")
            repl.run("tempo(100)")                       # the performer changes the session's
            repl.pump(1.5)
            repl.run("unlink()")                         # and leaves: the tempo stays
            tell_peer("tempo 130")
            repl.pump(1.0)
            assert shown_tempo() == pytest.approx(100.0, abs=1e-3)
            assert repl.exit() == 0, repl.text[-2000:]
            captured = recorder.stop()
    finally:
        tell_peer("end")
    assert "error:" not in repl.text and "Traceback" not in repl.text, repl.text[-3000:]
    peer = np.loadtxt(peer_log)
    assert np.any(np.abs(peer[:, 2] - 100.0) < 1e-3)             # tempo() reached the peer
    for taken in ("joined.json", "after.json"):
        apart = _phase_apart_ms(tmp_path / taken, peer_log)
        assert np.abs(apart).max() < 2.0, (taken, apart)
    performance = read_performance(sets / "linked" / "journal.jsonl")
    synced = [c for b in performance.batches if b.origin == "link" for c in b.commands]
    assert any(c["op"] == "sync" and abs(c["bpm"] - 90.0) < 1e-3 for c in synced), synced
    heard_is_rendered(captured, sets / "linked", tmp_path / "linked.wav", seconds=5, late=recorder.late_spans)
    assert last_underruns(repl.text) == 0
