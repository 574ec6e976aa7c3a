"""Shared fixtures: a private JACK server standing in for the sound card (see jackutil.py)."""

import os

import pytest

import jackutil


@pytest.fixture
def jack_server(request, tmp_path):
    """A dummy-driver JACK server at 44100 Hz that PortAudio sees as the device ``system``.

    The period is 1024 frames; ``@pytest.mark.parametrize("jack_server", [256], indirect=True)``
    asks for another. Skipped when jackd is not installed, except in CI, which installs it.
    """
    if not jackutil.jackd_available():
        message = "jackd is not installed (apt-get install jackd2): no audio device to test against"
        if os.environ.get("CI"):
            pytest.fail(message + "; .ci/run installs it, so CI must not skip this")
        pytest.skip(message)
    period = getattr(request, "param", 1024)
    with jackutil.running_jack_server(period=period, log_dir=tmp_path) as server:
        yield server
