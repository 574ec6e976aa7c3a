"""Warm-start a RawAudioVAE from a PCA of its training windows, with its tanh output undone.

On a CPU, a RawAudioVAE from random weights needs many epochs to beat a linear projection
(the default pack's card compares both). But the architecture contains a PCA exactly: ReLU
pairs ``relu(y), relu(-y)`` pass a projection ``y`` through a hidden layer unchanged. So the
encoder starts as the whitened PCA projection (mu = the standardised principal components,
logvar small) and the decoder as its inverse, and VAE training (MSE + beta * KL, as ever)
starts from the best linear model instead of from noise.

The published decoder ends in tanh, and ``tanh(PCA(x))`` loses much of what the PCA keeps on
loud notes (on the default pack's held-out notes: 17.4 dB against the PCA's 21.4 dB,
``benchmarks/bench_warm_start.py``). The decoder's other hidden units undo most of it: for as
many output samples as they allow (two units each), the pre-activation becomes
``beta * y + alpha * (relu(y - t) - relu(-y - t))`` of the sample's PCA reconstruction ``y``, a
piecewise-linear stand-in for ``atanh``, with ``t``, ``alpha`` and ``beta`` fitted to the
windows; the other samples get the best single gain. The default sizes (2048 hidden units,
256 latent) cover 768 of 1024 samples.

Encoder units beyond the ``2 * latent`` the projection uses keep their random initialisation
and zero outgoing weights, free to learn what the projection misses (so do decoder units, with
a hidden layer larger than the corrections need).
"""

from __future__ import annotations

import numpy as np

from .. import optional
from ..errors import ParameterError
from .metrics import PCABaseline

__all__ = ["pca_warm_start", "fit_tanh_inverse", "component_scales", "INITIAL_LOGVAR", "STD_FLOOR"]

INITIAL_LOGVAR = -6.0   # posterior std 0.05 of a standardised component: a small, trainable noise
_FIT_SAMPLES = 200_000  # samples the tanh inverse is fitted on
# Components' std below this fraction of the largest one's are raised to it. On the default
# pack's training corpus (1278 notes; 60,000 windows of 1024 samples at hop 512) the smallest
# of the 256 components' std is 0.040 of the largest (1.288 and 0.0515), 40 times the floor, so
# the pack rebuilds unchanged; on a few tones it caps the encoder's gains at 1000x the first's.
STD_FLOOR = 1e-3
_KINKS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
_GAINS = (1.0, 1.025, 1.05, 1.075, 1.1, 1.15, 1.2)
_ALPHAS = np.linspace(0.0, 4.0, 41)


def fit_tanh_inverse(y: np.ndarray, x: np.ndarray, *, seed: int = 0) -> dict:
    """The ``t``, ``alpha`` and ``beta`` for which ``tanh(beta * y + alpha * (relu(y - t) -
    relu(-y - t)))`` is nearest ``x`` (mean squared error), and the best plain ``gain`` for
    ``tanh(gain * y)``; ``y`` is the PCA's reconstruction of the windows ``x``."""
    y, x = np.asarray(y, np.float64).ravel(), np.asarray(x, np.float64).ravel()
    if y.size > _FIT_SAMPLES:
        pick = np.random.default_rng(seed).choice(y.size, _FIT_SAMPLES, replace=False)
        y, x = y[pick], x[pick]
    gain = min(_GAINS, key=lambda g: float(np.mean((np.tanh(g * y) - x) ** 2)))
    best = (float(np.mean((np.tanh(gain * y) - x) ** 2)), 0.5, gain, 0.0)
    for t in _KINKS:
        kink = np.maximum(y - t, 0.0) - np.maximum(-y - t, 0.0)
        for beta in _GAINS:
            pre = beta * y
            errors = [float(np.mean((np.tanh(pre + alpha * kink) - x) ** 2)) for alpha in _ALPHAS]
            i = int(np.argmin(errors))
            if errors[i] < best[0]:
                best = (errors[i], t, beta, float(_ALPHAS[i]))
    return {"t": best[1], "beta": best[2], "alpha": best[3], "gain": float(gain)}


