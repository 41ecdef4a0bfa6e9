"""Decoding speed, and how much of the machine it uses: sentences/s, tokens/s, and achieved GFLOP/s next to a plain
matrix product's GFLOP/s measured in the same process."""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from seqkd.inference import for_search
from seqkd.model import Seq2Seq
from seqkd.search import translate_ids


class CountingModel:
    """Wraps a model for search and counts the work it is asked for: decoder rows per step and the attention
    width of each step, and encoded source tokens."""

    def __init__(self, model):
        self.model, self.tgt_vocab = model, model.tgt_vocab
        self.training = False
        self.row_steps = 0  # sum over steps of the rows decoded
        self.attended = 0  # sum over steps of rows x source length
        self.src_tokens = 0
        self.src_positions = 0  # padded source positions encoded

    def encode(self, src, src_lens):
        self.src_tokens += int(src_lens.sum())
        self.src_positions += src.numel()
        return self.model.encode(src, src_lens)

    def step(self, prev, state, memory):
        self.row_steps += prev.size(0)
        self.attended += prev.size(0) * memory.outputs.size(1)
        return self.model.step(prev, state, memory)

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def flops(self) -> float:
        """Multiply-adds x 2 of the work counted: encoder LSTM and key projection per padded source position;
        per decoder row and step the recurrent products, attention, W_c and the output layer (the embedding part
        of layer 1 is a table lookup in search)."""
        cfg, V = self.model.cfg, self.model.tgt_vocab
        H, E, L = cfg.hidden, cfg.emb, cfg.layers
        enc = 4 * H * (E + H) + (L - 1) * 4 * H * 2 * H + H * H  # per source position
        dec = L * 4 * H * 2 * H + 2 * H * H + H * V  # per row-step, without attention
        return 2.0 * (enc * self.src_positions + dec * self.row_steps + 2 * H * self.attended)


def matmul_gflops(seconds: float = 1.0, m: int = 320, k: int = 1000, n: int = 2000) -> float:
    """GFLOP/s of a plain (m x k) @ (k x n) product on this machine now: the yardstick for the decoder."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(3):
        a @ b
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        runs += 1
    return 2.0 * m * k * n * runs / (time.perf_counter() - started) / 1e9


def _cpu_ticks() -> tuple[int, int] | None:
    """(busy ticks of the whole machine, ticks of this process) from /proc; None where there is no /proc."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, int(own[11]) + int(own[12])  # utime + stime of this process


class OtherLoad:
    """How much of the machine other processes used while the block ran, in cores (0.0 = none):

        with OtherLoad() as load: ...
        load.cores   # e.g. 0.9 = another job kept almost one core busy: a speed measured meanwhile is too low
    """

    def __enter__(self) -> "OtherLoad":
        self.start, self.t0, self.cores = _cpu_ticks(), time.perf_counter(), None
        return self

    def __exit__(self, *exc) -> None:
        end = _cpu_ticks()
        seconds = time.perf_counter() - self.t0
        if self.start is None or end is None or seconds <= 0:
            return
        hz = os.sysconf("SC_CLK_TCK")
        others = (end[0] - self.start[0]) - (end[1] - self.start[1])
        self.cores = round(max(0.0, others / hz / seconds), 2)


@dataclass
class DecodeSpeed:
    beam: int
    batch_size: int
    sentences: int
    seconds: float  # the median pass
    tokens: int
    gflops: float  # counted matrix products per second of the median pass
    passes_s: list[float] = field(default_factory=list)  # every timed pass
    other_cores: float | None = None  # CPU cores other processes used meanwhile (OtherLoad)

    @property
    def sent_per_s(self) -> float:
        return self.sentences / self.seconds

    @property
    def tok_per_s(self) -> float:
        return self.tokens / self.seconds


def time_decode(model: Seq2Seq, sources: list[np.ndarray], *, beam: int, batch_size: int, device="cpu",
                passes: int = 3, **search) -> tuple[DecodeSpeed, list]:
    """Translate `sources` `passes` times after a warm-up batch; the speed of the median pass, and the hypotheses.

    The time waits for the GPU; every pass is recorded, and the load of other processes meanwhile."""
    device = torch.device(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    translate_ids(model, sources[:batch_size], beam=beam, batch_size=batch_size, device=device, **search)
    times, hyps = [], None
    counter = CountingModel(for_search(model))
    with OtherLoad() as load:
        for i in range(passes):
            sync()
            started = time.perf_counter()
            hyps = translate_ids(counter if i == 0 else model, sources, beam=beam, batch_size=batch_size, device=device,
                             **search)
            sync()
            times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    tokens = sum(len(h[0].tokens) for h in hyps)
    return DecodeSpeed(beam, batch_size, len(sources), seconds, tokens, counter.flops() / seconds / 1e9,
                       [round(t, 4) for t in times], load.cores), hyps
