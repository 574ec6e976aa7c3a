"""MIDI in: ``cc``, ``note_on`` and ``pitchbend`` curves, and ``on_note`` functions.

python-rtmidi's ports, read by mido, through JACK MIDI when a JACK server runs (else ALSA). By default
livelatent opens an input port of its own, ``livelatent`` (connect a controller to it); or
``midi_in("nanoKONTROL")`` connects to the output port whose name contains that text. Control
changes, notes and pitch bend that a curve reads become controller values
(:class:`~.sender.ControlSender`, origin ``midi``: at most one journaled batch a step); an
``on_note`` function runs in a batch of its own (origin ``midi:note``), its changes journaled as
data. A message that cannot be read, or a function that raises, gives a rate-limited warning;
nothing raises into the audio path or the REPL. A function still running after
:data:`RUN_LIMIT_S` (a loop that never ends would hold up every later note's functions) is
interrupted (:class:`~livelatent.deadline.Deadline`) and dropped, saying so.

A controller connected by name (``midi_in("nanoKONTROL")``) can be plugged in later, or
unplugged mid-set: four times a second the listener looks for its port; when it has gone, it says so (curves hold their
last values), and when a port of that name is back, it connects to it again and says so. (An
unplug shorter than that, which the MIDI system does not report, can go unnoticed: type
``midi_in`` again.) Notes that waited more than :data:`STALE_NOTE_S` behind a slow function are
not played late, all at once: they are dropped, saying so.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time

from ..deadline import Deadline
from ..errors import described
from ..optional import midi
from .sender import ControlSender

__all__ = ["MidiListener", "PortWatch", "open_midi_port", "VIRTUAL_PORT"]

VIRTUAL_PORT = "livelatent"
POLL_S = 0.001           # how often the MIDI queue is read when it is empty
QUEUE_SIZE = 1 << 16     # messages rtmidi holds for us between two reads (its default is 1024)
RUN_LIMIT_S = 10.0       # an on_note function still running after this long is interrupted
CHECK_PORT_S = 0.25      # how often a port connected by name is looked for
STALE_NOTE_S = 1.0       # a note that waited longer than this for its functions is dropped


_QUIET = threading.Lock()      # one open at a time has file descriptor 2 pointed elsewhere


@contextlib.contextmanager
def _c_lines_dropped():
    """What C libraries write straight to file descriptor 2 meanwhile (libjack's "Cannot connect
    to server socket", libasound's "ALSA lib seq_hw.c..." when there is no such system) is
    dropped instead of reaching the performer's terminal: the warning says it in one line. (For
    the milliseconds of an open, another thread's stderr is dropped too.)"""
    with _QUIET:
        saved = nowhere = None
        try:
            if sys.stderr is not None:
                sys.stderr.flush()
            saved = os.dup(2)
            nowhere = os.open(os.devnull, os.O_WRONLY)
            os.dup2(nowhere, 2)
        except (OSError, ValueError):           # no stderr to keep apart: it stays as it is
            for fd in (saved, nowhere):
                if fd is not None:
                    os.close(fd)
            saved = None
        try:
            yield
        finally:
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)
                os.close(nowhere)


def open_midi_port(rtmidi, direction: str, port: str | None, *, client: str, virtual: str,
                   wait: bool = False):
    """A MIDI port of livelatent's own (``virtual``, when ``port`` is None) or connected to the
    port whose name contains ``port``: an input (``direction="in"``) or an output, through JACK
    MIDI when a JACK server runs, else ALSA, never starting a JACK server. Returns (the rtmidi
    object, its port's name, None), or (None, None, why not). With ``wait``, a port not there
    yet gives (the rtmidi object of the first MIDI system that works, unconnected, None, why)."""
    with _c_lines_dropped():
        return _open_midi_port(rtmidi, direction, port, client=client, virtual=virtual, wait=wait)


def _open_midi_port(rtmidi, direction: str, port: str | None, *, client: str, virtual: str,
                    wait: bool = False):
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    # (an input's queue holds a burst of thousands of messages: rtmidi's own holds 1024)
    make, other, options = ((rtmidi.MidiIn, "output", {"queue_size_limit": QUEUE_SIZE})
                            if direction == "in" else (rtmidi.MidiOut, "input", {}))
    problems = []
    waiting = None                       # with ``wait``: the first system's object, unconnected
    for api in (rtmidi.API_UNIX_JACK, rtmidi.API_LINUX_ALSA):
        try:
            opened = make(api, name=client, **options)
        except Exception as exc:   # noqa: BLE001 - no such MIDI system here: try the next
            problems.append(f"{type(exc).__name__}: {exc}")
            continue
        try:
            if port is None:
                opened.open_virtual_port(virtual)
                return opened, virtual, None
            names = opened.get_ports()
            chosen, problem = port_named(names, port, what=f"MIDI {other} port")
            if chosen is None:
                raise LookupError(problem)
            opened.open_port(names.index(chosen))
            if waiting is not None:
                waiting.delete()
            return opened, chosen, None
        except Exception as exc:   # noqa: BLE001 - said below, with the other system's answer
            if wait and waiting is None and isinstance(exc, LookupError):
                waiting = opened
            else:
                opened.delete()
            problems.append(str(exc) if isinstance(exc, LookupError) else f"{type(exc).__name__}: {exc}")
    return waiting, None, "; ".join(problems)


