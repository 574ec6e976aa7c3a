"""The timeline: commands land where they should, whoever sends them and whatever comes between.

Each test here reproduces a defect the review of the first engine found, offline.
"""

import threading
import time

import numpy as np
import pytest

from livelatent import Engine, Performer, curve, hush, sine, source, tempo, voice
from livelatent.engine.commands import AddVoice, StopVoice
from livelatent.engine.writers import Batch

SR = 44100


@pytest.fixture(scope="module")
def sources():
    t = np.arange(int(SR * 3.0)) / SR
    tone = source((0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), name="tone")
    hiss = source(np.random.default_rng(7).normal(0, 0.25, 2 * SR).astype(np.float32), name="hiss")
    return tone, hiss


def test_a_voice_stopped_before_its_bar_never_starts(sources):
    with Engine(tempo=120) as engine:                  # a bar is 2 s
        engine.render_array(0.5)
        waiting = voice(*sources, quant="bar")
        assert waiting.state == "starting"
        waiting.stop()
        hushed = voice(*sources, quant="bar")
        hush()
        later = voice(*sources, quant="bar", name="later")     # sent after the hush: it plays
        audio = engine.render_array(2.5)
        assert [p.name for p in engine.voices()] == ["later"]
        assert waiting.state == "stopped" and hushed.state == "stopped" and later.state == "playing"
    assert np.abs(audio[:int(1.5 * SR)]).max() == 0.0          # nothing before the bar at 2 s


def test_a_quantised_change_finds_its_bar_with_the_tempo_that_lands_before_it(sources):
    with Engine() as engine:                            # 60 bpm: a bar is 4 s
        v = voice(*sources, curve=0.0)
        engine.render_array(1.0)
        with engine.batch():
            tempo(240, quant="beat")                     # at 2 s, from then 4 beats a second
            v.set(gain=0.5, quant="bar")                 # bar 1 ends at beat 4: 2 s + 2 beats
        engine.render_array(samples=int(2.48 * SR) - engine.position)
        assert engine.tempo == 240 and [p.gain for p in engine.voices()] == [1.0]
        engine.render_array(samples=int(2.52 * SR) - engine.position)
        assert [p.gain for p in engine.voices()] == [0.5]     # at 2.5 s, not at 4 s


def test_a_function_of_time_sees_an_array_live_and_offline(sources):
    shape = curve(lambda t: t.clip(0, 8) / 8)           # needs an array: .clip is numpy's
    with Engine(seed=2) as offline:
        voice(*sources, curve=shape)
        whole = offline.render_array(samples=40 * offline.step)
    with Engine(seed=2) as stepwise:
        voice(*sources, curve=shape)
        steps = np.concatenate([stepwise.timeline.advance(1) for _ in range(40)])
        assert not stepwise.events.texts()               # no step reverted its curve
    assert np.abs(steps - whole).max() <= 1e-5


def test_a_nested_batch_that_is_discarded_leaves_nothing_behind(sources):
    with Engine() as engine:
        with engine.batch():
            voice(*sources, name="kept")
            try:
                with engine.batch(discard_on_error=True):       # load() inside a cell does this
                    voice(*sources, name="half")
                    tempo(90)
                    raise RuntimeError("half way")
            except RuntimeError:
                pass
        engine.render_array(0.2)
        assert [p.name for p in engine.voices()] == ["kept"] and tempo() == 60
        assert voice(*sources).number == 1               # the discarded voice's number is free


def test_what_the_performer_intends_never_misses_a_change_that_is_landing(sources):
    """A reader sees voices and pending changes of one snapshot: a change applied between two
    reads can no longer fall between them."""
    with Engine() as engine:
        stop = threading.Event()
        missed = []

        def advance():
            while not stop.is_set():
                with engine.timeline_lock():
                    engine.timeline.advance(1)

        def read(expected):
            while not stop.is_set():
                sent = expected[0]                     # voices whose send has returned
                seen = len(engine.intended_voices())
                if seen < sent:
                    missed.append((seen, sent))
                time.sleep(0.0002)

        expected = [0]
        threads = [threading.Thread(target=advance), threading.Thread(target=read, args=(expected,))]
        for thread in threads:
            thread.start()
        try:
            for _ in range(20):
                voice(*sources, curve=0.5)               # lands on the next step, from this thread
                expected[0] += 1
                time.sleep(0.01)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert missed == [] and len(engine.intended_voices()) == 20


def test_commands_are_small_frozen_values_with_one_meaning(sources):
    with Engine() as engine:
        v = voice(*sources)
        stop = StopVoice(v.number, 100)
        with pytest.raises(AttributeError):
            stop.fade = 5                                  # frozen
        with pytest.raises(TypeError, match="not a command"):
            engine.submit("stop")
        assert isinstance(engine.pending()[0][1], AddVoice)


def test_a_batch_sent_from_another_thread_lands_on_its_own(sources):
    """A thread's change is never swallowed by a batch some other writer holds open."""
    with Engine() as engine:
        landed = {}

        def elsewhere():
            landed["thread"] = engine.submit(AddVoice(voice_params(engine, sources)))

        with engine.batch(origin="repl") as cell:
            thread = threading.Thread(target=elsewhere)
            thread.start()
            thread.join()
            assert "thread" in landed and len(cell.commands) == 0
        assert [p.name for p in engine.intended_voices()] == ["from a thread"]


def voice_params(engine, sources):
    with engine.batch() as batch:
        Performer(engine).voice(*sources, name="from a thread")
        params = batch.commands[0].params
        batch.commands.clear()
    return params


def test_a_sealed_engine_lands_only_its_own_batches(sources):
    with Engine() as engine:
        key = object()
        engine.seal(key)
        voice(*sources)                                      # code a replay runs: lands nowhere
        assert engine.intended_voices() == []
        batch = Batch(engine, "replay", commands=[AddVoice(voice_params(engine, sources))], key=key)
        engine.send(batch)
        assert [p.name for p in engine.intended_voices()] == ["from a thread"]


def test_step_by_step_and_in_chunks_give_the_same_samples_for_every_kind_of_voice(sources):
    """Live the bank works one step at a time over all voices, offline many steps per voice:
    two paths through the same arrays, equal to BLAS rounding."""
    tone, hiss = sources

    def perform(engine, advance):
        voice(tone, hiss, curve=sine(2), name="ola")
        voice(hiss, tone, strategy="extension", synth="concat", curve=sine(3), gain=0.5, pan=0.5)
        voice(tone, hiss, strategy="stepwise", steps=(0, 1, 0.5), gain=0.4, pan=-0.5, loop=False)
        voice(tone, hiss, strategy="stepwise", curve=sine(1), synth="concat", fit="loop", loop=False)
        v = voice(hiss, tone, deterministic=True, curve=0.3, seed=11)
        played = [advance(engine, 60)]
        v.stop(fade=0.3)
        hush(fade=1.5, quant="bar")
        played.append(advance(engine, 240))
        return np.concatenate(played)

    def by_steps(engine, steps):
        return np.concatenate([engine.timeline.advance(1) for _ in range(steps)])

    def in_chunks(engine, steps):
        return engine.render_array(samples=steps * engine.step)

    with Engine(seed=8) as live, Engine(seed=8) as offline:
        with live:
            stepped = perform(live, by_steps)
        with offline:
            chunked = perform(offline, in_chunks)
    assert np.abs(stepped).max() > 0.05
    assert np.abs(stepped - chunked).max() <= 1e-5
