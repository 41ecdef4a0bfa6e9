"""The learning-rate schedule: what happens to the rate at the end of an epoch.

`decay_on` names the rule (TrainConfig):
  ppl    seq2seq-attn's, which Kim & Rush trained with (SGD): decay from the first epoch whose validation perplexity
         is worse than the previous epoch's, and once decaying, at the end of every epoch after it.
  bleu   decay at the end of every epoch whose validation BLEU (perplexity when BLEU is off) is not the best so far.
  none   no decay on validation results.
  auto   ppl with SGD, none with Adam. Adam scales its own steps; and a Seq-KD student's perplexity on the
         references rises as it learns the teacher's mode (22.7 against the baseline's 8.2 in the paper), so the
         ppl rule would slow down exactly the students distillation is for.
Independently of the rule, `decay_start` > 0 decays at the end of every epoch from that one on (seq2seq-attn's
start_decay_at).
"""
from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class LrState:
    lr: float
    decaying: bool = False  # sticky: once the ppl rule or decay_start fires, every epoch end decays
    prev_ppl: float = float("inf")


def decay_rule(decay_on: str, optimizer: str) -> str:
    """The rule `decay_on` means for this optimizer: 'auto' -> 'ppl' with SGD, 'none' with Adam."""
    if decay_on == "auto":
        return "ppl" if optimizer == "sgd" else "none"
    return decay_on


def after_epoch(state: LrState, *, rule: str, decay_start: int, lr_decay: float, epoch: int, valid_ppl: float,
                improved: bool) -> LrState:
    """The rate for the next epoch, after epoch `epoch` ended with validation perplexity `valid_ppl`; `improved`
    says whether that validation was the best so far (by BLEU, or by perplexity without BLEU).

    >>> s = after_epoch(LrState(1.0, prev_ppl=10.0), rule="ppl", decay_start=0, lr_decay=0.5, epoch=3,
    ...                 valid_ppl=11.0, improved=False)
    >>> s.lr, s.decaying
    (0.5, True)
    """
    if rule not in ("ppl", "bleu", "none"):
        raise ValueError(f"unknown decay rule {rule!r}")
    decaying = (state.decaying or bool(decay_start and epoch >= decay_start)
                or (rule == "ppl" and valid_ppl > state.prev_ppl))
    decay = decaying or (rule == "bleu" and not improved)
    return replace(state, lr=state.lr * lr_decay if decay else state.lr, decaying=decaying, prev_ppl=valid_ppl)
