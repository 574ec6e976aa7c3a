"""Reconstruction metrics, measured the way the paper reconstructs a sound.

A signal is cut into non-overlapping windows, each window is encoded, its *mean* latent is
decoded, and the decoded windows are concatenated (the last partial window is zero-padded and
the result trimmed to the original length). Metrics compare the whole reconstructed signals
with the originals, pooled over all files of a set:

- ``mse``: mean squared error per sample.
- ``snr_db``: ``10 log10(sum x^2 / sum (x - x_hat)^2)``.
- ``spectral_convergence``: ``||S - S_hat||_F / ||S||_F`` on STFT magnitudes (n_fft 2048,
  hop 512, Hann), pooled over files. 0 is perfect; silence scores 1.
- ``multiscale_spectral_distance``: for each FFT size in 2048, 1024, 512, 256 and 128 (hop a
  quarter of the size, Hann), the spectral convergence at that size plus the mean absolute
  difference of log magnitudes ``mean |log(S + 1e-7) - log(S_hat + 1e-7)|`` (natural log);
  the distance is the mean of these per-scale sums over the five sizes, as in DDSP's
  multi-scale spectral loss. 0 is perfect.

Baselines measured with the same code: :class:`PCABaseline` (a linear projection to as many
dimensions as the latent, fit on training windows) and silence (all zeros).
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch

from ..errors import ParameterError

__all__ = [
    "SPECTRAL_FFT",
    "MULTISCALE_FFTS",
    "reconstruct",
    "reconstruction_metrics",
    "PCABaseline",
    "codec_reconstructor",
    "silence_reconstructor",
]

SPECTRAL_FFT = 2048
MULTISCALE_FFTS = (2048, 1024, 512, 256, 128)
_LOG_EPS = 1e-7


def reconstruct(signal: np.ndarray, windows_fn: Callable[[np.ndarray], np.ndarray], *,
                window: int) -> np.ndarray:
    """Reconstruct a mono signal window by window, as the paper does.

    ``windows_fn`` maps ``(n, window)`` float32 windows to their reconstructions (for a VAE:
    encode, take the mean latent, decode). Returns float32 of the signal's length.
    """
    signal = np.asarray(signal, dtype=np.float32)
    count = -(-signal.size // window)
    padded = np.zeros(count * window, dtype=np.float32)
    padded[:signal.size] = signal
    out = np.asarray(windows_fn(padded.reshape(count, window)), dtype=np.float32)
    return out.reshape(-1)[:signal.size]


def _magnitude(signal: np.ndarray, n_fft: int) -> torch.Tensor:
    x = torch.from_numpy(np.array(signal, dtype=np.float32))     # a copy: the signal may be a read-only map
    if x.numel() < n_fft:       # short signals: pad so that one frame exists
        x = torch.nn.functional.pad(x, (0, n_fft - x.numel()))
    spec = torch.stft(x, n_fft=n_fft, hop_length=n_fft // 4, window=torch.hann_window(n_fft),
                      center=True, return_complex=True)
    return spec.abs().double()


class _Accumulator:
    """Pools the sums needed for every metric over many (signal, reconstruction) pairs."""

    def __init__(self):
        self.samples = 0
        self.error_energy = 0.0
        self.signal_energy = 0.0
        self.spec = {n: [0.0, 0.0, 0.0, 0] for n in MULTISCALE_FFTS}  # diff^2, ref^2, |log diff|, bins

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        x64, y64 = x.astype(np.float64), y.astype(np.float64)
        self.samples += x.size
        self.error_energy += float(np.sum((x64 - y64) ** 2))
        self.signal_energy += float(np.sum(x64 ** 2))
        for n_fft in MULTISCALE_FFTS:
            s, s_hat = _magnitude(x, n_fft), _magnitude(y, n_fft)
            acc = self.spec[n_fft]
            acc[0] += float(torch.sum((s - s_hat) ** 2))
            acc[1] += float(torch.sum(s ** 2))
            acc[2] += float(torch.sum(torch.abs(torch.log(s + _LOG_EPS) - torch.log(s_hat + _LOG_EPS))))
            acc[3] += s.numel()

    def result(self) -> dict:
        if self.samples == 0:
            raise ParameterError("no signals to measure: the evaluation set is empty")
        per_scale = {}
        for n_fft, (diff2, ref2, logdiff, bins) in self.spec.items():
            convergence = np.sqrt(diff2) / max(np.sqrt(ref2), 1e-12)
            per_scale[n_fft] = (float(convergence), logdiff / bins)
        error = self.error_energy
        return {
            "mse": error / self.samples,
            "snr_db": float(10 * np.log10(self.signal_energy / error)) if error > 0 else float("inf"),
            "spectral_convergence": per_scale[SPECTRAL_FFT][0],
            "multiscale_spectral_distance": float(np.mean([c + l for c, l in per_scale.values()])),
            "log_spectral_l1": float(np.mean([l for _, l in per_scale.values()])),
            "seconds": None,
            "files": None,
        }


def reconstruction_metrics(signals: Iterable[np.ndarray],
                           windows_fn: Callable[[np.ndarray], np.ndarray], *, window: int,
                           sample_rate: int | None = None) -> dict:
    """Reconstruct each signal window by window with ``windows_fn`` and measure the set.

    Returns a dict with ``mse``, ``snr_db``, ``spectral_convergence``,
    ``multiscale_spectral_distance``, ``log_spectral_l1``, ``files`` and ``seconds`` (when
    ``sample_rate`` is given), pooled over all signals (see the module docstring).

    >>> reconstruction_metrics([x], silence_reconstructor, window=1024)["spectral_convergence"]
    1.0
    """
    acc = _Accumulator()
    files = 0
    for signal in signals:
        signal = np.asarray(signal, dtype=np.float32)
        acc.add(signal, reconstruct(signal, windows_fn, window=window))
        files += 1
    result = acc.result()
    result["files"] = files
    result["seconds"] = acc.samples / sample_rate if sample_rate else None
    return result


def codec_reconstructor(encode: Callable, decode: Callable) -> Callable[[np.ndarray], np.ndarray]:
    """The paper's reconstruction: encode, keep the mean latent, decode."""
    def run(windows: np.ndarray) -> np.ndarray:
        mu, _ = encode(windows)
        return decode(mu)
    return run


