"""A curve(fn) that turns slow after its check: interrupted, journaled, replayed the same."""

import json
import time

import numpy as np
import pytest
import soundfile as sf

import jackutil
from livelatent import Engine, curve, sine, voice
from livelatent.engine.channels_ahead import block_values
from livelatent.engine.slow_blocks import SlowBlocks, block_key, runs_code

SR = 44100
SLOW_AFTER = 4


def turns_slow(after_beats: float, seconds: float):
    """A curve function, quick before ``after_beats`` and busy ``seconds`` per call after."""
    def fn(t):
        t = np.asarray(t, dtype=float)
        if (t > after_beats).any():
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                pass
        return 0.5 + 0.4 * np.sin(t)
    return fn


def sounding(captured):
    loud = np.flatnonzero(np.any(captured != 0, axis=1))
    return captured[loud[0]:loud[-1] + 1] if loud.size else captured[:0]


@pytest.fixture
def short_check(monkeypatch):
    import livelatent.checks
    monkeypatch.setattr(livelatent.checks, "CURVE_CHECK_WINDOWS", 64)   # 1.5 beats checked


def test_only_voices_running_a_python_function_are_timed(sources):
    with Engine() as engine:
        plain = voice(*sources, curve=sine(2) * 0.5 + 0.25)
        coded = voice(*sources, curve=curve(lambda t: 0.5 + 0.0 * t))
        params = {p.name: p for p in engine.intended_voices()}
    assert not runs_code(params[plain.name]) and runs_code(params[coded.name])


def test_a_block_key_is_the_same_for_the_same_inputs_and_differs_otherwise(sources):
    with Engine() as engine:
        voice(*sources, curve=curve(lambda t: 0.5 + 0.0 * t))
        params = engine.intended_voices()[0]
        clock = engine.clock
        key = block_key(params, 1, clock)
        assert key == block_key(params.changed(gain=0.2), 1, clock)
        assert key != block_key(params, 2, clock)
        assert key != block_key(params.changed(curve_start=params.curve_start + 1), 1, clock)
        assert key != block_key(params, 1, clock.with_tempo(90.0, 0))


def test_a_curve_that_turns_slow_offline_reverts_at_its_block_and_is_told(sources, short_check):
    with Engine() as engine:
        slow = engine.timeline.slow_blocks
        slow.limit_s = 0.2
        told = []
        slow.on_slow = lambda key, params, window: told.append((key, params.name, window))
        v = voice(*sources, curve=sine(1))
        v.curve = curve(turns_slow(4.0, 30.0))
        began = time.perf_counter()
        audio = engine.render_array(8.0)
        took = time.perf_counter() - began
        messages = engine.events.texts()
    assert took < 10                                     # not the 30 s a call takes
    assert [(name, window) for _, name, window in told] == [(v.name, 256)]   # block 1, once
    assert len(messages) == 1 and "took over 0.2 s" in messages[0]
    assert "reverted to its last good curve" in messages[0]
    assert np.sqrt(np.mean(audio[-SR:] ** 2)) > 0.01     # the sound goes on


def test_a_replay_never_runs_a_recorded_block_and_runs_others_to_their_end(sources, short_check):
    def render(keys=None, limit=None):
        with Engine(seed=4) as engine:
            slow = engine.timeline.slow_blocks
            told = []
            slow.on_slow = lambda key, params, window: told.append(key)
            if keys is not None:
                slow.replay(keys)
            else:
                slow.limit_s = limit
            v = voice(*sources, curve=sine(1))
            v.curve = curve(turns_slow(4.0, 0.3))
            audio = engine.render_array(5.0)
            said.extend(engine.events.texts())
            return audio, told
    said = []
    live, told = render(limit=0.1)
    assert len(told) == 1
    replayed, again = render(keys=set(told))
    assert again == [] and np.array_equal(live, replayed)
    assert "took over 0.1 s" in said[-1]                 # live's deadline, not the render's
    unrecorded, _ = render(keys=set())                     # slow but run: the curve's own values
    assert not np.array_equal(live, unrecorded)


