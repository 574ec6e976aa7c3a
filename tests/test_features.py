"""Thumbnails of sounds: the numbers a SOM sorts a corpus by.

Each test builds sounds whose features are known (a sine's centroid is its pitch, white noise is
flat, a sawtooth is brighter than a sine) and checks the thumbnail says so.
"""

import numpy as np
import pytest
import soundfile as sf

from livelatent.corpus.features import (ANALYSIS_RATE, FEATURE_GROUPS, FEATURE_NAMES, extract_features,
                                        features_of_audio, fit_scaler, group_weights, list_corpus_files)
from livelatent.errors import ParameterError

SR = 44100


def tone(freq=440.0, seconds=1.0, level=0.5, rate=SR):
    t = np.arange(int(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def saw(freq=440.0, seconds=1.0, level=0.5, rate=SR):
    t = np.arange(int(seconds * rate)) / rate
    return (level * (2 * ((freq * t) % 1.0) - 1)).astype(np.float32)


def noise(seconds=1.0, level=0.3, seed=0):
    return (level * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def thumb(audio, rate=SR):
    return dict(zip(FEATURE_NAMES, features_of_audio(audio, sample_rate=rate)))


def test_thumbnail_has_duration_then_mean_and_std_of_each_feature():
    assert len(FEATURE_NAMES) == 1 + 2 * (5 + 13) == 37
    assert FEATURE_NAMES[0] == "duration_s"
    assert sum(len(v) for v in FEATURE_GROUPS.values()) == len(FEATURE_NAMES)
    f = features_of_audio(tone(seconds=1.5), sample_rate=SR)
    assert f.shape == (37,) and np.all(np.isfinite(f))
    assert f[0] == pytest.approx(1.5)


def test_a_sine_has_its_pitch_as_centroid_and_its_level_as_loudness():
    f = thumb(tone(440.0, level=1.0))
    assert f["centroid_hz_mean"] == pytest.approx(440.0, rel=0.05)
    assert f["rolloff_hz_mean"] == pytest.approx(440.0, abs=3 * ANALYSIS_RATE / 1024)
    assert f["loudness_db_mean"] == pytest.approx(-3.01, abs=0.2)     # RMS of a full-scale sine
    assert f["zero_crossing_rate_mean"] == pytest.approx(2 * 440.0 / ANALYSIS_RATE, rel=0.05)
    assert f["loudness_db_std"] < 0.5 and f["centroid_hz_std"] < 20    # a steady tone is steady


def test_noise_is_flat_and_a_sine_is_not():
    assert thumb(noise())["flatness_mean"] > 0.3
    assert thumb(tone())["flatness_mean"] < 0.01


def test_a_sawtooth_is_brighter_than_a_sine_of_the_same_pitch():
    sine, buzz = thumb(tone(220.0)), thumb(saw(220.0))
    assert buzz["centroid_hz_mean"] > 3 * sine["centroid_hz_mean"]
    assert buzz["rolloff_hz_mean"] > sine["rolloff_hz_mean"]
    mfcc_sine = np.array([sine[f"mfcc{i}_mean"] for i in range(1, 14)])
    mfcc_saw = np.array([buzz[f"mfcc{i}_mean"] for i in range(1, 14)])
    assert np.linalg.norm(mfcc_saw - mfcc_sine) > 10.0


def test_a_louder_copy_is_louder_and_otherwise_the_same_timbre():
    soft, loud = thumb(tone(level=0.1)), thumb(tone(level=0.8))
    assert loud["loudness_db_mean"] - soft["loudness_db_mean"] == pytest.approx(20 * np.log10(8), abs=0.1)
    assert loud["centroid_hz_mean"] == pytest.approx(soft["centroid_hz_mean"], rel=1e-3)
    assert loud["flatness_mean"] == pytest.approx(soft["flatness_mean"], abs=1e-4)


def test_a_tail_of_silence_lengthens_the_sound_but_does_not_drag_the_means():
    plain = thumb(tone(seconds=1.0))
    padded = thumb(np.concatenate([tone(seconds=1.0), np.zeros(SR, np.float32)]))
    assert padded["duration_s"] == pytest.approx(2.0)
    assert padded["loudness_db_mean"] == pytest.approx(plain["loudness_db_mean"], abs=1.5)
    assert padded["centroid_hz_mean"] == pytest.approx(plain["centroid_hz_mean"], rel=0.05)


def test_the_file_rate_does_not_change_the_thumbnail():
    at_44k = features_of_audio(tone(440.0, rate=44100), sample_rate=44100)
    at_48k = features_of_audio(tone(440.0, rate=48000), sample_rate=48000)
    at_22k = features_of_audio(tone(440.0, rate=22050), sample_rate=22050)
    names = ["centroid_hz_mean", "loudness_db_mean", "rolloff_hz_mean", "zero_crossing_rate_mean"]
    for name in names:
        i = FEATURE_NAMES.index(name)
        assert at_48k[i] == pytest.approx(at_44k[i], rel=0.02, abs=0.05)
        assert at_22k[i] == pytest.approx(at_44k[i], rel=0.02, abs=0.05)


def test_a_sound_shorter_than_one_frame_still_has_a_thumbnail():
    f = features_of_audio(tone(seconds=0.01), sample_rate=SR)
    assert np.all(np.isfinite(f)) and f[0] == pytest.approx(0.01)


def test_extract_features_keeps_the_good_files_and_lists_the_others_with_reasons(tmp_path):
    sf.write(tmp_path / "a_tone.wav", tone(), SR)
    sf.write(tmp_path / "b_noise.flac", noise(), SR)
    (tmp_path / "c_notes.txt").write_text("not a sound")
    sf.write(tmp_path / "d_empty.wav", np.zeros(0, np.float32), SR)
    sf.write(tmp_path / "e_silent.wav", np.zeros(SR, np.float32), SR)
    (tmp_path / "f_broken.wav").write_bytes(b"RIFF\x00\x00garbage")
    (tmp_path / ".DS_Store").write_bytes(b"\x00")
    files = list_corpus_files(tmp_path)
    assert [p.name for p in files] == ["a_tone.wav", "b_noise.flac", "c_notes.txt", "d_empty.wav",
                                       "e_silent.wav", "f_broken.wav"]
    table = extract_features(files, progress=False)
    assert [p.name for p in table.paths] == ["a_tone.wav", "b_noise.flac"]
    assert table.values.shape == (2, 37)
    assert table.durations_s == pytest.approx([1.0, 1.0])
    reasons = {p.name: reason for p, reason in table.skipped}
    assert reasons["c_notes.txt"] == "not an audio file"
    assert reasons["d_empty.wav"] == "empty (0 samples)"
    assert reasons["e_silent.wav"].startswith("silent")
    assert reasons["f_broken.wav"].startswith("unreadable audio")


def test_list_corpus_files_leaves_out_the_excluded_folder(tmp_path):
    sf.write(tmp_path / "a.wav", tone(), SR)
    (tmp_path / "som").mkdir()
    (tmp_path / "som" / "clusters.json").write_text("{}")
    assert [p.name for p in list_corpus_files(tmp_path, exclude=tmp_path / "som")] == ["a.wav"]


def test_each_feature_group_weighs_the_same_by_default():
    multipliers = group_weights()
    for names in FEATURE_GROUPS.values():
        columns = [FEATURE_NAMES.index(n) for n in names]
        assert np.sum(multipliers[columns] ** 2) == pytest.approx(1.0)


def test_weights_scale_or_silence_a_group_and_bad_weights_are_named():
    multipliers = group_weights({"mfcc": 2.0, "duration": 0})
    assert multipliers[FEATURE_NAMES.index("duration_s")] == 0.0
    mfcc = [FEATURE_NAMES.index(n) for n in FEATURE_GROUPS["mfcc"]]
    assert np.sum(multipliers[mfcc] ** 2) == pytest.approx(4.0)
    with pytest.raises(ParameterError, match="timbre"):
        group_weights({"timbre": 1.0})
    with pytest.raises(ParameterError, match="loudness"):
        group_weights({"loudness": -1})


def test_standardised_features_have_zero_mean_and_unit_spread_and_survive_json():
    rng = np.random.default_rng(1)
    values = rng.normal(loc=100.0, scale=30.0, size=(50, 37))
    values[:, 5] = 7.0                                     # a feature that never varies
    scaler = fit_scaler(values)
    z = scaler.transform(values) / scaler.multipliers
    assert np.all(np.isfinite(z))
    assert np.abs(z.mean(axis=0)).max() < 1e-9
    assert np.delete(z.std(axis=0), 5) == pytest.approx(np.ones(36))
    from pathlib import Path
    from livelatent.corpus.node_weights import read_scaler      # (how a map's som.json is read)
    again = read_scaler({"scaler": scaler.to_json()}, Path("som.json"))
    assert np.array_equal(again.transform(values), scaler.transform(values))
