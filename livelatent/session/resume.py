"""Carrying on after a crash: ``livelatent live --resume sets/NAME``.

The journal holds everything that changed the sound, fsynced as it happened, so a REPL killed
mid-performance (SIGKILL, a power cut) loses nothing recorded. Resuming builds an engine like
the performance's (its model, seed and tempo), replays the whole journal into it offline (every
batch on its sample, every cell run again to rebuild the performer's names) up to the journal's
last change, and hands that engine and those names to a new session that appends to the same
journal. Its ``session`` record is marked ``resumed`` with the sample it joined at: the
timeline carries on, so a render of the set is the first performance up to that sample, and
the resumed one from there.

The resumed sound starts from the state at the last recorded change: what played between that
change and the crash plays again from there, identically, since nothing changed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..controllers import Controllers
from ..errors import SetError
from .replay import Replayer, ReplayReport
from .sets import open_set, replay_namespace

__all__ = ["Rebuilt", "rebuild", "resume_point"]


@dataclass
class Rebuilt:
    """An engine in the state a journal ends in, and the names its cells built."""

    engine: object
    performance: object        # what the journal holds (the sessions it continues included)
    names: dict                # the replay's namespace, after the cells ran
    initial: dict              # what it held before they ran
    report: ReplayReport

    def live_names(self, live: dict) -> dict:
        """The replayed namespace made live: where the cells left one of the replay's own names
        alone, the session's (the performer's functions, ``save``, ``render``...) replaces it;
        what the cells defined or rebound stays. The replayed dict itself is kept, so the
        functions the cells defined, whose globals it is, see the live names too."""
        names = self.names
        for name, value in live.items():
            if name not in names or names[name] is self.initial.get(name):
                names[name] = value
        return names


def resume_point(performance) -> int:
    """The sample a resumed session joins at: where the listener was when the journal ends
    (its last ``heard`` record or its end), or its last change if that comes later."""
    samples = [performance.heard] + [b.sample for b in performance.batches]
    samples += [c.sample for c in performance.cells] + [c.position for c in performance.cells]
    samples += list(performance.resumed_at)
    if performance.end is not None:
        samples.append(performance.end)
    return max(samples, default=0)


def rebuild(folder, make_engine, *, progress=None) -> Rebuilt:
    """An engine in the state the set ``folder``'s journal ends in, and the names its cells
    built.

    ``make_engine(codec, seed=..., tempo=...)`` makes the engine (the REPL's sets it up for
    live coding); ``progress(position, end)`` is told how far the rebuild has got. The engine
    is at :func:`resume_point`, unsealed, with nothing recording it.
    """
    folder = Path(folder)
    performance, codec = open_set(folder)
    start = performance.session
    if start.version < 2:
        raise SetError(f"set {folder.name} was recorded by livelatent 0.1, whose journal holds "
                       f"only code: it cannot be resumed, only rendered")
    report = ReplayReport(sample_rate=codec.sample_rate)
    engine = make_engine(codec, seed=start.seed, tempo=start.tempo, channels=start.channels)
    names = replay_namespace(engine, folder)
    initial = dict(names)
    replayer = Replayer(engine, performance, folder, names=names, report=report)
    end = resume_point(performance)
    for action in replayer.actions():
        gap = action.when - engine.position
        if action.kind == "cell" and gap > 0:
            _render_away(engine, gap, end, progress)
        replayer.perform(action)
    _render_away(engine, max(0, end - engine.position), end, progress)
    engine.unseal()
    Controllers.of(engine).listen_for(engine.intended_voices())   # their faders play on
    report.samples = engine.position
    return Rebuilt(engine, performance, names, initial, report)


def _render_away(engine, samples: int, end: int, progress) -> None:
    for _ in engine.render_chunks(samples=samples):
        if progress is not None:
            progress(engine.position, end)