def test_the_first_outcome_of_a_block_wins_on_either_thread(sources):
    with Engine() as engine:
        voice(*sources, curve=curve(lambda t: 0.5 + 0.0 * t))
        slowly = curve(turns_slow(0.0, 0.05))       # (a voice could not start with it: too slow)
        params = engine.intended_voices()[0].changed(curve=slowly, good_curve=slowly)
        clock = engine.clock
        slow = SlowBlocks()
        told = []
        slow.on_slow = lambda *args: told.append(args)
        slow.limit_s = 1.0
        passed, _ = block_values(params, 1, clock, slow)      # passed in time
        slow.limit_s = 0.01
        again, _ = block_values(params, 1, clock, slow)       # slower now: it plays as it did
        assert np.array_equal(passed, again) and told == []
        _, revert = block_values(params, 2, clock, slow)      # a block never passed: slow
        assert len(told) == 1 and revert is not None and revert.window == 512
        slow.limit_s = 1.0
        _, still = block_values(params, 2, clock, slow)       # and it stays so
        assert still is not None and len(told) == 1


def test_a_block_stopped_while_its_thread_waited_is_tried_again_not_found_slow(sources):
    # the deadline is wall time; a thread that waited for the GIL (a cell in a long C call) or
    # for a core did not run the code that long: the machine's load must not revert a voice
    with Engine() as engine:
        voice(*sources, curve=curve(lambda t: 0.5 + 0.0 * t))
        params, clock = engine.intended_voices()[0], engine.clock
        slow = SlowBlocks()
        slow.limit_s = 0.05
        told, calls = [], []
        slow.on_slow = lambda *args: told.append(args)

        def waits_once():
            calls.append(1)
            if len(calls) == 1:
                time.sleep(0.2)              # waiting: no CPU time spent
            return "worked out"
        assert slow.run(params, 1, clock, waits_once, lambda limit: "instead", 256) == "worked out"
        assert len(calls) == 2 and told == []

        def always_waits():
            time.sleep(0.1)
            return "worked out"
        assert slow.run(params, 2, clock, always_waits, lambda limit: "instead", 512) == "instead"
        assert len(told) == 1                # after its tries: slow all the same


def test_the_decode_thread_tries_a_block_it_needs_now_once(sources, short_check):
    # a function waiting (no CPU time) was tried three times where the block was needed at
    # once: three deadlines' worth of silence instead of one
    calls = []

    def waits(t):
        t = np.asarray(t, dtype=float)
        if (t > 4).any():
            calls.append(1)
            time.sleep(0.3)
        return 0.5 + 0.0 * t

    with Engine() as engine:                      # (offline: the block is worked out as needed)
        engine.timeline.slow_blocks.limit_s = 0.1
        v = voice(*sources, curve=sine(1))
        v.curve = curve(waits)
        engine.render_array(4.0)
    assert len(calls) == 1


def test_ctrl_c_in_a_slow_block_is_not_taken_for_its_deadline(sources):
    # the deadline's interrupt is a KeyboardInterrupt too: one that is not the deadline's goes on
    with Engine() as engine:
        def interrupted(t):
            raise KeyboardInterrupt
        voice(*sources, curve=curve(lambda t: 0.5 + 0.0 * t))
        params, clock = engine.intended_voices()[0], engine.clock
        slow = SlowBlocks()
        slow.limit_s = 5.0
        with pytest.raises(KeyboardInterrupt):
            slow.run(params, 1, clock, lambda: interrupted(0), lambda limit: None, 256)


def test_a_function_that_catches_the_interrupt_is_stopped_all_the_same(sources, short_check):
    # "try: <slow> except BaseException: return 0.0" caught the deadline's interrupt and went on:
    # the block passed with the value at the interrupted window, unjournaled, and the replay
    # worked out the real values
    def swallows(t):
        t = np.asarray(t, dtype=float)
        if (t > 4).any():
            try:
                end = time.perf_counter() + 0.3
                while time.perf_counter() < end:
                    pass
            except BaseException:
                return 0.0 * t
        return 0.5 + 0.4 * np.sin(t)

    def render(keys=None):
        with Engine(seed=2) as engine:
            slow = engine.timeline.slow_blocks
            told = []
            slow.on_slow = lambda key, params, window: told.append(key)
            if keys is None:
                slow.limit_s = 0.1
            else:
                slow.replay(keys)
            v = voice(*sources, curve=sine(1))
            v.curve = curve(swallows)
            return engine.render_array(4.0), told
    live, told = render()
    assert len(told) == 1
    replayed, _ = render(set(told))
    assert np.array_equal(live, replayed)


