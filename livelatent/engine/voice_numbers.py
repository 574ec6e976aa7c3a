"""Voice numbers: each voice of an engine gets one no other voice of it has had."""

from __future__ import annotations

import threading

__all__ = ["VoiceNumbers"]


class VoiceNumbers:
    """Hands out voice numbers from any thread. A writer's open batch records the numbers it
    took (a discarded batch gives them back); a replayed cell's batch brings the numbers its
    voices had live, and those are handed out first."""

    def __init__(self):
        self._lock = threading.Lock()
        self._next = 0

    def take(self, batch) -> int:
        if batch is not None and batch.given_numbers:
            number = batch.given_numbers.pop(0)
        else:
            with self._lock:
                number = self._next
                self._next += 1
        with self._lock:
            self._next = max(self._next, number + 1)
        if batch is not None:
            batch.numbers.append(number)
        return number

    def issued(self, number: int) -> bool:
        """Whether some voice of this engine has had ``number`` (it may have ended since)."""
        with self._lock:
            return 0 <= number < self._next

    def give_back(self, numbers) -> None:
        """A discarded batch's numbers become free again, if nobody took one since."""
        with self._lock:
            if numbers and sorted(numbers) == list(range(min(numbers), self._next)):
                self._next = min(numbers)

    def at_least(self, number: int) -> None:
        """Never hand out ``number`` or below: a replay landed a voice with it."""
        with self._lock:
            self._next = max(self._next, number + 1)
