"""Evaluation of one checkpoint: the columns of the paper's Table 1 and decoding speed.

  BLEU K=1 / K=5     sacrebleu on detokenized text (its signature is recorded), greedy and beam 5; also
                     "tokenized BLEU", multi-bleu.perl style: whitespace tokens of Moses-like tokenized text
  PPL                perplexity of the references, teacher-forced
  p(t = y)           mean probability the model gives its own beam output (Kim & Rush, Table 1)
  parameters, checkpoint size, and greedy and beam speed (sentences/s, target pieces/s; device and batch named)
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import sacrebleu
import torch

from seqkd import io
from seqkd.checkpoint import check_vocab, load_model
from seqkd.config import ReportConfig, to_dict
from seqkd.data import Side, Split, load_split
from seqkd.device import resolve_device
from seqkd.io import SeqkdError
from seqkd.metrics import perplexity
from seqkd.model import Seq2Seq, count_parameters
from seqkd.prepare import load_vocabs, read_lines
from seqkd.speed import time_decode
from seqkd.translate_text import check_search

_MOSES_LIKE = re.compile(r"(\w)-(?=\w)")


def tokenized_bleu(hyps: list[str], refs: list[str]) -> float:
    """BLEU over whitespace tokens after 13a tokenization with hyphens split (Moses' aggressive mode), the way
    papers that ran multi-bleu.perl on tokenized text report it. An approximation: Moses' own tokenizer differs
    in rare cases."""
    tok = sacrebleu.tokenizers.tokenizer_13a.Tokenizer13a()

    def prep(s: str) -> str:
        return tok(_MOSES_LIKE.sub(r"\1 @-@ ", s))

    return sacrebleu.corpus_bleu([prep(h) for h in hyps], [[prep(r) for r in refs]], tokenize="none", force=True).score


def evaluate(checkpoint: str | Path, data_dir: str | Path, *, settings: ReportConfig = ReportConfig(),
             split: str = "test", device: str = "auto", max_sentences: int = 0) -> dict:
    """All Table-1 figures of one checkpoint on a split of a data stage: greedy and beam search with `settings`
    (speeds are the median of settings.passes)."""
    dev = resolve_device(device)
    data_dir = Path(data_dir)
    model, src_vocab, tgt_vocab, state = load_model(checkpoint, dev, int8=settings.int8)
    data_src, data_tgt = load_vocabs(data_dir)
    check_vocab(str(checkpoint), src_vocab, data_src, "source")
    check_vocab(str(checkpoint), tgt_vocab, data_tgt, "target")
    check_search(settings.beam, 1, tgt_vocab)
    manifest = io.read_manifest(data_dir)
    data = load_split(data_dir, split)
    refs = read_lines(data_dir / f"{split}.{manifest['tgt_lang']}")
    n = min(len(data), max_sentences) if max_sentences else len(data)
    sources, refs = [data.src[i] for i in range(n)], refs[:n]

    result = {"checkpoint": str(checkpoint), "split": split, "sentences": n, "device": str(dev),
              "threads": torch.get_num_threads(), "batch_size": settings.batch_size,
              "parameters": count_parameters(model) if isinstance(model, Seq2Seq) else model.parameters, "int8": settings.int8,
              "checkpoint_mb": round(Path(checkpoint).stat().st_size / 2**20, 1),
              "lineage": state.get("lineage"), "search": settings.search()}
    for name, k in (("greedy", 1), ("beam", settings.beam)):
        speed, hyps = time_decode(model, sources, device=dev, passes=settings.passes,
                                  **{**settings.search(), "beam": k})
        seconds = speed.seconds
        text = [tgt_vocab.decode(h[0].tokens) for h in hyps]
        bleu = sacrebleu.metrics.BLEU(force=True)
        score = bleu.corpus_score(text, [refs])  # pre-tokenized-looking text (synthetic corpus) is scored as is
        n_tokens = sum(len(h[0].tokens) for h in hyps)
        result[name] = {"beam": k, "bleu": round(score.score, 2), "signature": str(bleu.get_signature()),
                        "tokenized_bleu": round(tokenized_bleu(text, refs), 2), "seconds": round(seconds, 3),
                        "passes_s": speed.passes_s, "other_cores": speed.other_cores,
                        "sent_per_s": round(n / seconds, 1), "tok_per_s": round(n_tokens / seconds, 1),
                        "length_ratio": round(n_tokens / max(1, int(data.tgt.lens[:n].sum())), 3)}
        result[name]["hypotheses"] = text
        if name == "beam":
            # p(t = y): the probability of the model's own beam output, averaged over sentences
            result["p_beam_output"] = float(np.mean([math.exp(h[0].log_prob) for h in hyps]))
    head = Split(Side(data.src.tok, data.src.off[:n + 1]), Side(data.tgt.tok, data.tgt.off[:n + 1]))
    result["ppl"] = round(perplexity(model, head, dev), 3)
    return result


def cached_evaluate(checkpoint: str | Path, data_dir: str | Path, out: str | Path, *, settings: ReportConfig,
                    device: str = "auto") -> dict:
    """evaluate(), stored in `out` (JSON) and reused while the checkpoint, the data and the settings are
    unchanged."""
    out = Path(out)
    key = {"checkpoint_sha256": io.sha256_file(checkpoint), "data": (io.read_manifest(data_dir) or {}).get("key_hash"),
           **to_dict(settings)}
    if out.exists():
        old = io.read_json(out)
        if old.get("key") == key:
            return old
    if not Path(checkpoint).exists():
        raise SeqkdError(f"{checkpoint}: checkpoint not found")
    result = {"key": key, **evaluate(checkpoint, data_dir, settings=settings, device=device)}
    io.write_json(out, result)
    return result
