"""RS-R-CNN heads: RankBasedShared2FCBBoxHead, RankBasedStandardRoIHead, RankBasedCascadeRoIHead,
RankBasedFCNMaskHead (RS paper Sec. 6.1.1, 6.2, App. C.2, C.5)."""

from __future__ import annotations

import pytest
import torch
from mmdet.models.task_modules import AssignResult
from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.registry import MODELS
from mmdet.models.roi_heads import CascadeRoIHead
from mmdet.structures.bbox import bbox2roi, bbox_overlaps
from mmengine.config import Config, ConfigDict
from mmengine.structures import InstanceData
from model_cases import assert_gradients_reach, hand_made_rois, random_batch, recorded, small_roi_box_head, total_loss

import rankrepro.models  # noqa: F401  (registers the heads)
from rankrepro.losses import alrp_loss, bucketed_rank_sort_loss, rank_sort_loss
from rankrepro.models.roi_heads.bbox_heads.rank_based_bbox_head import imbalance_logs
from rankrepro.models.roi_heads.rank_based_cascade_roi_head import predicted_labels
from rankrepro.models.roi_heads.rank_based_roi_head import cap_positives
from rankrepro.data.synthetic import CLASSES
from rankrepro.smoke import smoke_config

NUM_CLASSES = 3  # the hand-made batches
DET_CLASSES = len(CLASSES)  # the smoke detectors (synthetic dataset)
STDS = [0.1, 0.1, 0.2, 0.2]
NO_RCNN_SAMPLER = dict(type="RandomSampler", num=1e10, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True)
BASES = {
    "faster": "faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py",
    "mask": "mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py",
    "cascade": "cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py",
    "cascade_mask": "cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py",
}


# ---------------------------------------------------------------------------- helpers
def rank_based_rcnn(kind, tmp_path, sampler=NO_RCNN_SAMPLER, **bbox_overrides):
    """mmdet's Faster / Mask / Cascade R-CNN (smoke widths) with the rank-based R-CNN heads
    swapped in, every RoI kept (the official "no sampler"), at most 64 proposals an image."""
    cfg = smoke_config(Config.fromstring(f"_base_ = 'mmdet::{BASES[kind]}'", ".py"), tmp_path)
    model = cfg.model
    cascade = kind.startswith("cascade")
    model.roi_head.type = "RankBasedCascadeRoIHead" if cascade else "RankBasedStandardRoIHead"
    if cascade:
        model.roi_head.stage_loss_weights = [1, 1, 1]
    for head in model.roi_head.bbox_head if cascade else [model.roi_head.bbox_head]:
        settings = dict(
            type="RankBasedShared2FCBBoxHead",
            fc_out_channels=32,
            loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0),
            reg_decoded_bbox=True,
            loss_bbox=dict(type="GIoULoss", reduction="none"),
            **bbox_overrides,
        )
        for key, value in settings.items():  # replace, not merge (mmdet's SmoothL1 has a beta)
            head[key] = value
    if model.roi_head.get("mask_head") is not None:
        model.roi_head.mask_head.type = "RankBasedFCNMaskHead"
    for rcnn in model.train_cfg.rcnn if cascade else [model.train_cfg.rcnn]:
        rcnn.sampler = ConfigDict(sampler)
    model.train_cfg.rpn_proposal.max_per_img = 64
    model.test_cfg.rpn.max_per_img = 64
    detector = MODELS.build(model)
    detector.init_weights()
    return detector


def bbox_head(**overrides):
    return small_roi_box_head("RankBasedShared2FCBBoxHead", NUM_CLASSES, STDS, **overrides)


def fixed_batch(seed=0):
    """6 RoIs of one image, 3 classes: RoIs 0-2 positive (classes 2, 0, 1), 3-4 negative,
    5 ignored (label weight 0); class-specific deltas, gt boxes near the RoIs."""
    return hand_made_rois(NUM_CLASSES, seed)


def iou_targets(boxes, labels, gt):
    """The ranking targets of a :func:`fixed_batch`: each positive RoI's gt-class entry gets
    the IoU of its (detached) decoded box ``boxes`` with its gt box, RoI 5 (ignored) -1, the
    others 0."""
    targets = torch.zeros(6, NUM_CLASSES)
    targets[5] = -1.0
    targets[torch.arange(3), labels[:3]] = bbox_overlaps(boxes.detach(), gt[:3], is_aligned=True)
    return targets


