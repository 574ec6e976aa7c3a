"""MIDI in: ``cc``, ``note_on`` and ``pitchbend`` curves, and ``on_note`` functions.

mido with python-rtmidi, through JACK MIDI when a JACK server runs (else ALSA). By default
livelatent opens an input port of its own, ``livelatent`` (connect a controller to it); or
``midi_in("nanoKONTROL")`` connects to the output port whose name contains that text. Control
changes, notes and pitch bend that a curve reads become controller values
(:class:`~.sender.ControlSender`, origin ``midi``: at most one journaled batch a step); an
``on_note`` function runs in a batch of its own (origin ``midi:note``), its changes journaled as
data. A message that cannot be read, or a function that raises, gives a rate-limited warning;
nothing raises into the audio path or the REPL.
"""

from __future__ import annotations

import os
import threading

from ..optional import midi_backends
from .sender import ControlSender

__all__ = ["MidiListener", "VIRTUAL_PORT"]

VIRTUAL_PORT = "livelatent"


class MidiListener:
    """An open MIDI input feeding ``engine``: the routed controllers, and note functions."""

    def __init__(self, engine, port: str | None, throttle):
        self.engine, self.throttle = engine, throttle
        self.routes: set[str] = set()
        self.note_functions: list = []           # (fn, note or None, channel or None)
        self.received = 0
        self.sender = ControlSender(engine, "midi", throttle)
        self.port = None
        self.name = None
        self._lock = threading.Lock()
        os.environ.setdefault("JACK_NO_START_SERVER", "1")      # never start a JACK server here
        problems = []
        for backend in midi_backends():               # JACK MIDI, else ALSA
            try:
                self._open(backend, port)
                return
            except LookupError as exc:
                problems.append(str(exc))
            except Exception as exc:   # noqa: BLE001 - no such MIDI system here: try the next
                problems.append(f"{type(exc).__name__}: {exc}")
        throttle.warn("midi:open", f"midi: cannot open a MIDI input ({'; '.join(problems)}); cc() "
                                   f"curves hold their defaults")

    def _open(self, backend, port: str | None) -> None:
        if port is None:
            self.port = backend.open_input(VIRTUAL_PORT, virtual=True, callback=self._receive)
            self.name = VIRTUAL_PORT
            return
        names = backend.get_input_names()
        found = [n for n in names if port in n]
        if not found:
            raise LookupError(f"no MIDI output port named like {port!r} (there are: "
                              f"{', '.join(names) or 'none'})")
        self.port = backend.open_input(found[0], callback=self._receive)
        self.name = found[0]

    @property
    def listening(self) -> bool:
        return self.port is not None

    def close(self) -> None:
        if self.port is not None:
            try:
                self.port.close()
            except Exception:       # noqa: BLE001
                pass
            self.port = None
        self.sender.close()

    def _receive(self, message) -> None:          # rtmidi's thread
        try:
            self.received += 1
            kind = message.type
            channel = getattr(message, "channel", 0) + 1
            if kind == "control_change":
                self._set(f"cc:{channel}:{message.control}", message.value / 127.0)
            elif kind in ("note_on", "note_off"):
                velocity = message.velocity if kind == "note_on" else 0
                self._set(f"note:{channel}:{message.note}", velocity / 127.0)
                if velocity > 0:
                    self._notes(message.note, velocity, channel)
            elif kind == "pitchwheel":
                self._set(f"bend:{channel}", max(-1.0, message.pitch / 8191.0))
        except Exception as exc:      # noqa: BLE001 - a bad message must not stop the listener
            self.throttle.warn("midi:message", f"midi: a message could not be read ({exc})")

    def _set(self, name: str, value: float) -> None:
        if name in self.routes:
            self.sender.set(name, value)

    def _notes(self, note: int, velocity: int, channel: int) -> None:
        for fn, wanted_note, wanted_channel in list(self.note_functions):
            if (wanted_note is None or wanted_note == note) and (wanted_channel is None or
                                                                  wanted_channel == channel):
                try:
                    with self.engine.batch(origin="midi:note", discard_on_error=True):
                        fn(note, velocity / 127.0)
                except Exception as exc:   # noqa: BLE001 - the performer's function may raise
                    self.throttle.warn(f"midi:fn:{id(fn)}", f"on_note: {getattr(fn, '__name__', fn)} "
                                                            f"raised {type(exc).__name__}: {exc}")
