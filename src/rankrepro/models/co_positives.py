"""What Co-DETR's collaborative auxiliary heads hand to the one-to-one (query) head.

Co-DETR (Zong et al., ICCV 2023, Sec. 3.2-3.3): every auxiliary head assigns its anchors /
proposals one-to-many; its positives become "customised positive queries" of an extra
decoder pass of the one-to-one head.  The official code (Sense-X/Co-DETR,
``projects/models/co_atss_head.py`` ``loss`` and ``co_roi_head.py`` ``forward_train``)
returns them from the auxiliary head's loss under the key ``pos_coords``; the project keeps
that key and this layout, one entry per image:

* ``coords``: Tensor[N_i, 4], xyxy in input-image pixels, detached: all anchors of the
  image (ATSS) or all sampled proposals (R-CNN);
* ``labels``: LongTensor[N_i], the assigned class, ``num_classes`` for background;
* ``targets``: Tensor[N_i, 4], xyxy gt box of each positive (zeros for negatives);
* ``feats`` (``'rcnn'`` only): Tensor[N_i, C], each proposal's RoI feature averaged over
  the RoI (the content of its query, as the official ``CoStandardRoIHead``; not detached,
  as there);
* ``kind``: ``'atss'`` or ``'rcnn'``.

The tuple is ``(coords, labels, targets, 'atss')`` or ``(coords, labels, targets, feats,
'rcnn')``, the forms the one-to-one head's ``check_pos_coords`` accepts.
"""
from __future__ import annotations

import torch

POS_COORDS_KEY = "pos_coords"
KINDS = ("atss", "rcnn")


def positive_coords(coords: list, labels: list, targets: list, kind: str, feats: list | None = None) -> tuple:
    """The checked ``pos_coords`` tuple (lists with one entry per image; boxes and labels
    detached, ``feats`` as given)."""
    if kind not in KINDS:
        raise ValueError(f"pos_coords kind must be one of {KINDS}, got {kind!r}")
    if (kind == "rcnn") != (feats is not None):
        raise ValueError("pos_coords: the RoI features are given for kind 'rcnn' and only for it")
    if feats is not None and [f.shape[0] for f in feats] != [c.shape[0] for c in coords]:
        raise ValueError(f"pos_coords: {[f.shape[0] for f in feats]} features for {[c.shape[0] for c in coords]} boxes")
    if not len(coords) == len(labels) == len(targets):
        raise ValueError(f"pos_coords: {len(coords)} coords, {len(labels)} labels, {len(targets)} targets (one per image)")
    for box, label, target in zip(coords, labels, targets):
        if box.shape != target.shape or box.dim() != 2 or box.shape[-1] != 4 or label.shape != box.shape[:1]:
            raise ValueError(
                f"pos_coords: coords {tuple(box.shape)}, labels {tuple(label.shape)}, targets {tuple(target.shape)} "
                "(expected N x 4, N, N x 4)"
            )
    boxes = ([c.detach() for c in coords], [x.detach().long() for x in labels], [t.detach() for t in targets])
    return boxes + (kind,) if feats is None else boxes + (list(feats), kind)


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


__all__ = ["POS_COORDS_KEY", "positive_coords", "scale_losses"]

