"""The R-CNN box head of the Focal Loss Faster R-CNN of RS paper App. C.5 / Table A.18:
class-wise sigmoid classifiers trained by Focal Loss, GIoU Loss on decoded boxes.

App. C.5 ("Focal Loss"): "we use a commonly used setting in one-stage detectors [17, 21,
43] to train RPN and R-CNN.  In particular, we use individual class-wise binary sigmoid
classifier (as we also did for RS Loss), set the learning rate to 0.01, the weight of GIoU
Loss to 2 and the bias terms in the last layer of the classification head such that the
confidence scores of the positives are 0.01".  Neither the RankSortLoss repository nor the
BucketedRankingBasedLosses one holds a config or a head for this experiment; this head
follows the paper.
"""

from __future__ import annotations

import torch
from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead
from mmdet.registry import MODELS
from torch import Tensor

from .sigmoid_classifier import SigmoidClassifierMixin, imbalance_logs


@MODELS.register_module()
class SigmoidShared2FCBBoxHead(SigmoidClassifierMixin, Shared2FCBBoxHead):
    """Shared2FC box head with ``num_classes`` sigmoid classifiers trained by a sigmoid loss
    (default mmdet's ``FocalLoss``, gamma 2, alpha 0.25, RetinaNet's [21]) and a box loss on
    decoded boxes (default ``GIoULoss``, weight 2: RS paper App. C.5).

    Training (:meth:`loss`): ``loss_cls`` on every (RoI, class) logit with label weight > 0:
    a positive RoI's gt-class logit has target 1, every other logit 0 (a background RoI,
    label ``num_classes``, is all zeros: mmdet's ``FocalLoss`` one-hot encodes
    ``num_classes + 1`` classes and drops the last column; mmcv's CUDA kernel treats label
    ``num_classes`` as all-negative too).  ``loss_bbox`` on the positives' decoded boxes (the
    gt class's box, or the class-agnostic one).  Both are summed and divided by the number of
    positive RoIs of the batch (at least 1), the normalisation of the one-stage detectors the
    paper follows (RetinaNet [21] divides Focal Loss by the number of positive anchors).
    mmdet's ``BBoxHead.loss`` divides by the number of sampled RoIs instead (the
    classification loss by those with label weight > 0, the box loss by all of them): with the
    "no sampler" R-CNN (~1000 RoIs an image, a few positives) that would shrink both losses by
    the negatives-per-positive ratio, which is what the one-stage setting avoids.

    Initialisation: ``fc_cls`` weights N(0, 0.01), biases -log((1 - p) / p) with ``p =
    cls_prior_prob`` (0.01: every sigmoid starts at 0.01, RS paper App. C.5, RetinaNet's
    prior); the other layers as ``Shared2FCBBoxHead``.

    Losses ``loss_cls``, ``loss_bbox`` (mmdet's names); logs ``neg_per_pos_rcnn_instances``,
    ``neg_per_pos_rcnn_tasks`` (negatives per positive, RS paper Table A.17/A.18).  A batch
    without positive RoIs: the classification loss summed (divided by 1) and a zero box loss
    connected to ``bbox_pred``.

    Test time: sigmoid probabilities plus a zero background column into ``multiclass_nms``
    (:class:`~.sigmoid_classifier.SigmoidClassifierMixin`, shared with RS-R-CNN's head), so
    the last real class is kept, where mmdet 3.3's ``BBoxHead`` would apply a softmax.
    """

    def __init__(
        self,
        *args,
        loss_cls: dict | None = None,
        reg_decoded_bbox: bool = True,
        loss_bbox: dict | None = None,
        cls_prior_prob: float = 0.01,
        **kwargs,
    ) -> None:
        if loss_cls is None:
            loss_cls = dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)
        loss_bbox = dict(type="GIoULoss", loss_weight=2.0) if loss_bbox is None else loss_bbox
        if not 0.0 < cls_prior_prob < 1.0:
            raise ValueError(f"cls_prior_prob must lie in (0, 1), got {cls_prior_prob}")
        super().__init__(*args, loss_cls=loss_cls, reg_decoded_bbox=reg_decoded_bbox, loss_bbox=loss_bbox, **kwargs)
        self.use_sigmoid_classifier(loss_cls)
        self.cls_prior_prob = cls_prior_prob

    def init_weights(self) -> None:
        """``Shared2FCBBoxHead``'s initialisation, then ``fc_cls``'s bias set to the prior."""
        super().init_weights()
        prior = torch.tensor(self.cls_prior_prob)
        with torch.no_grad():
            self.fc_cls.bias.fill_(float(-torch.log((1 - prior) / prior)))

    def loss(
        self,
        cls_score: Tensor,
        bbox_pred: Tensor,
        rois: Tensor,
        labels: Tensor,
        label_weights: Tensor,
        bbox_targets: Tensor,
        bbox_weights: Tensor,
        reduction_override: str | None = None,
    ) -> dict:
        """The losses of a batch of RoIs (mmdet's ``BBoxHead.loss`` interface).

        ``cls_score`` (N x C logits), ``bbox_pred`` (N x 4 or N x 4C deltas), ``rois``
        (N x 5), ``labels`` (N,; C = background), ``label_weights`` (N,), ``bbox_targets``
        (N x 4: decoded gt boxes when ``reg_decoded_bbox``, else encoded deltas),
        ``bbox_weights`` (N x 4).
        """
        self.check_sigmoid_scores(cls_score)
        pos = ((labels >= 0) & (labels < self.num_classes)).nonzero().squeeze(1)
        avg_factor = max(float(pos.numel()), 1.0)
        losses = {
            "loss_cls": self.loss_cls(
                cls_score, labels, label_weights, avg_factor=avg_factor, reduction_override=reduction_override
            )
        }
        if pos.numel() > 0:
            if self.reg_decoded_bbox:
                pos_boxes = self._positive_boxes(rois, bbox_pred, labels, pos)
            elif self.reg_class_agnostic:
                pos_boxes = bbox_pred.view(bbox_pred.size(0), -1)[pos]
            else:
                pos_boxes = bbox_pred.view(bbox_pred.size(0), self.num_classes, -1)[pos, labels[pos]]
            losses["loss_bbox"] = self.loss_bbox(
                pos_boxes,
                bbox_targets[pos],
                bbox_weights[pos],
                avg_factor=avg_factor,
                reduction_override=reduction_override,
            )
        else:
            losses["loss_bbox"] = bbox_pred.sum() * 0
        losses.update(imbalance_logs(labels, label_weights, self.num_classes, "rcnn"))
        return losses


__all__ = ["SigmoidShared2FCBBoxHead"]
