"""A training run's resumable state: ``train_state.pt`` (model, optimiser, scheduler, epoch, RNG
state, history), written atomically by rank 0 and read back by ``--resume`` on any number of
processes (a step's windows and noise depend on the seed, the epoch and the step alone)."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from ..atomic import atomic_path
from ..errors import LiveLatentError, ModelLoadError, ParameterError
from .checkpoint import CHECKPOINT_NAME, load_checkpoint

__all__ = ["TRAIN_STATE_NAME", "save_state_file", "restore"]

TRAIN_STATE_NAME = "train_state.pt"
TRAIN_STATE_FORMAT = "livelatent.train_state"


def save_state_file(path: Path, *, epoch: int, config, model, optimizer, scheduler, device,
                    best_val: float, history: list, train_files: list, elapsed: float) -> None:
    payload = {
        "format": TRAIN_STATE_FORMAT, "epoch": epoch, "config": config.to_dict(),
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
        "best_val": best_val, "history": history, "train_files": train_files, "elapsed_s": elapsed,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _load(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:      # (torch's text advises loading it unsafely: not here)
        raise ModelLoadError(f"{path}: cannot resume from this training state: it is damaged, or "
                             f"not a plain torch save; start without --resume") from None
    except Exception as exc:  # noqa: BLE001 - any failure means the state cannot be resumed
        raise ModelLoadError(f"{path}: cannot resume from this training state "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(state, dict) or state.get("format") != TRAIN_STATE_FORMAT:
        raise ModelLoadError(f"{path}: not a livelatent training state; start without --resume")
    return state


def check_resumable(path: Path) -> None:
    """``--resume`` needs a training state at ``path``."""
    if not path.exists():
        raise ParameterError(f"--resume: no training state at {path}; start without --resume")


def restore(path: Path, *, config, train_files: list, model, optimizer, scheduler,
            device, held: list = ()) -> tuple[int, float, list, float]:
    """Load the state at ``path`` into the run; returns (epoch, best score, history, seconds)."""
    check_resumable(path)
    _check_best_weights(path.parent / CHECKPOINT_NAME)
    state = _load(path)
    if state.get("config") != config.to_dict():
        raise ParameterError(f"--resume: {path} was trained with {state.get('config')}, "
                             f"not {config.to_dict()}; use the same model settings")
    if state.get("train_files") != train_files:
        recorded = state.get("train_files")
        if isinstance(recorded, list) and set(recorded) <= set(train_files) | set(held):
            raise ParameterError(f"--resume: {path}'s run trained on other files of these: the "
                                 f"held-out split differs (another --seed, --val-fraction or "
                                 f"--val-files, or files added?); resume with the run's")
        raise ParameterError(f"--resume: the training files differ from those of {path}; "
                             f"resume with the same data")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    if device.type == "cuda" and state.get("cuda_rng"):
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return (int(state["epoch"]), float(state["best_val"]), list(state["history"]),
            float(state.get("elapsed_s", 0.0)))


def _check_best_weights(path: Path) -> None:
    """Before a resumed run trains: the best weights so far must load, or the run could never
    finish (its end reads them), whatever it trained meanwhile."""
    if not path.exists():
        return                          # (the next epoch writes them)
    try:
        load_checkpoint(path)
    except LiveLatentError as exc:
        raise ParameterError(f"--resume: {exc}. The best weights so far were in it: remove it to "
                             f"resume from the training state (the run then keeps the best of the "
                             f"epochs still to come)") from None
