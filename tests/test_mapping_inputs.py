"""What a mapping is given: its k and seed, an example's inputs and target, and its name (the
key its voices follow). Bad values are one-line ParameterErrors made up front, never a numpy
error when the voice plays; two mappings left unnamed never take over each other's voices; a
knn mapping played far outside its examples still weights its nearest ones."""

import numpy as np
import pytest

from livelatent import Engine, ParameterError, cloud, plane, saw, source, tri, voice
from livelatent.mapping.mapping import Mapping, target_point
from livelatent.mapping.models import fit
from livelatent.mapping.node import Mapped
from livelatent.session.namespace import namespace
from pathutil import PACK


@pytest.fixture(scope="module")
def four():
    return tuple(source(PACK / f"{n}.flac") for n in ("flute", "cello", "choir", "harp"))


@pytest.mark.parametrize("k", [0, -1, 64, 2.5, True, "a", float("nan"), None])
def test_a_knn_k_outside_1_to_63_or_not_whole_is_refused_when_the_mapping_is_made(k):
    engine = Engine()
    with pytest.raises(ParameterError, match=r"k=.*whole number from 1 to 63"):
        Mapping(engine, [saw(4)], name="m", kind="knn", k=k)


@pytest.mark.parametrize("seed", ["x", float("nan"), -1, 1.5, True])
def test_a_seed_that_is_not_a_whole_number_from_0_is_refused(seed):
    with pytest.raises(ParameterError, match=r"seed=.*whole number from 0"):
        Mapping(Engine(), [saw(4)], name="m", seed=seed)


def test_k_1_and_63_and_numpy_integers_are_taken():
    engine = Engine()
    assert Mapping(engine, [saw(4)], name="a", kind="knn", k=np.int64(1)).k == 1
    assert Mapping(engine, [saw(4)], name="b", kind="knn", k=63, seed=np.int32(3)).seed == 3


@pytest.mark.parametrize("inputs", [["a"], [1j], {0: 1}, [None], [True], "0", np.array([0.5], dtype=object),
                                    np.array([1 + 2j])])
def test_example_inputs_that_are_not_real_numbers_are_refused_clearly(inputs):
    engine = Engine()
    m = Mapping(engine, [saw(4)], name="m")
    with pytest.raises(ParameterError, match=r"m\.add\(inputs=\.\.\.\): 1 number, one per input"):
        m.add(np.zeros(engine.codec.latent_dim), inputs=inputs)


def test_numpy_numbers_and_a_nested_list_of_the_right_count_are_inputs():
    engine = Engine()
    m = Mapping(engine, [saw(4), tri(2)], name="m")
    assert m.add(np.zeros(engine.codec.latent_dim), inputs=[np.float32(0.5), np.int64(1)]) == 1
    assert m.add(np.ones(engine.codec.latent_dim), inputs=np.array([[0.0], [0.25]])) == 2


def test_a_path_as_a_target_says_to_give_a_point_of_it(four):
    f, c, ch, h = four
    engine = Engine()
    m = Mapping(engine, [saw(4)], name="m")
    for path in (plane(f, c, ch, h), cloud(f)):
        with pytest.raises(ParameterError, match=r"not a path .*plane\(\.\.\.\)\.at\(x, y\)"):
            m.add(path, inputs=[0])
    with pytest.raises(ParameterError, match="a target is"):
        m.add(np.full(engine.codec.latent_dim, 1 + 2j), inputs=[0])
    m.add(plane(f, c, ch, h).at(np.float32(0.2), 0.3), inputs=[0])        # a point of it is taken


def test_targets_beyond_float32_are_refused_not_kept_as_infinities(four):
    f, c, ch, h = four
    engine = Engine()
    latent = engine.codec.latent_dim
    m = Mapping(engine, [saw(4)], name="m")
    for target in (np.full(latent, 1e39), (np.zeros(latent), np.full(latent, -1e39)),
                   plane(f, c, ch, h).at(1e300, 0)):
        with pytest.raises(ParameterError, match=r"beyond \+-3\.4e38"):
            m.add(target, inputs=[0])
    point = target_point(plane(f, c, ch, h).at(1.5, -0.5), engine.codec)       # extrapolated, kept
    assert np.all(np.isfinite(point.astype(np.float32)))


