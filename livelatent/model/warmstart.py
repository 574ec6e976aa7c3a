"""Warm-start a RawAudioVAE from a PCA of its training windows.

On a CPU, a RawAudioVAE from random weights needs many epochs to beat a linear projection
(the default pack's card compares both). But the architecture contains a PCA exactly: ReLU
pairs ``relu(y), relu(-y)`` pass a projection ``y`` through a hidden layer unchanged. So the
encoder starts as the whitened PCA projection (mu = the standardised principal components,
logvar small) and the decoder as its inverse, and VAE training (MSE + beta * KL, as ever)
starts from the best linear model instead of from noise. The default pack's card records what
it reached, next to the PCA and silence baselines of the same run
(``scripts/build_default_pack.py`` measures it).

Only ``2 * latent`` of the hidden units are used by the start; the others keep their random
initialisation and zero outgoing weights, free to learn what the projection misses.
"""

from __future__ import annotations

import numpy as np

from .. import optional
from ..errors import ParameterError
from .metrics import PCABaseline

__all__ = ["pca_warm_start", "INITIAL_LOGVAR"]

INITIAL_LOGVAR = -6.0   # posterior std 0.05 of a standardised component: a small, trainable noise


def pca_warm_start(module, windows: np.ndarray, *, initial_logvar: float = INITIAL_LOGVAR) -> dict:
    """Set ``module``'s weights to the PCA of ``windows`` ((n, window) float32); returns a summary.

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
    scale = np.sqrt(np.maximum(pca.variances, 1e-12))           # std of each component
    encode = (components / scale).T                             # (latent, window): standardised
    decode = components * scale                                 # (window, latent)
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    z = latent
    with torch.no_grad():
        module.fc1.weight[:z] = as_tensor(encode)
        module.fc1.bias[:z] = as_tensor(-encode @ mean)
        module.fc1.weight[z:2 * z] = as_tensor(-encode)
        module.fc1.bias[z:2 * z] = as_tensor(encode @ mean)
        module.fc21.weight.zero_()
        module.fc21.bias.zero_()
        module.fc21.weight[:, :z] = torch.eye(z)                # mu = relu(y) - relu(-y) = y
        module.fc21.weight[:, z:2 * z] = -torch.eye(z)
        module.fc22.weight.zero_()
        module.fc22.bias.fill_(initial_logvar)
        module.fc3.weight[:z] = torch.eye(z)
        module.fc3.bias[:z] = 0.0
        module.fc3.weight[z:2 * z] = -torch.eye(z)
        module.fc3.bias[z:2 * z] = 0.0
        module.fc4.weight.zero_()                               # only the PCA units reach the output
        module.fc4.weight[:, :z] = as_tensor(decode)
        module.fc4.weight[:, z:2 * z] = as_tensor(-decode)
        module.fc4.bias.copy_(as_tensor(mean))
    return {"init": "pca", "pca_windows": int(len(x)),
            "explained_variance": round(pca.explained_variance, 4)}
