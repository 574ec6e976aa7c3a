"""MIDI clock out: 24 ticks a beat for hardware, following the engine's beats as they are heard.

A thread sends Start, then a Clock tick (0xF8) at each 24th of a beat, timed on the wall clock:
it maps the listener's sample position to ``time.perf_counter()`` once, follows the engine's
tempo (tempo changes included) from there, and nudges the mapping by a small fraction of any
drift it sees (the audio device's clock and the machine's are not the same). It sleeps until
just before a tick and waits the last half millisecond actively, so ticks leave within a
fraction of a millisecond of their time; a tick further off (a slow tempo) is timed again
every 20 ms, so a faster tempo is followed at once, not after the slow tick. Stop (0xFC) when
it is closed. Nothing here changes the sound, so nothing is journaled.

A clock sent to a port by name (``midi_clock("TR-8")``) may find it later or lose it mid-set:
four times a second it looks for it (:class:`~.midi.PortWatch`), sends nothing while it is
gone, and sends Start again when it is back, so the machine follows from the next tick.
"""

from __future__ import annotations

import collections
import threading
import time

from ..optional import midi
from ..switching import hold_switch_interval, release_switch_interval
from .midi import PortWatch, open_midi_port

__all__ = ["MidiClock", "TICKS_PER_BEAT"]

TICKS_PER_BEAT = 24
_SPIN_S = 0.0005         # the last stretch before a tick is waited for actively
_FOLLOW = 0.01           # share of the measured drift corrected at each tick
_RECHECK_S = 0.02        # a tick further off than this is timed again then (the tempo may change)
SWITCH_S = 0.0005        # the interpreter's switch interval while a clock runs


class MidiClock:
    """Sends MIDI clock for ``engine`` on a port of its own (``livelatent-clock``) or on the
    input port whose name contains ``port``."""

    def __init__(self, engine, port: str | None, throttle):
        rtmidi, _ = midi()
        self.engine, self.throttle, self.port = engine, throttle, port
        self.sent = 0
        self.late = collections.deque(maxlen=10_000)   # seconds each tick left after its time
        self.out, name, problems = open_midi_port(rtmidi, "out", port, client="livelatent-clock",
                                                  virtual="clock", wait=True)
        if self.out is None:
            throttle.warn("midi:clock", f"midi_clock: cannot open a MIDI output ({problems})")
            return
        self._watch = None if port is None else PortWatch(
            self.out, port, name, who="midi_clock", meanwhile="no clock is sent to it",
            events=engine.events, throttle=throttle)
        if name is None:                     # not there yet: looked for as if gone
            throttle.warn("midi:clock", f"midi_clock: {problems}; the clock starts when it appears")
        self._stop = threading.Event()
        # a thread waiting for the interpreter's lock waits up to the switch interval (5 ms by
        # default): shorter while a clock runs, so a tick is never held back that long
        hold_switch_interval(SWITCH_S)
        self._thread = threading.Thread(target=self._run, name="livelatent-midi-clock", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self.out is None:
            return
        self._stop.set()
        self._thread.join(timeout=2.0)
        release_switch_interval(SWITCH_S)
        if self._thread.is_alive():     # held up in the MIDI system: deleting its port under it
            self.out = None             # could crash the process; it ends when that returns
            return
        self._send([0xFC])                                             # Stop
        out, self.out = self.out, None
        for finish in (out.close_port, out.delete):
            try:
                finish()
            except Exception:      # noqa: BLE001 - closing what may be gone already
                pass

    def _run(self) -> None:
        engine = self.engine
        rate = engine.sample_rate
        origin_wall, origin_sample = time.perf_counter(), engine.position
        watch = self._watch
        self._send([0xFA])                                             # Start
        clock = engine.heard().score.clock
        tick = int(clock.beats(origin_sample) * TICKS_PER_BEAT) + 1
        while not self._stop.is_set():
            clock = engine.heard().score.clock
            sample = float(clock.sample_at_beat(tick / TICKS_PER_BEAT))
            due = origin_wall + (sample - origin_sample) / rate
            wait = due - time.perf_counter()
            if wait > _RECHECK_S:            # a slow tempo: look again soon, for a faster one
                if self._stop.wait(_RECHECK_S):
                    return
                continue
            if wait > _SPIN_S and self._stop.wait(wait - _SPIN_S):
                return
            while time.perf_counter() < due:
                pass
            self._send([0xF8], due)
            # follow the listener slowly: the device's clock drifts from this machine's, and the
            # position it reports moves a device block at a time (averaged out here)
            if engine.playing:
                expected = origin_sample + (time.perf_counter() - origin_wall) * rate
                origin_sample += _FOLLOW * (engine.position - expected)
            tick += 1
            if watch is not None and watch.look():       # (between ticks) there again, or at last
                self._send([0xFA])                       # Start: it follows from the next tick,
                now = origin_sample + (time.perf_counter() - origin_wall) * rate   # the next one
                tick = max(tick, int(clock.beats(now) * TICKS_PER_BEAT) + 1)       # from now

    def _send(self, message: list, due: float | None = None) -> None:
        """Send ``message`` unless the port connected by name has gone (a tick: when due)."""
        out = self.out
        if out is None or (self._watch is not None and self._watch.gone):
            return
        try:
            out.send_message(message)
        except Exception as exc:       # noqa: BLE001 - the clock is not the music
            self.throttle.warn("midi:clock", f"midi_clock: {exc}")
            return
        if due is not None:
            self.late.append(time.perf_counter() - due)
            self.sent += 1
