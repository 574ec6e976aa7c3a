"""The null sink runs the engine and keeps nothing, with the same samples a file render gets."""

import numpy as np

from livelatent import Engine, sine, source, voice
from livelatent.sinks.null import render_to_null


def test_null_sink_counts_what_a_render_would_produce():
    t = np.arange(44100 * 2) / 44100
    tone = source((0.4 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), name="tone")
    with Engine(seed=1) as engine:
        voice(tone, tone, curve=sine(1))
        report = render_to_null(engine, 1.5)
        assert engine.position == int(1.5 * 44100)
    with Engine(seed=1) as engine:
        voice(tone, tone, curve=sine(1))
        audio = engine.render_array(1.5)
    assert report["frames"] == audio.shape[0] == int(1.5 * 44100)
    assert report["peak"] == float(np.abs(audio).max()) > 0.01
    assert report["speed"] > 0
