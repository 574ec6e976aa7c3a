"""Self-organizing maps of a sample corpus, and their clusters as sources.

The corpus is generated here (synthetic_corpus.py): five families of synthetic sounds, several
of each, written to WAV files. A good map puts each family in its own clusters.
"""

import collections
import json
import shutil
import struct

import numpy as np
import pytest
import soundfile as sf

from livelatent.cli import main as cli_main
from livelatent.corpus.feature_sets import DEFAULT_FEATURES, feature_set
from livelatent.corpus.som import build_som, default_grid, load_som
from livelatent.errors import AudioError, SomError
from synthetic_corpus import FAMILIES, SR, make_sound

PER_FAMILY = 8


def write_corpus(folder, *, per_family=PER_FAMILY, seed=0):
    """Write the labelled corpus; returns {resolved path: family}."""
    rng = np.random.default_rng(seed)
    labels = {}
    for family in FAMILIES:
        (folder / family).mkdir(parents=True, exist_ok=True)
        for i in range(per_family):
            path = folder / family / f"{family}{i:02d}.wav"
            sf.write(path, make_sound(family, rng), SR)
            labels[path.resolve()] = family
    return labels


def purity(som, labels):
    """Share of files whose cluster's majority family is their own."""
    agree = 0
    for cluster in som.clusters:
        families = collections.Counter(labels[p.resolve()] for p in som.files_in(cluster.index))
        agree += families.most_common(1)[0][1]
    return agree / som.num_files


def file_seconds(paths):
    return sum(sf.info(str(p)).frames for p in paths) / SR


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return folder, write_corpus(folder)


@pytest.fixture(scope="module")
def som(corpus, tmp_path_factory):
    folder, _ = corpus
    return build_som(folder, tmp_path_factory.mktemp("maps") / "synth", progress=False)


# -- the map sorts the corpus ---------------------------------------------------------------------
def test_clusters_group_the_families(som, corpus):
    _, labels = corpus
    assert som.num_files == len(FAMILIES) * PER_FAMILY
    assert som.grid == default_grid(som.num_files) == (6, 6)
    assert purity(som, labels) >= 0.8


def test_a_coarse_map_still_groups_the_families(corpus, tmp_path):
    folder, labels = corpus
    coarse = build_som(folder, tmp_path / "coarse", grid="4x4", progress=False)
    assert coarse.grid == (4, 4)
    assert len(coarse.clusters) < coarse.num_files / 2      # clusters hold several files each
    assert purity(coarse, labels) >= 0.8


def test_near_puts_new_sounds_with_their_family(som, corpus, tmp_path):
    _, labels = corpus
    rng = np.random.default_rng(7)
    placed = []
    for family in FAMILIES:
        for i in range(4):
            path = tmp_path / f"new_{family}{i}.wav"
            sf.write(path, make_sound(family, rng), SR)
            k = som.near(path)
            families = collections.Counter(labels[p.resolve()] for p in som.files_in(k))
            placed.append(families.most_common(1)[0][0] == family)
    assert np.mean(placed) >= 0.8


def test_near_takes_a_source_or_an_array_and_finds_a_files_own_cluster(som):
    for cluster in som.clusters[:4]:
        path = som.files_in(cluster.index)[0]
        audio = sf.read(str(path), dtype="float32")[0]
        assert som.near(path) == cluster.index
        assert som.near(audio, sample_rate=SR) == cluster.index
    k = som.clusters[0].index
    assert 0 <= som.near(som[k]) < len(som) and som.files_in(som.near(som[k]))


def test_a_cluster_is_its_files_concatenated(som):
    cluster = max(som.clusters, key=lambda c: c.size)
    files = som.files_in(cluster.index)
    src = som[cluster.index]
    assert src.sample_rate == SR
    assert src.num_samples == sum(sf.info(str(p)).frames for p in files)
    assert src.duration_s == pytest.approx(cluster.duration_s, abs=1e-3)
    first = sf.read(str(files[0]), dtype="float32")[0]
    assert np.array_equal(src.audio[:first.size], first)
    assert src.origin == {"kind": "som", "map": str(som.path), "cluster": cluster.index,
                          "base": str(som.base)}
    assert str(cluster.index) in src.name


def test_a_set_can_rebuild_a_cluster_from_its_origin(som):
    k = som.clusters[0].index
    origin = som[k].origin
    rebuilt = load_som(origin["map"], base=origin["base"])[origin["cluster"]]
    assert np.array_equal(rebuilt.audio, som[k].audio)


