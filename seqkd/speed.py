"""Decoding speed, and how much of the machine it uses: sentences/s, tokens/s, and achieved GFLOP/s next to a plain
matrix product's GFLOP/s measured in the same process."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from seqkd.model import Seq2Seq
from seqkd.search import translate


class CountingModel:
    """Wraps a model for search and counts the work it is asked for: decoder rows per step and the attention
    width of each step, and encoded source tokens."""

    def __init__(self, model: Seq2Seq):
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


@dataclass
class DecodeSpeed:
    beam: int
    batch_size: int
    sentences: int
    seconds: float
    tokens: int
    gflops: float

    @property
    def sent_per_s(self) -> float:
        return self.sentences / self.seconds

    @property
    def tok_per_s(self) -> float:
        return self.tokens / self.seconds


def time_decode(model: Seq2Seq, sources: list[np.ndarray], *, beam: int, batch_size: int, device="cpu",
                **search) -> tuple[DecodeSpeed, list]:
    """Translate `sources` once after a warm-up batch; returns the speed and the hypotheses."""
    translate(model, sources[:batch_size], beam=beam, batch_size=batch_size, device=device, **search)
    counter = CountingModel(model)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    hyps = translate(counter, sources, beam=beam, batch_size=batch_size, device=device, **search)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    tokens = sum(len(h[0].tokens) for h in hyps)
    return DecodeSpeed(beam, batch_size, len(sources), seconds, tokens, counter.flops() / seconds / 1e9), hyps