def test_a_replay_stops_a_block_never_heard_at_the_render_deadline(sources, short_check, monkeypatch):
    # a render longer than the performance (or of a set cut off by a crash) meets blocks live
    # never decided: one that never returns hung the render for good
    import livelatent.engine.slow_blocks as slow_blocks
    monkeypatch.setattr(slow_blocks, "OFFLINE_LIMIT_S", 0.3)
    with Engine() as engine:
        engine.timeline.slow_blocks.replay(set())
        v = voice(*sources, curve=sine(1))
        v.curve = curve(turns_slow(4.0, 3600.0))
        audio = engine.render_array(4.0)
        messages = engine.events.texts()
    assert any("took over 0.3 s" in m for m in messages) and np.isfinite(audio).all()


def test_a_key_reads_only_the_controllers_the_voice_reads(sources):
    # every controller's whole history was hashed on every block: 19 ms a key with 16 of them
    from livelatent.controls import ControlState
    with Engine() as engine:
        voice(*sources, curve=curve(lambda t: 0.5 + 0.0 * t))
        params, clock = engine.intended_voices()[0], engine.clock
        busy = ControlState(None, tuple((float(i), 0.5) for i in range(512)))
        other = params.changed(controls={f"cc:1:{n}": busy for n in range(16)})
        assert block_key(other, 1, clock) == block_key(params, 1, clock)


def test_a_last_good_curve_failing_in_the_slow_block_holds_the_whole_block(sources):
    # its revert inside the block was dropped: the next block jumped and said it again
    from livelatent.curves import const
    with Engine() as engine:
        def fails_late(t):
            t = np.asarray(t, dtype=float)
            if (t > 3.5).any():
                raise RuntimeError("ran out")
            return 0.5 + 0.0 * t
        voice(*sources, curve=curve(lambda t: 0.5 + 0.0 * t))
        slowly = curve(turns_slow(0.0, 0.2))
        params = engine.intended_voices()[0]
        params = params.changed(good_curve=curve(fails_late), curve=slowly)
        slow = SlowBlocks()
        slow.limit_s = 0.05
        values, revert = block_values(params, 1, engine.clock, slow)
    assert revert.window == 256 and "holds an amount of 0.5" in revert.message
    assert revert.params.curve(np.array([9.0]))[0] == const(0.5)(np.array([9.0]))[0]
    assert (values == values[0]).all()                   # one amount through the block


def test_only_a_performers_function_counts_as_code():
    from livelatent.curves import Curve
    assert curve(lambda t: t).calls_python and (sine(1) * curve(lambda t: t)).calls_python
    assert not (sine(1) + 0.5).calls_python
    steer = Curve.__new__(Curve)                           # a mapping's output: ours, not Python
    steer._op, steer._args = "steer", ()
    assert not steer.calls_python and not steer.is_code


