"""What a path and a voice are given: plane.at takes any real number (numpy's too) and says
that beyond 0..1 it extrapolates; a voice's switches (loop, deterministic) are True or False,
never a string that would silently mean True."""

import numpy as np
import pytest

from livelatent import Engine, ParameterError, plane, saw, source, voice
from pathutil import PACK


@pytest.fixture(scope="module")
def four():
    return tuple(source(PACK / f"{n}.flac") for n in ("flute", "cello", "choir", "harp"))


def test_plane_at_takes_numpy_numbers_and_extrapolates_as_its_message_says(four):
    p = plane(*four)
    at = p.at(np.float32(0.25), np.int64(1))
    assert (at.x, at.y) == (0.25, 1.0) and type(at.x) is float
    assert p.at(1.5, -0.5).x == 1.5
    for bad in (True, np.bool_(False), "0.2", None, 1j, float("nan"), float("inf")):
        with pytest.raises(ParameterError, match=r"a finite number \(0 to 1 is inside the plane; beyond, "
                                                 r"it extrapolates\)"):
            p.at(bad, 0.5)


@pytest.mark.parametrize("options", [dict(loop="x"), dict(loop=None), dict(loop=1),
                                     dict(deterministic="no"), dict(deterministic=0)])
def test_a_voice_switch_must_be_true_or_false(four, options):
    with Engine() as engine:
        with pytest.raises(ParameterError, match=r"must be True or False"):
            voice(four[0], four[1], **options)
        assert engine.intended_voices() == []


def test_numpy_bools_and_none_for_deterministic_are_taken(four):
    with Engine():
        v = voice(four[0], four[1], loop=np.bool_(False), deterministic=None)
        assert v.params.loop is False and v.params.deterministic is False


def test_latent_series_times_far_past_the_end_and_text_for_smooth_are_clear_errors():
    from livelatent import corpus, follow
    from livelatent.paths.cartography import parse_map_grid
    flute = source(PACK / "flute.flac")
    engine = Engine()
    for made in (flute.slice(1e306), flute.slice(1e300), flute.freeze(1e306)):
        with pytest.raises(ParameterError):
            made.frames(engine.codec, 512)
    assert len(flute.slice(0, 1e306).frames(engine.codec, 512)) == len(flute.frames(engine.codec, 512))
    with engine, pytest.raises(ParameterError, match="smooth"):
        follow(corpus(flute), centroid=400, smooth="0.5")
    with pytest.raises(ParameterError, match="ROWSxCOLS"):
        parse_map_grid((2, 2.5))


def test_show_map_checks_its_seconds_and_file(tmp_path):
    from livelatent.maps import show_map
    engine = Engine()
    flute = source(PACK / "flute.flac")
    for seconds in (float("nan"), float("inf"), None, "10", -5, True):
        with pytest.raises(ParameterError, match="seconds"):
            show_map(engine, [flute], seconds=seconds, path=tmp_path / "m.png")
    with pytest.raises(ParameterError, match="PNG file"):
        show_map(engine, [flute], path=None)


def test_a_path_voice_refuses_a_source_as_its_path_and_plays_on(four):
    # v.path = a source (or a latent series) was taken, and every step after it raised an
    # AttributeError: the engine never played again, and a set holding it never rendered
    a, b, c, d = four
    with Engine() as engine:
        v = voice(plane(a, b, c, d, x=0.25))
        for bad in (b, b.reverse(), b.scrub(saw(1))):
            with pytest.raises(ParameterError, match="a source is not a path; voice .* plays a path"):
                v.path = bad
        w = voice(a, b)
        with pytest.raises(ParameterError, match=r"v.a = a path \(.*\): a and b are sources"):
            w.a = plane(a, b, c, d)                   # (was "not an array of audio samples")
        assert np.abs(engine.render_array(0.3)).max() > 0.01


@pytest.mark.parametrize("name", [b"x", 5, ["x"], float("nan")])
def test_a_source_or_corpus_name_is_a_string(name):
    # a name of bytes was taken, and the voice playing it never reached the journal (JSON
    # cannot write bytes), nor could save() write the set. (A file's name, its default, can be
    # long: a name is not held to a voice's 64 characters.)
    from livelatent import corpus
    with Engine():
        with pytest.raises(ParameterError, match=r"source\(name=.*\) must be a string"):
            source(np.ones(5000, np.float32) * 0.3, name=name)
        with pytest.raises(ParameterError, match=r"corpus\(name=.*\) must be a string"):
            corpus(PACK / "flute.flac", name=name)
