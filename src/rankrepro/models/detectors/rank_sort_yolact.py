"""RS-YOLACT's detector: the RS Loss may wait for the mask branch's quality (RS paper Table A.16)."""
from __future__ import annotations

from torch import Tensor

from mmdet.models.detectors import YOLACT
from mmdet.registry import MODELS


@MODELS.register_module()
class RankSortYOLACT(YOLACT):
    """YOLACT whose box head may label its positives by the mask branch's Dice (Table A.16).

    With the box head's ``label`` ``'iou'`` or ``'binary'`` this is mmdet's ``YOLACT``.  With
    ``'dice'`` or ``'iou_dice'`` the box head only prepares its losses; the protonet gets
    the box head's ``ranking_losses`` and returns them, computed with the Dice coefficients
    of the positives, next to its own ``loss_mask``.
    """

    def loss(self, batch_inputs: Tensor, batch_data_samples, **kwargs) -> dict:
        if not getattr(self.bbox_head, "needs_mask_quality", False):
            return super().loss(batch_inputs, batch_data_samples, **kwargs)
        x = self.extract_feat(batch_inputs)
        self.bbox_head.loss(x, batch_data_samples, **kwargs)  # prepares the losses, returns none
        positive_infos = self.bbox_head.get_positive_infos()
        return self.mask_head.loss(
            x, batch_data_samples, positive_infos=positive_infos, ranking_losses=self.bbox_head.ranking_losses, **kwargs
        )
