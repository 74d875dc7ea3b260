"""aLRP Loss (Oksuz et al., NeurIPS 2020) and its self-balancing weight."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .identity_update import attach, distribute_over_negatives, zero_terms
from .negatives import ExactNegatives
from .scores import check_delta, split_scores
from .step_sums import StepSums, step_at_zero


def alrp_loss(
    logits: Tensor, targets: Tensor, loc_errors: Tensor, delta: float = 1.0, eps: float = 1e-5
) -> tuple[Tensor, Tensor]:
    """aLRP Loss: ``(cls_loss, loc_loss)``.

    Args:
        logits, targets: as in :func:`~rankrepro.losses.ap_loss` (positives ``> 0``).
        loc_errors: localisation error of each positive, shape (P,), any float dtype, in
            the flat order of the positives (``logits.flatten()[targets.flatten() > 0]``).
            The official aLRP heads (RetinaNet, FoveaBox, the Faster R-CNN RoI head) pass
            1 - GIoU, the GIoU Loss with ``reduction='none'`` (their comment: (1 - GIoU) / 2
            for GIoU's range, divided by 1 - tau with tau = 0.5); the official aLRP RPN
            head passes (1 - GIoU) / (2 (1 - 0.7)).
        delta: half-width of H (aLRP uses 1.0); eps: official guard, a positive with
            N_FP(i) <= eps sends no classification update.

    cls_loss (aLRP paper Eq. 8-10): rank+(i) = 1 + sum_{j != i} H(x_ij), rank(i) =
    rank+(i) + N_FP(i), cls_loss = 1 - mean rank+(i) / rank(i).  Its gradient (Eq. 11):
    positive i gets -(sum_{j != i} H(x_ij) loc_j + N_FP(i)) / rank(i) / |P| and each
    negative the share H(x_in) / N_FP(i) of it; the classification gradient does not flow
    into ``loc_errors`` (as in the official code).
    loc_loss: positives sorted by descending logit (ties keep flat order), loc_loss =
    mean_k cumsum(loc)_k / rank_k with rank detached: differentiable w.r.t. ``loc_errors``
    only (accumulated in float64; the gradient reaches ``loc_errors`` in their dtype).
    Multiply it by :class:`SelfBalancingWeight` as the paper does.

    Both terms are 0-dim tensors in the logits' dtype, whatever the dtype of ``loc_errors``.

    No positives -> (0, 0), both connected to the graph; no negatives -> cls_loss 0.
    """
    problem = split_scores(logits, targets, "alrp_loss")
    delta = check_delta(delta)
    if loc_errors.shape != (problem.num_pos,):
        raise ValueError(
            f"alrp_loss: loc_errors must have shape ({problem.num_pos},), one per positive, "
            f"got {tuple(loc_errors.shape)}"
        )
    if not torch.isfinite(loc_errors.detach()).all():
        raise ValueError("alrp_loss: loc_errors contain NaN or inf")
    if problem.num_pos == 0:
        (cls_loss,) = zero_terms(problem, 1)
        return cls_loss, loc_errors.sum().to(logits.dtype)
    pos = problem.pos_logits
    step = StepSums(pos, delta)
    negatives = ExactNegatives(step, problem)
    false_pos = negatives.false_positives
    pos_intervals = step.anchor_intervals
    self_term = step_at_zero(delta)
    rank_pos = 1.0 + step.anchor_sums(pos, pos_intervals) - self_term
    rank = rank_pos + false_pos
    loc = loc_errors.detach().to(torch.float64)
    loc_above = step.anchor_sums(pos, pos_intervals, loc) - self_term * loc
    error = (loc_above + false_pos) / rank
    (cls_loss,) = attach(
        problem,
        [(1.0 - rank_pos / rank).mean()],
        [distribute_over_negatives(error, false_pos, negatives, false_pos > eps)],
    )
    descending = torch.sort(pos, descending=True, stable=True).indices
    ordered_loc = loc_errors[descending].to(torch.float64)
    loc_loss = (torch.cumsum(ordered_loc, dim=0) / rank[descending]).mean()
    return cls_loss, loc_loss.to(logits.dtype)


class SelfBalancingWeight:
    """The self-balancing weight of aLRP Loss (aLRP paper Sec. 4.3).

    The localisation loss is multiplied by w = (mean L_cls + mean L_loc) / mean L_loc, the
    means taken over the iterations of the last period; w starts at ``initial`` (50 in
    the official heads).  The official mmdet code hard-codes the period: 3665 iterations in
    the aLRPLoss repository's heads, 7330 in the RankSortLoss repository's (one COCO epoch
    at batch 32 and 16); here it is one epoch of *your* run,
    ceil(dataset_size / batch_size), with batch_size the total over all GPUs.

    A period whose mean localisation loss is 0 leaves w unchanged (no division by zero).
    """

    def __init__(self, dataset_size: int, batch_size: int, initial: float = 50.0) -> None:
        if dataset_size <= 0 or batch_size <= 0:
            raise ValueError(
                f"SelfBalancingWeight: dataset_size and batch_size must be positive, "
                f"got {dataset_size} and {batch_size}"
            )
        self.period = math.ceil(dataset_size / batch_size)
        self.value = float(initial)
        self._cls_sum = 0.0
        self._loc_sum = 0.0
        self._count = 0

    def update(self, cls_loss: float, loc_loss: float) -> float:
        """Record one iteration's (unweighted) losses; return the weight for the next one."""
        self._cls_sum += float(cls_loss)
        self._loc_sum += float(loc_loss)
        self._count += 1
        if self._count == self.period:
            if self._loc_sum > 0:
                self.value = (self._cls_sum + self._loc_sum) / self._loc_sum
            self._cls_sum = self._loc_sum = 0.0
            self._count = 0
        return self.value

    def state_dict(self) -> dict:
        return {
            "period": self.period,
            "value": self.value,
            "cls_sum": self._cls_sum,
            "loc_sum": self._loc_sum,
            "count": self._count,
        }

    def load_state_dict(self, state: dict) -> None:
        self.period = int(state["period"])
        self.value = float(state["value"])
        self._cls_sum = float(state["cls_sum"])
        self._loc_sum = float(state["loc_sum"])
        self._count = int(state["count"])
