"""source(): files, lists of files, arrays; bad audio; the latent frame cache."""

import numpy as np
import pytest
import soundfile as sf

from livelatent import AudioError, Engine, source
from livelatent.model.codec import load_model

SR = 44100


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVELATENT_CACHE", str(tmp_path / "cache"))


def tone(seconds, rate=SR, freq=330.0):
    t = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(AudioError, match="no such audio file: .*nothere.wav"):
        source(tmp_path / "nothere.wav")


def test_a_pipe_or_a_name_no_file_can_have_is_refused_not_waited_on(tmp_path):
    # a named pipe was opened and read, waiting for a writer for ever; a name too long for the
    # file system (or holding a NUL) was an OSError or ValueError traceback
    import os
    pipe = tmp_path / "pipe.wav"
    os.mkfifo(pipe)
    with pytest.raises(AudioError, match="pipe.wav is not an audio file .a pipe"):
        source(pipe)
    for name in ("x" * 5000 + ".wav", "a\0b.wav"):
        with pytest.raises(AudioError, match="cannot read 'x|no such audio file: a"):
            source(name)


def test_text_file_is_not_audio(tmp_path):
    notes = tmp_path / "notes.wav"
    notes.write_text("these are my notes, not a sound")
    with pytest.raises(AudioError, match="not an audio file.*notes.wav"):
        source(notes)


def test_empty_wav_is_refused(tmp_path):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1), dtype=np.float32), SR)
    with pytest.raises(AudioError, match="empty.wav.*empty"):
        source(empty)


def test_a_file_with_no_sample_at_the_models_rate_is_refused(tmp_path):
    blip = tmp_path / "blip.wav"                  # one frame at 192 kHz: none at 44.1 kHz
    sf.write(blip, np.array([0.5], dtype=np.float32), 192000)
    with pytest.raises(AudioError, match="blip.wav: too short .1 frames at 192000 Hz are none"):
        source(blip)                              # (was numpy's ValueError on an empty max)


def test_an_empty_file_name_is_said_to_be_empty_not_the_current_folder():
    for empty in ("", "  ", ["", "x.wav"]):
        with pytest.raises(AudioError, match="an empty file name"):
            source(empty)


def test_silent_audio_is_refused(tmp_path):
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(SR, dtype=np.float32), SR)
    with pytest.raises(AudioError, match="quiet.wav.*silent"):
        source(quiet)


def test_a_22k_stereo_file_is_mixed_down_and_resampled(tmp_path):
    stereo = np.stack([tone(2.0, 22050), tone(2.0, 22050, 440.0)], axis=1)
    path = tmp_path / "stereo22k.wav"
    sf.write(path, stereo, 22050)
    with pytest.warns(UserWarning, match="model expects 44100 Hz, stereo22k.wav is 22050 Hz: it was resampled"):
        src = source(path)
    assert src.sample_rate == SR and src.audio.ndim == 1
    assert src.num_samples == pytest.approx(2 * SR, abs=2)
    assert src.name == "stereo22k" and src.origin == {"kind": "files", "paths": [str(path)]}


def test_several_files_are_concatenated_in_order(tmp_path):
    paths = []
    for i, seconds in enumerate((0.5, 1.0, 0.25)):
        paths.append(tmp_path / f"part{i}.wav")
        sf.write(paths[-1], tone(seconds, freq=200 + 100 * i), SR)
    src = source(paths)
    assert src.num_samples == int(1.75 * SR)
    assert np.allclose(src.audio[:100], tone(0.5, freq=200)[:100], atol=1e-4)


def test_arrays_take_their_rate_and_bad_arrays_are_refused():
    src = source(tone(1.0, 22050), sample_rate=22050, name="low")
    assert src.num_samples == SR and src.name == "low"
    with pytest.raises(AudioError, match="NaN"):
        source(np.array([0.1, np.nan, 0.2] * 1000, dtype=np.float32))
    with pytest.raises(AudioError, match="shape"):
        source(np.zeros((2, 2, 2)))
    with pytest.raises(AudioError, match="no files"):
        source([])
    import warnings
    with warnings.catch_warnings():            # ("Mean of empty slice", "overflow in cast" leaked)
        warnings.simplefilter("error")
        with pytest.raises(AudioError, match=r"no channels \(shape \(100, 0\)\)"):
            source(np.zeros((100, 0), dtype=np.float32))       # (it said "NaN or infinite")
        with pytest.raises(AudioError, match="samples beyond"):
            source(np.array([1e300, 0.5] * 600))              # finite: beyond float32, not NaN


