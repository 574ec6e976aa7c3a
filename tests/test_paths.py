"""Latent paths: planes, directions, clouds, latent series, descriptor following; their
identities, repr, errors, holds, and changes (sets, journals, JACK: test_path_sets.py)."""

import time

import numpy as np
import pytest

from livelatent import (CurveError, Engine, ParameterError, along, cloud, corpus, directions, follow,
                        plane, saw, sine, tri, voice)
from livelatent.corpus.som import load_som
from livelatent.session.namespace import namespace

from pathutil import SR


def render(build, seconds=2.0, seed=2):
    with Engine(seed=seed) as engine:
        build(engine)
        return engine.render_array(seconds)


def test_a_plane_at_each_corner_is_that_corner(four):
    a, b, c, d = four
    for (x, y), corner in zip(((0, 0), (1, 0), (0, 1), (1, 1)), four):
        alone = render(lambda e: voice(corner, seed=5))
        at_corner = render(lambda e: voice(plane(a, b, c, d, x=x, y=y), seed=5))
        np.testing.assert_array_equal(at_corner, alone)


def test_a_plane_mixes_bilinearly_mean_and_log_variance(four):
    a, b, c, d = four
    with Engine():
        v = voice(plane(a, b, c, d, x=0.25, y=0.5), deterministic=True)
        plan = v.params.plan
        from livelatent.paths.plan import Block
        channels = plan.channels(Block(np.arange(4), np.zeros(4)))
    np.testing.assert_allclose(channels[0, :4], [0.375, 0.125, 0.375, 0.125])
    assert plan.terms == 4 and plan.points == 1


def test_along_with_zero_coefficients_is_the_source_and_moves_it_otherwise(four):
    a = four[0]
    alone = render(lambda e: voice(a, seed=5))
    with Engine():
        dirs = directions([a, four[1]], k=4)
    still = render(lambda e: voice(along(a, dirs, {0: 0, 3: 0.0}), seed=5))
    np.testing.assert_array_equal(still, alone)
    moved = render(lambda e: voice(along(a, dirs, {0: sine(2) * 2}), seed=5))
    assert np.abs(moved - alone).max() > 0.05
    # a coefficient of 1 moves every mean by one standard deviation along the direction
    assert np.isclose(np.linalg.norm(dirs[0].latent_frames.mu[0]), dirs.std[0], rtol=1e-5)


def test_directions_are_deterministic_ordered_and_scaled(four):
    with Engine():
        first = directions(four, k=6)
        again = directions(list(four), k=6)
    np.testing.assert_array_equal(first.vectors, again.vectors)
    assert np.all(np.diff(first.std) <= 0) and first.explained.sum() < 1
    units = first.vectors / first.std[:, None]
    np.testing.assert_allclose(units @ units.T, np.eye(6), atol=1e-4)


def test_reverse_twice_is_the_source_and_series_operators_compose(four):
    a = four[0]
    alone = render(lambda e: voice(a, seed=5))
    np.testing.assert_array_equal(render(lambda e: voice(a.reverse().reverse(), seed=5)), alone)
    with Engine() as engine:
        frames = a.frames(engine.codec, 512)
        rev = a.reverse().frames(engine.codec, 512)
        np.testing.assert_array_equal(rev.mu, frames.mu[::-1])
        part = a.slice(0.5, 1.0).frames(engine.codec, 512)
        assert len(part) == int(np.ceil(1.0 * SR / 512)) - int(np.ceil(0.5 * SR / 512))
        frozen = a.freeze(1.0).frames(engine.codec, 512)
        assert len(frozen) == len(frames) and np.all(frozen.mu == frozen.mu[0])
        both = a.reverse().slice(0, 0.5).freeze(0.25).frames(engine.codec, 512)
        np.testing.assert_array_equal(both.mu[0], frames.mu[::-1][int(round(0.25 * SR / 512))])
    assert isinstance(a.reverse().offset(np.zeros(256), sine(2)).scrub(saw(4)), type(a.reverse()))


