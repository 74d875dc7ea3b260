"""BRS-DETR's one-to-one (query) head: Co-Deformable-DETR's head trained by the Bucketed
Rank & Sort Loss.

The Bucketed RS paper (Yavuz et al., ECCV 2024) reports BRS-DETR (Co-DETR trained with BRS
Loss: R-50 49.3 -> 50.1 AP, Swin-T 51.7 -> 52.3, Swin-L 56.9 -> 57.2, 12 epochs) but its
repository (blisgard/BucketedRankingBasedLosses) publishes no BRS-DETR code or config.  This
head is the project's reconstruction; every choice is stated here and the open ones are
arguments:

* **Classification** (RS paper Sec. 4, Eq. 6-8; Bucketed paper: BRS Loss, same values as
  RS Loss): one ranking loss (``loss_rank``, default ``BucketedRankSortLoss`` with delta
  0.5: the default ``delta_RS`` of the Bucketed repository's loss, which none of its
  BRS configs changes) over all (query, class) logits of all images of the batch, once
  per decoder layer.  Positives: the Hungarian-matched
  queries (the matching itself is Co-DETR's, cost Focal + L1 + GIoU unless the config
  changes it), each with the IoU of its (detached) predicted box and its gt box as the
  label at (query, gt class) -- the continuous labels of RS Loss; every other (query,
  class) entry is a negative (no ignored queries: DETR gives every query label weight 1).
  The same applies to the two-stage encoder proposals (mmdet's ``DeformableDETRHead``
  matches them class-agnostically, gt label 0) and to the customised positive queries of
  the auxiliary heads (their positives = the auxiliary head's positives with IoU labels,
  their padding queries negatives).  The two terms are returned summed as the head's
  classification loss (L_RS = L_rank + L_sort, Eq. 6), so that DETR's per-layer loss
  names stay ``loss_cls`` / ``d{l}.loss_cls``.
* **Box regression** (RS paper App. B.1 Eq. A.32, Sec. 5.3): DETR's two box losses, L1 on
  normalised (cx, cy, w, h) (summed over the 4 coordinates) and GIoU on pixel boxes, per
  positive, each averaged with the positives' classification scores as weights
  (``bbox_weighting='score'``: max over classes of the sigmoid, detached; ``'none'``: plain
  mean) and value-balanced to the ranking loss (``task_balance='value'``: each box loss
  times L_RS / L_box, detached, so each has the value of L_RS -- the per-task balancing of
  the RS paper, as RS-Mask R-CNN balances its box and mask losses separately); the loss
  modules' own ``loss_weight`` then cancels.  A number for ``task_balance`` instead
  multiplies the (weighted-mean) box losses, and their ``loss_weight`` applies.
* ``loss_cls`` is unused (None in the configs): the Hungarian matcher keeps its own costs.

Not reconstructed: the Bucketed README says BRS-DETR "cuts training time by 6x, optimizing
the handling of positive examples and loss calculation of auxiliary heads"; what that
optimisation is, is not published (the README's BRS-DETR config links are empty and the
repository has no Co-DETR code), so the auxiliary heads here are Co-DETR's, with the
project's ranking losses.

Values are not all-reduced across GPUs (each GPU ranks its own images, as the project's
other ranking heads).
"""
from __future__ import annotations

import torch
from torch import Tensor

from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps

from .co_deformable_detr_head import CoDeformableDETRHead, image_factors, query_count
from .ranking_head import apply_ranking_loss, balanced, check_weighting, ranking_targets, score_weights, weighted_mean

BOX_WEIGHTINGS = ("score", "none")


