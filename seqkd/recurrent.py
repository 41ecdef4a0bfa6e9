"""A training-speed device for weights used at every time step (the decoder's recurrent matrices and W_c).

Written naively, autograd computes such a weight's gradient as one small matrix product per time step and adds
it to a full-size gradient each time. `RecurrentLinear` collects each step's (gradient, input) pair instead and
computes the weight's gradient in one product over all steps when the backward reaches the weight, as cuDNN does
for its own recurrences. The model's equations do not change (seqkd.model calls it where it multiplies); under
no_grad it is a plain addmm.
"""
from __future__ import annotations

import torch


class _WeightTap(torch.autograd.Function):
    """Identity on a weight matrix used at every time step; its backward computes the weight's gradient in one
    matrix product over all steps from what `_StepLinear` collected, instead of one small product (and one
    accumulation of a full-size gradient) per step. This is what cuDNN does for its own recurrences."""

    @staticmethod
    def forward(ctx, weight, bucket):
        ctx.bucket = bucket
        ctx.set_materialize_grads(False)
        return weight.view_as(weight)

    @staticmethod
    def backward(ctx, _unused):
        grads, inputs = zip(*ctx.bucket)  # runs after every step's backward has filled the bucket
        ctx.bucket.clear()
        return torch.cat(grads).t() @ torch.cat(inputs), None  # (out, N) @ (N, in); autograd casts to the weight's dtype


class _StepLinear(torch.autograd.Function):
    """addend + x @ weight^T for one time step; the weight's gradient is left to `_WeightTap`. Under autocast the
    product runs in the autocast dtype, and so do the backward products."""

    @staticmethod
    def forward(ctx, addend, x, weight, bucket):
        out = torch.addmm(addend, x, weight.t())
        ctx.save_for_backward(x, weight)
        ctx.bucket, ctx.dtype = bucket, out.dtype
        ctx.addend_is_bias = addend.dim() == 1
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad = grad.to(ctx.dtype)
        ctx.bucket.append((grad, x.to(ctx.dtype)))
        grad_addend = grad.sum(0) if ctx.addend_is_bias else grad
        return grad_addend, grad @ weight.to(ctx.dtype), None, None


class RecurrentLinear:
    """A weight used once per time step: `tapped = RecurrentLinear(weight)` before the loop, `tapped(addend, x)`
    inside it. Under no_grad it is a plain addmm."""

    def __init__(self, weight: torch.Tensor):
        self.track = torch.is_grad_enabled() and weight.requires_grad
        self.bucket: list = []
        self.weight = _WeightTap.apply(weight, self.bucket) if self.track else weight

    def __call__(self, addend: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.track:
            return _StepLinear.apply(addend, x, self.weight, self.bucket)
        return torch.addmm(addend, x, self.weight.t())
