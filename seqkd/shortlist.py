"""A vocabulary shortlist for the output layer (OpenNMT-py's WNMT 2018 CPU system, Marian's lexical shortlist).

The output product, its log-softmax and the search's top-k are the vocabulary-sized work of a decoder step. With a
shortlist, each batch's search scores only the target words its source words make likely, plus the most frequent
ones, instead of the whole vocabulary:

  - built once from a training corpus (`seqkd shortlist`): the `frequent` most frequent target pieces, and for every
    source piece the `per_source` target pieces that co-occur with it most strongly, by the Dice coefficient over
    sentence pairs, 2 c(s, t) / (c(s) + c(t)), where c counts the sentences that hold a piece (or the pair);
  - per batch, the sorted union of the frequent pieces, the candidates of every source piece in the batch and the
    special symbols (ids 0-3, so they keep their ids inside the shortlist: the search runs unchanged on positions
    of the shortlist and the words are mapped back at the end).

The search on a shortlist finds what the full search finds whenever every word the full search would choose is in
the batch's shortlist; otherwise it differs. The README measures its BLEU and speed against the full vocabulary.
The counts are made in memory (one key per distinct sentence-level pair): seconds for Multi30k's size.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from seqkd import io
from seqkd.data import Side
from seqkd.io import SeqkdError
from seqkd.vocab import EOS, Vocab

FORMAT = "seqkd-shortlist-1"
SPECIALS = 4  # PAD, UNK, BOS, EOS: ids 0-3, always in


@dataclass(frozen=True)
class Shortlist:
    frequent: torch.Tensor  # (F,) target ids, the special symbols among them
    table: torch.Tensor  # (V_src, per_source) target ids of each source piece (EOS where it has fewer)
    src_digest: str  # the vocabularies it was built with (seqkd.vocab.Vocab.digest)
    tgt_digest: str

    def for_batch(self, src: torch.Tensor) -> torch.Tensor:
        """Padded source ids (B, S) -> the sorted target ids the batch's search scores (long, on src's device)."""
        table, frequent = self.table.to(src.device), self.frequent.to(src.device)
        return torch.unique(torch.cat([frequent, table[src.reshape(-1)].reshape(-1)]))

    def check(self, where: str, src_vocab: Vocab, tgt_vocab: Vocab) -> None:
        """A shortlist built with other vocabularies than the model's is an error naming the file."""
        for side, digest, vocab in (("source", self.src_digest, src_vocab), ("target", self.tgt_digest, tgt_vocab)):
            if digest != vocab.digest:
                raise SeqkdError(f"{where}: built for another {side} vocabulary (digest {digest}) than the model's "
                                 f"({vocab.digest}); build it from the model's data with seqkd shortlist")


def build(src: Side, tgt: Side, src_vocab: Vocab, tgt_vocab: Vocab, *, frequent: int = 500,
          per_source: int = 10) -> Shortlist:
    """The shortlist of a parallel corpus (see the module's docstring)."""
    if frequent < 0 or per_source < 1:
        raise SeqkdError(f"--frequent must be >= 0 and --per_source >= 1, got {frequent} and {per_source}")
    v_src, v_tgt = len(src_vocab), len(tgt_vocab)
    c_src, c_tgt, keys = np.zeros(v_src, np.int64), np.zeros(v_tgt, np.int64), []
    for i in range(len(src)):
        s, t = np.unique(src[i]).astype(np.int64), np.unique(tgt[i]).astype(np.int64)
        c_src[s] += 1
        c_tgt[t] += 1
        keys.append((s[:, None] * v_tgt + t[None, :]).reshape(-1))
    pairs, c_pair = np.unique(np.concatenate(keys) if keys else np.zeros(0, np.int64), return_counts=True)
    s, t = pairs // v_tgt, pairs % v_tgt
    dice = 2 * c_pair / (c_src[s] + c_tgt[t])
    order = np.lexsort((t, -dice, s))  # by source piece, then strongest first (ties: lower id)
    s, t = s[order], t[order]
    rank = np.arange(len(s)) - np.searchsorted(s, s)  # position within its source piece's group
    keep = rank < per_source
    table = np.full((v_src, per_source), EOS, np.int64)
    table[s[keep], rank[keep]] = t[keep]
    tokens = np.bincount(np.asarray(tgt.tok, dtype=np.int64), minlength=v_tgt)
    tokens[:SPECIALS] = np.iinfo(np.int64).max  # always in
    top = np.argsort(-tokens, kind="stable")[:max(frequent, SPECIALS)]
    return Shortlist(torch.from_numpy(np.sort(top)), torch.from_numpy(table), src_vocab.digest, tgt_vocab.digest)


def save(path: str | Path, shortlist: Shortlist, settings: dict) -> None:
    state = {"format": FORMAT, "frequent": shortlist.frequent, "table": shortlist.table,
             "src_digest": shortlist.src_digest, "tgt_digest": shortlist.tgt_digest, "settings": settings}
    with io.atomic_path(path) as tmp:
        torch.save(state, tmp)


def load(path: str | Path) -> Shortlist:
    """A file written by `save`; anything else is an error naming it."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SeqkdError(f"--shortlist {path}: file not found") from None
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a file that is not its own
        raise SeqkdError(f"--shortlist {path}: not a shortlist written by seqkd shortlist ({type(e).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise SeqkdError(f"--shortlist {path}: not a shortlist written by seqkd shortlist (format "
                         f"{state.get('format') if isinstance(state, dict) else type(state).__name__})")
    return Shortlist(state["frequent"], state["table"], state["src_digest"], state["tgt_digest"])
