"""RS-YOLACT: YOLACT trained with Rank & Sort Loss (RS paper Sec. 6.2.2, Table 6, Fig. 3).

After the official ``RankSortYOLACTHead`` / ``RankSortYOLACTProtonet`` / ``RankSortYOLACT``
(kemaloksuz/RankSortLoss, mmdet 2.x), rebuilt on mmdet 3.3's ``YOLACTHead`` and
``YOLACTProtonet`` so that mmdet's ``YOLACT`` detector runs it unchanged:

* box head (:class:`RankSortYOLACTHead`): no OHEM (all anchors of the batch in one
  ranking problem, ``PseudoSampler``), sigmoid classifier trained by RS Loss; the
  positive's target is the IoU of its detached predicted box with its ground truth (a
  positive with IoU 0 thus counts as a negative, as in the official code); anchors that
  the assigner ignores (IoU in [0.4, 0.5)) take no part;
* continuous labels of RS paper Table A.16 (``label``): ``'iou'`` (above, the paper's
  choice), ``'binary'`` (1 for every positive: only ranking, the sorting term is 0),
  ``'dice'`` (the Dice coefficient of the positive's detached, cropped mask prediction,
  defined as in the mask loss below) and ``'iou_dice'`` ((IoU + Dice) / 2).  The mask
  labels exist only after the protonet has run, so with them the box head defers its
  losses: the detector :class:`~rankrepro.models.detectors.RankSortYOLACT` hands the
  protonet the box head's :meth:`RankSortYOLACTHead.ranking_losses`, which the protonet
  calls with the positives' Dice coefficients before it balances its own loss by the RS
  Loss value (the official detector, too, computes the RS Loss outside the box head);
* box regression: GIoU Loss of the decoded boxes, each positive weighted by its
  classification score (max sigmoid over classes, detached), normalised by the sum of
  the weights; value-based balancing: times lambda_box = L_RS / L_box (detached);
* mask head (:class:`RankSortYOLACTProtonet`): no semantic segmentation branch, no
  size-based normalisation (YOLACT divides each instance's mask loss by its gt box
  area), no ``loss_mask_weight`` = 6.125: Dice Loss, ``1 - sum_i w_i Dice_i / sum_i w_i``
  over all positives of the batch, ``w_i`` the same classification scores as for the
  boxes, times lambda_mask = L_RS / L_mask (detached);
* ``Dice_i = 2 sum(p t) / (sum p^2 + sum t^2 + 1e-5)`` over the prototype-resolution
  mask ``p`` (sigmoid of prototypes x coefficients, cropped by the gt box with 1 pixel
  padding, as YOLACT) and the gt mask ``t`` bilinearly resized to that resolution and
  thresholded at 0.5.

The box head passes what the mask head needs through mmdet's ``positive_infos``: each
positive's score weight (``scores``) and, as metainfo, the detached RS Loss value
(``rs_loss``) for the value-based balancing of the mask loss.

Losses: ``loss_rank``, ``loss_sort``, ``loss_bbox`` (box head; with mask labels they come
out of the protonet's loss dict) and ``loss_mask``.

Differences from the official code (numerically irrelevant unless stated):

* The official decodes predicted and target deltas relative to a unit anchor at the
  origin; here both are decoded with their anchors.  IoU and GIoU are invariant to that
  per-axis affine change, so labels and losses agree up to float rounding.
* Positives are ``0 <= label < num_classes`` (the official hard-codes ``< 80``).
* The official crashes on a batch without positives (undefined Dice, division by a zero
  loss); here every loss is then 0 and still connected to the graph.  A zero box or
  mask loss is left unbalanced (lambda would be undefined).
* Anchor indices of the positives are mapped back through the anchors' inside flags
  before the mask coefficients are gathered (mmdet 3.3's ``YOLACTHead`` indexes the
  coefficients with inside-subset indices, which differ when some anchors are invalid;
  with ``allowed_border=-1`` and unpadded 550x550 inputs both coincide).
* As the official and mmdet, masks are cropped with boxes normalised by ``img_shape``
  while the prototypes span the padded batch: exact for the fixed 550x550 (unpadded)
  inputs, slightly off for images padded in a batch.
* ``max_masks_to_train`` (mmdet's random subset of at most 100 masks per image) is
  not applied by default (the official RS mask loss uses every positive); set it to an
  int to cap memory.
* The official RS data pipeline is mmdet 2.x YOLACT's (PhotoMetricDistortion first,
  float32 images); the configs of this project keep mmdet 3.3's YOLACT pipeline
  (distortion last), for RS-YOLACT and the baseline alike.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.dense_heads import YOLACTHead, YOLACTProtonet
from mmdet.models.task_modules.prior_generators import anchor_inside_flags
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps

from .ranking_head import balanced, check_weighting, ranking_targets, score_weights, weighted_mean

DICE_EPS = 1e-5  # the official Dice coefficient's smoothing term (denominator only)
LABELS = ("iou", "binary", "dice", "iou_dice")  # the positives' RS labels of RS paper Table A.16
MASK_LABELS = ("dice", "iou_dice")  # labels that need the mask branch's quality


@MODELS.register_module()
class RankSortYOLACTHead(YOLACTHead):
    """YOLACT box head trained with ``loss_rank`` (RS Loss), GIoU Loss and no OHEM.

    Args:
        loss_rank: ranking loss of :mod:`rankrepro.models.losses` (``RankSortLoss``).
        box_weighting: ``'score'`` (GIoU of each positive weighted by its max class
            score) or ``'none'`` (mean over positives).
        task_balance: ``'value'`` (lambda_box = L_RS / L_box every iteration) or a
            fixed lambda_box.
        label: the positives' RS Loss labels (Table A.16): ``'iou'``, ``'binary'``,
            ``'dice'`` or ``'iou_dice'``; the last two need the :class:`RankSortYOLACT`
            detector and a :class:`RankSortYOLACTProtonet` without ``max_masks_to_train``.
        All other arguments as ``YOLACTHead``.  ``loss_cls`` only has to be a sigmoid
        loss (it fixes the classifier's output channels: no background class); it is
        not computed.  ``loss_bbox`` must give per-box losses on decoded boxes
        (``GIoULoss`` with ``reduction='none'``).  ``use_ohem`` must be False.
    """

    def __init__(
        self,
        *args,
        loss_rank: dict = dict(type="RankSortLoss", delta=0.5),
        loss_cls: dict = dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0),
        loss_bbox: dict = dict(type="GIoULoss", reduction="none"),
        box_weighting: str = "score",
        task_balance: str | float = "value",
        label: str = "iou",
        use_ohem: bool = False,
        **kwargs,
    ) -> None:
        if label not in LABELS:
            raise ValueError(f"label must be one of {LABELS}, got {label!r}")
        if use_ohem:
            raise ValueError("RankSortYOLACTHead ranks all anchors: use_ohem must be False")
        if not loss_cls.get("use_sigmoid", False):
            raise ValueError("RankSortYOLACTHead needs a sigmoid classifier (loss_cls.use_sigmoid=True)")
        check_weighting(box_weighting, task_balance)
        super().__init__(*args, loss_cls=loss_cls, loss_bbox=loss_bbox, use_ohem=False, **kwargs)
        del self.loss_cls  # the classifier is trained by loss_rank only
        self.loss_rank = MODELS.build(loss_rank)
        self.box_weighting = box_weighting
        self.task_balance = task_balance
        self.label = label
        self._ranking_inputs = None

    @property
    def needs_mask_quality(self) -> bool:
        """Whether the positives' labels need the mask branch's Dice coefficients."""
        return self.label in MASK_LABELS

    def loss_by_feat(
        self,
        cls_scores: list[Tensor],
        bbox_preds: list[Tensor],
        coeff_preds: list[Tensor],
        batch_gt_instances,
        batch_img_metas: list[dict],
        batch_gt_instances_ignore=None,
    ) -> dict:
        featmap_sizes = [featmap.size()[-2:] for featmap in cls_scores]
        device = cls_scores[0].device
        anchor_list, valid_flag_list = self.get_anchors(featmap_sizes, batch_img_metas, device=device)
        (labels_list, label_weights_list, bbox_targets_list, _, _, _) = self.get_targets(
            anchor_list,
            valid_flag_list,
            batch_gt_instances,
            batch_img_metas,
            batch_gt_instances_ignore=batch_gt_instances_ignore,
            unmap_outputs=True,
            return_sampling_results=True,
        )
        num_imgs = len(batch_img_metas)
        # image-major layout (num_imgs, num_anchors, ...): anchor index = per-image index
        logits = torch.cat([s.permute(0, 2, 3, 1).reshape(num_imgs, -1, self.cls_out_channels) for s in cls_scores], 1)
        deltas = torch.cat([b.permute(0, 2, 3, 1).reshape(num_imgs, -1, 4) for b in bbox_preds], 1)
        labels = torch.cat(labels_list, 1).reshape(-1)
        label_weights = torch.cat(label_weights_list, 1).reshape(-1)
        bbox_targets = torch.cat(bbox_targets_list, 1).reshape(-1, 4)
        anchors = torch.cat([torch.cat(a) for a in anchor_list]).reshape(-1, 4)
        scores = score_weights(logits)  # score-based weights, (N, A)
        inside_flags = [
            anchor_inside_flags(torch.cat(a), torch.cat(v), meta["img_shape"][:2], self.train_cfg["allowed_border"])
            for a, v, meta in zip(anchor_list, valid_flag_list, batch_img_metas)
        ]
        self._raw_positive_infos.update(coeff_preds=coeff_preds, scores=scores, inside_flags=inside_flags, rs_loss=None)
        self._ranking_inputs = (
            logits.reshape(-1, self.cls_out_channels), deltas.reshape(-1, 4), labels, label_weights, bbox_targets, anchors, scores.reshape(-1)
        )
        if self.needs_mask_quality:
            return {}  # RankSortYOLACT lets the protonet call ranking_losses with the Dice coefficients
        return self.ranking_losses()

    def ranking_losses(self, mask_quality: Tensor | None = None) -> dict:
        """RS Loss and balanced GIoU Loss of the batch that ``loss_by_feat`` prepared.

        Args:
            mask_quality: with ``label`` ``'dice'`` or ``'iou_dice'``, the Dice coefficient
                of every positive (detached), image by image, in anchor order (the order of
                :meth:`get_positive_infos`); otherwise None.
        """
        if self._ranking_inputs is None:
            raise RuntimeError("ranking_losses needs a loss_by_feat call of this batch first")
        inputs, self._ranking_inputs = self._ranking_inputs, None
        losses = self.rank_sort_losses(*inputs, mask_quality=mask_quality)
        self._raw_positive_infos["rs_loss"] = (losses["loss_rank"] + losses["loss_sort"]).detach()
        return losses

    def rank_sort_losses(self, logits, deltas, labels, label_weights, bbox_targets, anchors, scores, mask_quality=None) -> dict:
        """RS Loss on all ``logits`` (M x C) and the balanced GIoU Loss of the positives."""
        pos = ((labels >= 0) & (labels < self.num_classes)).nonzero().squeeze(1)
        if pos.numel() == 0:
            terms = self.loss_rank(logits.reshape(-1), ranking_targets(logits, labels, label_weights, pos, 1.0).reshape(-1))
            return {**terms, "loss_bbox": deltas.sum() * 0}
        pred_boxes = self.bbox_coder.decode(anchors[pos], deltas[pos])
        gt_boxes = self.bbox_coder.decode(anchors[pos], bbox_targets[pos])  # the official decodes its targets too
        ious = bbox_overlaps(pred_boxes.detach(), gt_boxes, is_aligned=True)
        targets = ranking_targets(logits, labels, label_weights, pos, self._positive_labels(ious, mask_quality))
        terms = self.loss_rank(logits.reshape(-1), targets.reshape(-1))
        giou = self.loss_bbox(pred_boxes, gt_boxes, reduction_override="none")
        loss_bbox = weighted_mean(giou, scores[pos]) if self.box_weighting == "score" else giou.mean()
        return {**terms, "loss_bbox": balanced(loss_bbox, sum(terms.values()), self.task_balance)}

    def _positive_labels(self, ious: Tensor, mask_quality: Tensor | None) -> Tensor:
        """The positives' RS labels for ``self.label`` (Table A.16)."""
        if self.label == "iou":
            return ious
        if self.label == "binary":
            return torch.ones_like(ious)
        if mask_quality is None or mask_quality.shape != ious.shape:
            got = None if mask_quality is None else tuple(mask_quality.shape)
            raise ValueError(f"label {self.label!r} needs the Dice coefficient of each of the {ious.numel()} positives, got {got}")
        dice = mask_quality.detach().to(ious.dtype)
        return dice if self.label == "dice" else (ious + dice) / 2

    def get_positive_infos(self) -> list[InstanceData]:
        """Per image: the positives' gt indices, gt boxes, mask coefficients and score weights.

        The RS Loss value of the batch rides along as metainfo ``rs_loss`` (for the value-based
        balancing of the mask loss; None while the RS Loss waits for the mask labels), and
        the head's ``label`` as metainfo ``label``.
        """
        raw = self._raw_positive_infos
        sampling_results = raw["sampling_results"]
        num_imgs = len(sampling_results)
        coeffs = torch.cat([c.permute(0, 2, 3, 1).reshape(num_imgs, -1, self.num_protos) for c in raw["coeff_preds"]], 1)
        infos = []
        for idx, result in enumerate(sampling_results):
            # sampling indices count the anchors inside the image; map them to all anchors
            anchor_inds = raw["inside_flags"][idx].nonzero().squeeze(1)[result.pos_inds]
            info = InstanceData(metainfo=dict(rs_loss=raw["rs_loss"], label=self.label))
            info.pos_assigned_gt_inds = result.pos_assigned_gt_inds
            info.pos_inds = anchor_inds
            info.coeffs = coeffs[idx][anchor_inds]
            info.bboxes = result.pos_gt_bboxes
            info.scores = raw["scores"][idx][anchor_inds]
            infos.append(info)
        return infos


@MODELS.register_module()
class RankSortYOLACTProtonet(YOLACTProtonet):
    """YOLACT protonet trained with score-weighted Dice Loss, value-balanced to RS Loss.

    Args:
        mask_weighting: ``'score'`` (each positive's Dice weighted by its classification
            score from the box head) or ``'none'`` (mean over positives).
        task_balance: ``'value'`` (lambda_mask = L_RS / L_mask every iteration) or a
            fixed lambda_mask.
        max_masks_to_train: None (every positive, as the official RS code) or mmdet's
            random cap per image.
        with_seg_branch: must be False (RS-YOLACT has no semantic segmentation head).
        All other arguments as ``YOLACTProtonet``; ``loss_mask_weight`` and
        ``loss_segm`` are not used.
    """

    def __init__(
        self,
        *args,
        mask_weighting: str = "score",
        task_balance: str | float = "value",
        max_masks_to_train: int | None = None,
        with_seg_branch: bool = False,
        **kwargs,
    ) -> None:
        if with_seg_branch:
            raise ValueError("RankSortYOLACTProtonet has no semantic segmentation branch")
        check_weighting(mask_weighting, task_balance)
        kwargs.pop("loss_mask_weight", None)
        kwargs.pop("loss_segm", None)
        super().__init__(*args, with_seg_branch=False, **kwargs)
        self.max_masks_to_train = max_masks_to_train
        self.mask_weighting = mask_weighting
        self.task_balance = task_balance

    def loss_by_feat(
        self, mask_preds, segm_preds, batch_gt_instances, batch_img_metas, positive_infos, ranking_losses=None, **kwargs
    ) -> dict:
        """``loss_mask``; with ``ranking_losses`` (the box head's, passed by
        :class:`RankSortYOLACT` for mask labels) also the box head's losses, computed with
        the positives' Dice coefficients as labels."""
        if positive_infos is None:
            raise ValueError("RankSortYOLACTProtonet needs positive_infos from RankSortYOLACTHead")
        label = positive_infos[0].metainfo.get("label", "iou")
        if label in MASK_LABELS and ranking_losses is None:
            raise ValueError(f"RS labels {label!r} need the mask branch's Dice: build the detector as 'RankSortYOLACT'")
        if ranking_losses is not None and self.max_masks_to_train is not None:
            raise ValueError("Dice labels need the Dice of every positive: set max_masks_to_train=None")
        cropped = self.crop_mask_preds(mask_preds, batch_img_metas, positive_infos)
        dice, weights = self._positive_dice(cropped, batch_gt_instances, positive_infos)
        losses = {} if ranking_losses is None else ranking_losses(dice.detach())
        if dice.numel() == 0:
            return {**losses, "loss_mask": sum(m.sum() for m in cropped) * 0}
        loss_mask = 1 - weighted_mean(dice, weights if self.mask_weighting == "score" else torch.ones_like(dice))
        rs_loss = (losses["loss_rank"] + losses["loss_sort"]).detach() if losses else positive_infos[0].metainfo.get("rs_loss")
        if self.task_balance == "value" and rs_loss is None:
            raise ValueError("value-based balancing needs the RS Loss value (positive_infos metainfo 'rs_loss')")
        return {**losses, "loss_mask": balanced(loss_mask, rs_loss, self.task_balance)}

    def _positive_dice(self, cropped, batch_gt_instances, positive_infos) -> tuple[Tensor, Tensor]:
        """Dice coefficient (with gradient) and score weight of every trained positive, image by image."""
        dice, weights = [], []
        for masks, gt_instances, info in zip(cropped, batch_gt_instances, positive_infos):
            selected = self._targets_single(masks, gt_instances, info)
            if selected is not None:
                preds, targets, image_weights = selected
                dice.append(dice_coefficient(preds.clamp(0, 1), targets))
                weights.append(image_weights)
        if not dice:
            return cropped[0].new_zeros(0), cropped[0].new_zeros(0)
        dice = torch.cat(dice)
        return dice, torch.cat(weights).to(dice.dtype)

    def _targets_single(self, masks: Tensor, gt_instances, info: InstanceData):
        """(predictions, targets, weights) of the positives of one image, or None."""
        num_pos = info.pos_assigned_gt_inds.numel()
        if num_pos == 0 or len(gt_instances) == 0:
            return None
        gt_inds = info.pos_assigned_gt_inds
        weights = info.scores if "scores" in info else masks.new_ones(num_pos)
        if self.max_masks_to_train is not None and num_pos > self.max_masks_to_train:
            keep = torch.randperm(num_pos, device=masks.device)[: self.max_masks_to_train]
            masks, gt_inds, weights = masks[keep], gt_inds[keep], weights[keep]
        gt_masks = gt_instances.masks.to_tensor(dtype=torch.bool, device=masks.device).float()
        with torch.no_grad():
            gt_masks = F.interpolate(gt_masks.unsqueeze(0), masks.shape[-2:], mode="bilinear", align_corners=False).squeeze(0)
            gt_masks = gt_masks.gt(0.5).float()
        return masks, gt_masks[gt_inds], weights


def dice_coefficient(preds: Tensor, targets: Tensor) -> Tensor:
    """Per-instance Dice coefficient of the official code: 2 sum(p t) / (sum p^2 + sum t^2 + 1e-5)."""
    preds = preds.reshape(preds.size(0), -1)
    targets = targets.reshape(targets.size(0), -1)
    intersection = (preds * targets).sum(dim=1)
    denominator = (preds * preds).sum(dim=1) + (targets * targets).sum(dim=1) + DICE_EPS
    return 2 * intersection / denominator

