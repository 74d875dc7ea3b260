"""Attach error-driven ("identity update") gradients to loss values.

Ranking-based losses are not differentiable; AP Loss, aLRP Loss and RS Loss define the
gradient of each loss term directly from the primary errors (RS paper Sec. 3, Eq. 5 and
Eq. 11-12).  The losses compute those gradients in float64 together with the values; this
autograd function hands them to the caller's graph.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from .passes import NegativeGradient
from .scores import RankingProblem

# Per loss term: the gradient w.r.t. the P positives and w.r.t. all M flat entries from
# the negatives (zero elsewhere), the latter as P-length tables evaluated by one pass over M
# in backward (:class:`~rankrepro.losses.passes.NegativeGradient`); None = zero.
TermGradient = Tuple[Optional[Tensor], Optional[NegativeGradient]]


class _IdentityUpdate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, values, pos_index, term_grads):  # noqa: D401 - autograd API
        # Only what backward needs is kept: P-length tables and the entries' intervals.
        ctx.logits_meta = (logits.shape, logits.dtype, logits.device)
        ctx.pos_index = pos_index
        ctx.term_grads = term_grads
        return tuple(v.to(logits.dtype) for v in values)

    @staticmethod
    def backward(ctx, *grad_outputs):
        shape, dtype, device = ctx.logits_meta
        pos, neg_terms = None, []
        for grad_out, (pos_grad, neg_grad) in zip(grad_outputs, ctx.term_grads):
            if grad_out is None:
                continue
            scale = grad_out.to(torch.float64)
            if pos_grad is not None:
                pos = scale * pos_grad if pos is None else pos + scale * pos_grad
            if neg_grad is not None:
                neg_terms.append((scale, neg_grad))
        grad = None
        for intervals in {id(term.intervals): term.intervals for _, term in neg_terms}.values():
            # Terms placed the same way share one pass over M (all losses here have one).
            part = neg_terms[0][1].combine([t for t in neg_terms if t[1].intervals is intervals])
            grad = part if grad is None else grad.add_(part)
        if grad is None:
            grad = torch.zeros(shape.numel(), dtype=dtype, device=device)
        if pos is not None:
            grad[ctx.pos_index] = pos.to(dtype)
        return grad.view(shape), None, None, None


def attach(problem: RankingProblem, values: Sequence[Tensor], term_grads: Sequence[TermGradient]):
    """Return ``values`` (0-dim, in the logits' dtype) whose gradients are ``term_grads``.

    Each loss term keeps its own gradient, so weighting the terms differently weights
    their gradients accordingly; the sum of the terms has the sum of the gradients.
    """
    return _IdentityUpdate.apply(problem.logits, tuple(values), problem.pos_index, tuple(term_grads))


def zero_terms(problem: RankingProblem, count: int):
    """``count`` zero losses still connected to the logits (their gradient is zero)."""
    zero = torch.zeros((), dtype=torch.float64, device=problem.logits.device)
    return attach(problem, [zero] * count, [(None, None)] * count)


def distribute_over_negatives(error: Tensor, false_pos: Tensor, negatives, active: Tensor) -> TermGradient:
    """The identity update of a ranking-type error (RS paper Eq. 12, aLRP paper Eq. 11).

    Positive i receives -error_i and each negative n the share H(x_in) / N_FP(i) of it,
    for the ``active`` positives (those with false positives to blame); all / |P|.
    """
    num_pos = error.numel()
    zero = torch.zeros_like(error)
    pos_grad = -torch.where(active, error, zero) / num_pos
    weights = torch.where(active, error / false_pos.clamp_min(torch.finfo(false_pos.dtype).tiny), zero)
    # The weights are >= 0 (errors >= 0): the negatives' gradient is >= 0 before scaling.
    return pos_grad, negatives.gradient(weights / num_pos, nonnegative=True)
