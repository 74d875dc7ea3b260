"""The RoI head of RS-R-CNN and RS-Mask R-CNN (RS paper Sec. 6.1.1, 6.2): the box head's score
weights and classification loss value feed the mask head's loss.

Ports ``RankBasedStandardRoIHead`` of the RankSortLoss repository (mmdet 2.8,
``mmdet/models/roi_heads/rankbased_standard_roi_head.py``; the Bucketed repository's copy
differs only in whitespace) to mmdet 3.3's ``StandardRoIHead.loss / bbox_loss / mask_loss``.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi

#: what a SamplingResult holds per positive
POSITIVE_FIELDS = ("pos_inds", "pos_priors", "pos_is_gt", "pos_assigned_gt_inds", "pos_gt_labels", "pos_gt_bboxes")


def positive_subset(result: SamplingResult, keep: Tensor) -> SamplingResult:
    """A shallow copy of ``result`` keeping the positives at indices ``keep`` (negatives kept)."""
    subset = copy.copy(result)
    for name in POSITIVE_FIELDS:
        setattr(subset, name, getattr(result, name)[keep])
    subset.num_pos = max(int(keep.numel()), 1)
    return subset


def cap_positives(sampling_results: list, weights: Tensor, max_positives: int | None) -> tuple[list, Tensor]:
    """At most ``max_positives`` positives over the batch for the mask head.

    With more, ``max_positives`` of them are drawn uniformly at random without replacement
    (the official ``resample_for_mask_head``, RS paper Sec. 6.2: "we limit the number of
    maximum proposals in the mask head by 200"); ``weights`` (one per positive, in batch
    order) is subset alike.  The kept positives stay in batch order, so the i-th weight is
    the i-th kept positive's.  The official code pairs them wrongly across images: it takes
    ``weights[idx]`` in the random order of ``idx`` while each image keeps its positives in
    that order per image, so with several images the masks and weights are permuted
    against each other; here they stay paired (the intent: each mask weighted by its own
    score).  Returns new sampling results (the inputs are not modified) and the weights.
    """
    counts = [int(res.pos_inds.numel()) for res in sampling_results]
    total = sum(counts)
    if weights.numel() != total:
        raise ValueError(f"{weights.numel()} weights for {total} positives")
    if max_positives is None or total <= max_positives:
        return sampling_results, weights
    keep = torch.randperm(total, device=weights.device)[:max_positives].sort().values
    subsets, start = [], 0
    for res, count in zip(sampling_results, counts):
        local = keep[(keep >= start) & (keep < start + count)] - start
        subsets.append(positive_subset(res, local.to(res.pos_inds.device)))
        start += count
    return subsets, weights[keep]


def check_max_masks(max_masks) -> int | None:
    if max_masks is not None and (isinstance(max_masks, bool) or not isinstance(max_masks, int) or max_masks < 1):
        raise ValueError(f"max_masks must be a positive integer or None, got {max_masks!r}")
    return max_masks


def assign_and_sample(assigner, sampler, x, results_list, batch_gt_instances, batch_gt_instances_ignore) -> list:
    """mmdet's per-image assignment and sampling of the proposals (``bboxes`` -> ``priors``)."""
    sampling_results = []
    for i, results in enumerate(results_list):
        results.priors = results.pop("bboxes")
        assign_result = assigner.assign(results, batch_gt_instances[i], batch_gt_instances_ignore[i])
        sampling_results.append(
            sampler.sample(assign_result, results, batch_gt_instances[i], feats=[lvl_feat[i][None] for lvl_feat in x])
        )
    return sampling_results