def hand_rs_rcnn_losses(cls_score, bbox_pred, rois, labels, label_weights, gt):
    """RS-R-CNN's box-head losses written out (RS paper Eq. 6, A.32, Sec. 5.3) from
    ``rank_sort_loss`` and mmdet's decoder and GIoU."""
    pos = torch.tensor([0, 1, 2])
    deltas = bbox_pred.view(6, NUM_CLASSES, 4)[pos, labels[pos]]  # the gt class's box
    boxes = DeltaXYWHBBoxCoder(target_stds=STDS).decode(rois[pos, 1:], deltas)
    targets = iou_targets(boxes, labels, gt)
    rank, sort = rank_sort_loss(cls_score.reshape(-1), targets.reshape(-1), 0.5)
    giou = 1 - bbox_overlaps(boxes, gt[pos], mode="giou", is_aligned=True)
    weights = cls_score.detach()[pos].sigmoid().max(dim=1).values
    box = (weights * giou).sum() / weights.sum()
    box = box * ((rank + sort).detach() / box.detach())
    return rank, sort, box, weights


def sampling_result(pos_boxes, neg_boxes, gt_boxes, gt_labels):
    """A SamplingResult whose i-th positive is assigned to gt i."""
    priors = torch.cat([pos_boxes, neg_boxes])
    num_pos, total = len(pos_boxes), len(priors)
    gt_inds = torch.cat([torch.arange(1, num_pos + 1), torch.zeros(len(neg_boxes), dtype=torch.long)])
    labels = torch.cat([gt_labels[:num_pos], torch.full((len(neg_boxes),), -1)])
    assign = AssignResult(len(gt_boxes), gt_inds, torch.ones(total), labels=labels)
    return SamplingResult(
        torch.arange(num_pos),
        torch.arange(num_pos, total),
        priors,
        gt_boxes,
        assign,
        torch.zeros(total, dtype=torch.uint8),
    )


# ---------------------------------------------------------------------------- box head
def test_box_head_loss_equals_hand_computation():
    head = bbox_head()
    inputs = fixed_batch()
    losses, weights, cls_value = head.rank_based_loss(*inputs)
    rank, sort, box, hand_weights = hand_rs_rcnn_losses(*inputs)
    torch.testing.assert_close(losses["loss_roi_rank"], rank)
    torch.testing.assert_close(losses["loss_roi_sort"], sort)
    torch.testing.assert_close(losses["loss_roi_bbox"], box)
    torch.testing.assert_close(losses["loss_roi_bbox"], rank + sort)  # value balance: L_box = L_RS
    torch.testing.assert_close(weights, hand_weights)
    torch.testing.assert_close(cls_value, (rank + sort).detach())
    assert rank > 0 and sort > 0
    # gradients: the same as the hand computation's, for the classifier and the regressor
    cls_score, bbox_pred = inputs[0], inputs[1]
    ours = torch.autograd.grad(sum(v for k, v in losses.items() if "loss" in k), (cls_score, bbox_pred))
    theirs = torch.autograd.grad(rank + sort + box, (cls_score, bbox_pred))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)
    assert ours[1][5].abs().sum() == 0 and ours[1][0].abs().sum() > 0  # only positives regress
    assert ours[0][5].abs().sum() == 0  # the ignored RoI's logits get nothing


def test_box_head_iou_label_uses_the_gt_class_box():
    """Changing another class's deltas of a positive changes nothing; its gt class's does."""
    head = bbox_head()
    cls_score, bbox_pred, *rest = fixed_batch()
    base = head.rank_based_loss(cls_score, bbox_pred, *rest)[0]["loss_roi_sort"]
    other = bbox_pred.detach().clone()
    other[0, 0:4] += 1.0  # RoI 0 is class 2: class 0's deltas are irrelevant
    torch.testing.assert_close(head.rank_based_loss(cls_score, other, *rest)[0]["loss_roi_sort"], base)
    own = bbox_pred.detach().clone()
    own[0, 8:12] += 0.3
    assert not torch.isclose(head.rank_based_loss(cls_score, own, *rest)[0]["loss_roi_sort"], base)