def component_scales(variances: np.ndarray) -> np.ndarray:
    """The std of each principal component, floored at :data:`STD_FLOOR` of the largest.

    The encoder divides by these. On a small corpus (a few tones) most components have next
    to no variance, and a gain of ``1 / sqrt(1e-12)`` sent held-out windows to latents of 1e4
    and the validation loss to inf. The floor does not bind on the default pack's corpus: its
    256th component's std is 0.04 of the first's (see ``STD_FLOOR``).
    """
    std = np.sqrt(np.maximum(np.asarray(variances, dtype=np.float64), 0.0))
    largest = float(std.max()) if std.size else 0.0
    return np.maximum(std, max(STD_FLOOR * largest, 1e-6))


def pca_warm_start(module, windows: np.ndarray, *, initial_logvar: float = INITIAL_LOGVAR) -> dict:
    """Set ``module``'s weights to the PCA of ``windows`` ((n, window) float32) with the tanh
    undone where the hidden units allow; returns a summary.

    Needs ``hidden >= 2 * latent`` and at least ``latent + 1`` windows.
    """
    torch = optional.torch()
    config = module.config
    window, hidden, latent = config.window, config.hidden, config.latent
    x = np.asarray(windows, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != window or x.shape[0] <= latent:
        raise ParameterError(f"the PCA warm start needs more than {latent} windows of {window} samples, "
                             f"got {x.shape}")
    if hidden < 2 * latent:
        raise ParameterError(f"the PCA warm start needs hidden >= 2 * latent ({hidden} < {2 * latent})")
    pca = PCABaseline(x, dims=latent)
    mean, components = pca.mean, pca.components                 # components: (window, latent)
    scale = component_scales(pca.variances)                      # std of each component, floored
    encode = (components / scale).T                             # (latent, window): standardised
    decode = components * scale                                 # (window, latent)
    inverse = fit_tanh_inverse(pca(x), x)
    covered = np.arange(min(window, (hidden - 2 * latent) // 2))
    covered += (window - covered.size) // 2                     # the middle samples
    gains = np.full(window, inverse["gain"])
    gains[covered] = inverse["beta"]
    # each kink unit's row is scaled so that its input and output weights are of a size (ReLU
    # is positively homogeneous): Adam's steps then move both alike
    rows = decode[covered]
    unit_scale = np.sqrt(inverse["alpha"] / max(float(np.mean(np.abs(rows))), 1e-12)) \
        if inverse["alpha"] > 0 and covered.size else 1.0
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    z, first = latent, 2 * latent
    up, down = first + 2 * np.arange(covered.size), first + 2 * np.arange(covered.size) + 1
    with torch.no_grad():
        module.fc1.weight[:z] = as_tensor(encode)
        module.fc1.bias[:z] = as_tensor(-encode @ mean)
        module.fc1.weight[z:first] = as_tensor(-encode)
        module.fc1.bias[z:first] = as_tensor(encode @ mean)
        module.fc21.weight.zero_()
        module.fc21.bias.zero_()
        module.fc21.weight[:, :z] = torch.eye(z)                # mu = relu(y) - relu(-y) = y
        module.fc21.weight[:, z:first] = -torch.eye(z)
        module.fc22.weight.zero_()
        module.fc22.bias.fill_(initial_logvar)
        module.fc3.weight[:z] = torch.eye(z)
        module.fc3.bias[:z] = 0.0
        module.fc3.weight[z:first] = -torch.eye(z)
        module.fc3.bias[z:first] = 0.0
        module.fc4.weight.zero_()                               # only these units reach the output
        module.fc4.weight[:, :z] = as_tensor(gains[:, None] * decode)
        module.fc4.weight[:, z:first] = as_tensor(-gains[:, None] * decode)
        module.fc4.bias.copy_(as_tensor(gains * mean))
        if covered.size and inverse["alpha"] > 0:               # relu(+-y - t) of each sample's y
            t, alpha = inverse["t"], inverse["alpha"]
            module.fc3.weight[up] = as_tensor(unit_scale * rows)
            module.fc3.bias[up] = as_tensor(unit_scale * (mean[covered] - t))
            module.fc3.weight[down] = as_tensor(-unit_scale * rows)
            module.fc3.bias[down] = as_tensor(unit_scale * (-mean[covered] - t))
            module.fc4.weight[covered, up] = alpha / unit_scale
            module.fc4.weight[covered, down] = -alpha / unit_scale
    return {"init": "pca", "pca_windows": int(len(x)),
            "explained_variance": round(pca.explained_variance, 4),
            "tanh_inverse": {**{k: round(v, 4) for k, v in inverse.items()},
                             "samples": int(covered.size) if inverse["alpha"] > 0 else 0}}
