"""Reading prepared data: memory-mapped splits, length-sorted batches, padding and masks.

A split is two flat token arrays with offsets (see seqkd.prepare); nothing is read until a batch needs it, so a
corpus of millions of pairs opens in milliseconds and in little memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from seqkd.io import SeqkdError
from seqkd.vocab import BOS, EOS, PAD


class Side:
    """One side of a split: token i of sentence j is tok[off[j] + i]."""

    def __init__(self, tok: np.ndarray, off: np.ndarray):
        self.tok, self.off = tok, off
        self.lens = np.diff(off)

    @classmethod
    def load(cls, prefix: Path) -> "Side":
        try:
            return cls(np.load(f"{prefix}.tok.npy", mmap_mode="r"), np.load(f"{prefix}.off.npy"))
        except FileNotFoundError as e:
            raise SeqkdError(f"{e.filename}: not found (run the data stage: make data)") from None

    def __len__(self) -> int:
        return len(self.lens)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.tok[self.off[i]:self.off[i + 1]]


@dataclass
class Split:
    src: Side
    tgt: Side | None  # None when only sources are needed (translation)

    def __len__(self) -> int:
        return len(self.src)


def load_split(data_dir: str | Path, split: str, *, tgt_prefix: str | Path | None = None,
               with_tgt: bool = True) -> Split:
    """Open `split` of a data stage; `tgt_prefix` replaces its targets (e.g. distilled ones)."""
    data_dir = Path(data_dir)
    src = Side.load(data_dir / f"{split}.src")
    tgt = None
    if with_tgt:
        tgt = Side.load(Path(tgt_prefix) if tgt_prefix else data_dir / f"{split}.tgt")
        if len(tgt) != len(src):
            raise SeqkdError(f"{tgt_prefix or data_dir}: {len(tgt)} targets for {len(src)} sources in '{split}'")
    return Split(src, tgt)


def concat(a: Split, b: Split) -> Split:
    """The pairs of `a`, then those of `b` (in memory: a training set that mixes two kinds of targets)."""
    def side(x: Side, y: Side) -> Side:
        return Side(np.concatenate([x.tok, y.tok]), np.concatenate([x.off, y.off[1:] + x.off[-1]]))
    return Split(side(a.src, b.src), side(a.tgt, b.tgt) if a.tgt is not None and b.tgt is not None else None)


class Batch(NamedTuple):
    src: torch.Tensor  # (B, S) padded with PAD
    src_lens: torch.Tensor  # (B,)
    tgt_in: torch.Tensor  # (B, T): BOS y_1 .. y_n, padded
    tgt_out: torch.Tensor  # (B, T): y_1 .. y_n EOS, padded
    index: np.ndarray  # (B,) sentence numbers in the split
    n_tokens: int  # target tokens including EOS

    def to(self, device) -> "Batch":
        nb = {"non_blocking": True}
        return self._replace(src=self.src.to(device, **nb), src_lens=self.src_lens.to(device, **nb),
                             tgt_in=self.tgt_in.to(device, **nb), tgt_out=self.tgt_out.to(device, **nb))


def pad(rows: list[np.ndarray], *, bos: bool = False, eos: bool = False) -> torch.Tensor:
    """Right-pad id arrays into a (B, max_len) long tensor, optionally adding BOS in front / EOS at the end."""
    extra = int(bos) + int(eos)
    out = np.full((len(rows), max((len(r) for r in rows), default=0) + extra), PAD, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, int(bos):int(bos) + len(r)] = r
        if bos:
            out[i, 0] = BOS
        if eos:
            out[i, int(bos) + len(r)] = EOS
    return torch.from_numpy(out)


def collate(split: Split, index: np.ndarray) -> Batch:
    src = [split.src[i] for i in index]
    src_lens = torch.tensor([len(s) for s in src], dtype=torch.long)
    if split.tgt is None:
        empty = torch.zeros(len(index), 0, dtype=torch.long)
        return Batch(pad(src), src_lens, empty, empty, index, 0)
    tgt = [split.tgt[i] for i in index]
    return Batch(pad(src), src_lens, pad(tgt, bos=True), pad(tgt, eos=True), index, sum(len(t) + 1 for t in tgt))


def make_batches(src_lens: np.ndarray, tgt_lens: np.ndarray | None, *, batch_size: int, batch_tokens: int = 0,
                 shuffle: bool = False, seed: int = 0, epoch: int = 0, longest_first: bool = False) -> list[np.ndarray]:
    """Group sentences of similar length into batches of at most `batch_size` sentences and, if `batch_tokens`,
    at most that many padded target (or, without targets, source) tokens.

    Sentences are sorted by length (ties broken at random when shuffling), cut into batches in that order, and the
    batch order is shuffled; the same (seed, epoch) always gives the same batches, which makes resuming exact.
    longest_first (search): sorted longest first, ties in input order, batches not shuffled.
    """
    n = len(src_lens)
    lens = (tgt_lens + 1) if tgt_lens is not None else src_lens
    rng = np.random.default_rng([seed, epoch])
    tie = rng.random(n) if shuffle else np.zeros(n)
    if longest_first:
        order = np.argsort(-lens, kind="stable")
    else:
        order = np.lexsort((tie, src_lens, lens))  # by length, then source length, then random
    batches, start = [], 0
    sorted_lens = np.maximum(lens[order], 1)
    while start < n:
        end = min(start + batch_size, n)
        if batch_tokens:  # count x the longest sentence so far <= budget
            longest = np.maximum.accumulate(sorted_lens[start:end])
            fit = np.arange(1, end - start + 1) * longest <= batch_tokens
            end = start + max(1, int(np.argmin(fit)) if not fit.all() else end - start)
        batches.append(order[start:end])
        start = end
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches
