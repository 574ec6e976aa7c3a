"""The map of the latent space: projection, the picture and what it says it drew, the command."""

import struct
import sys

import numpy as np
import pytest
import soundfile as sf

from livelatent.cli import main as cli_main
from livelatent.corpus.som import build_som
from livelatent.errors import MissingDependency, ParameterError
from livelatent.model.codec import load_model
from livelatent import maps
from livelatent.paths.cartography import Projection, draw_map, fit_projection, parse_map_grid
from livelatent.paths.corpus import corpus
from livelatent.config import DEFAULT_MODEL_DIR
from synthetic_corpus import SR, make_sound

PACK_SOURCES = DEFAULT_MODEL_DIR / "sources"
LATENT = 16


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVELATENT_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def codec():
    return load_model()


def blobs(latent=LATENT, seed=0):
    """Three groups of points around different centres, as draw_map takes them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 4.0, (3, latent))
    return [(name, (c + rng.normal(0.0, 1.0, (n, latent))).astype(np.float32))
            for name, c, n in zip(("flute", "kick", "choir"), centres, (50, 70, 40))]


def png_size(path):
    """(width, height) of a PNG, read with Pillow when there is one, else from its header."""
    try:
        from PIL import Image
    except ImportError:
        data = path.read_bytes()[:24]
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
        return struct.unpack(">II", data[16:24])
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


# -- projection -------------------------------------------------------------------------------------
def test_pca_round_trips_in_its_plane_and_is_deterministic():
    rng = np.random.default_rng(1)
    plane = rng.normal(size=(2, LATENT))
    points = rng.normal(size=(300, 2)) * [5.0, 2.0] @ plane + rng.normal(0, 0.05, (300, LATENT)) + 3.0
    proj = fit_projection(points, "pca")
    assert proj.method == "pca" and proj.transform(points).shape == (300, 2)
    xy = rng.normal(size=(20, 2))
    assert np.allclose(proj.transform(proj.inverse(xy)), xy, atol=1e-4)
    on_plane = proj.inverse(proj.transform(points[:10]))            # onto the plane, then back
    assert np.allclose(proj.inverse(proj.transform(on_plane)), on_plane, atol=1e-4)
    assert proj.explained[0] > proj.explained[1] > 0 and proj.explained.sum() > 0.95
    again = fit_projection(points[::-1].copy(), "pca")               # same points, other order
    assert np.allclose(again.components, proj.components, atol=1e-8)
    assert np.array_equal(fit_projection(points, "pca").embedding, proj.embedding)


def test_projection_errors_are_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)                   # umap-learn not installed
    points = np.random.default_rng(0).normal(size=(40, 4))
    with pytest.raises(MissingDependency, match="umap-learn"):
        fit_projection(points, "umap")
    assert fit_projection(points, "auto").method == "pca"            # auto falls back to PCA
    with pytest.raises(ParameterError, match="method"):
        fit_projection(points, "tsne")
    with pytest.raises(ParameterError, match="at least 2"):
        fit_projection(points[:1], "pca")
    with pytest.raises(ParameterError, match="NaN"):
        fit_projection(np.full((5, 4), np.nan), "pca")
    with pytest.raises(ParameterError, match="inverse"):
        Projection("umap", 4, points[:, :2]).inverse([[0.0, 0.0]])


@pytest.mark.parametrize("grid", ["0x3", "3", "axb", (40, 2), "3x3x3", None])
def test_a_bad_grid_is_refused(grid):
    with pytest.raises(ParameterError, match="grid"):
        parse_map_grid(grid)


def test_a_good_grid_is_read():
    assert parse_map_grid("8x8") == (8, 8)
    assert parse_map_grid((2, 5)) == (2, 5)


# -- the picture ------------------------------------------------------------------------------------
def test_the_map_is_a_png_with_every_group_labelled(tmp_path):
    groups = blobs()
    colours = np.geomspace(100.0, 8000.0, sum(len(mu) for _, mu in groups))
    colours[::7] = np.nan                                            # frames without a value
    info = draw_map(tmp_path / "maps" / "map.png", groups=groups, colours=colours, title="three",
                    method="pca")
    assert info.path.is_file()
    width, height = png_size(info.path)
    assert width > 400 and height > 300
    assert list(info.labels) == [name for name, _ in groups]
    for name, mu in groups:                                          # a label sits at its median
        assert np.allclose(info.labels[name], np.median(info.projection.transform(mu), axis=0))
        assert np.allclose(info.points[name], info.projection.transform(mu))
    assert info.grid_cells == 0 and info.paths == {}


def test_a_voice_path_is_drawn_where_its_frames_project(tmp_path):
    groups = blobs()
    kick = groups[1][1]
    played = kick[5:60:3]                                            # the voice played kick's frames
    wander = np.linspace(groups[0][1][0], groups[2][1][0], 12)
    info = draw_map(tmp_path / "map.png", groups=groups, colour_label="loudness (dB)",
                    colours=np.linspace(-60, 0, 160), voice_paths=[("v1", played), ("v2", wander)],
                    method="pca")
    assert list(info.paths) == ["v1", "v2"]
    assert np.allclose(info.paths["v1"], info.points["kick"][5:60:3])
    assert np.allclose(info.paths["v2"][[0, -1]],
                       [info.points["flute"][0], info.points["choir"][0]], atol=1e-5)
    assert png_size(info.path)[0] > 400


def test_the_grid_adds_a_decoded_cell_per_place(tmp_path, codec):
    rng = np.random.default_rng(3)
    groups = [(f"g{i}", rng.normal(i, 1.0, (30, codec.latent_dim)).astype(np.float32)) for i in range(2)]
    info = draw_map(tmp_path / "grid.png", groups=groups, grid=(2, 3), codec=codec, method="pca")
    assert info.grid_cells == 6 and png_size(info.path)[0] > 400
    fig = draw_map(None, groups=groups, grid="2x2", codec=codec, method="pca")
    assert type(fig).__name__ == "Figure" and fig.map_info.grid_cells == 4
    assert list(fig.map_info.labels) == ["g0", "g1"] and fig.map_info.path is None


def test_umap_draws_a_map_when_it_is_installed(tmp_path):
    pytest.importorskip("umap")
    info = draw_map(tmp_path / "umap.png", groups=blobs(), method="umap")
    assert info.projection.method == "umap" and info.path.is_file()


def test_bad_maps_are_refused_in_one_line(tmp_path, codec):
    groups = blobs()
    cases = [
        (dict(groups=[]), "at least one group"),
        (dict(groups=[("a", np.zeros((0, LATENT)))]), "at least 1 point"),
        (dict(groups=[("a", np.ones((3, LATENT))), ("a", np.ones((3, LATENT)))]), "twice"),
        (dict(groups=[("a", np.ones((3, LATENT))), ("b", np.ones((3, 5)))]), "shape"),
        (dict(groups=groups, colours=np.ones(3)), "colours"),
        (dict(groups=groups, voice_paths=[("v", np.ones((4, 3)))]), "shape"),
        (dict(groups=groups, grid=(2, 2)), "codec"),
        (dict(groups=groups, grid="9y9", codec=codec), "grid"),
        (dict(groups=groups, grid=(2, 2), codec=codec), "latent space"),
        (dict(groups=groups, method="tsne"), "method"),
        (dict(groups="flute"), "pairs"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ParameterError, match=message):
            draw_map(tmp_path / "bad.png", **kwargs)
    with pytest.raises(ParameterError, match="png"):
        draw_map(tmp_path / "map.jpg", groups=groups)
    assert not list(tmp_path.glob("*.png"))


# -- the command --------------------------------------------------------------------------------------
def run_map(capsys, *args):
    code = cli_main(["map", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_maps_pack_sources_with_a_grid(tmp_path, capsys):
    files = [PACK_SOURCES / f"{name}.flac" for name in ("flute", "kick", "choir")]
    code, out, err = run_map(capsys, *files, "-o", tmp_path / "map.png", "--grid", "3x3",
                                 "--method", "pca")
    assert code == 0, err
    assert out.startswith(f"wrote {tmp_path / 'map.png'}: 3 groups")
    assert "9 decoded cells" in out and out.count("\n") == 1
    assert png_size(tmp_path / "map.png")[0] > 400


def test_the_command_maps_a_som_and_a_folder(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "sounds"
    for family in ("sine", "noise", "pluck"):
        (data / family).mkdir(parents=True)
        for i in range(3):
            sf.write(data / family / f"{family}{i}.wav", make_sound(family, rng, seconds=(0.3, 0.6)), SR)
    som = build_som(data, tmp_path / "som", grid="2x2", iterations=300, progress=False)
    code, out, err = run_map(capsys, som.path, "-o", tmp_path / "som.png", "--grid", "3x3",
                             "--hop", "1024", "--colour", "loudness", "--method", "pca")
    assert code == 0, err
    assert f": {len(som.clusters)} groups" in out and "9 decoded cells" in out
    assert png_size(tmp_path / "som.png")[0] > 400
    code, out, err = run_map(capsys, data / "sine", "-o", tmp_path / "sine.png", "--colour", "group",
                                 "--method", "pca")
    assert code == 0, err
    assert ": 3 groups" in out                                       # a folder: a group per file
    assert len(corpus(data / "sine").sources) == 3


def test_a_som_whose_sounds_moved_is_mapped_with_base(tmp_path, capsys):
    # the error said to give load_som(..., base=FOLDER), which the command line could not
    import shutil
    rng = np.random.default_rng(1)
    data = tmp_path / "sounds"
    data.mkdir()
    for i in range(4):
        sf.write(data / f"s{i}.wav", make_sound(("sine", "noise")[i % 2], rng, seconds=(0.3, 0.5)), SR)
    som = build_som(data, tmp_path / "som", grid="2x2", iterations=200, progress=False)
    shutil.move(data, tmp_path / "moved")
    code, _, err = run_map(capsys, som.path, "-o", tmp_path / "m.png", "--method", "pca")
    assert code == 2 and "Traceback" not in err and "--base FOLDER" in err
    code, out, err = run_map(capsys, som.path, "-o", tmp_path / "m.png", "--method", "pca",
                             "--base", tmp_path / "moved")
    assert code == 0, err
    assert f": {len(som.clusters)} groups" in out
    code, _, err = run_map(capsys, tmp_path / "moved", "-o", tmp_path / "n.png", "--base", data)
    assert code == 2 and "none of" in err and "is a SOM folder" in err      # (not ignored)


def test_a_folder_of_many_files_is_a_group_per_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(maps, "MANY_FILES", 4)
    rng = np.random.default_rng(1)
    for folder, count in (("a", 3), ("b/deep", 2), (".", 1)):
        (tmp_path / "lib" / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            sf.write(tmp_path / "lib" / folder / f"s{i}.wav", make_sound("buzz", rng), SR)
    groups = maps.input_groups([tmp_path / "lib", tmp_path / "lib" / "a" / "s0.wav"], SR)
    assert [(label, len(sources)) for label, sources in groups] == [
        ("lib/a", 3), ("lib/b/deep", 2), ("lib", 1), ("s0", 1)]
    few = maps.input_groups([tmp_path / "lib" / "a", tmp_path / "lib" / "b"], SR)
    assert [label for label, _ in few] == ["s0", "s1", "s2", "s0 (2)", "s1 (2)"]


def test_the_command_says_what_is_wrong_in_one_line(tmp_path, capsys, monkeypatch):
    code, out, err = run_map(capsys, tmp_path / "nothing.wav", "-o", tmp_path / "m.png")
    assert code == 2 and err.startswith("livelatent: error:") and err.count("\n") == 1
    (tmp_path / "empty").mkdir()
    code, out, err = run_map(capsys, tmp_path / "empty", "-o", tmp_path / "m.png")
    assert code == 2 and "no audio files" in err and err.count("\n") == 1
    monkeypatch.setitem(sys.modules, "umap", None)
    code, out, err = run_map(capsys, PACK_SOURCES / "kick.flac", "-o", tmp_path / "m.png",
                             "--method", "umap")
    assert code == 2 and "umap-learn" in err and err.count("\n") == 1
    for bad in (["--grid", "0x4"], ["--grid", "big"], ["--method", "tsne"]):
        with pytest.raises(SystemExit) as exit_:
            cli_main(["map", str(PACK_SOURCES / "kick.flac"), "-o", str(tmp_path / "m.png"), *bad])
        assert exit_.value.code == 2
        assert "livelatent map: error:" in capsys.readouterr().err
    assert not (tmp_path / "m.png").exists()


def test_a_map_of_too_many_or_too_few_frames_is_refused_before_the_encoding(tmp_path, capsys):
    # --hop 1 took 3.5 GB for 8 seconds of sound; one short file was "points needs at least 2"
    tone = lambda seconds: (0.3 * np.sin(np.arange(int(seconds * SR)) / 7)).astype(np.float32)
    sf.write(tmp_path / "long.wav", tone(3.0), SR)
    sf.write(tmp_path / "tick.wav", tone(0.01), SR)
    assert cli_main(["map", str(tmp_path / "long.wav"), "-o", str(tmp_path / "m.png"), "--hop", "1"]) == 2
    assert "--hop 1 gives about 131277 latent frames of these sounds, more than a map draws " \
           "(100000): give --hop 2 or more" in capsys.readouterr().err
    assert cli_main(["map", str(tmp_path / "tick.wav"), "-o", str(tmp_path / "m.png")]) == 2
    assert "give 1 latent frame at hop 512, and a map needs two" in capsys.readouterr().err
    assert cli_main(["map", str(tmp_path / "long.wav"), "-o", str(tmp_path / "m.png"), "--hop", "0"]) == 2
    assert "--hop 0 must be a whole number of samples from 1" in capsys.readouterr().err  # (was a
    assert not (tmp_path / "m.png").exists()                                   # ZeroDivisionError)
