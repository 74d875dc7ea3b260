"""ATSS trained with a ranking-based loss: RS-ATSS and its AP / aLRP / BAP / BRS variants.

RS paper Sec. 5.2, Eq. 14 and Appendix B.  Where each recipe comes from:

* RS: the ``RankBasedATSSHead`` of kemaloksuz/RankSortLoss (mmdet 2.8;
  ``configs/ranksort_loss/ranksort_atss_r50_fpn_1x_coco.py``); BRS: the same head of
  blisgard/BucketedRankingBasedLosses (mmdet 2.25.3) with ``rank_loss_type='BucketedRankSort'``;
* AP / BAP: the ``RankBasedATSSHead`` of BucketedRankingBasedLosses
  (``mmdet/models/dense_heads/rank_based_atss_head.py``, configs
  ``configs/bucketed_ranking_losses/{ap,bucketed_ap}_loss_atss_r50_fpn_1x_coco.py``).  The
  RankSortLoss repository's head names AP and aLRP but cannot train them: its ``__init__``
  for aLRP refers to an undefined ``ranking_weighting`` and its ``loss`` always unpacks two
  outputs (ranking, sorting) of the loss;
* aLRP: no official ATSS head trains it, so aLRP-ATSS uses aLRP Loss as the aLRP repository's
  mmdet heads do (GIoU Losses as localisation errors, self-balancing from 50), with the
  learning rate 0.005 of the RS paper's aLRP-ATSS (Sec. 6.1.2; ``configs/atss/alrp_*``).

The head:

* the centerness head is removed (kept, for the "Aux. head" rows of Table 2, with
  ``aux_head=True``);
* the classifier is trained by the ranking loss on all (anchor, class) logits of the
  batch at once: positives are the assigned (anchor, gt class) pairs, everything else of
  a non-ignored anchor is negative; for RS / BRS the positive's target is the IoU of its
  (detached) predicted box with its ground truth (a positive whose predicted box does not
  overlap its ground truth at all thus has target 0, i.e. counts as a negative, as in the
  official code); AP / BAP / aLRP use binary targets;
* box regression: GIoU Loss per positive, weighted by the positive's classification
  score (max over classes of the sigmoid, detached; Eq. A.32 "score-based"), normalised
  by the sum of weights;
* task balancing (``task_balance``): RS / BRS multiply the box loss by lambda = L_cls /
  L_box, both detached, every iteration (value-based); the official AP / BAP head instead
  multiplies it by a fixed 2.0 (``loc_weight``) and passes delta 1.0 to the loss, whatever
  its own ``delta`` (0.5): the AP / BAP configs set ``delta=1.0, task_balance=2.0``;
* aLRP Loss instead: the localisation errors of the positives (their GIoU losses) enter
  the aLRP classification error, the box loss is aLRP's localisation component and is
  multiplied by the self-balancing weight (no score weighting, no value balancing).

For the baselines of the RS paper without the auxiliary head (Table 2, Table 9), the same
head trains the classifier with a score-based loss instead (``loss_rank=None``):
``loss_cls`` = Focal Loss (binary labels) or Quality Focal Loss (IoU labels), averaged over
positives, and a fixed ``task_balance`` weight on the box loss.

Test time: ``test_candidates='anchors'`` selects candidates as the official heads (mmdet
2.x; see :class:`~.ranking_head.CandidateSelectionMixin`); the configs of ``configs/atss``
use it.  :class:`CandidateSwitchATSSHead` is mmdet's ``ATSSHead`` with the same switch.

Losses are named ``loss_rank`` / ``loss_sort`` (RS, BRS), ``loss_ap`` (AP, BAP) or
``loss_cls`` (aLRP, FL, QFL), and ``loss_bbox``.
"""
from __future__ import annotations

import torch

from mmdet.models.dense_heads import ATSSHead
from mmdet.registry import MODELS
from mmdet.utils import reduce_mean

from .ranking_head import CandidateSelectionMixin, RankingATSSHeadMixin