def silence_reconstructor(windows: np.ndarray) -> np.ndarray:
    """The silence baseline: every window reconstructed as zeros."""
    return np.zeros_like(windows)


class PCABaseline:
    """A linear baseline: project windows onto their top principal components and back.

    Fit on (a subsample of) training windows with the same number of dimensions as the VAE's
    latent; ``__call__`` reconstructs ``(n, window)`` windows.
    """

    def __init__(self, windows: np.ndarray, *, dims: int):
        windows = np.asarray(windows, dtype=np.float64)
        if windows.ndim != 2 or windows.shape[0] < 2:
            raise ParameterError(f"PCA needs a (n >= 2, window) array of windows, got {windows.shape}")
        if not 0 < dims <= windows.shape[1]:
            raise ParameterError(f"dims={dims} must be between 1 and the window size {windows.shape[1]}")
        self.dims = dims
        self.mean = windows.mean(axis=0)
        centred = windows - self.mean
        covariance = centred.T @ centred / (len(windows) - 1)        # (window, window)
        values, vectors = np.linalg.eigh(covariance)                  # ascending
        self.components = np.ascontiguousarray(vectors[:, ::-1][:, :dims])   # (window, dims)
        self.variances = values[::-1][:dims].copy()                   # of each component
        total = float(values.sum())
        self.explained_variance = float(values[::-1][:dims].sum() / total) if total > 0 else 1.0

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        centred = np.asarray(windows, dtype=np.float64) - self.mean
        return ((centred @ self.components) @ self.components.T + self.mean).astype(np.float32)
