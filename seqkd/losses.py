"""Training losses: word-level NLL and Word-KD (Kim & Rush 2016, eq. 2; Hinton et al. 2015 for the temperature)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


class _SoftmaxCrossEntropy(torch.autograd.Function):
    """Summed cross-entropy with a backward that turns the logits into softmax - one-hot in place: no (N, V)
    zero-filled gradient, no second (N, V) buffer. The logits must not be needed by anyone else's backward (the
    output layer's backward needs its inputs, not its output)."""

    @staticmethod
    def forward(ctx, logits, target):
        logits32 = logits.float()
        lse = torch.logsumexp(logits32, 1)  # (N,)
        ctx.save_for_backward(logits32, lse, target)
        ctx.dtype = logits.dtype
        return (lse - logits32.gather(1, target.unsqueeze(1)).squeeze(1)).sum()

    @staticmethod
    def backward(ctx, grad):
        logits, lse, target = ctx.saved_tensors
        probs = logits.sub_(lse.unsqueeze(1)).exp_()  # (N, V) softmax, in place
        probs[torch.arange(len(target), device=target.device), target] -= 1.0
        return probs.mul_(grad).to(ctx.dtype), None


def nll_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Summed negative log-likelihood of `target` (N,) under `logits` (N, V)."""
    if torch.is_grad_enabled() and logits.requires_grad:
        return _SoftmaxCrossEntropy.apply(logits, target)
    return F.cross_entropy(logits.float(), target, reduction="sum")


def word_kd_loss(logits: torch.Tensor, teacher_logits: torch.Tensor, *, temperature: float = 1.0,
                 topk: int = 0) -> torch.Tensor:
    """Summed cross-entropy sum_k q(k) * -log p(k) from the teacher's distribution q to the student's p, per position.

    With temperature T both distributions are softened (softmax(z / T)) and the result is multiplied by T^2, so
    gradients keep their size as T changes (Hinton et al.); at T = 1 the gradient with respect to the student's
    logits is p - q. With `topk`, q keeps only the teacher's k most probable words, renormalized: the memory for a
    large vocabulary then grows with k, not V.
    """
    t = float(temperature)
    log_p = torch.log_softmax(logits.float() / t, dim=-1)  # (N, V)
    with torch.no_grad():
        if topk:
            values, index = teacher_logits.float().topk(topk, dim=-1)  # (N, k)
            q = torch.softmax(values / t, dim=-1)  # renormalized over the top k
        else:
            q = torch.softmax(teacher_logits.float() / t, dim=-1)  # (N, V)
    ce = -(q * (log_p.gather(1, index) if topk else log_p)).sum()
    return ce * (t * t)


def kd_objective(logits: torch.Tensor, target: torch.Tensor, teacher_logits: torch.Tensor | None, *, alpha: float,
                 temperature: float = 1.0, topk: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, nll), both summed over positions: loss = (1 - alpha) * NLL + alpha * Word-KD (plain NLL when
    alpha = 0 or there is no teacher)."""
    nll = nll_loss(logits, target)
    if teacher_logits is None or alpha == 0:
        return nll, nll
    kd = word_kd_loss(logits, teacher_logits, temperature=temperature, topk=topk)
    return (1 - alpha) * nll + alpha * kd, nll
