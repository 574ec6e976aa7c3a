"""The threads that work ahead for the decode thread: started on demand, ended when idle, and
never leaving asked-for work without a thread."""

import threading
import time
from collections import deque

import pytest

from livelatent.engine import worker
from livelatent.engine.worker import WorkAhead


class _Queue:
    def __init__(self, fail_on=None):
        self.items, self.done, self.threads = deque(), [], []
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def work_once(self) -> bool:
        with self.lock:
            item = self.items.popleft() if self.items else None
        if item is None:
            time.sleep(0.001)
            return False
        if item == self.fail_on:
            raise RuntimeError("boom")
        self.done.append(item)
        self.threads.append(threading.get_ident())
        return True

    def pending(self) -> bool:
        return bool(self.items)


def _threads(name):
    return [t for t in threading.enumerate() if t.name == name and t.is_alive()]


def _wait_for(condition, seconds=5.0):
    until = time.monotonic() + seconds
    while not condition() and time.monotonic() < until:
        time.sleep(0.002)
    return condition()


@pytest.fixture
def short_idle(monkeypatch):
    monkeypatch.setattr(worker, "IDLE_S", 0.05)


def test_a_thread_starts_on_the_first_ask_and_ends_when_idle(short_idle):
    queue = _Queue()
    ahead = WorkAhead(queue.work_once, queue.pending, "test-work-ahead-1")
    assert not _threads("test-work-ahead-1")
    for item in range(5):
        queue.items.append(item)
        ahead.wake()
    assert _wait_for(lambda: queue.done == [0, 1, 2, 3, 4])
    assert len(set(queue.threads)) == 1                      # one thread, however many asks
    assert _wait_for(lambda: not _threads("test-work-ahead-1"))
    queue.items.append(5)                                    # the next ask starts another
    ahead.wake()
    assert _wait_for(lambda: queue.done[-1:] == [5])


def test_work_asked_for_as_the_thread_ends_is_done(short_idle):
    """Work that arrives while the thread decides to end is not left behind: the decision and
    wake() share a lock, and the thread stays when work is pending."""
    queue = _Queue()
    ahead = WorkAhead(queue.work_once, queue.pending, "test-work-ahead-2")
    for item in range(200):
        queue.items.append(item)
        ahead.wake()
        time.sleep(0.05 * (item % 3) / 2)                    # around the idle time, again and again
    assert _wait_for(lambda: len(queue.done) == 200)


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_an_error_in_the_work_ends_the_thread_quietly_and_the_next_ask_starts_one(short_idle):
    queue = _Queue(fail_on="bad")
    ahead = WorkAhead(queue.work_once, queue.pending, "test-work-ahead-3")
    queue.items.append("bad")
    ahead.wake()
    assert _wait_for(lambda: not queue.items and not _threads("test-work-ahead-3"))
    queue.items.append("good")
    ahead.wake()
    assert _wait_for(lambda: queue.done == ["good"])
