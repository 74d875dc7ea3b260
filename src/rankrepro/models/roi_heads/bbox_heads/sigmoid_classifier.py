"""Class-wise sigmoid classifiers in an R-CNN box head (RS paper Sec. 6.1.1, App. C.5): the
pieces shared by :class:`~rankrepro.models.roi_heads.RankBasedShared2FCBBoxHead` (trained by
a ranking loss) and :class:`~rankrepro.models.roi_heads.SigmoidShared2FCBBoxHead` (trained
by Focal Loss, RS paper Table A.18).

mmdet 3.3's ``BBoxHead`` has ``num_classes + 1`` softmax outputs (the last one background)
and applies a softmax at test time; a class-wise sigmoid head has ``num_classes`` outputs,
background being "every sigmoid low" (label ``num_classes`` in mmdet's targets).
"""

from __future__ import annotations

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.layers import multiclass_nms
from mmdet.models.utils import empty_instances
from mmdet.registry import MODELS
from mmdet.structures.bbox import get_box_tensor, scale_boxes


def with_background_column(probabilities: Tensor) -> Tensor:
    """``probabilities`` (N x C, sigmoid) with a zero background column appended, the layout
    mmdet's ``multiclass_nms`` expects (it drops the last column)."""
    return torch.cat([probabilities, probabilities.new_zeros(probabilities.shape[0], 1)], dim=1)


def imbalance_logs(labels: Tensor, label_weights: Tensor, num_classes: int, prefix: str) -> dict:
    """Negatives per positive of a batch of RoIs / anchors (RS paper App. C.5, Table A.17):

    * ``neg_per_pos_<prefix>_instances``: negative instances / positive instances;
    * ``neg_per_pos_<prefix>_tasks``: with C class-wise sigmoid classifiers a negative
      instance is C negative tasks and a positive one 1 positive and C - 1 negative tasks,
      so (negatives x C + positives x (C - 1)) / positives.

    Instances with label weight 0 (ignored) count as neither.  Detached 0-dim tensors; an
    empty dict without positives (the ratio is undefined)."""
    valid = label_weights > 0
    positives = int((valid & (labels >= 0) & (labels < num_classes)).sum())
    if positives == 0:
        return {}
    negatives = int((valid & (labels == num_classes)).sum())
    tasks = negatives * num_classes + positives * (num_classes - 1)
    value = label_weights.new_tensor
    return {
        f"neg_per_pos_{prefix}_instances": value(negatives / positives).detach(),
        f"neg_per_pos_{prefix}_tasks": value(tasks / positives).detach(),
    }


class SigmoidClassifierMixin:
    """Mixin for a subclass of mmdet's ``ConvFCBBoxHead`` (listed before it in the bases):

    * :meth:`use_sigmoid_classifier` (call at the end of ``__init__``) checks that
      ``loss_cls`` is a sigmoid loss and the regressor exists, and rebuilds ``fc_cls`` with
      ``num_classes`` outputs (mmdet builds ``num_classes + 1``);
    * :meth:`_positive_boxes`: the positives' decoded boxes (the gt class's box, or the
      class-agnostic one), for a loss on decoded boxes (GIoU);
    * :meth:`_predict_by_feat_single`: test time with sigmoid probabilities plus a zero
      background column into ``multiclass_nms`` (as the RankSortLoss repository's
      ``RankBasedShared2FCBBoxHead.get_bboxes``), where mmdet 3.3 would apply a softmax.
    """

    def use_sigmoid_classifier(self, loss_cls: dict) -> None:
        name = type(self).__name__
        if not loss_cls.get("use_sigmoid", False):
            raise ValueError(
                f"{name} has class-wise sigmoid classifiers: loss_cls must set use_sigmoid=True, got {loss_cls!r}"
            )
        if not (self.with_cls and self.with_reg):
            raise ValueError(f"{name} needs both the classifier and the regressor")
        cls_predictor = self.cls_predictor_cfg.copy()
        cls_predictor.update(in_features=self.cls_last_dim, out_features=self.num_classes)
        self.fc_cls = MODELS.build(cls_predictor)

    def check_sigmoid_scores(self, cls_score: Tensor) -> None:
        if cls_score.dim() != 2 or cls_score.shape[1] != self.num_classes:
            raise ValueError(
                f"cls_score must be N x num_classes ({self.num_classes}) sigmoid logits, got {tuple(cls_score.shape)}"
            )

    def _positive_boxes(self, rois, bbox_pred, labels, pos) -> Tensor:
        """The positives' decoded boxes: the class-agnostic box, or the gt class's box."""
        if self.reg_class_agnostic:
            deltas = bbox_pred.view(bbox_pred.size(0), -1)[pos]
        else:
            deltas = bbox_pred.view(bbox_pred.size(0), self.num_classes, -1)[pos, labels[pos]]
        return get_box_tensor(self.bbox_coder.decode(rois[pos, 1:], deltas))

    def _predict_by_feat_single(
        self, roi, cls_score, bbox_pred, img_meta, rescale=False, rcnn_test_cfg=None
    ) -> InstanceData:
        """mmdet 3.3's ``BBoxHead._predict_by_feat_single`` with sigmoid probabilities and a zero
        background column in place of the softmax."""
        results = InstanceData()
        if roi.shape[0] == 0:
            return empty_instances(
                [img_meta],
                roi.device,
                task_type="bbox",
                instance_results=[results],
                box_type=self.predict_box_type,
                use_box_type=False,
                num_classes=self.num_classes,
                score_per_cls=rcnn_test_cfg is None,
            )[0]
        scores = with_background_column(cls_score.sigmoid())
        num_rois = roi.size(0)
        per_roi = 1 if self.reg_class_agnostic else self.num_classes
        priors = roi.repeat_interleave(per_roi, dim=0)[:, 1:]
        bboxes = self.bbox_coder.decode(
            priors, bbox_pred.view(-1, self.bbox_coder.encode_size), max_shape=img_meta["img_shape"]
        )
        if rescale and bboxes.size(0) > 0:
            bboxes = scale_boxes(bboxes, [1 / s for s in img_meta["scale_factor"]])
        bboxes = get_box_tensor(bboxes)
        box_dim = bboxes.size(-1)
        bboxes = bboxes.view(num_rois, -1)
        if rcnn_test_cfg is None:  # test-time augmentation: raw results, merged later
            results.bboxes, results.scores = bboxes, scores
            return results
        det_bboxes, det_labels = multiclass_nms(
            bboxes, scores, rcnn_test_cfg.score_thr, rcnn_test_cfg.nms, rcnn_test_cfg.max_per_img, box_dim=box_dim
        )
        results.bboxes, results.scores, results.labels = det_bboxes[:, :-1], det_bboxes[:, -1], det_labels
        return results


__all__ = ["SigmoidClassifierMixin", "imbalance_logs", "with_background_column"]
