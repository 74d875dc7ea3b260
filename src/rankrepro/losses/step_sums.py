"""Exact sums of the smoothed step function over many scores, grouped by its breakpoints.

All ranking-based losses here are built from sums of the smoothed step function of the
Rank & Sort paper (Eq. 4, after AP Loss and aLRP Loss),

    H(x) = clamp(x / (2 delta) + 1/2, 0, 1)        (delta > 0),
    H(x) = [x >= 0]                                 (delta = 0),

applied to score differences x = s_n - s_i between any scored item n (a negative, a bucket
of negatives or another positive) and a positive i ("anchor").  The official code builds
every row H(s_n - s_i) with a Python loop over the anchors, O(P * M).

As a function of s_n, H(s_n - s_i) is piecewise *linear* with breakpoints s_i - delta and
s_i + delta.  Sorting the 2P breakpoints of all anchors cuts the real line into 2P + 1
intervals inside each of which *every* H(s_n - s_i) is linear in s_n.  One lookup (a grid
over the breakpoints, :mod:`~rankrepro.losses.binning`) places each item in its interval;
per-interval weight sums and weighted score sums then give, through prefix sums, both
directions needed by the losses exactly:

* ``anchor_sums``:  F(i) = sum_n u_n H(s_n - s_i)   for every anchor i (e.g. N_FP(i)),
* ``item_sums``:    G(n) = sum_i w_i H(s_n - s_i)   for every item n (e.g. the identity-
  update gradient a negative receives from all positives).

Cost: O(M + P log P) time (expected: the grid's rare crowded cells take a binary search)
and O(M + P) memory; for the M items the losses use ``anchor_sums_from`` / ``item_tables``
with the histograms and the per-interval tables of :mod:`~rankrepro.losses.passes`, which
make the only two passes over them.  This is the exact generalisation
of the buckets of the Bucketed paper (exact only for delta = 0) to delta > 0.
All arithmetic is float64.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .binning import count_at_or_below, histogram


def smoothed_step(x: Tensor, delta: float) -> Tensor:
    """H(x) of Eq. 4: the hard step [x >= 0] for delta = 0, else a linear ramp of width 2 delta."""
    if delta > 0:
        return torch.clamp(x / (2 * delta) + 0.5, min=0.0, max=1.0)
    return (x >= 0).to(x.dtype)


def step_at_zero(delta: float) -> float:
    """H(0): what an anchor contributes to a sum over anchors that includes itself."""
    return 0.5 if delta > 0 else 1.0


class StepSums:
    """The breakpoints of H(. - s_i) for a set of anchor scores s_i, ready to sum over items.

    Args:
        anchors: float64 scores s_i of the anchors (the positives), shape (P,).
        delta: half-width of the linear ramp of H; 0 for the hard step.
    """

    def __init__(self, anchors: Tensor, delta: float) -> None:
        self.anchors = anchors
        self.delta = float(delta)
        if self.delta > 0:
            starts, ends = anchors - self.delta, anchors + self.delta
            self.breakpoints = torch.sort(torch.cat((starts, ends))).values
        else:
            starts = ends = anchors
            self.breakpoints = torch.sort(anchors).values
        # Items in intervals k > ramp_start[i] have s_n >= s_i - delta (H > 0 possible);
        # items in intervals k > ramp_end[i] have s_n >= s_i + delta (H = 1).
        # (Items are placed with k = #{breakpoints <= s_n}, so s_n >= t  <=>
        # k > #{breakpoints < t} for every breakpoint t.)
        self.ramp_start = torch.searchsorted(self.breakpoints, starts)
        self.ramp_end = torch.searchsorted(self.breakpoints, ends)
        self.num_intervals = self.breakpoints.numel() + 1
        # The anchors' own intervals (P-length): every loss needs them.
        self.anchor_intervals = torch.searchsorted(self.breakpoints, anchors, right=True)

    @property
    def excluded(self) -> int:
        """Interval index of items that take no part (masked out by ``locate``)."""
        return self.num_intervals

    def locate(self, scores: Tensor, mask: Tensor | None = None) -> Tensor:
        """Interval index of each item; items where ``mask`` is False get ``excluded``."""
        intervals = count_at_or_below(self.breakpoints, scores)
        if mask is not None:
            intervals.masked_fill_(~mask, self.excluded)
        return intervals

    def _per_interval(self, intervals: Tensor, weights: Tensor | None) -> Tensor:
        """Sums of ``weights`` (or counts) per interval, float64 (``num_intervals + 1`` entries)."""
        return histogram(intervals, self.num_intervals + 1, weights)

    def _prefix_of(self, per_interval: Tensor) -> Tensor:
        """Sums over intervals 0..j-1, for j = 0..num_intervals."""
        k = self.num_intervals
        prefix = torch.zeros(k + 1, dtype=torch.float64, device=per_interval.device)
        torch.cumsum(per_interval[:k], 0, out=prefix[1:])
        return prefix

    def anchor_sums(self, scores: Tensor, intervals: Tensor, weights: Tensor | None = None) -> Tensor:
        """F(i) = sum_n weights_n * H(scores_n - s_i) for every anchor i, shape (P,).

        ``intervals`` is ``locate(scores)``; ``weights`` default to one (a count).
        """
        score_sums = None
        if self.delta > 0:
            score_sums = self._per_interval(intervals, scores if weights is None else weights * scores)
        return self.anchor_sums_from(self._per_interval(intervals, weights), score_sums)

    def anchor_sums_from(self, weight_sums: Tensor, score_sums: Tensor | None) -> Tensor:
        """``anchor_sums`` from per-interval sums of the weights and of weights * scores
        (float64, at least ``num_intervals`` entries; further entries are ignored), as one
        pass over the items gives them (:func:`~rankrepro.losses.passes.place`).
        ``score_sums`` is not used (may be None) for the hard step."""
        weight_sum = self._prefix_of(weight_sums)
        # Items strictly above the ramp: H = 1.
        above = weight_sum[-1] - weight_sum[self.ramp_end + 1]
        if self.delta == 0:
            return above
        # Items on the ramp: sum_n u_n ((s_n - s_i) / (2 delta) + 1/2).
        score_sum = self._prefix_of(score_sums)
        ramp_weight = weight_sum[self.ramp_end + 1] - weight_sum[self.ramp_start + 1]
        ramp_score = score_sum[self.ramp_end + 1] - score_sum[self.ramp_start + 1]
        ramp = (ramp_score - self.anchors * ramp_weight) / (2 * self.delta) + 0.5 * ramp_weight
        return above + ramp

    def item_sums(self, scores: Tensor, intervals: Tensor, anchor_weights: Tensor) -> Tensor:
        """G(n) = sum_i anchor_weights_i * H(scores_n - s_i) for every item n (0 if excluded).

        Inside interval k, G is ``slope_k * s_n + intercept_k``; both are built from
        difference arrays over the anchors' breakpoints and one cumulative sum.
        """
        slope, intercept = self.item_tables(anchor_weights)
        if slope is None:
            return intercept.index_select(0, intervals)
        return slope.index_select(0, intervals).mul_(scores).add_(intercept.index_select(0, intervals))

    def item_tables(self, anchor_weights: Tensor) -> tuple[Tensor | None, Tensor]:
        """G of ``item_sums`` per interval: ``(slope, intercept)`` with G(n) = slope[k_n] * s_n
        + intercept[k_n]; ``num_intervals + 1`` entries, the last (excluded) zero; slope is
        None for the hard step (G constant per interval)."""
        w = anchor_weights
        size = self.num_intervals + 1  # the last entry is the excluded interval: zero
        intercept = torch.zeros(size, dtype=w.dtype, device=w.device)
        if self.delta == 0:
            intercept.index_add_(0, self.ramp_start + 1, w)
            intercept = intercept.cumsum_(0)
            intercept[-1] = 0.0
            return None, intercept
        slope = torch.zeros(size, dtype=w.dtype, device=w.device)
        w_slope = w / (2 * self.delta)
        w_offset = w * (0.5 - self.anchors / (2 * self.delta))
        slope.index_add_(0, self.ramp_start + 1, w_slope)
        slope.index_add_(0, self.ramp_end + 1, -w_slope)
        intercept.index_add_(0, self.ramp_start + 1, w_offset)
        intercept.index_add_(0, self.ramp_end + 1, w - w_offset)
        slope = slope.cumsum_(0)
        intercept = intercept.cumsum_(0)
        slope[-1] = intercept[-1] = 0.0  # the excluded interval
        return slope, intercept
