"""Reconstruction metrics and their baselines, on signals whose answers are known."""

import numpy as np
import pytest

from livelatent.errors import ParameterError
from livelatent.model.metrics import (PCABaseline, reconstruct, reconstruction_metrics,
                                      silence_reconstructor)


def _tones(count=3, seconds=0.5, rate=44100):
    t = np.arange(int(seconds * rate)) / rate
    return [(0.5 * np.sin(2 * np.pi * 220 * (k + 1) * t) * np.exp(-3 * t)).astype(np.float32)
            for k in range(count)]


def test_reconstruct_works_window_by_window_and_keeps_the_length():
    signal = np.arange(2500, dtype=np.float32)
    seen = []

    def record(windows):
        seen.append(windows.shape)
        return windows * 2

    out = reconstruct(signal, record, window=1024)
    assert seen == [(3, 1024)]                  # non-overlapping, last window zero-padded
    assert out.shape == (2500,)
    np.testing.assert_array_equal(out, signal * 2)


def test_perfect_reconstruction_scores_perfectly():
    result = reconstruction_metrics(_tones(), lambda w: w, window=1024, sample_rate=44100)
    assert result["mse"] == 0 and result["snr_db"] == float("inf")
    assert result["spectral_convergence"] == 0 and result["multiscale_spectral_distance"] == 0
    assert result["files"] == 3 and result["seconds"] == pytest.approx(1.5)


def test_silence_has_spectral_convergence_one_and_zero_snr():
    result = reconstruction_metrics(_tones(), silence_reconstructor, window=1024)
    assert result["spectral_convergence"] == pytest.approx(1.0)
    assert result["snr_db"] == pytest.approx(0.0)
    assert result["multiscale_spectral_distance"] > 1.0       # 1 from convergence + log-magnitude gap


def test_half_level_reconstruction_is_6_db():
    result = reconstruction_metrics(_tones(), lambda w: 0.5 * w, window=1024)
    assert result["snr_db"] == pytest.approx(20 * np.log10(2), abs=1e-6)
    assert result["spectral_convergence"] == pytest.approx(0.5, abs=1e-6)
    # log(2) in every bin with energy; less only in near-empty bins, where the 1e-7 floor dominates
    assert 0.5 < result["log_spectral_l1"] <= np.log(2) + 1e-9


def test_pca_baseline_improves_with_dimensions():
    rng = np.random.default_rng(0)
    windows = np.concatenate([t[: 21 * 1024].reshape(-1, 1024) for t in _tones(6, seconds=0.5)])
    windows = windows + 0.01 * rng.standard_normal(windows.shape).astype(np.float32)
    scores = [reconstruction_metrics(_tones(), PCABaseline(windows, dims=d), window=1024)["snr_db"]
              for d in (2, 16, 64)]
    assert scores[0] < scores[1] < scores[2]
    full = PCABaseline(windows, dims=64)
    assert 0 < full.explained_variance <= 1
    with pytest.raises(ParameterError, match="dims=0"):
        PCABaseline(windows, dims=0)


def test_an_empty_set_is_an_error():
    with pytest.raises(ParameterError, match="empty"):
        reconstruction_metrics([], silence_reconstructor, window=1024)
