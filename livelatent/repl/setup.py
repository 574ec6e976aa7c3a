"""Setting up an engine for live coding: what keeps a REPL's sound free of underruns.

Measured over JACK on a loaded 2-core machine, each of these reduced underruns while IPython
worked in the same process: decoding 0.2 s ahead (free: a change still lands within a block or
two, since the engine rewinds), warming the model up before the stream opens, freezing the
start-up garbage (so later collections are short), and running the decode thread at a higher
priority when allowed (niceness -10, and the session's scheduling group at the same).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import gc
import os
import time
from pathlib import Path

import numpy as np

from ..engine.engine import MAX_LOOKAHEAD_S, Engine
from ..errors import ParameterError
from ..model.codec import Codec, load_model

__all__ = ["make_engine", "start_playing", "raise_process_priority", "freeze_garbage",
           "LOOKAHEAD_S", "AUDIO_NICENESS"]

# Decoded ahead of the listener. A change still lands within a block or two (the engine rewinds
# what was decoded but not heard), so this costs no latency; it is slack for the decode thread
# when the REPL's own thread holds the GIL a while (measured over JACK at period 1024: 46 ms of
# lookahead underran now and then while IPython ran a cell, 186 ms never).
LOOKAHEAD_S = 0.2
AUDIO_NICENESS = -10     # the decode thread's niceness, when allowed
_AUTOGROUP = Path("/proc/self/autogroup")     # Linux: this session's scheduling group


def make_engine(*, model=None, blocksize=None, lookahead: float | None = None, **options) -> Engine:
    """An engine set up for live coding: ``lookahead`` seconds decoded ahead (default
    :data:`LOOKAHEAD_S`), the model warmed up. ``model`` is a path or a loaded codec;
    ``options`` go to :class:`Engine` (``seed``, ``tempo``)."""
    codec = load_model(model) if not isinstance(model, Codec) else model
    kwargs = {} if blocksize is None else {"blocksize": int(blocksize)}
    if lookahead is None:
        lookahead = LOOKAHEAD_S
    elif not 0.02 <= lookahead <= MAX_LOOKAHEAD_S:
        raise ParameterError(f"--lookahead {lookahead:g}: seconds from 0.02 to {MAX_LOOKAHEAD_S:g}")
    engine = Engine(codec, lookahead=int(lookahead * codec.sample_rate), **kwargs, **options)
    # Touch every weight once now: the first decode of a cold model (pages faulted in, BLAS
    # buffers allocated) took longer than the few milliseconds between a cell landing and
    # the listener reaching it, and the first voice underran.
    codec.decode(np.zeros((4, codec.latent_dim), dtype=np.float32))
    codec.encode(np.zeros((4, codec.window), dtype=np.float32))
    return engine


def start_playing(engine: Engine, device=None, *, inputs: int = 0) -> None:
    """Play (taking ``inputs`` channels in), the engine's threads at a higher priority when
    allowed. Raises DeviceError."""
    with _audio_priority():
        engine.start(device, inputs=inputs)


def raise_process_priority() -> None:
    """This thread, and every thread started from it later, at AUDIO_NICENESS when allowed; and
    on Linux the scheduling group of this process's session too, until the process exits.

    Where the kernel groups tasks by session (autogroups, on by default on most distributions'
    kernels), niceness orders threads only within their group: the cores are shared between
    groups first. So a thread here holding the GIL for a moment (the OSC server's, IPython's)
    was still preempted by a busy program of another session, and the decode thread waited for
    it. Beside six busy loops, the JACK test of a mapping moved over OSC underran 2 runs in 20
    with the niceness alone, 1 in 30 with the group raised too.
    """
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) > AUDIO_NICENESS:
            os.setpriority(os.PRIO_PROCESS, 0, AUDIO_NICENESS)
    except (OSError, AttributeError):
        pass      # not root, no CAP_SYS_NICE, or not a Unix: normal priority
    previous = _autogroup_niceness()
    if previous is not None and previous > AUDIO_NICENESS and _set_autogroup_niceness(AUDIO_NICENESS):
        # the terminal's session goes on (a REPL killed by a signal leaves it raised)
        atexit.register(_set_autogroup_niceness, previous)


def _autogroup_niceness() -> int | None:
    """The niceness of this session's scheduling group (None: the kernel has no autogroups)."""
    try:
        return int(_AUTOGROUP.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def _set_autogroup_niceness(niceness: int) -> bool:
    for attempt in range(2):
        try:
            _AUTOGROUP.write_text(str(niceness))
            return True
        except OSError as exc:   # not allowed: a lower niceness needs CAP_SYS_NICE or an rlimit
            if exc.errno != errno.EAGAIN or attempt:
                return False
            time.sleep(0.1)      # without CAP_SYS_ADMIN, one change per 100 ms system-wide
    return False


def freeze_garbage() -> None:
    """Collect once, then leave everything alive now out of later collections.

    Start-up leaves a few hundred thousand objects (IPython, torch when a pack needs it); a
    full collection walking them all held the GIL long enough for the first voice to underrun.
    """
    gc.collect()
    gc.freeze()


@contextlib.contextmanager
def _audio_priority():
    """Run the block at a higher scheduling priority, when the OS allows it, then drop back.

    Linux gives each thread its own niceness and a new thread (or process) inherits its
    creator's, so the decode thread and the audio process, started inside this block, keep the
    higher priority while the calling thread (a Jupyter kernel's) returns to normal. Not root
    and no CAP_SYS_NICE: nothing changes.
    """
    previous = None
    if hasattr(os, "setpriority"):
        try:
            previous = os.getpriority(os.PRIO_PROCESS, 0)
            if previous > AUDIO_NICENESS:
                os.setpriority(os.PRIO_PROCESS, 0, AUDIO_NICENESS)
            else:
                previous = None
        except OSError:
            previous = None
    try:
        yield
    finally:
        if previous is not None:
            try:
                os.setpriority(os.PRIO_PROCESS, 0, previous)
            except OSError:
                pass