def test_box_head_class_agnostic_regression():
    head = bbox_head(reg_class_agnostic=True)
    cls_score, bbox_pred, rois, labels, label_weights, gt = fixed_batch()
    deltas = bbox_pred.detach()[:, :4].clone().requires_grad_()
    losses = head.rank_based_loss(cls_score, deltas, rois, labels, label_weights, gt)[0]
    boxes = DeltaXYWHBBoxCoder(target_stds=STDS).decode(rois[:3, 1:], deltas[:3])
    targets = iou_targets(boxes, labels, gt)
    rank, sort = rank_sort_loss(cls_score.reshape(-1), targets.reshape(-1), 0.5)
    torch.testing.assert_close(losses["loss_roi_rank"], rank)
    torch.testing.assert_close(losses["loss_roi_sort"], sort)


def test_box_head_bucketed_rank_sort():
    head = bbox_head(loss_rank=dict(type="BucketedRankSortLoss", delta=0.5))
    inputs = fixed_batch(seed=1)
    losses = head.rank_based_loss(*inputs)[0]
    cls_score, bbox_pred, rois, labels, label_weights, gt = inputs
    boxes = DeltaXYWHBBoxCoder(target_stds=STDS).decode(
        rois[:3, 1:], bbox_pred.view(6, NUM_CLASSES, 4)[torch.arange(3), labels[:3]]
    )
    targets = iou_targets(boxes, labels, gt)
    brank, bsort = bucketed_rank_sort_loss(cls_score.reshape(-1), targets.reshape(-1), 0.5)
    torch.testing.assert_close(losses["loss_roi_rank"], brank)
    torch.testing.assert_close(losses["loss_roi_sort"], bsort)
    torch.testing.assert_close(losses["loss_roi_bbox"], brank + bsort)


def test_box_head_alrp_self_balanced():
    head = bbox_head(loss_rank=dict(type="aLRPLoss"), sb_initial=50)
    inputs = fixed_batch(seed=2)
    with pytest.raises(RuntimeError, match="ALRPSelfBalancingHook"):
        head.rank_based_loss(*inputs)
    head.set_self_balancing_period(10)
    losses = head.rank_based_loss(*inputs)[0]
    assert set(k for k in losses if k.startswith("loss")) == {"loss_cls", "loss_bbox"}
    cls_score, bbox_pred, rois, labels, label_weights, gt = inputs
    boxes = DeltaXYWHBBoxCoder(target_stds=STDS).decode(
        rois[:3, 1:], bbox_pred.view(6, NUM_CLASSES, 4)[torch.arange(3), labels[:3]]
    )
    targets = torch.zeros(6, NUM_CLASSES)
    targets[5] = -1
    targets[torch.arange(3), labels[:3]] = 1.0
    giou = 1 - bbox_overlaps(boxes, gt[:3], mode="giou", is_aligned=True)
    cls_loss, loc_loss = alrp_loss(cls_score.reshape(-1), targets.reshape(-1), giou)
    torch.testing.assert_close(losses["loss_cls"], cls_loss)
    torch.testing.assert_close(losses["loss_bbox"], 50 * loc_loss)


def test_box_head_without_positives():
    head = bbox_head()
    cls_score, bbox_pred, rois, _, label_weights, gt = fixed_batch()
    labels = torch.full((6,), NUM_CLASSES)
    losses, weights, cls_value = head.rank_based_loss(cls_score, bbox_pred, rois, labels, label_weights, gt)
    assert set(losses) == {"loss_roi_rank", "loss_roi_sort", "loss_roi_bbox"}  # no ratio without positives
    assert all(float(v) == 0 for v in losses.values()) and weights.numel() == 0 and float(cls_value) == 0
    sum(losses.values()).backward()
    assert cls_score.grad is not None and bbox_pred.grad is not None
    assert cls_score.grad.abs().sum() == 0 and bbox_pred.grad.abs().sum() == 0


