"""Learned mappings: two faders to four SOM clusters, taught by twelve examples; each kind
learns its examples and interpolates between them; a voice plays the mapping, follows it when
it is trained again, and a set renders the journaled weights (no training in a replay)."""

import numpy as np
import pytest
import soundfile as sf

from livelatent import Engine, LiveLatentError, ParameterError, load_model
from livelatent.corpus.som import load_som
from livelatent.mapping.mapping import Mapping, target_point
from livelatent.session.session import Session
from livelatent.session.sets import render_set

CORNERS = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


@pytest.fixture(scope="module")
def taught(tmp_path_factory):
    """Twelve examples: three per SOM cluster, around a corner of the fader square."""
    import shutil
    from pathutil import PACK
    from livelatent.corpus.som import build_som
    notes = tmp_path_factory.mktemp("notes")
    for name in ("flute", "cello", "choir", "harp", "bass", "organ", "guitar", "clarinet"):
        shutil.copy(PACK / f"{name}.flac", notes / f"{name}.flac")
    som_dir = build_som(notes, tmp_path_factory.mktemp("maps") / "notes", grid="3x3", progress=False).path
    codec = load_model()
    som = load_som(som_dir)
    clusters = som.clusters[:4]
    assert len(clusters) == 4
    rng = np.random.default_rng(7)
    examples = []
    for corner, cluster in zip(CORNERS, clusters):
        target = target_point(som[cluster.index], codec)
        for _ in range(3):
            examples.append((np.clip(corner + rng.uniform(-0.03, 0.03, 2), 0, 1), target))
    return codec, examples


@pytest.mark.parametrize("kind", ["mlp", "knn", "linear"])
def test_each_kind_learns_its_examples_and_interpolates_between_them(taught, kind):
    codec, examples = taught
    engine = Engine(codec)
    m = Mapping(engine, [0.0, 0.0], name="faders", kind=kind, seed=1)
    for inputs, target in examples:
        m.add((target[:codec.latent_dim], target[codec.latent_dim:]), inputs=inputs)
    m.train(wait=True)
    targets = np.unique(np.stack([t for _, t in examples]), axis=0)
    spacing = np.mean([np.linalg.norm(a - b) for i, a in enumerate(targets) for b in targets[i + 1:]])
    for inputs, target in examples:
        predicted = np.concatenate(m.predict(inputs))
        assert np.linalg.norm(predicted - target) <= 0.05 * spacing
    for first, second in [(0, 3), (0, 6), (3, 9), (6, 9), (1, 4), (2, 8)]:   # along the edges
        (x1, t1), (x2, t2) = examples[first], examples[second]
        middle = np.concatenate(m.predict((x1 + x2) / 2))
        segment = t2 - t1
        along = float(np.dot(middle - t1, segment) / np.dot(segment, segment))
        off = np.linalg.norm(middle - (t1 + np.clip(along, 0, 1) * segment))
        assert 0.0 <= along <= 1.0, (kind, first, second, along)
        assert off <= 0.10 * np.linalg.norm(segment), (kind, first, second, off)


def test_bad_examples_and_inputs_are_refused_clearly():
    engine = Engine()
    with pytest.raises(ParameterError, match="give the curves"):
        Mapping(engine, [], name="m")
    m = Mapping(engine, [0.0, 0.0], name="m")
    with pytest.raises(ParameterError, match="2 numbers"):
        m.add(np.zeros(engine.codec.latent_dim), inputs=[1.0])
    with pytest.raises(ParameterError, match="NaN"):
        m.add(np.zeros(engine.codec.latent_dim), inputs=[float("nan"), 0.0])
    with pytest.raises(ParameterError, match="a target is"):
        m.add("cello", inputs=[0.0, 0.0])
    m.add(np.zeros(engine.codec.latent_dim), inputs=[0.0, 0.0])
    with pytest.raises(ParameterError, match="at least two"):
        m.train()
    with pytest.raises(LiveLatentError, match="not trained yet"):
        m.path()


def test_a_voice_plays_the_mapping_follows_its_training_and_the_set_renders_the_weights(tmp_path):
    with Engine(seed=3) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="mapped")
        session.run_cell("m = mapping(inputs=[sine(4) * 0.5 + 0.5, tri(3)], name='faders', kind='knn')\n"
                         "m.add(flute.at(0.5), inputs=[0, 0]); m.add(cello, inputs=[1, 0])\n"
                         "m.add(piano.at(1), inputs=[0, 1]); m.add(strings, inputs=[1, 1])\n"
                         "m.train(wait=True)\n"
                         "v = voice(m, name='mapped')")
        first = engine.render_array(2.0)
        session.run_cell("m.add(choir, inputs=[0.5, 0.5]); m.train(kind='mlp', wait=True)")
        second = engine.render_array(2.0)
        assert session.run_cell("v.path").model.kind == "mlp"        # the voice followed
        session.end()
        session.close()
    played = np.concatenate([first, second])
    assert np.abs(second).max() > 0.01
    render_set(tmp_path / "sets" / "mapped", tmp_path / "mapped.wav", progress=False)
    rendered, _ = sf.read(tmp_path / "mapped.wav", dtype="float32")
    assert np.array_equal(rendered[:len(played)], played)            # the journaled weights