def port_named(names: list, wanted: str, previous: str | None = None, *, what: str = "port"):
    """``(name, None)``: the port of ``names`` that ``wanted`` names (``previous``, the port
    connected before, when it is back; else one whose name is ``wanted`` or the only one whose
    name holds it), or ``(None, why)``. Two ports holding it are not guessed between: the first
    was taken, and when it was unplugged the other took over its controls."""
    if previous in names:
        return previous, None
    if wanted in names:                  # (two of one name: no name tells them apart)
        return wanted, None
    found = [n for n in names if wanted in n]
    if len(found) == 1:
        return found[0], None
    if not found:
        return None, f"no {what} named like {wanted!r} (there are: {', '.join(names) or 'none'})"
    return None, (f"{wanted!r} names {len(found)} {what}s ({', '.join(found)}): give more of the "
                  f"name of the one meant")


class PortWatch:
    """A MIDI port connected by name (``wanted``), which may be plugged in later or unplugged
    mid-set. Every :data:`CHECK_PORT_S`, :meth:`look` (called by the one thread that uses the
    rtmidi object ``port`` then, or under a lock they share) says when the port has gone and,
    when a port of that name is there again, connects ``port`` to it and says so. ``name`` is
    None until it was first found."""

    def __init__(self, port, wanted: str, name: str | None, *, who: str, meanwhile: str, events,
                 throttle):
        self.port, self.wanted, self.name = port, wanted, name
        self.gone = name is None
        self._who, self._meanwhile = who, meanwhile       # "midi", "its curves hold ..."
        self._events, self._throttle = events, throttle
        self._next_look = time.monotonic() + CHECK_PORT_S

    def look(self) -> bool:
        """Look for the port, if it is time: whether it was connected just now."""
        now = time.monotonic()
        if now < self._next_look:
            return False
        self._next_look = now + CHECK_PORT_S
        who = self._who
        try:
            names = self.port.get_ports()
        except Exception as exc:   # noqa: BLE001 - the MIDI system itself failed: say so, go on
            self._throttle.warn(f"{who}:port", f"{who}: cannot look for {self.wanted!r} ({exc})")
            return False
        if not self.gone:
            if self.name not in names:
                self.gone = True
                self._events.warning(f"{who}: {self.name} has gone away; {self._meanwhile}, and "
                                     f"livelatent connects to it again when it is back")
            return False
        chosen, problem = port_named(names, self.wanted, self.name)
        if chosen is None:
            if any(self.wanted in n for n in names):             # (several: said, not guessed)
                self._throttle.warn(f"{who}:port", f"{who}: {problem}")
            return False
        try:
            if self.name is not None:
                self.port.close_port()
            self.port.open_port(names.index(chosen))
        except Exception as exc:   # noqa: BLE001 - tried again at the next look
            self._throttle.warn(f"{who}:port", f"{who}: {chosen} is back but could not be "
                                               f"connected ({exc}); trying again")
            return False
        first = self.name is None
        self.name, self.gone = chosen, False
        self._events.info(f"{who}: {self.name} is there, connected" if first
                          else f"{who}: {self.name} is back, connected again")
        return True