def test_imbalance_logs_hand_made_case():
    # 3 classes: 2 positives, 5 negatives, 1 ignored negative
    labels = torch.tensor([0, 2, 3, 3, 3, 3, 3, 3])
    weights = torch.tensor([1.0, 1, 1, 1, 1, 1, 1, 0])
    logs = imbalance_logs(labels, weights, 3, "rcnn")
    assert logs["neg_per_pos_rcnn_instances"].item() == pytest.approx(5 / 2)
    assert logs["neg_per_pos_rcnn_tasks"].item() == pytest.approx((5 * 3 + 2 * 2) / 2)
    assert not any(v.requires_grad for v in logs.values())
    assert imbalance_logs(torch.tensor([3, 3]), torch.ones(2), 3, "rcnn") == {}
    # through the head, and mmengine does not train on them
    head = bbox_head()
    inputs = fixed_batch()
    losses = head.rank_based_loss(*inputs)[0]
    assert losses["neg_per_pos_rcnn_instances"].item() == pytest.approx(2 / 3)  # RoI 5 ignored
    assert losses["neg_per_pos_rcnn_tasks"].item() == pytest.approx((2 * 3 + 3 * 2) / 3)


def test_box_head_test_time_sigmoid_scores():
    """Sigmoid probabilities of every (RoI, class) above score_thr enter class-wise NMS."""
    head = bbox_head()
    rois = torch.tensor([[0, 10.0, 10, 40, 40], [0, 60, 60, 100, 100]])
    logits = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 1.0, -0.2]])
    deltas = torch.zeros(2, 4 * NUM_CLASSES)
    cfg = ConfigDict(score_thr=0.4, nms=dict(type="nms", iou_threshold=0.5), max_per_img=100)
    meta = dict(img_shape=(128, 128), scale_factor=(1.0, 1.0))
    result = head.predict_by_feat((rois,), (logits,), (deltas,), [meta], rcnn_test_cfg=cfg)[0]
    probs = logits.sigmoid()
    expected = sorted((float(probs[i, c]), c) for i in range(2) for c in range(3) if probs[i, c] > 0.4)
    got = sorted(zip(result.scores.tolist(), result.labels.tolist()))
    assert [c for _, c in got] == [c for _, c in expected]
    torch.testing.assert_close(torch.tensor([s for s, _ in got]), torch.tensor([s for s, _ in expected]))
    assert len(expected) == 4  # (0, 0), (0, 2), (1, 1), (1, 2): softmax would keep fewer


def test_box_head_rejects_bad_config():
    with pytest.raises(ValueError, match="use_sigmoid"):
        bbox_head(loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=False))
    with pytest.raises(ValueError, match="reg_decoded_bbox"):
        bbox_head(reg_decoded_bbox=False)
    head = bbox_head()
    assert head.fc_cls.out_features == NUM_CLASSES
    with pytest.raises(ValueError, match="num_classes"):
        head.rank_based_loss(torch.zeros(2, NUM_CLASSES + 1), *fixed_batch()[1:])


# ---------------------------------------------------------------------------- mask head
def test_mask_head_loss_equals_hand_computation():
    head = MODELS.build(
        dict(type="RankBasedFCNMaskHead", num_convs=1, in_channels=2, conv_out_channels=2, num_classes=NUM_CLASSES)
    )
    g = torch.Generator().manual_seed(0)
    mask_preds = torch.randn(3, NUM_CLASSES, 5, 5, generator=g).requires_grad_()
    targets = (torch.rand(3, 5, 5, generator=g) > 0.5).float()
    labels = torch.tensor([1, 0, 2])
    weights = torch.tensor([0.9, 0.2, 0.6])
    cls_value = torch.tensor(0.7)
    loss = head.rank_based_loss(mask_preds, targets, labels, weights, cls_value)
    dice_losses = []
    for i in range(3):
        p = mask_preds[i, labels[i]].sigmoid()
        t = targets[i]
        dice_losses.append(1 - 2 * (p * t).sum() / ((p**2).sum() + (t**2).sum() + 1e-5))
    hand = sum(w * d for w, d in zip(weights, dice_losses)) / weights.sum()
    hand = hand * (cls_value / hand.detach())
    torch.testing.assert_close(loss, hand)
    torch.testing.assert_close(loss.detach(), cls_value)
    (g_ours,) = torch.autograd.grad(loss, mask_preds)
    (g_hand,) = torch.autograd.grad(hand, mask_preds)
    torch.testing.assert_close(g_ours, g_hand)
    assert g_ours[0, 0].abs().sum() == 0 and g_ours[0, 1].abs().sum() > 0  # only the gt class's mask
    # no positives: zero, still connected to the graph
    empty = mask_preds[:0]
    zero = head.rank_based_loss(empty, targets[:0], labels[:0], weights[:0], cls_value)
    assert float(zero) == 0 and zero.requires_grad
    with pytest.raises(ValueError, match="score weights"):
        head.rank_based_loss(mask_preds, targets, labels, weights[:2], cls_value)


