"""The sorting term of RS Loss (RS paper Eq. 7-8 and its gradient, Eq. 11-12), without P x P work.

Sorting needs, for each positive i, sums over the positives ranked above it *and* having a
larger (or smaller) continuous label: a two-key relation.  In the scores alone it is a
step sum (:mod:`~rankrepro.losses.step_sums`): every comparison behind H(s_j - s_i) is one
of the integer interval index k_j of s_j against the anchor's ``ramp_start`` /
``ramp_end``.  The label condition [y_j < y_i] is a prefix of the positives in ascending
label order: j qualifies iff its position t_j there is below n_i = #{j : y_j < y_i} (tied
labels all qualify or none does).  Only the misranked part (y_j < y_i) needs the two keys;
the part with y_j >= y_i is the sum over all positives minus it.  Three exact methods
compute these sums (:func:`misranked_pairs`), the same up to float64 rounding:

* ``dense``: the P x P relation H_ij and three matrix products; the fewest tensor
  operations (about 30 against about 130 for the others), for small P.
* ``blocks``: square-root decomposition of the label order
  (:mod:`~rankrepro.losses.sorting_blocks`), O(P sqrt P) time and memory.
* ``dyadic``: a prefix [0, n) is the union of at most log2(P) aligned dyadic blocks of
  the label order (one per set bit of n), so every sum splits into per-level pieces: at
  level l the positives are sorted by the key (t_j >> l, k_j), and three binary searches
  per anchor find, inside its block, where the items reach its ramp, pass it, and where
  the block ends; prefix sums over that order give the piece, exactly as in
  ``StepSums.anchor_sums``.  The gradient (sum over anchors k of share_k H(s_j - s_k)
  [y_j < y_k]) is the transpose: difference arrays over the same sorted positions and
  one cumulative sum per level.  O(P log^2 P) time, O(P log P) memory.

Each method issues a fixed number of tensor operations whatever P is.  The blocked
P x P version before them issued thousands of tiny ones at large P (64K-element blocks
are 3 rows at P = 20,000); with two threads each was a parallel region, and when the
machine was busy every region waited for a descheduled thread (about 1.7 ms per
operation on a (3, 20000) block, measured), so RS ran many times slower on 2 threads than
on 1 (issues 15 and 16).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .sorting_blocks import SqrtLabelBlocks
from .step_sums import StepSums, smoothed_step


# Positive counts at which the sorting term switches method, from the crossovers measured
# on one CPU thread (sorting term alone, delta = 0.5, minimum of repeated runs on a shared
# 2-core machine): dense 0.45 ms against blocks 0.67 ms at P = 256, dense 1.5 ms against
# 0.70 ms at P = 290 (dense jumps between 270 and 290); blocks beat dyadic from
# P = 10 (0.50 against 0.61 ms) to about 5000 (1000: 1.6 against 2.7 ms; 4096: 10.8
# against 11.6 ms; 5000: 12.0 against 18.4 ms), equal at 6000 (23.5 against 22.7 ms), and
# lose at 8000 (66 against 50 ms; their O(P sqrt P) tables are fresh memory, filled at
# about 1.6 GB/s in the profile).  BLOCKS_MAX stays below the crossover, where the table is
# at most 8.5 MB (65 x 4097 x 4 float64).
DENSE_MAX = 256
BLOCKS_MAX = 4096
METHODS = ("dense", "blocks", "dyadic")


def sorting_method(num_pos: int) -> str:
    """The method ``sorting_errors`` uses for ``num_pos`` positives by default."""
    if num_pos <= DENSE_MAX:
        return "dense"
    return "blocks" if num_pos <= BLOCKS_MAX else "dyadic"


def misranked_pairs(step: StepSums, intervals: Tensor, targets: Tensor, method: str | None = None):
    """The two-key sums of the sorting term for these positives, by ``method`` (one of
    ``METHODS``; None: :func:`sorting_method`).  All methods give the same sums (exact up
    to float64 rounding); they differ in cost."""
    method = sorting_method(targets.numel()) if method is None else method
    if method == "dense":
        return _DensePairs(step, targets)
    if method == "blocks":
        return SqrtLabelBlocks(step, intervals, targets)
    if method == "dyadic":
        return _LabelPrefixBlocks(step, intervals, targets)
    raise ValueError(f"sorting method must be one of {METHODS}, got {method!r}")


def sorting_errors(
    step: StepSums, intervals: Tensor, targets: Tensor, rank_pos: Tensor, eps: float, method: str | None = None
) -> tuple[Tensor, Tensor]:
    """Per-positive sorting errors and their identity-update gradient (not yet / P).

    Args:
        step: the breakpoints of the P positives (``step.anchors``: their float64 scores).
        intervals: ``step.anchor_intervals``, the interval index of every positive.
        targets: float64 continuous labels y of the positives.
        rank_pos: rank of each positive among positives, sum_j H(s_j - s_i) (self included).
        eps: a positive whose misranking mass is <= eps distributes no sorting update
            (the official ``sorting_pmf_denom > eps`` guard).
        method: how the two-key sums are computed (see :func:`misranked_pairs`); None
            picks the fastest for P.

    Returns:
        ``errors`` (P,): l_S(i) = sum_j H_ij (1 - y_j) / rank_pos(i)
        - sum_j H_ij [y_j >= y_i] (1 - y_j) / sum_j H_ij [y_j >= y_i]  (Eq. 7-8);
        ``grads`` (P,): -l_S(i) for every positive with misranked positives, plus
        sum_k l_S(k) * M_ki / sum_j M_kj over the positives k that i is misranked against,
        with M_kj = H(s_j - s_k) [y_j < y_k] (the sorting pmf, Eq. 11).
    """
    one_minus_y = 1.0 - targets
    pairs = misranked_pairs(step, intervals, targets, method)
    # sum_j H_ij (1 - y_j) over all positives, and over the misranked positives j
    # (y_j < y_i) their mass sum_j H_ij and sum_j H_ij (1 - y_j).
    current_sum, mass, misranked_sum = pairs.anchor_sums(one_minus_y)
    # The target sums run over y_j >= y_i: everything minus the misranked part (>= H(0) > 0).
    target = (current_sum - misranked_sum) / (rank_pos - mass)
    errors = current_sum / rank_pos - target
    active = mass > eps
    # Inactive anchors divide by inf: no share (errors are finite).
    share = errors / torch.where(active, mass, math.inf)
    grads = pairs.item_sums(share) - errors * active
    return errors, grads


class _DensePairs:
    """The sums of the sorting term from the P x P relation H_ij = H(s_j - s_i): fewest
    tensor operations, for small P."""

    def __init__(self, step: StepSums, targets: Tensor) -> None:
        scores = step.anchors
        self.relation = smoothed_step(scores[None, :] - scores[:, None], step.delta)
        self.misranked = self.relation * (targets[None, :] < targets[:, None])

    def anchor_sums(self, weights: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(sum_j H_ij w_j, sum_j H_ij [y_j < y_i], sum_j H_ij [y_j < y_i] w_j)``."""
        misranked = self.misranked @ torch.stack((torch.ones_like(weights), weights), dim=1)
        return self.relation @ weights, misranked[:, 0], misranked[:, 1]

    def item_sums(self, anchor_weights: Tensor) -> Tensor:
        """sum_k anchor_weights_k H(s_j - s_k) [y_j < y_k] for every positive j."""
        return anchor_weights @ self.misranked


