"""Input checks and the positive / negative split shared by every ranking loss."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class RankingProblem:
    """The scores of one loss call, split by label.

    ``targets > 0`` are positives (the value is kept: the continuous label of RS Loss),
    ``targets == 0`` negatives and ``targets < 0`` are ignored entirely.  Positives are
    gathered in float64 (there are few); everything else stays in place over all M flat
    entries, in the caller's dtype: the one pass over M (:mod:`~rankrepro.losses.passes`)
    places every entry and removes the positives afterwards with P-length operations.
    """

    logits: Tensor  # the caller's tensor, any shape, dtype and device
    flat: Tensor  # detached flat logits (M,), caller's dtype; finite (see split_scores)
    flat_targets: Tensor  # detached flat targets (M,)
    pos_index: Tensor  # flat indices of the positives, (P,)
    pos_logits: Tensor  # float64 (P,)
    pos_targets: Tensor  # float64 (P,)
    has_ignored: bool  # whether any target is < 0 (those entries must be masked out)
    max_target: float  # the largest target (read with the input checks: no extra host sync)

    @property
    def num_pos(self) -> int:
        return self.pos_index.numel()


def check_delta(delta: float) -> float:
    delta = float(delta)
    if not delta >= 0 or delta == float("inf"):
        raise ValueError(f"delta must be a finite number >= 0, got {delta}")
    return delta


def _summary(flat: Tensor, flat_targets: Tensor) -> tuple[float, float, bool]:
    """``(min, max)`` of the targets and whether the logits' sum is finite, read back in one
    host sync (a device-to-host copy of three numbers).

    A NaN or inf logit makes the sum non-finite (one reduction instead of an elementwise
    test; only a sum overflowing from huge finite values needs the elementwise test
    afterwards).  The sum is in the logits' dtype (a float64 sum of float32 logits converts
    them first: a copy of M values).  ``aminmax`` propagates NaN and shows an inf as the
    min or the max: the targets are finite iff both are.
    """
    total = flat.sum().to(torch.float64)
    if not flat_targets.numel():
        return 0.0, 0.0, math.isfinite(total.item())
    low, high = torch.aminmax(flat_targets if flat_targets.dtype != torch.bool else flat_targets.byte())
    total, low, high = torch.stack((total, low.to(torch.float64), high.to(torch.float64))).tolist()
    return low, high, math.isfinite(total)


def split_scores(logits: Tensor, targets: Tensor, loss_name: str) -> RankingProblem:
    """Validate ``logits`` / ``targets`` and split them into positives and the rest.

    Passes over M: one min/max of the targets (finiteness and whether any is ignored),
    one sum of the logits (finiteness), both read back in one host sync (:func:`_summary`),
    one ``nonzero`` for the positives (and one comparison before it where targets are
    ignored; see :func:`_positives`).  Non-finite logits at ignored entries are allowed;
    they are replaced by 0 in ``flat`` (a copy), so that later passes may place every entry.
    """
    if not isinstance(logits, Tensor) or not isinstance(targets, Tensor):
        raise TypeError(f"{loss_name}: logits and targets must be torch tensors")
    if logits.shape != targets.shape:
        raise ValueError(
            f"{loss_name}: logits and targets must have the same shape, "
            f"got {tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    if not logits.is_floating_point():
        raise TypeError(f"{loss_name}: logits must be a floating-point tensor, got {logits.dtype}")
    if targets.device != logits.device:
        raise ValueError(f"{loss_name}: logits on {logits.device} but targets on {targets.device}")
    flat = logits.detach().reshape(-1)
    flat_targets = targets.detach().reshape(-1)
    low, high, finite_sum = _summary(flat, flat_targets)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{loss_name}: targets contain NaN or inf")
    has_ignored = low < 0
    finite = None if finite_sum else torch.isfinite(flat)  # a non-finite sum: test each logit
    if finite is not None and not bool(finite.all()):
        if not (finite | (flat_targets < 0)).all():
            raise ValueError(
                f"{loss_name}: logits contain NaN or inf at non-ignored entries "
                "(ranking losses need finite scores; check the classifier for divergence)"
            )
        flat = flat.masked_fill(~finite, 0.0)  # only ignored entries change
    pos_index, pos_targets = _positives(flat_targets, has_ignored)
    return RankingProblem(
        logits=logits,
        flat=flat,
        flat_targets=flat_targets,
        pos_index=pos_index,
        pos_logits=flat.index_select(0, pos_index).to(torch.float64),
        pos_targets=pos_targets.to(torch.float64),
        has_ignored=has_ignored,
        max_target=high,
    )


_SAME_WIDTH_INT = {2: torch.int16, 4: torch.int32, 8: torch.int64}


def _positives(flat_targets: Tensor, has_ignored: bool) -> tuple[Tensor, Tensor]:
    """Flat indices and targets of the positives (targets > 0).

    Without ignored entries every non-zero target is a positive: ``nonzero`` needs no mask
    pass.  On the CPU, ``nonzero`` of float targets runs faster on their bits viewed as
    integers (1.0 against 1.4 ms at M = 1e6, 1 thread); non-zero bits are the non-zero
    values plus -0.0, which the P-length check afterwards drops.
    """
    if has_ignored:
        pos_index = torch.nonzero(flat_targets > 0).squeeze(1)
        return pos_index, flat_targets.index_select(0, pos_index)
    bits = flat_targets
    if flat_targets.device.type == "cpu" and flat_targets.is_floating_point():
        width = _SAME_WIDTH_INT.get(flat_targets.element_size())
        bits = flat_targets.view(width) if width is not None else flat_targets
    pos_index = torch.nonzero(bits).squeeze(1)
    pos_targets = flat_targets.index_select(0, pos_index)
    if bits is not flat_targets:
        keep = pos_targets != 0
        if not bool(keep.all()):  # some -0.0 (a negative)
            pos_index, pos_targets = pos_index[keep], pos_targets[keep]
    return pos_index, pos_targets
