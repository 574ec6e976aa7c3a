"""The codec: the default pack loads, and both backends agree with the torch module."""

import numpy as np
import pytest
import torch

from livelatent import ParameterError, load_model
from livelatent.config import DEFAULT_MODEL_DIR
from livelatent.model.codec import BACKENDS
from livelatent.model.checkpoint import save_checkpoint
from livelatent.model.vae import RawAudioVAE, VAEConfig


@pytest.fixture(scope="module")
def default_codec():
    return load_model()


def test_default_pack_is_the_published_model_at_44k1(default_codec):
    assert default_codec.path.parent == DEFAULT_MODEL_DIR
    assert (default_codec.window, default_codec.latent_dim, default_codec.sample_rate) == (1024, 256, 44100)
    assert len(default_codec.content_hash) == 64


def test_default_pack_reconstructs_a_note_audibly(default_codec):
    """A tone through encode -> mean latent -> decode comes back close to itself, not silence."""
    t = np.arange(8 * 1024) / 44100
    tone = (0.5 * np.sin(2 * np.pi * 440 * t) * np.exp(-t * 2)).astype(np.float32).reshape(8, 1024)
    mu, logvar = default_codec.encode(tone)
    assert mu.shape == logvar.shape == (8, 256) and mu.dtype == np.float32
    out = default_codec.decode(mu)
    assert out.shape == (8, 1024) and out.dtype == np.float32
    snr = 10 * np.log10(np.sum(tone ** 2) / np.sum((tone - out) ** 2))
    assert snr > 6.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_match_the_torch_module_within_1e5(default_codec, backend):
    codec = load_model(backend=backend, threads=1)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((33, 256)).astype(np.float32)
    x = (rng.standard_normal((17, 1024)) * 0.3).astype(np.float32)
    with torch.inference_mode():
        want_windows = default_codec.module.decode(torch.from_numpy(z)).numpy()
        want_mu, want_logvar = default_codec.module.encode(torch.from_numpy(x))
    np.testing.assert_allclose(codec.decode(z), want_windows, atol=1e-5)
    mu, logvar = codec.encode(x)
    np.testing.assert_allclose(mu, want_mu.numpy(), atol=1e-5)
    np.testing.assert_allclose(logvar, want_logvar.numpy(), atol=1e-5)


def test_a_single_window_or_latent_is_a_batch_of_one(default_codec):
    assert default_codec.decode(np.zeros(256)).shape == (1, 1024)
    assert default_codec.encode(np.zeros(1024))[0].shape == (1, 256)


def test_wrong_shapes_and_options_name_the_value(default_codec, tmp_path):
    with pytest.raises(ParameterError, match=r"\(n, 256\)"):
        default_codec.decode(np.zeros((2, 128)))
    with pytest.raises(ParameterError, match=r"\(n, 1024\)"):
        default_codec.encode(np.zeros((2, 1000)))
    with pytest.raises(ParameterError, match="backend='jax'"):
        load_model(backend="jax")
    with pytest.raises(ParameterError, match="threads=0"):
        load_model(threads=0)


def test_other_sizes_come_from_the_checkpoint(tmp_path):
    config = VAEConfig(window=512, hidden=32, latent=4, sample_rate=16000)
    save_checkpoint(tmp_path / "small" / "model.pt", RawAudioVAE(config), config)
    codec = load_model(tmp_path / "small")
    assert (codec.window, codec.latent_dim, codec.sample_rate) == (512, 4, 16000)
    assert codec.decode(np.zeros((3, 4))).shape == (3, 512)