def test_a_voice_playing_the_mapping_inside_another_path_is_told_it_keeps_the_old_one(tmp_path):
    # cloud(m.path()) kept the first training without a word, where voice(m) follows it
    with Engine(seed=3) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="inside")
        session.run_cell("m = mapping(inputs=[sine(4) * 0.5 + 0.5], name='knob', kind='knn')\n"
                         "m.add(flute.at(0.5), inputs=[0]); m.add(cello.at(0.5), inputs=[1])\n"
                         "m.train(wait=True)\n"
                         "grains = voice(cloud(m.path(), points=3), name='grains')")
        session.run_cell("m.add(choir.at(0.5), inputs=[0.5]); m.train(wait=True)")
        said = [t for t in engine.events.texts() if "plays the mapping inside a cloud" in t]
        session.close()
    assert len(said) == 1 and "voice 'grains'" in said[0] and "knob.path()" in said[0], said


def test_a_repl_session_teaches_a_mapping_over_osc_and_renders_as_heard(jack_server, tmp_path):
    """The REPL adds examples (given, and read from the inputs now), trains, plays the mapping
    while OSC moves one input and a scripted curve the other, trains again while it plays:
    `livelatent render` of the set equals what JACK captured."""
    from pythonosc.udp_client import SimpleUDPClient
    from livelatent.session.performance import read_performance
    from replutil import free_udp_port, heard_is_rendered, last_underruns, recorded_repl

    sets, port = tmp_path / "sets", free_udp_port()
    with recorded_repl(jack_server, ["--blocksize", "1024", "--set", "taught"], sets,
                       env={"LIVELATENT_OSC_PORT": str(port)}) as (repl, recorder):
        client = SimpleUDPClient("127.0.0.1", port)
        repl.run("m = mapping(inputs=[osc('/x', default=0.1).smooth(20), tri(4)], name='faders')")
        repl.run("m.add(flute.at(0.5), inputs=[0, 0]); m.add(cello, inputs=[1, 0]); "
                 "m.add(choir, inputs=[0, 1]); m.add(harp, inputs=[1, 1])")
        client.send_message("/x", 0.5)
        repl.pump(0.5)
        assert "5" in repl.run("m.add(strings)")            # the inputs' values now
        repl.run("m.train(wait=True)")
        repl.run("v = voice(m, name='taught')")
        for i in range(200):                               # OSC moves the first input
            client.send_message("/x", 0.5 + 0.5 * np.sin(i / 15))
            repl.pump(0.02)
        repl.run("m.add(organ, inputs=[0.5, 0.5]); m.train()")   # trained again while it plays
        for i in range(150):
            client.send_message("/x", 0.5 + 0.5 * np.cos(i / 10))
            repl.pump(0.02)
        assert "trained (mlp, 6 examples)" in repl.text
        assert repl.exit() == 0, repl.text[-2000:]
        captured = recorder.stop()
    assert "error:" not in repl.text and "Traceback" not in repl.text, repl.text[-3000:]
    performance = read_performance(sets / "taught" / "journal.jsonl")
    assert any(b.origin == "mapping:faders" for b in performance.batches)
    heard_is_rendered(captured, sets / "taught", tmp_path / "taught.wav", seconds=6, late=recorder.late_spans)
    assert last_underruns(repl.text) == 0


def test_save_keeps_a_mappings_examples_and_weights_and_load_restores_them(tmp_path):
    with Engine(seed=2) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="kept")
        session.run_cell("m = mapping(inputs=[cc(1), cc(2)], name='faders', kind='knn')\n"
                         "m.add(flute, inputs=[0, 0]); m.add(cello, inputs=[1, 1]); m.train(wait=True)\n"
                         "v = voice(m, name='taught')\n"
                         "save('kept')")
        before = session.namespace["m"]
        session.run_cell("del m; hush()")
        session.run_cell("load('kept')")
        after = session.namespace["m"]
        assert after is not before and after.name == "faders" and len(after.examples) == 2
        assert np.array_equal(after.model.rows, before.model.rows)
        assert np.allclose(np.concatenate(after.predict([0.2, 0.3])), np.concatenate(before.predict([0.2, 0.3])))
        restored = [p for p in engine.intended_voices() if p.name == "taught"]
        assert restored and restored[0].path.model.kind == "knn"
        session.run_cell("m.add(choir, inputs=[1, 0]); m.train(kind='linear', wait=True)")
        assert [p for p in engine.intended_voices() if p.name == "taught"][0].path.model.kind == "linear"
        session.close()


