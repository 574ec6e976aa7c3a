"""Shared fixtures: a private JACK server standing in for the sound card (see jackutil.py)."""

import os

import pytest

import jackutil


@pytest.fixture
def jack_server(request, tmp_path):
    """A dummy-driver JACK server at 44100 Hz that PortAudio sees as the device ``system``.

    The period is 1024 frames; ``@pytest.mark.parametrize("jack_server", [256], indirect=True)``
    asks for another, and ``[{"rate": 48000}]`` for another rate. Skipped when jackd is not
    installed, except in CI, which installs it.
    """
    if not jackutil.jackd_available():
        message = "jackd is not installed (apt-get install jackd2): no audio device to test against"
        if os.environ.get("CI"):
            pytest.fail(message + "; .ci/run installs it, so CI must not skip this")
        pytest.skip(message)
    asked = getattr(request, "param", 1024)
    options = asked if isinstance(asked, dict) else {"period": asked}
    with jackutil.running_jack_server(log_dir=tmp_path, **options) as server:
        yield server


@pytest.fixture(scope="module")
def sources():
    """Two sources the playing tests tell apart: a 220 Hz tone (3 s) and hiss (2 s). A module
    that needs others defines its own ``sources``."""
    import numpy as np

    from livelatent import source
    t = np.arange(3 * 44100) / 44100
    tone = source((0.5 * np.sin(2 * np.pi * 220 * t)).astype("float32"), name="tone")
    hiss = source((np.random.default_rng(1).normal(0, 0.2, 2 * 44100)).astype("float32"), name="hiss")
    return tone, hiss


def pytest_collection_modifyitems(config, items):
    """A test that plays through a JACK server runs once more when it fails (pytest-rerunfailures:
    the summary counts the reruns). On a shared 2-core machine another process can take the
    core the audio threads need for a moment, which no code of ours can prevent; an engine that
    really underruns, or plays other samples than it renders, fails both runs."""
    for item in items:
        if "jack_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.flaky(reruns=1))


# -- the latent-path tests' notes -------------------------------------------------------------
@pytest.fixture(scope="module")
def four():
    """Four of the default pack's notes: flute, cello, choir, harp."""
    from pathutil import PACK
    from livelatent import source
    return [source(PACK / f"{name}.flac") for name in ("flute", "cello", "choir", "harp")]


@pytest.fixture(scope="module")
def som_dir(tmp_path_factory):
    """A small SOM of eight pack notes (a real map, as performers load theirs)."""
    import shutil
    from pathutil import PACK
    from livelatent.corpus.som import build_som
    folder = tmp_path_factory.mktemp("notes")
    for name in ("flute", "cello", "choir", "harp", "bass", "organ", "guitar", "clarinet"):
        shutil.copy(PACK / f"{name}.flac", folder / f"{name}.flac")
    return build_som(folder, tmp_path_factory.mktemp("maps") / "notes", grid="2x2", progress=False).path
