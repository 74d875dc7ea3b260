"""The RPN of RS-R-CNN: objectness trained by a ranking-based loss on all anchors.

After the official ``RankBasedRPNHead`` of kemaloksuz/RankSortLoss (mmdet 2.8,
``mmdet/models/dense_heads/rank_based_rpn_head.py``, ``rank_loss_type='RankSort'`` or
``'aLRP'``) and of blisgard/BucketedRankingBasedLosses (mmdet 2.25.3, same file, any
loss built from ``rank_loss_type``), re-written for mmdet 3.3 as a subclass of
``RPNHead``.  RS paper (Oksuz et al., ICCV 2021) Sec. 5.3 / Fig. 3, Sec. 6.1.1 and
App. C.2:

* the 1-way sigmoid objectness classifier is kept (App. C, footnote 1); every anchor of
  every image of the batch (on this GPU) is one entry of one ranking problem, in the
  official's level-major order.  "No sampler" is ``train_cfg.rpn.sampler =
  dict(type='PseudoSampler')``: every anchor with IoU >= 0.7 (or the best anchor of a gt,
  IoU >= 0.3) is a positive, every anchor with IoU < 0.3 a negative, the anchors in
  between and the anchors outside the valid (padded) feature map are ignored (target -1).
  With mmdet's ``RandomSampler`` the anchors it does not sample get label weight 0 and
  are ignored too (RS paper Table 10 / A.17, "RPN Random");
* RS Loss (delta 0.5, ``loss_rank=dict(type='RankSortLoss')``; Eq. 6-8) on the
  objectness logits, each positive's target the IoU of its (detached) decoded box with
  its gt box (Sec. 4, continuous labels).  ``BucketedRankSortLoss`` (ECCV 2024) works
  through the same path; any loss of :mod:`rankrepro.models.losses` with binary labels
  (AP, BAP) gets targets 1 (no paper recipe);
* box regression: GIoU Loss on the decoded boxes of the positives, weighted by their
  detached objectness scores (score-based weighting, RS paper Eq. A.32:
  sum_i s_i L_GIoU(i) / sum_i s_i) and value-balanced to the RPN's classification loss,
  lambda = (L_rank + L_sort) / L_GIoU, both detached (Sec. 5.3, Fig. 3c);
* every loss of the RPN times ``head_weight`` = 0.2 ("with the single exception of RPN
  where we multiply the losses of RPN by 0.20 following aLRP Loss", Sec. 5.3).

Losses: ``loss_rpn_rank``, ``loss_rpn_sort``, ``loss_rpn_bbox`` (the loss module's terms
renamed ``loss_<x>`` -> ``loss_rpn_<x>``; aLRP: ``loss_rpn_cls``, ``loss_rpn_bbox``).

aLRP Loss (``loss_rank=dict(type='aLRPLoss')``, the official ``rank_loss_type='aLRP'``):
the localisation error of a positive is aLRP paper's E_loc(i) = (1 - IoU(i)) / (1 - tau)
in its GIoU form, ((1 - GIoU(i)) / 2) / (1 - tau) with tau = :data:`ALRP_TAU` = 0.7, the
RPN assigner's positive threshold (the official passes ``loss_bbox.detach() / (2 * (1 -
0.7))`` as ``e_loc``).  L_cls and L_loc (aLRP paper Eq. 8-10, :func:`rankrepro.losses.
alrp_loss`) both use this E_loc, as the paper defines them; L_loc is multiplied by the
self-balancing weight (initially ``sb_initial`` = 50, then (mean L_cls + mean L_loc) /
mean L_loc over the previous epoch, aLRP paper Sec. 4.3,
:class:`~rankrepro.models.self_balancing.SelfBalancedLocalisation`; the period is set by
``ALRPSelfBalancingHook``), then everything by ``head_weight``.

Differences from the official code (on purpose):

* mmdet 3.3 and the project's exact, vectorised losses instead of the official
  per-positive loops (same values and updates up to float rounding and tie-breaking).
* Decoding: the official decodes the predicted deltas *and* the encoded targets relative
  to a unit box at the origin (its own ``delta2bbox``, stds hard-coded to (0.1, 0.1, 0.2,
  0.2), the values of its config's coder, and ``wh_ratio_clip=16/1000``); here the
  predictions are decoded by the head's ``bbox_coder`` relative to their anchors and the
  targets are the gt boxes themselves (``reg_decoded_bbox=True``).  The two frames differ
  by a per-axis scaling (anchor width, height) and a translation (anchor centre), which
  leave IoU and GIoU unchanged; both clamp dw, dh (after the stds) at |log(16/1000)|
  (mmdet's ``DeltaXYWHBBoxCoder`` default ``wh_ratio_clip``), so the predictions match
  exactly.  The official also clamps the re-decoded *target*, which would only change a
  gt box more than 62.5 times wider or taller than its anchor: impossible for a positive
  (IoU >= 0.3 with its anchor bounds the ratio by 1 / 0.3).  Tested to 1e-6.
* aLRP: the official's regression component is computed from the unnormalised
  1 - GIoU (``loss_bbox``) while its classification component gets E_loc = (1 - GIoU) /
  0.6; here both use E_loc (the paper's definition, one E_loc for both components), so
  L_loc is 1 / 0.6 times the official's before self-balancing.  After the first period
  the self-balancing weight absorbs most of the scale (w L_loc = mean L_cls + mean
  L_loc); during the first period (w = 50) the RPN's box loss is 1.67x the official's.
* A batch without positives: the official returns the constants 1 (``sum() * 0 + 1``,
  zero gradient, times ``head_weight``); here, as the project's one-stage heads, the
  ranking loss's own no-positive value (0 for RS / BRS / aLRP, connected to the graph,
  zero gradient) and a zero box loss; the aLRP self-balancing counter does not advance
  (as the official).
* The official divides by ``loss_bbox.item()`` for the value balancing (inf / NaN at a
  perfect box loss of 0); here a zero box loss is left as is
  (:func:`~.ranking_head.value_balanced`).
* The self-balancing period is one epoch of *this* run; the official hard-codes 7330
  iterations (one COCO epoch at 16 images per batch).  Its state is saved in checkpoints.

Imbalance statistics (RS paper Table 10, Table A.17): the loss dict also holds the
detached scalars ``neg_per_pos_rpn_instances`` = (negative anchors) / (positive anchors)
of the ranking problem, counting only anchors with label weight > 0, and
``neg_per_pos_rpn_tasks`` (the same for the 1-way RPN: one task per anchor).  They are
computed over the images this GPU ranks together ("the actual imbalance rate in the input
of RS Loss", Table A.17); mmengine logs them (their keys do not contain "loss", so they
are not summed into the training loss) and the workflow averages them over the first
epoch.  A batch without positives logs neither (not inf).

Test time is ``RPNHead``'s, unchanged.  The official overrides ``_get_bboxes_single`` with
mmdet 2.8's own ``RPNHead._get_bboxes_single`` (identical code; the Bucketed repository
keeps the 2.8 copy under mmdet 2.25.3, where ``rescale`` is then ignored, unused by
two-stage detectors).  Against mmdet 3.3's ``RPNHead._predict_by_feat_single`` the
selection is the same: per level the ``nms_pre`` best anchors by sigmoid score, decoding
clipped to the image, NMS per level (IoU 0.7), the best ``max_per_img`` (2.8:
``nms_post``, both 1000).  The one difference: mmdet 2.8 filters small boxes only when
``min_bbox_size > 0`` (keeping w, h >= min_bbox_size), mmdet 3.3 whenever
``min_bbox_size >= 0`` (keeping w, h > min_bbox_size), so with the configs' 0 mmdet 3.3
also drops proposals of zero width or height (clipped at the image border), which carry
no RoI feature anyway.
"""
from __future__ import annotations

