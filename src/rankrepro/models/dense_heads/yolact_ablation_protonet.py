"""YOLACT with its training heuristics switched off one at a time (RS paper Table 6).

Table 6 trains the YOLACT baseline without OHEM, without size-based normalisation of the
mask loss and without the semantic segmentation head.  mmdet 3.3 switches OHEM off with
``bbox_head.use_ohem=False`` (its anchor loss over all anchors, as mmdet 2.x's), but not
the other two: its ``YOLACTProtonet`` always divides the mask loss by the gt box size,
and with ``with_seg_branch=False`` its loss reads the size of the semantic map that the
forward pass no longer makes and fails.  :class:`YOLACTAblationProtonet` is mmdet's
protonet with both switches working.
"""
from __future__ import annotations

import torch.nn.functional as F

from mmdet.models.dense_heads import YOLACTProtonet
from mmdet.registry import MODELS


@MODELS.register_module()
class YOLACTAblationProtonet(YOLACTProtonet):
    """mmdet's ``YOLACTProtonet`` whose size normalisation and semantic head can be off.

    Args:
        size_normalisation: True (YOLACT): each positive's mean binary cross-entropy over
            its prototype-resolution mask is divided by the area of its gt box relative to
            the image, so small objects weigh more; False: it is not (the official RS
            repo's YOLACT protonet, where that division is commented out).  Either way the
            sum over positives is divided by their number and multiplied by
            ``loss_mask_weight``, as in YOLACT.
        with_seg_branch: as mmdet's; False trains without ``loss_segm``.
        All other arguments as ``YOLACTProtonet``.
    """

    def __init__(self, *args, size_normalisation: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.size_normalisation = bool(size_normalisation)

    def loss_by_feat(self, mask_preds, segm_preds, batch_gt_instances, batch_img_metas, positive_infos, **kwargs) -> dict:
        if positive_infos is None:
            raise ValueError("YOLACTAblationProtonet needs positive_infos from the YOLACT box head")
        cropped = self.crop_mask_preds(mask_preds, batch_img_metas, positive_infos)
        loss_mask, loss_segm, total_pos = [], [], 0
        for idx, (masks, gt_instances, info, meta) in enumerate(zip(cropped, batch_gt_instances, positive_infos, batch_img_metas)):
            segm_pred = segm_preds[idx] if self.with_seg_branch else None
            masks, mask_targets, segm_targets, num_pos, gt_boxes = self._get_targets_single(masks, segm_pred, gt_instances, info)
            if self.with_seg_branch:
                num_imgs, _, segm_h, segm_w = segm_preds.size()
                if segm_targets is None:
                    loss_segm.append(segm_pred.sum() * 0)
                else:
                    loss_segm.append(self.loss_segm(segm_pred, segm_targets, avg_factor=num_imgs * segm_h * segm_w))
            total_pos += num_pos
            if num_pos == 0 or mask_targets is None:
                loss_mask.append(masks.sum() * 0)
                continue
            loss = F.binary_cross_entropy(masks.clamp(0, 1), mask_targets, reduction="none").mean(dim=(1, 2))
            loss = loss * self.loss_mask_weight
            if self.size_normalisation:
                h, w = meta["img_shape"][:2]
                loss = loss / ((gt_boxes[:, 2] - gt_boxes[:, 0]) / w) / ((gt_boxes[:, 3] - gt_boxes[:, 1]) / h)
            loss_mask.append(loss.sum())
        total_pos = max(total_pos, 1)  # as mmdet: no positives give a zero loss
        losses = {"loss_mask": [loss / total_pos for loss in loss_mask]}
        if self.with_seg_branch:
            losses["loss_segm"] = loss_segm
        return losses
