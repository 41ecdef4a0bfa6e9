"""Scores of a model on a data split, shared by training's validation and by evaluation."""
from __future__ import annotations

import contextlib
import math

import sacrebleu
import torch

from seqkd.data import Split, collate, make_batches
from seqkd.model import PAD, Seq2Seq
from seqkd.search import translate_ids


def perplexity(model, split: Split, device, *, batch_size: int = 64, autocast=contextlib.nullcontext) -> float:
    """exp(mean NLL per target token, EOS included) of the split's references, teacher-forced. A Seq2Seq scores all
    positions in one pass (under `autocast()`, as in training); a search-only model (int8) one step at a time."""
    nll, tokens = 0.0, 0
    with torch.inference_mode():
        for index in make_batches(split.src.lens, split.tgt.lens, batch_size=batch_size):
            batch = collate(split, index).to(device)
            mask = batch.tgt_out != PAD
            if isinstance(model, Seq2Seq):
                with autocast():
                    logits = model(batch.src, batch.src_lens, batch.tgt_in, mask)
                nll += float(torch.nn.functional.cross_entropy(logits.float(), batch.tgt_out[mask], reduction="sum"))
            else:
                log_probs = stepwise_log_probs(model, batch)[mask]
                nll -= float(log_probs.gather(1, batch.tgt_out[mask].unsqueeze(1)).sum())
            tokens += batch.n_tokens
    return math.exp(min(nll / max(tokens, 1), 100))


def stepwise_log_probs(model, batch) -> torch.Tensor:
    """Teacher-forced log-probabilities (B, T, V) through a model's encode and step."""
    memory, state = model.encode(batch.src, batch.src_lens)
    out = []
    for t in range(batch.tgt_in.size(1)):
        log_probs, state = model.step(batch.tgt_in[:, t], state, memory)
        out.append(log_probs.float())
    return torch.stack(out, 1)


def greedy_bleu(model, split: Split, refs: list[str], tgt_vocab, device, *, max_sentences: int = 0) -> float:
    """sacrebleu BLEU of greedy search on the split's first `max_sentences` sentences (0 = all), detokenized."""
    n = len(split) if not max_sentences else min(len(split), max_sentences)
    hyps = translate_ids(model, [split.src[i] for i in range(n)], beam=1, device=device)
    text = [tgt_vocab.decode(h[0].tokens) for h in hyps]
    return sacrebleu.corpus_bleu(text, [refs[:n]], force=True).score
