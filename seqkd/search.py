"""Greedy and beam search, batched over sentences and beams together.

The model is reached only through `encode` and `step`. Per step, for B live sentences with K beams each:
  log_probs (B, K, V) -> each beam's top 2K words (B, K, 2K) -> + scores (B, K, 1) -> top 2K of (B, K*2K).
A sentence's best 2K candidates are among its beams' best 2K each, so the two-stage top-k is the top 2K of all K*V;
it spares the search a pass that adds the scores to all K*V log-probabilities (the vocabulary-sized work of a step
is the output product, its log-softmax and one top-k). The step's log-probabilities are masked in place (words never
generated, and EOS where the length rules forbid it), so `step` must return a tensor of its own.
Each parent offers exactly one end-of-sentence candidate, so the top 2K always hold K others: an EOS never takes a
live slot. EOS candidates inside the top K finish; their score is length-normalized there and only there
(score / length**alpha). Finished hypotheses live in tensors (B, K); a sentence is done when it holds K of them, or
earlier when no live hypothesis can still beat its n-th best (exact, see `_bound`). Done sentences leave the batch.
Letters: B sentences, K beam, S source length, T target length, V vocabulary, H hidden.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np
import torch

from seqkd.data import make_batches, pad
from seqkd.inference import for_search
from seqkd.model import BOS, EOS, NEG_INF, PAD, Memory, Seq2Seq, State
from seqkd.shortlist import Shortlist


class Hypothesis(NamedTuple):
    tokens: list[int]  # without EOS
    score: float  # log-probability / length**alpha (length counts the EOS)
    log_prob: float  # raw log-probability of tokens + EOS


class _Beams(NamedTuple):
    """Everything indexed by live sentence, so one `select` drops done sentences from all of it."""

    memory: Memory  # B rows
    state: State  # B*K rows
    scores: torch.Tensor  # (B, K) raw log-probabilities of live hypotheses
    tokens: torch.Tensor  # (B*K, T+1) live prefixes
    fin_scores: torch.Tensor  # (B, K) normalized scores of finished hypotheses, best first
    fin_logp: torch.Tensor  # (B, K) their raw log-probabilities
    fin_tokens: torch.Tensor  # (B, K, T+1)
    max_len: torch.Tensor  # (B,) output length limit per sentence
    origin: torch.Tensor  # (B,) position of each live sentence in the input batch

    def select(self, rows: torch.Tensor, k: int) -> "_Beams":
        beam_rows = (rows.unsqueeze(1) * k + torch.arange(k, device=rows.device)).view(-1)  # (B'*K,)
        return _Beams(self.memory.select(rows), self.state.select(beam_rows), self.scores[rows],
                      self.tokens[beam_rows], self.fin_scores[rows], self.fin_logp[rows], self.fin_tokens[rows],
                      self.max_len[rows], self.origin[rows])


def _bound(scores: torch.Tensor, max_len: torch.Tensor, alpha: float) -> torch.Tensor:
    """(B,) upper bound on the normalized score any live hypothesis can still reach.

    Log-probabilities only fall as a hypothesis grows; with alpha > 0 the best case for a negative score s is the
    longest allowed length, s / (max_len + 1)**alpha."""
    best = scores.max(1).values  # (B,)
    if alpha == 0:
        return best
    return best / (max_len.to(best.dtype) + 1) ** alpha


@torch.inference_mode()
def beam_search(model: Seq2Seq, src: torch.Tensor, src_lens: torch.Tensor, *, k: int = 5, nbest: int = 1,
                alpha: float = 0.0, max_len_a: float = 1.5, max_len_b: int = 10, min_len: int = 1,
                early_stop: bool = True) -> list[list[Hypothesis]]:
    """Translate one batch: src (B, S) padded, src_lens (B,) -> per sentence its `nbest` hypotheses, best first.

    min_len: end-of-sentence is not allowed before this many tokens (fairseq's min_len; 1 = never an empty output),
    unless the length limit comes first.
    early_stop: stop a sentence as soon as no live hypothesis can change its n-best list (exact); without it a
    sentence runs until it holds K finished hypotheses or reaches its length limit.
    """
    if not 1 <= nbest <= k:
        raise ValueError(f"nbest must be between 1 and the beam size {k}, got {nbest}")
    V = model.tgt_vocab
    B0, dev = src.size(0), src.device
    memory, state = model.encode(src, src_lens)
    max_len = (max_len_a * src_lens.to(torch.float64) + max_len_b).floor().long().clamp(min=1)  # (B,)
    T = int(max_len.max())
    scores = torch.full((B0, k), NEG_INF, device=dev)
    scores[:, 0] = 0.0  # one live hypothesis to start with, so step one does not pick K copies of the same word
    beams = _Beams(memory, state.select(torch.arange(B0, device=dev).repeat_interleave(k)), scores,
                   torch.full((B0 * k, T + 1), EOS, dtype=torch.long, device=dev),
                   torch.full((B0, k), NEG_INF, device=dev), torch.full((B0, k), NEG_INF, device=dev),
                   torch.full((B0, k, T + 1), EOS, dtype=torch.long, device=dev), max_len,
                   torch.arange(B0, device=dev))
    out = (torch.full((B0, k), NEG_INF, device=dev), torch.full((B0, k), NEG_INF, device=dev),
           torch.full((B0, k, T + 1), EOS, dtype=torch.long, device=dev))  # what retired sentences leave
    prev = torch.full((B0 * k,), BOS, dtype=torch.long, device=dev)
    not_eos = torch.ones(1, 1, V, dtype=torch.bool, device=dev)
    not_eos[..., EOS] = False
    never = torch.tensor([PAD, BOS], device=dev)  # padding and start symbols are never generated
    limits = set(max_len.tolist())  # the steps at which some sentence must end (known here: no sync in the loop)
    n = min(2 * k, V)  # candidates per beam

    for t in range(T + 1):
        B = beams.scores.size(0)
        log_probs, state = model.step(prev, beams.state, beams.memory)  # (B*K, V)
        log_probs = log_probs.float().view(B, k, V).index_fill_(2, never, NEG_INF)
        at_limit = (beams.max_len == t).view(B, 1, 1)  # t tokens so far: only EOS may follow
        if t in limits:
            log_probs.masked_fill_(at_limit & not_eos, NEG_INF)
        if t < min_len:  # too short to end, except where the length limit says it must
            log_probs[:, :, EOS].masked_fill_(~at_limit.view(B, 1), NEG_INF)
        beam_top, beam_token = log_probs.topk(n, dim=2)  # (B, K, n)
        top, idx = (beams.scores.unsqueeze(2) + beam_top).view(B, k * n).topk(2 * k, dim=1)  # (B, 2K)
        parent, token = idx // n, beam_token.view(B, k * n).gather(1, idx)  # (B, 2K) each
        is_eos = token == EOS
        finished = _finish(beams, top[:, :k], parent[:, :k], is_eos[:, :k], t, alpha)
        beams, prev = _advance(beams, state, finished, top, parent, token, is_eos, t)

        done = torch.isfinite(beams.fin_scores[:, k - 1]) | (beams.max_len <= t)  # (B,) K finished, or at the limit
        if early_stop:
            done |= beams.fin_scores[:, nbest - 1] >= _bound(beams.scores, beams.max_len, alpha)
        if bool(done.any()):  # the one host synchronization of a step
            beams, prev = _retire(beams, prev, done, out)
            if beams is None:
                break

    return _to_hypotheses(*(x[:, :nbest].cpu() for x in out))


def _finish(beams: _Beams, top: torch.Tensor, parent: torch.Tensor, is_eos: torch.Tensor, t: int,
            alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Merge the EOS candidates with a finite score among the top K into each sentence's K finished hypotheses;
    their score is length-normalized here and only here (the length counts the EOS).

    top, parent, is_eos: (B, K) of the step's best candidates. Returns fin_scores, fin_logp (B, K), fin_tokens
    (B, K, T+1), best first."""
    B, k = top.shape
    fin_new = is_eos & torch.isfinite(top)  # (B, K)
    new_scores = torch.where(fin_new, top / (t + 1) ** alpha, NEG_INF)  # (B, K)
    new_logp = torch.where(fin_new, top, NEG_INF)
    rows = (torch.arange(B, device=top.device).unsqueeze(1) * k + parent).view(-1)  # (B*K,)
    new_tokens = beams.tokens[rows].view(B, k, -1)  # prefixes of the candidates; position t holds EOS
    fin_scores, pick = torch.cat([beams.fin_scores, new_scores], 1).topk(k, dim=1)  # (B, K) of 2K
    fin_logp = torch.cat([beams.fin_logp, new_logp], 1).gather(1, pick)
    fin_tokens = torch.cat([beams.fin_tokens, new_tokens], 1).gather(
        1, pick.unsqueeze(2).expand(-1, -1, new_tokens.size(2)))  # (B, K, T+1)
    return fin_scores, fin_logp, fin_tokens


def _advance(beams: _Beams, state: State, finished: tuple, top: torch.Tensor, parent: torch.Tensor,
             token: torch.Tensor, is_eos: torch.Tensor, t: int) -> tuple[_Beams, torch.Tensor]:
    """The live hypotheses of the next step: the best K of the 2K candidates that are not EOS (there are always K:
    each parent offers one EOS). Returns the beams, with `finished` in them, and the tokens to feed (B*K,)."""
    B, k = top.size(0), top.size(1) // 2
    live_top, live_pick = torch.where(is_eos, NEG_INF, top).topk(k, dim=1)  # (B, K)
    live_token = token.gather(1, live_pick)  # (B, K)
    rows = (torch.arange(B, device=top.device).unsqueeze(1) * k + parent.gather(1, live_pick)).view(-1)  # (B*K,)
    tokens = beams.tokens[rows]  # (B*K, T+1)
    tokens[:, t] = live_token.view(-1)
    return _Beams(beams.memory, state.select(rows), live_top, tokens, *finished, beams.max_len,
                  beams.origin), live_token.view(-1)


def _retire(beams: _Beams, prev: torch.Tensor, done: torch.Tensor,
            out: tuple) -> tuple[_Beams | None, torch.Tensor]:
    """Copy the finished lists of the `done` sentences (B,) into `out` at their input positions and drop those
    sentences from the batch; (None, prev) when none is left."""
    k = beams.scores.size(1)
    for target, source in zip(out, (beams.fin_scores, beams.fin_logp, beams.fin_tokens)):
        target[beams.origin[done]] = source[done]
    keep = (~done).nonzero().squeeze(1)
    if keep.numel() == 0:
        return None, prev
    return beams.select(keep, k), prev.view(-1, k)[keep].view(-1)


def _to_hypotheses(scores: torch.Tensor, logp: torch.Tensor, tokens: torch.Tensor) -> list[list[Hypothesis]]:
    """Tensors on the CPU (B, N), (B, N), (B, N, T+1) -> lists, tokens cut at the first EOS."""
    out = []
    for s_row, l_row, t_rows in zip(scores.tolist(), logp.tolist(), tokens.numpy()):
        hyps = []
        for s, lp, toks in zip(s_row, l_row, t_rows):
            if s == -math.inf:
                continue
            end = int(np.argmax(toks == EOS)) if (toks == EOS).any() else len(toks)
            hyps.append(Hypothesis(toks[:end].tolist(), s, lp))
        out.append(hyps or [Hypothesis([], -math.inf, -math.inf)])  # only when every path had probability 0
    return out


def greedy_search(model: Seq2Seq, src: torch.Tensor, src_lens: torch.Tensor, **kwargs) -> list[list[Hypothesis]]:
    return beam_search(model, src, src_lens, k=1, nbest=1, **kwargs)


def translate_ids(model: Seq2Seq, sources: Sequence[np.ndarray], *, beam: int = 5, nbest: int = 1, alpha: float = 0.0,
              max_len_a: float = 1.5, max_len_b: int = 10, min_len: int = 1, batch_size: int = 64,
              batch_tokens: int = 0, device: torch.device | str = "cpu", progress=None,
              shortlist: Shortlist | None = None) -> list[list[Hypothesis]]:
    """Translate token-id sequences (any order, any count) -> n-best lists in input order.

    Sentences are sorted by length so batches hold similar lengths; empty sources give empty translations. A
    Seq2Seq runs through its inference path (seqkd.inference), built here once. With a `shortlist`, each batch
    scores only its shortlist's target words (seqkd.shortlist)."""
    was_training = model.training
    model.eval()
    trained, model = model, for_search(model)
    if shortlist is not None and not hasattr(model, "restricted"):
        raise ValueError("a shortlist needs a Seq2Seq or an InferenceModel")
    results: list[list[Hypothesis] | None] = [None] * len(sources)
    lengths = np.array([len(s) for s in sources], dtype=np.int64)
    for i in np.flatnonzero(lengths == 0):
        results[i] = [Hypothesis([], 0.0, 0.0)]
    try:
        for index in make_batches(lengths, None, batch_size=batch_size, batch_tokens=batch_tokens, longest_first=True):
            index = index[lengths[index] > 0]
            if len(index) == 0:
                continue
            src = pad([sources[i] for i in index]).to(device)
            src_lens = torch.from_numpy(lengths[index]).to(device)
            words = shortlist.for_batch(src) if shortlist is not None else None
            hyps = beam_search(model if words is None else model.restricted(words), src, src_lens, k=beam,
                               nbest=nbest, alpha=alpha, max_len_a=max_len_a, max_len_b=max_len_b, min_len=min_len)
            if words is not None:
                words = words.tolist()
                hyps = [[h._replace(tokens=[words[t] for t in h.tokens]) for h in sent] for sent in hyps]
            for i, h in zip(index, hyps):
                results[i] = h
            if progress is not None:
                progress.update(len(index))
    finally:
        trained.train(was_training)
    return results  # type: ignore[return-value]