def test_scrub_reads_where_its_curve_says(four):
    a = four[0]
    with Engine() as engine:
        frames = a.frames(engine.codec, 512)
    held = render(lambda e: voice(a.scrub(0.5), deterministic=True))
    frozen = render(lambda e: voice(a.freeze((len(frames) - 1) * 0.5 * 512 / SR), deterministic=True))
    np.testing.assert_allclose(held, frozen, atol=1e-6)
    moving = render(lambda e: voice(a.scrub(saw(2)), deterministic=True))
    assert np.abs(moving - held).max() > 0.05


def test_an_offset_of_zero_changes_nothing_and_a_vector_moves_the_mean(four):
    a = four[0]
    alone = render(lambda e: voice(a, seed=5))
    np.testing.assert_array_equal(render(lambda e: voice(a.offset(np.ones(256), 0.0), seed=5)), alone)
    assert np.abs(render(lambda e: voice(a.offset(np.ones(256), 0.5), seed=5)) - alone).max() > 0.01


def test_a_cloud_of_one_still_point_is_its_path_and_a_cloud_is_seeded(four):
    a, b, c, d = four
    alone = render(lambda e: voice(a, seed=5))
    np.testing.assert_allclose(render(lambda e: voice(cloud(a, spread=0, points=1), seed=5)), alone,
                               atol=1e-6)
    path = cloud(plane(a, b, c, d, x=sine(4), y=tri(8)), spread=1.5, points=4)
    first, again = render(lambda e: voice(path)), render(lambda e: voice(path))
    np.testing.assert_array_equal(first, again)
    other_seed = render(lambda e: voice(path), seed=3)
    assert np.abs(first - other_seed).max() > 1e-3
    assert first.shape == (2 * SR, 2) and np.sqrt(np.mean(first ** 2)) > 0.01
    with Engine() as engine:
        v = voice(path)
        assert v.params.plan.points == 4
        # four grains: four windows decoded per output window, one voice in the status
        assert len(engine.intended_voices()) == 1


def test_a_cloud_spread_beyond_float32_is_held_without_a_warning(four):
    # float32 overflowed as the spread was cast: a RuntimeWarning in the REPL, and grains of
    # infinite spread, some held at the edge of the latent space and some (inf * 0) at its origin
    import warnings

    from livelatent.engine.blocks import block_channels
    from livelatent.paths.plan import SPREAD_LIMIT
    with Engine() as engine:
        v = voice(cloud(four[0], spread=1e300, points=2))
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            channels, _ = block_channels(v.params, np.arange(256), engine.clock)
        spread = channels[:, v.params.plan.spread_column]
        assert np.array_equal(spread, np.full(256, SPREAD_LIMIT, dtype=np.float32))
        assert np.isfinite(engine.render_array(0.3)).all()


def test_every_path_kind_renders_the_same_in_any_chunking(four):
    a, b, c, d = four
    with Engine() as engine:
        dirs = directions(four, k=4)
    path = cloud(along(plane(a, b.reverse(), c, d.scrub(tri(4)), x=sine(4), y=saw(8)), dirs,
                       {0: sine(3), 2: tri(5) * 2}), spread=tri(6), points=3)
    whole = render(lambda e: voice(path, synth="ola"), seconds=3.0)
    with Engine(seed=2) as engine:
        voice(path, synth="ola")
        parts = [engine.render_array(samples=n) for n in (1000, 44100, 30000, 57200)]
    # the same windows and points; only the decoder's batch sizes differ (float rounding)
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-6)


def test_repr_is_code_that_rebuilds_the_path(four, som_dir):
    a, b, c, d = four
    som = load_som(som_dir)
    cluster = som[som.clusters[0].index]
    with Engine(seed=2) as engine:
        names = namespace(engine)
        dirs = names["directions"]([a, b], k=3)
        paths = [plane(a, cluster, c.reverse(), d.slice(0.2, 1.0), x=sine(4), y=0.3),
                 along(a.freeze(0.5), dirs, {1: saw(2) * 0.5}),
                 cloud(plane(a, b, c, d, x=tri(2), y=sine(8)), spread=0.8, points=3),
                 a.scrub(saw(4)).offset(dirs[2], sine(2))]
        for path in paths:
            rebuilt = eval(repr(path), names)
            assert repr(rebuilt) == repr(path)
            first = render(lambda e: voice(path, seed=4), seconds=1.0)
            again = render(lambda e: voice(rebuilt, seed=4), seconds=1.0)
            np.testing.assert_array_equal(first, again)


