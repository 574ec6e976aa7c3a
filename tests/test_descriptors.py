"""Descriptor targets: window descriptors, the descriptor index and its cache, the chooser, and
how closely following targets through the default pack's notes hits them once rendered."""

import itertools
from collections import OrderedDict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from livelatent.errors import ParameterError
from livelatent.model.codec import load_model
from livelatent.paths import descriptors
from livelatent.paths.corpus import corpus
from livelatent.paths.descriptors import DescriptorIndex, descriptor_index, window_descriptors
from livelatent.paths.follow import MISSING_COST, choose, descriptor_scales
from livelatent.sources import LatentFrames, source

SR = 44100
HOP = 512
BLOCK = 256
PACK_SOURCES = Path(__file__).resolve().parent.parent / "livelatent" / "packs" / "default" / "sources"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVELATENT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(descriptors, "_memory", OrderedDict())


@pytest.fixture(scope="module")
def codec():
    return load_model()


def sine(freq, n=1024, amp=1.0, phase=0.3):
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / SR + phase)).astype(np.float32)


# -- window descriptors ------------------------------------------------------------------------

def test_a_full_scale_sine_has_its_frequency_as_centroid_and_pitch_and_is_at_minus_3_db():
    freqs = np.array([110.0, 261.6, 440.0, 1000.0, 2500.0])
    found = window_descriptors(np.stack([sine(f) for f in freqs]), SR)
    assert set(found) == {"centroid", "loudness", "pitch"}
    assert all(v.shape == (5,) and v.dtype == np.float64 for v in found.values())
    np.testing.assert_allclose(found["centroid"], freqs, rtol=0.02)
    np.testing.assert_allclose(found["pitch"], freqs, rtol=0.01)
    np.testing.assert_allclose(found["loudness"], -3.01, atol=0.25)


def test_a_harmonic_tone_has_its_fundamental_as_pitch_and_a_higher_centroid():
    t = np.arange(1024) / SR
    tone = sum(np.sin(2 * np.pi * 220 * h * t) / h for h in range(1, 8)).astype(np.float32)
    found = window_descriptors(0.3 * tone, SR)
    assert found["pitch"][0] == pytest.approx(220, rel=0.01)
    assert 400 < found["centroid"][0] < 1500
    quieter = window_descriptors(0.03 * tone, SR)
    assert quieter["loudness"][0] == pytest.approx(found["loudness"][0] - 20, abs=0.01)


def test_a_period_longer_than_half_a_window_has_no_pitch():
    t = np.arange(1024) / SR
    midi = lambda k: 440 * 2 ** ((k - 69) / 12)
    triad = lambda *keys: (sum(np.sin(2 * np.pi * midi(k) * t + k) for k in keys) / 3).astype(np.float32)
    found = window_descriptors(np.stack([triad(60, 64, 67), triad(65, 69, 72), sine(60)]), SR)["pitch"]
    assert np.isnan(found[0]) and np.isnan(found[2])           # periods of C2 and 60 Hz
    assert found[1] == pytest.approx(midi(41), rel=0.01)      # F4-A4-C5 repeats at F2


def test_noise_is_bright_and_unpitched_and_silence_has_no_centroid():
    noise = np.random.default_rng(1).standard_normal((8, 1024)).astype(np.float32) * 0.1
    found = window_descriptors(noise, SR)
    assert np.all(np.abs(found["centroid"] - SR / 4) < 0.1 * SR / 4)
    assert np.isnan(found["pitch"]).mean() >= 0.75
    assert np.allclose(found["loudness"], -20, atol=1)
    silent = window_descriptors(np.zeros((2, 1024), np.float32), SR)
    assert np.all(silent["loudness"] == -120) and np.all(np.isnan(silent["centroid"]))
    assert np.all(np.isnan(silent["pitch"]))


@pytest.mark.parametrize("windows, rate, match", [
    (np.zeros((2, 3, 1024)), SR, "shape"),
    (np.full((1, 1024), np.nan), SR, "NaN"),
    (np.zeros((1, 1024)), 0, "sample_rate=0"),
    (np.zeros((1, 1024)), "fast", "sample_rate='fast'"),
])
def test_bad_windows_are_refused(windows, rate, match):
    with pytest.raises(ParameterError, match=match):
        window_descriptors(windows, rate)


# -- the index and its cache -------------------------------------------------------------------

