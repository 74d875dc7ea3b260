"""RetinaNet trained with a ranking-based loss: aLRP Loss RetinaNet and AP Loss RetinaNet.

After the official ``aLRPLossRetinaHead`` / ``APLossRetinaHead`` of kemaloksuz/aLRPLoss
(mmdet 2.x) and its configs ``configs/alrp_loss/*retinanet*``, re-written for mmdet 3.3.

The RetinaNet head itself is unchanged (4+4 stacked convs, sigmoid classifier with the
0.01 prior bias).  Training (aLRP paper, Oksuz et al., NeurIPS 2020):

* every (anchor, class) logit of the whole batch on this GPU takes part in one ranking
  problem: the assigned (anchor, gt class) pairs are the positives (target 1), every other
  logit of a non-ignored anchor is a negative (0), all logits of an ignored anchor (IoU in
  [0.4, 0.5) under the MaxIoUAssigner) are left out (-1);
* aLRP Loss: each positive's localisation error is
  E_loc(i) = ((1 - GIoU(i)) / 2) / (1 - tau) with tau = 0.5, i.e. simply the GIoU Loss
  1 - GIoU of its decoded box (the official code relies on this cancellation too);
  the classification component L_cls = 1 - mean_i rank+(i) / rank(i) with the
  localisation errors of the positives ranked above i entering its error-driven update
  (aLRP paper Eq. 8-11, :func:`rankrepro.losses.alrp_loss`); the localisation component
  L_loc = mean_i (E_loc(i) + sum_{k in P, k above i} E_loc(k)) / rank(i) (positives
  sorted by score, ranks detached) is differentiable w.r.t. the boxes only and is
  multiplied by the self-balancing weight (Sec. 4.3): initially 50, then
  (mean L_cls + mean L_loc) / mean L_loc over the previous epoch
  (:class:`~rankrepro.models.self_balancing.SelfBalancedLocalisation`, period set by
  ``ALRPSelfBalancingHook``).  Losses: ``loss_cls`` (L_cls), ``loss_bbox`` (w_SB L_loc).
* AP Loss (AP-Loss RetinaNet, Chen et al.): the classifier is trained by AP Loss
  (``loss_ap``), the box branch by the head's ``loss_bbox`` on the positives; the
  official uses Smooth L1 (beta 1.0, weight 1.0) on the anchor-relative deltas encoded
  with stds (0.1, 0.1, 0.2, 0.2), averaged over the 4 x #positive coordinates, with no
  further task weight.  ``loss_bbox`` is used as configured: on the deltas, or on the
  decoded boxes when ``reg_decoded_bbox=True`` (IoU-type losses), mean reduction.
* RS / BRS / BAP Loss (:mod:`rankrepro.models.losses`) are accepted as well (no official
  RetinaNet recipe): RS/BRS take the IoU of each positive's (detached) decoded box with
  its ground truth as target; the box loss is as for AP Loss.

Differences from the official code:

* mmdet 3.3 instead of the official mmdet 2.x fork; the loss functions are the project's
  (:mod:`rankrepro.losses`), exact and vectorised instead of the official per-positive
  loops: same values and updates up to float rounding and tie-breaking;
* boxes are decoded with mmdet's ``DeltaXYWHBBoxCoder.decode`` relative to the anchors;
  the official decodes the deltas of both prediction and target relative to a unit box at
  the origin.  IoU and GIoU are invariant to the per-axis scaling and translation between
  the two frames, and both clamp dw, dh at |log(16/1000)|, so the losses are the same;
* the self-balancing period is one epoch of *this* run (``len(train_dataloader)``); the
  mmdet port's heads hard-code 3665 iterations (one COCO epoch at 32 images per batch, also
  in its 16-image scale-800 configs), the AP-Loss-based code behind the README numbers
  updates the weight at the end of every epoch (``train.py``);
* the self-balancing state (weight, running sums, counter) is saved in checkpoints, so a
  resumed run continues its period; the official kept it in plain attributes (a resumed
  run restarted from 50);
* with ``train_cfg.assigner = ATSSAssigner`` (the official "aLRP Loss + ATSS" RetinaNet)
  the per-level anchor counts are passed to the assigner (the official's ``iou_assign``
  switch); any other mmdet assigner is used as is;
* a batch without positives gives zero losses still connected to the graph (the official
  returned ``0 * logits`` tensors, which mmdet 2.x averaged to 0) and does not advance
  the self-balancing counter (as the official).

Test time (``test_candidates``, :class:`~.ranking_head.CandidateSelectionMixin`): the
numbers that ``configs/retinanet`` feeds (the aLRP README before the mmdet port) come from
the AP-Loss-based code, whose ``lib/util/coco_eval.py`` keeps, per level, the 1000 best
(anchor, class) pairs of the sigmoid scores above 0.01 (above 0 on the last level), then
runs class-wise NMS (IoU 0.5) and keeps the first 100: the ``'pairs'`` selection with
``score_thr=0.01``, which those configs use.  The mmdet port (mmdet 2.1.0)
inherits ``AnchorHead._get_bboxes_single``: the 1000 best anchors per level by max class
score, all their classes above 0.05 into NMS, i.e. ``'anchors'`` with ``score_thr=0.05``.

The logits are flattened level-major (all images of level 3, then level 4, ...) as in the
official code; only the tie-breaking of equal scores could depend on that order.
"""
from __future__ import annotations

