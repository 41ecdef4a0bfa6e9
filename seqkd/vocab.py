"""SentencePiece models and the vocabularies built on them.

A `Vocab` is a SentencePiece model plus the list of pieces one side of the training data actually uses, after
four special symbols. With a joint SentencePiece model each side still gets its own, smaller list (as OpenNMT-py and
fairseq build their dictionaries from the data), so the output layer only covers target-side pieces.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import sentencepiece as spm

from seqkd.io import SeqkdError, atomic_path

log = logging.getLogger(__name__)

SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")  # ids 0..3, the same as seqkd.model.PAD, UNK, BOS, EOS
PAD, UNK, BOS, EOS = range(4)


class Vocab:
    """Pieces of one side: encode text to ids and decode ids back to detokenized text."""

    def __init__(self, spm_proto: bytes, pieces: Sequence[str]):
        if tuple(pieces[: len(SPECIALS)]) != SPECIALS:
            raise SeqkdError(f"vocabulary must start with {SPECIALS}, got {tuple(pieces[:4])}")
        self.spm_proto = spm_proto
        self.sp = spm.SentencePieceProcessor(model_proto=spm_proto)
        self.pieces = list(pieces)
        self.index = {p: i for i, p in enumerate(self.pieces)}
        # spm id -> our id, so encoding is one C++ call plus one numpy gather
        self.id_map = np.full(self.sp.get_piece_size(), UNK, dtype=np.int64)
        for spm_id in range(self.sp.get_piece_size()):
            ours = self.index.get(self.sp.id_to_piece(spm_id))
            if ours is not None:
                self.id_map[spm_id] = ours

    def __len__(self) -> int:
        return len(self.pieces)

    @property
    def digest(self) -> str:
        """Identity of the vocabulary (model and piece list): checkpoints and data must agree on it."""
        h = hashlib.sha256(self.spm_proto)
        h.update("\n".join(self.pieces).encode())
        return h.hexdigest()[:16]

    def encode(self, lines: Sequence[str]) -> list[np.ndarray]:
        """Lines of raw text -> one int64 id array per line (no BOS/EOS)."""
        spm_ids = self.sp.encode(list(lines))
        return [self.id_map[np.asarray(ids, dtype=np.int64)] for ids in spm_ids]

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> detokenized text; stops at </s> and skips other special symbols.

        decode([id("▁New"), id("s")]) -> "News"
        """
        pieces = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i >= len(SPECIALS):
                pieces.append(self.pieces[i])
            elif i == UNK:
                pieces.append(" ⁇ ")
        return self.sp.decode_pieces(pieces)

    def to_state(self) -> dict:
        return {"spm_proto": self.spm_proto, "pieces": self.pieces}

    @classmethod
    def from_state(cls, state: dict) -> "Vocab":
        return cls(state["spm_proto"], state["pieces"])

    def save(self, path: str | os.PathLike) -> None:
        """The piece list, one per line; the SentencePiece model is saved beside it by the data stage."""
        with atomic_path(path) as tmp:
            tmp.write_text("\n".join(self.pieces) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, spm_path: str | os.PathLike, pieces_path: str | os.PathLike) -> "Vocab":
        try:
            proto = Path(spm_path).read_bytes()
            pieces = Path(pieces_path).read_text(encoding="utf-8").split("\n")[:-1]
        except FileNotFoundError as e:
            raise SeqkdError(f"{e.filename}: vocabulary file not found (run the data stage: make data)") from None
        return cls(proto, pieces)


def train_spm(sentences: Iterable[str], model_path: Path, *, vocab_size: int, model_type: str,
              character_coverage: float, threads: int) -> bytes:
    """Train a SentencePiece model on `sentences`; write it atomically to `model_path`; return its bytes.

    The model is written from memory (model_writer), not through a model_prefix: a prefix would be recorded in the
    model, so two runs in different folders would give different bytes for the same model."""
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=buffer, vocab_size=vocab_size, model_type=model_type,
        character_coverage=character_coverage, num_threads=max(1, threads),
        hard_vocab_limit=False,  # a small corpus may not support the requested size: take what it has
        pad_id=-1, unk_id=0, bos_id=-1, eos_id=-1, minloglevel=2, input_sentence_size=0,
        train_extremely_large_corpus=False)
    proto = buffer.getvalue()
    with atomic_path(model_path) as tmp:
        tmp.write_bytes(proto)
    return proto


def pieces_in_use(spm_proto: bytes, encoded: Iterable[np.ndarray]) -> list[str]:
    """SPECIALS + the pieces that occur in `encoded` (spm ids), in SentencePiece's order."""
    sp = spm.SentencePieceProcessor(model_proto=spm_proto)
    counts = np.zeros(sp.get_piece_size(), dtype=np.int64)
    for ids in encoded:
        counts += np.bincount(ids, minlength=len(counts))
    used = [sp.id_to_piece(i) for i in np.flatnonzero(counts) if not sp.is_unknown(int(i)) and not sp.is_control(int(i))]
    return list(SPECIALS) + used