def test_bad_paths_get_clear_messages(four, tmp_path):
    a, b, c, d = four
    with Engine() as engine:
        dirs = directions(four, k=4)
        with pytest.raises(ParameterError, match="direction 7 is out of range.*4 directions"):
            along(a, dirs, {7: sine(2)})
        with pytest.raises(CurveError, match="nan"):
            voice(along(a, dirs, {0: float("nan")}))
        with pytest.raises(CurveError, match="nan"):
            voice(plane(a, b, c, d, x=sine(2) * float("nan"), y=0))
        with pytest.raises(ParameterError, match="points=0"):
            cloud(a, points=0)
        with pytest.raises(ParameterError, match="spread=-1 must be 0 or more"):   # (played as 1)
            cloud(a, spread=-1)
        with pytest.raises(ParameterError, match=r"a file: source\('flute.flac'\)"):
            voice("flute.flac")
        with pytest.raises(ParameterError, match="not a source or a path"):
            plane(a, b, c, 42)
        with pytest.raises(ParameterError, match="slice holds no frames"):
            voice(a.slice(50, 60))
        with pytest.raises(ParameterError, match="freeze at 99"):
            voice(a.freeze(99))
        with pytest.raises(ParameterError, match="latent values"):
            voice(a.offset(np.ones(7), 1.0))
        with pytest.raises(ParameterError, match="no sounds"):
            corpus([])
        (tmp_path / "empty").mkdir()
        with pytest.raises(ParameterError, match="no audio files"):
            corpus(tmp_path / "empty")
        with pytest.raises(ParameterError, match="has no descriptor 'brightness'"):
            follow(corpus([a]), brightness=sine(2))
        with pytest.raises(ParameterError, match="own curves"):
            voice(plane(a, b, c, d), curve=sine(2))
        v = voice(a, b, curve=sine(2))
        with pytest.raises(ParameterError, match="moves between two sources"):
            v.path = plane(a, b, c, d)
        assert engine.intended_voices()[0].path is None      # nothing half-changed


def test_a_path_changes_live_and_its_curves_start_where_it_lands(four):
    a, b, c, d = four
    with Engine(seed=1) as engine:
        v = voice(plane(a, b, c, d, x=0, y=0), seed=3)
        engine.render_array(1.0)
        v.path = plane(a, b, c, d, x=1, y=1)
        after = engine.render_array(1.0)
        assert v.params.curve_start == SR // 512 * 512 or v.params.curve_start >= SR - 512
    alone = render(lambda e: voice(d, seed=3), seconds=1.0)
    # once the old window's tail is gone, corner d plays (its windows from its own start)
    assert np.sqrt(np.mean(after[2048:] ** 2)) > 0.01
    assert not np.array_equal(after, alone)


def test_paths_take_every_synth_gain_pan_and_quantised_changes(four):
    a, b, c, d = four
    with Engine(seed=1) as engine:
        engine.render_array(0.3)
        v = voice(plane(a, b, c, d, x=sine(2), y=0), synth="concat", gain=0.5, pan=-1, quant="bar")
        bar = int(engine.intended().clock.beats_per_bar * 60 / engine.intended_tempo() * SR)
        before = engine.render_array(samples=bar)             # to past the first bar
        assert v.params.start >= bar - 512 and v.params.layout.output_hop == 1024
        first = v.params.start - int(0.3 * SR)
        assert np.all(before[:first] == 0) and np.abs(before[first:, 0]).max() > 0.01
        assert np.all(before[:, 1] == 0)                       # hard left
        v.set(path=cloud(a, spread=0.3, points=2), quant="bar")
        engine.render_array(samples=bar)
        assert abs(v.params.curve_start - 2 * bar) < 512
        assert v.params.plan.points == 2
        v.gain = 0.25
        assert v.params.gain == 0.25