class _LabelPrefixBlocks:
    """Step sums of H(s_j - s_i) restricted to the positives j with y_j < y_i.

    Positions t_j in ascending label order (stable); anchor i takes the prefix
    t_j < n_i = #{y_j < y_i}.  Level l sorts the positives by the key
    ``(t_j >> l) * K + k_j``; an anchor whose n has bit l set owns block (n >> l) - 1 of
    that level, and three binary searches give the sorted positions where the block's
    items pass the anchor's ramp start (``lo``), its ramp end (``mid``) and where the
    block ends (``hi``).  All levels of a group are handled by the same few tensor
    operations (one sort, one search, one cumulative sum), not one Python pass per level,
    so that the cost does not depend on how many small operations the threads must
    synchronise on.  Groups bound the memory to about ``GROUP_ROWS`` rows.
    """

    GROUP_ROWS = 1 << 21

    def __init__(self, step: StepSums, intervals: Tensor, targets: Tensor) -> None:
        self.step = step
        self.intervals = intervals
        # Scores relative to the middle of their range: smaller prefix sums, less rounding.
        scores = step.anchors
        self.scores = scores - 0.5 * (scores.min() + scores.max())
        device = targets.device
        num = targets.numel()
        ascending = torch.sort(targets, stable=True)
        position = torch.empty(num, dtype=torch.long, device=device)
        position[ascending.indices] = torch.arange(num, device=device)
        below = torch.searchsorted(ascending.values, targets)  # n_i = #{y_j < y_i}
        width = step.num_intervals  # k_j, ramp_start, ramp_end all lie in [0, width - 1]
        span = (num + 1) * width  # above every key and query of one level
        num_levels = int(below.max()).bit_length()
        per_group = max(1, self.GROUP_ROWS // (num + 1))
        self.groups = []
        for first in range(0, num_levels, per_group):
            levels = torch.arange(first, min(first + per_group, num_levels), device=device)
            keys, order = torch.sort((position >> levels[:, None]) * width + intervals, dim=1)
            level_of, anchors = torch.nonzero((below >> levels[:, None]) & 1, as_tuple=True)
            shift = levels[level_of]
            base = ((below[anchors] >> shift) - 1) * width + level_of * span
            queries = torch.stack((base + step.ramp_start[anchors], base + step.ramp_end[anchors], base + (width - 1)))
            flat_keys = (keys + levels[:, None].sub(first) * span).flatten()
            # Row of a position in the per-level prefix sums, which have one more (zero) row.
            rows = torch.searchsorted(flat_keys, queries, right=True) + level_of
            self.groups.append((order, anchors, rows))

    def anchor_sums(self, weights: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(sum_j H_ij w_j, sum_j H_ij [y_j < y_i], sum_j H_ij [y_j < y_i] w_j)`` for
        every anchor i, with H_ij = H(s_j - s_i) (first over all positives)."""
        step, scores = self.step, self.scores
        num = scores.numel()
        totals = torch.zeros(num, 2, dtype=scores.dtype, device=scores.device)
        columns = torch.stack((torch.ones_like(scores), weights, scores, weights * scores), dim=1)
        for order, anchors, rows in self.groups:
            prefix = torch.zeros(order.shape[0], num + 1, 4, dtype=scores.dtype, device=scores.device)
            torch.cumsum(columns[order], dim=1, out=prefix[:, 1:])
            at_lo, at_mid, at_hi = prefix.view(-1, 4).index_select(0, rows.flatten()).view(3, -1, 4)
            # Above the ramp (k_j > ramp_end): H = 1.  For delta = 0, mid = lo.
            sums = at_hi[:, :2] - at_mid[:, :2]
            if step.delta > 0:  # on the ramp: sum_j w_j ((s_j - s_i) / (2 delta) + 1/2)
                ramp = at_mid - at_lo
                s_i = scores[anchors, None]
                sums += (ramp[:, 2:] - s_i * ramp[:, :2]) / (2 * step.delta) + 0.5 * ramp[:, :2]
            totals.index_add_(0, anchors, sums)
        return step.anchor_sums(step.anchors, self.intervals, weights), totals[:, 0], totals[:, 1]

    def item_sums(self, anchor_weights: Tensor) -> Tensor:
        """sum_k anchor_weights_k H(s_j - s_k) [y_j < y_k] for every positive j."""
        step, scores = self.step, self.scores
        num = scores.numel()
        out = torch.zeros_like(scores)
        for order, anchors, rows in self.groups:
            w = anchor_weights[anchors]
            lo, mid, hi = rows
            # Difference arrays over each level's sorted positions: the value at position p
            # is slope_p * s_j + intercept_p, summed over the anchors whose range covers p.
            size = order.shape[0] * (num + 1)
            intercept = torch.zeros(size, dtype=scores.dtype, device=scores.device)
            if step.delta > 0:
                slope = torch.zeros_like(intercept)
                w_slope = w / (2 * step.delta)
                w_offset = w * (0.5 - scores[anchors] / (2 * step.delta))
                slope.index_add_(0, torch.cat((lo, mid)), torch.cat((w_slope, -w_slope)))
                intercept.index_add_(0, rows.flatten(), torch.cat((w_offset, w - w_offset, -w)))
                slope = slope.view(-1, num + 1).cumsum_(1)[:, :num]
                values = slope.mul_(scores[order]).add_(intercept.view(-1, num + 1).cumsum_(1)[:, :num])
            else:  # H = 1 from the anchor's own score on
                intercept.index_add_(0, torch.cat((lo, hi)), torch.cat((w, -w)))
                values = intercept.view(-1, num + 1).cumsum_(1)[:, :num]
            out.index_add_(0, order.flatten(), values.flatten())
        return out
