"""Where a process is in a distributed training run, and what the processes do together.

The ranks come from the environment torchrun (or :func:`livelatent.model.distributed.launch`)
sets; the process group is gloo on CPUs, NCCL on GPUs; :class:`DistributedWindowSampler` gives
each process its share of every global batch (see :mod:`.distributed`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from ..errors import ParameterError

__all__ = ["Ranks", "from_environment", "device_for", "join", "leave", "barrier", "all_sum",
           "DistributedWindowSampler"]

TIMEOUT = timedelta(minutes=30)      # rank 0 may validate and write a card while the others wait


@dataclass(frozen=True)
class Ranks:
    """Where this process is in a distributed run."""

    rank: int
    world: int
    local_rank: int

    @property
    def main(self) -> bool:
        return self.rank == 0


def device_for(name: str, local_rank: int = 0):
    """The torch device this process trains on: ``name`` ("auto", "cpu" or "cuda"), a GPU of
    its own for each local rank."""
    import torch
    if name not in ("auto", "cpu", "cuda"):
        raise ParameterError(f"device={name!r} must be 'auto', 'cpu' or 'cuda'")
    if name == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device='cuda' but torch sees no CUDA GPU here; use --device cpu or auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(f"cuda:{local_rank % torch.cuda.device_count()}") if name == "cuda" else torch.device("cpu")


def from_environment() -> Ranks | None:
    """The ranks torchrun (or :func:`launch`) set, or None for a run on one process."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", rank))
    except ValueError:
        raise ParameterError("RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers") from None
    if world <= 1:
        return None
    if not 0 <= rank < world:
        raise ParameterError(f"RANK={rank} is outside WORLD_SIZE={world}")
    return Ranks(rank, world, local)


def join(ranks: Ranks, device_type: str) -> str:
    """Join the process group: NCCL for GPUs, gloo otherwise. Returns the backend."""
    import torch.distributed as dist
    backend = "nccl" if device_type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method="env://", rank=ranks.rank, world_size=ranks.world,
                                timeout=TIMEOUT)
    return backend


def leave() -> None:
    import torch.distributed as dist
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(ranks: Ranks | None) -> None:
    if ranks is not None:
        import torch.distributed as dist
        dist.barrier()


def all_sum(ranks: Ranks | None, values: list[float]) -> list[float]:
    """``values`` summed over every process (as they are on one process)."""
    if ranks is None:
        return values
    import torch
    import torch.distributed as dist
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.tolist()


class DistributedWindowSampler:
    """Batches of window indices for one process of ``world``.

    An epoch's order is the seeded permutation ``default_rng([seed, epoch])`` of the windows,
    cut into global batches of ``batch_size`` as on one process; each process takes every
    ``world``-th window of each global batch (a batch whose size ``world`` does not divide
    loses its last few windows, so every process takes as many steps). Unlike torch's
    ``DistributedSampler``, which deals a whole epoch round-robin, this keeps each step's
    windows what they are on one process: the same steps whatever the number of processes.
    """

    def __init__(self, windows: int, batch_size: int, *, seed: int, rank: int = 0, world: int = 1):
        if batch_size < world:
            raise ParameterError(f"batch_size={batch_size} is smaller than the {world} processes; "
                                 f"each process needs at least one window a step")
        self.windows, self.batch_size, self.seed = int(windows), int(batch_size), int(seed)
        self.rank, self.world, self.epoch = int(rank), int(world), 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        full, rest = divmod(self.windows, self.batch_size)
        return full + (rest >= self.world)

    def __iter__(self):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.windows)
        for begin in range(0, self.windows, self.batch_size):
            batch = order[begin:begin + self.batch_size]
            batch = batch[:len(batch) - len(batch) % self.world]
            if len(batch):
                yield batch[self.rank::self.world]
