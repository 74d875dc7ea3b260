"""Rank & Sort Loss (Oksuz et al., ICCV 2021) and its bucketed version (Yavuz et al., ECCV 2024)."""
from __future__ import annotations

from torch import Tensor

from .identity_update import attach, distribute_over_negatives, zero_terms
from .negatives import BucketedNegatives, ExactNegatives
from .scores import check_delta, split_scores
from .sorting import sorting_errors
from .step_sums import StepSums


def rank_sort_loss(logits: Tensor, targets: Tensor, delta: float = 0.5) -> tuple[Tensor, Tensor]:
    """Rank & Sort Loss: ``(ranking_loss, sorting_loss)``, each with its identity-update gradient.

    Args:
        logits: classifier scores, any shape (treated as flat), any float dtype / device.
        targets: same shape; ``> 0`` positive with its continuous label in (0, 1] (e.g. the
            IoU of the predicted box or the Dice of its mask), ``0`` negative, ``< 0``
            ignored.  A target above 1 (class indices passed by mistake) is a ValueError.
        delta: half-width of the smoothed step H (RS paper uses 0.5); 0 = hard step.

    Definitions (RS paper Sec. 4): with x_ij = s_j - s_i and H of Eq. 4,
    rank+(i) = sum_{j in P} H(x_ij) *including i itself* (H(0) = 1/2 for delta > 0),
    N_FP(i) = sum_{n in N} H(x_in), ranking error l_R(i) = N_FP(i) / (rank+(i) + N_FP(i));
    sorting error l_S(i) of Eq. 7-8 (current minus target sorting error). The losses are
    the means of l_R and l_S over positives (Eq. 6).  Gradients (Eq. 11-12): positive i
    receives -l_R(i) - l_S(i) + sum_k l_S(k) p_S(i | k), negative n receives
    sum_i l_R(i) H(x_in) / N_FP(i), all divided by |P|.  The official implementation
    attaches the summed gradient to ``ranking_loss`` and none to ``sorting_loss``; here
    each term carries its own part, so ``ranking_loss + sorting_loss`` has exactly the
    official gradient and a separately weighted term is weighted correctly.

    Worked example of the paper (Fig. A.4): logits [3, 2, 1, 0, -1, -2, -3, -4], labels
    [0.9, 0.4, 0, 0, 0.8, 0, 0.1, 0].  With the hard step (delta = 0) the positives
    ranked at 5 and 7 have ranking errors 2/5 and 3/7 and the positive with label 0.8
    sorting error 0.15, so ranking = 0.2071, sorting = 0.0375, RS = 0.2446, the paper's
    0.24.  With delta = 0.5 all other pairs are at least 2 delta apart, so H is still 0
    or 1 for them, but every positive ranks itself with H(0) = 1/2 instead of 1: rank+
    drops by 1/2, ranking errors become 2/4.5 and 3/6.5 and the sorting error of the 0.8
    positive 0.32 - 0.1333, so ranking = 0.2265, sorting = 0.0467, RS = 0.2732.

    Edge cases: no positives -> (0, 0) with zero gradient (still connected to the graph);
    no negatives -> ranking 0; NaN/inf logits at non-ignored entries -> ValueError.
    Cost: two passes over the M logits, one in forward and one in backward (see
    :mod:`~rankrepro.losses.passes`; optionally compiled), plus O(P log P) work for the
    ranking term and the sorting term's P-dependent work (see :mod:`~rankrepro.losses.sorting`).

    The Bucketed repository's ``RankSort`` (used by its RS configs) is
    ``forward(ctx, logits, targets, loss_weight=1, delta_RS=0.50, eps=1e-10)`` with
    ``loss_weight`` unused, and its ATSS / PAA heads call it with
    ``apply(flat_preds, flat_labels, self.delta)``: the head's delta lands in
    ``loss_weight``, so plain RS always ran with delta = 0.5 there.  The RankSortLoss
    repository's ``RankSort`` takes delta as its third argument.  Here ``delta`` is used.
    """
    return _rank_sort(logits, targets, delta, "rank_sort_loss", ExactNegatives, eps=1e-10)


def bucketed_rank_sort_loss(logits: Tensor, targets: Tensor, delta: float = 0.5) -> tuple[Tensor, Tensor]:
    """Bucketed RS Loss (BRS, ECCV 2024): RS Loss with the negatives in buckets.

    Same arguments, outputs and edge cases as :func:`rank_sort_loss`; the ranking term
    counts each bucket of negatives (see :class:`~rankrepro.losses.negatives.BucketedNegatives`)
    as its size times H(mean score - s_i), and every negative of a bucket gets the
    bucket's per-negative gradient.  The sorting term is RS's, unchanged.  For delta = 0
    BRS equals RS exactly; for delta > 0 it is the Bucketed paper's approximation.

    The official ``BucketedRankSort.forward(ctx, logits, targets, delta_RS=0.5)`` takes
    delta as its third argument, and the Bucketed repository's ATSS / PAA heads pass
    their ``delta`` there (0.5 in all its configs), so BRS did train with the given delta
    (its RPN / RoI heads pass none: 0.5).  Differences from the official code: bucket
    means are accumulated in float64 (official: float32, ``torch.Tensor([...])``); as
    there, a batch without relevant negatives gives ranking 0.
    """
    return _rank_sort(logits, targets, delta, "bucketed_rank_sort_loss", BucketedNegatives, eps=0.0)


def _rank_sort(logits: Tensor, targets: Tensor, delta: float, name: str, negatives_type, eps: float):
    """RS Loss with the negatives counted by ``negatives_type``; ``eps`` is the official
    guard below which a positive's error mass distributes no update (RS: 1e-10, BRS: 0)."""
    problem = split_scores(logits, targets, name)
    delta = check_delta(delta)
    if problem.num_pos == 0:
        return zero_terms(problem, 2)
    largest = problem.max_target  # with positives present, the largest positive target
    if largest > 1.0:
        raise ValueError(
            f"{name}: targets above 1 (largest {largest!r}); positives take their continuous "
            "label in (0, 1] (e.g. the IoU or Dice of the prediction), negatives 0, ignored < 0 "
            "(class indices passed instead of labels?)"
        )
    pos = problem.pos_logits
    step = StepSums(pos, delta)
    negatives = negatives_type(step, problem)
    false_pos = negatives.false_positives
    pos_intervals = step.anchor_intervals
    rank_pos = step.anchor_sums(pos, pos_intervals)
    ranking = false_pos / (rank_pos + false_pos)
    sorting, sort_pos_grad = sorting_errors(step, pos_intervals, problem.pos_targets, rank_pos, eps=eps)
    return attach(
        problem,
        [ranking.mean(), sorting.mean()],
        [distribute_over_negatives(ranking, false_pos, negatives, false_pos > eps), (sort_pos_grad / problem.num_pos, None)],
    )
