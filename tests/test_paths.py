"""Latent paths: planes, directions, clouds, latent series; their identities, repr, errors,
sets and journals, and live playback over JACK equal to the offline render."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import jackutil
from livelatent import (CurveError, Engine, ParameterError, along, cloud, corpus, directions, follow,
                        plane, saw, sine, source, tri, voice)
from livelatent.corpus.som import build_som, load_som
from livelatent.session.namespace import namespace
from livelatent.session.session import Session

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "livelatent" / "packs" / "default" / "sources"
SR = 44100


@pytest.fixture(scope="module")
def four():
    return [source(PACK / f"{name}.flac") for name in ("flute", "cello", "choir", "harp")]


@pytest.fixture(scope="module")
def som_dir(tmp_path_factory):
    """A small SOM of eight pack notes (a real map, as performers load theirs)."""
    folder = tmp_path_factory.mktemp("notes")
    for name in ("flute", "cello", "choir", "harp", "bass", "organ", "guitar", "clarinet"):
        shutil.copy(PACK / f"{name}.flac", folder / f"{name}.flac")
    return build_som(folder, tmp_path_factory.mktemp("maps") / "notes", grid="2x2", progress=False).path


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


def test_a_path_voice_round_trips_through_a_set_and_its_journal(four, som_dir, tmp_path):
    a, b, c, d = four
    som = load_som(som_dir)
    code = (f"som = load_som({str(som_dir)!r})\n"
            f"dirs = directions([flute, cello], k=3)\n"
            f"v = voice(cloud(along(plane(flute, som[{som.clusters[0].index}], choir.reverse(), "
            f"harp.scrub(saw(4)), x=sine(4), y=tri(8)), dirs, {{0: sine(2), 2: saw(3)}}), "
            f"spread=0.5, points=3), name='cloud')\n"
            f"w = voice(flute.offset(dirs[1], tri(2)), cello.slice(0.5), curve=sine(8))\n")
    with Engine(seed=4) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="paths")
        session.run_cell(code)
        engine.render_array(2.0)
        session.run_cell("save()")
        heard = engine.render_array(1.0)
        played = [repr(p.path) for p in engine.intended_voices()]
        session.close()
    with Engine(seed=4) as engine:
        other = Session(engine, sets_root=tmp_path / "sets", set_name="again")
        other.run_cell("load('paths')")
        loaded = engine.intended_voices()
        assert [repr(p.path) for p in loaded] == played
        other.close()
    state = json.loads((tmp_path / "sets" / "paths" / "state.json").read_text())
    assert state["voices"][0]["path"]["kind"] == "cloud" and state["voices"][0]["tail"] is True
    assert any(r.get("array_kind") == "directions" for r in state["sources"].values())
    # the journal renders what was heard, from data alone too
    out = tmp_path / "paths.wav"
    for extra in ([], ["--no-code"]):
        result = subprocess.run([sys.executable, "-m", "livelatent.cli", "render",
                                 str(tmp_path / "sets" / "paths"), "-o", str(out)] + extra,
                                cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        rendered, _ = sf.read(out, dtype="float32")
        np.testing.assert_allclose(rendered[2 * SR:3 * SR], heard, atol=1e-6)


def test_a_set_from_before_the_tail_was_kept_renders_as_it_did(four, tmp_path):
    a, b = four[:2]
    with Engine(seed=4) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="old")
        session.run_cell("v = voice(flute, cello, curve=sine(4), loop=False)")
        session.run_cell("save()")
        session.close()
    state_file = tmp_path / "sets" / "old" / "state.json"
    state = json.loads(state_file.read_text())
    for record in state["voices"]:
        del record["tail"]                       # as livelatent 0.2 wrote it
    state_file.write_text(json.dumps(state))
    with Engine(seed=4) as engine:
        other = Session(engine, sets_root=tmp_path / "sets", set_name="then")
        other.run_cell("load('old')")
        params = engine.intended_voices()[0]
        assert not params.frames_a.tail and not params.frames_b.tail
        assert len(params.frames_a) == len(a.frames(engine.codec, 512, tail=False))
        assert len(params.frames_a) < len(a.frames(engine.codec, 512)) or \
            len(params.frames_b) < len(b.frames(engine.codec, 512))
        other.close()


SCRIPT = '''
som = load_som({som!r})
dirs = directions([flute, cello, choir], k=4)
v = voice(cloud(along(plane(flute, som[{cluster}], choir, harp, x=sine(4), y=tri(8)), dirs,
                      {{0: sine(2) * 1.5, 3: saw(3)}}), spread=tri(4) + 0.2, points=3), gain=0.8)
'''


def test_a_composite_path_plays_live_as_it_renders_offline(jack_server, som_dir, tmp_path):
    """A plane whose corners include a SOM cluster, moved along two directions, inside a cloud,
    played through a JACK dummy server, equals its offline render within 1e-4."""
    som = load_som(som_dir)
    script = tmp_path / "composite.py"
    script.write_text(SCRIPT.format(som=str(som_dir), cluster=som.clusters[0].index))
    command = [sys.executable, "-m", "livelatent.cli"]
    rendered = subprocess.run(command + ["render", str(script), "-o", str(tmp_path / "ref.wav"),
                                         "--seconds", "7"], cwd=ROOT, capture_output=True, text=True,
                              timeout=300)
    assert rendered.returncode == 0, rendered.stderr
    player = subprocess.Popen(command + ["play", str(script), "--seconds", "4", "--device", "system"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with jackutil.JackRecorder(jack_server, jackutil.SUBPROCESS_PORTS, seconds=30) as recorder:
            _, stderr = player.communicate(timeout=120)
            captured = recorder.stop()
    finally:
        player.kill()
        player.wait()
    assert player.returncode == 0, stderr
    assert "underrun" not in stderr
    loud = np.flatnonzero(np.any(captured != 0, axis=1))
    captured = captured[:loud[-1] + 1]
    reference, rate = sf.read(tmp_path / "ref.wav", dtype="float32")
    offset = jackutil.align(captured, reference)
    assert min(len(reference), len(captured) - offset) >= 3 * SR
    assert jackutil.max_abs_diff_aligned(captured, reference, offset=offset) <= 1e-4


def test_a_voice_following_descriptor_curves_hits_them_far_better_than_the_baselines():
    """follow() through a real voice: targets are curves of this test (a centroid triangle
    400 Hz - 4 kHz in log frequency, up and down twice, and a slower 20 dB loudness wave),
    measured on the rendered output by the test's own STFT (test_descriptors.follow_accuracy),
    next to two baselines played by voices over the same corpus in the same run: its frames in
    random order, and its frames sorted by centroid, traversed once."""
    from livelatent import curve, ramp, rand
    from test_descriptors import accuracy_targets, follow_accuracy
    windows = 7 * 256
    target_c, target_l = accuracy_targets(windows)
    inner = slice(2, windows - 2)
    with Engine(seed=1) as engine:
        notes = corpus(sorted(PACK.glob("*.flac")))
        length = windows * 512 / SR * engine.intended_tempo() / 60.0       # in beats

        def targets(t):
            phase = np.clip(np.asarray(t, dtype=np.float64) / length, 0, 1)
            triangle = 1 - np.abs((2 * phase) % 1 * 2 - 1)
            return 400.0 * 10.0 ** triangle, -26.0 + 10.0 * np.sin(2 * np.pi * phase)

        by_centroid = notes.sorted_by("centroid")
        players = {"follow": lambda: voice(follow(notes, centroid=curve(lambda t: targets(t)[0]),
                                                  loudness=curve(lambda t: targets(t)[1]))),
                   "follow, sampled": lambda: voice(follow(notes, centroid=curve(lambda t: targets(t)[0]),
                                                           loudness=curve(lambda t: targets(t)[1])),
                                                    deterministic=False),
                   "random": lambda: voice(by_centroid.scrub(rand(3, step=length / windows)),
                                           deterministic=True),
                   "sorted": lambda: voice(by_centroid.scrub(ramp(length)), deterministic=True)}
        results = {}
        for name, play in players.items():
            engine.render_array(samples=2048)
            v = play()
            audio = engine.render_array(samples=windows * 512 + 2048)
            start = v.params.start - (engine.position - audio.shape[0])
            v.stop(fade=0)
            mono = (audio[:, 0].astype(np.float64) + audio[:, 1]) / np.sqrt(2)   # undo the pan
            centers = start + np.arange(windows) * 512 + 512
            results[name] = r = follow_accuracy(mono, SR, centers[inner], target_c[inner], target_l[inner])
            print(f"\n{name:>16}: log-centroid corr {r['centroid_corr']:.3f}, median centroid error "
                  f"{r['centroid_rel_error']:.3f}, loudness corr {r['loudness_corr']:.3f}", end="")
    ours = results["follow"]
    assert ours["centroid_corr"] >= 0.9 and ours["centroid_rel_error"] <= 0.15, results
    assert ours["loudness_corr"] >= 0.9, results
    for baseline in ("random", "sorted"):
        assert ours["centroid_corr"] > results[baseline]["centroid_corr"] + 0.5, results
        assert ours["centroid_rel_error"] < results[baseline]["centroid_rel_error"] / 3, results
    assert results["follow, sampled"]["centroid_corr"] >= 0.9, results     # looser, still following


def test_show_map_draws_the_voices_paths_where_their_frames_project(four, tmp_path):
    a, b = four[:2]
    with Engine(seed=1) as engine:
        names = namespace(engine)
        voice(a, name="alone", deterministic=True)
        voice(a, b, curve=sine(2), name="between")
        engine.render_array(3.0)
        info = names["show_map"](seconds=2.0, path=tmp_path / "map.png", method="pca")
        frames = a.frames(engine.codec, 512)
    assert (tmp_path / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(info.labels) == {"flute", "cello"} and set(info.paths) == {"alone", "between"}
    # a voice of one source plays that source's frames: its path lies on their projection
    projected = info.projection.transform(frames.mu)
    played = info.paths["alone"]
    assert len(played) >= 2.0 * SR / 512 - 1
    nearest = np.min(np.linalg.norm(played[:, None, :] - projected[None, :, :], axis=2), axis=1)
    assert nearest.max() < 1e-4
    # the path between two sources leaves them
    between = info.paths["between"]
    far = np.min(np.linalg.norm(between[:, None, :] - projected[None, :, :], axis=2), axis=1)
    assert far.max() > 1e-2


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
