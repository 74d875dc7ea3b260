"""The ATSS heads of the plugin: one forward/backward per loss, edge cases, aLRP balancing."""
import math

import pytest
import torch

pytest.importorskip("mmdet")
from mmengine.config import Config  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from model_cases import assert_gradients_reach, build_smoke_model, config_path, random_batch, recorded_calls, total_loss  # noqa: E402

import rankrepro.models  # noqa: E402,F401
from rankrepro.smoke import smoke_config  # noqa: E402

register_all_modules()
ATSS_CONFIGS = ["rs", "brs", "ap", "bap", "alrp", "fl_atss_no_centerness", "qfl"]


def _config_path(name):
    return config_path("atss", name)


@pytest.mark.parametrize("name", ATSS_CONFIGS)
def test_forward_backward_reaches_classifier_and_box_branch(name, tmp_path):
    model = build_smoke_model(_config_path(name), tmp_path)
    data = random_batch(model, [3, 2])
    losses = model.loss(data["inputs"], data["data_samples"])
    assert "loss_bbox" in losses
    total = total_loss(losses)
    assert torch.isfinite(total) and total.item() > 0
    total.backward()
    head = model.bbox_head
    assert_gradients_reach(head.atss_cls, head.atss_reg, context=f"{name}: ")
    assert not hasattr(head, "atss_centerness")


@pytest.mark.parametrize("name", ["rs", "alrp", "qfl"])
def test_batch_without_ground_truth_trains(name, tmp_path):
    model = build_smoke_model(_config_path(name), tmp_path)
    data = random_batch(model, [0, 0])
    losses = model.loss(data["inputs"], data["data_samples"])
    total = total_loss(losses)
    assert torch.isfinite(total)
    total.backward()  # still connected to the graph
    if name != "qfl":  # ranking losses: no positives, no error to distribute
        assert total.item() == 0.0


def test_value_based_task_balancing(tmp_path):
    """RS-ATSS: the box loss is scaled to the value of the ranking losses (lambda = L_RS / L_box)."""
    model = build_smoke_model(_config_path("rs"), tmp_path)
    data = random_batch(model, [4, 4])
    losses = model.loss(data["inputs"], data["data_samples"])
    assert losses["loss_bbox"].item() == pytest.approx((losses["loss_rank"] + losses["loss_sort"]).item(), rel=1e-5)


def test_fixed_task_balance_for_focal_baseline(tmp_path):
    model = build_smoke_model(_config_path("fl_atss_no_centerness"), tmp_path)
    assert model.bbox_head.task_balance == 2.0 and model.bbox_head.box_weighting == "none"


def test_alrp_self_balancing_weight_is_applied_and_saved(tmp_path):
    model = build_smoke_model(_config_path("alrp"), tmp_path)
    head = model.bbox_head
    assert head.sb_weight.period == 10 and head.sb_weight.value == 50.0
    data = random_batch(model, [3, 3])
    for _ in range(10):  # one full period: the weight becomes (cls + loc) / loc
        losses = model.loss(data["inputs"], data["data_samples"])
    assert head.sb_weight.value != 50.0 and math.isfinite(head.sb_weight.value)
    state = model.state_dict()
    fresh = build_smoke_model(_config_path("alrp"), tmp_path)
    fresh.load_state_dict(state)
    assert fresh.bbox_head.sb_weight.state_dict() == head.sb_weight.state_dict()
    assert losses["loss_bbox"].item() > 0


def test_alrp_without_period_explains_the_hook(tmp_path):
    model = build_smoke_model(_config_path("alrp"), tmp_path, sb_period=None)
    data = random_batch(model, [2, 2])
    with pytest.raises(RuntimeError, match="ALRPSelfBalancingHook"):
        model.loss(data["inputs"], data["data_samples"])


def test_paper_scale_configs_build():
    for path in sorted(__import__("glob").glob("configs/atss/*.py")):
        cfg = Config.fromfile(path)
        for module in cfg.get("custom_imports", {}).get("imports", []):
            __import__(module)
        model = MODELS.build(cfg.model)
        assert model.backbone.depth == 50 and model.bbox_head.num_classes == 80
        assert cfg.val_evaluator.type == "CocoOLRPMetric"


