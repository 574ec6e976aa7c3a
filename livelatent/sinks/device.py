"""The audio device: finding an output, opening a stream, explaining why it failed.

This is the only module that imports :mod:`sounddevice`, and it does so inside functions:
importing sounddevice fails on a machine without PortAudio, and everything else in livelatent
(rendering to files, training, the tests that need no sound) must work there.

PortAudio lists its devices once, when it is initialised. A JACK server started after that
stays invisible until :func:`refresh` re-initialises PortAudio. A JACK device runs at the
server's sample rate only: a stream at any other rate fails to open.

Examples
--------
>>> print(describe_devices())                      # doctest: +SKIP
  index  name    host API                   outputs  default rate
*     0  system  JACK Audio Connection Kit        2       44100 Hz
>>> find_output_device("jack")                     # doctest: +SKIP
0
"""

from __future__ import annotations

from ..errors import DeviceError

__all__ = [
    "list_output_devices",
    "describe_devices",
    "refresh",
    "find_output_device",
    "open_output_stream",
    "cli_devices",
]

_NO_DEVICES_HINT = ("no audio output devices: is a sound server running? "
                    "For tests: jackd -d dummy -r 44100 -p 1024")


def _sounddevice():
    """Import sounddevice, or say which system library is missing."""
    try:
        import sounddevice
    except OSError as exc:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise DeviceError(
            f"PortAudio is not installed ({exc}): install it, e.g. "
            "`apt-get install libportaudio2`, to play through an audio device; "
            "rendering to a file works without it") from None
    return sounddevice


def _all_devices() -> list[dict]:
    """Every PortAudio device, inputs included, as plain dicts."""
    sd = _sounddevice()
    hostapis = sd.query_hostapis()
    devices = []
    for index, info in enumerate(sd.query_devices()):
        devices.append({
            "index": index,
            "name": info["name"],
            "hostapi": hostapis[info["hostapi"]]["name"],
            "max_output_channels": int(info["max_output_channels"]),
            "default_samplerate": float(info["default_samplerate"]),
        })
    return devices


def _default_output_index() -> int | None:
    """PortAudio's default output device (or the one set in ``sd.default``), if there is one."""
    sd = _sounddevice()
    try:
        index = int(sd.query_devices(kind="output")["index"])
    except (sd.PortAudioError, ValueError):  # no default output device
        return None
    return index if index >= 0 else None


def list_output_devices() -> list[dict]:
    """The devices that can play sound.

    Returns
    -------
    list of dict
        One dict per output device with keys ``index`` (what :func:`find_output_device` and
        ``--device`` accept), ``name``, ``hostapi`` (e.g. ``"JACK Audio Connection Kit"``),
        ``max_output_channels``, ``default_samplerate`` (Hz) and ``is_default``.
    """
    default = _default_output_index()
    return [dict(device, is_default=device["index"] == default)
            for device in _all_devices() if device["max_output_channels"] > 0]


def describe_devices() -> str:
    """A readable table of the output devices, the default one marked with ``*``.

    Returns the "no audio output devices" hint when there are none.
    """
    return _table(list_output_devices())


def _table(devices: list[dict]) -> str:
    if not devices:
        return _NO_DEVICES_HINT
    name_width = max(4, *(len(d["name"]) for d in devices))
    api_width = max(8, *(len(d["hostapi"]) for d in devices))
    lines = [f"  index  {'name':<{name_width}}  {'host API':<{api_width}}  outputs  default rate"]
    for d in devices:
        mark = "*" if d["is_default"] else " "
        lines.append(f"{mark} {d['index']:>5}  {d['name']:<{name_width}}  {d['hostapi']:<{api_width}}"
                     f"  {d['max_output_channels']:>7}  {d['default_samplerate']:>9.0f} Hz")
    return "\n".join(lines)


def refresh() -> None:
    """Re-initialise PortAudio so that devices appearing since import become visible.

    Call it after starting a JACK server (or changing ``JACK_DEFAULT_SERVER``), with no stream
    open: re-initialising PortAudio closes every open stream.
    """
    sd = _sounddevice()
    terminate = getattr(sd, "_terminate", None)
    initialize = getattr(sd, "_initialize", None)
    references = getattr(sd, "_initialized", None)
    if terminate is None or initialize is None or not isinstance(references, int):
        raise DeviceError(f"sounddevice {sd.__version__} cannot rescan audio devices: "
                          "restart Python to see devices added since it started")
    try:
        for _ in range(references):  # Pa_Initialize is reference counted: only the last Pa_Terminate rescans
            terminate()
        initialize()
    except sd.PortAudioError as exc:
        raise DeviceError(f"cannot re-initialise PortAudio: {exc}") from None


