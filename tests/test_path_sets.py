"""Latent paths in sets and journals, live over JACK, followed descriptors through a voice,
and the map of the voices' paths."""

import json
import subprocess
import sys

import numpy as np
import soundfile as sf

import jackutil
from livelatent import Engine, sine, voice
from livelatent.corpus.som import load_som
from livelatent.session.namespace import namespace
from livelatent.session.session import Session

from pathutil import ROOT, SR


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
    assert state["voices"][0]["path"]["kind"] == "cloud" and state["voices"][0]["tail_a"] is True
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
    state["schema"] = 2                          # as livelatent 0.2 wrote it
    for record in state["voices"]:
        del record["tail_a"], record["tail_b"]
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
    captured = jackutil.until_stream_stopped(captured)
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
    from followutil import assert_follows_far_better, following_results
    results = following_results()
    for name, r in results.items():
        print(f"\n{name:>16}: log-centroid corr {r['centroid_corr']:.3f}, median centroid error "
              f"{r['centroid_rel_error']:.3f}, loudness corr {r['loudness_corr']:.3f}", end="")
    assert_follows_far_better(results)
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


def test_a_path_with_a_python_curve_is_said_at_save_and_left_out_at_load(tmp_path):
    with Engine(seed=4) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="py")
        session.run_cell("import numpy as np\n"
                         "v = voice(plane(flute, cello, choir, harp, x=curve(lambda t: np.sin(t) / 2 + 0.5), "
                         "y=0), name='wobble')\n"
                         "w = voice(flute, cello, curve=sine(4), name='plain')")
        session.run_cell("save()")
        assert any("leaves this voice out" in text for text in engine.events.texts())
        session.close()
    with Engine(seed=4) as engine:
        other = Session(engine, sets_root=tmp_path / "sets", set_name="again")
        other.run_cell("load('py')")
        assert [p.name for p in engine.intended_voices()] == ["plain"]
        assert any("not restored" in text for text in engine.events.texts())
        other.close()