def test_a_knn_played_far_out_weights_its_nearest_examples_and_never_goes_silent():
    x = np.array([[0.0], [1.0], [0.5]])
    nearest = fit("knn", x, np.eye(3), k=1)
    for far, which in ((1e6, 1), (1e200, 1), (-1e200, 0), (1e308, 1), (np.inf, 1)):
        np.testing.assert_array_equal(nearest.weights(np.array([[far]]))[0], np.eye(3)[which])
    every = fit("knn", x, np.eye(3), k=4)
    for far in (1e200, -1e300, 1e308):
        weights = every.weights(np.array([[far]]))[0]
        assert np.all(np.isfinite(weights)) and weights.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(weights, every.weights(np.array([[np.sign(far) * 1e9]]))[0], atol=1e-6)
    np.testing.assert_allclose(every.weights(np.array([[0.3]]))[0], [0.2912, 0.0535, 0.6553], atol=1e-4)
    two = fit("knn", np.array([[0, 0], [1, 0], [0, 1], [1, 1.0]]), np.eye(4), k=1)
    np.testing.assert_array_equal(two.weights(np.array([[1e200, 1e200], [-1e200, 1e200]])), np.eye(4)[[3, 2]])


def test_a_knn_mapping_played_with_huge_inputs_plays_as_it_does_far_out(four):
    f, c, ch, _ = four

    def heard(at):
        with Engine(seed=0) as engine:
            m = Mapping(engine, [at], name="far", kind="knn")
            for target, x in ((f, 0), (c, 1), (ch, 0.5)):
                m.add(target, inputs=[x])
            m.train(wait=True)
            voice(m, seed=1)
            return engine.render_array(0.5)

    far, huge = heard(1e9), heard(1e200)      # 1e200 squared overflows; its weights must not
    assert np.abs(far).max() > 1e-3
    np.testing.assert_allclose(huge, far, atol=1e-5)


def test_two_mappings_left_unnamed_keep_their_own_voices(four):
    f, c, ch, h = four
    with Engine(seed=0) as engine:
        names = namespace(engine)
        a = names["mapping"](inputs=[saw(4)], kind="knn")
        a.add(f, inputs=[0]); a.add(c, inputs=[1]); a.train(wait=True)
        voice(a, name="va")
        engine.render_array(0.1)
        b = names["mapping"](inputs=[tri(2)], kind="knn")
        b.add(ch, inputs=[0]); b.add(h, inputs=[1]); b.train(wait=True)
        engine.render_array(0.1)
        assert a.name != b.name
        played = engine.intended_voices()[0].path
        assert isinstance(played, Mapped) and played.model is a.model and played.inputs == a.inputs


def test_a_mapping_made_again_under_its_name_takes_its_voices_and_says_so(four):
    f, c, ch, h = four
    with Engine(seed=0) as engine:
        names = namespace(engine)
        a = names["mapping"](inputs=[saw(4)], kind="knn", name="pad")
        a.add(f, inputs=[0]); a.add(c, inputs=[1]); a.train(wait=True)
        voice(a, name="va")
        engine.render_array(0.1)
        b = names["mapping"](inputs=[tri(2)], kind="knn", name="pad")
        assert any("'pad' is made again" in t for t in engine.events.texts())
        b.add(ch, inputs=[0]); b.add(h, inputs=[1]); b.train(wait=True)
        engine.render_array(0.1)
        assert engine.intended_voices()[0].path.model is b.model


def test_default_names_skip_names_taken_and_bad_names_are_refused():
    engine = Engine()
    names = namespace(engine)
    Mapping(engine, [saw(4)], name="mapping")           # e.g. loaded from a set
    assert names["mapping"](inputs=[saw(4)]).name == "mapping2"
    assert namespace(engine)["mapping"](inputs=[saw(4)]).name == "mapping3"   # per engine
    # the first is plain "mapping", as every unnamed one was before: a set of one replays
    assert namespace(Engine())["mapping"](inputs=[saw(4)]).name == "mapping"
    for bad in ("", 3, "a\nb", "x" * 65):
        with pytest.raises(ParameterError, match="name="):
            names["mapping"](inputs=[saw(4)], name=bad)