def small_corpus():
    return corpus(source(sine(330, SR // 3, 0.4), name="low"),
                  source(sine(2000, SR // 4, 0.2), name="high"))


def test_the_index_describes_every_frame_and_sorts_them(codec):
    c = small_corpus()
    index = descriptor_index(codec, c, HOP, progress=False)
    count = len(c.frames(codec, HOP))
    assert len(index) == count and index.hop == HOP and index.names == ("centroid", "loudness", "pitch")
    assert all(v.shape == (count,) for v in index.values.values())
    np.testing.assert_array_equal(index.spans, c.spans(codec, HOP))
    assert not index.follows[0] and not index.follows[index.spans[1, 0]] and index.follows[1]
    order = index.sorted_order("centroid")
    assert order.dtype == np.int64 and sorted(order.tolist()) == list(range(count))
    assert np.all(np.diff(index.values["centroid"][order]) >= 0)
    assert descriptor_index(codec, c, HOP, progress=False) is index        # kept in memory


def test_a_second_build_reads_the_disk_cache_and_a_damaged_file_is_rebuilt(codec, monkeypatch):
    c = small_corpus()
    first = descriptor_index(codec, c, HOP, progress=False)
    path = descriptors.cache_path(codec, c, HOP)
    assert path.exists() and path.parent.parent.name == "descriptors"
    assert path.name == f"{c.content_hash[:24]}-hop{HOP}-v1.npz"
    built = []
    real_build = descriptors._build
    monkeypatch.setattr(descriptors, "_build", lambda *a: built.append(a) or real_build(*a))

    monkeypatch.setattr(descriptors, "_memory", OrderedDict())
    again = descriptor_index(codec, c, HOP, progress=False)
    assert not built and again is not first
    for name in first.names:
        np.testing.assert_array_equal(again.values[name], first.values[name])
    np.testing.assert_array_equal(again.spans, first.spans)

    path.write_bytes(b"PK\x03\x04 not really a zip file")
    monkeypatch.setattr(descriptors, "_memory", OrderedDict())
    rebuilt = descriptor_index(codec, c, HOP, progress=False)
    assert len(built) == 1
    np.testing.assert_array_equal(rebuilt.values["centroid"], first.values["centroid"])
    with np.load(path) as data:                                  # and written again, whole
        np.testing.assert_array_equal(data["centroid"], first.values["centroid"])


def test_an_unwritable_cache_folder_costs_only_speed(codec, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("LIVELATENT_CACHE", str(blocker / "cache"))
    index = descriptor_index(codec, small_corpus(), HOP, progress=False)
    assert len(index) > 0


def test_an_unknown_descriptor_names_the_known_ones(codec):
    index = descriptor_index(codec, small_corpus(), HOP, progress=False)
    with pytest.raises(ParameterError, match=r"unknown descriptor 'brightness'.*centroid \(Hz\), "
                                             r"loudness \(dB\), pitch \(Hz\)"):
        index.sorted_order("brightness")
    with pytest.raises(ParameterError, match="unknown descriptor 'brightness'"):
        choose(index, {"brightness": np.ones(4)})


def test_a_corpus_without_frames_is_refused(codec):
    empty = SimpleNamespace(name="nothing", content_hash="0" * 64,
                            frames=lambda codec, hop: LatentFrames(np.zeros((0, 256), np.float32),
                                                                   np.zeros((0, 256), np.float32), hop),
                            spans=lambda codec, hop: np.zeros((0, 2), np.int64))
    with pytest.raises(ParameterError, match="'nothing' has no latent frames"):
        descriptor_index(codec, empty, HOP, progress=False)
    with pytest.raises(ParameterError, match="no sounds"):
        descriptor_index(codec, corpus([]), HOP, progress=False)
    with pytest.raises(ParameterError, match="hop=0"):
        descriptor_index(codec, small_corpus(), 0, progress=False)
    with pytest.raises(ParameterError, match="needs a corpus"):
        descriptor_index(codec, "strings", HOP, progress=False)


# -- the chooser -------------------------------------------------------------------------------

def random_index(count=400, sources=4, seed=0):
    rng = np.random.default_rng(seed)
    values = {"centroid": np.exp(rng.uniform(np.log(200), np.log(6000), count)),
              "loudness": rng.uniform(-50, -5, count),
              "pitch": np.where(rng.random(count) < 0.3, np.nan, np.exp(rng.uniform(4.5, 7, count)))}
    edges = np.linspace(0, count, sources + 1).astype(int)
    return DescriptorIndex(values, hop=HOP, spans=np.stack([edges[:-1], edges[1:]], axis=1))


def block_targets(n, seed=1):
    rng = np.random.default_rng(seed)
    return {"centroid": np.exp(np.log(1000) + np.cumsum(rng.normal(0, 0.05, n))),
            "loudness": -25 + 10 * np.sin(np.arange(n) / 40), "pitch": None}


@pytest.mark.parametrize("targets, match", [
    ({}, "at least one target"),
    ({"centroid": None, "pitch": None}, "at least one target"),
    ({"centroid": np.array([500.0, np.nan, 700.0])}, r"target centroid is nan at window 1"),
    ({"loudness": np.array([-10.0, np.inf])}, r"target loudness is inf at window 1"),
    ({"pitch": np.array([440.0, -1.0])}, "positive number of Hz"),
    ({"centroid": np.ones(3) * 500, "loudness": np.ones(4) * -20}, "the same number each"),
    ({"centroid": 500.0}, "1-D array"),
    ({"centroid": ["bright"]}, "not numbers"),
    ([500.0], "must be a dict"),
])
def test_bad_targets_are_refused(targets, match):
    with pytest.raises(ParameterError, match=match):
        choose(random_index(), targets)


@pytest.mark.parametrize("smooth", [-0.1, float("nan"), "a lot", None])
def test_bad_smooth_is_refused(smooth):
    with pytest.raises(ParameterError, match="smooth="):
        choose(random_index(), {"loudness": np.zeros(3)}, smooth=smooth)


def path_cost(index, targets, path, smooth):
    scales = descriptor_scales(index)
    total = 0.0
    for name, goal in targets.items():
        values = index.values[name][path]
        if name != "loudness":
            values, goal = np.log2(values), np.log2(goal)
        gap = ((values - goal) / scales[name]) ** 2
        total += np.where(np.isnan(gap), MISSING_COST, gap).sum()
    reads_on = (np.diff(path) == 1) & index.follows[path[1:]]
    return total + smooth * np.count_nonzero(~reads_on)


@pytest.mark.parametrize("smooth", [0.0, 0.3, 2.0])
def test_the_chooser_finds_the_cheapest_path(smooth):
    index = random_index(count=6, sources=2, seed=3)
    targets = {"centroid": np.array([300.0, 900, 2500, 800, 5000]),
               "loudness": np.array([-10.0, -20, -30, -40, -25]),
               "pitch": np.array([100.0, 200, 300, 400, 500])}
    path = choose(index, targets, smooth=smooth)
    best = min(path_cost(index, targets, np.array(p), smooth)
               for p in itertools.product(range(6), repeat=5))
    assert path_cost(index, targets, path, smooth) == pytest.approx(best, rel=1e-12)


def test_without_smoothing_each_window_takes_the_nearest_frame_and_ties_go_low():
    values = {"centroid": np.array([400.0, 800, 800, 1600]), "loudness": np.full(4, -20.0),
              "pitch": np.full(4, np.nan)}
    index = DescriptorIndex(values, hop=HOP, spans=[[0, 1], [1, 2], [2, 3], [3, 4]])
    path = choose(index, {"centroid": np.array([390.0, 790, 1700, 820])}, smooth=0)
    assert path.dtype == np.int64 and path.tolist() == [0, 1, 3, 1]


def test_a_target_far_beyond_every_frame_picks_the_nearest_without_an_overflow():
    # 1e300 dB squared overflowed: a RuntimeWarning in the middle of the REPL, and every frame
    # as far as any other (the first picked)
    import warnings
    values = {"centroid": np.array([400.0, 800, 800, 1600]), "loudness": np.array([-30.0, -20, -10, -40]),
              "pitch": np.full(4, np.nan)}
    index = DescriptorIndex(values, hop=HOP, spans=[[0, 1], [1, 2], [2, 3], [3, 4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert choose(index, {"loudness": np.full(2, 1e300)}, smooth=0).tolist() == [2, 2]
        assert choose(index, {"centroid": np.full(2, 1e300)}, smooth=0).tolist() == [3, 3]


def test_smoothing_reads_sources_on_and_never_across_their_ends():
    index = random_index(count=400, sources=4)
    targets = block_targets(BLOCK)
    loose = choose(index, targets, smooth=0.0)
    tight = choose(index, targets, smooth=50.0)
    reads_on = lambda p: np.mean((np.diff(p) == 1) & index.follows[p[1:]])
    assert reads_on(tight) > 0.95 > reads_on(loose)
    steps = np.diff(tight) == 1
    assert np.all(index.follows[tight[1:][steps]])                 # no free step over an end


def test_the_chooser_is_deterministic_and_a_pure_function_of_its_block():
    index = random_index(count=2000, sources=8)
    targets = block_targets(4 * BLOCK, seed=5)
    blocks = [{k: None if v is None else v[b:b + BLOCK] for k, v in targets.items()}
              for b in range(0, 4 * BLOCK, BLOCK)]
    in_order = [choose(index, block, smooth=0.5) for block in blocks]
    backwards = [choose(index, block, smooth=0.5) for block in reversed(blocks)][::-1]
    for a, b in zip(in_order, backwards):
        np.testing.assert_array_equal(a, b)
    other = dict(blocks[2], loudness=blocks[2]["loudness"] + 0.0)       # equal values, new arrays
    np.testing.assert_array_equal(choose(index, other, smooth=0.5), in_order[2])


def test_a_pitch_target_picks_pitched_frames_near_it():
    index = random_index(count=3000, sources=10, seed=7)
    goal = np.full(64, 220.0)
    path = choose(index, {"pitch": goal}, smooth=0.0)
    found = index.values["pitch"][path]
    assert np.all(np.isfinite(found)) and np.all(np.abs(np.log2(found / 220)) < 1 / 12)


# -- accuracy on the default pack's notes ------------------------------------------------------

def follow_accuracy(audio, sample_rate, centers, centroid, loudness, *, size=2048):
    """How closely ``audio`` follows the target ``centroid`` (Hz) and ``loudness`` (dB) at the
    samples ``centers``, measured by a Hann STFT of its own (``size`` points, one frame centred on
    each sample). Returns the correlation of log centroid with the target, the median relative
    centroid error, the loudness correlation and the median loudness error (dB)."""
    audio = np.asarray(audio, dtype=np.float64)
    padded = np.pad(audio, size)
    rows = np.asarray(centers)[:, None] + size + np.arange(-size // 2, size // 2)[None, :]
    frames = padded[rows]
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(size) / size)
    magnitude = np.abs(np.fft.rfft(frames * hann, axis=1))
    freqs = np.arange(magnitude.shape[1]) * sample_rate / size
    measured_centroid = (magnitude @ freqs) / np.maximum(magnitude.sum(axis=1), 1e-20)
    measured_loudness = 10 * np.log10((frames ** 2 @ hann) / hann.sum() + 1e-12)
    log_measured = np.log(np.maximum(measured_centroid, 1.0))
    return {"centroid_corr": float(np.corrcoef(log_measured, np.log(centroid))[0, 1]),
            "centroid_rel_error": float(np.median(np.abs(measured_centroid - centroid) / centroid)),
            "loudness_corr": float(np.corrcoef(measured_loudness, loudness)[0, 1]),
            "loudness_error_db": float(np.median(np.abs(measured_loudness - loudness)))}


def render_frames(codec, mu, path, hop=HOP):
    """The chosen frames' mean latents decoded and Hann overlap-added at ``hop``."""
    windows = codec.decode(mu[path]).astype(np.float64)
    size = windows.shape[1]
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(size) / size)
    out = np.zeros(hop * (len(path) - 1) + size)
    for k, window in enumerate(windows):
        out[k * hop:k * hop + size] += hann * window
    return out


def accuracy_targets(windows):
    """Centroid: a triangle 400 Hz - 4 kHz in log frequency, two periods; loudness: one period of
    a sine from -36 to -16 dB (a range the pack's notes cover at every centroid)."""
    phase = np.arange(windows) / windows
    triangle = 1 - np.abs((2 * phase) % 1 * 2 - 1)
    centroid = 400.0 * 10.0 ** triangle
    loudness = -26.0 + 10.0 * np.sin(2 * np.pi * phase)
    return centroid, loudness


def test_following_the_pack_notes_hits_the_targets_far_better_than_the_baselines(codec):
    from followutil import assert_follows_far_better       # (followutil reads this module)
    notes = corpus(sorted(PACK_SOURCES.glob("*.flac")))
    assert len(notes) >= 20
    index = descriptor_index(codec, notes, HOP, progress=False)
    mu = notes.frames(codec, HOP).mu
    windows = 7 * BLOCK                                           # 20.8 s at hop 512
    centroid, loudness = accuracy_targets(windows)
    followed = np.concatenate([choose(index, {"centroid": centroid[b:b + BLOCK],
                                              "loudness": loudness[b:b + BLOCK]}, smooth=0.5)
                               for b in range(0, windows, BLOCK)])
    order = index.sorted_order("centroid")
    order = order[np.isfinite(index.values["centroid"][order])]
    paths = {"follow": followed,
             "random": np.random.default_rng(0).permutation(len(index))[:windows],
             "sorted": order[np.linspace(0, order.size - 1, windows).astype(np.int64)]}
    centers = np.arange(windows) * HOP + codec.window // 2        # the middle of each window
    inner = slice(2, windows - 2)                                 # whole overlaps only
    results = {}
    for name, path in paths.items():
        audio = render_frames(codec, mu, path)
        results[name] = follow_accuracy(audio, codec.sample_rate, centers[inner], centroid[inner],
                                        loudness[inner])
        r = results[name]
        print(f"\n{name:>7}: log-centroid corr {r['centroid_corr']:.3f}, median centroid error "
              f"{r['centroid_rel_error']:.3f}, loudness corr {r['loudness_corr']:.3f}, median "
              f"loudness error {r['loudness_error_db']:.1f} dB", end="")
    print()
    assert_follows_far_better(results)
