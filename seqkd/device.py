"""Devices and data-parallel ranks (torchrun sets WORLD_SIZE, RANK and LOCAL_RANK)."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

from seqkd.io import SeqkdError


def resolve_device(name: str) -> torch.device:
    """'auto' -> this rank's GPU when CUDA is available, else the CPU; 'cuda' without CUDA is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SeqkdError(f"device: '{name}' is not a device (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SeqkdError(f"device: '{name}' was asked for but CUDA is not available (use --device cpu)")
    return device


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask: `taskset -c 0` gives 1)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_threads(n: int) -> int:
    """torch's CPU threads: n, or with n = 0 the cores this process may use. Returns the number set.

    Two jobs that each run as many threads as the machine has cores wait on each other: on 2 cores, training fell
    from about 6,800 to about 500 target tokens/s beside a second busy process. Give each job its own cores
    (`taskset -c 0 ...` and `taskset -c 1 ...`, or --threads)."""
    n = n or usable_cores()
    torch.set_num_threads(n)
    return n


SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")


def cpu_flags() -> list[str]:
    """Which of the CPU features that decide speed here this CPU has (SPEED_FLAGS; empty where /proc is missing).
    Every speed figure is quoted with them."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(next((line for line in f if line.startswith("flags")), "").split())
    except OSError:
        return []
    return [f for f in SPEED_FLAGS if f in flags]


def cpu_has_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 on the CPU is emulated and
    far slower than fp32 (on an AVX2-only EPYC a bf16 matmul ran 100x slower, and oneDNN's bf16 LSTM fails)."""
    flags = cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def bf16_enabled(mode: str, device: torch.device) -> bool:
    """The trainer's `bf16` option: 'cuda' (CUDA only), 'auto' (CUDA, or a CPU with native bf16), 'always', 'off'."""
    if device.type == "cuda":
        return mode != "off"
    return mode == "always" or (mode == "auto" and cpu_has_bf16())


def rank_and_world() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


class Ranks:
    """This process's place among data-parallel workers, with the few collectives training needs."""

    def __init__(self, device: torch.device):
        self.rank, self.world = rank_and_world()
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, value: float) -> float:
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t.item())

    def broadcast(self, obj):
        if self.world == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj) -> list:
        if self.world == 1:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out
