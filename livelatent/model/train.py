"""Training a RawAudioVAE: the loop behind ``livelatent train DATA... -o models/NAME``.

Audio files (any rate, any channels) are read as mono at the model's rate into a cache on disk
(:mod:`.data`: a library larger than memory trains without being loaded whole), cut into windows
at ``hop`` samples and shuffled every epoch. Validation is split *by file*. Every
``checkpoint_every`` epochs a resumable training state (``train_state.pt``: model, optimiser,
scheduler, epoch, RNG state) is written atomically, so an interrupted run loses at most the
epochs since then; the weights with the lowest validation loss are kept as the pack's
``model.pt``. At the end the held-out files are reconstructed the way the paper does and the
metrics, next to a PCA baseline of the latent's dimensionality and silence, go into
``card.md``. With ``--nproc`` (or under torchrun) the same loop runs on several processes with
DistributedDataParallel, taking the same steps (:mod:`.distributed`).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..atomic import atomic_path
from ..audio import list_audio_files
from ..errors import ParameterError
from . import ranks as group
from .card import write_card
from .checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from .data import cache_audio, corpus_of, describe_files, open_cache, split_files
from .evaluation import evaluate, validation_loss
from .train_checks import (TrainingDiverged, check_model_size, check_settings, corpus_problem,
                           diverged, forget_cache, make_output_folder)
from .train_state import TRAIN_STATE_NAME, check_resumable, restore, save_state_file
from .warmstart import pca_warm_start
from .vae import RawAudioVAE, VAEConfig, vae_loss

__all__ = ["train", "TRAIN_STATE_NAME", "LR_SCHEDULES"]

CACHE_FOLDER = "cache"          # the training audio, read once (see .data)
LR_SCHEDULES = ("cosine", "step", "constant")
INITS = ("pca", "random")
_WARM_START_WINDOWS = 100_000   # windows the warm start's PCA is fit on (spread over the corpus)


# -- schedule, device, state ------------------------------------------------------------------

def _lr_factor(schedule: str, step: int, total_steps: int) -> float:
    progress = min(1.0, step / max(1, total_steps))
    if schedule == "constant":
        return 1.0
    if schedule == "step":          # the original recipe: lr, then lr / 10 for the last 40%
        return 1.0 if progress < 0.6 else 0.1
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))     # cosine down to lr / 100


def _step_noise(seed: int, epoch: int, step: int, windows: int, latent: int) -> torch.Tensor:
    """The sampled latent's noise for a step's global batch: a function of (seed, epoch, step),
    so each process takes its windows' rows and a step is the same on any number of processes
    (and after a resume)."""
    key = int(np.random.SeedSequence([seed, epoch, step]).generate_state(1, np.uint64)[0] >> 1)
    return torch.randn(windows, latent, generator=torch.Generator().manual_seed(key))


# -- the loop ---------------------------------------------------------------------------------

def train(data, output_dir, *, epochs: int = 20, batch_size: int = 256, lr: float = 1e-3,
          lr_schedule: str = "cosine", hop: int = 128, window: int = 1024, hidden: int = 2048,
          latent: int = 256, beta: float = 1e-4, sample_rate: int = 44100, val_fraction: float = 0.1,
          val_files=None, checkpoint_every: int = 1, resume: bool = False, device: str = "auto",
          threads: int | None = None, seed: int = 0, float16: bool = False,
          bf16: bool = False, grad_clip: float | None = 1.0, init: str = "pca",
          progress: bool = True) -> dict:
    """Train a RawAudioVAE on audio files or folders and write a model pack folder.

    Parameters
    ----------
    data : path or list of paths
        Audio files or folders (searched recursively); any rate, any channel count.
    output_dir : path
        The model folder: ``model.pt`` (best weights), ``train_state.pt`` (resumable state),
        ``card.md`` and ``summary.json``.
    epochs, batch_size, lr, lr_schedule
        Adam with a ``"cosine"`` (to lr/100), ``"step"`` (lr/10 for the last 40%) or
        ``"constant"`` learning rate, stepped per batch.
    hop : int
        Samples between the starts of training windows (128 as the original).
    window, hidden, latent, beta, sample_rate
        The model's :class:`VAEConfig`.
    val_fraction, val_files
        Validation split *by file*: a seeded fraction of the files, or these files/folders.
        The validation files are the held-out set the card's metrics are measured on.
    checkpoint_every : int
        Write ``train_state.pt`` every this many epochs (and the last).
    resume : bool
        Continue the run saved in ``output_dir``, at its own learning rate (``lr`` is not taken).
    device : {"auto", "cpu", "cuda"}
    threads : int or None
        torch CPU threads for this process (None leaves torch's setting).
    seed : int
        Seeds the split, the initial weights, the shuffling and the sampling.
    float16 : bool
        Store ``model.pt`` in float16 (half the size; the card's metrics are measured on it).
    bf16 : bool
        Run the forward pass under bfloat16 autocast (weights, optimiser, loss, validation and
        the card's metrics stay float32): about 1.7x faster on CPUs with AVX-512 BF16.
    init : {"pca", "random"}
        Start from the PCA of the training windows (see :mod:`livelatent.model.warmstart`: on a
        CPU it reaches in minutes what random weights need many epochs for) or from random weights.
    grad_clip : float or None
        Clip each step's gradient norm to this (None: no clipping). Normal steps are far below 1:
        it stops the rare logvar spike whose exploding gradient would undo epochs of training.
    progress : bool or "lines"
        Show a tqdm progress bar with the loss (True), plain lines every tenth of an epoch for
        a log or a pipe ("lines"), or nothing but the epochs' results (False).

    Returns
    -------
    dict
        The training summary also stored in ``model.pt`` and ``summary.json``.

    >>> train(["samples/"], "models/mine", epochs=10)["metrics"]["model"]["snr_db"]  # doctest: +SKIP
    """
    started = time.time()
    check_settings(epochs=epochs, batch_size=batch_size, hop=hop, checkpoint_every=checkpoint_every,
                   lr=lr, beta=beta, grad_clip=grad_clip, seed=seed, threads=threads)
    if init not in INITS:
        raise ParameterError(f"init={init!r} must be one of {INITS}")
    if lr_schedule not in LR_SCHEDULES:
        raise ParameterError(f"lr_schedule={lr_schedule!r} must be one of {LR_SCHEDULES}")
    config = VAEConfig(window=window, hidden=hidden, latent=latent, sample_rate=sample_rate, beta=beta)
    check_model_size(window, hidden, latent)
    if threads is not None:
        torch.set_num_threads(threads)
    ranks = group.from_environment()
    dev = group.device_for(device, ranks.local_rank if ranks else 0)
    if ranks is not None:
        group.join(ranks, dev.type)
        if threads is None and dev.type == "cpu":     # the processes here share the cores
            local = int(os.environ.get("LOCAL_WORLD_SIZE", ranks.world))
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))
    main = ranks is None or ranks.main
    progress = progress if main else False
    if resume:                             # before anything is made or read
        check_resumable(Path(output_dir) / TRAIN_STATE_NAME)
    made = not os.path.exists(output_dir)
    output_dir = make_output_folder(output_dir)
    state_path = output_dir / TRAIN_STATE_NAME

    data = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    files = list_audio_files(*data)
    if progress:
        print(f"livelatent train: reading {len(files)} audio files", file=sys.stderr, flush=True)
    held = list_audio_files(*val_files) if val_files else []
    everything = list(dict.fromkeys(files + held))
    cache = output_dir / CACHE_FOLDER
    if ranks is None or ranks.local_rank == 0:    # one process a machine reads the audio; the
        cache_audio(everything, cache, "audio", sample_rate=sample_rate, window=window,  # others
                    label="input", progress=bool(progress))                         # map it
    group.barrier(ranks)
    index, audio = open_cache(cache, "audio")
    cached, given = set(index["files"]), set(files)
    # split the usable files, so a broken file does not shrink validation
    train_files, val_paths = split_files([p for p in everything if str(p) in cached and p in given],
                                         val_fraction, val_files, seed)
    val_paths = [p for p in val_paths if str(p) in cached]
    corpus = corpus_of(index, audio, train_files, window=window, hop=hop)
    validation = corpus_of(index, audio, val_paths, window=window, hop=hop)
    problem = corpus_problem(len(corpus), data, window, hop, sound=int(sum(corpus.durations)),
                             held_out=0 if train_files else sum(p in given for p in val_paths))
    if problem is not None:
        if not resume and (ranks is None or ranks.local_rank == 0):    # (a resumed run's is
            forget_cache(cache, "audio", output_dir, made)              # the stopped run's)
        raise problem
    world = ranks.world if ranks else 1
    sampler = group.DistributedWindowSampler(len(corpus), batch_size, seed=seed,
                                                   rank=ranks.rank if ranks else 0, world=world)
    steps_per_epoch = len(sampler)
    total_steps = steps_per_epoch * epochs

    settings = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "lr_schedule": lr_schedule,
                "hop": hop, "val_fraction": val_fraction, "seed": seed, "float16": float16,
                "checkpoint_every": checkpoint_every, "device": str(dev), "bf16": bf16,
                "grad_clip": grad_clip, "init": init, "processes": world,
                "threads": torch.get_num_threads()}

    torch.manual_seed(seed)
    model = RawAudioVAE(config).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _lr_factor(lr_schedule, step, total_steps))
    first_epoch, best_val, history, elapsed_before = 0, math.inf, [], 0.0
    file_list = sorted(str(p) for p in corpus.files)

    if resume:
        first_epoch, best_val, history, elapsed_before = restore(
            state_path, config=config, train_files=file_list, model=model, optimizer=optimizer,
            scheduler=scheduler, device=dev, held=sorted(str(p) for p in val_paths))
        lr = settings["lr"] = optimizer.param_groups[0]["initial_lr"]   # (the run's, not --lr)
        if main:
            print(f"livelatent train: resuming {output_dir} after epoch {first_epoch}, at its own "
                  f"--lr {settings['lr']:g}" + (f", on {world} processes" if world > 1 else ""),
                  file=sys.stderr)
            if first_epoch >= epochs:        # (a run stopped after its last epoch: finished here)
                print(f"livelatent train: --epochs {epochs}, and epoch {first_epoch} is done: nothing "
                      f"to train; it is evaluated and its card written again", file=sys.stderr)
    elif state_path.exists() and main:
        print(f"livelatent train: starting over; the previous run's state in {output_dir} "
              f"will be overwritten (use --resume to continue it)", file=sys.stderr)
    if not resume and init == "pca":
        if len(corpus) > latent and hidden >= 2 * latent:
            picks = np.linspace(0, len(corpus) - 1, min(len(corpus), _WARM_START_WINDOWS)).astype(np.int64)
            settings.update(pca_warm_start(model, corpus.windows(picks)))
        else:
            if main:
                print(f"livelatent train: too few windows ({len(corpus)}) or hidden units for a PCA "
                      f"warm start; starting from random weights", file=sys.stderr)
            settings["init"] = "random"

    data_summary = {"train": describe_files(corpus.files, corpus.durations, sample_rate),
                    "validation": describe_files(validation.files, validation.durations, sample_rate),
                    "windows_per_epoch": len(corpus)}
    net = model
    if ranks is not None:      # gradients averaged over the processes at each step
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None)
    model.train()
    bar = None
    if progress:
        print(f"livelatent train: {len(corpus)} windows, {steps_per_epoch} batches per epoch, "
              f"epochs {first_epoch + 1} to {epochs} on {dev}" + (f" x {world} processes" if world > 1 else ""),
              file=sys.stderr, flush=True)
    if progress is True:
        bar = tqdm(total=total_steps, initial=first_epoch * steps_per_epoch, unit="batch",
                   dynamic_ncols=True, desc="train")
    tenth = max(1, steps_per_epoch // 10)      # progress="lines": a line every tenth of an epoch
    epoch = first_epoch
    val_signals = validation.signals()
    saved = None            # model.pt once this run wrote it (named when a later epoch diverges)
    try:
        for epoch in range(first_epoch + 1, epochs + 1):
            epoch_start = time.time()
            sampler.set_epoch(epoch)
            sums = [0.0, 0.0, 0.0, 0.0]            # loss, mse, kl (times windows), windows
            for step, local in enumerate(sampler, start=1):
                x = corpus.batch(local).to(dev)                                 # (batch, window)
                noise = _step_noise(seed, epoch, step, len(local) * world, latent)[sampler.rank::world]
                with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=bf16):
                    recon, mu, logvar = net(x, noise.to(dev))
                loss, mse, kl = vae_loss(recon.float(), x, mu.float(), logvar.float(), beta)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                optimizer.step()
                scheduler.step()
                loss_value = float(loss.detach())     # after the step: no extra wait on a device
                if ranks is None and not math.isfinite(loss_value):   # alone: stop here (with
                    raise diverged(epoch, loss_value, lr, saved)      # ranks: below, together)
                for i, value in enumerate((loss_value, float(mse.detach()), float(kl.detach()))):
                    sums[i] += value * len(x)
                sums[3] += len(x)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(epoch=epoch, loss=f"{loss_value:.5f}", refresh=False)
                elif progress == "lines" and step % tenth == 0:
                    print(f"epoch {epoch}/{epochs}: {step / steps_per_epoch:4.0%} loss {loss_value:.5f}",
                          flush=True)
            # every rank decides from the same all-reduced numbers, so all stop alike
            broken = float(not all(bool(torch.isfinite(p).all()) for p in model.parameters()))
            loss_sum, mse_sum, kl_sum, count, broken = group.all_sum(ranks, [*sums, broken])
            if not math.isfinite(loss_sum) or broken:
                raise diverged(epoch, loss_sum / count if not math.isfinite(loss_sum) else None, lr, saved)
            record = {"epoch": epoch, "loss": loss_sum / count, "mse": mse_sum / count,
                      "kl": kl_sum / count, "val_loss": None,
                      "lr": optimizer.param_groups[0]["lr"], "seconds": round(time.time() - epoch_start, 1)}
            history.append(record)
            if main:           # rank 0 validates and writes; the others wait for it
                best_val, wrote = _end_of_epoch(
                    record, model, config, settings, val_signals, output_dir, state_path, best_val,
                    history, optimizer, scheduler, dev, batch_size, bar, file_list,
                    elapsed_before + time.time() - started,
                    save_state=epoch % checkpoint_every == 0 or epoch == epochs, float16=float16,
                    fresh=not resume and epoch == first_epoch + 1)
                saved = output_dir / CHECKPOINT_NAME if wrote or saved else None
            group.barrier(ranks)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print(f"livelatent train: interrupted in epoch {epoch}; continue with --resume "
              f"(the last saved state is in {state_path})", file=sys.stderr)
        raise
    except TrainingDiverged:
        if bar is not None:
            bar.close()
        raise
    if bar is not None:
        bar.close()
    if not main:             # the others wait while rank 0 measures and writes: a process
        group.barrier(ranks)   # leaving its group early aborted at exit now and then (gloo)
        group.leave()
        return {}

    eval_signals = val_signals
    eval_set = "held-out files" if val_signals else ("training files (" + (
        "the held-out files given had no usable audio)" if val_files else "no held-out files were given)"))
    if not eval_signals:
        eval_signals = corpus.signals()
    metrics = evaluate(output_dir / CHECKPOINT_NAME, eval_signals, corpus, latent=latent, seed=seed,
                        sample_rate=sample_rate)
    best_checkpoint = load_checkpoint(output_dir / CHECKPOINT_NAME)
    summary = {
        "config": config.to_dict(),
        "settings": settings,
        "data": data_summary,
        "evaluated_on": eval_set,
        "metrics": metrics,
        "best_epoch": best_checkpoint.training.get(      # model.pt's (a finished run's: its best)
            "epoch", best_checkpoint.training.get("best_epoch", history[-1]["epoch"])),
        "history": history,
        "training_seconds": round(elapsed_before + time.time() - started, 1),
        "torch": str(torch.__version__),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    # the best weights again, now carrying the full summary (the content hash covers weights only)
    save_checkpoint(output_dir / CHECKPOINT_NAME, best_checkpoint.state_dict, config,
                    training=_json_safe(summary), dtype=torch.float16 if float16 else torch.float32)
    summary["content_hash"] = best_checkpoint.content_hash
    with atomic_path(output_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(_json_safe(summary), indent=1), encoding="utf-8")
    write_card(output_dir, summary)
    del corpus, validation, audio, val_signals, eval_signals      # the cache's map, then the cache
    shutil.rmtree(cache, ignore_errors=True)       # (kept when a run stops early: --resume reads it)
    if ranks is not None:
        group.barrier(ranks)
        group.leave()
    return summary


def _end_of_epoch(record, model, config, settings, val_signals, output_dir, state_path, best_val,
                  history, optimizer, scheduler, dev, batch_size, bar, file_list, elapsed, *,
                  save_state: bool, float16: bool, fresh: bool) -> tuple[float, bool]:
    """Validate, keep the best weights as ``model.pt``, say how the epoch went, and write the
    training state when it is due (rank 0 only). Returns the best validation score so far and
    whether model.pt was written.

    The first epoch of a fresh run (``fresh``) always writes model.pt: an older run's file in the
    folder must not pass for this run's. A non-finite score is worse than any finite one (it
    never replaces this run's weights, and any finite score later does)."""
    val_loss = validation_loss(model, val_signals, config.window, config.beta, dev, batch_size)
    record["val_loss"] = val_loss
    score = val_loss if val_loss is not None else record["loss"]
    epoch, epochs = record["epoch"], settings["epochs"]
    better = math.isfinite(score) and score < best_val
    wrote = fresh or better or not (output_dir / CHECKPOINT_NAME).exists()
    if wrote:
        if math.isfinite(score):
            best_val = min(best_val, score)
        if fresh:           # the older run's card and summary describe weights that are now gone
            for stale in ("summary.json", "card.md"):
                (output_dir / stale).unlink(missing_ok=True)
        save_checkpoint(output_dir / CHECKPOINT_NAME, model, config,
                        training={"epoch": epoch, "val_loss": val_loss, "loss": record["loss"], **settings},
                        dtype=torch.float16 if float16 else torch.float32)
    message = (f"epoch {epoch}/{epochs}: loss {record['loss']:.5f} (mse {record['mse']:.5f}, "
               f"kl {record['kl']:.3f})" + (f", val {val_loss:.5f}" if val_loss is not None else ""))
    if bar is not None:
        bar.write(message)
    else:
        print(message, flush=True)
    if save_state:
        save_state_file(state_path, epoch=epoch, config=config, model=model, optimizer=optimizer,
                        scheduler=scheduler, device=dev, best_val=best_val, history=history,
                        train_files=file_list, elapsed=elapsed)
    return best_val, wrote


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
