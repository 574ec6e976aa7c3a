"""The names a performer types: ``voice``, ``tempo``, ``hush``, ``source``, ``voices``, and the
timed ``at``/``every`` (the :class:`~livelatent.handle.Voice` handle they return is in
:mod:`livelatent.handle`).

A :class:`Performer` holds them bound to one engine: every namespace livelatent builds (the
REPL's, a script's, a pattern file's) takes its names from one, so a thread or a timer started
from a cell acts on the same engine as the cell. The module-level functions act on the default
engine of the context (``with Engine(): voice(...)``).

Everything here runs in the writer's thread. It checks what was typed (so a mistake is a
one-line error, never a stopped sound), encodes sources, and submits commands, which land on a
window boundary.
"""

from __future__ import annotations

import numpy as np

from .context import default_engine
from .curves import Curve, as_curve
from .engine.clock import check_tempo
from .checks import check_curve, check_fade, checked_path
from .engine.commands import AddVoice, Hush, SetTempo, StopVoice, check_quant
from .engine.writers import current_batch
from .errors import ParameterError, is_flag, is_short_name, is_whole
from .handle import Voice
from .paths.nodes import Path
from .paths.plan import warm, with_plan
from .sources import Source, source as make_source
from .strategies import FITS, layout, legacy_stretch, step_values
from .timers import Timer, Timers
from .voice import MAX_KEY, VoiceParams, check_gain, check_out, check_pan

__all__ = ["Performer", "Voice", "voice", "tempo", "hush", "stop", "source", "voices", "at", "every",
           "check_curve"]

REPLACE_FADE_S = 0.05          # a voice given a sounding voice's name replaces it with this fade


DEFAULT_STEPS = (0, 1, 0.2)      # a stepwise voice's amounts when none are given