@pytest.mark.parametrize("kind", ["plane", "along", "cloud", "scrub", "series", "follow"])
def test_every_path_kind_has_its_shape_and_is_deterministic(four, kind):
    a, b, c, d = four

    def build(engine):
        dirs = directions([a, b], k=3)
        path = {"plane": lambda: plane(a, b, c, d, x=sine(2), y=tri(3)),
                "along": lambda: along(b, dirs, {0: sine(2), 2: saw(1)}),
                "cloud": lambda: cloud(a, spread=tri(2), points=3),
                "scrub": lambda: c.scrub(saw(2)),
                "series": lambda: d.reverse().slice(0.1, 1.5).freeze(0.3),
                "follow": lambda: follow(corpus(a, b, c), centroid=tri(4) * 2000 + 500)}[kind]()
        voice(path, loop=False)
    first, again = render(build, seconds=4.0), render(build, seconds=4.0)
    assert first.shape == (4 * SR, 2) and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    assert np.sqrt(np.mean(first[:SR] ** 2)) > 1e-3


def test_a_path_whose_curve_fails_later_holds_where_it_was_and_says_so(four):
    from livelatent import curve
    a, b, c, d = four
    late = curve(lambda t: np.where(t > 30, np.nan, 0.25 + 0.0 * t))      # passes the check
    with Engine(seed=1) as engine:
        v = voice(plane(a, b, c, d, x=late, y=0), deterministic=True)
        audio = engine.render_array(samples=int(40 * SR))
        assert v.params.held is not None
        held_at = v.params.held[0]
        np.testing.assert_allclose(v.params.held[1][:4], [0.75, 0.25, 0, 0])
        said = engine.events.texts()
    assert any("holds where it was" in text for text in said), said
    assert np.sqrt(np.mean(audio[-SR:] ** 2)) > 0.01                 # still sounding
    beats_per_window = 512 / SR * 60 / 60.0
    assert abs(held_at * beats_per_window - 30) < 0.1


def test_review_inputs_get_clear_messages(four):
    a, b, c, d = four
    with Engine() as engine:
        notes = corpus(a, b)
        with pytest.raises(CurveError, match="centroid target must stay above 0 Hz"):
            voice(follow(notes, centroid=sine(8) * 2000 - 500))
        with pytest.raises(CurveError, match="nan"):
            voice(a.scrub(sine(2) * float("nan")), b, curve=0.5)     # a series' curve, two sources
        with pytest.raises(ParameterError, match="a path plays alone"):
            voice(plane(a, b, c, d), b)
        with pytest.raises(ParameterError, match="a corpus is many sources"):
            plane(notes, b, c, d)
        with pytest.raises(ParameterError, match="latent series"):
            corpus(a, a.reverse())
        with pytest.raises(ParameterError, match="smooth='x'"):
            follow(notes, centroid=500, smooth="x")
        with pytest.raises(ParameterError, match="scrubbed already"):
            a.scrub(saw(2)).scrub(sine(3))
        with pytest.raises(ParameterError, match="cloud inside a cloud"):
            cloud(along(cloud(a, points=2), directions([a, b], k=2), {0: 1}), points=2)
        with pytest.raises(ParameterError, match="give a direction's number"):
            along(a, directions([a, b], k=2), {"0": 1})
        path = along(a, directions([a, b], k=3), {2: 1, 0: 0.5})
        assert list(path.coefficients) == [0, 2]
        with pytest.raises(TypeError):
            path.coefficients[1] = sine(2)
        assert engine.intended_voices() == []


BEATS_PER_WINDOW = 512 / SR        # at the default 60 bpm


def test_a_hold_at_a_block_start_keeps_the_window_before_and_a_change_lets_go(four):
    from livelatent import curve
    a, b, c, d = four
    fails_at = 2304 * BEATS_PER_WINDOW - 1e-9          # window 2304 starts block 9
    late = curve(lambda t: np.where(t >= fails_at, np.nan, 0.25 + 0.0 * t))
    with Engine(seed=1) as engine:
        v = voice(plane(a, b, c, d, x=late, y=0), deterministic=True)
        engine.render_array(samples=2400 * 512)
        assert v.params.held[0] == 2304
        np.testing.assert_allclose(v.params.held[1][:4], [0.75, 0.25, 0, 0])
        v.path = plane(a, b, c, d, x=0.5, y=0)
        engine.render_array(samples=2048)
        assert v.params.held is None
    with Engine(seed=1) as engine:        # two sources: a new curve is heard over a held series
        w = voice(a.scrub(curve(lambda t: np.where(t > 25, np.nan, 0.5 + 0.0 * t))), b, curve=0.3)
        engine.render_array(samples=2400 * 512)
        np.testing.assert_allclose(w.params.held[1][:2], [0.7, 0.3], atol=1e-6)
        w.curve = 0.6                    # (the scrub still fails: it holds again, at the new mix)
        engine.render_array(samples=2048)
        np.testing.assert_allclose(w.params.held[1][:2], [0.4, 0.6], atol=1e-6)
        w.a = c                          # a plain source: nothing holds any more
        engine.render_array(samples=2048)
        assert w.params.held is None