@pytest.mark.parametrize("k, seed, kept", [(100, -1, (63, 0)), (0, 3, (1, 3)), (5, 2, (5, 2))])
def test_a_set_saved_with_a_k_or_seed_older_code_took_still_loads(tmp_path, k, seed, kept):
    import json
    from livelatent.mapping.stored import load_mappings, save_mappings
    from livelatent.session.records import rebuild_curve
    engine = Engine()
    m = Mapping(engine, [saw(4)], name="old", kind="knn")
    m.add(np.zeros(engine.codec.latent_dim), inputs=[0]); m.add(np.ones(engine.codec.latent_dim), inputs=[1])
    m.train(wait=True)
    save_mappings({"m": m}, tmp_path)
    described = tmp_path / "mappings" / "m.json"
    settings = json.loads(described.read_text())
    settings.update(k=k, seed=seed)                      # as older livelatent let them be
    described.write_text(json.dumps(settings))
    names = {}
    assert load_mappings(Engine(), tmp_path, names, rebuild_curve=rebuild_curve) == ["m"]
    assert (names["m"].k, names["m"].seed) == kept and names["m"].name == "old"
    np.testing.assert_allclose(names["m"].predict([1.0])[0], np.ones(engine.codec.latent_dim), atol=1e-6)


def test_a_replay_runs_older_code_as_older_livelatent_ran_it(tmp_path):
    # a journal's cells are run again in a replay: values older livelatent took (k=100, a
    # negative seed, a number as a name, loop=1) must not make a cell that played fail now
    from livelatent.api import Performer
    engine = Engine()
    replayed = Mapping(engine, [saw(4)], name=3, kind="knn", k=100, seed=-1, replaying=True)
    assert (replayed.k, replayed.seed, replayed.name) == (63, 0, "3")
    with pytest.raises(ParameterError):
        Mapping(engine, [saw(4)], name="live", k=100)               # live, it is refused
    flute = source(PACK / "flute.flac")
    with engine:
        v = Performer(engine, replaying=True).voice(flute, flute, loop=1, deterministic=0)
        assert v.params.loop is True and v.params.deterministic is False
        seeded = Performer(engine, replaying=True).voice(flute, flute, seed=True)    # took it as 1
        assert seeded.params.seed == 1 and type(seeded.params.seed) is int


def test_a_replayed_load_counts_the_sets_mapping_names_as_a_live_load_does(tmp_path):
    # live, load() makes the set's mappings, so an unnamed one made after it is "mapping2"; a
    # replay's load() makes none, and gave it "mapping": its timers' examples went missing
    import json
    from livelatent.mapping.checks import default_name
    from livelatent.mapping.stored import note_saved_names
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "m.json").write_text(json.dumps({"name": "mapping"}))
    engine = Engine()
    note_saved_names(engine, tmp_path)
    assert default_name(engine) == "mapping2"


def _saved_mapping(tmp_path, kind):
    from livelatent.mapping.stored import save_mappings
    engine = Engine()
    m = Mapping(engine, [saw(4), tri(2)], name="kept", kind=kind)
    latent = engine.codec.latent_dim
    for i, x in enumerate(([0, 0], [1, 0], [0, 1], [1, 1])):
        m.add(np.full(latent, 0.1 * i), inputs=x)
    m.train(wait=True)
    save_mappings({"m": m}, tmp_path)
    return tmp_path / "mappings" / "m.npz"


