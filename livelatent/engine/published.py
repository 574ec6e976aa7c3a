"""What readers see: an immutable snapshot of the timeline, published once per step.

The status line, ``save()``, ``render()`` and :class:`~livelatent.handle.Voice` handles never read
the engine's working state. They read a :class:`Published` snapshot: the score (voices and
clock) before one step, with the schedule of changes at that moment. It is replaced whole,
never changed, so a reader never sees a half-applied state and needs no lock.

Two questions are answered from it, with the one interpreter of commands
(:func:`~livelatent.engine.commands.apply`):

- what plays at the listener's position (the snapshot of the step the listener is in);
- what the performer intends: the newest snapshot with every change not yet applied, and
  the reader's own batch not yet sent, applied to a copy (:func:`intended`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, NamedTuple

from .commands import Command, Score, apply, quantised_target

__all__ = ["Entry", "Published", "intended", "pending_entries"]

_UNSENT = 1 << 62     # the sending order of commands not sent yet: after every sent one


class Entry(NamedTuple):
    """A command in the schedule: sent to ``step``, ``seq``-th in sending order."""

    step: int
    seq: int
    command: Command


@dataclass(frozen=True)
class Published:
    """The timeline before ``step``: its score, its schedule, and what it has played so far."""

    step: int
    step_size: int
    score: Score
    schedule: tuple            # Entry, sorted by (step, seq); applied ones too, until forgotten
    resolved: Mapping[int, int]   # seq -> step, for quantised commands whose beat is known
    peak: float                # of the block that ended at this step
    sound_end: int             # the sample after which everything decoded so far is silent

    @property
    def sample(self) -> int:
        return self.step * self.step_size

    def target(self, entry: Entry) -> int:
        """The step ``entry`` lands on (a quantised one not resolved yet: a provisional guess
        from this snapshot's clock)."""
        if entry.command.quant == "now":
            return entry.step
        known = self.resolved.get(entry.seq)
        if known is not None:
            return known
        at = max(entry.step, self.step)
        return quantised_target(self.score.clock, entry.command, at * self.step_size, self.step_size)


def pending_entries(published: Published, from_sample: int) -> list[tuple[int, Entry]]:
    """The scheduled changes landing at or after ``from_sample``: (sample, entry), in order."""
    found = []
    for entry in published.schedule:
        target = published.target(entry)
        if target * published.step_size >= from_sample:
            found.append((target * published.step_size, entry))
    found.sort(key=lambda item: (item[0], item[1].seq))
    return found


def intended(published: Published, batch_commands=()) -> Score:
    """The score as the performer last asked for it: ``published`` with every change not yet
    applied, then ``batch_commands`` (a batch still open), applied to a copy."""
    changes = [(sample, entry.seq, entry.command)
               for sample, entry in pending_entries(published, published.sample)]
    # the open batch would land now, and after everything sent so far at the same step
    changes += [(published.sample, _UNSENT + offset, command)
                for offset, command in enumerate(batch_commands)]
    changes.sort(key=lambda change: (change[0], change[1]))
    score = published.score
    for sample, seq, command in changes:
        score = apply(score, command, at=sample, seq=seq)
    return score