# ---------------------------------------------------------------------------- mask cap
def test_cap_positives_keeps_masks_and_weights_paired():
    torch.manual_seed(0)
    gts = torch.tensor([[0.0, 0, 50, 50]] * 8)
    results, weights = [], []
    for image, num_pos in enumerate([5, 3, 4]):
        pos = torch.stack([torch.tensor([100.0 * image + i, 0, 100.0 * image + i + 10, 10]) for i in range(num_pos)])
        results.append(sampling_result(pos, torch.tensor([[0.0, 0, 5, 5]]), gts[:num_pos], torch.arange(num_pos) % 3))
        weights.append(pos[:, 0])  # a weight that names its positive
    weights = torch.cat(weights)
    capped, kept = cap_positives(results, weights, 7)
    assert sum(len(r.pos_inds) for r in capped) == 7 and kept.numel() == 7
    assert torch.equal(torch.cat([r.pos_priors[:, 0] for r in capped]), kept)  # the i-th weight is the i-th mask's
    assert len(set(kept.tolist())) == 7 and set(kept.tolist()) <= set(weights.tolist())
    for r in capped:  # every per-positive field subset alike
        n = len(r.pos_inds)
        assert len(r.pos_assigned_gt_inds) == len(r.pos_gt_labels) == len(r.pos_is_gt) == len(r.pos_gt_bboxes) == n
        assert torch.equal(r.pos_gt_bboxes, gts[r.pos_assigned_gt_inds])
    assert [len(r.pos_inds) for r in results] == [5, 3, 4]  # inputs untouched
    same, same_weights = cap_positives(results, weights, 12)
    assert same is results and same_weights is weights
    draws = {tuple(cap_positives(results, weights, 7)[1].tolist()) for _ in range(5)}
    assert len(draws) > 1  # random, not the first 7


def test_mask_rcnn_caps_mask_positives(tmp_path):
    torch.manual_seed(0)
    model = rank_based_rcnn("mask", tmp_path)
    model.roi_head.max_masks = 6
    data = random_batch(model, [3, 2], with_mask=True)
    with (
        recorded(model.roi_head.bbox_head, "loss_and_target") as box_calls,
        recorded(model.roi_head.mask_head, "loss_and_target") as mask_calls,
    ):
        model.loss(data["inputs"], data["data_samples"])
    box_weights = box_calls[0][2]["pos_score_weights"]
    assert box_weights.numel() > 6
    kwargs = mask_calls[0][1]
    assert kwargs["mask_preds"].shape[0] == 6 and kwargs["pos_score_weights"].numel() == 6
    assert set(kwargs["pos_score_weights"].tolist()) <= set(box_weights.tolist())
    torch.testing.assert_close(kwargs["cls_loss_value"], box_calls[0][2]["cls_loss_value"])
    with pytest.raises(ValueError, match="max_masks"):
        MODELS.build(dict(type="RankBasedStandardRoIHead", max_masks=0))


