"""Deadline: interrupting a performer's code that runs too long, on any thread, nested."""

import threading
import time

from livelatent.deadline import Deadline, interruptible


def _spin_until_interrupted(seconds: float) -> bool:
    """Whether a loop inside ``Deadline(seconds)`` was interrupted by it (within 5 s)."""
    began = time.monotonic()
    try:
        with Deadline(seconds) as deadline:
            while time.monotonic() - began < 5.0:
                pass
    except KeyboardInterrupt:
        return deadline.fired
    return False


def test_a_deadline_interrupts_a_loop_on_any_thread_and_one_left_in_time_never_fires():
    assert _spin_until_interrupted(0.1)
    results = []
    worker = threading.Thread(target=lambda: results.append(_spin_until_interrupted(0.1)))
    worker.start()
    worker.join(timeout=10)
    assert results == [True]
    with Deadline(0.05) as left:                   # left before its time: nothing goes off later
        pass
    time.sleep(0.15)
    assert not left.fired


def test_thousands_of_deadlines_share_one_watchdog_thread():
    # a timer every 64th of a beat through a long render entered tens of thousands of deadlines,
    # each with a thread of its own (threading.Timer)
    before = threading.active_count()
    for _ in range(5000):
        with Deadline(10.0):
            pass
    assert threading.active_count() <= before + 1
    assert [t.name for t in threading.enumerate()].count("livelatent-deadlines") <= 1


def test_nested_deadlines_the_inner_firing_leaves_the_outer_in_force():
    began = time.monotonic()
    outer_fired = False
    try:
        with Deadline(0.4) as outer:
            try:
                with Deadline(0.1) as inner:
                    while time.monotonic() - began < 5.0:
                        pass
            except KeyboardInterrupt:
                assert inner.fired and not outer.fired and interruptible()
            while time.monotonic() - began < 5.0:          # the outer one still stops this
                pass
    except KeyboardInterrupt:
        outer_fired = outer.fired
    assert outer_fired and time.monotonic() - began < 2.0


def test_off_the_main_thread_only_a_deadline_that_fired_makes_an_interrupt_an_interruption():
    # a curve's own KeyboardInterrupt inside a deadline that has not fired is the curve's error
    # (it reverts the voice), not an interruption that would end the decode thread
    seen = {}

    def run():
        with Deadline(5.0):
            seen["before"] = interruptible()
        try:
            with Deadline(0.05) as fired:
                while True:
                    pass
        except KeyboardInterrupt:
            seen["fired"] = fired.fired
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    assert seen == {"before": False, "fired": True}


def test_leaving_again_after_an_interrupted_exit_clears_the_thread():
    # an interrupt sent just as a block ends can be raised inside __exit__ before it has taken
    # the deadline off the thread: the thread stayed "inside a fired deadline" for good, and a
    # curve's own KeyboardInterrupt there counted as an interruption. leave() (in a finally)
    # finishes what __exit__ began, and does nothing the second time
    seen = {}

    def run():
        deadline = Deadline(5.0)
        deadline.__enter__()
        deadline.fired = True                # fired; its __exit__ stopped before doing anything
        seen["stuck"] = interruptible()
        deadline.leave()
        seen["after"] = interruptible()
        deadline.leave()
        deadline.__exit__(None, None, None)
        seen["again"] = interruptible()
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    assert seen == {"stuck": True, "after": False, "again": False}
