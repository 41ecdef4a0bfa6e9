import itertools
import math

import numpy as np
import pytest
import torch

from seqkd.config import ModelConfig
from seqkd.model import BOS, EOS, PAD, UNK, Memory, Seq2Seq, State
from seqkd.search import beam_search, translate_ids

A, B_ = 4, 5  # the scripted model's two words


class MarkovModel:
    """A scripted `step`: the next word's probabilities depend only on the previous word, through a table.

    From <s>: a 0.6, b 0.3, </s> 0.1.   From a: a 0.1, b 0.5, </s> 0.4.   From b: a 0.25, b 0.05, </s> 0.7.
    """

    tgt_vocab = 6
    table = {BOS: {A: 0.6, B_: 0.3, EOS: 0.1}, A: {A: 0.1, B_: 0.5, EOS: 0.4}, B_: {A: 0.25, B_: 0.05, EOS: 0.7}}

    def encode(self, src, src_lens):
        n = src.size(0)
        z = torch.zeros(n, 1, 1)
        return Memory(z, z, torch.zeros(n, 1, dtype=torch.bool)), State(torch.zeros(1, n, 1), torch.zeros(1, n, 1),
                                                                         torch.zeros(n, 1))

    def step(self, prev, state, memory):
        log_probs = torch.full((prev.size(0), self.tgt_vocab), -math.inf)
        for row, p in enumerate(prev.tolist()):
            for word, prob in self.table[p].items():
                log_probs[row, word] = math.log(prob)
        return log_probs, state

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    training = False


ONE_SOURCE = (torch.tensor([[7, 8]]), torch.tensor([2]))


def test_scripted_nbest_worked_out_by_hand():
    # k = 2, no length normalization, at most 3 words.
    # step 0: a .6, b .3, </s> .1 -> top 2 are a and b: no </s> in the top k, nothing finishes; live a, b.
    # step 1: ab .30, a</s> .24, b</s> .21, ba .075, aa .06 -> top 2: ab (live), a</s> .24 (finished);
    #         live: the best two that are not </s>: ab .30, ba .075.
    # step 2: ab</s> .21, aba .075, bab .0375, ba</s> .03 -> ab</s> finishes: two finished, done.
    hyps = beam_search(MarkovModel(), *ONE_SOURCE, k=2, nbest=2, max_len_a=0, max_len_b=3)[0]
    assert [h.tokens for h in hyps] == [[A], [A, B_]]
    assert hyps[0].score == pytest.approx(math.log(0.24), abs=1e-6)
    assert hyps[1].score == pytest.approx(math.log(0.21), abs=1e-6)


def test_length_normalization_applies_once_when_a_hypothesis_finishes():
    # alpha = 1: a</s> scores log(.24) / 2 = -0.714, ab</s> log(.21) / 3 = -0.520: ab</s> ranks first,
    # while log_prob keeps the raw log-probability
    hyps = beam_search(MarkovModel(), *ONE_SOURCE, k=2, nbest=2, alpha=1.0, max_len_a=0, max_len_b=3)[0]
    assert [h.tokens for h in hyps] == [[A, B_], [A]]
    assert hyps[0].score == pytest.approx(math.log(0.21) / 3, abs=1e-6)
    assert hyps[0].log_prob == pytest.approx(math.log(0.21), abs=1e-6)
    assert hyps[1].score == pytest.approx(math.log(0.24) / 2, abs=1e-6)


def test_eos_candidate_never_takes_a_live_slot():
    # From <s>, </s> is the most likely next symbol: it finishes, and both live slots still go to words.
    model = MarkovModel()
    model.table = {**MarkovModel.table, BOS: {EOS: 0.5, A: 0.3, B_: 0.2}}
    hyps = beam_search(model, *ONE_SOURCE, k=2, nbest=2, max_len_a=0, max_len_b=3, min_len=0, early_stop=False)[0]
    # min_len 0 lets </s> end the empty hypothesis. finished: [] .5 at step 0; then a</s> .12, b</s> .14, ab .15 live ... -> n-best [] .5, b</s> .14
    assert [h.tokens for h in hyps] == [[], [B_]]
    assert hyps[1].score == pytest.approx(math.log(0.2 * 0.7), abs=1e-6)