@MODELS.register_module()
class RankBasedStandardRoIHead(StandardRoIHead):
    """``StandardRoIHead`` whose mask loss is weighted by the box head's score weights and
    balanced to its classification loss (``RankBasedShared2FCBBoxHead`` +
    ``RankBasedFCNMaskHead``).

    ``max_masks`` (200, None = no cap): at most this many positives, drawn at random over
    the batch, train the mask head (:func:`cap_positives`).  As in the official code the cap
    applies where the mask head has its own RoI extractor (``mask_roi_extractor`` set: every
    Mask R-CNN config); a mask head sharing the box head's features gets every positive.
    "No R-CNN sampler" is written as in the official configs: ``train_cfg.rcnn.sampler =
    dict(type='RandomSampler', num=1e10, pos_fraction=0.25, neg_pos_ub=-1,
    add_gt_as_proposals=True)``, which keeps every proposal.
    """

    def __init__(self, *args, max_masks: int | None = 200, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_masks = check_max_masks(max_masks)
        if self.with_mask and not self.with_bbox:
            raise ValueError(
                "RankBasedStandardRoIHead: the mask loss needs the box head's score weights (no bbox_head given)"
            )

    def loss(self, x, rpn_results_list, batch_data_samples) -> dict:
        if len(rpn_results_list) != len(batch_data_samples):
            raise ValueError(f"{len(rpn_results_list)} proposal lists for {len(batch_data_samples)} images")
        batch_gt_instances, batch_gt_instances_ignore, _ = unpack_gt_instances(batch_data_samples)
        sampling_results = assign_and_sample(
            self.bbox_assigner, self.bbox_sampler, x, rpn_results_list, batch_gt_instances, batch_gt_instances_ignore
        )
        losses = {}
        if self.with_bbox:
            bbox_results = self.bbox_loss(x, sampling_results)
            losses.update(bbox_results["loss_bbox"])
        if self.with_mask:
            mask_results = self.mask_loss(
                x,
                sampling_results,
                bbox_results["bbox_feats"],
                batch_gt_instances,
                bbox_results["pos_score_weights"],
                bbox_results["cls_loss_value"],
            )
            losses.update(mask_results["loss_mask"])
        return losses

    def bbox_loss(self, x, sampling_results) -> dict:
        """mmdet's ``bbox_loss``, also returning the box head's ``pos_score_weights`` and
        ``cls_loss_value``."""
        rois = bbox2roi([res.priors for res in sampling_results])
        bbox_results = self._bbox_forward(x, rois)
        outputs = self.bbox_head.loss_and_target(
            cls_score=bbox_results["cls_score"],
            bbox_pred=bbox_results["bbox_pred"],
            rois=rois,
            sampling_results=sampling_results,
            rcnn_train_cfg=self.train_cfg,
        )
        bbox_results.update(outputs)
        return bbox_results

    def mask_loss(
        self, x, sampling_results, bbox_feats, batch_gt_instances, pos_score_weights=None, cls_loss_value=None
    ) -> dict:
        if pos_score_weights is None or cls_loss_value is None:
            raise ValueError(
                "RankBasedStandardRoIHead.mask_loss needs the box head's pos_score_weights and cls_loss_value"
            )
        if not self.share_roi_extractor:
            sampling_results, pos_score_weights = cap_positives(sampling_results, pos_score_weights, self.max_masks)
            mask_results = self._mask_forward(x, bbox2roi([res.pos_priors for res in sampling_results]))
        else:
            pos_inds = torch.cat(
                [
                    torch.cat(
                        [
                            bbox_feats.new_ones(res.pos_priors.shape[0], dtype=torch.bool),
                            bbox_feats.new_zeros(res.neg_priors.shape[0], dtype=torch.bool),
                        ]
                    )
                    for res in sampling_results
                ]
            )
            mask_results = self._mask_forward(x, pos_inds=pos_inds, bbox_feats=bbox_feats)
        outputs = self.mask_head.loss_and_target(
            mask_preds=mask_results["mask_preds"],
            sampling_results=sampling_results,
            batch_gt_instances=batch_gt_instances,
            rcnn_train_cfg=self.train_cfg,
            pos_score_weights=pos_score_weights,
            cls_loss_value=cls_loss_value,
        )
        mask_results.update(loss_mask=outputs["loss_mask"], mask_targets=outputs["mask_targets"])
        return mask_results


__all__ = ["RankBasedStandardRoIHead", "cap_positives", "positive_subset"]
