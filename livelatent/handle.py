"""The :class:`Voice` handle: what a performer holds to change or stop a voice.

A handle means a voice by number, and follows a newer voice with its name once its own is gone
(a ``load()``, a voice given its name): what ``v.curve = ...`` changes is what the performer
sees playing under that name. Reading it reads the engine's published snapshots.
"""

from __future__ import annotations

import numpy as np

from .checks import check_curve, check_fade, checked_path
from .engine.blocks import block_channels
from .engine.commands import SetVoice, StopVoice, check_quant
from .errors import ParameterError, is_flag, is_whole
from .paths.nodes import Path
from .paths.plan import with_plan
from .sources import source as make_source
from .voice import VoiceParams, check_gain, check_out, check_pan

__all__ = ["Voice", "VoiceNow"]

_UNSET = object()
# what a performer may assign on a handle (``v.gain = 0.5``); everything else a typo would set
# a new attribute and change nothing, so it is refused
SETTINGS = ("curve", "gain", "pan", "a", "b", "out", "path")


class Voice:
    """A voice. Assign ``curve``, ``gain``, ``pan``, ``a``, ``b``, ``out`` or (a path voice's)
    ``path`` to change it; anything else assigned is refused.

    >>> v = voice(flute, cello, curve=sine(8))
    >>> v.curve = tri(4)                  # at the next window boundary
    >>> v.set(curve=saw(2), quant="bar")  # on the next bar
    >>> v.stop(fade=2)
    """

    def __init__(self, engine, params: VoiceParams):
        self._engine = engine
        self._params = params            # as last seen: what it was, once it has ended
        self._number = params.index
        self._name = params.name         # the handle follows a newer voice with this name

    @property
    def number(self) -> int:
        """The number of the voice this handle means now (see :meth:`_follow`)."""
        self._follow()
        return self._number

    index = property(lambda self: self.number)

    def plays_in(self, engine) -> bool:
        """Whether this handle is one of ``engine``'s voices (not another engine's)."""
        return self._engine is engine
    name = property(lambda self: self._name)

    # the performer's view of the voice
    curve = property(lambda self: self.params.curve, lambda self, v: self.set(curve=v))
    gain = property(lambda self: self.params.gain, lambda self, v: self.set(gain=v))
    pan = property(lambda self: self.params.pan, lambda self, v: self.set(pan=v))
    out = property(lambda self: self.params.out, lambda self, v: self.set(out=v))
    a = property(lambda self: self.params.a, lambda self, v: self.set(a=v))
    b = property(lambda self: self.params.b, lambda self, v: self.set(b=v))
    path = property(lambda self: self.params.path, lambda self, v: self.set(path=v))
    strategy = property(lambda self: self.params.strategy)
    synth = property(lambda self: self.params.synth)

    def __setattr__(self, attribute: str, value) -> None:
        if attribute.startswith("_") or attribute in SETTINGS:
            object.__setattr__(self, attribute, value)
            return
        settable = ", ".join(SETTINGS)
        if isinstance(getattr(type(self), attribute, None), property):
            raise ParameterError(f"voice {self.name}: {attribute} cannot be set (settings: "
                                 f"{settable}; start a new voice to change the rest)")
        import difflib                  # (only for this error: not at every start-up)
        close = difflib.get_close_matches(attribute, SETTINGS, n=1)
        hint = f"did you mean v.{close[0]}? " if close else ""
        raise ParameterError(f"voice {self.name} has no setting {attribute!r}: {hint}its settings "
                             f"are {settable} (v.set(...) changes several at once)")

    def _follow(self) -> VoiceParams | None:
        """The voice this handle means now, as the performer last asked: its own, or, once that
        one is gone or going, a newer voice with its name (a ``load()``, or a new voice given
        the name) which the handle follows from then on. None: gone, and no voice has its name."""
        voices = self._engine.intended().voices
        mine = voices.get(self._number)
        if mine is None or mine.stop_at is not None:
            newer = [p for p in voices.values()
                     if p.name == self.name and p.index > self._number and p.stop_at is None]
            if newer:
                mine = min(newer, key=lambda p: p.index)
                self._number = mine.index
        if mine is not None:
            self._params = mine
        return mine

    @property
    def params(self) -> VoiceParams:
        """What the voice plays, as the performer last asked (changes waiting for their bar,
        and this writer's open batch, included); once it has ended, what it last played."""
        self._follow()
        return self._params

    @property
    def state(self) -> str:
        """``"playing"``, ``"starting"`` (waiting for its beat), ``"fading"`` or ``"stopped"``:
        what the listener hears of it now."""
        wanted = self._follow()
        engine = self._engine
        heard = engine.heard().score.voices.get(self._number)
        if heard is None:
            return "starting" if wanted is not None and wanted.stop_at is None else "stopped"
        if heard.stop_at is None or engine.position < heard.stop_at:
            return "playing"
        return "fading"

    @property
    def playing(self) -> bool:
        """Whether it sounds now (fading out counts; waiting for its beat does not)."""
        return self.state in ("playing", "fading")

    def set(self, *, curve=_UNSET, gain=_UNSET, pan=_UNSET, a=_UNSET, b=_UNSET, path=_UNSET,
            out=_UNSET, cue=_UNSET, quant: str = "now") -> "Voice":
        """Change several things at once, at the next window boundary, beat or bar.

        Returns the voice, so the REPL shows what it will play.
        """
        check_quant(quant)
        engine = self._engine
        changes = {}
        params = self._follow()
        if params is None:
            raise ParameterError(f"voice {self.name} has stopped and no voice is called "
                                 f"{self.name!r} now; start one with voice(...)")
        if params.path is not None and (curve is not _UNSET or a is not _UNSET or b is not _UNSET):
            raise ParameterError(f"voice {self.name} plays a path ({params.path!r}): change it with "
                                 f"v.path = ... (its curves are the path's)")
        if path is not _UNSET:
            if params.path is None:
                raise ParameterError(f"voice {self.name} moves between two sources: set its curve, "
                                     f"a or b, or start a path voice with voice(plane(...))")
            changes["path"] = checked_path(path, output_hop=params.layout.output_hop, engine=engine)
            if not isinstance(changes["path"], Path):      # (a source alone plays as a and b)
                raise ParameterError(f"v.path = {path!r:.60}: a source is not a path; voice "
                                     f"{self.name} plays a path (plane, along, cloud, follow): "
                                     f"to play the source alone, start voice(source)")
        if curve is not _UNSET:
            changes["curve"] = check_curve(curve, output_hop=params.layout.output_hop, engine=engine)
        if gain is not _UNSET:
            changes["gain"] = check_gain(gain)
        if pan is not _UNSET:
            changes["pan"] = check_pan(pan)
        if out is not _UNSET:
            changes["out"] = check_out(out, engine.channels)
        if cue is not _UNSET:
            if not is_flag(cue):
                raise ParameterError(f"cue={cue!r} must be True or False")
            if cue and engine.channels < 4:
                raise ParameterError(f"cue: the cue pair is the last two of at least 4 outputs; this "
                                     f"engine has {engine.channels} (start with --channels 4 or more)")
            changes["cue"] = bool(cue)
        for role, value in (("a", a), ("b", b)):
            if value is not _UNSET:
                if hasattr(value, "sorted_by"):
                    raise ParameterError(f"v.{role} = a corpus: give one of its sources")
                if isinstance(value, Path):                # (read as an array of objects)
                    raise ParameterError(f"v.{role} = a path ({value!r:.60}): a and b are sources; "
                                         f"a path plays in a voice of its own, voice(path)")
                src = make_source(value, rate=engine.sample_rate)
                checked_path(src, output_hop=params.layout.output_hop, engine=engine)
                changes[role] = src
                changes[f"frames_{role}"] = src.frames(engine.codec, params.layout.input_hop)
        if {"a", "b", "path", "curve"} & set(changes):
            changes["plan"] = with_plan(params.changed(**changes), engine.codec).plan
        if changes:
            engine.submit(SetVoice(self._number, changes, quant))
        return self

    def now(self) -> "VoiceNow":
        """Where the voice is in the latent space: the (mean, log-variance) of a window, before
        sampling. As a mapping's target (``m.add(v.now())``) it is read at the sample where the
        cell lands; unpacked (``mu, logvar = v.now()``) or shown, where the listener is."""
        if self.params.plan is None:
            raise ParameterError(f"voice {self.name!r} has no latent point yet")
        return VoiceNow(self)

    def point_at(self, sample: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The (mean, log-variance) of the window the voice plays at ``sample`` (default: where
        the listener is)."""
        params = self.params
        if params.plan is None:
            raise ParameterError(f"voice {self.name!r} has no latent point yet")
        engine = self._engine
        if sample is not None and not (is_whole(sample) and 0 <= sample < 2 ** 62):
            raise ParameterError(f"point_at({sample!r:.40}): give an engine sample (a whole number "
                                 f"from 0 to 2**62 - 1)")
        sample = engine.position if sample is None else int(sample)
        k = max(0, (sample - params.start) // params.layout.output_hop)
        channels, _ = block_channels(params, np.array([k], dtype=np.int64), engine.clock)
        plan, frame = params.plan, k % max(1, params.plan.length)
        point = np.zeros(2 * engine.codec.latent_dim)
        for j, frames in enumerate(plan.frames):
            column = plan.index_column[j]
            index = int(channels[0, column]) if column >= 0 else frame % len(frames)
            index = min(max(index, 0), len(frames) - 1)
            point += channels[0, j] * np.concatenate([frames.mu[index], frames.logvar[index]])
        return point[:engine.codec.latent_dim], point[engine.codec.latent_dim:]

    def stop(self, fade: float = 0.05, *, quant: str = "now") -> "Voice":
        """Fade out over ``fade`` seconds, then stop (a voice waiting for its bar never
        starts). Returns the voice."""
        fade = check_fade(fade)
        engine = self._engine
        check_quant(quant)
        if self._follow() is not None:          # stopping a voice that has stopped does nothing
            engine.submit(StopVoice(self._number, int(fade * engine.sample_rate), quant))
        return self

    def __repr__(self) -> str:
        p = self.params
        if p.path is not None:
            return (f"<Voice {p.name!r} {self.state}: {p.path!r}, {p.strategy}/{p.synth}, "
                    f"gain={p.gain:g}, pan={p.pan:g}>")
        curve = repr(p.curve) if p.curve is not None else f"steps {list(np.round(p.steps, 3))}"
        return (f"<Voice {p.name!r} {self.state}: {p.a.name} -> {p.b.name}, {p.strategy}/{p.synth}, "
                f"curve={curve}, gain={p.gain:g}, pan={p.pan:g}>")


class VoiceNow:
    """``v.now()``: where a voice is, read when it is used (see :meth:`Voice.now`)."""

    def __init__(self, voice: Voice):
        self.voice = voice

    def at(self, sample: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        return self.voice.point_at(sample)

    def __iter__(self):
        return iter(self.at())

    def __getitem__(self, index):
        return self.at()[index]

    def __len__(self) -> int:
        return 2

    def __repr__(self) -> str:
        mu, _ = self.at()
        return f"<{self.voice.name}.now(): mean {np.round(mu[:3], 3).tolist()}..., {mu.size} dims>"
