"""The mask head of RS-Mask R-CNN (RS paper Sec. 5.3 / Fig. 3b, Sec. 6.2): a score-weighted
Dice Loss, value-balanced to the classification (RS) loss.

Ports ``RankBasedFCNMaskHead`` of the RankSortLoss repository (mmdet 2.8,
``mmdet/models/roi_heads/mask_heads/rankbased_fcn_mask_head.py``; the Bucketed repository's
copy is the same) to mmdet 3.3's ``FCNMaskHead.loss_and_target``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmdet.registry import MODELS

from ...dense_heads.ranking_head import value_balanced, weighted_mean

DICE_EPS = 1e-5


def dice_coefficient(probabilities: Tensor, targets: Tensor, eps: float = DICE_EPS) -> Tensor:
    """Per-instance Dice coefficient 2 |p t| / (|p|^2 + |t|^2 + eps) of N masks (N x H x W),
    squares in the denominator and eps = 1e-5 as the official ``dice_coefficient``."""
    p = probabilities.reshape(probabilities.shape[0], -1)
    t = targets.reshape(targets.shape[0], -1).to(p.dtype)
    return 2 * (p * t).sum(dim=1) / ((p * p).sum(dim=1) + (t * t).sum(dim=1) + eps)


@MODELS.register_module()
class RankBasedFCNMaskHead(FCNMaskHead):
    """FCN mask head trained by 1 - Dice of the sigmoid mask of the gt class (RS paper Fig. 3b:
    Dice Loss for its bounded range and holistic evaluation, like GIoU), averaged over the
    positives with their classification scores as weights (score-based weighting, RS paper
    App. B.1 Eq. A.32) and scaled to the value of the box head's classification loss,
    lambda = L_RS / L_mask every iteration (RS paper Sec. 5.3).

    The configured ``loss_mask`` is not used (as in the official head, which also keeps
    ``FCNMaskHead``'s cross-entropy module unused).  Test time is ``FCNMaskHead``'s.
    """

    def loss_and_target(
        self,
        mask_preds,
        sampling_results,
        batch_gt_instances,
        rcnn_train_cfg,
        pos_score_weights=None,
        cls_loss_value=None,
    ) -> dict:
        """``dict(loss_mask=dict(loss_mask=...), mask_targets=...)``.

        ``pos_score_weights`` (P,): the positives' score weights in the order of the
        positives of ``sampling_results`` (from ``RankBasedShared2FCBBoxHead``);
        ``cls_loss_value``: the classification loss value the mask loss is balanced to.
        """
        if pos_score_weights is None or cls_loss_value is None:
            raise ValueError(
                "RankBasedFCNMaskHead needs the box head's pos_score_weights and cls_loss_value: "
                "use it with RankBasedStandardRoIHead or RankBasedCascadeRoIHead"
            )
        mask_targets = self.get_targets(sampling_results, batch_gt_instances, rcnn_train_cfg)
        labels = torch.cat([res.pos_gt_labels for res in sampling_results])
        loss = self.rank_based_loss(mask_preds, mask_targets, labels, pos_score_weights, cls_loss_value)
        return dict(loss_mask=dict(loss_mask=loss), mask_targets=mask_targets)

    def rank_based_loss(
        self, mask_preds: Tensor, mask_targets: Tensor, labels: Tensor, weights: Tensor, cls_loss_value: Tensor
    ) -> Tensor:
        """Score-weighted mean of 1 - Dice over the positives, value-balanced to
        ``cls_loss_value``.  No positives: 0, connected to the graph."""
        if mask_preds.size(0) == 0:
            return mask_preds.sum() * 0
        if weights.numel() != mask_preds.size(0) or mask_targets.size(0) != mask_preds.size(0):
            raise ValueError(
                f"{mask_preds.size(0)} mask predictions, {mask_targets.size(0)} mask targets and "
                f"{weights.numel()} score weights: one of each per positive is needed"
            )
        channels = torch.zeros_like(labels) if self.class_agnostic else labels
        rows = torch.arange(mask_preds.size(0), device=mask_preds.device)
        probabilities = mask_preds[rows, channels].sigmoid()
        loss = weighted_mean(1 - dice_coefficient(probabilities, mask_targets), weights.to(probabilities.dtype))
        return value_balanced(loss, cls_loss_value)


__all__ = ["RankBasedFCNMaskHead", "dice_coefficient"]