def test_targets_from_a_plane_a_playing_voice_and_a_source_at_a_time(tmp_path):
    from livelatent import plane, source
    from pathutil import PACK
    flute, cello, choir, harp = (source(PACK / f"{n}.flac") for n in ("flute", "cello", "choir", "harp"))
    with Engine(seed=5) as engine:
        codec, latent = engine.codec, engine.codec.latent_dim
        corner = plane(flute, cello, choir, harp, x=0.0, y=0.0)
        np.testing.assert_allclose(target_point(corner.at(0, 0), codec), target_point(flute, codec))
        middle = target_point(corner.at(0.5, 0.5), codec)
        np.testing.assert_allclose(middle, np.mean([target_point(s, codec) for s in (flute, cello, choir, harp)],
                                                   axis=0), atol=1e-6)
        frames = flute.frames(codec, 512)
        at = target_point(flute.at(1.0), codec)
        np.testing.assert_allclose(at[:latent], frames.mu[round(44100 / 512)])
        session = Session(engine, sets_root=tmp_path / "sets", set_name="now")
        session.run_cell("v = voice(flute, cello, curve=0.25, name='still')")
        engine.render_array(1.0)
        mu, logvar = session.run_cell("v.now()")
        k = (engine.position - session.run_cell("v").params.start) // 512
        expected = 0.75 * np.concatenate([frames.mu[k % len(frames)], frames.logvar[k % len(frames)]])
        cello_frames = cello.frames(codec, 512)
        expected += 0.25 * np.concatenate([cello_frames.mu[k % len(frames)], cello_frames.logvar[k % len(frames)]])
        np.testing.assert_allclose(np.concatenate([mu, logvar]), expected, atol=1e-5)
        session.run_cell("m = mapping(inputs=[cc(1)], name='one'); m.add(v.now(), inputs=[0]); "
                         "m.add(choir, inputs=[1]); m.train(wait=True)")
        info = session.run_cell(f"m.show({str(tmp_path / 'm.png')!r})")
        assert info.path.stat().st_size > 1000 and set(info.paths) == {"1-2"}
        with pytest.raises(LiveLatentError, match="one.show.None.: give a .png file name"):
            session.run_cell("m.show(None)")                          # (a TypeError)
        session.close()


def test_then_drives_a_planes_xy_and_along_coefficients_and_renders_as_played(tmp_path):
    """``m.then(plane)``: examples taught as points of the plane give back their (x, y); the
    voice plays the plane with the mapping's x and y, follows a new training, and the set
    renders it exactly. ``m.then(along(...))`` gives the coefficients of a taught offset."""
    from livelatent import along, directions, plane, source
    from livelatent.mapping.steering import parameters_of
    from pathutil import PACK
    flute, cello, choir, harp = (source(PACK / f"{n}.flac") for n in ("flute", "cello", "choir", "harp"))
    with Engine(seed=4) as engine:
        codec = engine.codec
        square = plane(flute, cello, choir, harp)
        taught = [(0.1, 0.2), (0.8, 0.3), (0.4, 0.9), (0.6, 0.6)]
        points = np.stack([target_point(square.at(*xy), codec) for xy in taught])
        np.testing.assert_allclose(parameters_of(square, points, codec), taught, atol=1e-4)
        session = Session(engine, sets_root=tmp_path / "sets", set_name="steered")
        session.namespace.update(flute=flute, cello=cello, choir=choir, harp=harp)
        session.run_cell("p = plane(flute, cello, choir, harp)\n"
                         "m = mapping(inputs=[saw(4)], name='xy', kind='knn')\n"
                         "m.add(p.at(0.1, 0.2), inputs=[0]); m.add(p.at(0.8, 0.3), inputs=[1])\n"
                         "m.train(wait=True)\n"
                         "v = voice(m.then(p), name='steered')")
        steered = session.run_cell("v.path")
        np.testing.assert_allclose(steered.driven.x(np.array([0.0, 4.0 - 1e-9])), [0.1, 0.8], atol=1e-4)
        np.testing.assert_allclose(steered.driven.y(np.array([0.0])), [0.2], atol=1e-4)
        first = engine.render_array(2.0)
        session.run_cell("m.add(p.at(0.9, 0.9), inputs=[0.5]); m.train(wait=True)")
        followed = session.run_cell("v.path")
        assert followed is not steered and followed.model.rows.shape == (3, 2)
        np.testing.assert_allclose(followed.driven.x(np.array([2.0])), [0.9], atol=1e-4)
        second = engine.render_array(2.0)
        with pytest.raises(LiveLatentError, match="plane's x and y"):
            session.run_cell("m.then(flute)")
        session.end()
        session.close()
    played = np.concatenate([first, second])
    render_set(tmp_path / "sets" / "steered", tmp_path / "steered.wav", progress=False)
    rendered, _ = sf.read(tmp_path / "steered.wav", dtype="float32")
    assert np.array_equal(rendered[:len(played)], played)

    with Engine(seed=4) as engine:
        codec = engine.codec
        dirs = directions([flute, cello, choir, harp], k=3)
        walk = along(flute, dirs, {0: 0.0, 2: 0.0})
        base = target_point(flute, codec)
        latent = codec.latent_dim
        offset = base.copy()
        offset[:latent] += 1.5 * dirs.vectors[0] - 0.5 * dirs.vectors[2]
        m = Mapping(engine, [0.0], name="walk", kind="mlp")
        m.add((base[:latent], base[latent:]), inputs=[0.0])
        m.add((offset[:latent], offset[latent:]), inputs=[1.0])
        m.train(wait=True)
        node = m.then(walk)
        assert node.slots == (0, 2)
        np.testing.assert_allclose(node.model.predict([[1.0]])[0], [1.5, -0.5], atol=0.05)
        np.testing.assert_allclose(node.model.predict([[0.0]])[0], [0.0, 0.0], atol=0.05)