def ranking_query_losses(
    loss_rank,
    loss_l1,
    loss_iou,
    cls_scores: Tensor,
    bbox_preds: Tensor,
    labels: Tensor,
    label_weights: Tensor,
    bbox_targets: Tensor,
    factors: Tensor,
    bbox_weighting: str = "score",
    task_balance="value",
) -> dict:
    """The ranking-based losses of one layer's queries with fixed targets (see the module).

    Args:
        loss_rank: a ranking loss module of :mod:`rankrepro.models.losses` (continuous
            labels for RS / BRS: the IoU; binary for AP-style losses).
        loss_l1, loss_iou: mmdet ``L1Loss`` / ``GIoULoss`` modules (used with
            ``reduction_override='none'``; either may be None to drop that loss).
        cls_scores: (M, C) logits of the M queries of the batch.
        bbox_preds, bbox_targets: (M, 4) normalised (cx, cy, w, h); targets meaningful at
            positives.
        labels: (M,) class of each query, ``C`` (background) for negatives.
        label_weights: (M,); queries with weight 0 are ignored by the ranking loss.
        factors: (M, 4) ``[w, h, w, h]`` of each query's image (pixels for the IoU loss).

    Returns:
        dict of the ranking loss's terms (``loss_rank``, ``loss_sort`` for RS / BRS) and
        ``loss_bbox`` (L1), ``loss_iou`` (GIoU), each a scalar.
    """
    check_weighting(bbox_weighting, task_balance, BOX_WEIGHTINGS)
    num_classes = cls_scores.shape[-1]
    if labels.shape != cls_scores.shape[:1] or bbox_preds.shape != bbox_targets.shape or bbox_preds.shape[0] != labels.shape[0]:
        raise ValueError(
            f"ranking_query_losses: {tuple(cls_scores.shape)} logits, {tuple(labels.shape)} labels, "
            f"{tuple(bbox_preds.shape)} boxes, {tuple(bbox_targets.shape)} targets"
        )
    cls_scores = cls_scores.float()
    pos = ((labels >= 0) & (labels < num_classes)).nonzero().squeeze(1)
    pred_px = bbox_cxcywh_to_xyxy(bbox_preds) * factors
    gt_px = bbox_cxcywh_to_xyxy(bbox_targets) * factors
    ious = bbox_overlaps(pred_px[pos].detach(), gt_px[pos], is_aligned=True) if pos.numel() else None
    quality = ious if (loss_rank.continuous_labels and ious is not None) else 1.0
    targets = ranking_targets(cls_scores, labels, label_weights, pos, quality)
    terms = dict(apply_ranking_loss(loss_rank, cls_scores, targets))
    cls_loss = sum(terms.values())
    zero = bbox_preds.sum() * 0
    if pos.numel() == 0:
        return {**terms, "loss_bbox": zero, "loss_iou": zero}
    weights = score_weights(cls_scores[pos]) if bbox_weighting == "score" else torch.ones_like(ious)
    box_losses = {}
    if loss_l1 is not None:
        l1 = loss_l1(bbox_preds[pos], bbox_targets[pos], reduction_override="none").sum(-1)
        box_losses["loss_bbox"] = balanced(weighted_mean(l1, weights), cls_loss, task_balance)
    if loss_iou is not None:
        giou = loss_iou(pred_px[pos], gt_px[pos], reduction_override="none")
        box_losses["loss_iou"] = balanced(weighted_mean(giou, weights), cls_loss, task_balance)
    return {**terms, "loss_bbox": box_losses.get("loss_bbox", zero), "loss_iou": box_losses.get("loss_iou", zero)}


@MODELS.register_module()
class RankBasedCoDeformableDETRHead(CoDeformableDETRHead):
    """Co-Deformable-DETR's one-to-one head whose every loss (matched queries of every
    decoder layer, two-stage encoder proposals, customised positive queries) is
    :func:`ranking_query_losses` (see the module).

    Args:
        loss_rank: the ranking loss (default ``BucketedRankSortLoss``, delta 0.5).
        bbox_weighting: ``'score'`` (default) or ``'none'``.
        task_balance: ``'value'`` (default) or a fixed number.
        loss_cls: unused by the losses; None builds a sigmoid ``FocalLoss`` only so that the
            head has ``num_classes`` sigmoid outputs and DETR's prior-probability bias
            initialisation (0.01), as the Focal Loss baseline.
        Other arguments: those of :class:`CoDeformableDETRHead` (``loss_bbox``: L1,
        ``loss_iou``: GIoU).
    """

    def __init__(
        self,
        *args,
        loss_rank: dict | None = None,
        bbox_weighting: str = "score",
        task_balance="value",
        loss_cls: dict | None = None,
        **kwargs,
    ) -> None:
        if loss_cls is None:
            loss_cls = dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)
        if not loss_cls.get("use_sigmoid", False):
            raise ValueError("RankBasedCoDeformableDETRHead ranks sigmoid logits: loss_cls must have use_sigmoid=True (or be None)")
        check_weighting(bbox_weighting, task_balance, BOX_WEIGHTINGS)
        super().__init__(*args, loss_cls=loss_cls, **kwargs)
        self.loss_rank = MODELS.build(dict(type="BucketedRankSortLoss", delta=0.5) if loss_rank is None else loss_rank)
        if self.loss_rank.needs_loc_errors:
            raise ValueError("RankBasedCoDeformableDETRHead: aLRP Loss (localisation errors) is not supported")
        self.bbox_weighting = bbox_weighting
        self.task_balance = task_balance

    def loss_by_targets(
        self, cls_scores, bbox_preds, labels, label_weights, bbox_targets, bbox_weights, num_total_pos, num_total_neg, batch_img_metas
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(L_rank + L_sort, balanced L1, balanced GIoU)`` of one layer's queries (the
        classification loss returned as one term under DETR's ``loss_cls`` names)."""
        _, num_queries = query_count(cls_scores, labels, bbox_targets)
        losses = ranking_query_losses(
            self.loss_rank,
            self.loss_bbox,
            self.loss_iou,
            cls_scores.reshape(-1, self.cls_out_channels),
            bbox_preds.reshape(-1, 4),
            labels,
            label_weights,
            bbox_targets,
            image_factors(batch_img_metas, num_queries, bbox_preds),
            self.bbox_weighting,
            self.task_balance,
        )
        loss_bbox, loss_iou = losses.pop("loss_bbox"), losses.pop("loss_iou")
        return sum(losses.values()), loss_bbox, loss_iou


__all__ = ["RankBasedCoDeformableDETRHead", "ranking_query_losses"]
