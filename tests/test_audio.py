"""Reading audio: bad files give clear errors; other rates and channel counts are converted."""

import numpy as np
import pytest
import soundfile as sf

from livelatent import AudioError
from livelatent.audio import as_mono, list_audio_files, read_audio, write_audio


def test_missing_file_is_named(tmp_path):
    with pytest.raises(AudioError, match="no such audio file.*ghost.wav"):
        read_audio(tmp_path / "ghost.wav", target_rate=44100)


def test_text_file_named_wav_is_not_audio(tmp_path):
    fake = tmp_path / "notes.wav"
    fake.write_text("not audio at all\n")
    with pytest.raises(AudioError, match="not an audio file.*notes.wav"):
        read_audio(fake, target_rate=44100)


def test_empty_wav_is_refused(tmp_path):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 44100)
    with pytest.raises(AudioError, match="empty.wav.*empty"):
        read_audio(empty, target_rate=44100)


def test_silent_wav_is_refused_unless_allowed(tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(4410, dtype=np.float32), 44100)
    with pytest.raises(AudioError, match="silent.wav.*silent"):
        read_audio(silent, target_rate=44100)
    assert read_audio(silent, target_rate=44100, allow_silent=True).shape == (4410,)


def test_folder_is_not_a_file(tmp_path):
    with pytest.raises(AudioError, match="folder"):
        read_audio(tmp_path, target_rate=44100)


def test_stereo_22k05_is_mixed_and_resampled_to_44k1(tmp_path):
    rate, seconds = 22050, 1.0
    t = np.arange(int(rate * seconds)) / rate
    left = 0.8 * np.sin(2 * np.pi * 440 * t)
    right = np.zeros_like(left)                       # mixing halves the level
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1).astype(np.float32), rate)
    with pytest.warns(UserWarning, match="22050 Hz: it was resampled"):
        audio = read_audio(path, target_rate=44100)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert audio.shape == (44100,)
    middle = audio[4410:-4410]
    assert np.max(np.abs(middle)) == pytest.approx(0.4, abs=0.01)
    # still a 440 Hz tone: the strongest FFT bin of one second is at 440
    assert np.argmax(np.abs(np.fft.rfft(audio))) == 440


def test_as_mono_checks_arrays():
    with pytest.raises(AudioError, match="NaN"):
        as_mono(np.array([0.1, np.nan]), sample_rate=44100, target_rate=44100)
    with pytest.raises(AudioError, match="empty"):
        as_mono(np.zeros(0), sample_rate=44100, target_rate=44100)
    stereo = np.ones((100, 2), dtype=np.float32) * [0.5, 0.1]
    np.testing.assert_allclose(as_mono(stereo, sample_rate=44100, target_rate=44100), 0.3, rtol=1e-6)


def test_as_mono_scales_integer_samples_and_refuses_what_it_would_misread():
    from livelatent import ParameterError
    # int16 as many libraries read audio: before, 20000 went to the model as 20000.0
    loud = (0.5 * 32768 * np.sin(np.arange(4410) / 7)).astype(np.int16)
    np.testing.assert_allclose(as_mono(loud, sample_rate=44100, target_rate=44100).max(), 0.5, atol=1e-4)
    unsigned = np.array([128, 192, 64, 255], dtype=np.uint8)
    np.testing.assert_allclose(as_mono(unsigned, sample_rate=44100, target_rate=44100),
                               [0.0, 0.5, -0.5, 127 / 128])
    # a list of Python ints (int64) is values, not PCM: [0, 1, 0, -1] is full scale
    np.testing.assert_allclose(as_mono([0, 1, 0, -1] * 100, sample_rate=44100, target_rate=44100)[:4],
                               [0, 1, 0, -1])
    # (channels, frames), as librosa returns it: before, 2 frames of 44100 channels
    with pytest.raises(AudioError, match=r"looks like \(channels, frames\).*array\.T"):
        as_mono(np.full((2, 44100), 0.1), sample_rate=44100, target_rate=44100)
    for rate in (float("nan"), float("inf"), 0.5, 1, 10**9, "44100", 44100.5):
        with pytest.raises(ParameterError, match="sample_rate="):
            as_mono(loud, sample_rate=rate, target_rate=44100)


def test_write_then_list_and_read_back(tmp_path):
    tone = (0.25 * np.sin(np.arange(2048) / 5.0)).astype(np.float32)
    write_audio(tmp_path / "sub" / "a.flac", tone, 44100)
    write_audio(tmp_path / "b.wav", tone, 44100)
    (tmp_path / "readme.txt").write_text("ignored")
    files = list_audio_files(tmp_path)
    assert sorted(f.name for f in files) == ["a.flac", "b.wav"]        # the .txt is not audio
    np.testing.assert_allclose(read_audio(tmp_path / "b.wav", target_rate=44100), tone, atol=1e-4)
    with pytest.raises(AudioError, match="no such file or folder"):
        list_audio_files(tmp_path / "nothing")