def test_examples_are_read_where_their_cell_lands_journaled_and_replayed(tmp_path):
    """``m.add(target)`` reads the inputs, and ``v.now()`` the voice, at the sample where the
    cell lands (not where the listener was when the code ran); the journal keeps what was read,
    and a replay's mapping gets the same examples from it. Training in the same cell waits
    for them."""
    from livelatent import saw
    from livelatent.session.performance import read_performance
    from livelatent.session.replay import Replayer, ReplayReport
    from livelatent.session.sets import open_set, replay_namespace
    with Engine(seed=6) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="read")
        session.run_cell("m = mapping(inputs=[saw(8)], name='timed')\n"
                         "v = voice(flute, cello, curve=saw(4), name='moving')")
        engine.render_array(1.0)
        assert session.run_cell("m.add(cello)") == 1
        with engine.batch(origin="timer", at=66560):      # lands half a second after the listener
            m = session.namespace["m"]
            assert m.add(session.namespace["harp"]) == 2 and len(m.examples) == 1
        assert len(m.examples) == 2
        engine.render_array(0.5)
        session.run_cell("m.add(v.now(), inputs=[0.25])")
        engine.render_array(0.5)
        session.run_cell("m.add(flute, inputs=[0.9]); m.add(choir); m.train(kind='knn', wait=True)")
        live = session.namespace["m"]
        assert len(live.examples) == 5 and live.model is not None and live.model.terms == 5
        voice = session.namespace["v"]
        session.end()
        session.close()
        folder = tmp_path / "sets" / "read"
        read = [b for b in read_performance(folder / "journal.jsonl").batches if b.readings]
        assert [len(b.readings) for b in read] == [1, 1, 1, 2]
        assert read[1].sample == 66560 and read[1].origin == "timer"
        for record, example in zip(read[:2], live.examples):
            beats = record.sample / 44100 * engine.clock.bpm / 60      # one tempo all along
            assert example[0][0] == pytest.approx(float(saw(8)(beats)), abs=1e-9)
        mu, logvar = voice.point_at(read[2].sample)
        np.testing.assert_allclose(live.examples[2][1], np.concatenate([mu, logvar]).astype(np.float32),
                                   atol=1e-6)
    performance, codec = open_set(folder)
    with Engine(codec, seed=6) as replay_engine:
        names = replay_namespace(replay_engine, folder)
        replayer = Replayer(replay_engine, performance, folder, names=names, report=ReplayReport())
        for action in replayer.actions():
            replayer.perform(action)
        replayed = names["m"]
        assert len(replayed.examples) == 5
        for (x1, y1), (x2, y2) in zip(live.examples, replayed.examples):
            assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
        assert replayed.model is not None and np.array_equal(replayed.model.rows, live.model.rows)


def test_while_playing_a_mapping_is_fitted_in_a_worker_process_to_the_same_numbers():
    """Trained while the engine plays, a mapping's fit runs in a process of its own (its thousand
    small steps would otherwise compete with the decode thread for the interpreter's lock and
    the cores), giving exactly what a fit here gives."""
    import os
    from livelatent.mapping import beside
    from livelatent.mapping.models import fit
    rng = np.random.default_rng(2)
    x, y = rng.uniform(0, 1, (12, 2)), rng.normal(0, 1, (12, 512))
    there = beside.fit_beside("mlp", x, y, seed=3, k=4, each=True)
    here = fit("mlp", x, y, seed=3, k=4, each=True)
    assert all(np.array_equal(a, b) for a, b in zip(there.arrays().values(), here.arrays().values()))
    workers = list(beside._pool._processes)
    assert workers and os.getpid() not in workers
