"""Render an engine to a WAV or FLAC file, faster than real time, with a progress bar.

Files are written to a temporary name beside the target and renamed when complete, so a
render that is interrupted never leaves a half-written file under the name asked for.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from ..atomic import PendingFile
from ..engine.offline import check_seconds, remake_leftover
from ..engine.resample import Resampler, StreamConverter
from ..errors import ParameterError, check_number, is_whole

__all__ = ["render_to_file", "check_not_played", "FORMATS"]

FORMATS = {".wav": ("WAV", "FLOAT"), ".flac": ("FLAC", "PCM_24")}
FLAC_CHANNELS = 8         # the most a FLAC file holds
_PROGRESS_FROM_S = 20.0   # renders shorter than this finish before a bar is worth drawing


class _AtomicSoundFile:
    """A file written beside its name and renamed when whole; what it is given, at the
    engine's rate, is resampled to the file's when they differ (counts are the engine's)."""

    def __init__(self, path: Path, converter: StreamConverter, origin: int, channels: int):
        fmt, subtype = FORMATS[path.suffix.lower()]
        self.pending = PendingFile(path)
        self.path = path
        self.converter = converter
        self.origin = origin
        try:                    # (the name's bytes: soundfile cannot encode one that is no UTF-8)
            self.file = sf.SoundFile(os.fsencode(self.pending.tmp), "w", format=fmt,
                                     samplerate=converter.resampler.rate_out, channels=channels,
                                     subtype=subtype)
        except BaseException:
            self.pending.discard()
            raise
        self.channels = channels
        self.frames = 0
        self.held: np.ndarray | None = None   # stems hold their newest block back

    def write(self, block: np.ndarray) -> None:
        self.file.write(self.converter.push(block))
        self.frames += block.shape[0]

    def hold(self, block: np.ndarray) -> None:
        """Write the block held so far and hold this one (the mix may end inside it)."""
        if self.held is not None:
            self.write(self.held)
        self.held = block.copy()

    def finish(self, frames: int, after: np.ndarray | None = None) -> None:
        """Write what is held and pad with silence, to exactly ``frames``. A resampled file's
        last samples read the engine's samples ``after`` its end (given, or those held past
        it), so the next render of the engine joins it seamlessly."""
        if self.held is not None:
            cut = max(0, frames - self.frames)
            if after is None and cut < self.held.shape[0]:
                after = self.held[cut:]
            self.write(self.held[:cut])
            self.held = None
        if self.frames < frames:
            self.write(np.zeros((frames - self.frames, self.channels), dtype=np.float32))
        self.file.write(self.converter.flush(self.origin + frames, after))

    def commit(self) -> Path:
        self.file.close()
        return self.pending.commit()

    def discard(self) -> None:
        self.file.close()
        self.pending.discard()


def _stem_path(path: Path, name: str, taken: set) -> Path:
    """``OUT.<name>.wav``; a second voice of that name (a voice replaced by name, or names that
    differ only in characters a file name cannot hold) gets ``OUT.<name>-2.wav``, and so on."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "voice"
    stem, count = path.with_name(f"{path.stem}.{safe}{path.suffix}"), 1
    while stem in taken:
        count += 1
        stem = path.with_name(f"{path.stem}.{safe}-{count}{path.suffix}")
    taken.add(stem)
    return stem


def check_render_name(path) -> Path:
    """``path`` as a Path when a render can be written there by its name (.wav or .flac)."""
    if not isinstance(path, (str, os.PathLike)):              # (5, None, bytes)
        raise ParameterError(f"cannot render to {path!r:.60}: give a file name, e.g. 'layer.wav'")
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ParameterError(f"cannot render to {path.name}: use a .wav or .flac file name")
    return path


def check_not_played(path, files: dict, *, stems: bool = False) -> None:
    """Refuse to render over an audio file that is played (``files``: file -> who plays it):
    the render would replace the performer's recording with itself, without a word. With
    ``stems``, a played file named as a stem may be (``OUT.<name>.wav`` beside ``OUT.wav``)
    is refused too: which voices the render meets is known only as it goes."""
    target = _resolved(Path(path))
    if target is None:                 # (a name that cannot be a file: writing it says why)
        return
    for file, player in files.items():
        played = _resolved(Path(file))
        if played == target:
            raise ParameterError(f"cannot render to {path}: {player} plays that file; render to "
                                 f"another file")
        if stems and played is not None and played.parent == target.parent \
                and played.suffix == target.suffix and played.name.startswith(target.stem + "."):
            raise ParameterError(f"cannot render to {path} with stems: a stem could be named "
                                 f"{played.name}, which {player} plays; render to another name")


def _played_files(engine) -> dict:
    """The audio files the engine's voices play, each with who plays it."""
    files = {}
    for params in engine.intended_voices():
        played = [params.a, params.b, *(params.path.sources() if params.path is not None else ())]
        for source in played:
            for file in source.base.paths:                       # (arrays, live input: none)
                files.setdefault(file, f"voice {params.name} (source {source.name!r})")
    return files


def _resolved(path: Path) -> Path | None:
    try:
        return path.resolve()
    except (OSError, ValueError, RuntimeError):
        return None


def render_to_file(engine, path, seconds: float | None, *, stems: bool = False,
                   progress: bool | None = None, on_block=None, chunk_steps: int | None = None,
                   rate: int | None = None) -> list[Path]:
    """Render ``engine`` from its position to ``path`` (.wav float32 or .flac 24-bit).

    ``stems=True`` also writes one file per voice (before the master limiter), named
    ``OUT.<voice name>.wav`` (``-2``, ``-3``... after the name when voices share it), each as
    long as the mix. Returns the paths written, mix first.
    ``rate`` resamples to that rate with the resampler live playback uses on a device of that
    rate, so the file equals what such a device played; its last samples read the engine's
    next ones, so renders in pieces join as seamlessly as at the engine's rate, stems included:
    the samples an earlier render (or live playback, as it stopped) made ahead are made again
    for them.
    ``on_block(frames)`` is called after each block is written (raising from it abandons the
    render: nothing is left under the names asked for). ``chunk_steps`` sets the engine steps
    per block.
    """
    path = check_render_name(path)
    check_not_played(path, _played_files(engine), stems=stems)
    if seconds is not None:
        seconds = check_seconds(seconds)
    if chunk_steps is not None and not (is_whole(chunk_steps) and chunk_steps >= 1):
        raise ParameterError(f"chunk_steps={chunk_steps!r:.40} must be a whole number of steps, 1 or more")
    if path.suffix.lower() == ".flac" and engine.channels > FLAC_CHANNELS:   # (not libsndfile's
        raise ParameterError(f"cannot render {engine.channels} outputs to {path.name}: FLAC "  # error)
                             f"holds at most {FLAC_CHANNELS} channels; use a .wav file")
    origin = engine.position
    rate = engine.sample_rate if rate is None else _check_rate(rate)
    resampler = Resampler(engine.sample_rate, rate)

    def opened(target: Path, history) -> _AtomicSoundFile:
        return _AtomicSoundFile(target, StreamConverter(resampler, origin, history, engine.channels),
                                origin, engine.channels)

    mix = opened(path, engine.handoff.recent(resampler.reach))
    stem_files: dict[int, _AtomicSoundFile] = {}
    stem_paths: set[Path] = set()

    def write_stem(number: int, name: str, first_sample: int, block: np.ndarray) -> None:
        before = None
        if first_sample < origin:     # the leftover made again from its span's start: what comes
            before = block[:origin - first_sample]     # before it is what a resampler reads back
            block, first_sample = block[origin - first_sample:], origin
            if not block.shape[0]:
                return
        handle = stem_files.get(number)
        if handle is None:
            handle = stem_files[number] = opened(_stem_path(path, name, stem_paths), before)
        gap = first_sample - origin - handle.frames - (0 if handle.held is None else handle.held.shape[0])
        if gap > 0:
            handle.hold(np.zeros((gap, engine.channels), dtype=np.float32))
        handle.hold(block)

    total_s = seconds
    # a bar only on a terminal: in a pipe or a log it cannot be cleared, and ran into the next line
    show = progress if progress is not None else (
        (total_s is None or total_s >= _PROGRESS_FROM_S) and sys.stderr.isatty())
    bar = tqdm(total=None if total_s is None else round(total_s, 2), unit="s", desc=path.name,
               disable=not show, leave=False, bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} s [{elapsed}<{remaining}]")
    engine.set_stem_sink(write_stem if stems else None)
    try:
        if stems and engine.handoff.leftover_size:    # rendered before stems were asked for:
            remake_leftover(engine)                     # each voice's part of it
        chunks = {} if chunk_steps is None else {"chunk_steps": chunk_steps}
        for block in engine.render_chunks(seconds, progress=lambda n: bar.update(n / engine.sample_rate),
                                          **chunks):
            mix.write(block)
            if on_block is not None:
                on_block(block.shape[0])
        engine.set_stem_sink(None)
        mix.finish(mix.frames, _following(engine, mix.converter.tail_needed) if seconds is not None
                   else None)                     # (a render to the voices' end ends in silence)
        written = [mix.commit()]
        for handle in stem_files.values():
            handle.finish(mix.frames)     # a render's last step may run past its end
            written.append(handle.commit())
        return written
    except BaseException:
        for handle in stem_files.values():
            handle.discard()
        mix.discard()                 # last: the folder made for them goes with it, when empty
        raise
    finally:
        engine.set_stem_sink(None)
        bar.close()


def _following(engine, count: int) -> np.ndarray | None:
    """The ``count`` samples the engine renders next, given back to it: a resampled file's last
    samples read them, as a device's did, and the next render starts with them."""
    if not count:
        return None
    ahead = np.concatenate(list(engine.render_chunks(samples=count)))
    engine.handoff.give_back(ahead)
    return ahead


def _check_rate(rate) -> int:
    value = check_number(rate, name="rate", low=8000, high=384000, meaning="of Hz from 8000 to 384000")
    if value != int(value):
        raise ParameterError(f"rate={rate!r} must be a whole number of Hz")
    return int(value)
