"""The paper's model: an LSTM encoder-decoder with Luong global attention ("general" score) and input feeding.

Kim & Rush (2016) follow Luong et al. (2015): the decoder's top hidden state h_t attends over the encoder outputs
h_s with score(h_t, h_s) = h_t^T W_a h_s, the attentional state is h~_t = tanh(W_c [c_t; h_t]) and h~_t is fed to
the first decoder layer at the next step ("input feeding") and to the output layer.

The model is reached through two calls:
  memory = model.encode(src, src_lens)                       once per batch (keys W_a h_s projected once)
  log_probs, state = model.step(prev_tokens, state, memory)   once per target position
Teacher-forced `forward` (training) computes the same thing over a whole target sequence and agrees with a loop of
`step`. Search runs the same two calls on `seqkd.inference.InferenceModel`, built from this model's weights and
laid out for speed (fp32 or int8); the training-speed device for the recurrent matrices is `seqkd.recurrent`.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqkd.config import ModelConfig
from seqkd.recurrent import RecurrentLinear
from seqkd.vocab import BOS, EOS, PAD, UNK  # noqa: F401  (re-exported for callers)

NEG_INF = float("-inf")


class Memory(NamedTuple):
    """What the decoder reads from the encoder; rows are sentences (B)."""

    outputs: torch.Tensor  # (B, S, H) encoder top-layer outputs h_s
    keys_t: torch.Tensor  # (B, H, S) W_a h_s, projected once per batch, laid out for a batched product
    mask: torch.Tensor  # (B, S) True at padding

    def select(self, rows: torch.Tensor) -> "Memory":
        return Memory(*(t.index_select(0, rows) for t in self))


class State(NamedTuple):
    """Decoder state after a step; LSTM tensors are (L, B, H), so rows live on dim 1."""

    h: torch.Tensor  # (L, B, H)
    c: torch.Tensor  # (L, B, H)
    feed: torch.Tensor  # (B, H) attentional state h~ of the last step (input feeding)

    def select(self, rows: torch.Tensor) -> "State":
        return State(self.h.index_select(1, rows), self.c.index_select(1, rows), self.feed.index_select(0, rows))


class Dropout(nn.Module):
    """Inverted dropout with a mask from torch.rand: on the CPU about 2.5x cheaper than nn.Dropout's bernoulli_."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * (torch.rand_like(x) >= self.p).to(x.dtype) * (1.0 / (1.0 - self.p))


def lstm_pointwise(gates: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LSTM cell update from pre-activations (B, 4H) in PyTorch's gate order i, f, g, o."""
    i, f, g, o = gates.chunk(4, 1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab: int):
        super().__init__()
        if cfg.bidirectional and cfg.hidden % 2:
            raise ValueError(f"model.hidden must be even for a bidirectional encoder, got {cfg.hidden}")
        self.emb = nn.Embedding(vocab, cfg.emb, padding_idx=PAD)
        self.bidirectional = cfg.bidirectional
        self.lstm = nn.LSTM(cfg.emb, cfg.hidden // 2 if cfg.bidirectional else cfg.hidden, cfg.layers,
                            dropout=cfg.dropout if cfg.layers > 1 else 0.0, batch_first=True,
                            bidirectional=cfg.bidirectional)
        self.dropout = Dropout(cfg.dropout)

    def forward(self, src: torch.Tensor, src_lens: torch.Tensor):
        """src (B, S) right-padded, src_lens (B,) -> outputs (B, S, H), final (h, c) each (L, B, H)."""
        x = self.dropout(self.emb(src))  # (B, S, E)
        # Packing makes padding invisible: the final states are those at each sentence's own last token.
        packed = pack_padded_sequence(x, src_lens.cpu(), batch_first=True, enforce_sorted=False)
        out, (h, c) = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))  # (B, S, H)
        if self.bidirectional:  # (2L, B, H/2) -> (L, B, H): forward and backward halves side by side
            h = torch.cat([h[0::2], h[1::2]], 2)
            c = torch.cat([c[0::2], c[1::2]], 2)
        return out, (h, c)