def test_frames_are_encoded_once_and_cached_on_disk(tmp_path):
    codec = load_model()
    audio = tone(1.5)
    first = source(audio, name="x").frames(codec, 512)
    assert first.mu.shape == (-(-(audio.size - 1024) // 512) + 1, codec.latent_dim)
    cached = list((tmp_path / "cache").rglob("*.npz"))
    assert len(cached) == 1 and "hop512" in cached[0].name
    again = source(audio.copy(), name="y").frames(codec, 512)   # a new Source, same audio
    assert np.array_equal(first.mu, again.mu) and np.array_equal(first.logvar, again.logvar)
    whole = cached[0].read_bytes()
    for damage in (b"damaged", b"", whole[:len(whole) // 2]):    # a broken cache is re-encoded
        cached[0].write_bytes(damage)
        third = source(audio.copy(), name="z").frames(codec, 512)
        assert np.array_equal(first.mu, third.mu)


def test_a_cell_typed_again_reuses_the_frames_already_in_the_engine(tmp_path):
    """Typing voice(source(FILE), ...) again makes new frames objects with the same numbers: the
    engine reads the rows it holds already, instead of keeping a copy per evaluation for the
    rest of the session, and keeps no frames object alive. It sounds the same each time; new
    numbers still get rows of their own."""
    import gc
    import weakref
    from livelatent import hush, voice

    sf.write(tmp_path / "a.wav", tone(2.0), SR)
    sf.write(tmp_path / "b.wav", tone(2.0, freq=550.0), SR)

    def typed_again(engine):
        a, b = source(tmp_path / "a.wav"), source(tmp_path / "b.wav")
        voice(a, b, curve=0.5, deterministic=True)
        voice(a.reverse(), b.slice(0.5), curve=0.3, deterministic=True)
        played = engine.render_array(samples=4096)
        hush(fade=0)
        engine.render_array(samples=2048)
        return played, [weakref.ref(frames) for frames in a._frames.values()]

    with Engine(seed=1) as engine:
        first, gone = typed_again(engine)
        rows = len(engine.frames)
        for _ in range(4):
            again, _ = typed_again(engine)
            assert len(engine.frames) == rows
            np.testing.assert_array_equal(again, first)
        gc.collect()
        assert gone and all(ref() is None for ref in gone)   # the arena held none of them
        voice(source(tone(2.0, freq=440.0), name="new"), source(tmp_path / "b.wav"))
        engine.render_array(samples=2048)
        assert len(engine.frames) > rows                      # new numbers, new rows


def test_the_last_partial_window_is_kept_zero_padded_as_in_the_notebook(tmp_path):
    codec = load_model()
    audio = tone(1.5)                                    # 66150 samples: 626 past the last full window
    src = source(audio, name="x")
    frames = src.frames(codec, 512)
    padded = np.zeros((len(frames) - 1) * 512 + 1024, dtype=np.float32)
    padded[:audio.size] = audio
    mu, logvar = codec.encode(padded[-1024:][None, :])
    assert padded.size > audio.size and len(frames) == (audio.size - 1024) // 512 + 2
    np.testing.assert_allclose(frames.mu[-1], mu[0], atol=1e-5)
    np.testing.assert_allclose(frames.logvar[-1], logvar[0], atol=1e-5)
    # the frames of sets made before it (tail dropped) are still there, cached apart
    old = src.frames(codec, 512, tail=False)
    assert len(old) == len(frames) - 1 and not old.tail and frames.tail
    # one window fewer is another batch, which BLAS may round otherwise in the last bits
    np.testing.assert_allclose(old.mu, frames.mu[:-1], atol=1e-5)
    names = sorted(p.name for p in (tmp_path / "cache").rglob("*.npz"))
    assert len(names) == 2 and any(n.endswith("-v2.npz") for n in names)


def test_a_source_shorter_than_a_window_still_has_one_frame():
    with Engine() as engine:
        frames = source(tone(0.01)).frames(engine.codec, 512)
    assert len(frames) == 1


def test_freeze_slice_and_at_take_real_numbers_only_and_offset_refuses_complex():
    from livelatent import ParameterError
    src = source(tone(1.0), name="tone")
    for bad in ("1", True, np.bool_(True), None, 1j):
        with pytest.raises(ParameterError, match="at="):
            src.freeze(bad)
        with pytest.raises(ParameterError, match="start="):
            src.slice(bad, 0.9)
        with pytest.raises(ParameterError, match="seconds="):
            src.at(bad)
    assert src.freeze(np.float32(0.5)).code.endswith(".freeze(0.5)")
    assert src.slice(np.int64(0), 0.5).code.endswith(".slice(0.0, 0.5)")
    latent = 256
    for bad in (np.ones(latent, complex) * (1 + 2j), [1j] * latent, np.ones(latent, bool), ["a"] * latent,
                np.full(latent, 1e39)):
        with pytest.raises(ParameterError, match="latent vector of finite numbers"):
            src.offset(bad, 1)
    assert src.offset([1] * latent, 0.5).offsets[0].frames.mu.dtype == np.float32


def test_a_source_nobody_holds_goes_at_once_with_its_frames():
    """No reference cycle holds a source (or its frames, whose rows the engine's arena gives back
    only when they are gone) until Python's collector happens to run."""
    import gc
    import weakref

    codec = load_model()
    gc.disable()
    try:
        plain = source(tone(1.0), name="plain")
        derived = plain.reverse().slice(0.2)
        assert derived.base is plain and plain.base is plain
        refs = [weakref.ref(plain), weakref.ref(derived), weakref.ref(plain.frames(codec, 512))]
        del plain, derived
        assert [ref() for ref in refs] == [None, None, None]
    finally:
        gc.enable()


def test_a_number_none_or_a_voice_given_as_a_source_says_what_a_source_is():
    # v.a = None said "array: not an array of audio samples (samples of type object)"
    from livelatent import voice
    with Engine():
        flute = source(np.sin(np.arange(44100) / 7).astype(np.float32))
        v = voice(flute, flute)
        for wrong in (5, np.float32(3), {1: 2}, v):          # (b=None: a plays alone)
            with pytest.raises(AudioError, match="is not a source: give one"):
                voice(flute, wrong)
        with pytest.raises(AudioError, match="None is not a source"):
            v.a = None


def test_a_hop_beyond_any_use_is_refused_before_it_pads_gigabytes():
    # map --hop 99999999999 ran out of memory (373 GiB); 2000000000 padded 8 GB of silence
    from livelatent.errors import ParameterError
    codec = load_model()
    with Engine():
        tone = source(np.sin(np.arange(44100) / 7).astype(np.float32), sample_rate=44100)
    for hop in (0, True, 2 ** 20 + 1, 99999999999):
        with pytest.raises(ParameterError, match="must be a whole number of samples from 1 to 1048576"):
            tone.frames(codec, hop)
    assert tone.frames(codec, 2 ** 20).mu.shape[0] >= 1           # (the largest is taken)
