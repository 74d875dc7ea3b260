"""AP Loss (Chen et al., CVPR 2019, in the form of the RS / aLRP repositories) and Bucketed AP Loss."""
from __future__ import annotations

import torch
from torch import Tensor

from .identity_update import attach, distribute_over_negatives, zero_terms
from .negatives import BucketedNegatives, ExactNegatives
from .scores import check_delta, split_scores
from .step_sums import StepSums, step_at_zero


def ap_loss(logits: Tensor, targets: Tensor, delta: float = 1.0) -> Tensor:
    """AP Loss with interpolated precision, as ``APLoss`` of the RankSortLoss repository.

    Positives are ``targets > 0`` (their value is not used), negatives ``targets == 0``,
    ``targets < 0`` are ignored.  For positive i: rank+(i) = 1 + sum_{j != i} H(x_ij),
    N_FP(i) = sum_n H(x_in), precision(i) = rank+(i) / (rank+(i) + N_FP(i)); the
    interpolated precision p(i) is the running maximum of precision over the positives in
    ascending-logit order (i.e. the max precision at equal or higher recall).  Loss =
    1 - mean p(i).  Gradients (aLRP paper Eq. 5 with the AP error): positive i gets
    -(1 - p(i)) / |P|; negative n gets sum_i (1 - p(i)) H(x_in) / N_FP(i) / |P|.

    delta = 0 uses the hard step (the official code divides by zero there).
    No positives -> 0 with zero gradient; no negatives -> 0.
    """
    problem, step, negatives = _prepare(logits, targets, delta, "ap_loss", ExactNegatives)
    if negatives is None:
        return zero_terms(problem, 1)[0]
    pos = problem.pos_logits
    false_pos = negatives.false_positives
    rank_pos = 1.0 + step.anchor_sums(pos, step.anchor_intervals) - step_at_zero(step.delta)
    precision = rank_pos / (rank_pos + false_pos)
    ascending = torch.sort(pos, stable=True).indices
    interpolated = torch.empty_like(precision)
    interpolated[ascending] = torch.cummax(precision[ascending], dim=0).values
    # A positive without false positives has precision 1, hence error 0 and no update.
    return _mean_error(problem, 1.0 - interpolated, false_pos, negatives)


def bucketed_ap_loss(logits: Tensor, targets: Tensor, delta: float = 1.0) -> Tensor:
    """Bucketed AP Loss (BAP, ECCV 2024): the bucketed ranking term with binary labels.

    As ``BucketedAPLoss`` of the Bucketed repository: rank+(i) = sum_j H(x_ij) includes
    the positive itself (H(0) = 1/2), no interpolation; loss = mean over positives of
    N_FP(i) / (rank+(i) + N_FP(i)), with N_FP counted over buckets of negatives (see
    :class:`~rankrepro.losses.negatives.BucketedNegatives`).  Positive i gets
    -l(i) / |P|, each negative its bucket's sum_i l(i) H(mean - s_i) / N_FP(i) / |P|.
    Positive target values are not used.  No positives or no relevant negatives -> 0.
    """
    problem, step, negatives = _prepare(logits, targets, delta, "bucketed_ap_loss", BucketedNegatives)
    if negatives is None:
        return zero_terms(problem, 1)[0]
    pos = problem.pos_logits
    false_pos = negatives.false_positives
    rank_pos = step.anchor_sums(pos, step.anchor_intervals)
    return _mean_error(problem, false_pos / (rank_pos + false_pos), false_pos, negatives)


def _prepare(logits, targets, delta, name, negatives_type):
    """Split the scores; the breakpoints of the positives and the negatives (None if no positive)."""
    problem = split_scores(logits, targets, name)
    delta = check_delta(delta)
    if problem.num_pos == 0:
        return problem, None, None
    step = StepSums(problem.pos_logits, delta)
    return problem, step, negatives_type(step, problem)


def _mean_error(problem, error, false_pos, negatives) -> Tensor:
    """Loss = mean error over positives, with the identity update of that error."""
    (loss,) = attach(problem, [error.mean()], [distribute_over_negatives(error, false_pos, negatives, false_pos > 0)])
    return loss