def test_length_limit_allows_only_eos():
    hyps = beam_search(MarkovModel(), *ONE_SOURCE, k=1, max_len_a=0, max_len_b=1)[0]
    # greedy: a (.6), then the limit of one word forces </s>: a</s> = .6 * .4
    assert hyps[0].tokens == [A] and hyps[0].score == pytest.approx(math.log(0.24), abs=1e-6)


def test_min_len_forbids_the_empty_output_unless_the_limit_comes_first():
    # From <s>, </s> is the most likely symbol (.5): greedy without a minimum length returns the empty output.
    model = MarkovModel()
    model.table = {**MarkovModel.table, BOS: {EOS: 0.5, A: 0.3, B_: 0.2}}
    assert beam_search(model, *ONE_SOURCE, k=1, max_len_a=0, max_len_b=3, min_len=0)[0][0].tokens == []
    # min_len 1: step 0 takes a (.3); step 1: ab .15 beats a</s> .12; step 2: ab</s> .105 ends it
    hyp = beam_search(model, *ONE_SOURCE, k=1, max_len_a=0, max_len_b=3, min_len=1)[0][0]
    assert hyp.tokens == [A, B_] and hyp.score == pytest.approx(math.log(0.3 * 0.5 * 0.7), abs=1e-6)
    # min_len 2 with a limit of 1 word: the limit wins, a</s> = .3 * .4
    hyp = beam_search(model, *ONE_SOURCE, k=1, max_len_a=0, max_len_b=1, min_len=2)[0][0]
    assert hyp.tokens == [A] and hyp.score == pytest.approx(math.log(0.12), abs=1e-6)


@pytest.mark.parametrize("beam", [1, 5])
def test_a_model_that_prefers_eos_gives_no_empty_output_by_default(beam):
    model = random_model(vocab=12)
    with torch.no_grad():
        model.out.bias[EOS] = 20.0  # </s> first at every step
    srcs = sources(40, seed=3)
    empty = translate_ids(model, srcs, beam=beam, min_len=0)
    assert all(h[0].tokens == [] for h in empty)
    hyps = translate_ids(model, srcs, beam=beam)
    assert all(len(h[0].tokens) >= 1 for h in hyps)


def random_model(seed=0, vocab=9, **kw):
    torch.manual_seed(seed)
    cfg = dict(layers=2, hidden=16, emb=8, dropout=0.0, init_range=0.8)
    cfg.update(kw)
    return Seq2Seq(ModelConfig(**cfg), 12, vocab).eval()


def sources(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(4, 12, size=rng.integers(1, 7)) for _ in range(n)]


def teacher_forced_log_prob(model, src, tokens):
    src_t = torch.tensor(src)[None]
    tgt_in = torch.tensor([BOS] + tokens)[None]
    with torch.no_grad():
        log_probs = torch.log_softmax(model(src_t, torch.tensor([len(src)]), tgt_in), -1)[0]
    return sum(log_probs[t, w].item() for t, w in enumerate(tokens + [EOS]))


def reference_greedy(model, src, max_len):
    """Argmax one step at a time, written independently of beam_search."""
    memory, state = model.encode(torch.tensor(src)[None], torch.tensor([len(src)]))
    prev, out = torch.tensor([BOS]), []
    with torch.no_grad():
        for t in range(max_len + 1):
            log_probs, state = model.step(prev, state, memory)
            log_probs[0, [PAD, BOS]] = -math.inf
            word = EOS if t == max_len else int(log_probs[0].argmax())
            if word == EOS:
                return out
            out.append(word)
            prev = torch.tensor([word])
    return out


