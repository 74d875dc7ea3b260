"""The cascade RoI head of RS-Cascade R-CNN (RS paper Sec. 6.1.1, App. C.2).

Ports ``RankBasedCascadeRoIHead`` of the RankSortLoss repository (mmdet 2.8,
``mmdet/models/roi_heads/rankbased_cascade_roi_head.py``; the Bucketed repository's copy is
the same) to mmdet 3.3's ``CascadeRoIHead.loss``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmdet.models.roi_heads import CascadeRoIHead
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi, get_box_tensor

from .rank_based_roi_head import assign_and_sample


def predicted_labels(bbox_head, cls_score: Tensor) -> Tensor:
    """Each RoI's most likely class: the argmax over the ``num_classes`` sigmoid logits of a
    rank-based head, or over the foreground columns of a softmax head (num_classes + 1)."""
    if cls_score.shape[-1] == bbox_head.num_classes:
        return cls_score.argmax(dim=1)
    if cls_score.shape[-1] == bbox_head.num_classes + 1:
        return cls_score[:, :-1].argmax(dim=1)
    raise ValueError(f"cls_score has {cls_score.shape[-1]} columns for {bbox_head.num_classes} classes")


@MODELS.register_module()
class RankBasedCascadeRoIHead(CascadeRoIHead):
    """``CascadeRoIHead`` with ``RankBasedShared2FCBBoxHead`` (and optionally
    ``RankBasedFCNMaskHead``) in every stage.

    Losses ``s{i}.<name>`` (``s0.loss_roi_rank``, ...) times ``stage_loss_weights[i]`` (the
    official config uses [1, 1, 1]: "we do not assign different loss weights over each
    R-CNN", RS paper App. C.2); logs ``s{i}.neg_per_pos_rcnn_*`` unweighted.  A stage's
    mask head gets that stage's score weights and (unweighted) classification loss value.
    Unlike :class:`~rankrepro.models.roi_heads.RankBasedStandardRoIHead` there is no cap
    on the mask head's positives (the official cascade head has none).

    Refinement labels.  Between stages a background RoI is regressed with the box of its
    most likely class.  The official code (mmdet 2.8 ``CascadeRoIHead``, training and test)
    takes ``cls_score[:, :-1].argmax(1)``, which with sigmoid heads (no background column)
    drops the last real class, so an RoI whose best class is the last one is regressed
    with another class's box.  In the official RS-Cascade config (``reg_class_agnostic=
    True``) the label is unused by ``regress_by_class``, so it does not change its results;
    with class-specific regression it would.  Here the argmax runs over all classes (the
    intent), at training time (mmdet 3.3's ``BBoxHead.refine_bboxes`` already does so for
    heads with ``num_classes`` outputs) and at test time (:meth:`_refine_roi`, whose mmdet
    3.3 version still drops the last column).
    """

    def loss(self, x, rpn_results_list, batch_data_samples) -> dict:
        if len(rpn_results_list) != len(batch_data_samples):
            raise ValueError(f"{len(rpn_results_list)} proposal lists for {len(batch_data_samples)} images")
        batch_gt_instances, batch_gt_instances_ignore, batch_img_metas = unpack_gt_instances(batch_data_samples)
        losses = {}
        results_list = rpn_results_list
        for stage in range(self.num_stages):
            self.current_stage = stage
            weight = self.stage_loss_weights[stage]
            sampling_results = assign_and_sample(
                self.bbox_assigner[stage],
                self.bbox_sampler[stage],
                x,
                results_list,
                batch_gt_instances,
                batch_gt_instances_ignore,
            )
            bbox_results = self.bbox_loss(stage, x, sampling_results)
            for name, value in bbox_results["loss_bbox"].items():
                losses[f"s{stage}.{name}"] = value * weight if "loss" in name else value
            if self.with_mask:
                mask_results = self.mask_loss(
                    stage,
                    x,
                    sampling_results,
                    batch_gt_instances,
                    bbox_results["pos_score_weights"],
                    bbox_results["cls_loss_value"],
                )
                for name, value in mask_results["loss_mask"].items():
                    losses[f"s{stage}.{name}"] = value * weight if "loss" in name else value
            if stage < self.num_stages - 1:
                with torch.no_grad():
                    results_list = self.bbox_head[stage].refine_bboxes(sampling_results, bbox_results, batch_img_metas)
                if results_list is None:  # no RoIs left
                    break
        return losses

    def mask_loss(
        self, stage, x, sampling_results, batch_gt_instances, pos_score_weights=None, cls_loss_value=None
    ) -> dict:
        if pos_score_weights is None or cls_loss_value is None:
            raise ValueError(
                "RankBasedCascadeRoIHead.mask_loss needs the box head's pos_score_weights and cls_loss_value"
            )
        mask_results = self._mask_forward(stage, x, bbox2roi([res.pos_priors for res in sampling_results]))
        outputs = self.mask_head[stage].loss_and_target(
            mask_preds=mask_results["mask_preds"],
            sampling_results=sampling_results,
            batch_gt_instances=batch_gt_instances,
            rcnn_train_cfg=self.train_cfg[stage],
            pos_score_weights=pos_score_weights,
            cls_loss_value=cls_loss_value,
        )
        mask_results.update(outputs)
        return mask_results

    def _refine_roi(self, x, rois, batch_img_metas, num_proposals_per_img, **kwargs) -> tuple:
        """mmdet 3.3's multi-stage test-time refinement with the refinement label of
        :func:`predicted_labels` (all classes of a sigmoid head).  Returns the last stage's
        RoIs and box predictions per image and the stages' mean logits per image."""
        stage_scores = []
        for stage in range(self.num_stages):
            bbox_results = self._bbox_forward(stage=stage, x=x, rois=rois, **kwargs)
            rois = rois.split(num_proposals_per_img, 0)
            cls_scores = bbox_results["cls_score"].split(num_proposals_per_img, 0)
            bbox_preds = bbox_results["bbox_pred"].split(num_proposals_per_img, 0)
            stage_scores.append(cls_scores)
            if stage < self.num_stages - 1:
                head = self.bbox_head[stage]
                refined = []
                for img_rois, scores, deltas, img_meta in zip(rois, cls_scores, bbox_preds, batch_img_metas):
                    if img_rois.shape[0] > 0:
                        boxes = head.regress_by_class(img_rois[:, 1:], predicted_labels(head, scores), deltas, img_meta)
                        refined.append(torch.cat([img_rois[:, [0]], get_box_tensor(boxes)], dim=1))
                rois = torch.cat(refined)
        mean_scores = [
            sum(scores[i] for scores in stage_scores) / len(stage_scores) for i in range(len(batch_img_metas))
        ]
        return rois, mean_scores, bbox_preds


__all__ = ["RankBasedCascadeRoIHead", "predicted_labels"]