def _device_list_message(devices: list[dict]) -> str:
    outputs = [d for d in devices if d["max_output_channels"] > 0]
    if not outputs:
        return _NO_DEVICES_HINT
    lines = ["output devices:"]
    for d in outputs:
        lines.append(f"  {d['index']}: {d['name']!r} ({d['hostapi']}, {d['max_output_channels']} out, "
                     f"{d['default_samplerate']:.0f} Hz)")
    return "\n".join(lines)


def _check_outputs(device: dict, channels: int, devices: list[dict]) -> int:
    have = device["max_output_channels"]
    if have < channels:
        what = "no output channels" if have == 0 else f"only {have} output channel{'s' * (have > 1)}"
        raise DeviceError(f"device {device['index']} {device['name']!r} ({device['hostapi']}) has {what}, "
                          f"{channels} needed; {_device_list_message(devices)}")
    return device["index"]


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

    Returns
    -------
    int
        A PortAudio device index.

    Raises
    ------
    DeviceError
        When nothing matches, or the device has too few outputs; the message lists the
        output devices that exist.

    Examples
    --------
    >>> find_output_device("jack")                 # doctest: +SKIP
    0
    """
    devices = _all_devices()
    if spec is None:
        default = _default_output_index()
        if default is not None and devices[default]["max_output_channels"] >= channels:
            return default
        for d in devices:
            if "jack" in d["hostapi"].lower() and d["name"] == "system" and d["max_output_channels"] >= channels:
                return d["index"]
        if default is not None:
            return _check_outputs(devices[default], channels, devices)
        raise DeviceError(_device_list_message(devices))

    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        index = int(spec)
        if not 0 <= index < len(devices):
            raise DeviceError(f"no audio device with index {index}; {_device_list_message(devices)}")
        return _check_outputs(devices[index], channels, devices)

    if not isinstance(spec, str) or not spec.strip():
        raise DeviceError(f"device must be a name, an index or None, not {spec!r}; "
                          f"{_device_list_message(devices)}")
    wanted = spec.strip().lower()
    exact = [d for d in devices if d["name"].lower() == wanted]
    partial = [d for d in devices if wanted in d["name"].lower() or wanted in d["hostapi"].lower()]
    matches = exact or partial
    if not matches:
        raise DeviceError(f"no output device matches {spec!r}; {_device_list_message(devices)}")
    for d in matches:
        if d["max_output_channels"] >= channels:
            return d["index"]
    return _check_outputs(matches[0], channels, devices)


def open_output_stream(callback, *, device: int | str | None = None, samplerate: float, blocksize: int,
                       channels: int = 2, latency: str | float = "low"):
    """Open (without starting) a float32 output stream on the device ``device`` names.

    Parameters
    ----------
    callback : callable
        ``callback(outdata, frames, time, status)`` as sounddevice defines it; it must fill
        ``outdata`` (frames, channels) and must not allocate, log, block or touch files.
    device : int, str or None
        As :func:`find_output_device` accepts.
    samplerate : float
        Hz. On JACK it must equal the server's rate.
    blocksize : int
        Frames per callback (0 lets the host choose).
    channels : int
    latency : str or float
        ``"low"``, ``"high"`` or seconds.

    Returns
    -------
    sounddevice.OutputStream
        Not started: call ``.start()``, and ``.stop()``/``.close()`` when done.

    Raises
    ------
    DeviceError
        When the device cannot be found or opened; the message gives the host's reason and
        the devices that exist.
    """
    sd = _sounddevice()
    index = find_output_device(device, channels=channels)
    try:
        return sd.OutputStream(device=index, samplerate=samplerate, blocksize=blocksize, channels=channels,
                               dtype="float32", latency=latency, callback=callback)
    except sd.PortAudioError as exc:
        devices = _all_devices()
        info = devices[index]
        reason = exc.args[0] if exc.args else str(exc)
        if len(exc.args) > 2 and exc.args[2] and exc.args[2][2]:
            reason += f" ({exc.args[2][2]})"
        advice = ""
        if "jack" in info["hostapi"].lower():
            advice = (f"; a JACK device runs only at the JACK server's rate "
                      f"({info['default_samplerate']:.0f} Hz here)")
        elif "sample rate" in reason.lower():
            advice = f"; the device's default rate is {info['default_samplerate']:.0f} Hz"
        raise DeviceError(f"cannot open output device {info['name']!r} ({info['hostapi']}) at {samplerate:g} Hz, "
                          f"{channels} channels, blocksize {blocksize}: {reason}{advice}; "
                          f"{_device_list_message(devices)}") from None


def cli_devices(args) -> int:
    """``livelatent devices``: print the output devices; exit 0, or 2 with the reason there are none."""
    del args  # the subcommand has no options
    devices = list_output_devices()
    if not devices:
        raise DeviceError(_NO_DEVICES_HINT)
    print(_table(devices))
    return 0
