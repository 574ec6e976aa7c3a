"""What ``train()`` checks before any work starts, and how it tells a run that diverged.

Every setting is checked up front so that a bad one costs a line, not a traceback minutes into a
run: numbers must be finite (``--lr inf`` once trained a whole run of NaN and reported success),
seeds must be what numpy and torch accept, and the model must be small enough to allocate (a
typo such as ``--hidden 1000000000000`` otherwise dies deep in the allocator).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from ..atomic import file_in_the_way
from ..errors import AudioError, ParameterError, check_seed
from ..session.journal import JOURNAL_NAME

__all__ = ["TrainingDiverged", "check_settings", "check_model_size", "diverged",
           "make_output_folder", "corpus_problem", "forget_cache", "MAX_WEIGHT_BYTES"]

MAX_WEIGHT_BYTES = 2_000_000_000   # float32 weights; training holds about 4x this (grads, Adam)
MAX_THREADS_PER_CPU = 4            # --threads: more than this per CPU only slows a run down


class TrainingDiverged(ParameterError):
    """The training loss or the weights became NaN or infinite: the learning rate is too high
    (or the data is broken). Nothing non-finite is saved."""


MAX_LR = 1e30     # a learning rate beyond any that trains (it diverges), below where Adam's step overflows


def _finite(name: str, value, *, low: float, strict: bool, meaning: str) -> None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < low or (strict and number == low):
        raise ParameterError(f"{name}={value!r} must be {meaning}")


def check_model_size(window: int, hidden: int, latent: int) -> None:
    """Refuse sizes whose float32 weights would pass :data:`MAX_WEIGHT_BYTES` (the published
    model's are 23 MB): such a model does not fit in memory, or trains for ever."""
    params = (window * hidden + hidden) + 2 * (hidden * latent + latent) \
        + (latent * hidden + hidden) + (hidden * window + window)
    if 4 * params > MAX_WEIGHT_BYTES:
        raise ParameterError(
            f"window={window}, hidden={hidden}, latent={latent} make {params:,} weights "
            f"({4 * params / 1e9:,.1f} GB in float32, about 4x that to train); the limit is "
            f"{MAX_WEIGHT_BYTES / 1e9:.1f} GB: choose smaller sizes (the published model: "
            f"window 1024, hidden 2048, latent 256)")


def check_settings(*, epochs, batch_size, hop, checkpoint_every, lr, beta, grad_clip, seed,
                   threads) -> None:
    """Every number train() takes that is not part of the model's config (VAEConfig checks its
    own), checked before any audio is read."""
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("hop", hop),
                        ("checkpoint_every", checkpoint_every)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ParameterError(f"{name}={value!r} must be a positive integer")
    _finite("lr", lr, low=0.0, strict=True, meaning="a finite number above 0")
    if float(lr) > MAX_LR:             # (Adam's step overflowed float32: a RuntimeError traceback)
        raise ParameterError(f"lr={lr!r} must be at most {MAX_LR:g} (1e-4 to 1e-3 trains the "
                             f"model; far larger only diverges)")
    _finite("beta", beta, low=0.0, strict=False, meaning="a finite number >= 0")
    if grad_clip is not None:
        _finite("grad_clip", grad_clip, low=0.0, strict=True, meaning="a finite number above 0, or None")
    check_seed(seed)
    most = MAX_THREADS_PER_CPU * (os.cpu_count() or 1)      # (torch crashed at 100000)
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool)
                                or not 1 <= threads <= most):
        raise ParameterError(f"threads={threads!r} must be a whole number from 1 to {most} "
                             f"({MAX_THREADS_PER_CPU} per CPU of this machine)")


def diverged(epoch: int, loss: float | None, lr: float, saved=None) -> TrainingDiverged:
    """The one line a diverged run stops with: ``loss`` the non-finite loss (None: the loss was
    finite but the weights are not); ``saved`` the model.pt this run wrote before, if any."""
    what = ("weights not finite" if loss is None else
            f"loss {'nan' if math.isnan(loss) else 'inf' if math.isinf(loss) else f'{loss:.5g}'}")
    keep = f"; {saved} holds this run's best weights before it" if saved else ""
    return TrainingDiverged(f"training diverged in epoch {epoch} ({what}): start again "
                            f"with a lower --lr (this run: {lr:g}){keep}")


def make_output_folder(output_dir) -> Path:
    """The run's folder, made if needed; a one-line error when a file is in the way."""
    if not str(output_dir).strip():    # (Path("") is the current folder: its files among yours)
        raise ParameterError("-o: give the folder to write the model in")
    output_dir = Path(output_dir)
    blocking = file_in_the_way(output_dir)
    if blocking is not None:
        raise ParameterError(f"-o {output_dir}: {blocking} is a file; give a folder for the model")
    # a pack's model.safetensors loads before the model.pt a run writes: the run would be lost,
    # and the pack's card replaced
    packed = [name for name in ("pack.json", "model.safetensors") if (output_dir / name).is_file()]
    if packed:
        raise ParameterError(f"-o {output_dir} is a model pack (it holds {' and '.join(packed)}, "
                             f"which loads before a model.pt): train into a folder of its own")
    if (output_dir / JOURNAL_NAME).is_file():      # (a set: a model's files among its own)
        raise ParameterError(f"-o {output_dir} is a set (it holds {JOURNAL_NAME}): train into a "
                             f"folder of its own")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ParameterError(f"-o {output_dir}: cannot make the folder ({exc.strerror or exc})") from None
    return output_dir


def corpus_problem(windows: int, data, window: int, hop: int, *, sound: int,
                   held_out: int = 0) -> AudioError | None:
    """What is wrong with a corpus of ``windows`` training windows (``sound``: samples of sound
    in them, padding aside; ``held_out``: usable files all held out for validation), if anything."""
    where = ", ".join(map(str, data))
    if not windows and held_out:      # ("no usable training audio" named the wrong cause)
        return AudioError(f"every usable training file in {where} is held out for validation "
                          f"(--val-files, {held_out} files): give training files that are not "
                          f"among them")
    if not windows:
        return AudioError(f"no usable training audio in {where}")
    if windows < 2:     # nothing to learn from, and the card's PCA baseline needs two windows
        return AudioError(f"only one training window ({window} samples) in {where}: give more or "
                          f"longer audio (at least {window + hop} samples), or a smaller --hop")
    # (four files of one sample each, each padded to a window, were trained on)
    if sound < window + hop:
        return AudioError(f"only {sound} samples of sound in {where}, padded to {windows} "
                          f"windows: give more or longer audio (at least {window + hop} samples)")
    return None


def forget_cache(cache: Path, name: str, output_dir: Path, made: bool) -> None:
    """A new run refused before it trained: the audio cache it wrote (``name``.f32 and .json)
    goes, then the cache folder and the output folder if that leaves them empty and this run
    made the output folder. Nothing else in them is touched."""
    for part in (cache / f"{name}.f32", cache / f"{name}.json"):
        part.unlink(missing_ok=True)
    for folder, mine in ((cache, True), (output_dir, made)):
        if mine:
            try:
                folder.rmdir()          # (only when empty)
            except OSError:
                pass
