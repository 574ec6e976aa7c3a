"""The interpreter's switch interval, short while anyone needs it.

Like the BLAS thread count (:mod:`.blas`), the switch interval belongs to the whole process.
Live playback wants it at 1 ms (the decode thread needs the GIL for a moment every few
milliseconds) and a MIDI clock at 0.5 ms (a tick must not wait behind another thread); they
start and stop in any order, so each saving and restoring it for itself handed back a stale value
(a clock closed while playing set 5 ms under the decode thread; playback stopped after it left
0.5 ms for good). Holders are counted instead: the interval is the shortest any holder asks
for, and the last one to leave restores what was there before the first.
"""

from __future__ import annotations

import sys
import threading

__all__ = ["hold_switch_interval", "release_switch_interval"]

_lock = threading.Lock()
_held: list[float] = []          # the intervals asked for by the holders now
_before: float | None = None     # the interval before the first holder


def hold_switch_interval(seconds: float) -> None:
    """Keep the switch interval at ``seconds`` or shorter until :func:`release_switch_interval`
    (with the same ``seconds``)."""
    global _before
    with _lock:
        if not _held:
            _before = sys.getswitchinterval()
        _held.append(seconds)
        sys.setswitchinterval(min(_before, *_held))


def release_switch_interval(seconds: float) -> None:
    """One holder of ``seconds`` fewer; the last one restores the interval from before."""
    with _lock:
        if seconds not in _held:
            return
        _held.remove(seconds)
        sys.setswitchinterval(min(_before, *_held) if _held else _before)
