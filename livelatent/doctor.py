"""``livelatent doctor``: the rig on one screen, before a show or when something is wrong.

Each line is one check, ``ok``, ``--`` (absent, and what that costs) or ``!!`` (broken, and
the fix): PortAudio and its host APIs, the output and input devices with their channels and
rates, whether a JACK server runs, the BLAS numpy uses and its threads, whether torch is
installed, and the default pack in one line. Nothing here plays a sound or imports torch.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import shutil
import subprocess
import sys

from . import __version__
from .config import DEFAULT_MODEL_DIR
from .errors import LiveLatentError

__all__ = ["checks", "cli_doctor"]


def _portaudio() -> list[str]:
    from .engine.output import list_devices
    try:
        listed = list_devices()
    except LiveLatentError as exc:
        return [f"!! PortAudio: {exc}"]
    lines = [f"ok PortAudio: {listed.get('portaudio', '?')}; host APIs: "
             f"{', '.join(listed.get('hostapis', [])) or 'none'}"]
    devices = listed.get("devices", [])
    default = listed.get("default")
    if not devices:
        lines.append("-- no audio devices: livelatent renders to files (`livelatent demo` does)")
    for device in devices:
        channels = []
        if device["max_output_channels"]:
            channels.append(f"{device['max_output_channels']} out")
        if device["max_input_channels"]:
            channels.append(f"{device['max_input_channels']} in")
        mark = " (default output)" if device["index"] == default else ""
        lines.append(f"   {device['index']:>2}: {device['name']!r} ({device['hostapi']}, "
                     f"{', '.join(channels) or 'no channels'}, {device['default_samplerate']:g} Hz){mark}")
    return lines


def _jack() -> str:
    tool = shutil.which("jack_lsp")
    if tool is None:
        return "-- JACK: not installed (jackd2 provides it; PortAudio's other host APIs still play)"
    try:
        done = subprocess.run([tool], capture_output=True, text=True, timeout=5,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return "!! JACK: jack_lsp did not answer"
    if done.returncode == 0:
        ports = [line for line in done.stdout.splitlines() if line.strip()]
        return f"ok JACK: a server is running ({len(ports)} ports)"
    return "-- JACK: installed, no server running (start one: jackd -d alsa, or qjackctl)"


def _blas() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "-- BLAS: threadpoolctl is not installed, cannot tell"
    import numpy  # noqa: F401  (loads its BLAS, so threadpoolctl sees it)
    found = [f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads)"
             for p in threadpool_info() if p.get("user_api") == "blas"]
    return f"ok BLAS: {'; '.join(found)}" if found else "-- BLAS: none found"


def _torch() -> str:
    try:
        spec = importlib.util.find_spec("torch")
    except ValueError:            # imported and removed (sys.modules["torch"] = None)
        spec = None
    if spec is None:
        return ("-- torch: not installed; playing, rendering, sets and maps need none; training "
                "and .pt checkpoints do: pip install 'livelatent[train]'")
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return f"ok torch {version} (training, .pt checkpoints)"


def _pack() -> str:
    card = DEFAULT_MODEL_DIR / "card.md"
    if not card.exists():
        return f"!! default pack: missing at {DEFAULT_MODEL_DIR}; reinstall livelatent"
    from .model.codec import load_model
    try:
        codec = load_model()
    except LiveLatentError as exc:
        return f"!! default pack: {exc}"
    title = next((line.lstrip("# ").strip() for line in card.read_text(encoding="utf-8").splitlines()
                  if line.startswith("# ")), "default pack")
    sources = DEFAULT_MODEL_DIR / "sources"
    count = len(list(sources.glob("*.flac"))) if sources.is_dir() else 0
    c = codec.config
    return (f"ok {title}: window {c.window}, latent {c.latent}, {c.sample_rate} Hz, {count} demo "
            f"sources, weights {codec.content_hash[:12]} ({DEFAULT_MODEL_DIR})")


def checks() -> list[str]:
    """Every line of the report."""
    lines = [f"livelatent {__version__}, Python {platform.python_version()} ({sys.executable}), "
             f"{platform.system()} {platform.machine()}"]
    lines += _portaudio()
    lines += [_jack(), _blas(), _torch(), _pack()]
    return lines


def cli_doctor(args) -> int:
    """``livelatent doctor``: print the report; exit 1 when a check is broken."""
    del args
    lines = checks()
    print("\n".join(lines))
    return 1 if any(line.startswith("!!") for line in lines) else 0
