"""What the plugin's heads share: ranking targets, score-based weighting, task balancing.

* :func:`ranking_targets`: the targets of a ranking loss over all (prior, class) logits;
* :func:`score_weights` and :func:`weighted_mean`: a per-positive loss weighted by each
  positive's classification score (RS paper Eq. A.32, "score-based" weighting);
* :func:`ranking_based_weights`: aLRP's ranking-based importance (RS paper Eq. A.35);
* :func:`balanced`, :func:`magnitude_balanced`: value-based task balancing, lambda_t =
  L_cls / L_t (RS paper Sec. 5.3, Fig. 3c), magnitude-based balancing, or a fixed lambda;
* :class:`RankingATSSHeadMixin`: the (by default auxiliary-branch-free) ATSS-style head of
  RS-ATSS and RS-PAA (network, ranking / score-based classification, balanced GIoU box
  loss);
* :func:`anchor_candidates`, :func:`candidates_nms` and :class:`CandidateSelectionMixin`: the
  test-time candidate selection of mmdet 2.x (before 2.18) and of the official ranking
  heads, as a switch on the ATSS and RetinaNet heads (always used by the PAA head).
"""
from __future__ import annotations

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.layers import multiclass_nms
from mmdet.models.losses import QualityFocalLoss
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps, cat_boxes, get_box_tensor
from mmdet.utils import reduce_mean

from ...losses.negatives import ExactNegatives
from ...losses.scores import split_scores
from ...losses.step_sums import StepSums, smoothed_step, step_at_zero
from ..self_balancing import SelfBalancedLocalisation

EPS = 1e-12


def ranking_targets(logits: Tensor, labels: Tensor, label_weights: Tensor, pos: Tensor, quality) -> Tensor:
    """Targets for a ranking loss on ``logits`` (M x C): the positives' (prior, gt class)
    entries get ``quality`` (IoU / Dice for RS, 1 otherwise), the other entries of a
    prior 0 (negative), and priors with label weight 0 (ignored by the assigner) -1."""
    targets = torch.zeros_like(logits)
    targets[label_weights == 0] = -1.0
    if pos.numel():
        targets[pos, labels[pos]] = quality.to(targets.dtype) if isinstance(quality, Tensor) else quality
    return targets


def flat_anchor_targets(head, cls_scores, bbox_preds, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore=None) -> tuple:
    """An anchor head's outputs and assigned targets (``head.get_anchors`` /
    ``head.get_targets``) flattened into one ranking problem over all levels and images,
    level-major (all images of the first level, then the next level, ...) as the official
    code.  Returns ``(logits, labels, label_weights, anchors, deltas, bbox_targets)``:
    logits (M x ``cls_out_channels``, float) and deltas (M x ``encode_size``, float) of the
    M anchors, their labels, label weights, anchor boxes and box targets."""
    featmap_sizes = [featmap.size()[-2:] for featmap in cls_scores]
    assert len(featmap_sizes) == head.prior_generator.num_levels
    anchor_list, valid_flag_list = head.get_anchors(featmap_sizes, batch_img_metas, device=cls_scores[0].device)
    labels_list, label_weights_list, bbox_targets_list, _, _ = head.get_targets(
        anchor_list, valid_flag_list, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore=batch_gt_instances_ignore
    )
    num_levels = len(cls_scores)
    anchors = torch.cat(
        [get_box_tensor(cat_boxes([per_image[lvl] for per_image in anchor_list])) for lvl in range(num_levels)]
    )
    labels = torch.cat([x.reshape(-1) for x in labels_list])
    label_weights = torch.cat([x.reshape(-1) for x in label_weights_list])
    bbox_targets = torch.cat([x.reshape(-1, x.size(-1)) for x in bbox_targets_list])
    logits = torch.cat([s.permute(0, 2, 3, 1).reshape(-1, head.cls_out_channels) for s in cls_scores])
    deltas = torch.cat([b.permute(0, 2, 3, 1).reshape(-1, head.bbox_coder.encode_size) for b in bbox_preds])
    return logits.float(), labels, label_weights, anchors, deltas.float(), bbox_targets


def apply_ranking_loss(loss_rank, logits: Tensor, targets: Tensor, loc_errors: Tensor | None = None) -> dict:
    """Run ``loss_rank`` on the flattened logits; aLRP also gets the positives' localisation
    errors (one positive per positive row: their flat order is the row order)."""
    flat_logits, flat_targets = logits.reshape(-1), targets.reshape(-1)
    if loss_rank.needs_loc_errors:
        return loss_rank(flat_logits, flat_targets, loc_errors if loc_errors is not None else logits.new_zeros(0))
    return loss_rank(flat_logits, flat_targets)


