"""What ``som`` refuses in one line (seeds MiniSom cannot take, grids too large to allocate, an
output that is a file), and maps of model thumbnails that find their model from any folder."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from livelatent.cli import main
from livelatent.corpus.som import MAX_SIDE, build_som, load_som, parse_grid
from livelatent.errors import ParameterError
from livelatent.model.checkpoint import save_checkpoint
from livelatent.model.packs import pack_name
from livelatent.model.vae import RawAudioVAE, VAEConfig
from cliutil import one_line_error
from synthetic_corpus import FAMILIES, SR, make_sound


@pytest.fixture(scope="module")
def sounds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sounds")
    rng = np.random.default_rng(0)
    for family in FAMILIES[:3]:
        for i in range(2):
            sf.write(folder / f"{family}{i}.wav", make_sound(family, rng, seconds=(0.3, 0.5)), SR)
    return folder


def _one_line(capsys, *args):
    return one_line_error(capsys, "som", *args)


@pytest.mark.parametrize("seed", ["-1", str(2 ** 32), "99999999999999999999"])
def test_a_seed_minisom_cannot_take_is_one_line(sounds, tmp_path, capsys, seed):
    assert "must be a whole number from 0 to 4294967295" in _one_line(
        capsys, sounds, "-o", tmp_path / "s", "--seed", seed)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("iterations", [str(10 ** 11), "0"])
def test_iterations_minisom_cannot_take_are_one_line_before_any_work(sounds, tmp_path, capsys,
                                                                     iterations):
    # 10**11 asked MiniSom for 745 GiB, after the features of every file were read
    assert f"iterations={iterations} must be a whole number from 1 to 10000000" in _one_line(
        capsys, sounds, "-o", tmp_path / "s", "--iterations", iterations)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("features", ["bag", "timbre"])
def test_a_model_given_for_thumbnails_that_use_none_is_refused(sounds, tmp_path, capsys, features):
    # --model /nonexist was ignored without a word
    assert "is for the model's thumbnails (--features model)" in _one_line(
        capsys, sounds, "-o", tmp_path / "s", "--features", features, "--model", tmp_path / "nothing")
    assert not (tmp_path / "s").exists()


def test_a_file_of_broken_huge_samples_is_skipped_with_its_reason(sounds, tmp_path, capsys):
    folder = tmp_path / "with-huge"
    shutil.copytree(sounds, folder)
    sf.write(folder / "huge.wav", np.full(SR // 2, 1e30, dtype=np.float32), SR, subtype="FLOAT")
    assert main(["som", str(folder), "-o", str(tmp_path / "s")]) == 0     # (mapped it silently)
    err = capsys.readouterr().err
    assert "huge.wav: has samples beyond +-1000 (full scale is 1)" in err, err
    meta = json.loads((tmp_path / "s" / "som.json").read_text())
    assert "huge.wav" not in json.dumps({k: v for k, v in meta.items() if k != "skipped"}), meta.keys()


def test_a_grid_too_large_to_allocate_is_refused(sounds, tmp_path, capsys):
    with pytest.raises(ParameterError, match=f"at most {MAX_SIDE}"):
        parse_grid("3000x3000")
    with pytest.raises(SystemExit):
        main(["som", str(sounds), "-o", str(tmp_path / "s"), "--grid", "3000x3000"])
    assert f"at most {MAX_SIDE}" in capsys.readouterr().err
    with pytest.raises(ParameterError, match=f"at most {MAX_SIDE}"):
        build_som(sounds, tmp_path / "s", grid=(2, 100), progress=False)
    assert parse_grid(f"{MAX_SIDE}x{MAX_SIDE}") == (MAX_SIDE, MAX_SIDE)


def test_an_output_that_is_a_file_is_one_line(sounds, tmp_path, capsys):
    file = tmp_path / "tone0.wav"
    file.write_bytes(b"x")
    assert "is a file; give a folder" in _one_line(capsys, sounds, "-o", file)
    assert "is a file; give a folder" in _one_line(capsys, sounds, "-o", file / "inside")
    assert file.read_bytes() == b"x"


def test_a_file_too_short_to_have_a_sample_at_the_models_rate_is_skipped(sounds, tmp_path, capsys):
    folder = tmp_path / "with-a-blip"
    shutil.copytree(sounds, folder)
    sf.write(folder / "blip.wav", np.array([0.5], dtype=np.float32), 192000)   # no frame at 44.1k
    assert main(["som", str(folder), "-o", str(tmp_path / "s"), "--features", "model"]) == 0
    err = capsys.readouterr().err
    assert "blip.wav: too short (1 frames at 192000 Hz are none at 44100 Hz)" in err, err


def test_a_map_of_model_thumbnails_finds_its_model_from_any_folder(sounds, tmp_path, monkeypatch):
    torch.manual_seed(0)
    config = VAEConfig(hidden=64, latent=16)
    save_checkpoint(tmp_path / "work" / "m_som" / "model.pt", RawAudioVAE(config), config)
    monkeypatch.chdir(tmp_path / "work")
    build_som(sounds, "s_mod", grid="2x2", features="model", model="m_som", progress=False)
    meta = json.loads((tmp_path / "work" / "s_mod" / "som.json").read_text())
    assert meta["model"] == str(tmp_path / "work" / "m_som")
    assert meta["model_relative"] == "../m_som"
    probe = sorted(sounds.iterdir())[0]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    found = load_som(tmp_path / "work" / "s_mod").near(probe)
    # map and model moved together: found relative to the map's folder
    shutil.move(tmp_path / "work", tmp_path / "moved")
    assert load_som(tmp_path / "moved" / "s_mod").near(probe) == found
    # a map from before the relative path was recorded: relative to the folder it was built from
    meta["model"] = "m_som"
    del meta["model_relative"]
    (tmp_path / "moved" / "s_mod" / "som.json").write_text(json.dumps(meta))
    assert load_som(tmp_path / "moved" / "s_mod").near(probe) == found


def test_the_pack_name_of_a_relative_folder_is_the_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert pack_name("m_som") == "m_som"
    (tmp_path / "m_som").mkdir()
    assert pack_name("m_som") == "m_som"
    assert pack_name("/old/place/default/model.safetensors") == "default"
    assert pack_name("model.pt") == tmp_path.name


@pytest.fixture(scope="module")
def built(sounds, tmp_path_factory):
    return build_som(sounds, tmp_path_factory.mktemp("maps") / "m", grid="2x2", progress=False).path


@pytest.mark.parametrize("edit, said", [
    ({"grid": [3, 3]}, "does not hold finite weights for the 3x3 nodes"),
    ({"version": "1"}, "is not a whole number"),
    ({"base_absolute": 5}, "not a folder or file name"),
    ({"base": "\u0000"}, "base is .*, not a folder or file name"),      # (resolve(): a ValueError)
    ({"model": 12}, "model is 12, not a folder or file name"),         # (near(): a TypeError)
    ({"model_relative": ["x"]}, "model_relative is .*, not a folder or file name"),
])
def test_a_hand_edited_som_json_is_a_clear_error(built, tmp_path, edit, said):
    refused_with_som_json_edited(built, tmp_path / "edited", lambda meta: meta.update(edit), said)


def refused_with_som_json_edited(built, folder, edit, said):
    """A copy of map ``built`` in ``folder``, its som.json changed by ``edit(meta)``, is refused
    by load_som with a SomError that says ``said``."""
    from livelatent.errors import SomError
    shutil.copytree(built, folder)
    meta = json.loads((folder / "som.json").read_text())
    edit(meta)
    (folder / "som.json").write_text(json.dumps(meta))
    with pytest.raises(SomError, match=said):
        load_som(folder)


def test_non_finite_node_weights_and_masom_times_beyond_any_file_are_refused(built, tmp_path):
    from livelatent.errors import SomError
    folder = tmp_path / "nan"
    shutil.copytree(built, folder)
    (folder / "weights.npy").write_bytes(b"")                   # (numpy's raw EOFError)
    with pytest.raises(SomError, match="weights.npy cannot be read .it is empty.; rebuild the map"):
        load_som(folder)
    shutil.copy(built / "weights.npy", folder / "weights.npy")
    weights = np.load(folder / "weights.npy")
    np.save(folder / "weights.npy", np.full_like(weights, np.nan))
    with pytest.raises(SomError, match="finite weights"):
        load_som(folder)
    masom_map = tmp_path / "masom"
    masom_map.mkdir()
    (masom_map / "clusters.json").write_text(json.dumps({"0": [0]}))
    for start in ("1e308", "1" + "0" * 400):
        (masom_map / "data-concatenated.json").write_text('{"0": [1, "a.wav", ' + start + ', 3000.0]}')
        with pytest.raises(SomError, match="start_ms"):
            load_som(masom_map)


@pytest.mark.parametrize("sound, options", [
    (np.full(4410, np.nan), {}), (np.zeros(4410), {}), ([], {}), (5, {}),
    (np.zeros((10, 3, 2)), {}), (np.sin(np.arange(4410.0)), {"sample_rate": -5}),
    (np.sin(np.arange(4410.0)), {"sample_rate": 0}),
])
def test_near_checks_its_sound_as_a_source_does(built, sound, options):
    from livelatent.errors import AudioError
    with pytest.raises((AudioError, ParameterError)):
        load_som(built).near(sound, **options)


def test_a_map_asked_into_the_folder_of_its_sounds_says_so(sounds, tmp_path, capsys):
    folder = tmp_path / "sounds"
    shutil.copytree(sounds, folder)             # (said "no files in ...", though it holds six)
    assert "is the folder of its sounds (or holds it)" in _one_line(capsys, folder, "-o", folder)


@pytest.mark.parametrize("name", ["som.json", "clusters.json", "data-concatenated.json"])
@pytest.mark.parametrize("text", ["[" * 100_000,                   # (a RecursionError from json)
                                  "[1" + "0" * 5000 + "]"])      # (Python's limit on digits: a ValueError)
def test_json_nested_too_deep_or_too_long_a_number_is_not_valid_json(built, tmp_path, name, text):
    from livelatent.errors import SomError
    folder = tmp_path / "deep"
    shutil.copytree(built, folder)
    (folder / name).write_text(text)
    with pytest.raises(SomError, match=f"{name} is not valid JSON"):
        load_som(folder)


@pytest.mark.parametrize("scaler, said", [
    ({"mean": 0.0}, "scaler mean is 0.0, not a list of finite numbers"),         # (len() of unsized)
    ({"mean": [float("nan")] * 35}, "scaler mean holds nan, not only finite numbers"),
    ({"std": [0.0] * 35}, "scaler std has a column of 0; every std must be above 0"),
    ({"multipliers": [1.0] * 3}, "have 35, 35 and 3 columns"),
    ({"mean": [0.0] * 3, "std": [1.0] * 3, "multipliers": [1.0] * 3}, "35 features per node, som.json describes 3"),
    ("abc", "scaler is 'abc', not the feature statistics"),
])
def test_feature_statistics_that_cannot_scale_the_weights_are_refused_at_load(built, tmp_path, scaler, said):
    # a NaN mean or a 0 std loaded, and near() then chose a cluster from NaN distances
    def edit(meta):
        meta["scaler"] = {**meta["scaler"], **scaler} if isinstance(scaler, dict) else scaler
    refused_with_som_json_edited(built, tmp_path / "scaler", edit, said)


def test_node_weights_saved_as_npz_are_refused_clearly(built, tmp_path):
    # np.load gave an NpzFile, and load_som an AttributeError ('no attribute ndim')
    from livelatent.errors import SomError
    folder = tmp_path / "npz"
    shutil.copytree(built, folder)
    weights = np.load(folder / "weights.npy")
    np.savez(folder / "weights.npz", w=weights)
    (folder / "weights.npz").replace(folder / "weights.npy")
    with pytest.raises(SomError, match=r"weights.npy is a zip archive \(.npz\?\), not a .npy array"):
        load_som(folder)
    meta = json.loads((folder / "som.json").read_text())
    (folder / "weights.npy").replace(folder / "weights.npz")
    (folder / "som.json").write_text(json.dumps({**meta, "weights_file": "weights.npz"}))
    with pytest.raises(SomError, match=r"weights.npz is a zip archive"):
        load_som(folder)


def test_a_weights_header_claiming_a_huge_array_is_refused_before_it_is_read(built, tmp_path):
    # numpy allocated what the header said first: a MemoryError for 7.28 TiB
    from livelatent.errors import SomError
    folder = tmp_path / "huge"
    shutil.copytree(built, folder)
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }"
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    (folder / "weights.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little")
                                         + header + b"\0" * 64)
    with pytest.raises(SomError, match=r"\(float64 \(1000000, 1000000\)\) has 250000000000 features "
                                       r"per node, som.json describes 35"):
        load_som(folder)
    (folder / "weights.npy").write_bytes(b"\x80\x04pickled")
    with pytest.raises(SomError, match=r"weights.npy is not a .npy array of node weights"):
        load_som(folder)


def test_a_kind_of_thumbnail_that_does_not_fit_the_weights_is_refused(built, tmp_path):
    # near() raised numpy's "operands could not be broadcast together"
    from livelatent.errors import SomError
    folder = tmp_path / "kind"
    shutil.copytree(built, folder)
    meta = json.loads((folder / "som.json").read_text())          # timbre: 35 features
    for kind, said in [("bag", "'bag' thumbnails have 37 features, the node weights 35"),
                       (["timbre"], r"features is \['timbre'\], not the name of a kind of thumbnail")]:
        (folder / "som.json").write_text(json.dumps({**meta, "features": kind}))
        with pytest.raises(SomError, match=said):
            load_som(folder)
    # a model's width is known once it is loaded: near() checks it
    torch.manual_seed(0)
    config = VAEConfig(hidden=64, latent=16)
    save_checkpoint(tmp_path / "m_som" / "model.pt", RawAudioVAE(config), config)
    (folder / "som.json").write_text(json.dumps({**meta, "features": "model",
                                                 "model": str(tmp_path / "m_som")}))
    som = load_som(folder)
    with pytest.raises(SomError, match="has 35 features per node, but its 'model' thumbnails have 33"):
        som.near(sorted(p for p in som.base.iterdir() if p.suffix == ".wav")[0])


@pytest.mark.parametrize("clusters", ["{}", '{"0": [], "3": []}'])
def test_near_on_a_map_whose_clusters_are_all_empty_says_so(built, tmp_path, clusters):
    # it answered node 0, an empty cluster
    from livelatent.errors import SomError
    folder = tmp_path / "empty"
    shutil.copytree(built, folder)
    (folder / "clusters.json").write_text(clusters)
    som = load_som(folder)
    with pytest.raises(SomError, match="near.. has no cluster to choose: every cluster of 'empty' is empty"):
        som.near(np.sin(np.arange(22050.0) / 7), sample_rate=22050)


def test_near_whose_distances_overflow_picks_a_sounding_node_or_says_why(built, tmp_path):
    # every distance overflowed to inf, and argmin answered node 0, an empty cluster
    from livelatent.errors import SomError
    folder = tmp_path / "tiny_std"
    shutil.copytree(built, folder)
    meta = json.loads((folder / "som.json").read_text())
    meta["scaler"]["std"] = [1e-200] * len(meta["scaler"]["std"])
    (folder / "som.json").write_text(json.dumps(meta))
    clusters = json.loads((folder / "clusters.json").read_text())
    clusters.pop("0", None)
    (folder / "clusters.json").write_text(json.dumps(clusters))
    sound = np.sin(np.arange(22050.0) / 7)
    node = load_som(folder).near(sound, sample_rate=22050)
    assert node != 0 and str(node) in clusters
    meta["scaler"]["std"] = [1e-320] * len(meta["scaler"]["std"])        # (the point itself: inf)
    (folder / "som.json").write_text(json.dumps(meta))
    with pytest.raises(SomError, match=r"near\(\): the sound's thumbnail is beyond any number on map"):
        load_som(folder).near(sound, sample_rate=22050)


def test_a_som_json_that_is_a_folder_is_named(built, tmp_path):
    # an IsADirectoryError traceback
    from livelatent.errors import SomError
    folder = tmp_path / "folder"
    shutil.copytree(built, folder)
    (folder / "som.json").unlink()
    (folder / "som.json").mkdir()
    with pytest.raises(SomError, match=r"som.json cannot be read \(Is a directory\)"):
        load_som(folder)


@pytest.mark.parametrize("name, text, said", [
    ("clusters.json", '{"0": [0], " 0": [1]}', "node keys '0' and ' 0' are both node 0"),
    ("clusters.json", '{"0": [0], "0": [1]}', "key '0' appears more than once"),
    ("data-concatenated.json", '{"0": [1, "a.wav", 0, 5], "0 ": [1, "b.wav", 0, 5]}',
     "file index keys '0' and '0 ' are both file index 0"),
])
def test_two_keys_for_one_node_or_file_are_refused(built, tmp_path, name, text, said):
    # json and the reader kept the last of them: a file or a cluster went without a word
    from livelatent.errors import SomError
    folder = tmp_path / "twice"
    shutil.copytree(built, folder)
    (folder / name).write_text(text)
    with pytest.raises(SomError, match=said):
        load_som(folder)


@pytest.mark.parametrize("grid", [[True, 4], [2, 2.5], [2.0, 2], ["2", 2]])
def test_a_grid_of_anything_but_whole_numbers_is_refused(built, tmp_path, grid):
    # [true, 4] loaded as grid (True, 4)
    from livelatent.errors import SomError
    folder = tmp_path / "grid"
    shutil.copytree(built, folder)
    meta = json.loads((folder / "som.json").read_text())
    (folder / "som.json").write_text(json.dumps({**meta, "grid": grid}))
    np.save(folder / "weights.npy", np.load(folder / "weights.npy").reshape(1, 4, -1))
    with pytest.raises(SomError, match=r"som.json: grid .* is not \[rows, columns\], two whole numbers above 0"):
        load_som(folder)


def test_the_maps_folder_is_checked_before_the_work_and_another_map_is_replaced_aloud(
        sounds, tmp_path, capfd):
    import warnings
    from livelatent.errors import SomError
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "important.txt").write_text("mine")
    with pytest.raises(SomError, match=r"holds other files \(important.txt\): give the map a folder"):
        build_som(sounds, notes, grid="2x2", progress=False)    # (it wrote its files among them)
    assert sorted(p.name for p in notes.iterdir()) == ["important.txt"]
    with pytest.raises(SomError, match="-o /proc/livelatent-map: cannot make the folder"):
        build_som(sounds, "/proc/livelatent-map", grid="2x2", progress=False)  # (after the work)
    first = build_som(sounds, tmp_path / "m", grid="2x2", progress=False)
    capfd.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # minisom's "PCA initialization inappropriate"
        again = build_som(sounds, tmp_path / "m", grid="1x4", progress=False)
    assert f"replacing the map in {tmp_path / 'm'}" in capfd.readouterr().err
    assert first.path == again.path and again.grid == (1, 4)


def test_a_skipped_list_or_an_entry_path_no_file_can_have_is_a_clear_error(built, tmp_path):
    # som.skipped was a TypeError on a list of numbers; a path of 5,000 characters an OSError
    # from the file system when the map looked for its sounds
    from livelatent.errors import SomError
    folder = tmp_path / "odd"
    shutil.copytree(built, folder)
    meta = json.loads((folder / "som.json").read_text())
    meta["skipped"] = [1, 2, 3]
    (folder / "som.json").write_text(json.dumps(meta))
    with pytest.raises(SomError, match=r"skipped is \[1, 2, 3\], not a list of \[file, reason\] pairs"):
        load_som(folder).skipped
    data = json.loads((folder / "data-concatenated.json").read_text())
    first = sorted(data, key=int)[0]
    for name in ("x" * 5000 + ".wav", "sub/" + "x" * 300 + ".wav", "a\0.wav"):   # (a part of
        data[first][1] = name                                              # 300: ENAMETOOLONG)
        (folder / "data-concatenated.json").write_text(json.dumps(data))
        with pytest.raises(SomError, match=f"entry '{first}' names '.*, not a file name"):
            load_som(folder)
    shutil.copy(built / "data-concatenated.json", folder / "data-concatenated.json")
    meta["skipped"] = []
    meta["weights_file"] = "w" * 300 + ".npy"                   # (exists(): an OSError)
    (folder / "som.json").write_text(json.dumps(meta))
    with pytest.raises(SomError, match="cannot be read"):
        load_som(folder)


def test_node_weights_in_a_pipe_are_refused_not_waited_on(built, tmp_path):
    import os

    from livelatent.errors import SomError
    folder = tmp_path / "piped"
    shutil.copytree(built, folder)
    (folder / "weights.npy").unlink()
    os.mkfifo(folder / "weights.npy")
    with pytest.raises(SomError, match=r"weights.npy is not a file of node weights \(a folder, a pipe"):
        load_som(folder)
