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
audio (:mod:`.data`), the others map the same file. :class:`.ranks.DistributedWindowSampler` gives each
process its share of every *global* batch, so a run on N processes takes the steps a run on one
takes (the same windows per step, the gradients averaged across processes), and a run saved
on N processes resumes on any other number. Rank 0 validates and writes the checkpoints, the
training state and the card; the others wait for it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

from ..errors import LiveLatentError, ParameterError
from .checkpoint import CHECKPOINT_NAME
from .train import train
from .train_checks import check_model_size, check_settings

__all__ = ["launch", "cli_train", "main"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(local_rank: int, nproc: int, node_rank: int, nnodes: int, kwargs: dict) -> None:
    os.environ.update(RANK=str(node_rank * nproc + local_rank), WORLD_SIZE=str(nproc * nnodes),
                      LOCAL_RANK=str(local_rank), LOCAL_WORLD_SIZE=str(nproc))
    try:
        train(**kwargs)
    except LiveLatentError as exc:
        print(f"livelatent train: error (process {os.environ['RANK']}): {exc}", file=sys.stderr)
        sys.exit(2)


def check_launch(nproc, nnodes, node_rank) -> None:
    """The process counts and this node's number, checked even for a run on one process (a
    ``--nproc 0`` or ``--node-rank 5`` that is silently ignored hides a typo)."""
    for name, value in (("nproc", nproc), ("nnodes", nnodes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ParameterError(f"--{name} {value!r}: a whole number of at least 1")
    if isinstance(node_rank, bool) or not isinstance(node_rank, int) or not 0 <= node_rank < nnodes:
        raise ParameterError(f"--node-rank {node_rank!r} must be from 0 to {nnodes - 1} "
                             f"(--nnodes {nnodes})")


def launch(kwargs: dict, *, nproc: int, nnodes: int = 1, node_rank: int = 0,
           master_addr: str | None = None, master_port: int | None = None) -> None:
    """Run ``train(**kwargs)`` on ``nproc`` processes here, as node ``node_rank`` of ``nnodes``."""
    import torch.multiprocessing as mp
    check_launch(nproc, nnodes, node_rank)
    if kwargs.get("batch_size", nproc * nnodes) < nproc * nnodes:
        raise ParameterError(f"batch_size={kwargs['batch_size']} is smaller than the {nproc * nnodes} "
                             f"processes; each process needs at least one window a step")
    if nnodes > 1 and not master_addr:
        raise ParameterError("--nnodes above 1: give --master-addr (the address of node 0) and "
                             "--master-port, the same on every node")
    if master_addr:                   # (torch retries a name no host has for ever; a lookup
        try:                          # that failed for now, EAI_AGAIN, it may well retry)
            socket.getaddrinfo(master_addr, None)
        except socket.gaierror as exc:
            if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
                raise ParameterError(f"--master-addr {master_addr}: no such host here "
                                     f"({exc.strerror})") from None
        except UnicodeError as exc:
            raise ParameterError(f"--master-addr {master_addr}: not a host name ({exc})") from None
    if master_port is not None and not 0 <= master_port <= 65535:     # (0: a free one)
        raise ParameterError(f"--master-port {master_port} must be from 0 to 65535")
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


def cli_train(args) -> int:
    """``livelatent train``: run :func:`train` with the command line's arguments (on several
    processes with ``--nproc`` or ``--nnodes``)."""
    kwargs = dict(
        data=args.data, output_dir=args.output, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, lr_schedule=args.lr_schedule, hop=args.hop, window=args.window,
        hidden=args.hidden, latent=args.latent, beta=args.beta, sample_rate=args.sample_rate,
        val_fraction=args.val_fraction, val_files=args.val_files,
        checkpoint_every=args.checkpoint_every, resume=args.resume, device=args.device,
        threads=args.threads, seed=args.seed, float16=args.float16, bf16=getattr(args, "bf16", False),
        init=getattr(args, "init", "pca"), progress=True if sys.stderr.isatty() else "lines")
    nproc, nnodes = getattr(args, "nproc", 1), getattr(args, "nnodes", 1)
    check_launch(nproc, nnodes, getattr(args, "node_rank", 0))
    # the settings every process would refuse, refused once here before any process starts
    check_settings(**{k: kwargs[k] for k in ("epochs", "batch_size", "hop", "checkpoint_every", "lr",
                                             "beta", "seed", "threads")}, grad_clip=None)
    check_model_size(args.window, args.hidden, args.latent)
    if nproc > 1 or nnodes > 1:
        launch(kwargs, nproc=nproc, nnodes=nnodes, node_rank=getattr(args, "node_rank", 0),
                           master_addr=getattr(args, "master_addr", None),
                           master_port=getattr(args, "master_port", None))
        if getattr(args, "node_rank", 0) != 0:
            return 0
        summary = json.loads((Path(args.output) / "summary.json").read_text(encoding="utf-8"))
    else:
        summary = train(**kwargs)
        if not summary:                 # a process of a run torchrun started, not rank 0
            return 0
    model = summary["metrics"]["model"]
    print(f"wrote {Path(args.output) / CHECKPOINT_NAME} and card.md: {summary['evaluated_on']} "
          f"SNR {model['snr_db']:.1f} dB, spectral convergence {model['spectral_convergence']:.3f}")
    return 0


def main(argv=None) -> int:
    """``torchrun ... -m livelatent.model.distributed`` with ``livelatent train``'s options."""
    from ..cli import build_parser
    args = build_parser().parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    args.nproc = args.nnodes = 1      # torchrun started the processes: each trains
    try:
        return cli_train(args)
    except LiveLatentError as exc:
        print(f"livelatent train: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
