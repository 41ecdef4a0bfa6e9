"""The inference path: a trained model's weights laid out for search, in fp32 or int8.

Search reaches a model only through `encode` and `step` (seqkd.search); `Seq2Seq` has both, written as the paper's
equations. `InferenceModel` has the same two calls, built once from a trained model's weights for speed:

  - the embedding part of the decoder's first layer, W_emb e_w + b, is a (V, 4H) table: a row lookup per step
    instead of a matrix product (computed when the model is built, from the embeddings and W_emb);
  - every matrix product goes through `Linear`: fp32 (torch.addmm), or int8: weights quantized once per output
    row (symmetric, scale = max |w| / 127) and activations quantized per call (dynamic quantization; PyTorch's
    x86 kernels, fbgemm, which use VNNI where the CPU has it). Attention scores, softmaxes and the LSTM's
    pointwise functions stay fp32;
  - int8 runs the encoder's LSTM too: the input products for all positions at once, the recurrent ones per step,
    each direction over its own sentence lengths. (fp32 keeps torch's fused LSTM for the encoder.)
  - no tanh: torch's CPU tanh measured 3-4x slower than its sigmoid (`lstm_cell`), so the path uses
    tanh(x) = 2 sigmoid(2x) - 1, with the 2x folded into the weights when the model is built: the rows of every
    LSTM product that feed the cell input g, and W_c (h~ = tanh(W_c [c; h])). Doubling is exact in floating point
    and, for int8, doubles a row's scale and leaves its int8 values as they are; the files keep the weights as
    trained.

`quantize(model)` returns the int8 model; `save` / `load` write it on its own (int8 matrices and their scales, about
a quarter of the fp32 checkpoint's size; the embeddings too, as int8 rows) with the vocabularies, so translate and
evaluate take it like a checkpoint.
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqkd import io
from seqkd.config import ModelConfig, from_dict, to_dict
from seqkd.model import NEG_INF, Memory, Seq2Seq, State, count_parameters

INT8_FORMAT = "seqkd-int8-1"


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, in) fp32 -> int8 values (out, in) and one fp32 scale per row: weight ~ values * scale[:, None]."""
    scale = weight.abs().amax(1).clamp(min=1e-12) / 127.0
    return torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8), scale.float()


def doubled(spec: dict, rows: slice | None = None) -> dict:
    """The spec of a product with its output `rows` (all when None) times 2: fp32 weight rows, or int8 row scales,
    and the bias."""
    out = dict(spec)
    for name in ("weight", "scale", "bias"):
        if out.get(name) is not None:
            x = out[name].clone()
            x[rows if rows is not None else slice(None)] *= 2
            out[name] = x
    return out


