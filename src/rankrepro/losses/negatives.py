"""How the negatives enter a ranking loss: one by one (exact) or in buckets (Bucketed paper).

Both give, for every positive i, the false-positive count N_FP(i) = sum_n H(s_n - s_i)
(RS paper Eq. 9) and, for anchor weights w_i, the gradient each negative receives from the
identity update, sum_i w_i H(s_n - s_i) (Eq. 12), as a tensor over all M flat entries that
is zero outside the negatives.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .passes import NegativeGradient, place
from .scores import RankingProblem
from .step_sums import StepSums


class ExactNegatives:
    """Every negative counts with its own score.

    One pass over all M entries places them among the breakpoints of the positives
    (:func:`~rankrepro.losses.passes.place`); N_FP(i) comes from the per-interval counts and
    score sums, the gradient is the per-interval linear function of ``StepSums.item_tables``.
    """

    def __init__(self, step: StepSums, problem: RankingProblem) -> None:
        self._step = step
        self._problem = problem
        # The hard step needs no score sums (every H is 0 or 1 within an interval).
        self._placement = place(problem, step.breakpoints, step.anchor_intervals, with_sums=step.delta > 0)
        counts, sums = self._placement.counts, self._placement.sums
        self.false_positives = step.anchor_sums_from(counts, sums if step.delta > 0 else None)

    def gradient(self, anchor_weights: Tensor, nonnegative: bool = False) -> NegativeGradient:
        """sum_i anchor_weights_i H(s_n - s_i) for every negative n (0 elsewhere), deferred
        to the backward pass; ``nonnegative``: all weights are >= 0."""
        slope, intercept = self._step.item_tables(anchor_weights)
        return NegativeGradient(self._problem, self._placement.intervals, slope, intercept, nonnegative)


class BucketedNegatives:
    """Negatives grouped into buckets as in Bucketed Ranking-based Losses (ECCV 2024).

    In the descending order of all scores, the relevant negatives (score >= min positive
    - delta) lying between two consecutive positives form one bucket, represented by its
    mean score and counted with its size; every negative of a bucket receives the
    bucket's per-negative gradient.  A negative whose score ties a positive's is placed
    in the bucket *above* that positive, so that for delta = 0 the bucketed loss equals
    the exact loss (every member of a bucket then has the same step values as its mean;
    the mean is clamped into the bucket's score range against rounding).
    Buckets need no sort of the negatives: a negative's bucket is the number of positives
    scoring strictly above it.  The one pass over M places the entries among the merged
    table of the positives' scores and their breakpoints (the same table for delta = 0);
    each of its intervals lies inside one bucket and one interval of the breakpoints (the
    relevance threshold min positive - delta is the first breakpoint), so bucket sizes and
    sums follow from the per-interval histograms with P-length operations.
    """

    def __init__(self, step: StepSums, problem: RankingProblem) -> None:
        pos = problem.pos_logits
        num_pos = pos.numel()
        ascending = torch.sort(pos).values
        if step.delta > 0:
            table = torch.sort(torch.cat((step.breakpoints, ascending))).values
            pos_intervals = torch.searchsorted(table, pos, right=True)
        else:  # the breakpoints are the positives' scores
            table, pos_intervals = step.breakpoints, step.anchor_intervals
        placement = place(problem, table, pos_intervals)
        # Interval j of the table (entries in [table[j-1], table[j])) lies in bucket
        # #{positives > s} and in breakpoint interval #{breakpoints <= s} (0: irrelevant);
        # P + 1 is the trash bucket (irrelevant, ignored entries), with no count and no gradient.
        zero = table.new_zeros(1, dtype=torch.long)
        above = num_pos - torch.cat((zero, torch.searchsorted(ascending, table, right=True)))
        relevant = torch.cat((zero, torch.searchsorted(step.breakpoints, table, right=True))) > 0
        bucket_of = torch.cat((torch.where(relevant, above, num_pos + 1), zero + num_pos + 1))
        counts = pos.new_zeros(num_pos + 2).index_add_(0, bucket_of, placement.counts)[: num_pos + 1]
        sums = pos.new_zeros(num_pos + 2).index_add_(0, bucket_of, placement.sums)[: num_pos + 1]
        descending = ascending.flip(0)
        lowest = descending[-1] - step.delta
        # bucket k holds the negatives in [descending[k], descending[k - 1]) (k = 0: no
        # upper bound, k = P: down to the relevance threshold).
        floor = torch.cat((descending, lowest.reshape(1)))
        ceiling = torch.cat((descending.new_full((1,), float("inf")), descending))
        ceiling = torch.nextafter(ceiling, torch.full_like(ceiling, -float("inf")))
        self._means = torch.minimum(torch.maximum(sums / counts.clamp_min(1.0), floor), ceiling)
        self._step = step
        self._problem = problem
        self._bucket_of = bucket_of
        self._placement = placement
        self._intervals = step.locate(self._means)
        self.false_positives = step.anchor_sums(self._means, self._intervals, counts)

    def gradient(self, anchor_weights: Tensor, nonnegative: bool = False) -> NegativeGradient:
        """Each negative's bucket's sum_i anchor_weights_i H(mean - s_i), deferred to backward;
        ``nonnegative``: all weights are >= 0."""
        per_bucket = self._step.item_sums(self._means, self._intervals, anchor_weights)
        per_bucket = torch.cat((per_bucket, per_bucket.new_zeros(1)))
        table = per_bucket[self._bucket_of]
        return NegativeGradient(self._problem, self._placement.intervals, None, table, nonnegative)