# ---------------------------------------------------------------------------- whole detectors
@pytest.mark.parametrize("kind", ["faster", "mask", "cascade", "cascade_mask"])
def test_detector_forward_backward_and_predict(kind, tmp_path):
    torch.manual_seed(0)
    model = rank_based_rcnn(kind, tmp_path)
    with_mask = kind.endswith("mask")
    cascade = kind.startswith("cascade")
    data = random_batch(model, [3, 2], with_mask=with_mask)
    losses = model.loss(data["inputs"], data["data_samples"])
    prefixes = ["s0.", "s1.", "s2."] if cascade else [""]
    for prefix in prefixes:
        for name in ("loss_roi_rank", "loss_roi_sort", "loss_roi_bbox"):
            assert torch.isfinite(losses[prefix + name]) and losses[prefix + name] > 0, prefix + name
        tasks, instances = losses[prefix + "neg_per_pos_rcnn_tasks"], losses[prefix + "neg_per_pos_rcnn_instances"]
        torch.testing.assert_close(tasks, instances * DET_CLASSES + (DET_CLASSES - 1))
        if with_mask:  # each stage's mask loss is balanced to that stage's RS loss
            rs = losses[prefix + "loss_roi_rank"] + losses[prefix + "loss_roi_sort"]
            torch.testing.assert_close(losses[prefix + "loss_mask"].detach(), rs.detach())
    total, log_vars = model.parse_losses(losses)  # what mmengine trains on: the loss terms only
    loss_terms = [v for k, v in losses.items() if k.split(".")[-1].startswith("loss")]
    torch.testing.assert_close(
        total, sum(v.mean() if torch.is_tensor(v) else sum(x.mean() for x in v) for v in loss_terms)
    )
    assert all(prefix + "neg_per_pos_rcnn_tasks" in log_vars for prefix in prefixes)
    total.backward()
    for stage, head in enumerate(model.roi_head.bbox_head if cascade else [model.roi_head.bbox_head]):
        assert_gradients_reach(head.fc_cls, head.fc_reg, head.shared_fcs[0], context=f"{kind} box head {stage}: ")
    for stage, head in enumerate(
        (model.roi_head.mask_head if cascade else [model.roi_head.mask_head]) if with_mask else []
    ):
        assert_gradients_reach(head.conv_logits, head.convs[0].conv, context=f"{kind} mask head {stage}: ")
    model.eval()
    with torch.no_grad():
        test_data = random_batch(model, [2, 1], with_mask=with_mask, training=False)
        results = model.predict(test_data["inputs"], test_data["data_samples"])
    instances = results[0].pred_instances
    assert len(instances) > 0 and ((instances.scores > 0) & (instances.scores <= 1)).all()
    assert instances.labels.max() < DET_CLASSES
    if with_mask:
        assert instances.masks.shape[0] == len(instances)


def test_mask_rcnn_with_alrp(tmp_path):
    """aLRP R-CNN: the official keys loss_cls / loss_bbox; the mask loss is balanced to loss_cls."""
    torch.manual_seed(0)
    model = rank_based_rcnn("mask", tmp_path, loss_rank=dict(type="aLRPLoss"), sb_initial=50)
    model.roi_head.bbox_head.set_self_balancing_period(10)  # what ALRPSelfBalancingHook does
    data = random_batch(model, [3, 2], with_mask=True)
    losses = model.loss(data["inputs"], data["data_samples"])
    assert {"loss_cls", "loss_bbox", "loss_mask"} <= set(losses) and "loss_roi_rank" not in losses
    assert losses["loss_cls"] > 0 and losses["loss_bbox"] > 0
    torch.testing.assert_close(losses["loss_mask"].detach(), losses["loss_cls"].detach())
    total_loss(losses).backward()
    assert_gradients_reach(
        model.roi_head.bbox_head.fc_cls, model.roi_head.bbox_head.fc_reg, model.roi_head.mask_head.conv_logits
    )


def test_cascade_three_stages_and_stage_weights(tmp_path):
    """Three stages, each with its losses and logs; ``stage_loss_weights`` scales only the
    loss terms."""
    torch.manual_seed(0)
    model = rank_based_rcnn("cascade", tmp_path)
    model.roi_head.stage_loss_weights = [1.0, 0.5, 0.25]
    data = random_batch(model, [2, 2])
    calls = []
    with (
        recorded(model.roi_head.bbox_head[0], "loss_and_target") as c0,
        recorded(model.roi_head.bbox_head[1], "loss_and_target") as c1,
        recorded(model.roi_head.bbox_head[2], "loss_and_target") as c2,
    ):
        losses = model.loss(data["inputs"], data["data_samples"])
        calls = [c0, c1, c2]
    for stage, (weight, stage_calls) in enumerate(zip([1.0, 0.5, 0.25], calls)):
        assert len(stage_calls) == 1
        own = stage_calls[0][2]["loss_bbox"]
        for name, value in own.items():
            expected = value * weight if "loss" in name else value
            torch.testing.assert_close(losses[f"s{stage}.{name}"], expected)
    assert sorted({k.split(".")[0] for k in losses if k.startswith("s")}) == ["s0", "s1", "s2"]