@pytest.mark.parametrize("kind, field, value", [
    ("knn", "model.mean", np.zeros(3, np.float32)),          # a third input that is not there
    ("knn", "model.examples", None),                          # removed
    ("knn", "model.rows", np.full((4, 512), np.nan, np.float32)),
    ("knn", "model.rows", np.zeros((4, 512, 1), np.float32)),
    ("linear", "model.rows", np.zeros((2, 512), np.float32)),  # rows for other inputs
    ("mlp", "model.hidden", None),
    ("mlp", "model.scale", np.zeros(2, np.float32)),
    ("knn", "x", np.zeros((3, 2))),                           # fewer inputs than targets
    ("knn", "y", np.zeros((4, 7))),
    ("knn", "truncated", None),
    ("knn", "gigabytes", None),           # a member's header declaring 37 GiB: np.load tried
    ("knn", "nested", None),              # m.json nested 100,000 deep: a RecursionError
])
def test_a_damaged_saved_mapping_is_refused_at_load_naming_its_file(tmp_path, kind, field, value):
    from livelatent.errors import SetError
    from livelatent.mapping.stored import load_mappings
    from livelatent.session.records import rebuild_curve
    stored = _saved_mapping(tmp_path, kind)
    if field == "truncated":
        stored.write_bytes(stored.read_bytes()[:300])
    elif field == "gigabytes":
        import io
        import zipfile

        from numpy.lib import format as npy_format
        header = io.BytesIO()
        npy_format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                   "shape": (10 ** 10,)})
        with zipfile.ZipFile(stored, "w") as archive:
            archive.writestr("x.npy", header.getvalue() + b"\0" * 64)
    elif field == "nested":
        (tmp_path / "mappings" / "m.json").write_text("[" * 100_000)
    else:
        arrays = dict(np.load(stored))
        if value is None:
            del arrays[field]
        else:
            arrays[field] = value
        np.savez(stored, **arrays)
    with pytest.raises(SetError, match=r"m\.json: the mapping cannot be read"):
        load_mappings(Engine(), tmp_path, {}, rebuild_curve=rebuild_curve)


def test_an_unknown_model_kind_in_a_set_is_refused_not_played_as_knn(tmp_path):
    import json
    from livelatent.errors import SetError
    from livelatent.mapping.stored import load_mappings
    from livelatent.session.records import rebuild_curve
    _saved_mapping(tmp_path, "knn")
    described = tmp_path / "mappings" / "m.json"
    settings = json.loads(described.read_text())
    settings["model"]["kind"] = "bogus"
    described.write_text(json.dumps(settings))
    with pytest.raises(SetError, match="kind is not one of"):
        load_mappings(Engine(), tmp_path, {}, rebuild_curve=rebuild_curve)


@pytest.mark.parametrize("kind", ["knn", "linear", "mlp"])
def test_inputs_too_large_to_learn_from_are_refused_and_far_inputs_predict_numbers(kind):
    with pytest.raises(ParameterError, match="within"):
        fit(kind, np.array([[1e308], [1.7e308]]), np.eye(2))
    model = fit(kind, np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.eye(4))
    for far in ([1e308, -1e308], [np.inf, -np.inf], [-1e300, 1e300]):
        assert np.isfinite(model.predict(np.array(far))).all(), (kind, far)


def test_an_example_too_large_to_learn_from_is_refused_and_the_mapping_still_trains():
    # accepted, such an example made every later train() fail, and was saved with the set
    with Engine() as engine:
        m = Mapping(engine, [saw(4)], name="huge", kind="knn")
        latent = engine.codec.latent_dim
        for x in (1e308, -1.7e308, 1e31):
            with pytest.raises(ParameterError, match=r"huge.add\(\): examples' inputs reach .* within \+-1e\+30"):
                m.add(np.zeros(latent), inputs=[x])
        m.add(np.zeros(latent), inputs=[0.0])
        m.add(np.ones(latent), inputs=[1e30])
        m.train(wait=True)
        assert len(m.examples) == 2 and m.model is not None


def test_a_mapping_of_no_inputs_is_refused_and_a_mapping_where_a_path_goes_says_path(four):
    engine = Engine()
    with pytest.raises(ParameterError, match="give the curves"):
        Mapping(engine, [[]], name="none")
    m = Mapping(engine, [saw(4)], name="taught", kind="knn")
    m.add(np.zeros(engine.codec.latent_dim), inputs=[0])
    m.add(np.ones(engine.codec.latent_dim), inputs=[1])
    m.train(wait=True)
    with engine:
        v = voice(plane(*four))
        with pytest.raises(ParameterError, match=r"m\.path\(\)"):
            v.path = m
        v.path = m.path()
