"""Live input: taken from the audio process, written to the set as FLAC, encoded as it comes.

An :class:`InputRecorder` follows one input channel of the playing engine's device. Every few
milliseconds it takes what the audio process stored (by the engine sample heard when it was
taken), quantises it to 24 bits, appends it to ``<set>/inputs/<name>.flac`` (those exact
values: a render reads what was encoded), and encodes every window the new samples complete,
for each hop a voice asked for, into that hop's ring of frames. Samples the device did not
deliver (a lost device, the audio process starting again) are silence, so the file stays
aligned to engine samples. When the decoder gets ahead of the encoded input (a delay declared
too short for this machine), it says so: the render would differ there.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import ParameterError, SetError
from ..live_source import RING_S, LiveFrames, LiveSource, quantise24

__all__ = ["InputRecorder", "start_live_input", "minimum_delay", "recorded_inputs", "INPUTS_FOLDER"]

INPUTS_FOLDER = "inputs"

POLL_S = 0.005
# Encoding and polling, on top of what minimum_delay adds up. The recorder's thread takes the
# input every 5 ms in the performer's process; on a loaded machine it can be kept off a core
# for tens of milliseconds, and 20 ms let the decoder get ahead of it in a CI run.
MARGIN_S = 0.05


def minimum_delay(engine) -> int:
    """Engine samples between an input and the first output that can play it: the lookahead
    and a step (what the decoder is ahead of the listener), a window to fill, the device's lag
    from input to output (the input is stored at the sample heard when it was taken, which
    left the engine that much earlier), a device block for it to arrive, and a margin."""
    playback = engine.playback
    connection = playback.connection if playback is not None else None
    block = connection.host_block if connection is not None else engine.blocksize
    lag = max(connection.ring.input_lag if connection is not None else 0, 2 * block)
    return int(engine.lookahead + engine.step + engine.codec.window + lag + block
               + MARGIN_S * engine.sample_rate)


class InputRecorder:
    """Input ``channel`` (1-based) of ``engine``'s device, recorded from engine sample ``origin``
    into ``path`` and encoded for the voices that read it."""

    def __init__(self, engine, channel: int, path: Path, *, origin: int, delay: int, throttle):
        import soundfile as sf
        self.engine, self.channel, self.path, self.throttle = engine, channel, Path(path), throttle
        self.codec, self.delay = engine.codec, int(delay)
        # input kept for a voice that starts reading it later: as far back as it can reach
        self._keep = self.delay + engine.lookahead + self.codec.window + engine.sample_rate
        self.origin = self.taken = int(origin)          # input [origin, taken) is recorded
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = sf.SoundFile(str(self.path), "w", samplerate=engine.sample_rate, channels=1,
                                  format="FLAC", subtype="PCM_24")
        self._recent = np.zeros(0, dtype=np.float32)   # the input still needed for windows
        self._recent_from = self.origin
        self._tracks: dict[int, list] = {}              # hop -> [LiveFrames, next frame]
        self._silence = self.codec.encode(np.zeros((1, self.codec.window), dtype=np.float32))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="livelatent-input", daemon=True)
        self._thread.start()

    def track(self, codec, hop: int) -> LiveFrames:
        """The ring of frames at ``hop`` (made on first use, from the input recorded since)."""
        if codec.content_hash != self.codec.content_hash:
            raise ParameterError("a live input encodes with the engine's model only")
        with self._lock:
            found = self._tracks.get(hop)
            if found is None:
                ring = int(np.ceil(RING_S * self.engine.sample_rate / hop))
                frames = LiveFrames(self.codec.latent_dim, ring, hop,
                                    (self._silence[0][0], self._silence[1][0]))
                first = max(0, -(-(self._recent_from - self.origin) // hop))
                found = self._tracks[hop] = [frames, first]
                self._encode_track(found)
            return found[0]

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        with self._lock:
            if not self._file.closed:
                self._file.close()

    # -- the recorder's thread -----------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self._take()
            except Exception as exc:        # noqa: BLE001 - the input is not worth the show
                self.throttle.warn("input", f"live input {self.path.name}: {type(exc).__name__}: {exc}")

    def _take(self) -> None:
        playback = self.engine.playback
        connection = playback.connection if playback is not None else None
        if connection is None:
            return
        written = connection.input_written
        if written <= self.taken:
            self._check_late(playback)
            return
        # what the ring no longer holds (or never held: a new audio process) is silence
        start = max(self.taken, written - connection.ring.capacity // 2)
        taken = np.zeros(written - self.taken, dtype=np.float32)
        taken[start - self.taken:] = connection.input_samples(start, written)[:, self.channel - 1]
        values, stored = quantise24(taken)
        with self._lock:
            if self._file.closed:
                return
            self._file.write(stored)
            self.taken = written
            self._recent = np.concatenate([self._recent, values])
            for track in self._tracks.values():
                self._encode_track(track)
            self._forget()
        self._check_late(playback)

    def _encode_track(self, track: list) -> None:
        """Encode the windows of ``track`` that the input recorded so far completes."""
        frames, first = track
        hop, window = frames.hop, self.codec.window
        complete = (self.taken - window - self.origin) // hop + 1       # frames [0, complete)
        if complete <= first:
            return
        starts = self.origin + hop * np.arange(first, complete) - self._recent_from
        windows = self._recent[starts[:, None] + np.arange(window)]
        mu, logvar = self.codec.encode(windows)
        frames.write(first, mu, logvar)
        track[1] = complete

    def _forget(self) -> None:
        """Drop the input every track has encoded past."""
        keep = self.taken - self._keep
        for frames, first in self._tracks.values():
            keep = min(keep, self.origin + first * frames.hop)
        drop = max(0, keep - self._recent_from)
        if drop:
            self._recent = self._recent[drop:]
            self._recent_from += drop

    def _check_late(self, playback) -> None:
        needed = playback.decoded_to - self.delay + self.codec.window
        if self._tracks and needed > self.taken:
            self.throttle.warn("input:late", f"live input {self.path.name}: the decoder needed input "
                               f"{1000 * (needed - self.taken) / self.engine.sample_rate:.0f} ms "
                               f"before it came; a render of the set will differ there (give "
                               f"live_input a longer delay)")


def start_live_input(engine, folder: Path, *, channel: int, delay, throttle) -> LiveSource:
    """A live input source of ``engine``'s input ``channel``, recorded into ``folder``."""
    playback = engine.playback
    if playback is None or not engine.playing:
        raise ParameterError("live_input() needs the engine playing live (the REPL)")
    if playback.inputs < 1:
        raise ParameterError("the audio stream was opened without inputs: start livelatent with "
                             "--inputs 2 (or engine.start(..., inputs=2))")
    if isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= playback.inputs:
        raise ParameterError(f"live_input(channel={channel!r}): an input channel from 1 to "
                             f"{playback.inputs}")
    least = minimum_delay(engine)
    rate = engine.sample_rate
    if delay is None:
        samples = least
    else:
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not np.isfinite(delay):
            raise ParameterError(f"live_input(delay={delay!r}): seconds, e.g. 0.3")
        # the frames are kept for RING_S seconds: a longer delay would read a ring row written
        # over since, the input of another moment (a render, from the recording, would not)
        most = int(RING_S * rate) - engine.lookahead - engine.codec.window - rate
        if not delay * rate <= most:
            raise ParameterError(f"live_input(delay={delay:g}): at most {most / rate:.0f} s (the last "
                                 f"{RING_S:g} s of input are kept)")
        samples = int(round(delay * rate))
        if samples < least:
            raise ParameterError(f"live_input(delay={delay:g}): at least {least / rate:.3f} s here (the "
                                 f"lookahead, a window and the device's input-to-output lag); a "
                                 f"smaller lookahead (--lookahead) makes it smaller")
    folder = Path(folder)
    count = 1
    while (folder / INPUTS_FOLDER / f"input{count}.json").exists():
        count += 1
    name = f"input{count}"
    file = f"{INPUTS_FOLDER}/{name}.flac"
    recorder = InputRecorder(engine, channel, folder / file, origin=engine.position,
                             delay=samples, throttle=throttle)
    source = LiveSource(name=name, channel=channel, delay=samples, origin=recorder.origin,
                        sample_rate=rate, file=file, recorder=recorder)
    with atomic_path(folder / INPUTS_FOLDER / f"{name}.json") as tmp:
        tmp.write_text(json.dumps({"name": name, **source.origin}), encoding="utf-8")
    engine.add_exit_hook(recorder.close)
    engine.events.info(f"live input {name}: channel {channel}, plays {1000 * samples / rate:.0f} ms "
                       f"after it comes in (recorded to {file})")
    return source


def recorded_inputs(folder: Path, rate: int):
    """``live_input`` in a replay of the set ``folder``: its n-th call gives the n-th input the
    set recorded (what the performance's n-th call made), read from its file."""
    made = []

    def live_input(channel: int = 1, delay=None):
        description = Path(folder) / INPUTS_FOLDER / f"input{len(made) + 1}.json"
        try:
            origin = json.loads(description.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise SetError(f"live_input(): the set has no recording {description.name} ({exc})") from None
        made.append(LiveSource.recorded(folder, origin, name=origin["name"], rate=rate))
        return made[-1]

    return live_input
