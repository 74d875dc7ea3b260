"""The Faster R-CNN RoI head of Co-DETR (Co-Deformable-DETR) and of BRS-DETR.

Co-DETR (Zong et al., ICCV 2023, Sec. 3.2) trains a Faster R-CNN (RPN + RoI head) on the
encoder's feature pyramid next to the one-to-one query head; the RoI head's sampled
proposals and their assignment become customised positive queries (Sec. 3.3).  The official
``CoStandardRoIHead`` (Sense-X/Co-DETR ``projects/models/co_roi_head.py``, mmdet 2.x) is
mmdet's standard RoI head whose ``forward_train`` also returns ``pos_coords``: the sampled
proposals of every image with their R-CNN labels and box targets, ``'rcnn'``.

Here (mmdet 3.3) a mixin over the RoI head's ``bbox_loss`` (which gets the sampling
results) records them, so both heads share it:

* :class:`CoStandardRoIHead` = mmdet's ``StandardRoIHead`` (Co-DETR's baseline with a
  softmax ``Shared2FCBBoxHead``; the official config weights its losses by num_dec_layer x
  lambda_2 = 12 in ``loss_cls`` / ``loss_bbox``);
* :class:`RankBasedCoStandardRoIHead` = the project's RS-R-CNN RoI head
  (:class:`~.rank_based_roi_head.RankBasedStandardRoIHead` with
  ``RankBasedShared2FCBBoxHead``: ranking loss on all (RoI, class) logits with IoU labels,
  score-weighted GIoU value-balanced to it) as BRS-DETR's R-CNN.  Its losses have no
  per-loss weights; ``loss_weight`` multiplies them all.

``pos_coords`` (:mod:`rankrepro.models.co_positives`, the 5-tuple form with features):
per image, the sampled proposals in
the order the box head sees them (positives, then negatives; ``SamplingResult.priors``),
the positives' gt labels (``num_classes`` for negatives) and gt boxes (zeros for
negatives).  The official code builds the same from the box head's targets
(``bbox_targets[0]`` labels, ``bbox_targets[2]`` targets: gt boxes, as its config regresses
decoded boxes), keeps the first min_i(N_i) proposals of every image so that they stack
into one tensor; here the lists keep every proposal.  As there, each proposal also carries
its RoI feature averaged over the RoI (not detached), the content of its query.
"""
from __future__ import annotations

import torch
from torch import Tensor

from mmdet.models.roi_heads import StandardRoIHead
from mmdet.registry import MODELS
from mmdet.structures.bbox import get_box_tensor

from ..co_positives import POS_COORDS_KEY, positive_coords, scale_losses
from ..dense_heads.ranking_head import check_positive_weight
from .rank_based_roi_head import RankBasedStandardRoIHead


def sampled_positive_coords(sampling_results: list, num_classes: int, bbox_feats: Tensor):
    """The ``pos_coords`` tuple (:mod:`rankrepro.models.co_positives`) of mmdet
    ``SamplingResult`` s and the box head's RoI features ``bbox_feats`` (all images' RoIs
    in order, (N, C, h, w); averaged over h, w per RoI)."""
    coords, labels, targets = [], [], []
    for res in sampling_results:
        priors = get_box_tensor(res.priors)
        num_neg = priors.shape[0] - res.pos_gt_labels.numel()
        coords.append(priors)
        labels.append(torch.cat([res.pos_gt_labels.long(), res.pos_gt_labels.new_full((num_neg,), num_classes).long()]))
        pos_boxes = get_box_tensor(res.pos_gt_bboxes).to(priors.dtype)
        targets.append(torch.cat([pos_boxes.reshape(-1, 4), priors.new_zeros(num_neg, 4)]))
    feats = bbox_feats.mean(dim=(-2, -1)).split([c.shape[0] for c in coords])
    return positive_coords(coords, labels, targets, "rcnn", feats)


class CoRoIHeadMixin:
    """Records the sampled proposals of :meth:`bbox_loss` and returns them from
    :meth:`loss` under ``'pos_coords'``; every loss term times ``loss_weight``.  Put it
    first among the bases of a standard RoI head."""

    def init_co_aux(self, loss_weight: float) -> None:
        if not self.with_bbox:
            raise ValueError(f"{type(self).__name__}: pos_coords needs a bbox_head")
        self.aux_loss_weight = check_positive_weight(loss_weight, "loss_weight", type(self).__name__)
        self._pos_coords = None

    def loss(self, x, rpn_results_list, batch_data_samples) -> dict:
        """The head's losses (times ``loss_weight``) plus ``'pos_coords'`` (see the module)."""
        self._pos_coords = None
        losses = super().loss(x, rpn_results_list, batch_data_samples)
        pos, self._pos_coords = self._pos_coords, None
        return {**scale_losses(losses, self.aux_loss_weight), POS_COORDS_KEY: pos}

    def bbox_loss(self, x, sampling_results) -> dict:
        results = super().bbox_loss(x, sampling_results)
        self._pos_coords = sampled_positive_coords(sampling_results, self.bbox_head.num_classes, results["bbox_feats"])
        return results


@MODELS.register_module()
class CoStandardRoIHead(CoRoIHeadMixin, StandardRoIHead):
    """mmdet's ``StandardRoIHead`` returning ``pos_coords`` (Co-DETR's auxiliary R-CNN).

    Args:
        loss_weight: multiplies every loss of the head (1.0: the official config puts its
            weights into the box head's ``loss_cls`` / ``loss_bbox``).
        All other arguments as ``StandardRoIHead``.
    """

    def __init__(self, *args, loss_weight: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.init_co_aux(loss_weight)


@MODELS.register_module()
class RankBasedCoStandardRoIHead(CoRoIHeadMixin, RankBasedStandardRoIHead):
    """The project's RS-R-CNN RoI head returning ``pos_coords``: BRS-DETR's auxiliary R-CNN.

    Args:
        loss_weight: multiplies every loss of the head; the BRS-DETR configs use Co-DETR's
            auxiliary weight num_dec_layer x lambda_2 = 12.
        All other arguments as :class:`RankBasedStandardRoIHead`.
    """

    def __init__(self, *args, loss_weight: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.init_co_aux(loss_weight)


__all__ = ["CoRoIHeadMixin", "CoStandardRoIHead", "RankBasedCoStandardRoIHead", "sampled_positive_coords"]