def test_clusters_list_sizes_and_the_map_describes_itself(som):
    clusters = som.clusters
    assert sum(c.size for c in clusters) == som.num_files
    assert all(c.size > 0 and c.duration_s > 0 for c in clusters)
    assert [c.index for c in clusters] == sorted(c.index for c in clusters)
    assert all(c.index == c.row * som.grid[1] + c.column for c in clusters)
    assert "files" in repr(clusters) and str(clusters[0].index) in repr(clusters)
    assert len(som) == 36
    assert "6x6" in repr(som) and "40 files" in repr(som)
    with pytest.raises(TypeError):
        iter(som)


def test_neighbors_are_the_adjacent_nodes_on_the_grid(som):
    rows, cols = som.grid
    assert som.neighbors(0, include_empty=True) == [1, cols]
    assert som.neighbors(cols + 1, include_empty=True) == [1, cols, cols + 2, 2 * cols + 1]
    assert som.neighbors(rows * cols - 1, include_empty=True) == [rows * cols - cols - 1, rows * cols - 2]
    for k in range(len(som)):
        for j in som.neighbors(k):
            assert som[j].duration_s > 0                      # the default lists usable clusters


# -- what the folder holds ------------------------------------------------------------------------
def test_the_folder_holds_metadata_weights_picture_and_masom_files(som):
    names = {p.name for p in som.path.iterdir()}
    assert {"som.json", "weights.npy", "umatrix.png", "clusters.json", "data-concatenated.json"} <= names
    meta = json.loads((som.path / "som.json").read_text())
    columns = len(feature_set(DEFAULT_FEATURES).names)
    assert meta["grid"] == [6, 6] and meta["seed"] == 0 and meta["features"] == DEFAULT_FEATURES
    assert len(meta["feature_names"]) == columns
    assert np.load(som.path / "weights.npy", allow_pickle=False).shape == (6, 6, columns)
    png = (som.path / "umatrix.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 300 and height >= 300

    clusters = json.loads((som.path / "clusters.json").read_text())
    assert all(key.isdigit() and members for key, members in clusters.items())
    assert sorted(i for members in clusters.values() for i in members) == list(range(40))
    data = json.loads((som.path / "data-concatenated.json").read_text())
    assert sorted(data, key=int) == [str(i) for i in range(40)]
    for entry in data.values():
        flag, path, start_ms, duration_ms, *features = entry
        assert flag == 1 and start_ms == 0 and len(features) == columns - 1
        assert not path.startswith("/") and (som.base / path).is_file()
        assert duration_ms == pytest.approx(sf.info(str(som.base / path)).duration * 1000, abs=0.01)


def test_build_save_load_round_trip_gives_the_same_clusters(som):
    again = load_som(som.path)
    assert again.clusters == som.clusters
    assert again.grid == som.grid and again.base == som.base
    for c in som.clusters:
        assert again.files_in(c.index) == som.files_in(c.index)
    k = som.clusters[0].index
    assert np.array_equal(again[k].audio, som[k].audio)
    new = som.files_in(k)[0]
    assert again.near(new) == som.near(new)


def test_the_same_input_and_seed_give_the_same_map(corpus, som, tmp_path):
    folder, _ = corpus
    again = build_som(folder, tmp_path / "again", seed=0, progress=False)
    assert (again.path / "clusters.json").read_text() == (som.path / "clusters.json").read_text()
    assert np.array_equal(np.load(again.path / "weights.npy"), np.load(som.path / "weights.npy"))


def test_the_map_still_finds_its_audio_when_corpus_and_map_move_together(corpus, tmp_path):
    folder, _ = corpus
    project = tmp_path / "project"
    shutil.copytree(folder, project / "corpus")
    build_som(project / "corpus", project / "som", progress=False)
    moved = tmp_path / "moved"
    shutil.move(str(project), str(moved))
    som = load_som(moved / "som")
    assert som.base == (moved / "corpus").resolve()
    assert som[som.clusters[0].index].duration_s > 0


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A small RawAudioVAE with seeded random weights: enough to carry sound through a voice."""
    import torch

    from livelatent.model.checkpoint import save_checkpoint
    from livelatent.model.vae import RawAudioVAE, VAEConfig

    torch.manual_seed(0)
    config = VAEConfig(hidden=64, latent=16)
    return save_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt", RawAudioVAE(config), config)


def test_round_trip_build_save_load_then_play_clusters_through_a_voice(som, tiny_model, tmp_path,
                                                                       monkeypatch):
    from livelatent import Engine, sine, voice

    monkeypatch.setenv("LIVELATENT_CACHE", str(tmp_path / "cache"))
    loaded = load_som(som.path)
    longest = sorted(loaded.clusters, key=lambda c: -c.duration_s)
    a, b = longest[0].index, longest[1].index
    with Engine(tiny_model, seed=0) as eng:
        voice(loaded[a], loaded[b], strategy="meso", curve=sine(8))
        audio = eng.render_array(seconds=2.0)
    assert audio.shape == (2 * SR, 2) and audio.dtype == np.float32
    assert np.isfinite(audio).all() and np.sqrt(np.mean(audio ** 2)) > 1e-3   # it sounds

    with Engine(tiny_model, seed=0) as eng:                     # once through, no loop
        voice(loaded[a], loaded[b], strategy="meso", curve=sine(8), loop=False)
        once = eng.render_array()
    shorter = min(longest[0].duration_s, longest[1].duration_s)
    assert once.shape[0] / SR == pytest.approx(shorter, abs=1024 / SR)   # the shorter cluster's length


# -- maps made by MASOM ---------------------------------------------------------------------------
def write_masom_map(root):
    """A map as in the RawAudioVAE example: root/audio/*.wav and root/som/*.json, written by hand."""
    (root / "audio").mkdir(parents=True)
    (root / "som").mkdir()
    rng = np.random.default_rng(3)
    lengths = [0.5, 0.75, 1.0, 0.25, 0.6]
    names = []
    for i, seconds in enumerate(lengths):
        name = f"47244{i}__erokia__msfxp-sound-{i}.wav"
        sf.write(root / "audio" / name, np.resize(make_sound(FAMILIES[i], rng), int(seconds * SR)), SR)
        names.append(name)
    data = {str(i): [1, name, 0, lengths[i] * 1000.0, 0.5, -0.1, 3.2] for i, name in enumerate(names)}
    clusters = {"0": [1, 3], "2": [0], "7": [2, 4]}            # nodes 1, 3... are empty: not listed
    (root / "som" / "data-concatenated.json").write_text(json.dumps(data, indent="\t"))
    (root / "som" / "clusters.json").write_text(json.dumps(clusters, indent="\t"))
    return root / "som", lengths


def test_a_hand_written_masom_map_loads_and_a_cluster_lasts_as_long_as_its_files(tmp_path):
    somdir, lengths = write_masom_map(tmp_path / "erokia")
    som = load_som(somdir)
    assert som.base == (tmp_path / "erokia" / "audio").resolve()    # found beside the map
    assert som.grid == (3, 3)                                        # smallest square with node 7
    assert [(c.index, c.size) for c in som.clusters] == [(0, 2), (2, 1), (7, 2)]
    assert som[0].duration_s == pytest.approx(lengths[1] + lengths[3])
    assert som[7].duration_s == pytest.approx(lengths[2] + lengths[4])
    assert som[7].num_samples == sum(sf.info(str(p)).frames for p in som.files_in(7))
    assert som.neighbors(1) == [0, 2]
    explicit = load_som(somdir, base=tmp_path / "erokia" / "audio")
    assert explicit[2].duration_s == pytest.approx(lengths[0])


def test_a_masom_entry_can_name_a_segment_of_a_file(tmp_path):
    somdir, lengths = write_masom_map(tmp_path / "erokia")
    data = json.loads((somdir / "data-concatenated.json").read_text())
    data["0"][2:4] = [100.0, 200.0]                                  # from 0.1 s, for 0.2 s
    (somdir / "data-concatenated.json").write_text(json.dumps(data))
    som = load_som(somdir)
    whole = sf.read(str(som.files_in(2)[0]), dtype="float32")[0]
    assert som[2].num_samples == round(0.2 * SR)
    assert np.array_equal(som[2].audio, whole[round(0.1 * SR):round(0.3 * SR)])


def test_files_at_another_rate_are_resampled_with_one_warning_per_cluster(tmp_path):
    somdir, lengths = write_masom_map(tmp_path / "erokia")
    som = load_som(somdir)
    for path in som.files_in(7):                                     # rewrite both at 22050 Hz
        audio = sf.read(str(path), dtype="float32")[0]
        sf.write(path, audio[::2], SR // 2)
    with pytest.warns(UserWarning, match="cluster 7: 2 of 2 files .* resampled") as caught:
        src = som[som.clusters[2]]                                   # a Cluster works as an index
    assert len([w for w in caught if "resampled" in str(w.message)]) == 1
    assert src.sample_rate == SR
    assert src.duration_s == pytest.approx(lengths[2] + lengths[4], abs=1e-3)


def test_near_on_a_masom_map_says_what_it_needs(tmp_path):
    somdir, _ = write_masom_map(tmp_path / "erokia")
    som = load_som(somdir)
    with pytest.raises(SomError, match=r"near\(\) needs .*livelatent som"):
        som.near(som.files_in(0)[0])


# -- bad input ------------------------------------------------------------------------------------
def test_unusable_files_are_skipped_and_listed_and_the_build_goes_on(corpus, tmp_path, capsys):
    folder, _ = corpus
    mixed = tmp_path / "mixed"
    shutil.copytree(folder / "sine", mixed / "sine")
    shutil.copytree(folder / "noise", mixed / "noise")
    (mixed / "notes.txt").write_text("kick at 0:12")
    sf.write(mixed / "empty.wav", np.zeros(0, np.float32), SR)
    sf.write(mixed / "silent.wav", np.zeros(SR // 2, np.float32), SR)
    (mixed / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    som = build_som(mixed, tmp_path / "map", progress=False)
    assert som.num_files == 2 * PER_FAMILY
    err = capsys.readouterr().err
    assert "skipped 4 of 20 files" in err
    for name, reason in [("notes.txt", "not an audio file"), ("empty.wav", "empty"),
                         ("silent.wav", "silent"), ("broken.wav", "unreadable")]:
        assert any(name in line and reason in line for line in err.splitlines()), (name, err)
    assert {p.split("/")[-1] for p, _ in som.skipped} == {"notes.txt", "empty.wav", "silent.wav",
                                                          "broken.wav"}


def test_a_corpus_with_no_usable_audio_is_an_error(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "readme.txt").write_text("nothing here")
    with pytest.raises(SomError, match="none of the 1 files"):
        build_som(tmp_path / "c", tmp_path / "map", progress=False)
    with pytest.raises(AudioError, match="no such file or folder"):
        build_som(tmp_path / "nowhere", tmp_path / "map", progress=False)


def test_an_empty_cluster_says_so_and_offers_its_neighbours(tmp_path):
    somdir, _ = write_masom_map(tmp_path / "erokia")
    som = load_som(somdir)
    with pytest.raises(SomError, match=r"cluster 1 of 'som' is empty.*\[0, 2\]"):
        som[1]


def test_a_cluster_off_the_grid_names_the_grid(som):
    for k in (36, 100, -1):
        with pytest.raises(SomError, match=rf"cluster {k} is off the grid: .* is 6x6, clusters 0..35"):
            som[k]
    with pytest.raises(SomError, match="must be an integer"):
        som["18"]
    with pytest.raises(SomError, match="off the grid"):
        som.neighbors(36)


def test_missing_audio_names_the_files_and_how_to_point_at_them(tmp_path):
    somdir, _ = write_masom_map(tmp_path / "erokia")
    som = load_som(somdir)
    missing = som.files_in(7)[1]
    missing.unlink()
    with pytest.raises(SomError, match=rf"1 of 2 audio files are missing .*{missing.name}.*base="):
        som[7]
    elsewhere = load_som(somdir, base=tmp_path)
    with pytest.raises(SomError, match="2 of 2 audio files are missing"):
        elsewhere[0]


def test_a_missing_or_malformed_som_folder_is_named(tmp_path):
    with pytest.raises(SomError, match="no SOM folder at"):
        load_som(tmp_path / "nowhere")
    somdir, _ = write_masom_map(tmp_path / "erokia")
    (somdir / "clusters.json").write_text('{"0": [1, 3],')
    with pytest.raises(SomError, match=r"clusters.json is not valid JSON"):
        load_som(somdir)
    (somdir / "clusters.json").write_text('{"zero": [1]}')
    with pytest.raises(SomError, match="node id 'zero'"):
        load_som(somdir)
    (somdir / "clusters.json").write_text('{"0": [9]}')
    with pytest.raises(SomError, match="no entry 9"):
        load_som(somdir)[0]
    (somdir / "clusters.json").unlink()
    with pytest.raises(SomError, match="clusters.json is missing"):
        load_som(somdir)
    (somdir / "clusters.json").write_text('{"0": [0]}')
    (somdir / "data-concatenated.json").write_text('{"0": ["kick.wav"]}')
    with pytest.raises(SomError, match="entry '0' must be"):
        load_som(somdir)


# -- the command line -----------------------------------------------------------------------------
def test_livelatent_som_writes_the_map_and_its_picture(corpus, tmp_path, capsys):
    folder, labels = corpus
    out = tmp_path / "cli-map"
    assert cli_main(["som", str(folder), "-o", str(out), "--grid", "3x4", "--seed", "1",
                     "--iterations", "2000"]) == 0
    said = capsys.readouterr().out
    assert str(out) in said and "3x4" in said and "umatrix.png" in said
    png = (out / "umatrix.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    som = load_som(out)
    assert som.grid == (3, 4) and som.meta["seed"] == 1 and som.meta["iterations"] == 2000
    assert som.num_files == len(labels)
    for name in ("som.json", "weights.npy", "clusters.json", "data-concatenated.json"):
        assert (out / name).is_file()


def test_livelatent_som_with_a_bad_grid_says_how_to_write_it(corpus, tmp_path, capsys):
    folder, _ = corpus
    with pytest.raises(SystemExit) as exited:           # refused before any feature is computed
        cli_main(["som", str(folder), "-o", str(tmp_path / "m"), "--grid", "6by6"])
    assert exited.value.code == 2
    assert "'6by6' must be ROWSxCOLUMNS" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def family_corpus(folder, rng, *, per_family: int):
    """``per_family`` generated sounds of each of :data:`FAMILIES` in ``folder``."""
    folder.mkdir()
    for family in FAMILIES:
        for i in range(per_family):
            sf.write(folder / f"{family}{i}.wav", make_sound(family, rng), SR)
    return folder


@pytest.mark.parametrize("kind", ["bag", "timbre", "model"])
def test_every_feature_set_builds_a_map_that_places_new_sounds(tmp_path, kind):
    """``--features bag|timbre|model``: each builds a map whose clusters keep the families apart
    more often than not, and near() describes a new sound with the map's own feature set."""
    from livelatent.cli import main
    rng = np.random.default_rng(4)
    corpus = family_corpus(tmp_path / "corpus", rng, per_family=5)
    assert main(["som", str(corpus), "-o", str(tmp_path / "map"), "--grid", "3x3", "--features", kind]) == 0
    som = load_som(tmp_path / "map")
    assert som.meta["features"] == kind and len(som.meta["feature_names"]) == len(feature_set(kind).names)
    clusters = {}
    for family in FAMILIES:
        path = tmp_path / f"new_{family}.wav"
        sf.write(path, make_sound(family, rng), SR)
        clusters[family] = som.near(path)
    assert len(set(clusters.values())) >= 3, clusters


def test_a_map_of_model_thumbnails_keeps_to_its_model(tmp_path, monkeypatch):
    """A newer version of the pack a map's thumbnails came from must not describe new sounds in
    its own latent space: near() finds the map's model by its hash, or says which it needs."""
    import shutil

    from livelatent.cli import main
    from livelatent.errors import SomError
    from packutil import small_pack

    packs = tmp_path / "packs"
    monkeypatch.setenv("LIVELATENT_PACKS", str(packs))
    weights, _ = small_pack(packs / "band", "band", 1, seed=0)
    rng = np.random.default_rng(5)
    corpus = family_corpus(tmp_path / "corpus", rng, per_family=4)
    assert main(["som", str(corpus), "-o", str(tmp_path / "map"), "--grid", "3x3",
                 "--features", "model", "--model", str(weights)]) == 0
    probe = tmp_path / "probe.wav"
    sf.write(probe, make_sound(FAMILIES[0], rng), SR)
    before = load_som(tmp_path / "map").near(probe)
    shutil.copytree(packs / "band", packs / "band-v1")         # version 2 ships, 1 stays
    small_pack(packs / "band", "band", 2, seed=1)
    assert load_som(tmp_path / "map").near(probe) == before
    shutil.rmtree(packs / "band-v1")
    with pytest.raises(SomError, match=r"thumbnails of the model pack 'band'.*installed: band = version 2"):
        load_som(tmp_path / "map").near(probe)


def test_a_moved_map_whose_corpus_lost_a_file_still_finds_the_rest(corpus, tmp_path):
    # the first files looked for were all required: one deleted sent the map to a folder that
    # holds none of them, and every cluster failed, naming files that exist
    folder, _ = corpus
    build_som(folder, tmp_path / "maps" / "m", progress=False)
    first = sorted(folder.rglob("*.wav"))[0]
    kept = tmp_path / "corpus-copy"
    shutil.copytree(folder, kept)
    meta_path = tmp_path / "maps" / "m" / "som.json"
    meta = json.loads(meta_path.read_text())
    meta["base_absolute"] = str(kept)               # as if the map had been made from the copy
    meta["base"] = "../../nowhere"                  # and moved away from it
    meta_path.write_text(json.dumps(meta))
    (kept / first.relative_to(folder)).unlink()
    som = load_som(tmp_path / "maps" / "m")
    assert som.base == kept