def test_smoke_maps_resnet34_neck_widths(tmp_path):
    cfg = Config.fromfile("configs/atss/rs_atss_r50_fpn_1x_coco.py")
    cfg.model.backbone.depth = 34
    cfg.model.neck.in_channels = [128, 256, 512]  # ResNet-34 stages 2-4
    smoke = smoke_config(cfg, tmp_path)
    assert smoke.model.backbone.depth == 18 and smoke.model.neck.in_channels == [128, 256, 512]


def test_smoke_maps_resnext_to_resnet18_and_rejects_other_backbones(tmp_path):
    cfg = Config.fromfile("configs/atss/rs_atss_r50_fpn_1x_coco.py")
    cfg.model.backbone.update(type="ResNeXt", depth=101, groups=32, base_width=8)
    smoke = smoke_config(cfg, tmp_path)
    assert smoke.model.backbone.type == "ResNet" and smoke.model.backbone.depth == 18
    assert "groups" not in smoke.model.backbone and "base_width" not in smoke.model.backbone
    assert smoke.model.neck.in_channels == [64, 128, 256, 512]  # ResNeXt's widths are ResNet-50's
    MODELS.build(smoke.model)
    cfg.model.backbone = dict(type="HRNet")  # Swin has its own rule (tests/test_co_detr_configs.py)
    with pytest.raises(ValueError, match="needs a ResNet, ResNeXt or SwinTransformer backbone, got HRNet"):
        smoke_config(cfg, tmp_path)


@pytest.mark.parametrize("weighting", ["iou", "centerness", "none", "score"])
def test_instance_level_box_weightings(weighting, tmp_path):
    """Table A.11: the GIoU Loss is the mean weighted by score, IoU or centerness (or plain)."""
    model = build_smoke_model(_config_path("rs"), tmp_path, box_weighting=weighting, task_balance=1.0)
    data = random_batch(model, [4, 3])
    with recorded_calls(model.bbox_head, "_box_weights") as calls:
        losses = model.loss(data["inputs"], data["data_samples"])
    (_, ious, _, _), weights = calls[0]
    if weighting == "none":
        assert weights is None
    else:
        assert weights.requires_grad is False and (weights >= 0).all() and (weights <= 1).all()
        if weighting == "iou":
            torch.testing.assert_close(weights, ious)
    assert torch.isfinite(losses["loss_bbox"]) and losses["loss_bbox"].item() > 0


def test_unknown_box_weighting_is_rejected(tmp_path):
    cfg = smoke_config(Config.fromfile("configs/atss/rs_atss_r50_fpn_1x_coco.py"), tmp_path)
    cfg.model.bbox_head.box_weighting = "magnitude"
    with pytest.raises(ValueError, match="weighting must be one of"):
        MODELS.build(cfg.model)


def test_magnitude_based_task_balancing(tmp_path):
    """Table A.11 "magnitude": lambda = |dL_RS/ds|_1 / |dL_box/db|_1, recomputed here by hand."""
    from rankrepro.models.dense_heads.ranking_head import magnitude_balanced

    logits = torch.randn(6, 3, requires_grad=True)
    deltas = torch.randn(6, 4, requires_grad=True)
    cls_loss = (logits**2).sum()  # d/ds = 2s
    box_loss = (3 * deltas).sum()  # d/db = 3
    balanced_loss = magnitude_balanced(box_loss, cls_loss, logits, deltas)
    expected = (2 * logits.detach().abs()).sum() / (3 * 24)
    assert balanced_loss.item() == pytest.approx(box_loss.item() * expected.item(), rel=1e-6)
    (grad,) = torch.autograd.grad(balanced_loss, deltas)  # lambda is a constant for backward
    torch.testing.assert_close(grad, torch.full_like(deltas, 3 * expected.item()))

    model = build_smoke_model(_config_path("rs"), tmp_path, task_balance="magnitude")
    data = random_batch(model, [3, 3])
    losses = model.loss(data["inputs"], data["data_samples"])
    assert torch.isfinite(losses["loss_bbox"]) and losses["loss_bbox"].item() > 0
    total_loss(losses).backward()
    assert_gradients_reach(model.bbox_head.atss_reg)


def test_ranking_based_weights_hand_computed():
    """Eq. A.35 on [pos 3, neg 2, pos 1], hard steps: ranks 1 and 3, so
    w(3) = (1/1 + 1/3) / 2 = 2/3 and w(1) = (0 + 1/3) / 2 = 1/6 -- aLRP's localisation weights."""
    from rankrepro.models.dense_heads.ranking_head import ranking_based_weights

    logits = torch.tensor([3.0, 2.0, 1.0])
    targets = torch.tensor([1.0, 0.0, 1.0])
    weights = ranking_based_weights(logits, targets, rank_delta=0.0, numerator_delta=0.0)
    torch.testing.assert_close(weights, torch.tensor([2 / 3, 1 / 6]))


