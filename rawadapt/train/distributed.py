"""Data-parallel training with ``torch.distributed`` (gloo on CPU, nccl on GPU).

Launch with ``torchrun --nproc_per_node N -m rawadapt.train STRATEGY ...`` (same options as
``rawadapt train``). Every rank holds the full model; each draws its own patches (rank-specific
sampler seeds), gradients are averaged with one all-reduce of a flattened bucket, and ADL's
validation PSNR sums are all-reduced so every rank takes the same accept/reject decision (the
shared decisions — source domain, V' — come from a generator seeded identically on all ranks).
Only rank 0 writes files.
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist

from rawadapt.train.adl import Comm


class TorchComm(Comm):
    """:class:`~rawadapt.train.adl.Comm` over an initialised default process group."""

    def __init__(self) -> None:
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError("torch.distributed is not initialised")
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        t = tensor.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def average_gradients(self, model: torch.nn.Module) -> None:
        # Not DistributedDataParallel: ADL snapshots, evaluates and restores the weights between
        # backward passes and must take the same accept/reject decision on every rank; DDP's
        # reducer assumes every forward is followed by a backward. One flattened all-reduce
        # gives the averaged gradients (tested: two gloo ranks end with identical decisions and weights).
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if not grads or self.world_size == 1:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= self.world_size
        offset = 0
        for g in grads:
            n = g.numel()
            g.copy_(flat[offset : offset + n].view_as(g))
            offset += n

    def broadcast_parameters(self, model: torch.nn.Module) -> None:
        """Make every rank start from rank 0's weights."""
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, src=0)

    def barrier(self) -> None:
        dist.barrier()


def init_from_env(backend: str | None = None) -> Comm:
    """Initialise the process group when launched by torchrun (``WORLD_SIZE`` > 1), else
    return the single-process :class:`Comm`."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Comm()
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    return TorchComm()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
