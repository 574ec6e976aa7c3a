"""Training a RawAudioVAE: the loop behind ``livelatent train DATA... -o models/NAME``.

Audio files (any rate, any channels) are read as mono at the model's rate, cut into windows at
``hop`` samples and shuffled every epoch. Validation is split *by file*. Every
``checkpoint_every`` epochs a resumable training state (``train_state.pt``: model, optimiser,
scheduler, epoch, RNG state) is written atomically, so an interrupted run loses at most the
epochs since then; the weights with the lowest validation loss are kept as the pack's
``model.pt``. At the end the held-out files are reconstructed the way the paper does and the
metrics, next to a PCA baseline of the latent's dimensionality and silence, go into
``card.md``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..atomic import atomic_path
from ..audio import list_audio_files, read_audio
from ..errors import AudioError, ModelLoadError, ParameterError, ResampledWarning
from .card import write_card
from .checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from .warmstart import pca_warm_start
from .metrics import PCABaseline, codec_reconstructor, reconstruction_metrics, silence_reconstructor
from .vae import RawAudioVAE, VAEConfig, vae_loss

__all__ = ["train", "cli_train", "TRAIN_STATE_NAME", "LR_SCHEDULES"]

TRAIN_STATE_NAME = "train_state.pt"
TRAIN_STATE_FORMAT = "livelatent.train_state"
LR_SCHEDULES = ("cosine", "step", "constant")
INITS = ("pca", "random")
_WARM_START_WINDOWS = 100_000   # windows the warm start's PCA is fit on (spread over the corpus)
_PCA_WINDOWS = 40000        # training windows the PCA baseline is fit on (a seeded subsample)


# -- data -------------------------------------------------------------------------------------

class _Corpus:
    """Audio of many files in one array, plus the start of every training window."""

    def __init__(self, files: list[Path], signals: list[np.ndarray], *, window: int, hop: int):
        self.files = files
        self.durations = [s.size for s in signals]
        padded = [np.pad(s, (0, max(0, window - s.size))) for s in signals]
        self.audio = np.concatenate(padded) if padded else np.zeros(0, np.float32)
        offsets = np.cumsum([0] + [p.size for p in padded[:-1]])
        self.starts = np.concatenate(
            [o + np.arange(0, p.size - window + 1, hop) for o, p in zip(offsets, padded)]
        ).astype(np.int64) if padded else np.zeros(0, np.int64)
        self.window = window
        self._ramp = np.arange(window)

    def __len__(self) -> int:
        return self.starts.size

    def batch(self, indices: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.audio[self.starts[indices][:, None] + self._ramp])  # (batch, window)


def _read_files(files: list[Path], sample_rate: int, label: str) -> tuple[list[Path], list[np.ndarray]]:
    kept, signals, resampled = [], [], 0
    for path in files:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                signals.append(read_audio(path, target_rate=sample_rate))
            resampled += any(issubclass(w.category, ResampledWarning) for w in caught)
            kept.append(path)
        except AudioError as exc:
            print(f"livelatent train: skipping {path}: {exc}", file=sys.stderr)
    if resampled:
        print(f"livelatent train: {resampled} {label} file(s) resampled to {sample_rate} Hz", file=sys.stderr)
    return kept, signals


def _families(paths: list[Path]) -> dict[str, str]:
    """Family of each file, from a ``manifest.json`` next to it (``{"files": {name: {"family"...}}}``)."""
    found: dict[str, str] = {}
    manifests: dict[Path, dict] = {}
    for path in paths:
        folder = path.parent
        if folder not in manifests:
            try:
                manifests[folder] = json.loads((folder / "manifest.json").read_text()).get("files", {})
            except (OSError, ValueError, AttributeError):
                manifests[folder] = {}
        entry = manifests[folder].get(path.name)
        if isinstance(entry, dict) and "family" in entry:
            found[str(path)] = str(entry["family"])
    return found


def _describe(paths: list[Path], durations: list[int], sample_rate: int) -> dict:
    families = _families(paths)
    counts: dict[str, int] = {}
    for p in paths:
        if str(p) in families:
            counts[families[str(p)]] = counts.get(families[str(p)], 0) + 1
    description = None
    for folder in sorted({p.parent for p in paths}):
        try:
            description = json.loads((folder / "manifest.json").read_text()).get("description")
            break
        except (OSError, ValueError, AttributeError):
            continue
    seconds = [d / sample_rate for d in durations]
    return {
        "files": len(paths),
        "seconds": round(float(sum(seconds)), 2),
        "shortest_s": round(float(min(seconds)), 3) if seconds else 0.0,
        "longest_s": round(float(max(seconds)), 3) if seconds else 0.0,
        "families": dict(sorted(counts.items())),
        "description": description,
        "folders": sorted({str(p.parent) for p in paths})[:10],
    }


def _split(files: list[Path], val_fraction: float, val_files, seed: int) -> tuple[list[Path], list[Path]]:
    if val_files:
        held = list_audio_files(*val_files)
        held_set = {p.resolve() for p in held}
        return [p for p in files if p.resolve() not in held_set], held
    if not 0 <= val_fraction < 1:
        raise ParameterError(f"val_fraction={val_fraction} must be in [0, 1)")
    if len(files) < 2 or val_fraction == 0:
        return files, []
    count = min(len(files) - 1, max(1, int(round(len(files) * val_fraction))))
    order = np.random.default_rng(seed).permutation(len(files))
    held = sorted(int(i) for i in order[:count])
    held_set = set(held)
    return [f for i, f in enumerate(files) if i not in held_set], [files[i] for i in held]


# -- schedule, device, state ------------------------------------------------------------------

def _lr_factor(schedule: str, step: int, total_steps: int) -> float:
    progress = min(1.0, step / max(1, total_steps))
    if schedule == "constant":
        return 1.0
    if schedule == "step":          # the original recipe: lr, then lr / 10 for the last 40%
        return 1.0 if progress < 0.6 else 0.1
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))     # cosine down to lr / 100


def _device(name: str) -> torch.device:
    if name not in ("auto", "cpu", "cuda"):
        raise ParameterError(f"device={name!r} must be 'auto', 'cpu' or 'cuda'")
    if name == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device='cuda' but torch sees no CUDA GPU here; use --device cpu or auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _atomic_torch_save(payload: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _load_state(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the state cannot be resumed
        raise ModelLoadError(f"{path}: cannot resume from this training state "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(state, dict) or state.get("format") != TRAIN_STATE_FORMAT:
        raise ModelLoadError(f"{path}: not a livelatent training state; start without --resume")
    return state


# -- evaluation -------------------------------------------------------------------------------

@torch.no_grad()
def _validation_loss(model: RawAudioVAE, signals: list[np.ndarray], window: int, beta: float,
                     device: torch.device, batch_size: int) -> float | None:
    """Loss on the non-overlapping windows of the validation files, with the mean latent."""
    if not signals:
        return None
    model.eval()
    windows = np.concatenate([np.pad(s, (0, -s.size % window)).reshape(-1, window) for s in signals])
    total, count = 0.0, 0
    for begin in range(0, len(windows), batch_size * 4):
        x = torch.from_numpy(windows[begin:begin + batch_size * 4]).to(device)
        recon, mu, logvar = model(x)
        loss, _, _ = vae_loss(recon, x, mu, logvar, beta)
        total += float(loss) * len(x)
        count += len(x)
    model.train()
    return total / count


def _evaluate(model_path: Path, eval_signals: list[np.ndarray], train_corpus: _Corpus, *,
              latent: int, seed: int, sample_rate: int) -> dict:
    """Held-out metrics of the saved model next to PCA and silence baselines."""
    checkpoint = load_checkpoint(model_path)
    module = checkpoint.build_module()
    window = checkpoint.config.window

    def encode(x):
        with torch.inference_mode():
            mu, logvar = module.encode(torch.from_numpy(x))
        return mu.numpy(), logvar.numpy()

    def decode(z):
        with torch.inference_mode():
            return module.decode(torch.from_numpy(z)).numpy()

    rng = np.random.default_rng(seed)
    sample = rng.choice(len(train_corpus), size=min(_PCA_WINDOWS, len(train_corpus)), replace=False)
    pca = PCABaseline(train_corpus.batch(np.sort(sample)).numpy(), dims=min(latent, window))
    results = {
        "model": reconstruction_metrics(eval_signals, codec_reconstructor(encode, decode),
                                        window=window, sample_rate=sample_rate),
        f"pca_{pca.dims}": reconstruction_metrics(eval_signals, pca, window=window, sample_rate=sample_rate),
        "silence": reconstruction_metrics(eval_signals, silence_reconstructor, window=window,
                                          sample_rate=sample_rate),
    }
    results[f"pca_{pca.dims}"]["explained_variance"] = pca.explained_variance
    return results


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
        Write ``train_state.pt`` every this many epochs (and at the last epoch).
    resume : bool
        Continue the run saved in ``output_dir``.
    device : {"auto", "cpu", "cuda"}
    threads : int or None
        torch CPU threads for this process (None leaves torch's setting).
    seed : int
        Seeds the split, the initial weights, the shuffling and the sampling.
    float16 : bool
        Store ``model.pt`` in float16 (half the size; the card's metrics are measured on it).
    bf16 : bool
        Run the forward pass under bfloat16 autocast (mixed precision: weights, optimiser and
        loss stay float32). About 1.7x faster on CPUs with AVX-512 BF16; validation and the
        card's metrics are computed in float32.
    init : {"pca", "random"}
        Start from the PCA of the training windows (see :mod:`livelatent.model.warmstart`: on a
        CPU it reaches in minutes what random weights need many epochs for) or from random weights.
    grad_clip : float or None
        Clip the gradient norm of each step to this (None: no clipping). Normal steps have
        norms far below 1; the clip only stops the rare step where a logvar spike makes the
        sampled latent and the gradient explode, which otherwise undoes epochs of training.
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
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("hop", hop),
                        ("checkpoint_every", checkpoint_every)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ParameterError(f"{name}={value!r} must be a positive integer")
    if init not in INITS:
        raise ParameterError(f"init={init!r} must be one of {INITS}")
    if lr_schedule not in LR_SCHEDULES:
        raise ParameterError(f"lr_schedule={lr_schedule!r} must be one of {LR_SCHEDULES}")
    if not lr > 0:
        raise ParameterError(f"lr={lr!r} must be positive")
    if threads is not None:
        if not isinstance(threads, int) or threads < 1:
            raise ParameterError(f"threads={threads!r} must be a positive integer")
        torch.set_num_threads(threads)
    config = VAEConfig(window=window, hidden=hidden, latent=latent, sample_rate=sample_rate, beta=beta)
    dev = _device(device)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    state_path = output_dir / TRAIN_STATE_NAME

    data = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    files = list_audio_files(*data)
    if progress:
        print(f"livelatent train: reading {len(files)} audio files", file=sys.stderr, flush=True)
    if val_files:       # explicit held-out files: read apart, and never trained on
        train_files, val_paths = _split(files, val_fraction, val_files, seed)
        train_files, train_signals = _read_files(train_files, sample_rate, "training")
        val_paths, val_signals = _read_files(val_paths, sample_rate, "validation")
    else:               # split the usable files, so a broken file does not shrink validation
        usable, signals = _read_files(files, sample_rate, "input")
        by_path = dict(zip(usable, signals))
        train_files, val_paths = _split(usable, val_fraction, None, seed)
        train_signals = [by_path[p] for p in train_files]
        val_signals = [by_path[p] for p in val_paths]
    if not train_files:
        raise AudioError(f"no usable training audio in {', '.join(map(str, data))}")
    corpus = _Corpus(train_files, train_signals, window=window, hop=hop)
    steps_per_epoch = -(-len(corpus) // batch_size)
    total_steps = steps_per_epoch * epochs

    settings = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "lr_schedule": lr_schedule,
                "hop": hop, "val_fraction": val_fraction, "seed": seed, "float16": float16,
                "checkpoint_every": checkpoint_every, "device": str(dev), "bf16": bf16,
                "grad_clip": grad_clip, "init": init,
                "threads": torch.get_num_threads()}

    torch.manual_seed(seed)
    model = RawAudioVAE(config).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _lr_factor(lr_schedule, step, total_steps))
    first_epoch, best_val, history, elapsed_before = 0, math.inf, [], 0.0
    file_list = sorted(str(p) for p in train_files)

    if resume:
        if not state_path.exists():
            raise ParameterError(f"--resume: no training state at {state_path}; start without --resume")
        state = _load_state(state_path)
        if state.get("config") != config.to_dict():
            raise ParameterError(f"--resume: {state_path} was trained with {state.get('config')}, "
                                 f"not {config.to_dict()}; use the same model settings")
        if state.get("train_files") != file_list:
            raise ParameterError(f"--resume: the training files differ from those of {state_path}; "
                                 f"resume with the same data")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        if dev.type == "cuda" and state.get("cuda_rng"):
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        first_epoch = int(state["epoch"])
        best_val = float(state["best_val"])
        history = list(state["history"])
        elapsed_before = float(state.get("elapsed_s", 0.0))
        print(f"livelatent train: resuming {output_dir} after epoch {first_epoch}", file=sys.stderr)
    elif state_path.exists():
        print(f"livelatent train: starting over; the previous run's state in {output_dir} "
              f"will be overwritten (use --resume to continue it)", file=sys.stderr)
    if not resume and init == "pca":
        if len(corpus) > latent and hidden >= 2 * latent:
            picks = np.linspace(0, len(corpus) - 1, min(len(corpus), _WARM_START_WINDOWS)).astype(np.int64)
            settings.update(pca_warm_start(model, corpus.batch(picks).numpy()))
        else:
            print(f"livelatent train: too few windows ({len(corpus)}) or hidden units for a PCA "
                  f"warm start; starting from random weights", file=sys.stderr)
            settings["init"] = "random"

    data_summary = {"train": _describe(train_files, corpus.durations, sample_rate),
                    "validation": _describe(val_paths, [s.size for s in val_signals], sample_rate),
                    "windows_per_epoch": len(corpus)}
    model.train()
    bar = None
    if progress:
        print(f"livelatent train: {len(corpus)} windows, {steps_per_epoch} batches per epoch, "
              f"epochs {first_epoch + 1} to {epochs} on {dev}", file=sys.stderr, flush=True)
    if progress is True:
        bar = tqdm(total=total_steps, initial=first_epoch * steps_per_epoch, unit="batch",
                   dynamic_ncols=True, desc="train")
    tenth = max(1, steps_per_epoch // 10)      # progress="lines": a line every tenth of an epoch
    epoch = first_epoch
    try:
        for epoch in range(first_epoch + 1, epochs + 1):
            epoch_start = time.time()
            order = np.random.default_rng([seed, epoch]).permutation(len(corpus))
            loss_sum = mse_sum = kl_sum = 0.0
            for begin in range(0, len(order), batch_size):
                x = corpus.batch(order[begin:begin + batch_size]).to(dev)      # (batch, window)
                with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=bf16):
                    recon, mu, logvar = model(x)
                loss, mse, kl = vae_loss(recon.float(), x, mu.float(), logvar.float(), beta)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                optimizer.step()
                scheduler.step()
                loss_value, mse_value, kl_value = float(loss.detach()), float(mse.detach()), float(kl.detach())
                loss_sum += loss_value * len(x)
                mse_sum += mse_value * len(x)
                kl_sum += kl_value * len(x)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(epoch=epoch, loss=f"{loss_value:.5f}", refresh=False)
                elif progress == "lines" and (begin // batch_size + 1) % tenth == 0:
                    done = (begin // batch_size + 1) / steps_per_epoch
                    print(f"epoch {epoch}/{epochs}: {done:4.0%} loss {loss_value:.5f}", flush=True)
            val_loss = _validation_loss(model, val_signals, window, beta, dev, batch_size)
            record = {"epoch": epoch, "loss": loss_sum / len(corpus), "mse": mse_sum / len(corpus),
                      "kl": kl_sum / len(corpus), "val_loss": val_loss,
                      "lr": optimizer.param_groups[0]["lr"], "seconds": round(time.time() - epoch_start, 1)}
            history.append(record)
            score = val_loss if val_loss is not None else record["loss"]
            if score < best_val or not (output_dir / CHECKPOINT_NAME).exists():
                best_val = min(best_val, score)
                save_checkpoint(output_dir / CHECKPOINT_NAME, model, config,
                                training={"epoch": epoch, "val_loss": val_loss, "loss": record["loss"],
                                          **settings},
                                dtype=torch.float16 if float16 else torch.float32)
            message = (f"epoch {epoch}/{epochs}: loss {record['loss']:.5f} (mse {record['mse']:.5f}, "
                       f"kl {record['kl']:.3f})" + (f", val {val_loss:.5f}" if val_loss is not None else ""))
            if bar is not None:
                bar.write(message)
            else:
                print(message, flush=True)
            if epoch % checkpoint_every == 0 or epoch == epochs:
                _atomic_torch_save({
                    "format": TRAIN_STATE_FORMAT, "epoch": epoch, "config": config.to_dict(),
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if dev.type == "cuda" else [],
                    "best_val": best_val, "history": history, "train_files": file_list,
                    "elapsed_s": elapsed_before + time.time() - started,
                }, state_path)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print(f"livelatent train: interrupted in epoch {epoch}; continue with --resume "
              f"(the last saved state is in {state_path})", file=sys.stderr)
        raise
    if bar is not None:
        bar.close()

    eval_signals = val_signals
    eval_set = "held-out files" if val_signals else "training files (no held-out files were given)"
    if not eval_signals:
        eval_signals = train_signals
    metrics = _evaluate(output_dir / CHECKPOINT_NAME, eval_signals, corpus, latent=latent, seed=seed,
                        sample_rate=sample_rate)
    best = min(history, key=lambda r: r["val_loss"] if r["val_loss"] is not None else r["loss"])
    summary = {
        "config": config.to_dict(),
        "settings": settings,
        "data": data_summary,
        "evaluated_on": eval_set,
        "metrics": metrics,
        "best_epoch": best["epoch"],
        "history": history,
        "training_seconds": round(elapsed_before + time.time() - started, 1),
        "torch": str(torch.__version__),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    # the best weights again, now carrying the full summary (the content hash covers weights only)
    best_checkpoint = load_checkpoint(output_dir / CHECKPOINT_NAME)
    save_checkpoint(output_dir / CHECKPOINT_NAME, best_checkpoint.state_dict, config,
                    training=_json_safe(summary), dtype=torch.float16 if float16 else torch.float32)
    summary["content_hash"] = best_checkpoint.content_hash
    with atomic_path(output_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(_json_safe(summary), indent=1))
    write_card(output_dir, summary)
    return summary


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


def cli_train(args) -> int:
    """``livelatent train``: run :func:`train` with the command line's arguments."""
    summary = train(
        args.data, args.output, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        lr_schedule=args.lr_schedule, hop=args.hop, window=args.window, hidden=args.hidden,
        latent=args.latent, beta=args.beta, sample_rate=args.sample_rate,
        val_fraction=args.val_fraction, val_files=args.val_files,
        checkpoint_every=args.checkpoint_every, resume=args.resume, device=args.device,
        threads=args.threads, seed=args.seed, float16=args.float16, bf16=getattr(args, "bf16", False),
        init=getattr(args, "init", "pca"),
        progress=True if sys.stderr.isatty() else "lines")
    model = summary["metrics"]["model"]
    print(f"wrote {Path(args.output) / CHECKPOINT_NAME} and card.md: {summary['evaluated_on']} "
          f"SNR {model['snr_db']:.1f} dB, spectral convergence {model['spectral_convergence']:.3f}")
    return 0
