"""Ableton Link: livelatent's beats follow a shared session's tempo and phase.

A :class:`LinkFollower` joins the session (the ``aalink`` package, on a thread of its own that
runs the event loop aalink wants) and compares, every few milliseconds, the session's beat with
the engine's beat *as heard*: the audio process stamps each block it plays with the time its
first frame reaches the output (PortAudio's figure, on the clock Link keeps), and a
:class:`HeardClock` turns those stamps into "which engine sample is heard at this time". When
the session's tempo changed, or the phases (beats modulo the quantum) are apart by more than
:data:`PHASE_TOLERANCE_S`, it sends one :class:`~livelatent.engine.commands.SyncTempo` (origin
``link``): from where it lands, the engine's tempo is the session's and its beat the session's
phase. That command is journaled like any other, so a replay plays the same beats with no
network. A tempo the performer types (``tempo(90)``) is sent to the session. Leaving the
session keeps the last tempo.

The engine's beat count is its own (bars go on counting); only the phase within a quantum
follows the session, as Link intends.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time

from ..engine.audio_process import STAMP_CLOCK
from ..engine.commands import SyncTempo
from ..engine.writers import Batch
from ..errors import ParameterError
from ..optional import aalink

__all__ = ["LinkFollower", "HeardClock", "PHASE_TOLERANCE_S"]

POLL_S = 0.005               # how often the session and the engine are compared
PHASE_TOLERANCE_S = 0.0005   # phases closer than this are left alone (a correction re-decodes)
STAMP_WINDOW_S = 2.0         # stamps kept to find the device's timing
JUMP_S = 0.02                # a stamp this much later than the others: the device restarted


class HeardClock:
    """Engine samples and the time they are heard, from the device's stamps.

    A block's callback can be late, never early, so the earliest mapping seen over the last
    :data:`STAMP_WINDOW_S` seconds is the best one; a mapping much later than that means the
    stream started again (a lost device came back) and the older ones are dropped.
    """

    def __init__(self, sample_rate: int):
        self.rate = float(sample_rate)
        self._offsets: collections.deque = collections.deque()    # (ns, ns - sample's time)

    def add(self, sample: float, ns: int) -> None:
        offset = ns - sample * 1e9 / self.rate
        offsets = self._offsets
        if offsets and offset - min(o for _, o in offsets) > JUMP_S * 1e9:
            offsets.clear()
        offsets.append((ns, offset))
        while offsets and offsets[0][0] < ns - STAMP_WINDOW_S * 1e9:
            offsets.popleft()

    @property
    def ready(self) -> bool:
        return bool(self._offsets)

    def sample_at(self, ns: int) -> float:
        """The engine sample heard at ``ns`` (nanoseconds of ``STAMP_CLOCK``)."""
        return (ns - min(o for _, o in self._offsets)) * self.rate / 1e9


def now_ns() -> int:
    return time.clock_gettime_ns(STAMP_CLOCK)


class LinkFollower:
    """The engine in a Link session, until :meth:`leave`. ``peers``: the others there."""

    def __init__(self, engine, quantum: float, throttle):
        self._aalink = aalink()
        self.engine, self.quantum, self.throttle = engine, float(quantum), throttle
        self.peers = 0
        self.corrections = 0            # SyncTempo commands sent
        self.heard = HeardClock(engine.sample_rate)
        self._link = None
        self._sent_bpm = engine.intended().clock.bpm
        self._known_bpm: float | None = None          # the session's tempo as last seen
        self._landed = 0                # where the last correction landed
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._failure: str | None = None
        self._thread = threading.Thread(target=self._run, name="livelatent-link", daemon=True)
        self._thread.start()
        self._ready.wait(10.0)
        if self._failure is not None:
            raise ParameterError(f"link(): cannot join a Link session ({self._failure})")

    # -- what the performer sees ---------------------------------------------------------------
    @property
    def joined(self) -> bool:
        return self._link is not None and not self._stop.is_set()

    @property
    def tempo(self) -> float:
        return self._known_bpm if self._known_bpm is not None else self._sent_bpm

    def heard_beat(self, ns: int | None = None) -> tuple[int, float] | None:
        """(nanoseconds, beat): the engine's beat heard at ``ns`` (default: now) on the clock
        Link keeps; None while nothing plays."""
        ns = now_ns() if ns is None else int(ns)
        if not self.heard.ready:
            return None
        return ns, float(self.engine.intended().clock.beats(self.heard.sample_at(ns)))

    def leave(self) -> None:
        """Leave the session; the engine keeps the last tempo."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    def __repr__(self) -> str:
        if not self.joined:
            return "<link: left the session>"
        peers = f"{self.peers} peer{'s' * (self.peers != 1)}"
        return f"<link: {peers}, {self.tempo:g} bpm, quantum {self.quantum:g}>"

    # -- the session's thread ------------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:          # noqa: BLE001 - the clock is not the music
            if not self._ready.is_set():
                self._failure = str(exc) or type(exc).__name__
                self._ready.set()
            else:
                self.throttle.warn("link", f"link: stopped following the session ({exc})")

    async def _main(self) -> None:
        link = self._aalink.Link(self._sent_bpm)
        link.quantum = self.quantum
        link.enabled = True
        self._link = link
        self._ready.set()
        try:
            while not self._stop.is_set():
                try:
                    self._follow(link)
                except Exception as exc:   # noqa: BLE001 - one bad poll never stops the clock
                    self.throttle.warn("link", f"link: {type(exc).__name__}: {exc}")
                await asyncio.sleep(POLL_S)
        finally:
            link.enabled = False

    def _follow(self, link) -> None:
        engine = self.engine
        self.peers = int(link.num_peers)
        playback = engine.playback
        connection = playback.connection if playback is not None else None
        stamp = connection.heard_stamp() if connection is not None else None
        if stamp is not None:
            self.heard.add(*stamp)
        session_bpm = float(link.tempo)
        clock = engine.intended().clock
        if self._known_bpm is None or abs(session_bpm - self._known_bpm) > 1e-9:
            self._known_bpm = session_bpm                 # the session's (a peer's) tempo
        elif abs(clock.bpm - self._sent_bpm) > 1e-9:      # the performer's: tell the session
            link.tempo = clock.bpm
            # Link keeps a session between 20 and 999 bpm (the engine goes from 1 to 1000): the
            # session's tempo is what the engine will follow, so say so when it differs
            session_bpm = float(link.tempo)
            if abs(session_bpm - clock.bpm) > 1e-6:
                self.throttle.warn("link:tempo", f"link: a Link session's tempo goes from 20 to 999 "
                                                 f"bpm; tempo({clock.bpm:g}) plays at "
                                                 f"{session_bpm:g} bpm while linked")
            self._sent_bpm, self._known_bpm = clock.bpm, session_bpm
        if not self.heard.ready or not engine.playing:
            return                                        # nothing heard: no phase to follow
        now = now_ns()
        link_beat, link_ns = float(link.beat), link.time.total_seconds() * 1e9
        rate = engine.sample_rate
        heard_now = self.heard.sample_at(now)
        # compare where the engine's clock already has the last correction in it
        sample = max(int(round(heard_now)), self._landed)
        at_ns = now + (sample - heard_now) * 1e9 / rate
        session_beat = link_beat + (at_ns - link_ns) * session_bpm / 60e9
        engine_beat = float(clock.beats(sample))
        apart = (session_beat - engine_beat + self.quantum / 2) % self.quantum - self.quantum / 2
        if abs(clock.bpm_at(sample) - session_bpm) < 1e-9 and \
                abs(apart) * 60.0 / session_bpm < PHASE_TOLERANCE_S:
            return
        command = SyncTempo(session_bpm, engine_beat + apart, sample)
        landed = engine.send(Batch(engine, "link", commands=[command]))
        self._sent_bpm = session_bpm
        self.corrections += 1
        if landed is not None:
            self._landed = landed