@MODELS.register_module()
class RankBasedATSSHead(CandidateSelectionMixin, RankingATSSHeadMixin, ATSSHead):
    """ATSS head without centerness, its classifier trained by ``loss_rank`` (or ``loss_cls``).

    Args:
        loss_rank: a loss of :mod:`rankrepro.models.losses` (``RankSortLoss``,
            ``BucketedRankSortLoss``, ``APLoss``, ``BucketedAPLoss`` or ``aLRPLoss``), or
            None to train with ``loss_cls`` (``FocalLoss`` or ``QualityFocalLoss``).
        box_weighting: ``'score'`` (each positive's GIoU Loss weighted by its max class
            score, Eq. A.32), ``'iou'``, ``'centerness'``, ``'ranking'`` (Table A.11) or
            ``'none'`` (mean over positives).
        ranking_delta: delta_loc of the ranking-based weighting (Table A.13); None for
            aLRP's default (hard step in the numerator, rank smoothed by the loss's delta).
        task_balance: ``'value'`` (lambda = L_cls / L_box every iteration),
            ``'magnitude'`` (ratio of the gradient L1 norms w.r.t. the classification and
            box outputs, Table A.11) or a fixed lambda (e.g. 2.0 for the Focal/QFL baselines).
        sb_initial: initial aLRP self-balancing weight (50 in the aLRP configs).
        aux_head: keep ATSS's centerness branch (RS paper Table 2, "Aux. head" rows):
            trained by ``loss_centerness`` on the positives' centerness targets (averaged
            over positives, as mmdet's ATSS), its sigmoid multiplies the scores at test
            time.  False (the default, RS-ATSS): no centerness branch.
        test_candidates: ``'pairs'`` (mmdet 3.x's test-time candidates, the default) or
            ``'anchors'`` (mmdet 2.x's and the official heads': the ``nms_pre`` best
            anchors of each level by max class score, all their classes into NMS).
        All other arguments as ``ATSSHead``; ``loss_centerness`` is used only with
        ``aux_head``.
        ``loss_bbox`` must give per-box losses (``reduction='none'``).
    """

    aux_loss_name = "loss_centerness"

    def __init__(
        self,
        *args,
        loss_rank: dict | None = None,
        box_weighting: str = "score",
        task_balance: str | float = "value",
        sb_initial: float = 50.0,
        ranking_delta: float | None = None,
        aux_head: bool = False,
        test_candidates: str = "pairs",
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.init_ranking(loss_rank, box_weighting, task_balance, sb_initial, ranking_delta, aux_head)
        self.init_test_candidates(test_candidates)

    def loss_by_feat(self, cls_scores, bbox_preds, *args, **kwargs) -> dict:
        """Losses of the batch; after ``cls_scores, bbox_preds`` mmdet passes the centerness
        predictions (with ``aux_head``), ``batch_gt_instances``, ``batch_img_metas`` and
        ``batch_gt_instances_ignore``."""
        centernesses, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore = self.split_loss_inputs(args, kwargs)
        featmap_sizes = [featmap.size()[-2:] for featmap in bbox_preds]
        anchor_list, valid_flag_list = self.get_anchors(featmap_sizes, batch_img_metas, device=cls_scores[0].device)
        (anchor_list, labels_list, label_weights_list, bbox_targets_list, _, _) = self.get_targets(
            anchor_list, valid_flag_list, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore=batch_gt_instances_ignore
        )
        # All levels and images in one ranking problem (levels are image-major inside).
        anchors = torch.cat([a.reshape(-1, 4) for a in anchor_list])
        labels = torch.cat([x.reshape(-1) for x in labels_list])
        label_weights = torch.cat([x.reshape(-1) for x in label_weights_list])
        bbox_targets = torch.cat([x.reshape(-1, 4) for x in bbox_targets_list])
        logits = torch.cat([s.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels) for s in cls_scores])
        deltas = torch.cat([b.permute(0, 2, 3, 1).reshape(-1, 4) for b in bbox_preds])
        aux_logits = torch.cat([c.permute(0, 2, 3, 1).reshape(-1) for c in centernesses]) if self.aux_head else None
        return self.ranking_losses(logits, labels, label_weights, anchors, deltas, bbox_targets, aux_logits)

    def aux_loss(self, aux_logits, pos_anchors, gt_boxes, ious):
        """mmdet ATSS's centerness loss: BCE to the anchors' centerness, averaged over positives."""
        targets = self.centerness_target(pos_anchors, gt_boxes)
        avg_factor = reduce_mean(aux_logits.new_tensor(float(aux_logits.numel()))).item()
        return self.loss_centerness(aux_logits, targets, avg_factor=avg_factor)


@MODELS.register_module()
class CandidateSwitchATSSHead(CandidateSelectionMixin, ATSSHead):
    """mmdet's ``ATSSHead`` (training unchanged) with the ``test_candidates`` switch:
    ``'anchors'`` is mmdet 2.8's ATSS test (the ``nms_pre`` anchors of each level with the
    highest max(score x centerness), thresholds and NMS on that product)."""

    def __init__(self, *args, test_candidates: str = "pairs", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.init_test_candidates(test_candidates)
