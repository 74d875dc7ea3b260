"""RetinaNet trained with aLRP / AP Loss (RankingRetinaHead) and the RetinaNet configs."""
import math

import pytest
import torch

pytest.importorskip("mmdet")
from mmengine.config import Config  # noqa: E402
from mmdet.registry import DATASETS, MODELS  # noqa: E402
from mmdet.structures.bbox import bbox_overlaps  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from model_cases import assert_gradients_reach, build_smoke_model, random_batch, total_loss  # noqa: E402

import rankrepro.models  # noqa: E402,F401
import rankrepro.models.dense_heads.ranking_retina_head  # noqa: E402,F401  (registers the head)
from rankrepro.data.synthetic import make_synthetic_coco, metainfo  # noqa: E402

register_all_modules()
CONFIGS = {
    "alrp": "configs/retinanet/alrp_retinanet_r50_fpn_100e_coco500.py",
    "alrp800": "configs/retinanet/alrp_retinanet_r50_fpn_100e_coco800.py",
    "alrp_r101": "configs/retinanet/alrp_retinanet_r101_fpn_160e_coco500.py",
    "alrp_r101_800": "configs/retinanet/alrp_retinanet_r101_fpn_100e_coco800.py",
    "alrp_x101": "configs/retinanet/alrp_retinanet_x101-32x8d_fpn_100e_coco500.py",
    "alrp_x101_800": "configs/retinanet/alrp_retinanet_x101-32x8d_fpn_100e_coco800.py",
    "alrp_atss": "configs/retinanet/alrp_retinanet_atss_r50_fpn_100e_coco500.py",
    "ap": "configs/retinanet/ap_retinanet_r50_fpn_100e_coco500.py",
    "fl": "configs/retinanet/fl_retinanet_r50_fpn_1x_coco.py",
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_forward_backward_reaches_classifier_and_box_branch(name, tmp_path):
    model = build_smoke_model(CONFIGS[name], tmp_path)
    data = random_batch(model, [3, 2])
    losses = model.loss(data["inputs"], data["data_samples"])
    assert "loss_bbox" in losses
    for value in losses.values():
        for v in value if isinstance(value, list) else [value]:
            assert torch.isfinite(v).all()
    total = total_loss(losses)
    assert total.item() > 0
    total.backward()
    head = model.bbox_head
    assert_gradients_reach(head.retina_cls, head.retina_reg, context=f"{name}: ")
    expected = {"alrp": {"loss_cls", "loss_bbox"}, "ap": {"loss_ap", "loss_bbox"}}
    kind = "ap" if name == "ap" else ("alrp" if name.startswith("alrp") else None)
    if kind:
        assert set(losses) == expected[kind]


@pytest.mark.parametrize(
    "loss_rank, keys",
    [
        (dict(type="RankSortLoss", delta=0.5), {"loss_rank", "loss_sort"}),
        (dict(type="BucketedRankSortLoss", delta=0.5), {"loss_rank", "loss_sort"}),
        (dict(type="BucketedAPLoss", delta=1.0), {"loss_ap"}),
    ],
)
def test_other_ranking_losses(loss_rank, keys, tmp_path):
    model = build_smoke_model(CONFIGS["ap"], tmp_path, loss_rank=loss_rank)
    data = random_batch(model, [3, 3])
    losses = model.loss(data["inputs"], data["data_samples"])
    assert set(losses) == keys | {"loss_bbox"}
    total = total_loss(losses)
    assert torch.isfinite(total)
    total.backward()
    assert_gradients_reach(model.bbox_head.retina_cls)


@pytest.mark.parametrize("name", ["alrp", "ap"])
def test_batch_without_ground_truth_trains(name, tmp_path):
    model = build_smoke_model(CONFIGS[name], tmp_path)
    data = random_batch(model, [0, 0])
    losses = model.loss(data["inputs"], data["data_samples"])
    total = total_loss(losses)
    assert torch.isfinite(total) and total.item() == 0.0
    total.backward()  # still connected to the graph
    if name == "alrp":  # no positives: the self-balancing counter does not advance (as the official)
        assert model.bbox_head.sb_weight.state_dict()["count"] == 0


def test_alrp_self_balancing_weight_updates_after_a_period(tmp_path):
    model = build_smoke_model(CONFIGS["alrp"], tmp_path)
    head = model.bbox_head
    head.set_self_balancing_period(3)
    assert head.sb_weight.period == 3 and head.sb_weight.value == 50.0
    data = random_batch(model, [3, 3])
    cls_sum = loc_sum = 0.0
    for i in range(3):  # one period: w = (sum L_cls + sum L_loc) / sum L_loc, used from its last iteration on
        losses = model.loss(data["inputs"], data["data_samples"])
        weight = head.sb_weight.value
        if i < 2:
            assert weight == 50.0
        cls_sum += losses["loss_cls"].item()
        loc_sum += losses["loss_bbox"].item() / weight
    assert head.sb_weight.value != 50.0 and math.isfinite(head.sb_weight.value)
    assert head.sb_weight.value == pytest.approx((cls_sum + loc_sum) / loc_sum, rel=1e-4)
    fresh = build_smoke_model(CONFIGS["alrp"], tmp_path)
    fresh.load_state_dict(model.state_dict())
    assert fresh.bbox_head.sb_weight.state_dict() == head.sb_weight.state_dict()


def test_alrp_without_period_explains_the_hook(tmp_path):
    model = build_smoke_model(CONFIGS["alrp"], tmp_path, sb_period=None)
    data = random_batch(model, [2, 2])
    with pytest.raises(RuntimeError, match="ALRPSelfBalancingHook"):
        model.loss(data["inputs"], data["data_samples"])


def test_atss_assigner_with_images_of_different_sizes(tmp_path):
    """Padded batch: per-image valid anchors differ, the per-level counts follow them."""
    model = build_smoke_model(CONFIGS["alrp_atss"], tmp_path)
    data = random_batch(model, [3, 2], image_shapes=[(3, 128, 128), (3, 96, 80)])
    losses = model.loss(data["inputs"], data["data_samples"])
    assert torch.isfinite(total_loss(losses))
    assert model.bbox_head.num_base_priors == 2  # ratio 1 x 2 scales


def test_decoding_relative_to_anchors_keeps_the_official_giou():
    """The official decodes deltas relative to a unit box at the origin; IoU/GIoU do not change."""
    from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder

    torch.manual_seed(0)
    stds = (0.1, 0.1, 0.2, 0.2)
    coder = DeltaXYWHBBoxCoder(target_means=(0.0,) * 4, target_stds=stds)
    xy = torch.rand(50, 2) * 400
    anchors = torch.cat([xy, xy + 16 + torch.rand(50, 2) * 200], dim=1)
    pred, target = torch.randn(50, 4), torch.randn(50, 4)

    def unit_frame(d):
        s = torch.tensor(stds)
        d = d * s
        wh = d[:, 2:].clamp(-abs(math.log(16 / 1000)), abs(math.log(16 / 1000))).exp()
        return torch.cat([d[:, :2] - wh / 2, d[:, :2] + wh / 2], dim=1)

    for mode in ("iou", "giou"):
        ours = bbox_overlaps(coder.decode(anchors, pred), coder.decode(anchors, target), mode=mode, is_aligned=True)
        official = bbox_overlaps(unit_frame(pred), unit_frame(target), mode=mode, is_aligned=True)
        assert torch.allclose(ours, official, atol=1e-5)


def test_ap_box_loss_is_official_smooth_l1(tmp_path):
    model = build_smoke_model(CONFIGS["ap"], tmp_path)
    head = model.bbox_head
    assert type(head.loss_bbox).__name__ == "SmoothL1Loss" and head.loss_bbox.beta == 1.0
    logits = torch.randn(6, head.num_classes)
    labels = torch.tensor([0, 2, head.num_classes, head.num_classes, 1, head.num_classes])
    weights = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    anchors = torch.tensor([[0.0, 0.0, 32.0, 32.0]]).repeat(6, 1)
    deltas, targets = torch.randn(6, 4), torch.randn(6, 4)
    losses = head.ranking_losses(logits, labels, weights, anchors, deltas, targets)
    pos = torch.tensor([0, 1, 4])
    diff = (deltas[pos] - targets[pos]).abs()
    expected = torch.where(diff < 1.0, 0.5 * diff**2, diff - 0.5).sum() / (4 * len(pos))
    assert losses["loss_bbox"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_official_training_pipeline_runs_on_mmdet_33(tmp_path):
    """The SSD-style pipeline of the paper-scale configs (not used by the smoke variant)."""
    make_synthetic_coco(tmp_path, num_train=2, num_val=1)
    for name, size in (("alrp", 512), ("alrp800", 800)):
        cfg = Config.fromfile(CONFIGS[name])
        dataset = DATASETS.build(
            dict(
                type="CocoDataset",
                data_root=str(tmp_path),
                ann_file="annotations/instances_train.json",
                data_prefix=dict(img="train/"),
                metainfo=metainfo(),
                pipeline=cfg.train_dataloader.dataset.pipeline,
            )
        )
        item = dataset[0]
        assert tuple(item["inputs"].shape[1:]) == (size, size)
        boxes = item["data_samples"].gt_instances.bboxes.tensor
        assert len(boxes) and (boxes >= 0).all() and (boxes <= size).all()


def test_paper_scale_configs_build():
    for name, path in CONFIGS.items():
        cfg = Config.fromfile(path)
        for module in cfg.custom_imports.imports:
            __import__(module)
        model = MODELS.build(cfg.model)
        depth = 101 if "101" in name else 50
        assert model.backbone.depth == depth and model.bbox_head.num_classes == 80
        if "x101" in name:  # ResNeXt-101 32x8d, torchvision's weights as the official
            assert type(model.backbone).__name__ == "ResNeXt"
            assert (model.backbone.groups, model.backbone.base_width) == (32, 8)
            assert cfg.model.backbone.init_cfg.checkpoint == "torchvision://resnext101_32x8d"
        assert cfg.val_evaluator.type == "CocoOLRPMetric" and cfg.test_evaluator.type == "CocoOLRPMetric"
        assert "base_batch_size" in cfg.auto_scale_lr
        head = model.bbox_head
        if name == "fl":
            assert type(head).__name__ == "RetinaHead"
            continue
        assert type(head).__name__ == "RankingRetinaHead"
        assert head.num_base_priors == (2 if name == "alrp_atss" else 6)
        assert list(head.bbox_coder.stds) == [0.1, 0.1, 0.2, 0.2]
        hooks = [h["type"] for h in cfg.get("custom_hooks", [])]
        if name.startswith("alrp"):
            assert hooks == ["ALRPSelfBalancingHook"] and head.sb_initial == 50.0
            assert type(head.loss_rank).__name__ == "aLRPLoss"
        else:
            assert hooks == [] and head.sb_initial is None and type(head.loss_rank).__name__ == "APLoss"
    assert Config.fromfile(CONFIGS["alrp_r101"]).param_scheduler[1].milestones == [90, 110, 140]
    x101 = Config.fromfile(CONFIGS["alrp_x101"])
    assert x101.param_scheduler[1].milestones == [75, 95] and x101.train_cfg.max_epochs == 100
    x101_800 = Config.fromfile(CONFIGS["alrp_x101_800"])
    assert x101_800.param_scheduler[1].milestones == [60, 80] and x101_800.optim_wrapper.optimizer.lr == 0.004
    assert x101_800.train_dataloader.batch_size == 4


def test_alrp_retinanet_smoke_trains_and_evaluates(tmp_path):
    from rankrepro.runner import test, train

    data_root = tmp_path / "data"
    make_synthetic_coco(data_root, num_train=16, num_val=8)
    config = CONFIGS["alrp"]
    train(config, tmp_path / "work", smoke=True, data_root=data_root, max_iters=4)
    checkpoint = tmp_path / "work" / "iter_4.pth"
    assert checkpoint.exists()
    metrics = test(config, checkpoint, tmp_path / "test", smoke=True, data_root=data_root, max_iters=4)
    assert "coco/bbox_mAP" in metrics and "coco/bbox_oLRP" in metrics
    assert 0.0 <= metrics["coco/bbox_oLRP"] <= 1.0
