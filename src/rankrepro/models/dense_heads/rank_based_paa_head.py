"""PAA trained with a ranking-based loss: RS-PAA and its AP / BAP / BRS / aLRP variants.

RS paper Sec. 6.1.2 and Table 2 (PAA columns), with the training recipe of Sec. 5.2-5.3
(Eq. 14, value-based lambda_box) and Appendix B (Eq. A.32, score-based weighting), after the
official ``RankBasedPAAHead`` (RankSortLoss repo) and its Bucketed version
(BucketedRankingBasedLosses repo):

* the IoU-prediction (auxiliary) head of PAA is removed: the network is a classifier and
  a box regressor, and the detection score at test time is the class probability alone
  (``aux_head=True`` keeps the branch, for the "Aux. head" rows of Table 2);
* PAA's labelling is kept unchanged ("While training PAA, we keep the scoring function,
  splitting positives and negatives"): the candidates of the MaxIoU assigner (IoU > 0.1)
  are scored by Focal Loss + GIoU Loss of their current predictions (``loss_cls`` and
  ``loss_bbox``, used only for this scoring), the ``topk`` lowest-scored candidates per
  level and ground truth are fitted by a two-component 1-D GMM (sklearn), and the
  candidates of the low-loss component up to its most likely sample become the
  positives (the separation (c) of the PAA paper's Fig. 3, as in mmdet's ``PAAHead``);
  the other candidates become negatives;
* the classifier is trained by the ranking loss on all (anchor, class) logits of the batch
  at once: positives are the PAA positives with their ground-truth class, everything
  else of a non-ignored anchor is negative; for RS / BRS a positive's target is the IoU of
  its (detached) predicted box with its ground truth (a positive whose box does not
  overlap its ground truth thus has target 0 and counts as a negative, as in the official
  code);
* box regression (RS, BRS): GIoU Loss per positive, weighted by the positive's score (max
  class probability, detached; Eq. A.32 "score-based"), normalised by the sum of the
  weights, then value-balanced: multiplied by lambda = L_cls / L_box, both detached,
  every iteration (Sec. 5.2, Eq. 14);
* aLRP Loss: the positives' GIoU losses (in [0, 2], i.e. (1 - GIoU) / 2 / (1 - tau) with
  tau = 0.5, as the official aLRP heads) enter aLRP's classification error; the box loss
  is aLRP's localisation component times the self-balancing weight (as the ATSS head of
  this package).

Relation to the official code:

* AP / BAP (same as the official Bucketed head, through the AP configs): binary labels,
  the box loss weighted by score but not value-balanced (``task_balance=1.0``), and AP's
  delta 0.5 (the official head hands its own default delta 0.5 to AP Loss); the head
  itself defaults to value balancing;
* aLRP: the official RS-PAA head creates an aLRP loss but its training step only
  handles RS, so aLRP-PAA is trained here with the aLRP recipe of the ATSS head (GIoU
  losses as localisation errors, self-balancing initialised at 50, period one epoch);
* the scoring losses of PAA's assignment are computed without gradient (the official
  code builds their graph and discards it; the values are the same); they are Focal Loss
  + GIoU Loss also when the classifier is trained by QFL (``loss_assign``; the official
  QFL-PAA head of Table 2 is not released, its config is named "flassign");
* the GMM is fitted with ``reg_covar=1e-5`` as in the official ranking heads (mmdet's
  ``PAAHead`` uses sklearn's default 1e-6): ``gmm_reg_covar``;
* with no detection left after NMS, score voting returns the empty result (the official
  test code creates CUDA tensors there).
"""
from __future__ import annotations

import numpy as np
import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.dense_heads import PAAHead
from mmdet.models.losses import FocalLoss
from mmdet.models.utils import levels_to_images, multi_apply
from mmdet.registry import MODELS

from .ranking_head import EPS, RankingATSSHeadMixin, anchor_candidates, candidates_nms


