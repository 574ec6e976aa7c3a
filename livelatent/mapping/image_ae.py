"""Features of drawings learned by a small convolutional autoencoder: ``features(kind="image-ae")``.

The autoencoder is trained here, with torch (imported for the training only, like the model's
trainer), on the drawings' squared, softened images (:func:`.sketches.square_image`, 32 pixels a
side, less the drawings' mean image): two strided convolutions (8 and 16 channels, 4x4, stride 2,
ELU) and a dense layer to ``dims`` codes, mirrored by transposed convolutions back to the image. Its encoder then runs in
numpy (:func:`encode`), so playing a mapping of drawings never imports torch.

It is kept only when it measures better than the principal components of the same size: one
drawing in five is held out, both are fitted to the rest, and each reconstructs the held-out
images; the one with the lower mean squared error wins (``features.measured`` says both). When
the autoencoder wins it is trained again on every drawing; when it does not, the principal
components are what ``features()`` returns, and it says so.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError

__all__ = ["learn_autoencoder", "encode", "held_out_errors", "MIN_DRAWINGS"]

MIN_DRAWINGS = 10           # one in five held out: at least two to measure on
CHANNELS = (8, 16)
EPOCHS = 800
_KERNEL, _STRIDE, _PAD = 4, 2, 1


def _conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """torch's conv2d (4x4, stride 2, padding 1) in numpy: ``(n, c, h, w)`` -> ``(n, o, h/2, w/2)``."""
    padded = np.pad(x, ((0, 0), (0, 0), (_PAD, _PAD), (_PAD, _PAD)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (_KERNEL, _KERNEL), axis=(2, 3))
    windows = windows[:, :, ::_STRIDE, ::_STRIDE]              # (n, c, h/2, w/2, 4, 4)
    return np.einsum("ncyxij,ocij->noyx", windows, weight, optimize=True) + bias[None, :, None, None]


def _elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


def encode(weights: dict, images: np.ndarray) -> np.ndarray:
    """The codes ``(n, dims)`` of ``images`` ``(n, side, side)`` (float64, numpy only)."""
    x = (np.asarray(images, dtype=np.float64) - weights["input.mean"])[:, None]
    x = _elu(_conv(x, weights["conv1.weight"], weights["conv1.bias"]))
    x = _elu(_conv(x, weights["conv2.weight"], weights["conv2.bias"]))
    return x.reshape(len(x), -1) @ weights["code.weight"].T + weights["code.bias"]


def _network(side: int, dims: int):
    import torch
    from torch import nn
    inner = side // 4

    class Autoencoder(nn.Module):
        """Encodes an image minus the drawings' mean image; decodes back to that difference."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, CHANNELS[0], _KERNEL, _STRIDE, _PAD)
            self.conv2 = nn.Conv2d(CHANNELS[0], CHANNELS[1], _KERNEL, _STRIDE, _PAD)
            self.code = nn.Linear(CHANNELS[1] * inner * inner, dims)
            self.expand = nn.Linear(dims, CHANNELS[1] * inner * inner)
            self.up1 = nn.ConvTranspose2d(CHANNELS[1], CHANNELS[0], _KERNEL, _STRIDE, _PAD)
            self.up2 = nn.ConvTranspose2d(CHANNELS[0], 1, _KERNEL, _STRIDE, _PAD)

        def encode(self, x):
            x = torch.nn.functional.elu(self.conv2(torch.nn.functional.elu(self.conv1(x))))
            return self.code(x.flatten(1))

        def forward(self, x):
            h = torch.nn.functional.elu(self.expand(self.encode(x))).view(-1, CHANNELS[1], inner, inner)
            return self.up2(torch.nn.functional.elu(self.up1(h)))

    return Autoencoder()


def learn_autoencoder(images: np.ndarray, dims: int, *, seed: int = 0, epochs: int = EPOCHS):
    """Train on ``images`` ``(n, side, side)`` in [0, 1] (each step on the drawings moved by up
    to two pixels, seeded); returns ``(weights, reconstruct)``: the encoder's arrays (float64,
    for :func:`encode`) and a function giving the autoencoder's reconstruction of other images
    (for measuring)."""
    try:
        import torch
    except ImportError:
        raise ParameterError("features(kind='image-ae') trains with torch, which is not installed: "
                             "pip install 'livelatent[train]' (torch pinned to a CPU build), or "
                             "use kind='image'") from None
    images = np.asarray(images, dtype=np.float64)
    side = images.shape[1]
    if side % 4:
        raise ParameterError(f"image-ae: images of {side} pixels a side; a multiple of 4 is needed")
    shifts = np.random.default_rng(seed).integers(-2, 3, (epochs, 2)).tolist()
    torch.manual_seed(seed)
    network = _network(side, dims).double()
    mean = images.mean(axis=0)
    data = torch.from_numpy((images - mean)[:, None].copy())
    optimiser = torch.optim.Adam(network.parameters(), lr=3e-3)
    for shift in shifts:
        batch = torch.roll(data, shifts=tuple(shift), dims=(2, 3))
        optimiser.zero_grad()
        loss = torch.mean((network(batch) - batch) ** 2)
        loss.backward()
        optimiser.step()
    network.eval()
    weights = {name: p.detach().numpy().copy() for name, p in network.named_parameters()
               if name.split(".")[0] in ("conv1", "conv2", "code")}
    weights["input.mean"] = mean

    def reconstruct(others: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            x = torch.from_numpy((np.asarray(others, dtype=np.float64) - mean)[:, None].copy())
            return network(x)[:, 0].numpy() + mean
    return weights, reconstruct


def held_out_errors(images: np.ndarray, dims: int, *, seed: int = 0) -> dict:
    """Mean squared reconstruction error on one image in five, held out, of the autoencoder and
    of principal components of the same size, both fitted to the others."""
    n = len(images)
    if n < MIN_DRAWINGS:
        raise ParameterError(f"features(kind='image-ae'): {n} drawings; at least {MIN_DRAWINGS} are "
                             f"needed (one in five is held out to measure it against kind='image')")
    order = np.random.default_rng(seed).permutation(n)
    held, kept = order[::5], np.setdiff1d(order, order[::5])
    train, test = images[kept], images[held]
    _, reconstruct = learn_autoencoder(train, dims, seed=seed)
    autoencoder = float(np.mean((reconstruct(test) - test) ** 2))
    flat, flat_test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    mean = flat.mean(axis=0)
    _, _, components = np.linalg.svd(flat - mean, full_matrices=False)
    components = components[:dims]
    projected = (flat_test - mean) @ components.T @ components + mean
    pca = float(np.mean((projected - flat_test) ** 2))
    return {"image-ae": autoencoder, "pca": pca, "held_out": int(len(held))}
