"""Training on several processes and machines with torch DistributedDataParallel.

Two ways in, one training loop (:func:`livelatent.model.train.train`):

- ``livelatent train DATA -o OUT --nproc N [--nnodes M --node-rank R --master-addr HOST]``
  starts N processes on this machine (:func:`launch`), ranks ``R * N`` to ``R * N + N - 1`` of
  ``N * M``;
- ``torchrun --nproc-per-node N -m livelatent.model.distributed DATA -o OUT ...`` (this module,
  with ``livelatent train``'s options) lets torchrun start them.

Each process learns its rank from the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``, as torchrun sets them) and joins the group: gloo on CPUs,
NCCL on GPUs (one per local rank). The data is the same for every process: rank 0 caches the
audio (:mod:`.data`), the others map the same file. :class:`DistributedWindowSampler` gives each
process its share of every *global* batch, so a run on N processes takes the steps a run on one
takes (the same windows per step, the gradients averaged across processes), and a run saved
on N processes resumes on any other number. Rank 0 validates and writes the checkpoints, the
training state and the card; the others wait for it.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from ..errors import LiveLatentError, ParameterError

__all__ = ["Ranks", "from_environment", "join", "leave", "DistributedWindowSampler", "launch",
           "barrier", "all_sum", "main"]

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(local_rank: int, nproc: int, node_rank: int, nnodes: int, kwargs: dict) -> None:
    os.environ.update(RANK=str(node_rank * nproc + local_rank), WORLD_SIZE=str(nproc * nnodes),
                      LOCAL_RANK=str(local_rank), LOCAL_WORLD_SIZE=str(nproc))
    from .train import train
    try:
        train(**kwargs)
    except LiveLatentError as exc:
        print(f"livelatent train: error (process {os.environ['RANK']}): {exc}", file=sys.stderr)
        sys.exit(2)


def launch(kwargs: dict, *, nproc: int, nnodes: int = 1, node_rank: int = 0,
           master_addr: str | None = None, master_port: int | None = None) -> None:
    """Run ``train(**kwargs)`` on ``nproc`` processes here, as node ``node_rank`` of ``nnodes``."""
    import torch.multiprocessing as mp
    for name, value in (("nproc", nproc), ("nnodes", nnodes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ParameterError(f"--{name} {value!r}: a whole number of at least 1")
    if not 0 <= node_rank < nnodes:
        raise ParameterError(f"--node-rank {node_rank} must be from 0 to {nnodes - 1}")
    if kwargs.get("batch_size", nproc * nnodes) < nproc * nnodes:
        raise ParameterError(f"batch_size={kwargs['batch_size']} is smaller than the {nproc * nnodes} "
                             f"processes; each process needs at least one window a step")
    if nnodes > 1 and not master_addr:
        raise ParameterError("--nnodes above 1: give --master-addr (the address of node 0) and "
                             "--master-port, the same on every node")
    os.environ["MASTER_ADDR"] = master_addr or "127.0.0.1"
    os.environ["MASTER_PORT"] = str(master_port or (_free_port() if nnodes == 1 else 29500))
    try:
        mp.spawn(_worker, args=(nproc, node_rank, nnodes, kwargs), nprocs=nproc, join=True)
    except mp.ProcessExitedException as exc:
        raise LiveLatentError(f"distributed training stopped: a process exited with code "
                              f"{exc.exit_code} (its error is above)") from None
    except mp.ProcessRaisedException as exc:
        last = [line for line in str(exc).strip().splitlines() if line.strip()][-1]
        raise LiveLatentError(f"distributed training stopped: {last}") from None


def main(argv=None) -> int:
    """``torchrun ... -m livelatent.model.distributed`` with ``livelatent train``'s options."""
    from ..cli import build_parser
    from .train import cli_train
    args = build_parser().parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    args.nproc = args.nnodes = 1      # torchrun started the processes: each trains
    try:
        return cli_train(args)
    except LiveLatentError as exc:
        print(f"livelatent train: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