def test_a_follow_voice_holds_on_a_late_bad_target_and_plays_on(four):
    from livelatent import curve
    a, b = four[:2]
    with Engine(seed=1) as engine:
        late = curve(lambda t: np.where(t > 25, -100.0, 1500.0 + 0.0 * t))
        v = voice(follow(corpus(a, b), centroid=late))
        audio = engine.render_array(samples=3000 * 512)     # past it, and whole blocks after
        assert v.params.held is not None
        assert any("its path holds" in text for text in engine.events.texts())
    assert np.sqrt(np.mean(audio[-SR:] ** 2)) > 0.005


def test_a_new_paths_curves_are_never_read_before_it_lands(four):
    from livelatent import curve
    a, b, c, d = four
    with Engine(seed=1) as engine:
        v = voice(plane(a, b, c, d, x=0.2, y=0.2))
        engine.render_array(samples=300 * 512 + 100)       # mid-block
        v.path = plane(a, b, c, d, x=curve(lambda t: np.sqrt(t) * 0.1), y=0)   # NaN before 0
        engine.render_array(samples=600 * 512)
        assert v.params.held is None
        assert not any("holds" in text for text in engine.events.texts())


def test_a_follow_voice_works_out_its_first_picks_in_the_writers_thread(four, monkeypatch):
    import livelatent.paths.plan as plan_module
    a, b = four[:2]
    calls = []
    real = plan_module.choose
    monkeypatch.setattr(plan_module, "choose", lambda *args, **kw: calls.append(1) or real(*args, **kw))
    with Engine(seed=1) as engine:
        engine.render_array(samples=3333)                       # any start sample
        voice(follow(corpus(a, b), centroid=tri(8) * 2000 + 500, loudness=sine(4) * 6 - 24))
        warmed = len(calls)
        first = engine.render_array(samples=16 * 512)          # it starts: blocks 0 and 1
        assert warmed == 2 and len(calls) == warmed             # found, not computed again
        first = np.concatenate([first, engine.render_array(samples=2 * 256 * 512 - 16 * 512)])
        assert len(calls) > warmed                              # the next ones: on time
    with Engine(seed=1) as engine:                              # and the picks are the same
        engine.render_array(samples=3333)
        monkeypatch.setattr(plan_module, "warm", lambda *args, **kw: None)
        import livelatent.api
        monkeypatch.setattr(livelatent.api, "warm", lambda *args, **kw: None)
        voice(follow(corpus(a, b), centroid=tri(8) * 2000 + 500, loudness=sine(4) * 6 - 24))
        again = [engine.render_array(samples=n) for n in (16 * 512, 2 * 256 * 512 - 16 * 512)]
        np.testing.assert_array_equal(np.concatenate(again), first)


def test_live_a_follow_voice_works_out_its_next_block_on_another_thread(four, monkeypatch):
    import threading

    import livelatent.paths.plan as plan_module
    a, b = four[:2]
    who = []
    real = plan_module.choose
    monkeypatch.setattr(plan_module, "choose", lambda *args, **kw: who.append(
        threading.current_thread().name) or real(*args, **kw))
    rendered = []
    for ahead in (True, False):
        with Engine(seed=1) as engine:
            engine.timeline.work_ahead(ahead)          # as live playback does
            voice(follow(corpus(a, b), centroid=tri(8) * 2000 + 500))
            parts = []
            for _ in range(6):
                parts.append(engine.render_array(samples=128 * 512))
                time.sleep(0.3)                              # the other thread's turn
            rendered.append(np.concatenate(parts))
            engine.timeline.work_ahead(False)
        if ahead:
            assert "livelatent-channels" in who
    np.testing.assert_array_equal(rendered[0], rendered[1])   # the same picks, whoever chose
