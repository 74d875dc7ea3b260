"""The sorting term's two-key sums by square-root decomposition: O(P sqrt P), exact.

The sorting term of RS Loss (RS paper Eq. 7-8, gradient Eq. 11-12) needs, for every
positive i, sums over the positives j that outrank it *and* have a smaller label:

    mass(i)      = sum_j H(s_j - s_i) [y_j < y_i],
    misranked(i) = sum_j H(s_j - s_i) [y_j < y_i] w_j,

and the transpose, out(j) = sum_k a_k H(s_j - s_k) [y_j < y_k].  The label condition is a
prefix of the positives in ascending label order: j qualifies iff its position t_j there
is below n_i = #{y_j < y_i} (tied labels all qualify or none does).  Cut that order into
blocks of B ~ sqrt(P) positions; the prefix [0, n_i) is blocks 0 .. b_i - 1 (b_i = n_i // B)
plus the first n_i - b_i B positions of block b_i:

* whole blocks: a table T[b, r] of sums over the positives in blocks < b whose rank by
  score is below r ((P / B + 1) x (P + 1) entries, one cumulative sum per axis).  As in
  :class:`~rankrepro.losses.step_sums.StepSums`, H(s_j - s_i) is 1 for the positives
  above the anchor's ramp and linear in s_j on it, and the positives above (on) the ramp
  are a range of score ranks, so each anchor reads three entries of its row b_i.  The
  transpose scatters every anchor's weight into a difference array over the same
  (block, rank) grid and reads it back after the two cumulative sums.
* the partial block: at most B - 1 positives per anchor, compared directly (P x B pairs).

Time and memory O(P sqrt P), in a fixed number of tensor operations (no Python loop over
blocks).  All arithmetic is float64; scores are taken relative to the middle of their
range (smaller prefix sums, less rounding).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .step_sums import StepSums, smoothed_step


# Positions per label block: BLOCK_SCALE * sqrt(P) (see ``block_size``).
BLOCK_SCALE = 1.0


def block_size(num: int) -> int:
    """Positions per label block, about BLOCK_SCALE * sqrt(P): the table has P / B rows of
    P + 1 entries, the partial blocks P x B pairs."""
    return max(1, math.ceil(BLOCK_SCALE * math.sqrt(num)))


class SqrtLabelBlocks:
    """Two-key sums of the sorting term over label blocks of ``block`` positions.

    Args:
        step: the breakpoints of the P positives (``step.anchors``: their float64 scores).
        intervals: ``step.anchor_intervals``, the interval index of every positive.
        targets: float64 continuous labels y of the positives.
        block: positions per label block (default :func:`block_size`).
    """

    def __init__(self, step: StepSums, intervals: Tensor, targets: Tensor, block: int | None = None) -> None:
        num = targets.numel()
        self.delta = step.delta
        self.block = block_size(num) if block is None else int(block)
        if self.block < 1:
            raise ValueError(f"block must be >= 1, got {self.block}")
        self.num_blocks = blocks = -(-num // self.block)
        self.width = width = num + 1
        device = targets.device
        scores = step.anchors
        scores = scores - 0.5 * (scores.min() + scores.max())
        if self.delta > 0:
            # In units of the ramp: H(s_j - s_i) = clamp(u_j - u_i + 1/2, 0, 1), u = s / (2 delta).
            scores = scores / (2 * self.delta)
        self.scores = scores
        label_sorted, label_order = torch.sort(targets, stable=True)
        below = torch.searchsorted(label_sorted, targets)  # n_i = #{y_j < y_i}
        anchor_block = torch.div(below, self.block, rounding_mode="floor")  # b_i
        # Score ranks: positives sorted by interval index (a monotone function of the score).
        sorted_intervals, self.rank_order = torch.sort(intervals)
        # Ranks >= lo_i: on or above the ramp (k_j > ramp_start_i); >= mid_i: above (H = 1).
        lo = torch.searchsorted(sorted_intervals, step.ramp_start, right=True)
        mid = lo if self.delta == 0 else torch.searchsorted(sorted_intervals, step.ramp_end, right=True)
        self.lo, self.mid = lo, mid
        # Block of each positive (by its label position), listed in rank order.
        block_of = torch.empty_like(label_order).index_copy_(
            0, label_order, torch.arange(num, device=device).div_(self.block, rounding_mode="floor")
        )
        self.rank_block = block_of.index_select(0, self.rank_order)
        # Table rows read by anchor i: its whole blocks (row b_i) and every positive (last row).
        end = torch.full_like(lo, num)
        bounds = torch.stack((lo, mid, end) if self.delta > 0 else (mid, end))
        rows = torch.stack((torch.full_like(anchor_block, blocks), anchor_block)).mul_(width)
        self.query = (rows[None] + bounds[:, None]).flatten()
        # Difference-array rows of anchor k for the transpose (see item_sums).
        self.anchor_row = (blocks - anchor_block).mul_(width)
        # The partial block of anchor i: label positions b_i B + m for m < n_i - b_i B.
        start = anchor_block * self.block
        offsets = torch.arange(self.block, device=device)
        candidates = start[:, None] + offsets
        self.partners = label_order.index_select(0, candidates.clamp_(max=num - 1).flatten())
        partner_scores = scores.index_select(0, self.partners).view(num, self.block)
        if self.delta > 0:
            pairs = partner_scores.sub_((scores - 0.5)[:, None]).clamp_(0.0, 1.0)
        else:
            pairs = (partner_scores >= scores[:, None]).to(scores.dtype)
        self.pairs = pairs.mul_(offsets < (below - start)[:, None])  # H_ij, 0 outside the prefix

    def anchor_sums(self, weights: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(sum_j H_ij w_j, sum_j H_ij [y_j < y_i], sum_j H_ij [y_j < y_i] w_j)`` for every
        anchor i (first over all positives, then over the misranked ones)."""
        num, width, scores = self.scores.numel(), self.width, self.scores
        ramp = self.delta > 0
        ones = torch.ones_like(weights)
        columns = torch.stack((ones, weights, scores, weights * scores) if ramp else (ones, weights), dim=1)
        num_columns = columns.shape[1]
        # table[b, r] = column sums over the positives in blocks < b with rank < r.
        table = torch.zeros(self.num_blocks + 1, width, num_columns, dtype=scores.dtype, device=scores.device)
        table[self.rank_block + 1, torch.arange(1, width, device=scores.device)] = columns.index_select(0, self.rank_order)
        table = table.cumsum_(0).cumsum_(1).view(-1, num_columns)
        at = table.index_select(0, self.query).view(-1, 2, num, num_columns)
        sums = at[-1, :, :, :2] - at[-2, :, :, :2]  # above the ramp: H = 1
        if ramp:  # on the ramp: sum_j w_j (u_j - u_i + 1/2)
            on = at[1] - at[0]
            sums += on[..., 2:]
            sums -= (scores - 0.5)[:, None] * on[..., :2]
        partial = torch.stack((self.pairs.sum(1), (self.pairs * weights.index_select(0, self.partners).view_as(self.pairs)).sum(1)), dim=1)
        misranked = sums[1].add_(partial)
        return sums[0, :, 1], misranked[:, 0], misranked[:, 1]

    def item_sums(self, anchor_weights: Tensor) -> Tensor:
        """sum_k anchor_weights_k H(s_j - s_k) [y_j < y_k] for every positive j."""
        num, width, scores, w = self.scores.numel(), self.width, self.scores, anchor_weights
        ramp = self.delta > 0
        # Anchor k adds to the positives of blocks < b_k: row num_blocks - b_k of a difference
        # array over (row, rank), summed forward over rows, reaches block c at row
        # num_blocks - 1 - c.  Per rank the value is slope * u_j + intercept.
        if ramp:
            offset = w * (0.5 - scores)
            index = torch.cat((self.anchor_row + self.lo, self.anchor_row + self.mid))
            values = torch.stack((torch.cat((w, -w)), torch.cat((offset, w - offset))), dim=1)
        else:
            index, values = self.anchor_row + self.mid, w[:, None]
        grid = torch.zeros((self.num_blocks + 1) * width, values.shape[1], dtype=w.dtype, device=w.device)
        grid.index_add_(0, index, values)
        grid = grid.view(self.num_blocks + 1, width, -1).cumsum_(0).cumsum_(1).view(-1, values.shape[1])
        at = grid.index_select(0, (self.num_blocks - 1 - self.rank_block).mul_(width).add_(torch.arange(num, device=w.device)))
        by_rank = at[:, 1].addcmul_(at[:, 0], scores.index_select(0, self.rank_order)) if ramp else at[:, 0]
        out = torch.empty_like(scores).index_copy_(0, self.rank_order, by_rank)
        return out.index_add_(0, self.partners, (self.pairs * w[:, None]).flatten())