def test_batch_without_gt_boxes(tmp_path):
    """No gt boxes: no positive RoIs; the ranking terms are 0, no ratios are logged, the
    mask loss is 0 and backward runs."""
    torch.manual_seed(0)
    model = rank_based_rcnn("mask", tmp_path)
    data = random_batch(model, [0, 0], with_mask=True)
    losses = model.loss(data["inputs"], data["data_samples"])
    for name in ("loss_roi_rank", "loss_roi_sort", "loss_roi_bbox", "loss_mask"):
        assert float(losses[name]) == 0, name
    assert not any(k.startswith("neg_per_pos_rcnn") for k in losses)
    total_loss(losses).backward()
    assert torch.isfinite(model.roi_head.bbox_head.fc_cls.weight.grad).all()


@pytest.mark.parametrize("kind", ["mask", "cascade"])
def test_all_proposals_negative(kind, tmp_path):
    """Proposals far from every gt and no gt boxes added as proposals: every RoI negative."""
    torch.manual_seed(0)
    sampler = {**NO_RCNN_SAMPLER, "add_gt_as_proposals": False}
    model = rank_based_rcnn(kind, tmp_path, sampler=sampler)
    data = random_batch(model, [1, 1], with_mask=kind == "mask")
    for sample in data["data_samples"]:
        sample.gt_instances.bboxes = torch.tensor([[70.0, 70, 120, 120]])
    x = model.extract_feat(data["inputs"])
    proposals = torch.tensor([[0.0, 0, 20, 20], [5, 5, 30, 25], [0, 30, 25, 60], [30, 0, 60, 20]])
    rpn_results = [InstanceData(bboxes=proposals.clone()) for _ in data["data_samples"]]
    losses = model.roi_head.loss(x, rpn_results, data["data_samples"])
    prefix = "s0." if kind == "cascade" else ""
    assert float(losses[prefix + "loss_roi_rank"]) == 0 and float(losses[prefix + "loss_roi_bbox"]) == 0
    assert not any("neg_per_pos" in k for k in losses)
    if kind == "mask":
        assert float(losses["loss_mask"]) == 0
    total_loss(losses).backward()


# ---------------------------------------------------------------------------- cascade refinement
def test_refinement_label_includes_last_class(tmp_path):
    """With class-specific regression, a background RoI whose best class is the last one is
    refined with that class's box, at training (mmdet 3.3's refine_bboxes) and test time
    (our _refine_roi); mmdet's own _refine_roi drops the last column (the official bug)."""
    torch.manual_seed(0)
    model = rank_based_rcnn("cascade", tmp_path, reg_class_agnostic=False)
    head0 = model.roi_head.bbox_head[0]
    with torch.no_grad():  # stage 0 prefers the last class everywhere
        head0.fc_cls.weight.zero_()
        head0.fc_cls.bias.copy_(torch.arange(DET_CLASSES, dtype=torch.float))
    cls_score = torch.arange(DET_CLASSES, dtype=torch.float)[None]
    assert predicted_labels(head0, cls_score).item() == DET_CLASSES - 1
    softmax_score = torch.cat([cls_score, torch.tensor([[99.0]])], dim=1)
    assert predicted_labels(head0, softmax_score).item() == DET_CLASSES - 1  # softmax: background column dropped
    data = random_batch(model, [2, 1])
    with recorded(head0, "regress_by_class") as calls:
        model.loss(data["inputs"], data["data_samples"])
    labels = torch.cat([args[1] for args, _, _ in calls])
    assert (labels == DET_CLASSES - 1).sum() > 0  # background RoIs: the last class
    model.eval()
    test_data = random_batch(model, [2], training=False)
    with torch.no_grad():
        x = model.extract_feat(test_data["inputs"])
        proposals = model.rpn_head.predict(x, test_data["data_samples"], rescale=False)
        metas = [s.metainfo for s in test_data["data_samples"]]
        rois = bbox2roi([p.bboxes for p in proposals])
        with recorded(head0, "regress_by_class") as ours:
            model.roi_head._refine_roi(x, rois, metas, (len(rois),))
        with recorded(head0, "regress_by_class") as mmdets:
            CascadeRoIHead._refine_roi(model.roi_head, x, rois, metas, (len(rois),))
    assert (ours[0][0][1] == DET_CLASSES - 1).all()
    assert (mmdets[0][0][1] == DET_CLASSES - 2).all()  # mmdet 3.3 / official: the last class dropped
