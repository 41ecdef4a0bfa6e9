"""The inference path against the model it is built from: fp32 equals Seq2Seq's encode and step; int8 is close."""
import numpy as np
import pytest
import torch

from seqkd.checkpoint import load_model
from seqkd.config import ModelConfig
from seqkd.inference import (InferenceModel, Int8LSTM, Linear, doubled, from_int8_state, gate_rows, quantize,
                             save_int8)
from seqkd.model import BOS, Seq2Seq
from seqkd.search import translate_ids


def model(bidirectional: bool, layers: int = 2, seed: int = 0) -> Seq2Seq:
    torch.manual_seed(seed)
    cfg = ModelConfig(layers=layers, hidden=16, emb=8, dropout=0.0, init_range=0.5, bidirectional=bidirectional)
    return Seq2Seq(cfg, 13, 11).eval()


def batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    lens = torch.tensor([5, 2, 7, 1])
    src = torch.zeros(4, 7, dtype=torch.long)
    for i, n in enumerate(lens.tolist()):
        src[i, :n] = torch.from_numpy(rng.integers(4, 13, n))
    return src, lens


def steps(m, src, lens, n: int = 4) -> list[torch.Tensor]:
    """Log-probabilities of `n` steps fed with fixed tokens."""
    memory, state = m.encode(src, lens)
    prev, out = torch.full((src.size(0),), BOS), []
    with torch.no_grad():
        for t in range(n):
            log_probs, state = m.step(prev, state, memory)
            out.append(log_probs)
            prev = torch.full_like(prev, 4 + t)
    return out


@pytest.mark.parametrize("bidirectional", [False, True])
def test_the_fp32_path_computes_what_the_model_computes(bidirectional):
    m = model(bidirectional)
    src, lens = batch()
    fast = InferenceModel.from_model(m)
    for a, b in zip(steps(m, src, lens), steps(fast, src, lens)):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_the_int8_encoder_lstm_follows_each_sentence_length_like_torchs_packed_lstm(bidirectional):
    """Int8LSTM's own bookkeeping (lengths, the backward direction, final states) and its tanh-free cell, with fp32
    products."""
    m = model(bidirectional)
    lstm = m.encoder.lstm
    layers = []
    for i in range(2):
        dirs = []
        for suffix in ["", "_reverse"][:2 if bidirectional else 1]:
            w = {n: getattr(lstm, f"{n}_l{i}{suffix}").detach() for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            ih = {"weight": w["weight_ih"], "bias": w["bias_ih"] + w["bias_hh"]}
            hh = {"weight": w["weight_hh"], "bias": None}
            ih, hh = (doubled(spec, gate_rows(spec)) for spec in (ih, hh))  # as the path builds them
            dirs.append((Linear(ih["weight"], ih["bias"], int8=False), Linear(hh["weight"], None, int8=False)))
        layers.append(dirs)
    src, lens = batch(1)
    x = m.encoder.emb(src).detach()
    out, h, c = Int8LSTM(layers)(x, lens)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
    ref, (ref_h, ref_c) = lstm(packed)
    ref, _ = torch.nn.utils.rnn.pad_packed_sequence(ref, batch_first=True, total_length=src.size(1))
    assert torch.allclose(out, ref, atol=1e-5) and torch.allclose(h, ref_h, atol=1e-5)
    assert torch.allclose(c, ref_c, atol=1e-5)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_int8_log_probabilities_stay_close_to_fp32(bidirectional):
    m = model(bidirectional)
    src, lens = batch()
    for a, b in zip(steps(m, src, lens), steps(quantize(m), src, lens)):
        assert (a.exp() - b.exp()).abs().max() < 0.02  # probabilities within 2 points


def test_a_trained_models_int8_translations_mostly_equal_its_fp32_ones(tiny_teacher, tiny_data, tmp_path):
    from seqkd.data import load_split

    m, src_vocab, tgt_vocab, state = load_model(tiny_teacher)
    split = load_split(tiny_data, "train")
    sources = [split.src[i] for i in range(80)]
    fp32 = [h[0].tokens for h in translate_ids(m, sources, beam=3)]
    fast = [h[0].tokens for h in translate_ids(InferenceModel.from_model(m), sources, beam=3)]
    assert fast == fp32
    q = quantize(m)
    int8 = [h[0].tokens for h in translate_ids(q, sources, beam=3)]
    assert np.mean([a == b for a, b in zip(int8, fp32)]) >= 0.8
    # saved on its own, smaller, and the same model when loaded
    path = tmp_path / "int8.pt"
    save_int8(path, q, state["vocab"])
    assert path.stat().st_size < tiny_teacher.stat().st_size  # both files also hold the SentencePiece models

    def nbytes(tree) -> int:
        if isinstance(tree, torch.Tensor):
            return tree.numel() * tree.element_size()
        return sum(nbytes(v) for v in tree.values()) if isinstance(tree, dict) else 0

    weights = sum(p.numel() * 4 for p in m.parameters())
    assert nbytes(torch.load(path, weights_only=True)["tensors"]) < 0.3 * weights  # int8 and one scale per row
    loaded, _, _, _ = load_model(path)
    assert [h[0].tokens for h in translate_ids(loaded, sources, beam=3)] == int8
    assert isinstance(from_int8_state(torch.load(path, weights_only=True), "x"), InferenceModel)


def test_quantize_writes_an_int8_model_that_translate_and_evaluate_take(tiny_teacher, tiny_data, tmp_path):
    from tests.test_errors import one_line_error, seqkd

    out = tmp_path / "student.int8.pt"
    proc = seqkd("quantize", str(tiny_teacher), str(out))
    assert proc.returncode == 0 and out.exists(), proc.stderr.decode()
    one_line_error(seqkd("quantize", str(out), str(tmp_path / "again.pt")), "already an int8 model")
    one_line_error(seqkd("quantize", str(tiny_teacher), str(tiny_teacher)), "must not replace the checkpoint")
    text = b"the cat sees a dog\nred house\n"
    by_file = seqkd("translate", "--checkpoint", str(out), "--threads", "1", stdin=text)
    by_flag = seqkd("translate", "--checkpoint", str(tiny_teacher), "--int8", "true", "--threads", "1", stdin=text)
    assert by_file.returncode == 0 and by_file.stdout == by_flag.stdout and len(by_file.stdout.splitlines()) == 2
    ev = seqkd("evaluate", "--checkpoint", str(out), "--data_dir", str(tiny_data), "--passes", "1", "--threads", "1")
    assert ev.returncode == 0, ev.stderr.decode()
    assert "perplexity" in ev.stdout.decode()