class Performer:
    """The performer's names, bound to ``engine`` (see the module docstring).

    ``replaying=True``: a replay's names. Timers register nothing there (their changes come
    from the journal).
    """

    def __init__(self, engine, *, replaying: bool = False):
        self.engine = engine
        self.replaying = replaying
        self._timers: Timers | None = None

    def names(self) -> dict:
        """The bound names for a namespace."""
        return {"voice": self.voice, "tempo": self.tempo, "hush": self.hush, "stop": self.stop,
                "source": self.source, "voices": self.voices, "at": self.at, "every": self.every,
                "cue": self.cue}

    def cue(self, v, on: bool = True, *, only: bool = False) -> Voice:
        """Send voice ``v`` to the cue pair (the last two outputs: headphones) as well, to
        pre-listen; ``only=True``: to the cue pair instead of its outputs; ``on=False``: back.
        ``cue(v)``, then ``cue(v, False)`` to bring it in."""
        if not isinstance(v, Voice):
            raise ParameterError(f"cue({v!r}): give a voice handle")
        self._own(v, "cue")
        for flag, value in (("on", on), ("only", only)):
            if not is_flag(value):
                raise ParameterError(f"cue: {flag}={value!r} must be True or False")
        if only:
            channels = self.engine.channels
            if channels < 4:
                raise ParameterError(f"cue: the cue pair is the last two of at least 4 outputs; "
                                     f"this engine has {channels} (start with --channels 4 or more)")
            return v.set(out=(channels - 1, channels) if on else None, cue=False)
        return v.set(cue=bool(on))

    def source(self, audio, *, sample_rate: int | None = None, name: str | None = None) -> Source:
        """A source from a file, several files (concatenated) or an array, at the engine's rate.

        ``source("take.wav")``, ``source(["a.wav", "b.wav"])``, ``source(array, sample_rate=48000)``
        """
        if hasattr(audio, "sorted_by") or isinstance(audio, Path):
            raise ParameterError(f"a {type(audio).__name__.lower()} is not a source here: give "
                                 f"voice(path) for a path, or one source of a corpus")
        if isinstance(audio, Curve):     # voice(a, sine(4)): "samples of type object" before
            raise ParameterError(f"{audio!r} is a curve, not a source: give it as curve=")
        return make_source(audio, sample_rate=sample_rate, name=name, rate=self.engine.sample_rate)

    def voice(self, a, b=None, *, strategy: str = "meso", curve=None, gain: float = 1.0,
              pan: float = 0.0, synth: str = "ola", stretch: float | None = None, steps=DEFAULT_STEPS,
              loop: bool = True, seed: int | None = None, deterministic: bool | None = None,
              name: str | None = None, fit: str = "crop", quant: str = "now",
              noise_key: int | None = None, out=None) -> Voice:
        """Start a voice interpolating from source ``a`` (amount 0) to ``b`` (amount 1), or,
        without ``b``, playing the latent path ``a`` (``plane``, ``along``, ``cloud``,
        ``follow``, or a source alone).

        Parameters
        ----------
        a, b : Source, path, list of paths, or array (``a`` alone: a latent path)
        strategy : {"meso", "stepwise", "extension"}
            The paper's Algorithms 2, 1 and 3.
        curve : Curve, number or function of beats, optional
            The amount; default 0.5 (stepwise: the values of ``steps``, one per pass). It may
            leave [0, 1]: that extrapolates.
        synth : {"ola", "concat"}
            Seamless overlap-add, or the paper's windows end to end.
        stretch : float
            Extension only: how many times longer the sources play (default 4).
        steps : (start, stop, step) or list
            Stepwise only: the amount of each pass.
        loop : bool
            Start again at the end (else the voice ends).
        fit : {"crop", "loop"}
            Sources of different lengths: crop to the shorter, or loop the shorter's latent
            frames (the paper's notebook repeats its samples instead, so in extension the
            windows that straddle the repeat differ from the notebook's).
        seed : int, optional
            Noise seed of this voice (default: from the engine's seed and the voice's number).
        deterministic : bool, optional
            Decode the mean instead of sampling (default: sample, except for a path that
            follows descriptors, whose index measured the mean's decoded windows).
        quant : {"now", "beat", "bar"}
            Start at the next window boundary, beat or bar.
        out : int or (int, int), optional
            Output channels (from 1): a pair the voice is panned over, or one channel; default
            1 and 2. The engine's channels are set when it starts (``--channels 8``).

        >>> v = voice(flute, cello, curve=sine(8))
        """
        engine = self.engine
        check_quant(quant)
        given_stretch, stretch = stretch is not None, 4 if stretch is None else stretch
        if self.replaying:       # older livelatent took "4" and True for a stretch: a journal may
            stretch = legacy_stretch(stretch)                                   # hold them
        lay = layout(strategy, synth, window=engine.window, stretch=stretch)
        if not self.replaying:   # (an option the strategy does not use was taken and unheard)
            for option, given, uses in (("stretch", given_stretch, "extension"),
                                        ("steps", steps is not DEFAULT_STEPS, "stepwise")):
                if given and strategy != uses:
                    article = "an" if strategy.startswith("e") else "a"
                    raise ParameterError(f"{option}= is for {uses} voices; {article} {strategy} "
                                         f"voice would not use it")
        if not isinstance(fit, str) or fit not in FITS:
            raise ParameterError(f"fit={fit!r} must be one of {FITS}")
        if self.replaying:       # older livelatent took True for 1 here: a journal may hold it
            seed, noise_key = (int(x) if isinstance(x, (bool, np.bool_)) else x for x in (seed, noise_key))
        for label, value in (("seed", seed), ("noise_key", noise_key)):
            if value is not None and (not is_whole(value) or not 0 <= value < MAX_KEY):
                raise ParameterError(f"{label}={value!r:.40} must be a whole number from 0 to "
                                     f"2**62 - 1, or None")
        # a switch is True or False: "no" or "x" would silently mean True
        if self.replaying:       # a journal's code older livelatent ran: it read these as bool()
            loop, deterministic = bool(loop), None if deterministic is None else bool(deterministic)
        for label, value, optional in (("loop", loop, False), ("deterministic", deterministic, True)):
            if not (isinstance(value, (bool, np.bool_)) or (optional and value is None)):
                raise ParameterError(f"{label}={value!r} must be True or False"
                                     + (" (or None: the default)" if optional else ""))
        if strategy == "stepwise" and curve is not None and steps is not DEFAULT_STEPS \
                and not self.replaying:         # (the curve played: the steps went unheard)
            raise ParameterError("a stepwise voice plays its steps= or a curve=, not both")
        amounts = step_values(steps)
        path = None
        if callable(getattr(a, "as_path", None)):       # a mapping: where it points now
            a = a.as_path()
        if isinstance(a, Path) and b is not None:
            raise ParameterError(f"voice(path, b): a path plays alone ({a!r}); to move between two "
                                 f"sources give voice(a, b, curve=...)")
        if b is None:
            if strategy == "stepwise" or curve is not None:
                raise ParameterError("a voice of one path takes its movement from the path's own "
                                     "curves: give voice(a, b, curve=...) to move between two "
                                     "sources (stepwise too)")
            path = checked_path(a, output_hop=lay.output_hop, engine=engine)
            leaf = path.sources()[0] if isinstance(path, Path) else path
            if isinstance(path, Source):
                path = None                     # one source alone: a and b the same
            curve_obj = None if path is not None else as_curve(0.0)
            a = b = leaf
        elif curve is None:
            curve_obj = None if strategy == "stepwise" else as_curve(0.5)
        else:
            curve_obj = check_curve(curve, output_hop=lay.output_hop, engine=engine)
        if deterministic is None:
            deterministic = isinstance(path, Path) and path.follows
        gain, pan = check_gain(gain), check_pan(pan)
        out = check_out(out, engine.channels)
        src_a, src_b = self.source(a), self.source(b)
        if path is None:            # latent series' own curves (scrub, offset) checked like a curve
            for src in {id(src_a): src_a, id(src_b): src_b}.values():
                checked_path(src, output_hop=lay.output_hop, engine=engine)
        frames_a = src_a.frames(engine.codec, lay.input_hop)
        frames_b = src_b.frames(engine.codec, lay.input_hop)
        number, replaced = self._number_and_name(name)
        options = {"strategy": strategy, "synth": synth, "stretch": stretch, "steps": steps,
                   "loop": bool(loop), "seed": seed, "deterministic": bool(deterministic), "fit": fit}
        params = VoiceParams(
            index=number, name=name or f"v{number}", a=src_a, b=src_b, frames_a=frames_a,
            frames_b=frames_b, strategy=strategy, synth=synth, layout=lay, curve=curve_obj,
            steps=amounts, loop=bool(loop), fit=fit, seed=None if seed is None else int(seed),
            deterministic=bool(deterministic), gain=gain, pan=pan, good_curve=curve_obj,
            options=options, noise_key=None if noise_key is None else int(noise_key), path=path,
            out=out)
        params = with_plan(params, engine.codec)
        if path is not None and path.follows:
            warm(params, engine.intended().clock)   # its first picks, here rather than on stage
        if replaced is not None:        # the name is the performer's: the new voice takes it over
            batch = current_batch(engine)
            unheard = batch is not None and any(isinstance(c, AddVoice) and c.params.index == replaced
                                                for c in batch.commands)
            if not unheard and quant == "now" and not engine.playing and not self.replaying:
                # offline a call outside a batch lands where the last did, unless a render came
                # between or it lands later (a timer's batch, at its beat)
                lands = max(engine.position, batch.at if batch is not None and batch.at else 0)
                old = engine.intended().voices.get(replaced)
                unheard = old is not None and old.start >= lands
            fade = 0 if unheard else int(REPLACE_FADE_S * engine.sample_rate)   # never heard: no fade
            engine.submit(StopVoice(replaced, fade, quant))
        engine.submit(AddVoice(params, quant))
        return Voice(engine, params)

    def _number_and_name(self, name) -> tuple[int, int | None]:
        """A new voice's number, and the number of the voice it replaces: the one sounding under
        the name it is given (names are unique among the voices that sound). An automatic name
        ``v<number>`` that a loaded or named voice holds is skipped."""
        engine = self.engine
        if name is not None and not is_short_name(name):
            raise ParameterError(f"name={name!r} must be a short printable string")
        sounding = {p.name: p.index for p in engine.intended_voices() if p.stop_at is None}
        number = engine.new_voice_number()
        if name is None:
            while f"v{number}" in sounding:
                number = engine.new_voice_number()
            return number, None
        return number, sounding.get(name)

    def tempo(self, bpm: float | None = None, *, quant: str = "now") -> float:
        """Read the tempo, or change it (beats per minute) now or on the next beat or bar."""
        if bpm is None:
            return self.engine.intended_tempo()
        value = check_tempo(bpm)
        self.engine.submit(SetTempo(value, check_quant(quant)))
        return value

    def voices(self) -> list[Voice]:
        """Handles of the voices playing or about to start, in number order."""
        return [self.handle(p) for p in self.engine.intended_voices()]

    def handle(self, params: VoiceParams) -> Voice:
        """The handle of the voice ``params`` describes."""
        return Voice(self.engine, params)

    def hush(self, fade: float = 0.05, *, quant: str = "now") -> None:
        """Fade every voice out over ``fade`` seconds (voices waiting for their bar never start),
        and drop every timer (``at``, ``every``), which would start or change voices again."""
        samples = int(check_fade(fade) * self.engine.sample_rate)
        self.engine.submit(Hush(samples, check_quant(quant)))
        self.cancel_timers()

    def stop(self, *voices, fade: float = 0.05, quant: str = "now") -> None:
        """Fade the voices named out over ``fade`` seconds: handles, numbers or names.
        ``stop("drift", fade=2)``."""
        samples = int(check_fade(fade) * self.engine.sample_rate)
        check_quant(quant)
        self.engine.submit(*[StopVoice(number, samples, quant) for number in self._numbers(voices)])

    def _own(self, handle: Voice, what: str) -> None:
        """A handle of another engine's voice means nothing here (its number may be one of ours)."""
        if not handle.plays_in(self.engine):
            raise ParameterError(f"{what}({handle!r:.80}): that voice plays in another engine")

    def _numbers(self, voices) -> list[int]:
        wanted = {p.name: p.index for p in self.engine.intended_voices()}      # names are unique
        numbers = []
        for item in voices:
            if isinstance(item, Voice):
                self._own(item, "stop")
                numbers.append(item.number)     # the voice the handle means now (see Voice)
            elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
                if not self.engine.numbers.issued(int(item)):     # (one that ended: nothing to do)
                    playing = ", ".join(f"{number} ({name})" for name, number in wanted.items())
                    raise ParameterError(f"stop({item!r}): no voice ever had that number (playing: "
                                         f"{playing or 'none'})")
                numbers.append(int(item))
            elif isinstance(item, str) and item in wanted:
                numbers.append(wanted[item])
            else:
                raise ParameterError(f"stop({item!r}): give voices, their numbers or their names "
                                     f"(playing: {', '.join(wanted) or 'none'})")
        return numbers

    # -- timed changes -------------------------------------------------------------------------
    def at(self, beat: float, fn) -> Timer:
        """Run ``fn()`` just before ``beat`` (beats since the engine started); what it changes
        lands exactly on that beat. ``at(16, lambda: v.set(curve=tri(2)))``. Returns a
        :class:`~livelatent.timers.Timer` (``t.cancel()``)."""
        if self.replaying or self.engine.sealed:
            return Timer()
        return self._timer_service().at(beat, fn)

    def every(self, beats: float, fn, *, start: float | None = None, times: int | None = None) -> Timer:
        """Run ``fn()`` every ``beats`` beats (from ``start``, default the next multiple of
        ``beats``), ``times`` times, until cancelled (``t.cancel()``, ``hush()``) or until the
        engine stops; its changes land on the beat."""
        if self.replaying or self.engine.sealed:
            return Timer()
        return self._timer_service().every(beats, fn, start=start, times=times)

    def cancel_timers(self) -> None:
        """Drop every ``at``/``every`` of this engine."""
        timers = self._timers or Timers.existing(self.engine)
        if timers is not None:
            timers.cancel()

    def _timer_service(self) -> Timers:
        if self._timers is None:
            self._timers = Timers.of(self.engine)
        return self._timers


