"""The audio devices: listing them, and finding the output a performer names.

PortAudio never runs in livelatent's own process: a stream is played by the audio process
(:mod:`livelatent.engine.audio_process`), and the devices are listed by a short-lived one. So
a JACK server started a moment ago is always seen (PortAudio lists its devices when it starts),
and no PortAudio state can outlive the server it talked to in this process. A JACK device runs
at the server's sample rate only.

Examples
--------
>>> print(describe_devices())                      # doctest: +SKIP
  index  name    host API                   outputs  default rate
*     0  system  JACK Audio Connection Kit        2       44100 Hz
>>> find_output_device("jack")                     # doctest: +SKIP
0
"""

from __future__ import annotations

from ..engine.audio_process import MatchError, describe_match_failure, match_device
from ..engine.output import list_devices
from ..errors import DeviceError, DeviceNotFound

__all__ = ["list_output_devices", "describe_devices", "find_output_device", "cli_devices"]


def _listing() -> dict:
    return list_devices()


def list_output_devices() -> list[dict]:
    """The devices that can play sound.

    Returns
    -------
    list of dict
        One dict per output device with keys ``index`` (what :func:`find_output_device` and
        ``--device`` accept), ``name``, ``hostapi`` (e.g. ``"JACK Audio Connection Kit"``),
        ``max_output_channels``, ``max_input_channels``, ``default_samplerate`` (Hz) and
        ``is_default``.
    """
    listing = _listing()
    return [dict(device, is_default=device["index"] == listing["default"])
            for device in listing["devices"] if device["max_output_channels"] > 0]


def describe_devices() -> str:
    """A readable table of the output devices, the default one marked with ``*``.

    Returns the "no audio output devices" hint when there are none.
    """
    return _table(list_output_devices())


def _table(devices: list[dict]) -> str:
    if not devices:
        return describe_match_failure([])
    name_width = max(4, *(len(d["name"]) for d in devices))
    api_width = max(8, *(len(d["hostapi"]) for d in devices))
    lines = [f"  index  {'name':<{name_width}}  {'host API':<{api_width}}  outputs  default rate"]
    for d in devices:
        mark = "*" if d["is_default"] else " "
        lines.append(f"{mark} {d['index']:>5}  {d['name']:<{name_width}}  {d['hostapi']:<{api_width}}"
                     f"  {d['max_output_channels']:>7}  {d['default_samplerate']:>9.0f} Hz")
    return "\n".join(lines)


def find_output_device(spec: int | str | None = None, *, channels: int = 2) -> int:
    """The index of the output device that ``spec`` names.

    Parameters
    ----------
    spec : int, str or None
        ``None``: the default output device, else JACK's ``system`` device if a JACK server
        is running. An int or a string of digits: that device index. Any other string: the
        first device whose name or host API name contains it, case-insensitively
        (``"system"``, ``"jack"``, ``"pulse"``); an exact device name wins.
    channels : int
        Output channels the stream needs.

    Raises
    ------
    DeviceError
        When nothing matches, or the device has too few outputs; the message lists the
        output devices that exist.
    """
    listing = _listing()
    if not any(d["max_output_channels"] > 0 for d in listing["devices"]):
        asked = "" if spec is None else f"no output device matches {spec!r}: "
        raise DeviceError(asked + describe_match_failure([]))
    try:
        return match_device(listing["devices"], spec, channels=channels,
                            default=listing["default"])["index"]
    except MatchError as exc:
        raise DeviceNotFound(f"{exc}; {describe_match_failure(listing['devices'])}") from None


def cli_devices(args) -> int:
    """``livelatent devices``: print the output devices; exit 0, or 2 with the reason there are none."""
    del args  # the subcommand has no options
    devices = list_output_devices()
    if not devices:
        raise DeviceError(describe_match_failure([]))
    print(_table(devices))
    return 0
