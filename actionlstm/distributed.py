"""Several processes or GPUs with PyTorch's own engine: `torchrun --nproc-per-node N -m actionlstm train|extract ...`.

torchrun starts N copies of the command and tells each its place through environment variables
(`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`...). Each process trains on its share of every batch
with DistributedDataParallel (gloo on CPUs, NCCL on GPUs), which averages gradients so all copies
of the model stay equal; `extract` gives each process a share of the videos. Without torchrun the
world is one process and nothing here does anything.
"""

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from actionlstm import console


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """The process that logs and writes files."""
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        """Each value summed over all processes."""
        if self.size == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64)
        if dist.get_backend() == "nccl":
            tensor = tensor.cuda()
        dist.all_reduce(tensor)
        return tensor.cpu().tolist()

    def gather(self, obj: Any) -> list[Any]:
        """`obj` of every process, in rank order, on every process."""
        if self.size == 1:
            return [obj]
        found: list[Any] = [None] * self.size
        dist.all_gather_object(found, obj)
        return found

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()


def launched_world() -> World:
    """The world torchrun described in the environment (one process when not launched by it)."""
    return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))


def speak_from_main(world: World) -> World:
    """`world`, with every process but rank 0 printing nothing: torchrun starts N copies of a
    command, and one speaks for all."""
    if not world.is_main:
        console.out.quiet = console.err.quiet = True
    return world


def join(world: World, device: torch.device) -> torch.device:
    """Join the process group (NCCL for CUDA, gloo for CPUs); the device this process trains on:
    with CUDA, the GPU of its local rank."""
    if world.size == 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        # Long timeout: extraction waits at the end for the slowest process's share of the videos.
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(hours=6))
    return device


def leave(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
