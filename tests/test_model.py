import math

import pytest
import torch
import torch.nn.functional as F

from seqkd.config import ModelConfig
from seqkd.model import BOS, PAD, RecurrentLinear, Seq2Seq, count_parameters


def tiny(layers=2, hidden=16, emb=8, dropout=0.0, **kw):
    torch.manual_seed(0)
    return Seq2Seq(ModelConfig(layers=layers, hidden=hidden, emb=emb, dropout=dropout, init_range=0.5, **kw), 11, 13)


def batch():
    src = torch.tensor([[4, 5, 6, 7, 8], [9, 4, 5, PAD, PAD], [6, PAD, PAD, PAD, PAD]])
    src_lens = torch.tensor([5, 3, 1])
    tgt_in = torch.tensor([[BOS, 4, 5, 6], [BOS, 7, 8, PAD], [BOS, 9, PAD, PAD]])
    return src, src_lens, tgt_in


def reference_logits(model: Seq2Seq, src, src_lens, tgt_in):
    """The model's equations written out plainly, one sentence and one step at a time (Luong et al. 2015:
    score = h_t^T W_a h_s, h~ = tanh(W_c [c; h]), input feeding), to check the optimized implementation."""
    dec, out = model.decoder, []
    for b in range(src.size(0)):
        n = int(src_lens[b])
        enc_out, (h, c) = model.encoder.lstm(model.encoder.emb(src[b:b + 1, :n]))  # (1, n, H)
        h, c = list(h[:, 0]), list(c[:, 0])
        feed = torch.zeros(model.cfg.hidden)
        rows = []
        for t in range(tgt_in.size(1)):
            x = torch.cat([dec.emb.weight[tgt_in[b, t]], feed])
            for layer in range(dec.layers):
                w_ih = torch.cat([dec.w_emb, dec.w_rec[0][:, :model.cfg.hidden]], 1) if layer == 0 \
                    else dec.w_rec[layer][:, :model.cfg.hidden]
                w_hh = dec.w_rec[layer][:, model.cfg.hidden:]
                gates = w_ih @ x + w_hh @ h[layer] + dec.bias[layer]
                i, f, g, o = gates.chunk(4)
                c[layer] = torch.sigmoid(f) * c[layer] + torch.sigmoid(i) * torch.tanh(g)
                h[layer] = torch.sigmoid(o) * torch.tanh(c[layer])
                x = h[layer]
            scores = enc_out[0] @ (dec.w_a.weight.t() @ x)  # h_s^T W_a^T h_t = h_t^T W_a h_s
            ctx = torch.softmax(scores, 0) @ enc_out[0]
            feed = torch.tanh(dec.w_c.weight @ torch.cat([ctx, x]))
            rows.append(model.out(feed))
        out.append(torch.stack(rows))
    return torch.stack(out)  # (B, T, V)


def test_forward_matches_the_equations_written_out():
    model = tiny(layers=2)
    src, src_lens, tgt_in = batch()
    expected = reference_logits(model, src, src_lens, tgt_in)
    got = model(src, src_lens, tgt_in)
    mask = tgt_in != PAD
    assert torch.allclose(got[mask], expected[mask], atol=1e-5)


def test_gradients_match_the_equations_written_out():
    """The per-step weight gradients are deferred to one product over all steps (RecurrentLinear); they must equal
    plain autograd's through the reference implementation."""
    model = tiny(layers=2)
    src, src_lens, tgt_in = batch()
    mask = tgt_in != PAD
    weights = torch.randn(int(mask.sum()), 13)
    (model(src, src_lens, tgt_in, mask) * weights).sum().backward()
    fast = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    (reference_logits(model, src, src_lens, tgt_in)[mask] * weights).sum().backward()
    for name, p in model.named_parameters():
        assert torch.allclose(fast[name], p.grad, atol=1e-5), name


def test_forward_equals_a_loop_of_step():
    model = tiny(layers=3).eval()
    src, src_lens, tgt_in = batch()
    logits = model(src, src_lens, tgt_in)
    memory, state = model.encode(src, src_lens)
    for t in range(tgt_in.size(1)):
        log_probs, state = model.step(tgt_in[:, t], state, memory)
        assert torch.allclose(log_probs, torch.log_softmax(logits[:, t], -1), atol=1e-5)


def test_padding_never_changes_a_sentence():
    model = tiny(bidirectional=True).eval()
    src, src_lens, tgt_in = batch()
    together = model(src, src_lens, tgt_in)
    for b in range(3):
        n, m = int(src_lens[b]), int((tgt_in[b] != PAD).sum())
        alone = model(src[b:b + 1, :n], src_lens[b:b + 1], tgt_in[b:b + 1, :m])
        assert torch.allclose(alone[0], together[b, :m], atol=1e-5)


def test_recurrent_linear_gradient_equals_plain_autograd():
    torch.manual_seed(0)
    w = torch.randn(6, 4, requires_grad=True)
    x0, bias = torch.randn(3, 4), torch.randn(6)

    def run(deferred):
        lin = RecurrentLinear(w) if deferred else None
        h = x0
        for _ in range(4):
            y = lin(bias, h) if deferred else torch.addmm(bias, h, w.t())
            h = torch.tanh(y)[:, :4]
        return h.pow(2).sum()

    run(False).backward()
    plain, w.grad = w.grad.clone(), None
    run(True).backward()
    assert torch.allclose(w.grad, plain, atol=1e-6)


def test_bf16_autocast_trains_through_the_deferred_gradients():
    model = tiny()
    src, src_lens, tgt_in = batch()
    mask = tgt_in != PAD
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(src, src_lens, tgt_in, mask)
    F.cross_entropy(logits.float(), tgt_in[mask]).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all(), name


def test_tied_embeddings_share_the_output_weight():
    model = Seq2Seq(ModelConfig(layers=1, hidden=8, emb=8, tie_embeddings=True), 11, 13)
    assert model.out.weight is model.decoder.emb.weight
    with pytest.raises(ValueError, match="tie_embeddings"):
        Seq2Seq(ModelConfig(layers=1, hidden=8, emb=4, tie_embeddings=True), 11, 13)


@pytest.mark.parametrize("layers,hidden,paper_millions", [(4, 1000, 221), (2, 500, 84), (2, 300, 49)])
def test_parameter_counts_match_the_paper(layers, hidden, paper_millions):
    with torch.device("meta"):  # no memory: only the shapes matter
        model = Seq2Seq(ModelConfig(layers=layers, hidden=hidden, emb=hidden), 50_000, 50_000)
    assert abs(count_parameters(model) / 1e6 - paper_millions) < 1.0


def test_initialization_is_uniform_in_the_configured_range():
    model = Seq2Seq(ModelConfig(layers=1, hidden=32, emb=32, init_range=0.1), 50, 60)
    values = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert values.abs().max() <= 0.1 and values.std() > 0.05
    assert math.isclose(values.mean().item(), 0.0, abs_tol=0.01)