@pytest.mark.parametrize("ranking_delta", [None, 1.0])
def test_ranking_based_box_weighting_trains(ranking_delta, tmp_path):
    model = build_smoke_model(_config_path("rs"), tmp_path, box_weighting="ranking", ranking_delta=ranking_delta)
    data = random_batch(model, [3, 3])
    losses = model.loss(data["inputs"], data["data_samples"])
    assert torch.isfinite(losses["loss_bbox"]) and losses["loss_bbox"].item() > 0
    total_loss(losses).backward()
    assert_gradients_reach(model.bbox_head.atss_reg)


@pytest.mark.parametrize("path", [_config_path("ap"), _config_path("bap"), "configs/atss/ap_atss_centerness_r50_fpn_1x_coco.py"])
def test_ap_atss_configs_train_the_bucketed_repos_recipe(path, tmp_path):
    """The official Bucketed ATSS head (AP / BAP branch): the loss gets delta 1.0 and binary
    targets; loss_bbox = 2 sum_i s_i GIoU-loss_i / sum_i s_i (s_i = max class probability of
    positive i, detached), a fixed weight rather than value-based balancing.  Recomputed here
    from the head's inputs."""
    from mmdet.structures.bbox import bbox_overlaps

    from rankrepro.losses import ap_loss, bucketed_ap_loss

    model = build_smoke_model(path, tmp_path)
    head = model.bbox_head
    data = random_batch(model, [4, 3], seed=5)
    with recorded_calls(head, "ranking_losses") as calls:
        losses = model.loss(data["inputs"], data["data_samples"])
    (logits, labels, label_weights, anchors, deltas, gt_boxes, *_), _ = calls[0]
    logits, deltas = logits.detach(), deltas.detach()
    pos = ((labels >= 0) & (labels < head.num_classes)).nonzero().squeeze(1)
    assert pos.numel() > 0
    pred = head.bbox_coder.decode(anchors[pos], deltas[pos])
    giou_loss = 1 - bbox_overlaps(pred, gt_boxes[pos], mode="giou", is_aligned=True)
    scores = logits[pos].sigmoid().max(dim=1).values
    expected_bbox = 2.0 * (scores * giou_loss).sum() / scores.sum()
    assert losses["loss_bbox"].item() == pytest.approx(expected_bbox.item(), rel=1e-5)
    assert losses["loss_bbox"].item() != pytest.approx(losses["loss_ap"].item(), rel=1e-3)  # not value-balanced

    targets = torch.zeros_like(logits)
    targets[label_weights == 0] = -1.0
    targets[pos, labels[pos]] = 1.0
    loss_fn = bucketed_ap_loss if "bap_" in path else ap_loss
    assert losses["loss_ap"].item() == pytest.approx(loss_fn(logits.flatten(), targets.flatten(), 1.0).item(), rel=1e-6)
    # the untrained batch barely depends on delta (AP ~ 0); a small ranking tells 1.0 from 0.5
    scores, labels = torch.tensor([2.0, 1.5, 1.0, 0.2, -3.0]), torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0])
    at_one, at_half = (loss_fn(scores, labels, delta).item() for delta in (1.0, 0.5))
    assert at_one != pytest.approx(at_half, rel=0.01)
    assert head.loss_rank(scores, labels)["loss_ap"].item() == pytest.approx(at_one, rel=1e-6)


@pytest.mark.parametrize("name, octave, scales", [
    ("qfl", 8, 1), ("fl_atss_no_centerness", 8, 1),  # RankSortLoss configs/gfl/{qfl,fl}_r50_fpn_1x_coco.py
    ("rs", 4, 3), ("ap", 4, 3), ("alrp", 4, 3),  # the aLRP anchors of the ranking losses
])
def test_atss_anchor_configurations_follow_the_official_configs(name, octave, scales):
    from mmengine.config import Config

    cfg = Config.fromfile(str(config_path("atss", name)))
    generator = cfg.model.bbox_head.anchor_generator
    assert (generator.octave_base_scale, generator.scales_per_octave, generator.ratios) == (octave, scales, [1.0])
