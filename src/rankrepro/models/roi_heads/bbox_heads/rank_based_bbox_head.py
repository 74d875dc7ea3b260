"""The R-CNN box head of RS-R-CNN (RS paper Sec. 6.1.1, App. C.2, C.5): class-wise sigmoid
classifiers trained by a ranking loss on every (RoI, class) logit, GIoU box regression.

Ports ``RankBasedShared2FCBBoxHead`` of the RankSortLoss repository (mmdet 2.8,
``mmdet/models/roi_heads/bbox_heads/convfc_bbox_head.py``) to mmdet 3.3's
``BBoxHead.loss_and_target`` / ``predict_by_feat``.  The BucketedRankingBasedLosses
repository's copy (mmdet 2.25) builds its ranking loss from a config (``loss_rank`` here),
multiplies both ranking terms by that config's ``loss_weight`` (1.0 in all its R-CNN
configs, so left out here) and has no aLRP branch; the rest is the same.
"""

from __future__ import annotations

from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps

from ...dense_heads.ranking_head import (
    apply_ranking_loss,
    ranking_targets,
    score_weights,
    value_balanced,
    weighted_mean,
)
from ...self_balancing import SelfBalancedLocalisation
from .sigmoid_classifier import SigmoidClassifierMixin, imbalance_logs, with_background_column