class Decoder(nn.Module):
    """Stacked LSTM with input feeding and general attention. Weights are kept as plain matrices so that a step
    needs one matrix product per layer: layer 1 multiplies [feed; h] by [W_feed | W_hh], and the embedding part of
    its input is computed for all positions at once in `forward`, or read from a table in search (see `step`)."""

    def __init__(self, cfg: ModelConfig, vocab: int):
        super().__init__()
        H, E = cfg.hidden, cfg.emb
        self.layers, self.hidden, self.emb_dim = cfg.layers, H, E
        self.emb = nn.Embedding(vocab, E, padding_idx=PAD)
        self.w_emb = nn.Parameter(torch.empty(4 * H, E))  # layer 1, embedding -> gates
        # Per layer: the recurrent weight [W_in | W_hh] (4H, in + H); layer 1's input is the fed-back state h~.
        self.w_rec = nn.ParameterList([nn.Parameter(torch.empty(4 * H, 2 * H)) for _ in range(cfg.layers)])
        self.bias = nn.ParameterList([nn.Parameter(torch.empty(4 * H)) for _ in range(cfg.layers)])
        self.w_a = nn.Linear(H, H, bias=False)  # score(h_t, h_s) = h_t^T W_a h_s
        self.w_c = nn.Linear(2 * H, H, bias=False)  # h~_t = tanh(W_c [c_t; h_t])
        self.dropout = Dropout(cfg.dropout)
        self.register_buffer("zero", torch.zeros(()), persistent=False)

    def attend(self, h: torch.Tensor, memory: Memory, w_c) -> torch.Tensor:
        """h (B*K, H) top-layer states, K rows per sentence (K = 1 in training, the beam in search), against a
        memory of B sentences -> attentional states h~ (B*K, H). The memory is never copied K times."""
        B, H = memory.outputs.size(0), h.size(1)
        q = h.view(B, -1, H)  # (B, K, H)
        scores = torch.bmm(q, memory.keys_t)  # (B, K, S)
        scores = scores.masked_fill(memory.mask.unsqueeze(1), NEG_INF)
        weights = torch.softmax(scores, 2)  # (B, K, S)
        ctx = torch.bmm(weights, memory.outputs).view(-1, H)  # (B*K, H)
        return torch.tanh(w_c(self.zero, torch.cat([ctx, h], 1)))  # (B*K, H)

    def tapped(self) -> tuple[list, RecurrentLinear]:
        return [RecurrentLinear(w) for w in self.w_rec], RecurrentLinear(self.w_c.weight)

    def cell(self, x_gates: torch.Tensor, hs: list, cs: list, feed: torch.Tensor, memory: Memory, weights):
        """One decoder step from layer 1's embedding pre-activations x_gates (B, 4H), bias included.

        hs, cs: per-layer (B, H) states; returns the new hs, cs and attentional state h~ (B, H). Lists rather than
        stacked (L, B, H) tensors keep autograd from building a zero-filled gradient per layer and step."""
        w_rec, w_c = weights
        new_hs, new_cs = [], []
        inp = feed
        for layer in range(self.layers):
            addend = x_gates if layer == 0 else self.bias[layer]
            gates = w_rec[layer](addend, torch.cat([inp, hs[layer]], 1))  # (B, 4H)
            h, c = lstm_pointwise(gates, cs[layer])  # (B, H) each
            new_hs.append(h)
            new_cs.append(c)
            inp = self.dropout(h) if layer + 1 < self.layers else h
        return new_hs, new_cs, self.dropout(self.attend(inp, memory, w_c))

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Layer 1's embedding pre-activations W_emb e_w + b, (..., 4H)."""
        return F.linear(self.dropout(self.emb(tokens)), self.w_emb, self.bias[0])

    def forward(self, tgt_in: torch.Tensor, state: State, memory: Memory) -> torch.Tensor:
        """Teacher forcing: tgt_in (B, T) -> attentional states (B, T, H)."""
        x_gates = self.embed(tgt_in)  # (B, T, 4H), all positions at once
        weights = self.tapped()
        hs, cs, feed = list(state.h.unbind(0)), list(state.c.unbind(0)), state.feed
        feeds = []
        for x_t in x_gates.unbind(1):  # unbind: one backward node for all steps, not a zero-filled slice per step
            hs, cs, feed = self.cell(x_t, hs, cs, feed, memory, weights)
            feeds.append(feed)
        return torch.stack(feeds, 1)  # (B, T, H)

    def step(self, x_gates: torch.Tensor, state: State, memory: Memory) -> State:
        hs, cs, feed = self.cell(x_gates, list(state.h.unbind(0)), list(state.c.unbind(0)), state.feed, memory,
                                 self.tapped())
        return State(torch.stack(hs), torch.stack(cs), feed)


class Seq2Seq(nn.Module):
    def __init__(self, cfg: ModelConfig, src_vocab: int, tgt_vocab: int):
        super().__init__()
        self.cfg, self.src_vocab, self.tgt_vocab = cfg, src_vocab, tgt_vocab
        self.encoder = Encoder(cfg, src_vocab)
        self.decoder = Decoder(cfg, tgt_vocab)
        self.out = nn.Linear(cfg.hidden, tgt_vocab)
        if cfg.tie_embeddings:
            if cfg.emb != cfg.hidden:
                raise ValueError(f"model.tie_embeddings needs model.emb == model.hidden, got {cfg.emb} and {cfg.hidden}")
            self.out.weight = self.decoder.emb.weight
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every parameter uniform in [-init_range, init_range], as in the paper."""
        for p in self.parameters():
            nn.init.uniform_(p, -self.cfg.init_range, self.cfg.init_range)

    def encode(self, src: torch.Tensor, src_lens: torch.Tensor) -> tuple[Memory, State]:
        """src (B, S), src_lens (B,) -> memory and the decoder's initial state (the encoder's final state)."""
        outputs, (h, c) = self.encoder(src, src_lens)
        mask = torch.arange(src.size(1), device=src.device).unsqueeze(0) >= src_lens.unsqueeze(1)  # (B, S)
        keys_t = self.decoder.w_a(outputs).transpose(1, 2).contiguous()  # (B, H, S): key_s = W_a h_s
        feed = outputs.new_zeros(src.size(0), self.cfg.hidden)
        return Memory(outputs, keys_t, mask), State(h, c, feed)

    def forward(self, src, src_lens, tgt_in, tgt_mask=None) -> torch.Tensor:
        """Teacher-forced output logits: (B, T, V), or (N, V) for the N positions where `tgt_mask` (B, T) is True
        (the output layer, the largest product, then skips padding)."""
        memory, state = self.encode(src, src_lens)
        feats = self.decoder(tgt_in, state, memory)  # (B, T, H)
        return self.out(feats if tgt_mask is None else feats[tgt_mask])

    def step(self, prev: torch.Tensor, state: State, memory: Memory) -> tuple[torch.Tensor, State]:
        """One decoding step: prev (B,) tokens -> log-probabilities (B, V) and the new state. The paper's equations,
        step by step; search runs the same computation laid out for speed (seqkd.inference)."""
        state = self.decoder.step(self.decoder.embed(prev), state, memory)
        return torch.log_softmax(self.out(state.feed), -1), state


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
