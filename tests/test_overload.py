"""The overload guard's order, offline: the newest voices switch to concat (half the decodes),
then the newest are muted; journaled, so a set renders what was heard."""

import numpy as np
import pytest
import soundfile as sf

from livelatent import Engine
from livelatent.engine import cache
from livelatent.engine.overload import OverloadGuard
from livelatent.session.session import Session
from livelatent.session.sets import render_set

SR = 44100
SOURCES = """\
import numpy as np
t = np.arange(3 * 44100) / 44100
tone = source((0.4 * np.sin(2 * np.pi * 220 * t)).astype("float32"), name="tone")
hiss = source((np.random.default_rng(1).normal(0, 0.2, 2 * 44100)).astype("float32"), name="hiss")
"""


class _Playback:
    def __init__(self, engine):
        self.engine = engine


def _guard(engine):
    return OverloadGuard(_Playback(engine))


def _play(tmp_path, voices=8, curve="sine(0.5 + i / 7)"):
    engine = Engine(seed=3)
    session = Session(engine, sets_root=tmp_path, set_name="crowd")
    session.run_cell(SOURCES)
    session.run_cell(f"for i in range({voices}):\n"
                     f"    voice(tone, hiss, curve={curve}, gain=0.2, name=f'n{{i}}')")
    return engine, session


