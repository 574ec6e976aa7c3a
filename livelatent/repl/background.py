"""``render("layer.wav", seconds=600)`` from the REPL: a layer on disk while the music plays on.

The render runs on a *copy* of the live engine: a fresh offline :class:`Engine` with the same
model and seed, into which the voices playing now are added as they are (same sources,
strategy, curve, gain, pan and voice number, hence the same noise). Each voice starts from its
beginning at sample 0 of the file. The live engine is only read once, to copy its voices; the
render runs in a daemon thread and never touches it again.

Keeping live playback free of underruns: the render decodes with one BLAS thread (the live
engine asks the same, process-wide, while it plays), so it takes one core and leaves the other
to the live decode thread and the audio callback; the render thread asks the OS for a lower
priority (``os.setpriority`` on its native thread id, Linux). Its matrix products release the
GIL, and between them the live decode thread waits at most one switch interval for it (the
REPL sets 1 ms).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path


from ..blas import hold_one_blas_thread, release_blas_threads
from ..engine.commands import AddVoice
from ..engine.engine import Engine
from ..errors import LiveLatentError, ParameterError, check_number
from ..sinks.file import check_render_name, render_to_file

__all__ = ["RenderJob", "render_in_background", "RENDER_NICENESS", "RENDER_CHUNK_STEPS"]

RENDER_NICENESS = 10        # added to the render thread's niceness (Linux); the live threads keep theirs
RENDER_CHUNK_STEPS = 64     # engine steps per chunk (64 x 512 samples: ~0.74 s of audio)


class RenderJob:
    """A render running in the background. ``job.wait()`` blocks; ``job.cancel()`` stops it.

    Attributes
    ----------
    path : Path
        The file it writes (complete only when ``done`` and ``error is None``).
    seconds : float
        Length of the render.
    rendered : float
        Seconds rendered so far.
    done : bool
    error : str or None
        Why it failed (the file is then not written).
    speed : float
        Times faster than real time, so far.
    """

    def __init__(self, path: Path, seconds: float, voices: int):
        self.path = path
        self.seconds = float(seconds)
        self.voices = voices
        self.rendered = 0.0
        self.error: str | None = None
        self._began = time.perf_counter()
        self._finished: float | None = None
        self._cancel = threading.Event()
        self._done = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def fraction(self) -> float:
        return min(1.0, self.rendered / self.seconds) if self.seconds else 1.0

    @property
    def elapsed(self) -> float:
        end = self._finished if self._finished is not None else time.perf_counter()
        return end - self._began

    @property
    def speed(self) -> float:
        return self.rendered / self.elapsed if self.elapsed > 0 else 0.0

    def wait(self, timeout: float | None = None) -> Path:
        """Wait for the render; returns its file, or raises the error that stopped it."""
        if not self._done.wait(timeout):
            raise LiveLatentError(f"render of {self.path} still running after {timeout} s "
                                  f"({100 * self.fraction:.0f}%)")
        if self.error is not None:
            raise LiveLatentError(f"render of {self.path} failed: {self.error}")
        return self.path

    def cancel(self) -> None:
        """Stop the render; nothing is written."""
        self._cancel.set()

    def progress_text(self) -> str:
        """One short line for the status bar, e.g. ``render layer.wav 42% 85x``."""
        if self.error is not None:
            return f"render {self.path.name} failed"
        if self.done:
            return f"rendered {self.path.name}"
        return f"render {self.path.name} {100 * self.fraction:.0f}% {self.speed:.0f}x"

    def __repr__(self) -> str:
        if self.error is not None:
            state = f"failed: {self.error}"
        elif self.done:
            state = f"done in {self.elapsed:.1f} s ({self.speed:.0f}x real time)"
        else:
            state = (f"{100 * self.fraction:.0f}% ({self.rendered:.0f} of {self.seconds:g} s, "
                     f"{self.speed:.0f}x real time)")
        voices = f"{self.voices} voice{'s' * (self.voices != 1)}"
        return f"<render {self.path}: {voices}, {self.seconds:g} s, {state}>"


def _copy_engine(engine):
    """An offline engine with the same model, seed, tempo and outputs, playing ``engine``'s
    voices."""
    score = engine.intended()
    copy = Engine(engine.codec, seed=engine.seed, tempo=score.clock.bpm, channels=engine.channels)
    params = score.sounding()
    if params:
        copy.submit(*[AddVoice(p.changed(stop_at=None, fade=0)) for p in params])
    return copy, len(params)


def _lower_priority() -> None:
    if hasattr(os, "setpriority") and sys.platform.startswith("linux"):
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + RENDER_NICENESS)
        except OSError:
            pass   # not allowed: render at the same priority


def render_in_background(engine, path, seconds: float, *,
                         chunk_steps: int = RENDER_CHUNK_STEPS) -> RenderJob:
    """Render the voices ``engine`` plays now to ``path`` in a background thread.

    Parameters
    ----------
    engine : Engine
        The live (or offline) engine whose voices to render; it is not disturbed.
    path : str or Path
        A ``.wav`` (float) or ``.flac`` (24-bit) file, written atomically.
    seconds : float
        Length of the render.

    When it finishes or fails, an event on ``engine.events`` says so.

    Returns
    -------
    RenderJob

    >>> job = render_in_background(engine, "layer.wav", 600)     # doctest: +SKIP
    """
    path = check_render_name(path)
    seconds = check_number(seconds, name="seconds", low=0.0, high=24 * 3600.0,     # ("1" and True
                           meaning="of seconds from 0 to 86400")                 # were taken)
    if not seconds > 0:
        raise ParameterError("seconds=0: a render needs at least some of a second")
    copy, count = _copy_engine(engine)
    if count == 0:
        raise LiveLatentError("no voices are playing: start one, then render(); "
                              "e.g. voice(flute, cello, curve=sine(8))")
    job = RenderJob(path, seconds, count)

    def work():
        _lower_priority()
        # One BLAS thread (process-wide, as the live engine already asks while it plays): two
        # threads on a machine whose other core is busy ran a decode 35x slower (measured:
        # 61 ms against 1.7 ms for a (32, 2048) x (2048, 1024) product).
        hold_one_blas_thread()

        def on_block(frames: int) -> None:
            if job._cancel.is_set():
                raise _Cancelled()
            job.rendered += frames / copy.sample_rate

        try:
            render_to_file(copy, path, seconds, progress=False, on_block=on_block,
                           chunk_steps=chunk_steps)
            job._finished = time.perf_counter()
            engine.events.info(f"rendered {path} ({seconds:g} s in {job.elapsed:.1f} s, "
                               f"{job.speed:.0f}x real time)")
        except _Cancelled:
            job.error = "cancelled"
            engine.events.info(f"render of {path} cancelled; nothing written")
        except Exception as exc:   # reported, never raised into the performer's thread
            job.error = f"{type(exc).__name__}: {exc}"
            engine.events.error(f"render of {path} failed: {job.error}")
        finally:
            release_blas_threads()
            if job._finished is None:
                job._finished = time.perf_counter()
            job._done.set()

    job.thread = threading.Thread(target=work, name=f"livelatent-render-{path.name}", daemon=True)
    job.thread.start()
    return job


class _Cancelled(Exception):
    pass
