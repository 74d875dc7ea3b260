"""What Co-DETR's collaborative auxiliary heads hand to the one-to-one (query) head.

Co-DETR (Zong et al., ICCV 2023, Sec. 3.2-3.3): every auxiliary head assigns its anchors /
proposals one-to-many; its positives become "customised positive queries" of an extra
decoder pass of the one-to-one head.  The official code (Sense-X/Co-DETR,
``projects/models/co_atss_head.py`` ``loss`` and ``co_roi_head.py`` ``forward_train``)
returns them from the auxiliary head's loss under the key ``pos_coords``; the project keeps
that key and this layout (:class:`PositiveCoords`), one entry per image:

* ``coords``: Tensor[N_i, 4], xyxy in input-image pixels, detached: all anchors of the
  image (ATSS) or all sampled proposals (R-CNN);
* ``labels``: LongTensor[N_i], the assigned class, ``num_classes`` for background;
* ``targets``: Tensor[N_i, 4], xyxy gt box of each positive (zeros for negatives);
* ``kind``: ``'atss'`` or ``'rcnn'``.

The official R-CNN tuple also carries the RoIs' mean-pooled features (used by its
transformer's ``with_coord_feat``); the project's contract leaves them out.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

POS_COORDS_KEY = "pos_coords"
KINDS = ("atss", "rcnn")


class PositiveCoords(NamedTuple):
    coords: list
    labels: list
    targets: list
    kind: str


def positive_coords(coords: list, labels: list, targets: list, kind: str) -> PositiveCoords:
    """A checked, detached :class:`PositiveCoords` (lists with one entry per image)."""
    if kind not in KINDS:
        raise ValueError(f"pos_coords kind must be one of {KINDS}, got {kind!r}")
    if not len(coords) == len(labels) == len(targets):
        raise ValueError(f"pos_coords: {len(coords)} coords, {len(labels)} labels, {len(targets)} targets (one per image)")
    for box, label, target in zip(coords, labels, targets):
        if box.shape != target.shape or box.dim() != 2 or box.shape[-1] != 4 or label.shape != box.shape[:1]:
            raise ValueError(
                f"pos_coords: coords {tuple(box.shape)}, labels {tuple(label.shape)}, targets {tuple(target.shape)} "
                "(expected N x 4, N, N x 4)"
            )
    return PositiveCoords(
        [c.detach() for c in coords], [x.detach().long() for x in labels], [t.detach() for t in targets], kind
    )


def scale_losses(losses: dict, weight: float) -> dict:
    """Every ``loss*`` term of ``losses`` (a tensor or a list of tensors) times ``weight``;
    logged statistics (keys without ``loss``) are left as they are."""
    if weight == 1.0:
        return losses
    scaled = {}
    for key, value in losses.items():
        if "loss" not in key:
            scaled[key] = value
        elif torch.is_tensor(value):
            scaled[key] = value * weight
        else:
            scaled[key] = [v * weight for v in value]
    return scaled


def check_loss_weight(weight, owner: str) -> float:
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
        raise ValueError(f"{owner}: loss_weight must be a positive number, got {weight!r}")
    return float(weight)


def num_positives(pos: PositiveCoords, num_classes: int) -> list[int]:
    """The number of positives (label < ``num_classes``) of each image."""
    return [int(((label >= 0) & (label < num_classes)).sum()) for label in pos.labels]


__all__ = ["POS_COORDS_KEY", "PositiveCoords", "check_loss_weight", "num_positives", "positive_coords", "scale_losses"]