def _step_aligned(engine, seconds):
    step = engine.step
    return engine.render_array(samples=int(seconds * SR) // step * step)


def test_a_moderate_overload_switches_the_newest_voices_to_concat(tmp_path):
    engine, session = _play(tmp_path, voices=20)          # a bank of 32 slots: room for 12 twins
    with engine:
        before = _step_aligned(engine, 1.0)
        guard = _guard(engine)
        at = engine.position
        guard._shed(1.0, at=at)                # to 0.75 of the decodes: the newest 10 switch
        after = engine.render_array(2.0)
        playing = {p.name: p for p in engine.intended_voices()}
        session.end()
    assert len(guard.switched) == 10 and guard.muted == []
    assert sorted(playing) == sorted(f"n{i}" for i in range(20))          # the names carry on
    assert [playing[f"n{i}"].synth for i in range(20)] == ["ola"] * 10 + ["concat"] * 10
    twin = playing["n19"]
    assert twin.start <= at and (at - twin.start) % 1024 == 0            # a window starts at `at`
    assert engine.events.texts("warning")[-1].startswith("overload: the decoder needed 100%")
    # no gap where they switch: every block around it sounds like those before
    heard = np.concatenate([before, after])
    level = np.sqrt(np.mean(heard[:len(heard) // 512 * 512].reshape(-1, 512, 2) ** 2, axis=(1, 2)))
    around = level[at // 512 - 4:at // 512 + 12]
    assert around.min() > 0.5 * np.median(level[:at // 512])
    # the set renders what was heard, the switch included
    render_set(tmp_path / "crowd", tmp_path / "crowd.wav", seconds=3.0, progress=False)
    rendered, _ = sf.read(tmp_path / "crowd.wav", dtype="float32")
    n = min(len(rendered), len(heard))
    assert np.max(np.abs(rendered[:n] - heard[:n])) <= 1e-5


def test_every_twin_finds_its_slots_memory_given(tmp_path):
    """The guard has the memory of its twins' cache slots populated on its own thread, all of
    them before the first group lands (live, a first write to fresh memory would cost the
    decode thread the page faults): groups after the first take slots further on."""
    engine, session = _play(tmp_path, voices=60, curve="0.5")
    with engine:
        _step_aligned(engine, 0.2)
        guard = _guard(engine)
        guard._shed(1.0, at=engine.position)       # the newest 30 switch: two groups of twins
        engine.render_array(0.2)
        session.end()
        bank = engine.timeline._bank
        slots = bank._table.slots
    assert len(guard.switched) == 30
    assert slots.max() < bank.cache._populated


class _DecoderAt(_Playback):
    """A decoder that goes on ``steps`` steps while the guard works, each time it is asked where
    it has got to (0: it stands still)."""

    def __init__(self, engine, steps):
        super().__init__(engine)
        self.steps, self.answers = steps, []

    @property
    def decoded_to(self):
        engine = self.engine
        self.answers.append(engine.position + 100 + self.steps * engine.step * len(self.answers))
        return self.answers[-1]


@pytest.mark.parametrize("steps", [0, 1, 3])
def test_each_group_of_twins_lands_ahead_of_the_decoder_and_after_the_group_before(tmp_path, steps):
    """Live, each batch lands two steps past where the decoder has got to as it is built, so the
    decoder has not decoded that step yet (nothing is decoded again, at an overload) and the
    twins are heard from their first window; and each group of twins at least a step after the
    one before, its first blocks' work on a step of its own, whether the decoder has moved on
    meanwhile or not. (Worked out once for all groups, later groups landed behind the decoder;
    worked out afresh alone, two groups could land on one step.)"""
    engine, session = _play(tmp_path, voices=60, curve="0.5")
    with engine:
        _step_aligned(engine, 0.2)
        playback = _DecoderAt(engine, steps)
        guard, sent = OverloadGuard(playback), []
        send = guard._send
        guard._send = lambda commands, at: sent.append(at) or send(commands, at)
        guard._shed(1.0)                            # the newest 30 switch: two groups of twins
        engine.render_array(0.2)
        twins = [p for p in engine.intended_voices() if p.synth == "concat"]
        session.end()
    step = engine.step
    ahead = [(-(-p // step) + 2) * step for p in playback.answers]
    assert len(twins) == 30 and len(sent) == 2
    assert all(s % step == 0 and s >= a for s, a in zip(sent, ahead[1:]))   # (the first: what
    assert sent[0] >= ahead[0] and sent[1] >= sent[0] + step                # plays there is shed)
    assert sorted({t.start % 1024 for t in twins}) == sorted({s % 1024 for s in sent})


def test_when_switching_cannot_shed_enough_the_newest_are_muted(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "RESERVED_SLOTS", 32)    # room for 12 more voices than the 20
    engine, session = _play(tmp_path, voices=20)
    with engine:
        _step_aligned(engine, 0.5)
        guard = _guard(engine)
        guard._shed(1.1, at=engine.position)     # 12 twins (the room) would not be enough
        engine.render_array(0.5)
        first = sorted((p.name, p.synth) for p in engine.intended_voices() if p.stop_at is None)
        _step_aligned(engine, 0.5)
        guard._shed(0.95, at=engine.position + engine.step)   # a little more: switching will do
        engine.render_array(0.5)
        second = {p.name: p.synth for p in engine.intended_voices() if p.stop_at is None}
        session.end()
    assert first == sorted((f"n{i}", "ola") for i in range(13))          # n19..n13 muted
    assert second == {**{f"n{i}": "ola" for i in range(7)}, **{f"n{i}": "concat" for i in range(7, 13)}}
    warnings = engine.events.texts("warning")
    assert "muted 7: n19, n18" in warnings[0] and "switched the newest 6 to concat" in warnings[1]


def test_voices_the_journal_cannot_record_are_muted_instead(tmp_path):
    engine, session = _play(tmp_path, voices=4, curve="curve(lambda t: 0.5)")
    with engine:
        _step_aligned(engine, 0.5)
        guard = _guard(engine)
        guard._shed(1.2, at=engine.position)
        engine.render_array(0.5)
        sounding = [p for p in engine.intended_voices() if p.stop_at is None]
        session.end()
    assert guard.switched == [] and guard.muted and all(p.synth == "ola" for p in sounding)
    assert "muted" in engine.events.texts("warning")[-1]


@pytest.mark.parametrize("strategy", ["stepwise", "extension"])
def test_every_strategy_has_a_concat_twin(tmp_path, strategy):
    from livelatent.engine.overload import concat_twin
    engine = Engine(seed=0)
    with engine:
        session = Session(engine, sets_root=tmp_path, set_name="s")
        session.run_cell(SOURCES)
        session.run_cell(f"v = voice(tone, hiss, strategy={strategy!r}, curve=0.3)")
        _step_aligned(engine, 0.5)
        params = engine.intended_voices()[0]
        twin = concat_twin(params, 99, engine.position, engine.codec)
        session.end()
    assert (twin.synth, twin.layout.output_hop, twin.name) == ("concat", 1024, params.name)
    assert twin.layout.output_hop / twin.layout.input_hop == params.layout.output_hop / params.layout.input_hop


def test_a_twin_landing_later_than_asked_lines_its_windows_up_where_it_lands(tmp_path):
    from types import MappingProxyType

    from livelatent.engine.clock import Clock
    from livelatent.engine.commands import AddVoice, Score, apply
    from livelatent.engine.overload import concat_twin
    engine, session = _play(tmp_path, voices=1)
    with engine:
        _step_aligned(engine, 0.5)
        params = engine.intended_voices()[0]
        asked = engine.position
        twin = concat_twin(params, 99, asked, engine.codec)
        session.end()
    timing = (twin.start, twin.curve_start, twin.good_curve_start, twin.sources_start)
    score = Score(MappingProxyType({}), Clock(SR, 60.0))
    for landed in (asked, asked + 512, asked + 1536):
        placed = apply(score, AddVoice(twin, timing=timing), at=landed, seq=0).voices[99]
        assert (landed - placed.start) % 1024 == 0 and landed - placed.start >= 0
        assert (placed.curve_start, placed.sources_start) == (params.curve_start, params.sources_start)


class _Clock:
    """Stands in for ``time`` in the overload module: the decode thread's CPU time, and the wall
    time its steps take, are set by hand."""

    def __init__(self):
        self.cpu = self.wall = 0.0

    def perf_counter(self):
        return self.wall

    def thread_time(self):
        return self.cpu


def _meter_after(monkeypatch, step_cpu_times, step_seconds=0.01, step_wall_times=None):
    from livelatent.engine import overload
    clock = _Clock()
    monkeypatch.setattr(overload, "time", clock)
    meter = overload.DecodeMeter(step_seconds)
    for cpu, wall in zip(step_cpu_times, step_wall_times or step_cpu_times):
        began = meter.begin()
        clock.cpu += cpu
        clock.wall += wall
        meter.end(began)
    return meter


def test_the_guard_reads_the_load_the_decoder_keeps_not_one_slow_step(monkeypatch):
    """Many voices starting on one step make that step slow (their first blocks): a spike the
    lookahead covers, read as a typical step. Heavy steps that come back, and a decoder slow on
    every step, are read as they are."""
    spike = _meter_after(monkeypatch, [0.005] * 40 + [0.3] + [0.005] * 5)
    assert spike.recent_load(0.1) == pytest.approx(0.5)
    recurring = _meter_after(monkeypatch, ([0.05] + [0.005] * 9) * 6)       # one heavy step in ten
    assert recurring.recent_load(0.1) == pytest.approx(0.95)
    overloaded = _meter_after(monkeypatch, [0.015] * 10)
    assert overloaded.recent_load(0.1) == pytest.approx(1.5)
    assert _meter_after(monkeypatch, [0.015] * 9).recent_load(0.1) is None      # not enough yet
    overloaded.forget()
    assert overloaded.recent_load(0.1) is None


def test_a_machine_too_busy_for_the_decoder_sheds_voices_though_its_own_work_keeps_up(monkeypatch):
    """Other programs on the cores do not show in the decoder's CPU time (half a step's time
    here), but its steps take longer than real time on the wall: the guard sheds for the wall
    time. A lone step stalled by a cell holding the interpreter is not a load: nothing sheds."""
    import threading

    from livelatent.engine import overload

    class Busy:
        running, lost, engine = True, False, None

        def __init__(self, meter):
            self.meter = meter

    def shed_for(meter):
        guard = OverloadGuard(Busy(meter))
        loads = []
        acted = threading.Event()

        def shed(load, **_):
            loads.append(load)
            acted.set()
        guard._shed = shed
        guard.start()
        acted.wait(0.3)
        guard.stop()
        return loads

    busy = _meter_after(monkeypatch, [0.005] * 60, step_wall_times=[0.013] * 60)
    assert busy.recent_load(overload.WINDOW_S) == pytest.approx(0.5)
    assert shed_for(busy)[:1] == [pytest.approx(1.3)]
    stalled = _meter_after(monkeypatch, [0.005] * 60, step_wall_times=[0.006] * 55 + [0.15] + [0.006] * 4)
    assert stalled.recent_load(overload.WALL_WINDOW_S, wall=True) == pytest.approx(0.6)
    assert shed_for(stalled) == []