@MODELS.register_module()
class RankBasedShared2FCBBoxHead(SelfBalancedLocalisation, SigmoidClassifierMixin, Shared2FCBBoxHead):
    """Shared2FC box head with ``num_classes`` sigmoid classifiers (no background logit).

    Training (:meth:`rank_based_loss`): the ranking loss ``loss_rank`` on all (RoI, class)
    logits; the positive RoIs' gt-class logits have the IoU of their decoded box (the
    class-specific box of the gt class, or the class-agnostic box) with the gt box as
    label for RS / BRS (continuous labels, RS paper Sec. 4 / Eq. 6), 1 for AP / aLRP; the
    other logits are negatives, RoIs with label weight 0 ignored (-1).  The box loss is the
    GIoU Loss of the positives weighted by their classification score (max class
    probability, detached; RS paper App. B.1 Eq. A.32) and value-balanced to the
    classification loss, lambda = (L_rank + L_sort) / L_box every iteration (RS paper
    Sec. 5.3 / Fig. 3c).  With ``aLRPLoss`` the box loss is aLRP's localisation component
    (aLRP paper Eq. 12) times the self-balancing weight (``sb_initial``; period one epoch,
    set by ``ALRPSelfBalancingHook``, where the official head hard-codes 7330 iterations).

    Losses: ``loss_roi_rank``, ``loss_roi_sort``, ``loss_roi_bbox`` (RS / BRS; a loss
    module's term ``loss_x`` is logged as ``loss_roi_x``, e.g. ``loss_roi_ap`` for AP Loss)
    and ``loss_cls``, ``loss_bbox`` for aLRP, as the official head names them.  Logs:
    ``neg_per_pos_rcnn_instances``, ``neg_per_pos_rcnn_tasks`` (:func:`imbalance_logs`).

    A batch without positive RoIs: the ranking loss's own value (0 for RS / BRS / aLRP,
    connected to the graph) and a zero box loss, as the project's one-stage heads do.  The
    official head returns ``x.sum() * 0 + 1`` for every term there (the same zero
    gradients, but each logged loss reads 1).

    Test time: sigmoid probabilities plus a zero background column into mmdet's
    ``multiclass_nms`` with the config's ``score_thr`` / ``nms`` / ``max_per_img``, as the
    official ``get_bboxes`` (mmdet 3.3's ``BBoxHead`` would apply a softmax; shared with the
    Focal Loss head in :class:`.sigmoid_classifier.SigmoidClassifierMixin`).

    :meth:`loss_and_target` also returns ``pos_score_weights`` (the positives' score
    weights, in the order of the positives over the batch) and ``cls_loss_value`` (the
    detached classification loss), which the mask head of
    :class:`~rankrepro.models.roi_heads.RankBasedStandardRoIHead` uses.  For aLRP the
    official head returns no weights (its mask path would fail on ``loss_roi_rank``; there is
    no official aLRP Mask R-CNN); here the score weights and ``loss_cls`` are returned.
    """

    def __init__(
        self,
        *args,
        loss_rank: dict | None = None,
        sb_initial: float = 50.0,
        loss_cls: dict | None = None,
        reg_decoded_bbox: bool = True,
        loss_bbox: dict | None = None,
        **kwargs,
    ) -> None:
        loss_cls = dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0) if loss_cls is None else loss_cls
        if not reg_decoded_bbox:
            raise ValueError(
                "RankBasedShared2FCBBoxHead regresses decoded boxes with an IoU-based loss: reg_decoded_bbox must be True"
            )
        loss_bbox = dict(type="GIoULoss", reduction="none") if loss_bbox is None else loss_bbox
        super().__init__(*args, loss_cls=loss_cls, reg_decoded_bbox=True, loss_bbox=loss_bbox, **kwargs)
        self.use_sigmoid_classifier(loss_cls)  # num_classes sigmoid outputs, not num_classes + 1
        self.loss_rank = MODELS.build(dict(type="RankSortLoss", delta=0.5) if loss_rank is None else loss_rank)
        self.init_self_balancing(sb_initial if self.loss_rank.needs_loc_errors else None)

    # ------------------------------------------------------------------ training
    def loss_and_target(
        self, cls_score, bbox_pred, rois, sampling_results, rcnn_train_cfg, concat=True, reduction_override=None
    ) -> dict:
        """mmdet's ``loss_and_target`` plus ``pos_score_weights`` and ``cls_loss_value``."""
        if not concat:
            raise ValueError("RankBasedShared2FCBBoxHead ranks the logits of the whole batch: concat must be True")
        targets = self.get_targets(sampling_results, rcnn_train_cfg, concat=True)
        losses, weights, cls_value = self.rank_based_loss(cls_score, bbox_pred, rois, *targets)
        return dict(loss_bbox=losses, bbox_targets=targets, pos_score_weights=weights, cls_loss_value=cls_value)

    def loss(
        self, cls_score, bbox_pred, rois, labels, label_weights, bbox_targets, bbox_weights, reduction_override=None
    ) -> dict:
        """mmdet's ``BBoxHead.loss`` interface: the loss dict of :meth:`rank_based_loss`."""
        return self.rank_based_loss(cls_score, bbox_pred, rois, labels, label_weights, bbox_targets, bbox_weights)[0]

    def rank_based_loss(self, cls_score, bbox_pred, rois, labels, label_weights, bbox_targets, bbox_weights=None):
        """``(losses, pos_score_weights, cls_loss_value)`` of a batch of RoIs.

        ``cls_score`` (N x C logits), ``bbox_pred`` (N x 4 or N x 4C deltas), ``rois``
        (N x 5), ``labels`` (N,; C = background), ``label_weights`` (N,), ``bbox_targets``
        (N x 4 gt boxes, decoded: ``reg_decoded_bbox``).  ``bbox_weights`` is unused (the
        positives' weights are their scores).
        """
        self.check_sigmoid_scores(cls_score)
        pos = ((labels >= 0) & (labels < self.num_classes)).nonzero().squeeze(1)
        logs = imbalance_logs(labels, label_weights, self.num_classes, "rcnn")
        weights = score_weights(cls_score[pos])
        if pos.numel() == 0:
            terms = self._ranking_terms(cls_score, labels, label_weights, pos, 1.0, None)
            terms.pop("loss_bbox", None)  # aLRP's (zero) localisation term
            cls_value = sum(terms.values()).detach()
            return {**self._named(terms), self._box_key: bbox_pred.sum() * 0, **logs}, weights, cls_value
        pos_boxes = self._positive_boxes(rois, bbox_pred, labels, pos)
        gt_boxes = bbox_targets[pos]
        giou = self.loss_bbox(pos_boxes, gt_boxes, reduction_override="none")
        if self.sb_initial is not None:  # aLRP: its own localisation component, self-balanced
            terms = self._ranking_terms(cls_score, labels, label_weights, pos, 1.0, giou)
            loss_box = self.self_balance(terms["loss_cls"], terms.pop("loss_bbox"))
        else:
            ious = bbox_overlaps(pos_boxes.detach(), gt_boxes, is_aligned=True)
            terms = self._ranking_terms(cls_score, labels, label_weights, pos, ious, None)
            loss_box = value_balanced(weighted_mean(giou, weights), sum(terms.values()))
        cls_value = sum(terms.values()).detach()
        return {**self._named(terms), self._box_key: loss_box, **logs}, weights, cls_value

    @property
    def _box_key(self) -> str:
        return "loss_bbox" if self.sb_initial is not None else "loss_roi_bbox"

    def _named(self, terms: dict) -> dict:
        """The loss module's terms under the head's names (``loss_rank`` -> ``loss_roi_rank``;
        aLRP keeps ``loss_cls`` as the official head)."""
        if self.sb_initial is not None:
            return terms
        return {"loss_roi_" + key[len("loss_") :]: value for key, value in terms.items()}

    def _ranking_terms(self, cls_score, labels, label_weights, pos, ious, loc_errors) -> dict:
        quality = ious if self.loss_rank.continuous_labels else 1.0
        targets = ranking_targets(cls_score, labels, label_weights, pos, quality)
        return dict(apply_ranking_loss(self.loss_rank, cls_score, targets, loc_errors))


__all__ = ["RankBasedShared2FCBBoxHead", "imbalance_logs", "with_background_column"]
