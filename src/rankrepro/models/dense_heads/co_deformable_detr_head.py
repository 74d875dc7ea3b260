"""The one-to-one (query) head of Co-Deformable-DETR (Zong et al., "DETRs with Collaborative
Hybrid Assignments Training", ICCV 2023), on mmdet 3.x's :class:`DeformableDETRHead`.

Besides the Hungarian-matched losses of Deformable DETR (mmdet's, unchanged: every decoder
layer and, two-stage, the encoder proposals), the head computes the losses of the
*customised positive queries* (paper Sec. 3.3, Eq. 5-6): every auxiliary head (ATSS, the
Faster R-CNN RoI head, ...) hands over its anchors / proposals with their assigned labels and
boxes (``pos_coords``); :meth:`CoDeformableDETRHead.get_aux_targets` turns them into one
batch of queries per auxiliary head and the targets of each query, and
:meth:`CoDeformableDETRHead.loss_aux` computes their losses with these fixed targets (no
Hungarian matching) on every decoder layer, weighted by ``lambda_1`` (the paper's
lambda_1 = 1.0), as the official ``get_aux_targets`` / ``loss_aux`` / ``loss_single_aux``
(``projects/models/co_deformable_detr_head.py`` of Sense-X/Co-DETR).

**One override point for other losses.** Every loss of this head -- each decoder layer's
matched queries, the encoder proposals and the auxiliary queries -- ends in
:meth:`CoDeformableDETRHead.loss_by_targets`::

    loss_by_targets(cls_scores, bbox_preds, labels, label_weights, bbox_targets,
                    bbox_weights, num_total_pos, num_total_neg, batch_img_metas)
        -> (loss_cls, loss_bbox, loss_iou)

with ``cls_scores`` (bs, Q, C) logits, ``bbox_preds`` (bs, Q, 4) normalised (cx, cy, w, h),
``labels`` (bs*Q,) (background = ``num_classes``), ``label_weights`` (bs*Q,),
``bbox_targets`` (bs*Q, 4) normalised (cx, cy, w, h) (meaningful where ``bbox_weights`` is
1), ``bbox_weights`` (bs*Q, 4), the positive / negative counts of the batch, and the images'
meta (``img_shape`` scales the boxes to pixels for the IoU loss).  Its classification part is
:meth:`CoDeformableDETRHead.classification_loss` (``cls_scores`` flattened to (bs*Q, C)).
A ranking-loss head (e.g. BRS for the one-to-one head) overrides ``loss_by_targets`` (it
needs the boxes for IoU labels and the scores for score-weighted box losses) and so changes
the matched, encoder and auxiliary-query losses at once (:func:`image_factors` gives the
per-query pixel scale of the boxes).

Differences from the official code (all numerically irrelevant to the default config):

* ``use_zero_padding`` (zero-padded auxiliary queries with a self-attention mask) is not
  ported; every official Co-Deformable-DETR config leaves it ``False``: the auxiliary
  queries of an image are padded with randomly chosen *negative* anchors / proposals of the
  same head (label background, label weight 1, box weight 0) and attend to each other
  without a mask, as here.
* Where an auxiliary head has fewer negatives than padding slots the official code breaks:
  ``randperm(num_neg)[:padding]`` leaves the image short, so its batch ``torch.cat`` fails
  (images short by different amounts) or, when it stacks, ``loss_single_aux``'s bare
  ``except`` turns that head's query losses into zeros (the label weights keep the full
  length); here the negatives are drawn with replacement, and an image without any
  candidate raises a ``ValueError``.
* The official ``loss_single_aux`` returns zero losses when the targets do not reshape to
  the predictions (a bare ``except``); here a shape mismatch raises.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from mmdet.models.dense_heads import DeformableDETRHead
from mmdet.models.losses import QualityFocalLoss
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps, bbox_xyxy_to_cxcywh
from mmdet.utils import InstanceList, reduce_mean

AUX_KINDS = ("atss", "rcnn")


def check_pos_coords(pos_coords, num_images: int) -> tuple:
    """Validate an auxiliary head's ``pos_coords`` and return ``(coords, labels, targets,
    feats, kind)`` (``feats`` ``None`` for the 4-tuple form).

    The forms (the contract between the auxiliary heads and this head; lists have one
    entry per image):

    * ``(coords, labels, targets, kind)``: ``coords`` Tensor[N_i, 4] (x1, y1, x2, y2, input
      pixels) of *all* the head's anchors, ``labels`` LongTensor[N_i] (background =
      ``num_classes``), ``targets`` Tensor[N_i, 4] (x1, y1, x2, y2: the assigned gt box of
      each positive; anything for negatives), ``kind`` ``'atss'``: the query content comes
      from the encoder memory at each anchor's location (the anchors must be level-major,
      location-major and anchor-minor over the auxiliary feature pyramid, as mmdet's anchor
      generators order them);
    * ``(coords, labels, targets, feats, kind)``: as above plus ``feats`` Tensor[N_i, C],
      the content feature of each box (the RoI head: its sampled proposals and their
      RoI features averaged over the RoI, as the official ``CoStandardRoIHead``);
      ``kind`` ``'rcnn'`` requires this form.
    """
    if not isinstance(pos_coords, (tuple, list)) or len(pos_coords) not in (4, 5):
        raise ValueError(
            "pos_coords must be (coords, labels, targets, kind) or (coords, labels, targets, feats, kind), "
            f"got {type(pos_coords).__name__} of length {len(pos_coords) if isinstance(pos_coords, (tuple, list)) else '-'}"
        )
    kind = pos_coords[-1]
    if kind not in AUX_KINDS:
        raise ValueError(f"pos_coords kind must be one of {AUX_KINDS}, got {kind!r}")
    coords, labels, targets = pos_coords[:3]
    feats = pos_coords[3] if len(pos_coords) == 5 else None
    if kind == "rcnn" and feats is None:
        raise ValueError("pos_coords of kind 'rcnn' must carry the RoI features: (coords, labels, targets, feats, 'rcnn')")
    for name, value in (("coords", coords), ("labels", labels), ("targets", targets)) + (
        (("feats", feats),) if feats is not None else ()
    ):
        if len(value) != num_images:
            raise ValueError(f"pos_coords {name} has {len(value)} entries for {num_images} images")
    for i in range(num_images):
        n = coords[i].shape[0]
        if coords[i].shape != (n, 4) or targets[i].shape != (n, 4) or labels[i].shape != (n,):
            raise ValueError(
                f"pos_coords of image {i}: coords {tuple(coords[i].shape)}, labels {tuple(labels[i].shape)} and "
                f"targets {tuple(targets[i].shape)} must be (N, 4), (N,), (N, 4)"
            )
        if feats is not None and feats[i].shape[0] != n:
            raise ValueError(f"pos_coords of image {i}: {feats[i].shape[0]} feats for {n} boxes")
    return coords, labels, targets, feats, kind


def image_factors(batch_img_metas: Sequence[dict], num_queries: int, like: Tensor) -> Tensor:
    """(bs * Q, 4) ``[w, h, w, h]`` of each query's image (``img_shape``): scales the
    normalised boxes of ``num_queries`` queries per image to input pixels."""
    return torch.cat([like.new_tensor([m["img_shape"][1], m["img_shape"][0]] * 2).expand(num_queries, 4) for m in batch_img_metas])


def query_count(cls_scores: Tensor, labels: Tensor, bbox_targets: Tensor) -> tuple[int, int]:
    """``(num_imgs, num_queries)`` of one layer's (bs, Q, C) ``cls_scores``, after checking
    that the flat targets (``labels`` (bs * Q,), ``bbox_targets`` (bs * Q, 4)) match them."""
    num_imgs, num_queries = cls_scores.shape[:2]
    if labels.shape != (num_imgs * num_queries,) or bbox_targets.shape != (num_imgs * num_queries, 4):
        raise ValueError(
            f"targets {tuple(labels.shape)} / {tuple(bbox_targets.shape)} do not match {num_imgs} x {num_queries} queries"
        )
    return num_imgs, num_queries


@MODELS.register_module()
class CoDeformableDETRHead(DeformableDETRHead):
    """Deformable DETR head with the losses of Co-DETR's customised positive queries.

    Args:
        max_pos_coords (int): at most this many positives of an auxiliary head become queries
            per image (a random subset beyond it); official 300.
        min_aux_queries (int): an auxiliary head gives at least this many queries per image
            (padded with negatives); official 9 (``max(9, ...)`` in ``get_aux_targets``).
        lambda_1 (float): weight of the auxiliary queries' losses (paper Eq. 6); official 1.
        Other arguments: those of mmdet's ``DeformableDETRHead`` (``share_pred_layer``,
        ``num_pred_layer`` and ``as_two_stage`` are set by the detector).
    """

    def __init__(self, *args, max_pos_coords: int = 300, min_aux_queries: int = 9, lambda_1: float = 1.0, **kwargs) -> None:
        if max_pos_coords < 1 or min_aux_queries < 1:
            raise ValueError(f"max_pos_coords ({max_pos_coords}) and min_aux_queries ({min_aux_queries}) must be >= 1")
        self.max_pos_coords = max_pos_coords
        self.min_aux_queries = min_aux_queries
        self.lambda_1 = lambda_1
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------ losses from targets
    def loss_by_feat_single(self, cls_scores: Tensor, bbox_preds: Tensor, batch_gt_instances: InstanceList, batch_img_metas: list[dict]) -> tuple[Tensor, Tensor, Tensor]:
        """One decoder layer's (or the encoder proposals') Hungarian-matched losses: mmdet's
        ``DETRHead.loss_by_feat_single``, with the loss computation moved to
        :meth:`loss_by_targets`."""
        num_imgs = cls_scores.size(0)
        targets = self.get_targets(
            [cls_scores[i] for i in range(num_imgs)], [bbox_preds[i] for i in range(num_imgs)], batch_gt_instances, batch_img_metas
        )
        labels_list, label_weights_list, bbox_targets_list, bbox_weights_list, num_total_pos, num_total_neg = targets
        return self.loss_by_targets(
            cls_scores,
            bbox_preds,
            torch.cat(labels_list, 0),
            torch.cat(label_weights_list, 0),
            torch.cat(bbox_targets_list, 0),
            torch.cat(bbox_weights_list, 0),
            num_total_pos,
            num_total_neg,
            batch_img_metas,
        )

    def loss_by_targets(
        self,
        cls_scores: Tensor,
        bbox_preds: Tensor,
        labels: Tensor,
        label_weights: Tensor,
        bbox_targets: Tensor,
        bbox_weights: Tensor,
        num_total_pos: int,
        num_total_neg: int,
        batch_img_metas: Sequence[dict],
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Classification, L1 and IoU losses of one layer's queries with fixed targets
        (shapes in the module docstring): DETR's normalisation, as mmdet's
        ``DETRHead.loss_by_feat_single`` and the official ``loss_single_aux``: the
        classification loss averaged over ``num_total_pos + bg_cls_weight *
        num_total_neg`` (all-reduced if ``sync_cls_avg_factor``), the box losses over the
        all-reduced positive count (at least 1)."""
        _, num_queries = query_count(cls_scores, labels, bbox_targets)
        loss_cls = self.classification_loss(
            cls_scores.reshape(-1, self.cls_out_channels), labels, label_weights, num_total_pos, num_total_neg, bbox_preds.reshape(-1, 4), bbox_targets
        )
        num_pos = torch.clamp(reduce_mean(loss_cls.new_tensor([num_total_pos])), min=1).item()
        factors = image_factors(batch_img_metas, num_queries, bbox_preds)
        bbox_preds = bbox_preds.reshape(-1, 4)
        loss_iou = self.loss_iou(
            bbox_cxcywh_to_xyxy(bbox_preds) * factors, bbox_cxcywh_to_xyxy(bbox_targets) * factors, bbox_weights, avg_factor=num_pos
        )
        loss_bbox = self.loss_bbox(bbox_preds, bbox_targets, bbox_weights, avg_factor=num_pos)
        return loss_cls, loss_bbox, loss_iou

    def classification_loss(
        self,
        cls_scores: Tensor,
        labels: Tensor,
        label_weights: Tensor,
        num_total_pos: int,
        num_total_neg: int,
        bbox_preds: Tensor,
        bbox_targets: Tensor,
    ) -> Tensor:
        """``self.loss_cls`` on (M, C) logits, averaged as DETR (see
        :meth:`loss_by_targets`); a ``QualityFocalLoss`` gets the IoU of each positive's
        (detached) box with its target as the quality, as mmdet's DETR head.  ``bbox_preds``
        and ``bbox_targets``: (M, 4) normalised (cx, cy, w, h)."""
        cls_avg_factor = num_total_pos * 1.0 + num_total_neg * self.bg_cls_weight
        if self.sync_cls_avg_factor:
            cls_avg_factor = reduce_mean(cls_scores.new_tensor([cls_avg_factor]))
        cls_avg_factor = max(cls_avg_factor, 1)
        if isinstance(self.loss_cls, QualityFocalLoss):
            pos = ((labels >= 0) & (labels < self.num_classes)).nonzero().squeeze(1)
            scores = label_weights.new_zeros(labels.shape)
            scores[pos] = bbox_overlaps(
                bbox_cxcywh_to_xyxy(bbox_preds[pos]).detach(), bbox_cxcywh_to_xyxy(bbox_targets[pos]), is_aligned=True
            )
            return self.loss_cls(cls_scores, (labels, scores), label_weights, avg_factor=cls_avg_factor)
        return self.loss_cls(cls_scores, labels, label_weights, avg_factor=cls_avg_factor)

    # ------------------------------------------------------------- auxiliary positive queries
    def get_aux_targets(self, pos_coords, aux_feats: Sequence[Tensor], batch_img_metas: Sequence[dict]) -> dict:
        """The customised positive queries of one auxiliary head and their targets (the
        official ``get_aux_targets``).

        For each image: the head's positives (at most ``max_pos_coords``, a random subset
        beyond it), padded with randomly chosen negatives of the same head to ``max(
        min_aux_queries, min(max_pos_coords, most positives of an image in the batch))``
        queries.  Each query has a reference box (the anchor / proposal), a content feature
        (the encoder memory at the anchor's location for ``'atss'``, the given RoI feature
        for ``'rcnn'``), a label (background for the padding), label weight 1, and box
        target / weight 1 for positives only.

        Args:
            pos_coords: the auxiliary head's output (see :func:`check_pos_coords`).
            aux_feats: the auxiliary feature pyramid (bs, C, H_l, W_l) the head ran on.
            batch_img_metas: the images' meta (``img_shape`` normalises the boxes).

        Returns:
            dict with ``coords`` (bs, K, 4) normalised (cx, cy, w, h) reference boxes,
            ``feats`` (bs, K, C), ``labels`` (bs, K), ``label_weights`` (bs, K),
            ``bbox_targets`` (bs, K, 4) normalised (cx, cy, w, h), ``bbox_weights`` (bs, K, 4).
        """
        num_imgs = len(batch_img_metas)
        coords, labels, targets, roi_feats, kind = check_pos_coords(pos_coords, num_imgs)
        channels = aux_feats[0].shape[1]
        is_pos = [(lab >= 0) & (lab < self.num_classes) for lab in labels]
        most = max(int(p.sum()) for p in is_pos)
        num_queries = max(self.min_aux_queries, min(self.max_pos_coords, most))
        out = {k: [] for k in ("coords", "feats", "labels", "bbox_targets")}
        bbox_weights = coords[0].new_zeros((num_imgs, num_queries, 4))
        for i in range(num_imgs):
            if kind == "rcnn":
                feats = roi_feats[i]
            else:
                feats = torch.cat([f[i].reshape(channels, -1).t() for f in aux_feats])
                if coords[i].shape[0] % feats.shape[0]:
                    raise ValueError(
                        f"'atss' pos_coords: {coords[i].shape[0]} anchors of image {i} are not a multiple of the "
                        f"{feats.shape[0]} locations of the auxiliary feature pyramid"
                    )
                feats = feats.repeat_interleave(coords[i].shape[0] // feats.shape[0], dim=0)
            pos_inds = is_pos[i].nonzero().squeeze(1)
            neg_inds = (labels[i] == self.num_classes).nonzero().squeeze(1)
            if pos_inds.numel() > num_queries:
                pos_inds = pos_inds[torch.randperm(pos_inds.numel(), device=pos_inds.device)[:num_queries]]
            bbox_weights[i, : pos_inds.numel()] = 1.0
            padding = num_queries - pos_inds.numel()
            if padding:
                if neg_inds.numel() == 0:
                    raise ValueError(f"auxiliary head ({kind}) gave image {i} no negative to pad its queries with")
                if neg_inds.numel() >= padding:
                    pick = torch.randperm(neg_inds.numel(), device=neg_inds.device)[:padding]
                else:
                    pick = torch.randint(neg_inds.numel(), (padding,), device=neg_inds.device)
                pos_inds = torch.cat([pos_inds, neg_inds[pick]])
            img_h, img_w = batch_img_metas[i]["img_shape"][:2]
            factor = coords[i].new_tensor([img_w, img_h, img_w, img_h])
            out["coords"].append(bbox_xyxy_to_cxcywh(coords[i][pos_inds].detach() / factor))
            out["bbox_targets"].append(bbox_xyxy_to_cxcywh(targets[i][pos_inds] / factor))
            out["labels"].append(labels[i][pos_inds])
            out["feats"].append(feats[pos_inds])
        result = {k: torch.stack(v) for k, v in out.items()}
        result["label_weights"] = coords[0].new_ones((num_imgs, num_queries))
        result["bbox_weights"] = bbox_weights
        return result

    def loss_aux(self, hidden_states: Tensor, references: list[Tensor], aux_targets: dict, batch_img_metas: Sequence[dict]) -> dict:
        """Losses of one auxiliary head's customised positive queries on every decoder layer
        (the official ``loss_aux``): :meth:`loss_by_targets` with the targets of
        :meth:`get_aux_targets`, times ``lambda_1``.  Keys ``loss_{cls,bbox,iou}_aux`` (last
        layer) and ``d{l}.loss_{cls,bbox,iou}_aux`` (the others); the detector appends the
        auxiliary head's index."""
        all_cls_scores, all_bbox_preds = self(hidden_states, references)
        labels = aux_targets["labels"].reshape(-1)
        num_total_pos = int(((labels >= 0) & (labels < self.num_classes)).sum())
        num_total_neg = labels.numel() - num_total_pos
        losses = {}
        num_layers = all_cls_scores.shape[0]
        for layer, (cls_scores, bbox_preds) in enumerate(zip(all_cls_scores, all_bbox_preds)):
            loss_cls, loss_bbox, loss_iou = self.loss_by_targets(
                cls_scores,
                bbox_preds,
                labels,
                aux_targets["label_weights"].reshape(-1),
                aux_targets["bbox_targets"].reshape(-1, 4),
                aux_targets["bbox_weights"].reshape(-1, 4),
                num_total_pos,
                num_total_neg,
                batch_img_metas,
            )
            prefix = "" if layer == num_layers - 1 else f"d{layer}."
            losses[f"{prefix}loss_cls_aux"] = loss_cls * self.lambda_1
            losses[f"{prefix}loss_bbox_aux"] = loss_bbox * self.lambda_1
            losses[f"{prefix}loss_iou_aux"] = loss_iou * self.lambda_1
        return losses