@MODELS.register_module()
class RankBasedPAAHead(RankingATSSHeadMixin, PAAHead):
    """PAA head without the IoU branch, its classifier trained by ``loss_rank`` (or ``loss_cls``).

    Args:
        loss_rank: a loss of :mod:`rankrepro.models.losses` (``RankSortLoss``,
            ``BucketedRankSortLoss``, ``APLoss``, ``BucketedAPLoss`` or ``aLRPLoss``), or
            None to train the classifier with ``loss_cls`` (Focal Loss, or Quality Focal
            Loss with IoU labels; the FL / QFL rows of RS paper Table 2 without aux. head).
        box_weighting: ``'score'`` (each positive's GIoU Loss weighted by its max class
            score, Eq. A.32) or ``'none'`` (mean over positives).
        task_balance: ``'value'`` (lambda = L_cls / L_box every iteration) or a fixed
            lambda on the box loss (1.0 for the official AP / BAP heads).
        sb_initial: initial aLRP self-balancing weight (50 in the aLRP configs).
        gmm_reg_covar: ``reg_covar`` of PAA's Gaussian mixture (1e-5 in the official
            ranking-based PAA heads).
        aux_head: keep PAA's IoU-prediction branch (Table 2, "Aux. head" rows): trained as
            mmdet's PAA (``loss_centerness``, BCE to the predicted box's IoU, averaged by
            the IoU sum); at test time the score is sqrt(class probability x predicted
            IoU), as mmdet's PAA.  False (the default, RS-PAA): no IoU branch.
        loss_assign: the classification part of PAA's scoring function; None: ``loss_cls``.
            It must be a ``FocalLoss`` (PAA's scoring), so a QFL-trained head names it.
        All other arguments as mmdet's ``PAAHead`` (``topk``, ``score_voting``,
        ``covariance_type``, ...).  ``loss_bbox`` (GIoU Loss, ``reduction='none'``) is both
        the box loss and the localisation part of PAA's scoring function;
        ``loss_centerness`` is used only with ``aux_head``.
    """

    aux_loss_name = "loss_iou"

    def __init__(
        self,
        *args,
        loss_rank: dict | None,
        box_weighting: str = "score",
        task_balance: str | float = "value",
        sb_initial: float = 50.0,
        gmm_reg_covar: float = 1e-5,
        aux_head: bool = False,
        loss_assign: dict | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.gmm_reg_covar = float(gmm_reg_covar)
        self.loss_assign = MODELS.build(loss_assign) if loss_assign is not None else self.loss_cls
        if not isinstance(self.loss_assign, FocalLoss):
            raise ValueError("PAA scores its candidates with Focal Loss: give loss_assign=FocalLoss when loss_cls is another loss")
        self.init_ranking(loss_rank, box_weighting, task_balance, sb_initial, aux_head=aux_head)

    # ------------------------------------------------------------------ training
    def loss_by_feat(self, cls_scores, bbox_preds, *args, **kwargs) -> dict:
        """Losses of the batch; after ``cls_scores, bbox_preds`` mmdet passes the IoU
        predictions (with ``aux_head``), ``batch_gt_instances``, ``batch_img_metas`` and
        ``batch_gt_instances_ignore``."""
        iou_preds, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore = self.split_loss_inputs(args, kwargs)
        featmap_sizes = [featmap.size()[-2:] for featmap in cls_scores]
        anchor_list, valid_flag_list = self.get_anchors(featmap_sizes, batch_img_metas, device=cls_scores[0].device)
        labels, label_weights, bbox_targets, bbox_weights, pos_inds, pos_gt_inds = self.get_targets(
            anchor_list, valid_flag_list, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore=batch_gt_instances_ignore
        )
        # per image: all levels concatenated, the order of the concatenated anchors
        logits = [x.reshape(-1, self.cls_out_channels) for x in levels_to_images(cls_scores)]
        deltas = [x.reshape(-1, 4) for x in levels_to_images(bbox_preds)]
        with torch.no_grad():  # PAA's scoring function and GMM split: labels only
            (pos_scores,) = multi_apply(
                self.get_pos_loss, anchor_list, logits, deltas, labels, label_weights, bbox_targets, bbox_weights, pos_inds
            )
            labels, label_weights, _, _ = multi_apply(
                self.paa_reassign, pos_scores, labels, label_weights, bbox_weights, pos_inds, pos_gt_inds, anchor_list
            )
        anchors = torch.cat([torch.cat(per_image) for per_image in anchor_list])
        aux_logits = torch.cat([x.reshape(-1) for x in levels_to_images(iou_preds)]) if self.aux_head else None
        return self.ranking_losses(
            torch.cat(logits), torch.cat(labels), torch.cat(label_weights), anchors, torch.cat(deltas), torch.cat(bbox_targets), aux_logits
        )

    def get_pos_loss(self, anchors, cls_score, bbox_pred, label, label_weight, bbox_target, bbox_weight, pos_inds) -> tuple:
        """PAA's score of each candidate: Focal Loss (``loss_assign``) + GIoU Loss of its prediction."""
        if pos_inds.numel() == 0:
            return (cls_score.new_zeros(0),)
        pos_anchors = torch.cat(anchors)[pos_inds]
        pred_boxes = self.bbox_coder.decode(pos_anchors, bbox_pred[pos_inds])
        loss_cls = self.loss_assign(
            cls_score[pos_inds], label[pos_inds], label_weight[pos_inds], avg_factor=1.0, reduction_override="none"
        ).sum(-1)
        loss_bbox = self.loss_bbox(pred_boxes, bbox_target[pos_inds], bbox_weight[pos_inds], avg_factor=1.0, reduction_override="none")
        return (loss_cls + loss_bbox,)

    def aux_loss(self, aux_logits, pos_anchors, gt_boxes, ious):
        """mmdet PAA's IoU loss: BCE to the IoU of the predicted box, averaged by the IoU sum."""
        targets = ious.clamp(min=EPS)
        return self.loss_centerness(aux_logits, targets, avg_factor=max(float(targets.sum()), EPS))

    def paa_reassign(self, pos_losses, label, label_weight, bbox_weight, pos_inds, pos_gt_inds, anchors) -> tuple:
        """PAA's split of one image's candidates into positives and negatives.

        For each ground truth: its ``topk`` lowest-scored candidates of every level, sorted
        by score, are fitted by a 2-component GMM initialised at the lowest and highest
        score; the candidates assigned to the first (low-loss) component, up to the one
        with the highest likelihood, stay positive.  Every other candidate (also all
        candidates of a ground truth with fewer than two of them) becomes negative.  The
        separation never ignores anchors, so ``label_weight`` is returned unchanged.

        Returns ``(label, label_weight, bbox_weight, num_pos)`` like mmdet's ``PAAHead``.
        """
        if pos_inds.numel() == 0:
            return label, label_weight, bbox_weight, 0
        level_ends = torch.as_tensor(np.cumsum([level.size(0) for level in anchors]), device=pos_inds.device)
        cand_levels = torch.bucketize(pos_inds, level_ends, right=True)
        kept = []
        for gt in range(int(pos_gt_inds.max()) + 1):
            gt_inds, gt_scores = [], []
            for level in range(len(anchors)):
                mask = (pos_gt_inds == gt) & (cand_levels == level)
                scores, order = pos_losses[mask].topk(min(int(mask.sum()), self.topk), largest=False)
                gt_inds.append(pos_inds[mask][order])
                gt_scores.append(scores)
            gt_inds, gt_scores = torch.cat(gt_inds), torch.cat(gt_scores)
            if gt_inds.numel() < 2:  # a GMM needs two samples
                continue
            gt_scores, order = gt_scores.sort()
            kept.append(self._gmm_positives(gt_scores, gt_inds[order]))
        label = label.clone()
        bbox_weight = bbox_weight.clone()
        kept = torch.cat(kept) if kept else pos_inds.new_zeros(0)
        dropped = pos_inds[~torch.isin(pos_inds, kept)]
        label[dropped] = self.num_classes
        bbox_weight[dropped] = 0
        return label, label_weight, bbox_weight, int(kept.numel())

    def _gmm_positives(self, sorted_scores: Tensor, sorted_inds: Tensor) -> Tensor:
        """The positives among one ground truth's candidates (sorted by ascending score)."""
        from sklearn.mixture import GaussianMixture

        samples = sorted_scores.view(-1, 1).cpu().numpy()
        precisions = {
            "full": np.ones((2, 1, 1)),
            "diag": np.ones((2, 1)),
            "spherical": np.ones(2),
            "tied": np.ones((1, 1)),
        }[self.covariance_type]
        gmm = GaussianMixture(
            2,
            covariance_type=self.covariance_type,
            weights_init=np.array([0.5, 0.5]),
            means_init=np.array([[samples.min()], [samples.max()]]),
            precisions_init=precisions,
            reg_covar=self.gmm_reg_covar,
        )
        gmm.fit(samples)
        low_loss = torch.from_numpy(gmm.predict(samples) == 0).to(sorted_inds.device)
        if not low_loss.any():
            return sorted_inds.new_zeros(0)
        likelihood = torch.from_numpy(gmm.score_samples(samples)).to(sorted_inds.device)
        _, last = likelihood[low_loss].topk(1)
        return sorted_inds[low_loss][: int(last) + 1]

    # ------------------------------------------------------------------ testing
    def _predict_by_feat_single(self, cls_score_list, bbox_pred_list, score_factor_list, mlvl_priors, img_meta, cfg=None, rescale=False, with_nms=True) -> InstanceData:
        """Boxes of one image scored by the class probabilities alone (without the IoU branch).

        As the official test code (``RankBasedPAAHead._get_bboxes_single`` of both official
        repositories): the ``nms_pre`` best anchors of each level by max class probability
        with all their classes (:func:`~.ranking_head.anchor_candidates`), class-wise NMS,
        then PAA's score voting on the same scores.
        """
        if self.aux_head:  # mmdet's PAA: sqrt(class probability x predicted IoU)
            return super()._predict_by_feat_single(
                cls_score_list, bbox_pred_list, score_factor_list, mlvl_priors, img_meta, cfg, rescale, with_nms
            )
        cfg = self.test_cfg if cfg is None else cfg
        bboxes, scores = anchor_candidates(self, cls_score_list, bbox_pred_list, mlvl_priors, img_meta, cfg.get("nms_pre", -1), rescale)
        det_bboxes, det_labels = candidates_nms(bboxes, scores, cfg)
        if self.with_score_voting and len(det_bboxes) > 0:
            det_bboxes, det_labels = self.score_voting(det_bboxes, det_labels, bboxes, scores, cfg.score_thr)
        results = InstanceData()
        results.bboxes = det_bboxes[:, :-1]
        results.scores = det_bboxes[:, -1]
        results.labels = det_labels
        return results