import torch
from torch import Tensor

from mmdet.models.dense_heads import RPNHead
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps, get_box_tensor

from ..self_balancing import SelfBalancedLocalisation
from .ranking_head import (
    apply_ranking_loss,
    check_positive_weight,
    flat_anchor_targets,
    ranking_targets,
    score_weights,
    value_balanced,
    weighted_mean,
)

#: aLRP's tau for the RPN: E_loc = ((1 - GIoU) / 2) / (1 - tau), tau = the RPN assigner's
#: positive IoU threshold (hard-coded 0.7 in the official aLRP branch, as here).
ALRP_TAU = 0.7

#: logged imbalance statistics (not losses: their keys must not contain "loss")
NEG_PER_POS_KEYS = ("neg_per_pos_rpn_instances", "neg_per_pos_rpn_tasks")


@MODELS.register_module()
class RankBasedRPNHead(SelfBalancedLocalisation, RPNHead):
    """RPN head trained with a ranking-based loss (RS-R-CNN's RPN; see the module docstring).

    Args:
        in_channels: input channels (as ``RPNHead``).
        loss_rank: a loss of :mod:`rankrepro.models.losses` (default RS Loss, delta 0.5):
            ``RankSortLoss``, ``BucketedRankSortLoss``, ``aLRPLoss`` (and ``APLoss``,
            ``BucketedAPLoss``).
        head_weight: multiplies every loss of the RPN (0.2, RS paper Sec. 5.3).
        sb_initial: initial aLRP self-balancing weight (50 as the official); only used
            with ``aLRPLoss``.
        loss_bbox: a per-box loss on decoded boxes, default ``GIoULoss`` with
            ``reduction='none'`` (the official); an L1-type loss is a ValueError.
        reg_decoded_bbox: must be True (the default): the box loss compares decoded boxes.
        All other arguments as ``RPNHead`` (``anchor_generator``, ``bbox_coder``, ...);
        ``loss_cls`` is not used for training, it only has to select the 1-way sigmoid
        classifier (``use_sigmoid=True``).
    """

    def __init__(
        self,
        in_channels: int,
        loss_rank: dict | None = None,
        head_weight: float = 0.2,
        sb_initial: float = 50.0,
        loss_bbox: dict | None = None,
        reg_decoded_bbox: bool = True,
        **kwargs,
    ) -> None:
        if not reg_decoded_bbox:
            raise ValueError("RankBasedRPNHead regresses decoded boxes (GIoU): reg_decoded_bbox must be True")
        head_weight = check_positive_weight(head_weight, "head_weight", "RankBasedRPNHead")
        if loss_bbox is None:
            loss_bbox = dict(type="GIoULoss", reduction="none")
        super().__init__(in_channels, loss_bbox=loss_bbox, reg_decoded_bbox=True, **kwargs)
        if not self.use_sigmoid_cls:
            raise ValueError("RankBasedRPNHead ranks the 1-way sigmoid objectness: loss_cls must have use_sigmoid=True")
        self.loss_rank = MODELS.build(loss_rank if loss_rank is not None else dict(type="RankSortLoss", delta=0.5))
        if not all(hasattr(self.loss_rank, a) for a in ("continuous_labels", "needs_loc_errors")):
            raise ValueError(
                f"RankBasedRPNHead: loss_rank must be a ranking loss of rankrepro.models.losses "
                f"(RankSortLoss, BucketedRankSortLoss, aLRPLoss, ...), got {type(self.loss_rank).__name__}"
            )
        self.head_weight = head_weight
        alrp = self.loss_rank.needs_loc_errors
        if alrp and not (isinstance(sb_initial, (int, float)) and sb_initial > 0):
            raise ValueError(f"RankBasedRPNHead: sb_initial must be a positive number, got {sb_initial!r}")
        self.init_self_balancing(float(sb_initial) if alrp else None)
        self._check_box_loss()

    def _check_box_loss(self) -> None:
        box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
        value = self.loss_bbox(box, box + 1.0, reduction_override="none")
        if value.shape != (1,):
            raise ValueError(
                "RankBasedRPNHead: loss_bbox must give one loss per decoded box "
                f"(e.g. dict(type='GIoULoss', reduction='none')), {type(self.loss_bbox).__name__} gives "
                f"shape {tuple(value.shape)} per box"
            )

    # -------------------------------------------------------------------- loss
    def loss_by_feat(self, cls_scores, bbox_preds, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore=None) -> dict:
        """The RPN's losses (times ``head_weight``) and its imbalance statistics."""
        logits, labels, label_weights, anchors, deltas, gt_boxes = flat_anchor_targets(
            self, cls_scores, bbox_preds, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore
        )
        losses = self.rpn_losses(logits, labels, label_weights, anchors, deltas, gt_boxes)
        losses.update(self.imbalance(labels, label_weights))
        return losses

    def rpn_losses(self, logits: Tensor, labels: Tensor, label_weights: Tensor, anchors: Tensor, deltas: Tensor, gt_boxes: Tensor) -> dict:
        """Ranking and box losses of the flattened anchors (M x 1 logits, M x 4 deltas,
        anchors and assigned gt boxes), times ``head_weight``."""
        pos = ((labels >= 0) & (labels < self.num_classes)).nonzero().squeeze(1)
        if pos.numel() == 0:
            terms = apply_ranking_loss(self.loss_rank, logits, ranking_targets(logits, labels, label_weights, pos, 1.0))
            terms.pop("loss_bbox", None)
            terms["loss_bbox"] = deltas.sum() * 0
            return self._rpn_names(terms)
        pred_boxes = get_box_tensor(self.bbox_coder.decode(anchors[pos], deltas[pos]))
        pos_gt = gt_boxes[pos]
        box_losses = self.loss_bbox(pred_boxes, pos_gt, reduction_override="none")
        if self.loss_rank.continuous_labels:  # RS / BRS: IoU of the detached prediction
            quality = bbox_overlaps(pred_boxes.detach(), pos_gt, is_aligned=True)
        else:
            quality = 1.0
        targets = ranking_targets(logits, labels, label_weights, pos, quality)
        if self.sb_initial is not None:  # aLRP: E_loc in both components, L_loc self-balanced
            loc_errors = box_losses / (2.0 * (1.0 - ALRP_TAU))
            terms = apply_ranking_loss(self.loss_rank, logits, targets, loc_errors)
            terms["loss_bbox"] = self.self_balance(terms["loss_cls"], terms["loss_bbox"])
            return self._rpn_names(terms)
        terms = apply_ranking_loss(self.loss_rank, logits, targets)
        loss_bbox = weighted_mean(box_losses, score_weights(logits[pos]))
        terms["loss_bbox"] = value_balanced(loss_bbox, sum(terms.values()))
        return self._rpn_names(terms)

    def _rpn_names(self, terms: dict) -> dict:
        return {key.replace("loss_", "loss_rpn_", 1): value * self.head_weight for key, value in terms.items()}

    def imbalance(self, labels: Tensor, label_weights: Tensor) -> dict:
        """Negative anchors per positive anchor among the anchors with label weight > 0
        (RS paper Table A.17's instance rate; the task rate is the same for the 1-way
        RPN).  Empty without positives."""
        counted = label_weights > 0
        is_pos = (labels >= 0) & (labels < self.num_classes)
        num_pos = (counted & is_pos).sum()
        if num_pos.item() == 0:
            return {}
        ratio = ((counted & ~is_pos).sum().double() / num_pos.double()).float().detach()
        return {key: ratio.clone() for key in NEG_PER_POS_KEYS}
