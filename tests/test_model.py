"""The RawAudioVAE module: sizes from config, the published shapes, and the loss."""

import numpy as np
import pytest
import torch

from livelatent.errors import ParameterError
from livelatent.model.vae import RawAudioVAE, VAEConfig, vae_loss


def test_default_config_is_the_published_model():
    config = VAEConfig()
    assert (config.window, config.hidden, config.latent, config.sample_rate, config.beta) == \
        (1024, 2048, 256, 44100, 1e-4)
    module = RawAudioVAE(config)
    assert sum(p.numel() for p in module.parameters()) == 5_772_800   # the 5.77 M of the published model


def test_encode_decode_shapes_follow_the_config():
    module = RawAudioVAE(VAEConfig(window=512, hidden=64, latent=8)).eval()
    x = torch.rand(5, 512) * 2 - 1
    with torch.no_grad():
        mu, logvar = module.encode(x)
        y = module.decode(mu)
        recon, mu2, _ = module(x)
    assert mu.shape == logvar.shape == (5, 8)
    assert y.shape == (5, 512)
    assert float(y.abs().max()) <= 1.0         # tanh output: never beyond full scale
    assert torch.equal(recon, y) and torch.equal(mu2, mu)   # eval forward decodes the mean


def test_kl_is_averaged_over_latent_dims():
    x = torch.zeros(4, 16)
    mu = torch.ones(4, 32)                     # KL per dim = 0.5 * mu^2 = 0.5
    logvar = torch.zeros(4, 32)
    loss, mse, kl = vae_loss(x, x, mu, logvar, beta=1e-4)
    assert float(mse) == 0.0
    assert float(kl) == pytest.approx(0.5)    # averaged, not summed (which would be 16)
    assert float(loss) == pytest.approx(0.5e-4)


@pytest.mark.parametrize("bad", [dict(window=0), dict(latent=-1), dict(hidden=2.5), dict(beta=-1.0)])
def test_bad_sizes_are_refused_with_their_name(bad):
    with pytest.raises(ParameterError, match=next(iter(bad))):
        VAEConfig(**bad)


def _loud_windows(rng, n=500, window=64, dims=8):
    mixing = rng.normal(size=(dims, window))
    return (1.5 * rng.normal(size=(n, dims)) @ mixing / dims
            + 0.01 * rng.normal(size=(n, window))).clip(-0.99, 0.99).astype(np.float32)


@pytest.mark.parametrize("hidden", [16, 32])
def test_the_pca_warm_start_is_the_pca_with_the_tanh_undone(hidden):
    # the ReLU pairs pass the projection through unchanged; the other units bend the samples
    # they can (two units each) by the fitted piecewise-linear inverse of tanh
    from livelatent.model.metrics import PCABaseline
    from livelatent.model.warmstart import pca_warm_start

    rng = np.random.default_rng(0)
    config = VAEConfig(window=64, hidden=hidden, latent=8)
    windows = _loud_windows(rng)
    module = RawAudioVAE(config)
    summary = pca_warm_start(module, windows)
    pca = PCABaseline(windows, dims=8)
    inverse = summary["tanh_inverse"]
    assert inverse["samples"] == (hidden - 16) // 2 and inverse["alpha"] > 0
    y = pca(windows).astype(np.float64)
    covered = np.arange(inverse["samples"]) + (64 - inverse["samples"]) // 2
    pre = inverse["gain"] * y
    kink = np.maximum(y - inverse["t"], 0) - np.maximum(-y - inverse["t"], 0)
    pre[:, covered] = inverse["beta"] * y[:, covered] + inverse["alpha"] * kink[:, covered]
    module.eval()
    with torch.no_grad():
        out, mu, logvar = module(torch.from_numpy(windows))
    assert np.abs(out.numpy() - np.tanh(pre)).max() < 2e-4
    assert np.allclose(mu.numpy().std(axis=0), 1.0, atol=0.05)        # standardised components
    assert summary["explained_variance"] == round(pca.explained_variance, 4) > 0.95
    # nearer the windows than tanh of the PCA
    error = np.mean((out.numpy() - windows) ** 2)
    assert error < 0.9 * np.mean((np.tanh(y) - windows) ** 2)