# -- the default engine's names ----------------------------------------------------------------
def _performer() -> Performer:
    return Performer(default_engine())


def voice(a, b=None, **options) -> Voice:
    """:meth:`Performer.voice` on the default engine."""
    return _performer().voice(a, b, **options)


def tempo(bpm: float | None = None, *, quant: str = "now") -> float:
    """:meth:`Performer.tempo` on the default engine."""
    return _performer().tempo(bpm, quant=quant)


def hush(fade: float = 0.05, *, quant: str = "now") -> None:
    """:meth:`Performer.hush` on the default engine."""
    _performer().hush(fade, quant=quant)


def stop(*voices, fade: float = 0.05, quant: str = "now") -> None:
    """:meth:`Performer.stop` on the default engine."""
    _performer().stop(*voices, fade=fade, quant=quant)


def voices() -> list[Voice]:
    """:meth:`Performer.voices` on the default engine."""
    return _performer().voices()


def source(audio, *, sample_rate: int | None = None, name: str | None = None) -> Source:
    """A source (see :func:`livelatent.sources.source`) at the default engine's rate, or the
    default rate when there is none."""
    return make_source(audio, sample_rate=sample_rate, name=name)


def at(beat: float, fn) -> Timer:
    """:meth:`Performer.at` on the default engine."""
    return _performer().at(beat, fn)


def every(beats: float, fn, **options) -> Timer:
    """:meth:`Performer.every` on the default engine."""
    return _performer().every(beats, fn, **options)