def score_weights(logits: Tensor) -> Tensor:
    """Each row's classification score: the max over classes of the sigmoid, detached."""
    return logits.detach().sigmoid().max(dim=-1).values


def weighted_mean(losses: Tensor, weights: Tensor) -> Tensor:
    """``sum_i w_i l_i / sum_i w_i`` (0 / 0 -> 0)."""
    return (weights * losses).sum() / weights.sum().clamp_min(EPS)


def ranking_based_weights(logits: Tensor, targets: Tensor, rank_delta: float, numerator_delta: float) -> Tensor:
    """The ranking-based importance of each positive (aLRP Loss; RS paper Eq. A.35):
    w_i = 1/|P| sum_{k in P} H(s_i - s_k) / rank(k), with rank(k) = 1 + sum_{j in P, j != k}
    H(s_j - s_k) + N_FP(k) smoothed by ``rank_delta`` and the numerator's step by
    ``numerator_delta`` (aLRP's default: 0, the hard step).  Positives in flat order, detached.
    """
    problem = split_scores(logits.detach(), targets, "ranking-based weights")
    scores = problem.pos_logits
    step = StepSums(scores, rank_delta)
    false_pos = ExactNegatives(step, problem).false_positives
    rank = 1.0 + step.anchor_sums(scores, step.anchor_intervals) - step_at_zero(rank_delta) + false_pos
    above = smoothed_step(scores[:, None] - scores[None, :], numerator_delta)  # [i, k] = H(s_i - s_k)
    return ((above @ (1.0 / rank)) / scores.numel()).to(logits.dtype)


def value_balanced(loss: Tensor, reference: Tensor) -> Tensor:
    """``loss`` scaled to the value of ``reference`` (RS paper: lambda = L_cls / L_t, detached)."""
    denominator = loss.detach()
    if denominator.item() <= 0:
        return loss  # a perfect (zero) loss: nothing to balance
    return loss * (reference.detach() / denominator)


def balanced(loss: Tensor, cls_loss: Tensor, task_balance) -> Tensor:
    """``task_balance``: ``'value'`` (lambda = L_cls / loss, both detached) or a fixed number."""
    if task_balance == "value":
        return value_balanced(loss, cls_loss)
    return loss * task_balance


def check_weighting(weighting: str, task_balance, allowed=("score", "none"), balances=("value",)) -> None:
    if weighting not in allowed:
        raise ValueError(f"weighting must be one of {allowed}, got {weighting!r}")
    if task_balance not in balances and not isinstance(task_balance, (int, float)):
        raise ValueError(f"task_balance must be one of {balances} or a number, got {task_balance!r}")


