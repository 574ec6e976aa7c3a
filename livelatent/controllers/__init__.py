"""Controllers from outside, bound to an engine: ``osc``, ``osc_listen``, ``osc_send``, ``cc``,
``note_on``, ``pitchbend``, ``on_note``, ``midi_in``, ``midi_clock``, ``link``, ``unlink``.

One :class:`Controllers` service per engine (like its timers) owns the listeners; the names a
namespace gets come from it. The curves themselves are plain data (:mod:`livelatent.controls`):
a replay, or a sealed engine, builds them without listening to anything, and takes their values
from the journal.
"""

from __future__ import annotations

import math
import threading
import weakref

from ..config import osc_port
from ..controls import bend_curve, cc_curve, note_curve, osc_curves
from ..errors import ParameterError, check_number, real_value
from ..services import EngineService
from .clock_out import MidiClock
from .link import LinkFollower
from .midi import MidiListener
from .osc import OscListener, OscSender
from .throttle import Throttle

__all__ = ["Controllers"]

LOCALHOST = "127.0.0.1"


class Controllers(EngineService):
    """The controllers of ``engine``: OSC listener and senders (MIDI and clocks build on it)."""

    def __init__(self, engine):
        self._engine = weakref.ref(engine)
        self.throttle = Throttle(engine.events)
        self.listener: OscListener | None = None
        self.midi: MidiListener | None = None
        self.senders: list[OscSender] = []
        self.clocks: list[MidiClock] = []
        self.link: LinkFollower | None = None
        self._routes: dict[str, tuple] = {}
        self._lock = threading.Lock()
        engine.add_exit_hook(self.close)

    @staticmethod
    def names(engine, *, replaying: bool = False, listening: bool = True) -> dict:
        """The bound names for a namespace (a replay's build curves and listen to nothing).
        ``listening=False``: a script rendered offline, with no journal to take what arrives
        (it would land wherever the render happens to be): the curves hold their defaults,
        and the first controller asked for says so."""
        live = not replaying
        told = []

        def listens() -> bool:
            if not listening and live and not told:
                told.append(True)
                engine.events.warning("a script rendered offline listens to no controller (OSC, "
                                      "MIDI, Link): their curves hold their defaults; to render "
                                      "what a controller played, record a set and render it")
            return live and listening and not engine.sealed

        def osc(address: str, arguments: int = 1, *, default: float = 0.0, lo=None, hi=None):
            """A curve: the last value sent to OSC ``address`` (its first argument), held;
            ``default`` before any. Values outside [lo, hi] are clipped (with a warning).
            ``v.curve = osc("/fader/1")``; ``.smooth(30)`` glides over 30 ms. ``osc("/xy", 2)``:
            two curves, one per argument (an XY pad), e.g. a mapping's inputs."""
            lo, hi = _bound(lo, "lo"), _bound(hi, "hi")
            if lo is not None and hi is not None and lo >= hi:
                raise ParameterError(f"osc({address!r}, lo={lo}, hi={hi}): lo must be below hi")
            curves = osc_curves(address, arguments, default, lo, hi)
            if live and ((lo is not None and default < lo) or (hi is not None and default > hi)):
                raise ParameterError(f"osc({address!r}, default={default!r}, lo={lo}, hi={hi}): the "
                                     f"default plays before any message, so it must lie in the range")
            if listens():
                Controllers.of(engine).route(address, lo, hi, arguments)
            return curves

        def osc_listen(port: int | None = None, host: str = LOCALHOST) -> int:
            """Listen for OSC on ``host:port`` (default 127.0.0.1 and ``$LIVELATENT_OSC_PORT`` or
            57130; port 0: any free one). Another host must be asked for here. Returns the port."""
            if not listens():
                return 0
            return Controllers.of(engine).listen(osc_port() if port is None else port, host)

        def osc_send(host: str = LOCALHOST, port: int = 57131, *, rate: float = 30.0):
            """Send the beat and each voice's amount to ``host:port``, ``rate`` times a second
            (``/livelatent/beat``, ``/livelatent/voice/<name>``), for visuals."""
            if not listens():
                return None
            return Controllers.of(engine).send_to(host, port, rate)

        def midi_curve(curve):
            if listens():
                Controllers.of(engine).route_midi(curve.controls())
            return curve

        def cc(number: int, channel: int = 1, default: float = 0.0):
            """A curve: MIDI control change ``number`` on ``channel`` (1-16), 0 to 1, held.
            ``v.curve = cc(74).smooth(30)``"""
            return midi_curve(cc_curve(number, channel, default))

        def note_on(number: int, channel: int = 1, default: float = 0.0):
            """A curve: the velocity (0 to 1) of MIDI note ``number`` while it is held, 0 after."""
            return midi_curve(note_curve(number, channel, default))

        def pitchbend(channel: int = 1, default: float = 0.0):
            """A curve: MIDI pitch bend on ``channel``, -1 to 1."""
            return midi_curve(bend_curve(channel, default))

        def on_note(fn, *, note: int | None = None, channel: int | None = None):
            """Run ``fn(note, velocity)`` when a note arrives (any, or ``note`` on ``channel``);
            what it changes lands at once and is journaled (origin ``midi:note``). Typed again
            (a cell run again, a pattern file saved), a function replaces the last one of its
            name, whatever its note (a lambda: the last lambda of its note and channel), so they
            do not pile up. ``on_note(None, note=...)`` removes those of that note and channel."""
            if fn is not None and not callable(fn):
                raise ParameterError(f"on_note({fn!r}): give a function of (note, velocity), or None")
            if note is not None and (isinstance(note, bool) or not isinstance(note, int) or not 0 <= note <= 127):
                raise ParameterError(f"on_note(note={note!r}): a MIDI note from 0 to 127, or None")
            if channel is not None and (isinstance(channel, bool) or not isinstance(channel, int)
                                        or not 1 <= channel <= 16):
                raise ParameterError(f"on_note(channel={channel!r}): a MIDI channel from 1 to 16, or None")
            if listens():
                Controllers.of(engine).add_note_function(fn, note, channel)

        def midi_in(port: str | None = None) -> str | None:
            """Listen to the MIDI output port whose name contains ``port`` (default: an input
            port of livelatent's own, ``livelatent``, to connect controllers to). Returns the
            port's name (None: none could be opened; a warning said why)."""
            _port_name(port, "midi_in")
            if not listens():
                return None
            return Controllers.of(engine).open_midi(port)

        def midi_clock(port: str | None = None):
            """Send MIDI clock (24 ticks a beat, Start and Stop) following the engine's beats, on
            a port of its own (``livelatent-clock:clock``) or the input port named like ``port``
            (connected when it appears, and again, with a new Start, when it comes back)."""
            _port_name(port, "midi_clock")
            if not listens():
                return None
            return Controllers.of(engine).start_clock(port)

        def link(quantum: float | None = None):
            """Join the Ableton Link session on this network: beats and bars follow its tempo
            and phase (bars of ``quantum`` beats, default the engine's bar), ``tempo()``
            changes the session's tempo, and what arrives from the others is journaled.
            Returns the session (``.peers``, ``.leave()``)."""
            quantum = engine.clock.beats_per_bar if quantum is None else quantum
            if not 1 <= real_value(quantum) <= 64:                      # (NaN fails too)
                raise ParameterError(f"link(quantum={quantum!r:.60}): beats per bar from 1 to 64")
            if not listens():
                return None
            if engine.playback is None:      # a render has no "now" to share with anybody
                engine.events.warning("link(): this engine renders offline, it has no live beat "
                                      "to share; join from the REPL or a playing engine")
                return None
            return Controllers.of(engine).join_link(float(quantum))

        def unlink() -> None:
            """Leave the Link session; the tempo stays where the session left it."""
            if listens():
                Controllers.of(engine).leave_link()

        return {"osc": osc, "osc_listen": osc_listen, "osc_send": osc_send, "cc": cc,
                "note_on": note_on, "pitchbend": pitchbend, "on_note": on_note, "midi_in": midi_in,
                "midi_clock": midi_clock, "link": link, "unlink": unlink}

    # -- the service ---------------------------------------------------------------------------
    def route(self, address: str, lo, hi, arguments: int = 1) -> None:
        """Listen to ``address`` for an ``osc()`` curve of range [lo, hi]. Values are clipped to
        the widest range of the address's curves (each curve clips to its own): the last one
        typed must not narrow what an earlier curve playing on the same address receives."""
        with self._lock:
            old = self._routes.get(address)
            if old is not None:
                lo = None if lo is None or old[0] is None else min(lo, old[0])
                hi = None if hi is None or old[1] is None else max(hi, old[1])
                arguments = max(arguments, old[2])
            self._routes[address] = (lo, hi, arguments)
            if self.listener is None:
                self._start(osc_port(), LOCALHOST)
            self.listener.route(address, lo, hi, arguments)

    def listen(self, port: int, host: str) -> int:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ParameterError(f"port={port!r} must be a UDP port from 0 to 65535")
        if not isinstance(host, str) or not host:
            raise ParameterError(f"host={host!r} must be an address, e.g. '127.0.0.1' or '0.0.0.0'")
        with self._lock:
            old = self.listener
            was = (old.host, old.port) if old is not None and old.listening else None
            if old is not None:
                old.close()                 # (first: the new one may want its port)
            try:
                self._start(port, host)
            except ValueError as exc:
                self.listener = None
                self._listen_again(was)
                raise ParameterError(f"osc_listen(host={host!r:.60}): not an address ({exc}); give "
                                     f"e.g. '127.0.0.1' or '0.0.0.0'") from None
            if self.listener.listening:
                return self.listener.port
            self._listen_again(was)         # the one that worked listens on
            return 0

    def _listen_again(self, where) -> None:
        """Listen again where the listener that worked did (a new one could not listen)."""
        if where is not None:
            self._start(where[1], where[0])
            if self.listener.listening:
                self.throttle.warn("osc:again", f"osc: still listening on {where[0]}:{where[1]}")

    def send_to(self, host: str, port: int, rate: float) -> OscSender:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ParameterError(f"port={port!r} must be a UDP port from 1 to 65535")
        rate = check_number(rate, name="rate", low=0.5, high=200,
                            meaning="of messages a second from 0.5 to 200")
        if not isinstance(host, str) or not host:
            raise ParameterError(f"host={host!r} must be an address, e.g. '127.0.0.1'")
        try:
            sender = OscSender(self._engine(), host, port, float(rate), self.throttle)
        except OSError as exc:
            raise ParameterError(f"osc_send({host!r:.60}, {port}): {exc.strerror or exc}") from None
        except ValueError as exc:      # (UnicodeError: a name no resolver takes, 300 letters long)
            raise ParameterError(f"osc_send(host={host!r:.60}): not an address ({exc}); give e.g. "
                                 f"'127.0.0.1' or a machine's name") from None
        with self._lock:                # typed again to the same place: in place of the last one
            for old in [s for s in self.senders if (s.host, s.port) == (host, port)]:
                old.close()
                self.senders.remove(old)
            self.senders.append(sender)
        return sender

    def route_midi(self, names) -> None:
        with self._lock:
            if self.midi is None:
                self.midi = MidiListener(self._engine(), None, self.throttle)
            self.midi.routes |= set(names)

    def add_note_function(self, fn, note, channel) -> None:
        """``fn`` in place of the one it is typed again as (see :func:`_typed_as`); None: in
        place of every function of ``note`` and ``channel``."""
        with self._lock:
            if self.midi is None:
                if fn is None:
                    return
                self.midi = MidiListener(self._engine(), None, self.throttle)
            functions = self.midi.note_functions          # (one list, shared: changed in place)
            if fn is None:
                functions[:] = [e for e in functions if (e[1], e[2]) != (note, channel)]
                return
            key = _typed_as(fn, note, channel)
            functions[:] = [e for e in functions if _typed_as(*e) != key]
            functions.append((fn, note, channel))

    def open_midi(self, port: str | None) -> str | None:
        with self._lock:
            old = self.midi
            self.midi = MidiListener(self._engine(), port, self.throttle)
            if old is not None:
                self.midi.routes |= old.routes
                self.midi.note_functions = old.note_functions   # one list: a drop reaches both
                old.close()
            return self.midi.name

    def listen_for(self, voices) -> None:
        """Listen to the controllers ``voices`` read (voices that came from a set or a resumed
        journal, whose curves were rebuilt without listening). OSC addresses get no range."""
        names = frozenset().union(*(p.plan.controls for p in voices)) if voices else frozenset()
        for name in sorted(n for n in names if n.startswith("osc:")):
            address, _, index = name[4:].partition("#")
            if address not in self._routes or self._routes[address][2] <= int(index or 0):
                self.route(address, None, None, int(index or 0) + 1)
        midi = [n for n in names if n.split(":")[0] in ("cc", "note", "bend")]
        if midi:
            self.route_midi(midi)

    def start_clock(self, port: str | None) -> MidiClock:
        """A clock on ``port``, in place of one already sending there (typed again, to connect
        anew): two would send every tick twice."""
        with self._lock:
            for old in [c for c in self.clocks if c.port == port]:
                old.close()
                self.clocks.remove(old)
            clock = MidiClock(self._engine(), port, self.throttle)
            self.clocks.append(clock)
            return clock

    def join_link(self, quantum: float) -> LinkFollower:
        with self._lock:
            if self.link is not None and self.link.joined:
                if self.link.quantum == quantum:
                    return self.link
                self.link.leave()
            self.link = LinkFollower(self._engine(), quantum, self.throttle)
            return self.link

    def leave_link(self) -> None:
        with self._lock:
            if self.link is not None:
                self.link.leave()
                self.link = None

    def _start(self, port: int, host: str) -> None:
        self.listener = OscListener(self._engine(), host, port, self.throttle)
        for address, (lo, hi, arguments) in self._routes.items():
            self.listener.route(address, lo, hi, arguments)

    def close(self) -> None:
        with self._lock:
            if self.listener is not None:
                self.listener.close()
                self.listener = None
            if self.midi is not None:
                self.midi.close()
                self.midi = None
            for sender in self.senders + self.clocks:
                sender.close()
            if self.link is not None:
                self.link.leave()
                self.link = None
            self.senders.clear()
            self.clocks.clear()


def _typed_as(fn, note, channel) -> tuple:
    """What makes an ``on_note`` function the same one typed again (a cell run again, a pattern
    file saved): a named function's name and file, whatever its note; a lambda's (or a callable
    object's) file, note and channel."""
    code = getattr(fn, "__code__", None)
    where = code.co_filename if code is not None and not code.co_filename.startswith("<") else "<cell>"
    name = getattr(fn, "__qualname__", None)
    if name is None or name.split(".")[-1] == "<lambda>":
        return (name or type(fn).__qualname__, where, note, channel)
    return (name, where)


def _port_name(port, function: str) -> None:
    # a port is found by a part of its name: "" would pick whichever port comes first
    if port is not None and (not isinstance(port, str) or not port.strip()):
        raise ParameterError(f"{function}({port!r}): give a part of the port's name, e.g. "
                             f"{function}('nanoKONTROL'), or nothing for livelatent's own port")


def _bound(value, name: str):
    if value is None:
        return None
    number = real_value(value)
    if not math.isfinite(number):
        raise ParameterError(f"{name}={value!r:.60} must be a finite number or None")
    return number
