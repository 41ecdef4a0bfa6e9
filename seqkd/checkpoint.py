"""Checkpoints: self-contained (weights, model sizes, vocabularies with their SentencePiece models, lineage),
written atomically, loaded with clear errors."""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from seqkd import io
from seqkd.config import ModelConfig, from_dict, to_dict
from seqkd.io import SeqkdError
from seqkd.inference import INT8_FORMAT, InferenceModel, from_int8_state, quantize
from seqkd.model import Seq2Seq
from seqkd.vocab import Vocab

FORMAT = 1


def save_checkpoint(path: str | Path, model: Seq2Seq, src_vocab: Vocab, tgt_vocab: Vocab, **extra: Any) -> None:
    """Write model weights, sizes and vocabularies (+ `extra`: optimizer, training state, config, lineage)."""
    state = {"format": FORMAT, "model": model.state_dict(), "model_config": to_dict(model.cfg),
             "vocab": {"src": src_vocab.to_state(), "tgt": tgt_vocab.to_state()}, **extra}
    with io.atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise SeqkdError(f"{path}: checkpoint not found")
    if path.is_dir():
        raise SeqkdError(f"{path}: a folder, not a checkpoint (best.pt or last.pt inside it?)")
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise SeqkdError(f"{path}: an empty file (0 bytes), not a checkpoint")
    if head != b"PK\x03\x04":  # torch.save writes a zip archive
        kind = "text" if all(32 <= b < 127 or b in b"\t\r\n" for b in head) else "data of another kind"
        raise SeqkdError(f"{path}: not a seqkd checkpoint (those are zip archives written by torch.save; this file "
                         f"holds {kind}, starting {head!r})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError, KeyError,
            IndexError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise SeqkdError(f"{path}: not a readable checkpoint (truncated or corrupt?): {first}") from None
    if isinstance(state, dict) and state.get("format") == INT8_FORMAT:
        return state
    if not isinstance(state, dict) or state.get("format") != FORMAT or "model" not in state:
        raise SeqkdError(f"{path}: not a seqkd checkpoint (format {FORMAT})")
    return state


def is_int8(state: dict) -> bool:
    """An int8 model written by `seqkd quantize` (search only: no training, no teacher forcing)."""
    return state.get("format") == INT8_FORMAT


def model_from_state(state: dict, where: str = "checkpoint") -> tuple[Seq2Seq, Vocab, Vocab]:
    cfg = from_dict(ModelConfig, state["model_config"], f"{where}: model_config")
    src_vocab, tgt_vocab = Vocab.from_state(state["vocab"]["src"]), Vocab.from_state(state["vocab"]["tgt"])
    model = Seq2Seq(cfg, len(src_vocab), len(tgt_vocab))
    model.load_state_dict(state["model"])
    return model, src_vocab, tgt_vocab


def load_model(path: str | Path, device: str | torch.device = "cpu", *,
               int8: bool = False) -> tuple[Seq2Seq | InferenceModel, Vocab, Vocab, dict]:
    """(model in eval mode on `device`, source vocab, target vocab, the whole checkpoint dict).

    An int8 file (seqkd quantize) gives its InferenceModel; `int8` quantizes a trained model's weights on loading
    (both run on the CPU only)."""
    state = read_checkpoint(path)
    src_vocab, tgt_vocab = Vocab.from_state(state["vocab"]["src"]), Vocab.from_state(state["vocab"]["tgt"])
    if is_int8(state) or int8:
        if torch.device(device).type != "cpu":
            raise SeqkdError(f"{path}: int8 models run on the CPU only (--device cpu)")
        if is_int8(state):
            return from_int8_state(state, str(path)), src_vocab, tgt_vocab, state
    model, src_vocab, tgt_vocab = model_from_state(state, str(path))
    model = model.to(device).eval()
    if int8:
        return quantize(model), src_vocab, tgt_vocab, state
    return model, src_vocab, tgt_vocab, state


def check_vocab(where: str, vocab: Vocab, expected: Vocab, side: str) -> None:
    if vocab.digest != expected.digest:
        raise SeqkdError(f"{where}: its {side} vocabulary ({len(vocab)} pieces, digest {vocab.digest}) differs from "
                         f"the data's ({len(expected)} pieces, digest {expected.digest}); it was trained on other data")
