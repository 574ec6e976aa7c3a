"""OSC in and out: ``osc("/fader/1")`` curves fed by a UDP listener, and ``osc_send`` for visuals.

The listener (python-osc's UDP server, on 127.0.0.1 unless another address is asked for)
routes each message to the controllers of its address: its first argument (and the next ones,
for ``osc("/xy", 2)``), a finite number, clipped to the curve's range if it has one, becomes that
controller's new value through a
:class:`~.sender.ControlSender` (at most one journaled batch a step). Malformed packets,
addresses no curve listens to, values that are not numbers or out of range, and a port in use
each give a rate-limited warning; nothing from the network raises into the REPL or the audio.
"""

from __future__ import annotations

import errno
import logging
import math
import reprlib
import socket
import threading

from pythonosc import osc_bundle, osc_message, osc_packet
from pythonosc.osc_server import BlockingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient

from ..controls import evaluating
from .sender import ControlSender

__all__ = ["OscListener", "OscSender"]

# python-osc's parser reports what it skips (an element of a bundle it cannot identify, a type
# tag it does not know) with logging.warning() on the root logger, which, with no handler set
# up, also installs one that prints "WARNING:root:..." in the middle of the REPL. Its modules
# are given a logger of their own instead, which hands those notes to the listener parsing the
# packet in this thread: one rate-limited warning of livelatent's, and nothing else printed.
_parsing = threading.local()