def test_a_block_the_worker_is_stuck_on_in_a_c_call_is_not_run_again_on_the_decode_thread(
        sources, short_check):
    # a deadline interrupts Python between bytecodes only: a function waiting in one C call (a
    # long time.sleep, a network read) held the worker, and then the decode thread, which ran it
    # again as the voice reached its block: the sound stopped for as long
    def waits(t):
        t = np.asarray(t, dtype=float)
        if (t > 4).any():
            time.sleep(3.0)
        return 0.5 + 0.0 * t

    with Engine() as engine:
        timeline = engine.timeline
        told = []
        timeline.slow_blocks.on_slow = lambda key, params, window: told.append(window)
        v = voice(*sources, curve=sine(1))
        v.curve = curve(waits)
        timeline.work_ahead(True)                  # live: the worker works blocks out ahead
        longest = 0.0
        for _ in range(320):                       # past window 256, where block 1 starts
            began = time.perf_counter()
            timeline.checkpoint()
            timeline.advance(1)
            timeline.forget_before(timeline.step - engine.lookahead // engine.step - 1)
            longest = max(longest, time.perf_counter() - began)
            time.sleep(0.002)                      # (the worker has had it 0.3 s by then)
        messages = engine.events.texts()
    assert longest < 1.0 and told == [256]
    assert any("took over" in m and "reverted to its last good curve" in m for m in messages)


def test_a_curve_that_turns_slow_live_neither_stalls_the_sound_nor_differs_from_the_set(
        jack_server, tmp_path, short_check):
    """Live, the slow block is interrupted on the thread working ahead; the journal keeps it,
    so the set's render (which never runs that block) is what JACK captured."""
    from livelatent.repl.setup import make_engine
    from livelatent.session.session import Session
    from livelatent.session.sets import render_set
    engine = make_engine(blocksize=1024)
    with engine, Session(engine, sets_root=tmp_path, set_name="slow") as session:
        recorder = jackutil.RecorderProcess(jack_server, "PortAudio", seconds=9, folder=tmp_path,
                                            wait=False)
        try:
            engine.start("system")
            recorder.wait_recording()
            session.run_cell(f"SLOW_AFTER = {SLOW_AFTER}\n"
                             "import numpy as np, time\n"
                             "def fn(t):\n"
                             "    t = np.asarray(t, dtype=float)\n"
                             "    if (t > SLOW_AFTER).any():\n"
                             "        end = time.perf_counter() + 0.5\n"
                             "        while time.perf_counter() < end:\n"
                             "            pass\n"
                             "    return 0.5 + 0.4 * np.sin(t)\n"
                             "v = voice(flute, cello, curve=sine(3), gain=0.5)\n"
                             "v.curve = curve(fn)")
            time.sleep(7.0)
            underruns = engine.underruns
            engine.stop_playback()
            captured = sounding(recorder.stop())
        finally:
            recorder.close()
        messages = engine.events.texts()
        session.end()
    assert underruns == 0
    assert any("took over 0.1 s" in m and "reverted to its last good curve" in m for m in messages)
    lines = [json.loads(line) for line in (tmp_path / "slow" / "journal.jsonl").read_text().splitlines()]
    assert [r["window"] for r in lines if r["kind"] == "slow"] == [256]
    report = render_set(tmp_path / "slow", tmp_path / "slow.wav", progress=False)   # (0.5 s a
    reference, _ = sf.read(tmp_path / "slow.wav", dtype="float32")                  # call if run)
    offset = jackutil.align(captured, reference)
    assert len(captured) - offset >= 5 * SR
    assert jackutil.max_abs_diff_aligned(captured, reference, offset=offset) <= 1e-4
    assert not any("not met" in note for note in report.notes)
    with open(tmp_path / "slow" / "journal.jsonl", "a") as journal:     # a key no block has
        journal.write(json.dumps({"v": 4, "kind": "slow", "key": "0" * 24, "voice": 0,
                                  "window": 0}) + "\n")
    report = render_set(tmp_path / "slow", tmp_path / "again.wav", progress=False)
    assert any("1 block(s) of Python" in note and "not met" in note for note in report.notes)


def test_the_worker_says_which_blocks_it_has_asked_for_until_it_works_them_out():
    import threading
    from livelatent.engine.channels_ahead import ChannelsAhead
    ahead = ChannelsAhead(threading.Event())
    ahead._worker.wake = lambda: None                 # (no worker thread: the asks stay)
    first, second, clock = object(), object(), object()
    ahead.request(3, first, clock, 7)
    assert ahead.working_on(first, clock, 7) and not ahead.working_on(first, clock, 8)
    ahead.request(3, second, clock, 7)                  # the newest ask of a slot wins
    assert not ahead.working_on(first, clock, 7) and ahead.working_on(second, clock, 7)
    ahead.request(4, second, clock, 7)                  # two slots, one params (a cloud)
    ahead.forget(3)
    assert ahead.working_on(second, clock, 7)
    ahead.forget(4)
    assert not ahead.working_on(second, clock, 7) and ahead._asked == {}


def test_a_flush_whose_last_slow_record_another_thread_took_writes_what_it_has(tmp_path):
    # two threads flushing at once (the REPL noting the listener, a writer's batch landing): one
    # saw a record left, the other took it, and the first raised IndexError, losing what it had
    # taken (and, on the REPL's message thread, ending it)
    from collections import deque
    from livelatent.events import Events
    from livelatent.session.journal import Journal
    from livelatent.session.records import SourceStore
    from livelatent.session.recorder import JournalRecorder

    class TakenMeanwhile(deque):
        def __bool__(self):             # one record left, as this thread looks...
            return True

        def popleft(self):              # ...and gone when it takes it, but for those it had
            if not len(self):
                raise IndexError("pop from an empty deque")
            return super().popleft()
    journal = Journal(tmp_path / "journal.jsonl")
    recorder = JournalRecorder(journal, SourceStore(tmp_path), events=Events())
    recorder._slow = TakenMeanwhile()
    for i in range(3):
        recorder.slow_block(f"{i:024x}", 0, i)
    recorder.flush()
    journal.close()
    keys = [json.loads(line)["key"] for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert keys == [f"{i:024x}" for i in range(3)]