import torch

from mmdet.models.dense_heads import RetinaHead
from mmdet.models.task_modules.assigners import ATSSAssigner
from mmdet.models.task_modules.prior_generators import anchor_inside_flags
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps, get_box_tensor

from ..self_balancing import SelfBalancedLocalisation
from .ranking_head import CandidateSelectionMixin, apply_ranking_loss, flat_anchor_targets, ranking_targets


class _LevelAwareAssigner:
    """Gives an ``ATSSAssigner`` the per-level prior counts that ``AnchorHead`` does not pass."""

    def __init__(self, assigner: ATSSAssigner) -> None:
        self.assigner = assigner
        self.num_level_priors: list[int] | None = None

    def assign(self, pred_instances, gt_instances, gt_instances_ignore=None):
        if self.num_level_priors is None or sum(self.num_level_priors) != len(pred_instances.priors):
            raise RuntimeError("ATSSAssigner in RankingRetinaHead: per-level anchor counts not set for this image")
        return self.assigner.assign(pred_instances, self.num_level_priors, gt_instances, gt_instances_ignore)


@MODELS.register_module()
class RankingRetinaHead(CandidateSelectionMixin, SelfBalancedLocalisation, RetinaHead):
    """RetinaNet head whose classifier is trained by a ranking loss (aLRP, AP, RS, BRS, BAP).

    Args:
        loss_rank: a loss of :mod:`rankrepro.models.losses`: ``aLRPLoss`` (the box loss
            is then aLRP's localisation component, ``loss_bbox`` must be an IoU-type loss
            giving per-box errors, e.g. ``GIoULoss``), ``APLoss``, ``BucketedAPLoss``,
            ``RankSortLoss`` or ``BucketedRankSortLoss``.
        sb_initial: initial aLRP self-balancing weight (50 as the official); ignored
            for the other losses.
        test_candidates: ``'pairs'`` (the default: mmdet 3.x's and the AP-Loss-based
            code's (anchor, class) pairs) or ``'anchors'`` (the mmdet 2.x port's anchors).
        All other arguments as ``RetinaHead``.  ``loss_cls`` is not used for training;
        it only has to select sigmoid scores (``use_sigmoid=True``, the default).
    """

    def __init__(self, *args, loss_rank: dict, sb_initial: float = 50.0, test_candidates: str = "pairs", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.init_test_candidates(test_candidates)
        if not self.use_sigmoid_cls:
            raise ValueError("RankingRetinaHead ranks sigmoid logits: loss_cls must have use_sigmoid=True")
        self.loss_rank = MODELS.build(loss_rank)
        self.init_self_balancing(sb_initial if self.loss_rank.needs_loc_errors else None)
        if self.train_cfg and isinstance(self.assigner, ATSSAssigner):
            self.assigner = _LevelAwareAssigner(self.assigner)
        self._num_level_anchors: list[int] | None = None

    # ----------------------------------------------------------------- targets
    def get_targets(self, anchor_list, valid_flag_list, *args, **kwargs) -> tuple:
        self._num_level_anchors = [anchors.size(0) for anchors in anchor_list[0]]
        return super().get_targets(anchor_list, valid_flag_list, *args, **kwargs)

    def _get_targets_single(self, flat_anchors, valid_flags, gt_instances, img_meta, gt_instances_ignore=None, unmap_outputs=True):
        if isinstance(self.assigner, _LevelAwareAssigner):
            inside = anchor_inside_flags(flat_anchors, valid_flags, img_meta["img_shape"][:2], self.train_cfg["allowed_border"])
            self.assigner.num_level_priors = [int(f.sum()) for f in torch.split(inside, self._num_level_anchors)]
        return super()._get_targets_single(
            flat_anchors, valid_flags, gt_instances, img_meta, gt_instances_ignore, unmap_outputs=unmap_outputs
        )

    # -------------------------------------------------------------------- loss
    def loss_by_feat(self, cls_scores, bbox_preds, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore=None) -> dict:
        # one ranking problem over all levels and images, level-major as the official code
        return self.ranking_losses(
            *flat_anchor_targets(self, cls_scores, bbox_preds, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore)
        )

    def ranking_losses(self, logits, labels, label_weights, anchors, deltas, bbox_targets) -> dict:
        """Ranking loss on ``logits`` (M x C) and the box loss of the positives (M anchors)."""
        pos = ((labels >= 0) & (labels < self.num_classes)).nonzero().squeeze(1)
        if pos.numel() == 0:
            targets = ranking_targets(logits, labels, label_weights, pos, 1.0)
            terms = apply_ranking_loss(self.loss_rank, logits, targets)
            terms.pop("loss_bbox", None)
            return {**terms, "loss_bbox": deltas.sum() * 0}
        pos_anchors = anchors[pos]
        pred_boxes = get_box_tensor(self.bbox_coder.decode(pos_anchors, deltas[pos]))
        if self.reg_decoded_bbox:
            gt_boxes = bbox_targets[pos]
        else:  # the official decodes the encoded target deltas as well
            gt_boxes = get_box_tensor(self.bbox_coder.decode(pos_anchors, bbox_targets[pos]))
        if self.loss_rank.continuous_labels:
            quality = bbox_overlaps(pred_boxes.detach(), gt_boxes, is_aligned=True)
        else:
            quality = 1.0
        targets = ranking_targets(logits, labels, label_weights, pos, quality)
        if self.sb_initial is not None:  # aLRP Loss
            loc_errors = self.loss_bbox(pred_boxes, gt_boxes, reduction_override="none")
            if loc_errors.shape != pos.shape:
                raise ValueError("aLRP Loss needs one localisation error per positive: use an IoU-type loss_bbox (GIoULoss)")
            terms = apply_ranking_loss(self.loss_rank, logits, targets, loc_errors)
            return {**terms, "loss_bbox": self.self_balance(terms["loss_cls"], terms.pop("loss_bbox"))}
        terms = apply_ranking_loss(self.loss_rank, logits, targets)
        if self.reg_decoded_bbox:
            loss_bbox = self.loss_bbox(pred_boxes, gt_boxes, reduction_override="mean")
        else:
            loss_bbox = self.loss_bbox(deltas[pos], bbox_targets[pos], reduction_override="mean")
        return {**terms, "loss_bbox": loss_bbox}