class _ToListener(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        listener = getattr(_parsing, "listener", None)
        if listener is None:           # python-osc parsing for someone else: as it would log it
            logging.getLogger("pythonosc").handle(record)
        elif record.levelno >= logging.WARNING:
            listener.throttle.warn("osc:malformed", f"osc: part of a packet from "
                                                    f"{_parsing.client} was ignored "
                                                    f"({record.getMessage():.100})")


class _LoggingToListener:
    """Stands in for the ``logging`` module in python-osc's parser modules: its module-level
    ``warning()``/``error()`` go to a logger of ours, and anything else to ``logging`` itself
    (so another version of python-osc calling other functions still works)."""

    def __init__(self, logger: logging.Logger):
        self._logger = logger

    def __getattr__(self, name):
        return getattr(logging, name)

    def warning(self, *args, **kwargs) -> None:
        self._logger.warning(*args, **kwargs)

    def error(self, *args, **kwargs) -> None:
        self._logger.error(*args, **kwargs)


def _quiet_python_osc() -> None:
    quiet = logging.getLogger("livelatent.pythonosc")
    if not quiet.handlers:
        quiet.addHandler(_ToListener())
        quiet.propagate = False
        quiet.setLevel(logging.WARNING)     # its own level, whatever the root logger's is
    for module in (osc_bundle, osc_message):
        if getattr(module, "logging", None) is logging:   # python-osc's own module-level calls
            module.logging = _LoggingToListener(quiet)


_BUNDLE = b"#bundle\x00"
BUNDLE_DEPTH = 16        # bundles nested deeper than this are refused, not parsed


def bundle_problem(data: bytes, depth: int = 0) -> str | None:
    """What is wrong with the bundle framing of ``data`` (None: nothing, or not a bundle).

    python-osc walks a bundle's elements by their declared sizes without checking them: a
    negative size sends it back to the same element forever (one packet would spin the
    listener's thread and hold up closing the engine), and deep nesting recurses until Python
    gives up. The framing is checked here first, without recursion limits to reach."""
    if not data.startswith(_BUNDLE):
        return None
    if depth >= BUNDLE_DEPTH:
        return f"bundles nested more than {BUNDLE_DEPTH} deep"
    index = len(_BUNDLE) + 8                       # the prefix and the time tag
    while index < len(data):
        if index + 4 > len(data):
            return "a bundle element's size is cut short"
        size = int.from_bytes(data[index:index + 4], "big", signed=True)
        index += 4
        if size < 0 or index + size > len(data):
            return f"a bundle element's size ({size}) does not fit the packet"
        problem = bundle_problem(data[index:index + size], depth + 1)
        if problem is not None:
            return problem
        index += size
    return None


NUMBER_TAGS = "ifdh"      # OSC's int32, float32, double and int64: what a controller's value is
# Beyond this a value is no controller's: 1e308 as a double overflowed the curves reading it,
# and a failing curve sends its voice back to its last good curve, off the controller for good.
MAX_VALUE = 1e30


def _argument_tags(dgram: bytes) -> str:
    """The type tag of each top-level argument of an OSC message (an array is one, ``[``)."""
    start = (dgram.find(b"\x00") // 4 + 1) * 4          # past the address and its padding
    if dgram[start:start + 1] != b",":
        return ""
    tags, depth = [], 0
    for tag in dgram[start + 1:dgram.find(b"\x00", start)].decode("ascii", "replace"):
        if depth == 0:
            tags.append(tag)
        depth += (tag == "[") - (tag == "]")
    return "".join(tags)


_FIXED_SIZES = {"i": 4, "f": 4, "c": 4, "r": 4, "m": 4, "d": 8, "h": 8, "t": 8}


def cut_short(dgram: bytes) -> bool:
    """Whether an OSC message's arguments run past its end. python-osc reads a float32 whose
    last bytes are missing as if they were zeros (0.75 cut by two bytes reads 0.75, by four
    0.0): a value the controller never sent."""
    start = (dgram.find(b"\x00") // 4 + 1) * 4
    if dgram[start:start + 1] != b",":
        return False
    end = dgram.find(b"\x00", start)
    if end < 0:
        return True
    index = (end // 4 + 1) * 4                            # past the type tags and their padding
    for tag in dgram[start + 1:end].decode("ascii", "replace"):
        if tag in _FIXED_SIZES:
            index += _FIXED_SIZES[tag]
        elif tag in "sS":
            stop = dgram.find(b"\x00", index)
            if stop < 0:
                return True
            index = (stop // 4 + 1) * 4
        elif tag == "b":
            if index + 4 > len(dgram):
                return True
            index += 4 + (int.from_bytes(dgram[index:index + 4], "big") + 3) // 4 * 4
        if index > len(dgram):
            return True
    return False


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxstring, _SHORT.maxother = 2, 4, 30, 30


def _shown(params) -> str:
    """A message's arguments, short (arrays nested thousands deep too: ``repr`` would recurse)."""
    return _SHORT.repr(params)


class _Server(BlockingOSCUDPServer):
    listener = None
    max_packet_size = 65535    # socketserver reads 8192 bytes: a larger bundle would be cut short

    def verify_request(self, request, client_address) -> bool:
        return True            # python-osc drops what does not look like OSC silently: we say so

    def handle_error(self, request, client_address):      # never a traceback on stderr
        self.listener.throttle.warn("osc:error", f"osc: a message from {client_address[0]} "
                                                 f"could not be handled")


class OscListener:
    """Listens on ``host:port`` and sends the values of the addresses it routes to ``engine``."""

    def __init__(self, engine, host: str, port: int, throttle):
        self.engine, self.host, self.port, self.throttle = engine, host, port, throttle
        self.routes: dict[str, tuple] = {}           # address -> (lo, hi, arguments read)
        self.received = 0
        self.sender = ControlSender(engine, "osc", throttle)
        self.server = None
        try:
            self.server = _Server((host, port), self)
        except (TypeError, ValueError) as exc:    # not an address at all (a NUL, a label too long)
            self.sender.close()
            raise ValueError(str(exc)) from None
        except OSError as exc:
            # a name that does not resolve, or an address of another machine, is the host's fault
            bad_host = isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL
            advice = ("Give an address of this machine: osc_listen(host='0.0.0.0')" if bad_host
                      else "Choose another port: osc_listen(port=...)")
            throttle.warn("osc:port", f"osc: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                                      f"osc() curves hold where they are. {advice}")
            return
        self.server.listener = self
        _quiet_python_osc()
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="livelatent-osc", daemon=True)
        self._thread.start()

    @property
    def listening(self) -> bool:
        return self.server is not None

    def route(self, address: str, lo, hi, arguments: int = 1) -> None:
        self.routes[address] = (lo, hi, arguments)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        self.sender.close()

    # python-osc's server calls this (as its "dispatcher") with each datagram
    def call_handlers_for_packet(self, data: bytes, client_address) -> list:
        problem = bundle_problem(data)
        if problem is not None:
            self.throttle.warn("osc:malformed", f"osc: a malformed packet from {client_address[0]} "
                                                f"was ignored ({problem})")
            return []
        _parsing.listener, _parsing.client = self, client_address[0]
        try:
            messages = [timed.message for timed in osc_packet.OscPacket(data).messages]
        except osc_packet.ParseError as exc:
            self.throttle.warn("osc:malformed", f"osc: a malformed packet from {client_address[0]} "
                                                f"was ignored ({exc})")
            return []
        finally:
            _parsing.listener = None
        for message in messages:            # one that cannot be handled loses only itself
            if cut_short(message.dgram):
                self.throttle.warn("osc:malformed", f"osc: a message from {client_address[0]} to "
                                                    f"{message.address[:60]!r} was ignored (it is "
                                                    f"cut short: its last argument is missing)")
                continue
            try:
                self._receive(message.address, list(message.params), _argument_tags(message.dgram))
            except Exception as exc:            # noqa: BLE001 - the rest of the bundle still lands
                self.throttle.warn("osc:malformed", f"osc: a message from {client_address[0]} to "
                                                    f"{message.address[:60]!r} was ignored "
                                                    f"({type(exc).__name__}: {str(exc)[:80]})")
        return []

    def _receive(self, address: str, params: list, tags: str | None = None) -> None:
        self.received += 1
        span = self.routes.get(address)
        shown = address if len(address) <= 60 else address[:57] + "..."
        if span is None:
            known = ", ".join(sorted(self.routes)[:8]) or "none yet"
            self.throttle.warn("osc:unknown", f"osc: no osc() curve listens to {shown!r} (listening "
                                              f"to: {known})")
            return
        lo, hi, arguments = span
        if len(params) < arguments:
            self.throttle.warn("osc:value", f"osc: {shown} sent {_shown(params)}; {arguments} numbers "
                                            f"were expected")
        for index, value in enumerate(params[:arguments]):
            tag = tags[index] if tags is not None and index < len(tags) else "f"
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or tag not in NUMBER_TAGS:     # (an RGBA colour or a MIDI message reads as an int)
                which = "its first argument" if index == 0 else f"argument {index + 1}"
                self.throttle.warn("osc:value", f"osc: {shown} sent {_shown(params)}; {which} must be a "
                                                f"finite number")
                continue
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                clipped = min(max(value, lo if lo is not None else value), hi if hi is not None else value)
                self.throttle.warn("osc:range", f"osc: {shown} sent {value:g}, outside [{lo}, {hi}]; "
                                                f"clipped to {clipped:g}")
                value = clipped
            if abs(value) > MAX_VALUE:
                self.throttle.warn("osc:value", f"osc: {shown} sent {value:g}; a value must be within "
                                                f"+-{MAX_VALUE:g} (give the curve a range to clip to)")
                continue
            self.sender.set(f"osc:{address}" + (f"#{index}" if index else ""), float(value))


class OscSender:
    """Sends the engine's beat and the amount of each voice between two sources to
    ``host:port``, ``rate`` times a second: ``/livelatent/beat <beats>`` and
    ``/livelatent/voice/<name> <amount>`` (for visuals)."""

    def __init__(self, engine, host: str, port: int, rate: float, throttle):
        self.engine, self.throttle, self.period = engine, throttle, 1.0 / rate
        self.host, self.port = host, port
        self.client = SimpleUDPClient(host, port, allow_broadcast=True)   # (a LAN's visuals)
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="livelatent-osc-send", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self._send_once()
            except Exception as exc:          # noqa: BLE001 - the visuals are not the music
                self.throttle.warn("osc_send", f"osc_send: {type(exc).__name__}: {exc}")

    def _send_once(self) -> None:
        engine = self.engine
        position = engine.position
        heard = engine.heard().score
        clock = heard.clock
        self.client.send_message("/livelatent/beat", float(clock.beats(position)))
        for params in heard.voices.values():
            if params.curve is None:
                continue
            origin = float(clock.beats(params.curve_start))
            with evaluating(params.controls, origin, clock.bpm_at(params.curve_start)):
                amount = float(params.curve(max(float(clock.beats(position)) - origin, 0.0)))
            self.client.send_message(f"/livelatent/voice/{params.name}", amount)
        self.sent += 1