def gate_rows(spec: dict) -> slice:
    """The rows of an LSTM product (4h outputs in torch's order i, f, g, o) that feed the cell input g."""
    rows = len(spec["scale"]) if "scale" in spec else len(spec["weight"])
    return slice(rows // 2, 3 * rows // 4)


def lstm_cell(gates: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """seqkd.model.lstm_pointwise for pre-activations whose g block comes doubled (see the module's docstring):
    one sigmoid over the four gates, tanh(x) = 2 sigmoid(2x) - 1 (about twice as fast: README, int8)."""
    i, f, g, o = torch.sigmoid(gates).chunk(4, 1)
    c = torch.addcmul(f * c, i, g.mul(2).sub_(1))
    return o * torch.sigmoid(2 * c).mul_(2).sub_(1), c


def weight_of(spec: dict, int8: bool) -> torch.Tensor:
    """The fp32 matrix of a spec: its weight, or with int8 its int8 rows times their scales."""
    if int8:
        return spec["values"].float() * spec["scale"][:, None]
    return spec["weight"]


class Linear:
    """y = x @ W^T + b. fp32: torch.addmm. int8: W as int8 rows with per-row scales, x quantized per call."""

    def __init__(self, weight: torch.Tensor | None, bias: torch.Tensor | None, *, int8: bool,
                 q: tuple[torch.Tensor, torch.Tensor] | None = None):
        self.int8, self.bias = int8, bias
        if not int8:
            self.weight = weight
            return
        values, scale = q if q is not None else quantize_rows(weight)
        with warnings.catch_warnings():  # torch 2.13 marks quantized tensors deprecated: see the README, int8
            warnings.simplefilter("ignore", UserWarning)
            qweight = torch._make_per_channel_quantized_tensor(values, scale.double(),
                                                               torch.zeros(len(scale), dtype=torch.long), 0)
        self.packed = torch.ops.quantized.linear_prepack(qweight, bias)

    def __call__(self, x: torch.Tensor, addend: torch.Tensor | None = None) -> torch.Tensor:
        """x (N, in) -> (N, out), plus `addend` (N, out) when given."""
        if self.int8:
            y = torch.ops.quantized.linear_dynamic(x.contiguous(), self.packed, False)
            return y if addend is None else y + addend
        if addend is not None:
            return torch.addmm(addend, x, self.weight.t())
        return F.linear(x, self.weight, self.bias)


class Int8LSTM:
    """A (bidirectional) LSTM with int8 products over padded batches, equal to torch's packed LSTM up to the
    quantization: each sentence's states stop at its own length, the backward direction reads each sentence from
    its own last token."""

    def __init__(self, layers: list[list[tuple[Linear, Linear]]]):
        self.layers = layers  # per layer, per direction: (W_ih with b_ih + b_hh, recurrent W_hh), g rows doubled

    def __call__(self, x: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, S, E), lens (B,) -> outputs (B, S, D*h), final h and c (L*D, B, h) in torch's order."""
        B, S, _ = x.shape
        steps = torch.arange(S, device=x.device)
        valid = (steps.unsqueeze(0) < lens.unsqueeze(1))  # (B, S)
        # the backward direction reads position lens-1-t at step t: a per-row reversal within each length
        rev = (lens.unsqueeze(1) - 1 - steps.unsqueeze(0)).clamp(min=0)  # (B, S)
        finals_h, finals_c = [], []
        for layer in self.layers:
            outs = []
            for direction, (w_ih, w_hh) in enumerate(layer):
                inp = x if direction == 0 else x.gather(1, rev.unsqueeze(2).expand_as(x))
                gates_x = w_ih(inp.reshape(B * S, -1)).view(B, S, -1)  # (B, S, 4h), all positions at once
                hidden = gates_x.size(2) // 4
                h = x.new_zeros(B, hidden)
                c = x.new_zeros(B, hidden)
                out = x.new_zeros(B, S, hidden)
                for t in range(S):
                    h_new, c_new = lstm_cell(w_hh(h, gates_x[:, t]), c)
                    keep = valid[:, t].unsqueeze(1)  # (B, 1): past its end a sentence keeps its last state
                    h, c = torch.where(keep, h_new, h), torch.where(keep, c_new, c)
                    out[:, t] = h_new * keep
                if direction == 1:  # back to reading order
                    out = out.gather(1, rev.unsqueeze(2).expand_as(out)) * valid.unsqueeze(2)
                outs.append(out)
                finals_h.append(h)
                finals_c.append(c)
            x = torch.cat(outs, 2)
        return x, torch.stack(finals_h), torch.stack(finals_c)


class InferenceModel:
    """encode and step for search, from a trained Seq2Seq's weights (see the module's docstring)."""

    def __init__(self, cfg: ModelConfig, src_vocab: int, tgt_vocab: int, tensors: dict, *, int8: bool,
                 parameters: int, encoder_lstm: torch.nn.LSTM | None = None):
        self.cfg, self.src_vocab, self.tgt_vocab, self.int8 = cfg, src_vocab, tgt_vocab, int8
        self.parameters = parameters  # of the trained model it was built from
        self.training = False
        t = self._tensors = tensors  # what `tensors` saves: the weights as trained

        def linear(name: str, rows: str | None = None) -> Linear:
            """The product `name`, with its g rows (rows="g") or all rows ("all") doubled."""
            spec = t[name] if rows is None else doubled(t[name], gate_rows(t[name]) if rows == "g" else None)
            q = (spec["values"], spec["scale"]) if "values" in spec else None
            return Linear(spec.get("weight"), spec.get("bias"), int8=int8, q=q)

        self.src_emb = weight_of(t["src_emb"], int8)  # (V_src, E)
        with torch.no_grad():  # (V_tgt, 4H): W_emb e_w + b of the decoder's first layer, for every word
            w_emb = doubled({"weight": weight_of(t["w_emb"], int8), "bias": t["w_emb"]["bias"]}, gate_rows(t["w_emb"]))
            self.emb_gates = F.linear(weight_of(t["tgt_emb"], int8), w_emb["weight"], w_emb["bias"])
        self.w_rec = [linear(f"w_rec.{i}", "g") for i in range(cfg.layers)]  # [inp; h] -> gates, bias on layers > 1
        self.w_a, self.w_c, self.out = linear("w_a"), linear("w_c", "all"), linear("out")
        self.encoder_lstm = encoder_lstm  # fp32: torch's fused LSTM
        if int8:
            dirs = 2 if cfg.bidirectional else 1
            self.int8_lstm = Int8LSTM([[(linear(f"enc.{i}.{d}.ih", "g"), linear(f"enc.{i}.{d}.hh", "g"))
                                        for d in range(dirs)] for i in range(cfg.layers)])

    # ------------------------------------------------------------------------------------------ building
    @classmethod
    def from_model(cls, model: Seq2Seq, *, int8: bool = False) -> "InferenceModel":
        """The inference path of a trained model. Its encoder LSTM is the model's own in fp32: call this on a model
        in eval mode (seqkd.search.translate_ids does), or dropout between its layers stays on."""
        dec, cfg = model.decoder, model.cfg
        with torch.no_grad():
            tensors = {"src_emb": {"weight": model.encoder.emb.weight.detach()},
                       "tgt_emb": {"weight": dec.emb.weight.detach()},
                       "w_emb": {"weight": dec.w_emb.detach(), "bias": dec.bias[0].detach()},
                       "w_a": {"weight": dec.w_a.weight.detach(), "bias": None},
                       "w_c": {"weight": dec.w_c.weight.detach(), "bias": None},
                       "out": {"weight": model.out.weight.detach(), "bias": model.out.bias.detach()}}
            for i in range(cfg.layers):
                tensors[f"w_rec.{i}"] = {"weight": dec.w_rec[i].detach(), "bias": None if i == 0 else dec.bias[i].detach()}
            lstm = model.encoder.lstm
            for i in range(cfg.layers):
                for d, suffix in enumerate(["", "_reverse"][:2 if cfg.bidirectional else 1]):
                    p = {n: getattr(lstm, f"{n}_l{i}{suffix}").detach() for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
                    tensors[f"enc.{i}.{d}.ih"] = {"weight": p["weight_ih"], "bias": p["bias_ih"] + p["bias_hh"]}
                    tensors[f"enc.{i}.{d}.hh"] = {"weight": p["weight_hh"], "bias": None}
        if int8:
            tensors = {k: {**{n: x for n, x in v.items() if n != "weight"},
                           **dict(zip(("values", "scale"), quantize_rows(v["weight"])))} for k, v in tensors.items()}
        return cls(cfg, model.src_vocab, model.tgt_vocab, tensors, int8=int8, parameters=count_parameters(model),
                   encoder_lstm=None if int8 else model.encoder.lstm)

    # ------------------------------------------------------------------------------------------ search's calls
    def eval(self) -> "InferenceModel":
        return self

    def train(self, mode: bool = True) -> "InferenceModel":
        return self

    def encode(self, src: torch.Tensor, src_lens: torch.Tensor) -> tuple[Memory, State]:
        """src (B, S), src_lens (B,) -> memory and the decoder's first state, as Seq2Seq.encode."""
        x = self.src_emb[src]  # (B, S, E)
        if self.int8:
            outputs, h, c = self.int8_lstm(x, src_lens)
        else:
            packed = pack_padded_sequence(x, src_lens.cpu(), batch_first=True, enforce_sorted=False)
            out, (h, c) = self.encoder_lstm(packed)
            outputs, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        if self.cfg.bidirectional:  # (2L, B, H/2) -> (L, B, H)
            h, c = torch.cat([h[0::2], h[1::2]], 2), torch.cat([c[0::2], c[1::2]], 2)
        B, S, H = outputs.shape
        mask = torch.arange(S, device=src.device).unsqueeze(0) >= src_lens.unsqueeze(1)  # (B, S)
        keys_t = self.w_a(outputs.reshape(B * S, H)).view(B, S, H).transpose(1, 2).contiguous()  # (B, H, S)
        return Memory(outputs, keys_t, mask), State(h, c, outputs.new_zeros(B, H))

    def step(self, prev: torch.Tensor, state: State, memory: Memory) -> tuple[torch.Tensor, State]:
        """prev (B*K,) -> log-probabilities (B*K, V) and the next state, as Seq2Seq.step."""
        inp, hs, cs = state.feed, [], []
        for layer in range(self.cfg.layers):
            addend = self.emb_gates.index_select(0, prev) if layer == 0 else None
            gates = self.w_rec[layer](torch.cat([inp, state.h[layer]], 1), addend)  # (B*K, 4H)
            h, c = lstm_cell(gates, state.c[layer])
            hs.append(h)
            cs.append(c)
            inp = h
        B, H = memory.outputs.size(0), inp.size(1)
        q = inp.view(B, -1, H)  # (B, K, H): K rows per sentence, the memory is not copied K times
        scores = torch.bmm(q, memory.keys_t).masked_fill(memory.mask.unsqueeze(1), NEG_INF)  # (B, K, S)
        ctx = torch.bmm(torch.softmax(scores, 2), memory.outputs).view(-1, H)  # (B*K, H)
        feed = torch.sigmoid(self.w_c(torch.cat([ctx, inp], 1))).mul_(2).sub_(1)  # (B*K, H): h~_t = tanh(W_c [c; h])
        return torch.log_softmax(self.out(feed), -1), State(torch.stack(hs), torch.stack(cs), feed)

    def restricted(self, ids: torch.Tensor) -> "InferenceModel":
        """This model with its target words cut to `ids` (sorted, the special symbols 0-3 among them; a vocabulary
        shortlist, seqkd.shortlist): its steps score only those words and take positions in `ids` as their
        previous words, so the special symbols keep their ids; ids[position] is the word."""
        other = copy.copy(self)
        rows = {name: x.index_select(0, ids) for name, x in self._tensors["out"].items() if x is not None}
        q = (rows["values"], rows["scale"]) if "values" in rows else None
        other.out = Linear(rows.get("weight"), rows.get("bias"), int8=self.int8, q=q)
        other.emb_gates = self.emb_gates.index_select(0, ids)
        other.tgt_vocab = len(ids)
        return other

    # ------------------------------------------------------------------------------------------ files
    def tensors(self) -> dict:
        """The weights as trained (int8 values and scales, or fp32), not the doubled ones the path runs."""
        return dict(self._tensors)


def for_search(model) -> "InferenceModel":
    """What search runs: a Seq2Seq's fp32 inference path; any other model (an InferenceModel, a test's scripted
    model) as it is."""
    return InferenceModel.from_model(model) if isinstance(model, Seq2Seq) else model


def quantize(model: Seq2Seq) -> InferenceModel:
    return InferenceModel.from_model(model, int8=True)


def save_int8(path: str | Path, model: InferenceModel, vocab_state: dict, lineage: dict | None = None) -> None:
    """Write an int8 model on its own: matrices as int8 with their scales, tables in fp32, the vocabularies."""
    if not model.int8:
        raise ValueError("save_int8 takes an int8 InferenceModel (quantize(model))")
    state = {"format": INT8_FORMAT, "model_config": to_dict(model.cfg), "vocab": vocab_state,
             "sizes": [model.src_vocab, model.tgt_vocab], "parameters": model.parameters,
             "tensors": model.tensors(), "lineage": lineage}
    with io.atomic_path(path) as tmp:
        torch.save(state, tmp)


def from_int8_state(state: dict, where: str) -> InferenceModel:
    cfg = from_dict(ModelConfig, state["model_config"], f"{where}: model_config")
    src_vocab, tgt_vocab = state["sizes"]
    return InferenceModel(cfg, src_vocab, tgt_vocab, state["tensors"], int8=True, parameters=state["parameters"])
