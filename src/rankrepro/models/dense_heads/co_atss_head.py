"""The ATSS auxiliary head of Co-DETR (Co-Deformable-DETR) and of BRS-DETR.

Co-DETR (Zong et al., ICCV 2023, Sec. 3.2) trains an ATSS head on the encoder's feature
pyramid next to the one-to-one query head; its one-to-many assignment gives the positives
that become customised positive queries (Sec. 3.3).  The official ``CoATSSHead``
(Sense-X/Co-DETR ``projects/models/co_atss_head.py``, mmdet 2.x) is ATSS with its
``get_targets`` also returning every image's anchors, labels and box targets
(``ori_anchors, ori_labels, ori_bbox_targets``), which its ``loss`` returns as
``pos_coords = (anchors, labels, targets, 'atss')`` next to the losses.

Here (mmdet 3.3) the same is a mixin over an ATSS head's ``get_targets`` (called once by
``loss_by_feat``), so both heads share it:

* :class:`CoATSSHead` = mmdet's ``ATSSHead`` (Focal Loss, GIoU, centerness: Co-DETR's
  baseline, the official config weighting each loss by num_dec_layer x lambda_2 = 12 in
  ``loss_cls`` / ``loss_bbox`` / ``loss_centerness``);
* :class:`RankBasedCoATSSHead` = the project's RS-ATSS head
  (:class:`~.rank_based_atss_head.RankBasedATSSHead`: ranking loss on all (anchor, class)
  logits with IoU labels, score-weighted GIoU value-balanced to it, no centerness) as
  BRS-DETR's ATSS head.  Its losses have no per-loss weights; ``loss_weight`` multiplies
  them all (the BRS-DETR configs: num_dec_layer x lambda_2, Co-DETR's auxiliary weight).

``pos_coords`` (:mod:`rankrepro.models.co_positives`): per image, all its anchors (xyxy,
input pixels; anchors outside the image, label ``num_classes``), their labels and the gt
box of every positive (the ATSS targets; ``reg_decoded_bbox`` must be True so that the
targets are boxes, not deltas, as in Co-DETR's ATSS, whose GIoU loss regresses decoded
boxes).
"""
from __future__ import annotations

import torch

from mmdet.models.dense_heads import ATSSHead
from mmdet.registry import MODELS

from ..co_positives import POS_COORDS_KEY, positive_coords, scale_losses
from .ranking_head import check_positive_weight
from .rank_based_atss_head import RankBasedATSSHead


class CoATSSMixin:
    """Records the positives of :meth:`get_targets` and returns them from :meth:`loss`
    under ``'pos_coords'``; every loss term times ``loss_weight``.  Put it first among the
    bases of an ATSS head."""

    def init_co_aux(self, loss_weight: float) -> None:
        if not self.reg_decoded_bbox:
            raise ValueError(f"{type(self).__name__}: reg_decoded_bbox must be True (pos_coords needs gt boxes as targets)")
        self.aux_loss_weight = check_positive_weight(loss_weight, "loss_weight", type(self).__name__)
        self._pos_coords = None

    def loss(self, x, batch_data_samples) -> dict:
        """The head's losses (times ``loss_weight``) plus ``'pos_coords'`` (see the module)."""
        self._pos_coords = None
        losses = super().loss(x, batch_data_samples)
        pos, self._pos_coords = self._pos_coords, None
        if pos is None:
            raise RuntimeError(f"{type(self).__name__}: loss_by_feat did not call get_targets")
        return {**scale_losses(losses, self.aux_loss_weight), POS_COORDS_KEY: pos}

    def get_targets(
        self, anchor_list, valid_flag_list, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore=None, unmap_outputs=True
    ) -> tuple:
        if not unmap_outputs:
            raise ValueError(f"{type(self).__name__}: pos_coords needs the targets of all anchors (unmap_outputs=True)")
        outputs = super().get_targets(
            anchor_list, valid_flag_list, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore, unmap_outputs
        )
        anchors_list, labels_list, _, bbox_targets_list = outputs[:4]  # per level: num_imgs x n_level x ...
        images = range(len(batch_img_metas))

        def image_major(levels):
            return [torch.cat([level[i] for level in levels]) for i in images]

        self._pos_coords = positive_coords(
            image_major(anchors_list), image_major(labels_list), image_major(bbox_targets_list), "atss"
        )
        return outputs


@MODELS.register_module()
class CoATSSHead(CoATSSMixin, ATSSHead):
    """mmdet's ``ATSSHead`` returning ``pos_coords`` (Co-DETR's auxiliary ATSS head).

    Args:
        loss_weight: multiplies every loss of the head (1.0: the official config puts its
            weights into ``loss_cls`` / ``loss_bbox`` / ``loss_centerness``).
        All other arguments as ``ATSSHead``.
    """

    def __init__(self, *args, loss_weight: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.init_co_aux(loss_weight)


@MODELS.register_module()
class RankBasedCoATSSHead(CoATSSMixin, RankBasedATSSHead):
    """The project's RS-ATSS head (:class:`RankBasedATSSHead`) returning ``pos_coords``:
    BRS-DETR's auxiliary ATSS head.

    Args:
        loss_weight: multiplies every loss of the head (the ranking terms and the balanced
            box loss); the BRS-DETR configs use Co-DETR's auxiliary weight
            num_dec_layer x lambda_2 = 12.
        All other arguments as :class:`RankBasedATSSHead`.
    """

    def __init__(self, *args, loss_weight: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.init_co_aux(loss_weight)


__all__ = ["CoATSSHead", "CoATSSMixin", "RankBasedCoATSSHead"]