def test_beam_size_one_equals_greedy():
    model = random_model()
    srcs = sources(8)
    hyps = translate_ids(model, srcs, beam=1, max_len_a=1.0, max_len_b=3)
    for src, h in zip(srcs, hyps):
        assert h[0].tokens == reference_greedy(model, list(src), int(1.0 * len(src) + 3))


@pytest.mark.parametrize("beam,alpha", [(1, 0.0), (5, 0.0), (4, 1.0)])
def test_batched_equals_one_sentence_at_a_time(beam, alpha):
    model = random_model(vocab=14)
    srcs = sources(7, seed=1)
    together = translate_ids(model, srcs, beam=beam, nbest=beam, alpha=alpha, batch_size=7)
    for src, hyps in zip(srcs, together):
        alone = translate_ids(model, [src], beam=beam, nbest=beam, alpha=alpha, batch_size=1)[0]
        assert np.allclose([h.score for h in hyps], [h.score for h in alone], atol=1e-5)
        for a, b in zip(hyps, alone):  # the same list; two hypotheses may trade places only on a tie in score
            assert a.tokens == b.tokens or any(abs(a.score - c.score) < 1e-5 and c.tokens == a.tokens for c in alone)


def test_score_equals_teacher_forced_log_probability():
    model = random_model(vocab=14)
    srcs = sources(5, seed=2)
    for src, hyps in zip(srcs, translate_ids(model, srcs, beam=4, nbest=4)):
        for h in hyps:
            assert h.log_prob == pytest.approx(teacher_forced_log_prob(model, list(src), h.tokens), abs=1e-4)


def test_large_beam_finds_the_brute_force_best():
    # 7 symbols, of which <pad> and <s> are never generated: words {<unk>, 4, 5, 6} and </s>; at most 3 words.
    # A beam of 64 >= 4^3 keeps every prefix, so the search is exact.
    model = random_model(seed=3, vocab=7, init_range=1.5)
    for src in sources(4, seed=3):
        best = max((teacher_forced_log_prob(model, list(src), list(seq)), seq)
                   for n in range(4) for seq in itertools.product([UNK, 4, 5, 6], repeat=n))
        hyp = translate_ids(model, [src], beam=64, max_len_a=0, max_len_b=3, min_len=0)[0][0]
        # the best score of all 85 outputs; on a near-tie the search may return the other one of equal score
        assert hyp.score == pytest.approx(best[0], abs=1e-4)
        assert teacher_forced_log_prob(model, list(src), hyp.tokens) == pytest.approx(best[0], abs=1e-4)


@pytest.mark.parametrize("alpha,nbest", [(0.0, 1), (0.0, 3), (1.0, 1), (0.6, 2)])
def test_early_stop_does_not_change_the_nbest_list(alpha, nbest):
    model = random_model(seed=4, vocab=10, init_range=1.0)
    src = sources(10, seed=4)
    for s in src:
        s_t, lens = torch.tensor(s)[None], torch.tensor([len(s)])
        fast = beam_search(model, s_t, lens, k=4, nbest=nbest, alpha=alpha)[0]
        full = beam_search(model, s_t, lens, k=4, nbest=nbest, alpha=alpha, early_stop=False)[0]
        assert [h.tokens for h in fast] == [h.tokens for h in full]


def test_translate_restores_input_order_and_keeps_empty_lines():
    model = random_model()
    srcs = sources(9, seed=5)
    srcs[3] = np.zeros(0, dtype=np.int64)
    out = translate_ids(model, srcs, beam=3, batch_size=4)
    assert out[3][0].tokens == []
    for i, src in enumerate(srcs):
        if len(src):
            assert out[i][0].tokens == translate_ids(model, [src], beam=3)[0][0].tokens


def test_outputs_respect_the_length_limit():
    model = random_model(seed=6, init_range=2.0)
    for src, hyps in zip(sources(8, seed=6), translate_ids(model, sources(8, seed=6), beam=3, nbest=3,
                                                       max_len_a=0.5, max_len_b=2)):
        assert all(len(h.tokens) <= int(0.5 * len(src) + 2) for h in hyps)