class MidiListener:
    """An open MIDI input feeding ``engine``: the routed controllers, and note functions.

    python-rtmidi queues what arrives (in C++, from JACK's realtime thread, with no Python
    there); a thread of ours takes it from the queue every millisecond or so, and note
    functions run on a worker thread of their own, so a slow function delays nothing else."""

    def __init__(self, engine, port: str | None, throttle):
        rtmidi, self._mido = midi()              # a one-line error when MIDI is not installed
        self.engine, self.throttle = engine, throttle
        self.routes: set[str] = set()
        self.note_functions: list = []           # (fn, note or None, channel or None)
        self.received = 0
        self.port, name, problems = open_midi_port(rtmidi, "in", port, client="livelatent",
                                                   virtual=VIRTUAL_PORT, wait=True)
        self._own_name = name                    # our own port's (when none is asked for)
        self._watch = None if port is None or self.port is None else PortWatch(
            self.port, port, name, who="midi", meanwhile="its curves hold their last values",
            events=engine.events, throttle=throttle)
        if self.port is not None and name is None:          # not there yet: looked for as if gone
            throttle.warn("midi:open", f"midi: {problems}; livelatent connects to it when it appears "
                                       f"(MIDI curves hold their defaults and on_note functions "
                                       f"wait until then)")
        if self.port is None:
            throttle.warn("midi:open", f"midi: cannot open a MIDI input ({problems}); MIDI curves "
                                       f"(cc, note_on, pitchbend) hold their defaults and on_note "
                                       f"functions do not run")
            self.sender = None
            return
        self.sender = ControlSender(engine, "midi", throttle)
        self._notes_queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._port_lock = threading.Lock()       # the rtmidi port: polled, reconnected, closed
        self._threads = [threading.Thread(target=self._poll, name="livelatent-midi", daemon=True),
                         threading.Thread(target=self._run_notes, name="livelatent-midi-notes",
                                          daemon=True)]
        for thread in self._threads:
            thread.start()

    @property
    def listening(self) -> bool:
        return self.port is not None

    @property
    def name(self) -> str | None:
        """The port's name (None while one asked for by name was never there)."""
        return self._own_name if self._watch is None else self._watch.name

    def close(self) -> None:
        if self.port is None:
            return
        self._stop.set()
        self._notes_queue.put(None)
        for thread in self._threads:
            thread.join(timeout=2.0)
        with self._port_lock:
            port, self.port = self.port, None
            try:
                port.close_port()
                port.delete()
            except Exception:       # noqa: BLE001
                pass
        self.sender.close()

    def _poll(self) -> None:
        while not self._stop.is_set():
            with self._port_lock:
                if self.port is None:
                    return
                if self._watch is not None:
                    self._watch.look()
                arrived = []                  # all that waits: a burst is read at once
                while (got := self.port.get_message()) is not None:
                    arrived.append(got[0])
            if not arrived:
                self._stop.wait(POLL_S)
                continue
            for data in arrived:
                try:
                    self._receive(self._mido.Message.from_bytes(data))
                except Exception as exc:      # noqa: BLE001 - a bad message must not stop the listener
                    self.throttle.warn("midi:message", f"midi: a message could not be read ({exc})")

    def _receive(self, message) -> None:
        self.received += 1
        kind = message.type
        channel = getattr(message, "channel", 0) + 1
        if kind == "control_change":
            self._set(f"cc:{channel}:{message.control}", message.value / 127.0)
        elif kind in ("note_on", "note_off"):
            velocity = message.velocity if kind == "note_on" else 0
            self._set(f"note:{channel}:{message.note}", velocity / 127.0)
            if velocity > 0 and self.note_functions:
                self._notes_queue.put((message.note, velocity, channel, time.monotonic()))
        elif kind == "pitchwheel":
            self._set(f"bend:{channel}", max(-1.0, message.pitch / 8191.0))

    def _set(self, name: str, value: float) -> None:
        if name in self.routes:
            self.sender.set(name, value)

    def _run_notes(self) -> None:
        while True:
            item = self._notes_queue.get()
            if item is None:
                return
            note, velocity, channel, arrived = item
            if time.monotonic() - arrived > STALE_NOTE_S:
                self.throttle.warn("midi:late", f"on_note: note {note} waited more than "
                                                f"{STALE_NOTE_S:g} s behind a slow function: dropped")
                continue
            for entry in list(self.note_functions):
                fn, wanted_note, wanted_channel = entry
                if (wanted_note is None or wanted_note == note) and (wanted_channel is None or
                                                                      wanted_channel == channel):
                    self._run_note_function(entry, note, velocity)

    def _run_note_function(self, entry, note: int, velocity: int) -> None:
        fn = entry[0]
        name = getattr(fn, "__name__", repr(fn))
        deadline = Deadline(RUN_LIMIT_S)
        try:
            with self.engine.batch(origin="midi:note", discard_on_error=True):
                with deadline:
                    fn(note, velocity / 127.0)
        except BaseException as exc:   # noqa: BLE001 - the performer's function may raise anything
            if not deadline.fired:      # (a GeneratorExit, an exit(): this thread must go on)
                self.throttle.warn("midi:fn", f"on_note: {name} raised {described(exc)}")
                return
            try:
                self.note_functions.remove(entry)
            except ValueError:          # (gone already)
                pass
            self.engine.events.error(f"on_note: {name} was still running after {deadline.seconds:g} s "
                                     f"(note {note}): interrupted, and dropped; what it changed did "
                                     f"not land (call on_note({name}) again to bring it back)")
        finally:
            deadline.leave()        # (an interrupt raised inside its __exit__ left it half-done)