def check_positive_weight(value, name: str, owner: str) -> float:
    """``value`` as a float if it is a positive number (not a bool), else a ValueError
    naming ``owner``'s argument ``name`` (a head's overall loss weight)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{owner}: {name} must be a positive number, got {value!r}")
    return float(value)


def magnitude_balanced(loss: Tensor, cls_loss: Tensor, logits: Tensor, box_outputs: Tensor) -> Tensor:
    """``loss`` times lambda = |dL_cls/ds|_1 / |dL_box/db|_1 (RS paper Sec. 5.3 (ii), Table A.11
    "magnitude"): the L1 norms of the gradients w.r.t. the classification outputs ``logits``
    and the box regression outputs ``box_outputs``, detached."""
    (cls_grad,) = torch.autograd.grad(cls_loss, logits, retain_graph=True)
    (box_grad,) = torch.autograd.grad(loss, box_outputs, retain_graph=True)
    denominator = box_grad.abs().sum()
    if denominator.item() <= 0:
        return loss
    return loss * (cls_grad.abs().sum() / denominator).detach()


class RankingATSSHeadMixin(SelfBalancedLocalisation):
    """ATSS-style head (``ATSSHead`` or ``PAAHead``), its classifier trained by ``loss_rank``
    (or a score-based ``loss_cls``) on all logits.

    The box loss is GIoU per positive, weighted by the instance-level importance of RS
    paper Eq. A.32 / Table A.11 (``box_weighting``: ``'score'`` the max class score,
    ``'iou'`` the IoU of the prediction, ``'centerness'`` the anchor's centerness,
    ``'ranking'`` aLRP's ranking-based weight (Eq. A.35; ``ranking_delta`` = delta_loc of
    Table A.13, None for aLRP's default), ``'none'`` uniform; all detached), then
    balanced (``task_balance``: ``'value'``, ``'magnitude'`` or a constant lambda).  With
    aLRP Loss it is aLRP's localisation component times the self-balancing weight instead.

    The auxiliary branch (ATSS's centerness, PAA's IoU prediction) is removed unless
    ``aux_head`` (the "Aux. head" rows of RS paper Table 2): then it is trained as in
    mmdet (``loss_centerness``, unbalanced) and scales the scores at test time, and the
    head's :meth:`aux_loss` gives its loss, named :attr:`aux_loss_name`.
    """

    BOX_WEIGHTINGS = ("score", "iou", "centerness", "ranking", "none")
    TASK_BALANCES = ("value", "magnitude")
    aux_loss_name = "loss_aux"

    def init_ranking(
        self,
        loss_rank: dict | None,
        box_weighting: str,
        task_balance,
        sb_initial: float,
        ranking_delta: float | None = None,
        aux_head: bool = False,
    ) -> None:
        self.aux_head = bool(aux_head)
        if not self.aux_head:
            del self.loss_centerness, self.atss_centerness  # ATSS's centerness / PAA's IoU branch
        self.ranking_delta = ranking_delta
        check_weighting(box_weighting, task_balance, self.BOX_WEIGHTINGS, self.TASK_BALANCES)
        self.box_weighting = box_weighting
        self.task_balance = task_balance
        self.loss_rank = MODELS.build(loss_rank) if loss_rank is not None else None
        alrp = self.loss_rank is not None and self.loss_rank.needs_loc_errors
        self.init_self_balancing(sb_initial if alrp else None)

    def forward_single(self, x: Tensor, scale) -> tuple[Tensor, ...]:
        cls_feat = x
        reg_feat = x
        for cls_conv in self.cls_convs:
            cls_feat = cls_conv(cls_feat)
        for reg_conv in self.reg_convs:
            reg_feat = reg_conv(reg_feat)
        outputs = (self.atss_cls(cls_feat), scale(self.atss_reg(reg_feat)).float())
        return outputs + (self.atss_centerness(reg_feat),) if self.aux_head else outputs

    def split_loss_inputs(self, args: tuple, kwargs: dict) -> tuple:
        """``(aux_preds, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore)`` from
        what mmdet passes after ``cls_scores, bbox_preds`` (the aux predictions come first
        when the head has the auxiliary branch; None otherwise)."""
        args = list(args)
        aux_preds = args.pop(0) if self.aux_head else None
        names = ("batch_gt_instances", "batch_img_metas", "batch_gt_instances_ignore")
        values = {**dict(zip(names, args)), **kwargs}
        return aux_preds, values["batch_gt_instances"], values["batch_img_metas"], values.get("batch_gt_instances_ignore")

    def ranking_losses(self, logits, labels, label_weights, anchors, deltas, bbox_targets, aux_logits=None) -> dict:
        """Classification loss on ``logits`` (M x C), the balanced box loss of the positives
        and, with the auxiliary branch, its loss on ``aux_logits`` (M,).

        ``bbox_targets`` are gt boxes (ATSS and PAA regress decoded boxes).
        """
        pos = ((labels >= 0) & (labels < self.num_classes)).nonzero().squeeze(1)
        if pos.numel() == 0:
            losses = {**self._classification(logits, labels, label_weights, pos, None, None), "loss_bbox": deltas.sum() * 0}
            if self.aux_head:
                losses[self.aux_loss_name] = aux_logits.sum() * 0
            return losses
        pred_boxes = self.bbox_coder.decode(anchors[pos], deltas[pos])
        gt_boxes = bbox_targets[pos]
        ious = bbox_overlaps(pred_boxes.detach(), gt_boxes, is_aligned=True)
        losses = self._task_losses(logits, labels, label_weights, pos, anchors, deltas, pred_boxes, gt_boxes, ious)
        if self.aux_head:
            losses[self.aux_loss_name] = self.aux_loss(aux_logits[pos], anchors[pos], gt_boxes, ious)
        return losses

    def aux_loss(self, aux_logits: Tensor, pos_anchors: Tensor, gt_boxes: Tensor, ious: Tensor) -> Tensor:
        """The auxiliary branch's loss on the positives (defined by the head)."""
        raise NotImplementedError

    def _task_losses(self, logits, labels, label_weights, pos, anchors, deltas, pred_boxes, gt_boxes, ious) -> dict:
        """Classification and balanced box losses of a batch with positives (``ious`` detached)."""
        giou = self.loss_bbox(pred_boxes, gt_boxes, reduction_override="none")
        terms = self._classification(logits, labels, label_weights, pos, ious, giou)
        if self.sb_initial is not None:  # aLRP: its own localisation loss, self-balanced
            return {**terms, "loss_bbox": self.self_balance(terms["loss_cls"], terms.pop("loss_bbox"))}
        if self.box_weighting == "ranking":
            weights = self._ranking_weights(logits, labels, label_weights, pos)
        else:
            weights = self._box_weights(logits[pos], ious, anchors[pos], gt_boxes)
        loss_bbox = giou.mean() if weights is None else weighted_mean(giou, weights)
        if self.task_balance == "magnitude":
            return {**terms, "loss_bbox": magnitude_balanced(loss_bbox, sum(terms.values()), logits, deltas)}
        return {**terms, "loss_bbox": balanced(loss_bbox, sum(terms.values()), self.task_balance)}

    def _ranking_weights(self, logits, labels, label_weights, pos) -> Tensor:
        """aLRP's default smooths only the rank (with the ranking loss's delta, 1.0 without
        one); ``ranking_delta`` = delta_loc smooths both (RS paper Table A.13)."""
        targets = ranking_targets(logits, labels, label_weights, pos, 1.0).reshape(-1)
        if self.ranking_delta is None:
            rank_delta = self.loss_rank.delta if self.loss_rank is not None else 1.0
            return ranking_based_weights(logits.reshape(-1), targets, rank_delta, 0.0)
        return ranking_based_weights(logits.reshape(-1), targets, self.ranking_delta, self.ranking_delta)

    def _box_weights(self, pos_logits, ious, pos_anchors, gt_boxes) -> Tensor | None:
        if self.box_weighting == "score":
            return score_weights(pos_logits)
        if self.box_weighting == "iou":
            return ious.detach()
        if self.box_weighting == "centerness":
            return self.centerness_target(pos_anchors, gt_boxes).detach()
        return None

    def _classification(self, logits, labels, label_weights, pos, ious, giou) -> dict:
        if self.loss_rank is None:
            return {"loss_cls": self._score_based(logits, labels, label_weights, pos, ious)}
        quality = ious if (self.loss_rank.continuous_labels and pos.numel()) else 1.0
        targets = ranking_targets(logits, labels, label_weights, pos, quality)
        return apply_ranking_loss(self.loss_rank, logits, targets, giou)

    def _score_based(self, logits, labels, label_weights, pos, ious) -> Tensor:
        """Focal Loss (binary labels) or QFL (IoU labels), averaged over positives."""
        avg_factor = reduce_mean(logits.new_tensor(float(max(pos.numel(), 1)))).item()
        if isinstance(self.loss_cls, QualityFocalLoss):
            scores = logits.new_zeros(labels.shape)
            if pos.numel():
                scores[pos] = ious.to(scores.dtype)
            return self.loss_cls(logits, (labels, scores), label_weights, avg_factor=avg_factor)
        return self.loss_cls(logits, labels, label_weights, avg_factor=avg_factor)


# ---------------------------------------------------------------------- test-time candidates
TEST_CANDIDATES = ("pairs", "anchors")


def anchor_candidates(head, cls_score_list, bbox_pred_list, mlvl_priors, img_meta, nms_pre, rescale=False, score_factor_list=None):
    """The test-time candidates of one image as mmdet 2.x selected them: per level, the
    ``nms_pre`` anchors with the highest *maximum* class probability, each with *all* its
    classes (mmdet <= 2.17 ``AnchorHead._get_bboxes_single``, kept by the official
    ``RankBasedATSSHead`` / ``RankBasedPAAHead`` of the RankSortLoss (mmdet 2.8) and
    BucketedRankingBasedLosses (mmdet 2.25.3) repositories).

    ``score_factor_list`` (ATSS's centerness logits, or None): the probabilities are first
    multiplied by the sigmoid of the factor, as mmdet 2.8's ``ATSSHead`` ranks anchors by
    max(score x centerness) and its ``multiclass_nms`` thresholds and suppresses that product.

    Returns the decoded boxes (N x 4, clipped to ``img_shape``; divided by the scale factor
    with ``rescale``) and their probabilities (N x C).  Sigmoid classifiers only.
    """
    if not head.use_sigmoid_cls:
        raise ValueError("anchor_candidates: the head must use a sigmoid classifier")
    factors = score_factor_list if score_factor_list is not None else [None] * len(cls_score_list)
    mlvl_bboxes, mlvl_scores = [], []
    for cls_score, bbox_pred, factor, priors in zip(cls_score_list, bbox_pred_list, factors, mlvl_priors):
        scores = cls_score.permute(1, 2, 0).reshape(-1, head.cls_out_channels).sigmoid()
        deltas = bbox_pred.permute(1, 2, 0).reshape(-1, head.bbox_coder.encode_size)
        if factor is not None:
            scores = scores * factor.permute(1, 2, 0).reshape(-1, 1).sigmoid()
        if 0 < nms_pre < scores.shape[0]:
            top = scores.max(dim=1).values.topk(nms_pre).indices
            priors, deltas, scores = priors[top], deltas[top], scores[top]
        mlvl_bboxes.append(get_box_tensor(head.bbox_coder.decode(priors, deltas, max_shape=img_meta["img_shape"])))
        mlvl_scores.append(scores)
    bboxes = torch.cat(mlvl_bboxes)
    if rescale:
        bboxes = bboxes / bboxes.new_tensor(img_meta["scale_factor"]).repeat((1, 2))
    return bboxes, torch.cat(mlvl_scores)


def candidates_nms(bboxes: Tensor, scores: Tensor, cfg) -> tuple[Tensor, Tensor]:
    """mmdet's ``multiclass_nms`` over the candidates (N x 4 boxes, N x C probabilities):
    every (candidate, class) with probability > ``score_thr``, class-wise NMS (``cfg.nms``),
    the best ``max_per_img``.  Returns ``(det_bboxes (K x 5, score last), det_labels)``."""
    padded = torch.cat([scores, scores.new_zeros(scores.shape[0], 1)], dim=1)  # background column
    return multiclass_nms(bboxes, padded, cfg.score_thr, cfg.nms, cfg.max_per_img)


class CandidateSelectionMixin:
    """The ``test_candidates`` switch of a sigmoid dense head (put it first among the bases).

    * ``'pairs'`` (mmdet >= 2.18 and 3.x, ``BaseDenseHead``): per level, the ``nms_pre``
      (anchor, class) pairs with the highest probabilities above ``score_thr``, then
      class-wise NMS; an anchor whose best class is kept may lose its other classes.
    * ``'anchors'`` (mmdet <= 2.17 and the official ranking heads): per level, the
      ``nms_pre`` anchors with the highest maximum class probability, then every class of
      those anchors above ``score_thr`` enters the class-wise NMS (:func:`anchor_candidates`,
      :func:`candidates_nms`).  Score factors (ATSS's centerness) multiply the
      probabilities before the selection, the threshold and NMS, as in mmdet 2.8; no
      ``min_bbox_size`` filter (the 2.x heads have none).

    Without score factors the two keep the same pairs on a level whose pairs above
    ``score_thr`` are at most ``nms_pre`` and all belong to anchors among the ``nms_pre``
    best; otherwise ``'anchors'`` can keep up to C x ``nms_pre`` pairs of a level (all
    classes of its best anchors) where ``'pairs'`` keeps ``nms_pre`` (from any anchors).
    """

    def init_test_candidates(self, test_candidates: str) -> None:
        if test_candidates not in TEST_CANDIDATES:
            raise ValueError(f"test_candidates must be one of {TEST_CANDIDATES}, got {test_candidates!r}")
        self.test_candidates = test_candidates

    def _predict_by_feat_single(self, cls_score_list, bbox_pred_list, score_factor_list, mlvl_priors, img_meta, cfg=None, rescale=False, with_nms=True) -> InstanceData:
        if self.test_candidates == "pairs":
            return super()._predict_by_feat_single(
                cls_score_list, bbox_pred_list, score_factor_list, mlvl_priors, img_meta, cfg, rescale, with_nms
            )
        cfg = self.test_cfg if cfg is None else cfg
        factors = score_factor_list if score_factor_list[0] is not None else None
        bboxes, scores = anchor_candidates(
            self, cls_score_list, bbox_pred_list, mlvl_priors, img_meta, cfg.get("nms_pre", -1), rescale, factors
        )
        results = InstanceData()
        if with_nms:
            det_bboxes, det_labels = candidates_nms(bboxes, scores, cfg)
            results.bboxes, results.scores, results.labels = det_bboxes[:, :-1], det_bboxes[:, -1], det_labels
        else:  # test-time augmentation merges the (candidate, class) pairs above the threshold
            inds, labels = (scores > cfg.score_thr).nonzero(as_tuple=True)
            results.bboxes, results.scores, results.labels = bboxes[inds], scores[inds, labels], labels
        return results
