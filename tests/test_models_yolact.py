"""RS-YOLACT (and the YOLACT baseline): forward/backward, edge cases, configs, one smoke run."""
import pytest
import torch

pytest.importorskip("mmdet")
from mmengine.config import Config  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmdet.structures.bbox import bbox_overlaps  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from model_cases import assert_gradients_reach, build_smoke_model, random_batch, recorded_calls, total_loss  # noqa: E402

import rankrepro.models  # noqa: E402,F401
from rankrepro.models.dense_heads.rank_sort_yolact_head import (  # noqa: E402
    RankSortYOLACTHead,
    RankSortYOLACTProtonet,
    dice_coefficient,
)

register_all_modules()
RS_CONFIG = "configs/yolact/rs_yolact_r50_4xb8-55e_coco.py"
BASELINE_CONFIG = "configs/yolact/yolact_r50_1xb8-55e_coco.py"
LABEL_CONFIG = "configs/yolact/rs_yolact_{}_labels_r50_4xb8-55e_coco.py"  # RS paper Table A.16
ABLATION_CONFIG = "configs/yolact/yolact_{}_r50_1xb8-55e_coco.py"  # RS paper Table 6


@pytest.fixture(scope="module")
def rs_model(tmp_path_factory):
    return build_smoke_model(RS_CONFIG, tmp_path_factory.mktemp("rs"))


def test_forward_backward_reaches_classifier_box_and_mask_branches(rs_model):
    model = rs_model
    model.zero_grad()
    data = random_batch(model, [3, 2], with_mask=True)
    losses = model.loss(data["inputs"], data["data_samples"])
    assert set(losses) == {"loss_rank", "loss_sort", "loss_bbox", "loss_mask"}
    assert all(torch.isfinite(v) for v in losses.values())
    total = total_loss(losses)
    assert total.item() > 0
    total.backward()
    head, protonet = model.bbox_head, model.mask_head
    assert_gradients_reach(head.conv_cls, head.conv_reg, head.conv_coeff, protonet.protonet[0], protonet.protonet[-2])
    assert protonet.segm_branch is None and not hasattr(head, "loss_cls")
    # value-based task balancing: both task losses take the value of the RS Loss
    rs = (losses["loss_rank"] + losses["loss_sort"]).item()
    assert losses["loss_bbox"].item() == pytest.approx(rs, rel=1e-5)
    assert losses["loss_mask"].item() == pytest.approx(rs, rel=1e-5)


@pytest.mark.parametrize("labels", ["rs_model", "dice_model"])  # IoU labels; Dice labels (RankSortYOLACT)
def test_batch_without_ground_truth_trains(labels, request):
    model = request.getfixturevalue(labels)
    model.zero_grad()
    data = random_batch(model, [0, 0], with_mask=True)
    losses = model.loss(data["inputs"], data["data_samples"])
    total = total_loss(losses)
    assert set(losses) == {"loss_rank", "loss_sort", "loss_bbox", "loss_mask"}
    assert torch.isfinite(total) and total.item() == 0.0
    total.backward()  # still connected to the graph


def test_baseline_smoke_model_trains(tmp_path):
    model = build_smoke_model(BASELINE_CONFIG, tmp_path)
    data = random_batch(model, [2, 1], with_mask=True)
    losses = model.loss(data["inputs"], data["data_samples"])
    assert {"loss_cls", "loss_bbox", "loss_mask", "loss_segm"} <= set(losses)
    total = total_loss(losses)
    assert torch.isfinite(total)
    total.backward()


def test_iou_labels_and_score_weighted_losses(rs_model):
    """RS labels = IoU of detached predicted boxes; unbalanced box / mask losses as the official."""
    model = rs_model
    head, protonet = model.bbox_head, model.mask_head
    head.task_balance = protonet.task_balance = 1.0
    try:
        data = random_batch(model, [4, 3], seed=1, with_mask=True)
        x = model.extract_feat(data["inputs"])
        with recorded_calls(head.loss_rank, "forward") as calls:
            losses = head.loss(x, data["data_samples"])
        infos = head.get_positive_infos()
        mask_losses = protonet.loss(x, data["data_samples"], positive_infos=infos)
    finally:
        head.task_balance = protonet.task_balance = "value"
    (_, targets), _ = calls[0]
    positive = targets > 0
    assert positive.any() and (targets >= -1).all() and (targets <= 1).all()
    assert (targets == -1).any()  # anchors between the IoU thresholds are ignored
    # reference from the positive infos: IoU labels recomputed from the head outputs
    cls_scores, bbox_preds, _ = head(x)
    num_imgs = len(data["data_samples"])
    deltas = torch.cat([b.permute(0, 2, 3, 1).reshape(num_imgs, -1, 4) for b in bbox_preds], 1)
    anchors = head.prior_generator.grid_priors([s.shape[-2:] for s in cls_scores], device=deltas.device)
    anchors = torch.cat(anchors)
    ious, weights = [], []
    for idx, info in enumerate(infos):
        pred = head.bbox_coder.decode(anchors[info.pos_inds], deltas[idx][info.pos_inds])
        ious.append(bbox_overlaps(pred.detach(), info.bboxes, is_aligned=True))
        weights.append(info.scores)
    ious, weights = torch.cat(ious), torch.cat(weights)
    got = targets.reshape(num_imgs, -1, head.cls_out_channels)
    expected = torch.cat([got[idx][info.pos_inds].max(dim=1).values for idx, info in enumerate(infos)])
    assert torch.allclose(expected, ious.clamp_min(0), atol=1e-5)
    assert int(positive.sum()) == int((ious > 0).sum())
    # box loss: score-weighted mean GIoU Loss, the weights the positives' max class scores
    assert 0 < losses["loss_bbox"].item() < 2
    scores = torch.cat([s.permute(0, 2, 3, 1).reshape(num_imgs, -1, head.cls_out_channels) for s in cls_scores], 1)
    max_scores = scores.sigmoid().max(dim=2).values
    expected_w = torch.cat([max_scores[idx][info.pos_inds] for idx, info in enumerate(infos)])
    assert torch.allclose(weights, expected_w.detach(), atol=1e-6)
    # mask loss: 1 - score-weighted mean Dice, between 0 and 1
    assert 0 < mask_losses["loss_mask"].item() <= 1


def test_dice_coefficient_is_the_official_one():
    target = torch.zeros(2, 8, 8)
    target[:, 2:6, 2:6] = 1
    pred = torch.stack([target[0], 0.5 * target[1]])
    dice = dice_coefficient(pred, target)
    assert dice[0].item() == pytest.approx(32 / (32 + 1e-5), rel=1e-6)  # 2*16 / (16 + 16 + eps)
    assert dice[1].item() == pytest.approx(16 / (4 + 16 + 1e-5), rel=1e-6)  # 2*8 / (16/4 + 16 + eps)


def test_unit_anchor_decoding_of_the_official_gives_the_same_iou():
    """The official decodes deltas around a unit anchor at the origin; IoU does not change."""
    torch.manual_seed(0)
    head = RankSortYOLACTHead(num_classes=3, in_channels=8, feat_channels=8, train_cfg=None)
    xy = torch.rand(50, 2) * 300
    anchors = torch.cat([xy, xy + 10 + torch.rand(50, 2) * 100], 1)
    deltas, targets = torch.randn(50, 4), torch.randn(50, 4)
    ours = bbox_overlaps(head.bbox_coder.decode(anchors, deltas), head.bbox_coder.decode(anchors, targets), is_aligned=True)
    unit = torch.tensor([[-0.5, -0.5, 0.5, 0.5]]).expand(50, 4)
    official = bbox_overlaps(head.bbox_coder.decode(unit, deltas), head.bbox_coder.decode(unit, targets), is_aligned=True)
    assert torch.allclose(ours, official, atol=1e-5)


def test_invalid_options_are_rejected():
    with pytest.raises(ValueError, match="use_ohem"):
        RankSortYOLACTHead(num_classes=3, in_channels=8, use_ohem=True)
    with pytest.raises(ValueError, match="semantic"):
        RankSortYOLACTProtonet(num_classes=3, in_channels=8, with_seg_branch=True)
    with pytest.raises(ValueError, match="task_balance"):
        RankSortYOLACTProtonet(num_classes=3, in_channels=8, task_balance="magnitude")


def test_paper_scale_configs_build():
    label_configs = [(LABEL_CONFIG.format(label), "RankSortYOLACTHead", label) for label in ("binary", "dice", "iou_dice")]
    ablations = [(ABLATION_CONFIG.format(name), "YOLACTHead", None) for name in ("no_ohem", "no_size_norm", "no_semantic_head", "no_heuristics")]
    configs = [(RS_CONFIG, "RankSortYOLACTHead", "iou"), (BASELINE_CONFIG, "YOLACTHead", None)] + label_configs + ablations
    for path, head_type, label in configs:
        cfg = Config.fromfile(path)
        for module in cfg.custom_imports.imports:
            __import__(module)
        model = MODELS.build(cfg.model)
        assert model.backbone.depth == 50 and model.bbox_head.num_classes == 80
        assert type(model.bbox_head).__name__ == head_type
        assert getattr(model.bbox_head, "label", None) == label
        assert cfg.val_evaluator.type == "CocoOLRPMetric" and cfg.val_evaluator.metric == ["bbox", "segm"]
        if label is not None:
            assert type(model).__name__ == "RankSortYOLACT" and cfg.optim_wrapper.optimizer.lr == 0.006
    cfg = Config.fromfile(RS_CONFIG)
    assert cfg.optim_wrapper.optimizer.lr == 0.006 and cfg.train_cfg.max_epochs == 55
    assert cfg.param_scheduler[-1].type == "CosineAnnealingLR" and cfg.auto_scale_lr.base_batch_size == 32
    assert cfg.model.mask_head.with_seg_branch is False


def test_smoke_train_and_eval(tmp_path):
    from rankrepro.data.synthetic import make_synthetic_coco
    from rankrepro.runner import test, train

    data_root = tmp_path / "data"
    make_synthetic_coco(data_root, num_train=16, num_val=8)
    work_dir = tmp_path / "work"
    train(RS_CONFIG, work_dir, smoke=True, data_root=data_root, max_iters=4)
    checkpoint = work_dir / "iter_4.pth"
    assert checkpoint.exists()
    metrics = test(RS_CONFIG, checkpoint, work_dir, smoke=True, data_root=data_root, max_iters=4)
    for key in ("coco/bbox_mAP", "coco/segm_mAP", "coco/segm_oLRP"):
        assert key in metrics


@pytest.fixture(scope="module")
def dice_model(tmp_path_factory):
    return build_smoke_model(LABEL_CONFIG.format("dice"), tmp_path_factory.mktemp("dice"))


@pytest.mark.parametrize("label", ["binary", "dice", "iou_dice"])
def test_table_a16_labels_train_every_branch(label, dice_model):
    """Each label of Table A.16 gives the four losses, value-balanced, with gradients everywhere."""
    model = dice_model
    model.bbox_head.label = label
    try:
        model.zero_grad()
        data = random_batch(model, [3, 2], seed=2, with_mask=True)
        losses = model.loss(data["inputs"], data["data_samples"])
    finally:
        model.bbox_head.label = "dice"
    assert set(losses) == {"loss_rank", "loss_sort", "loss_bbox", "loss_mask"}
    total = total_loss(losses)
    assert torch.isfinite(total) and total.item() > 0
    total.backward()
    head, protonet = model.bbox_head, model.mask_head
    assert_gradients_reach(head.conv_cls, head.conv_reg, head.conv_coeff, protonet.protonet[0])
    rs = (losses["loss_rank"] + losses["loss_sort"]).item()
    assert losses["loss_bbox"].item() == pytest.approx(rs, rel=1e-5)
    assert losses["loss_mask"].item() == pytest.approx(rs, rel=1e-5)
    if label == "binary":  # all positives share label 1: nothing to sort
        assert losses["loss_sort"].item() == 0.0 and losses["loss_rank"].item() > 0


def _labels_of(model, label, data):
    """The positives' RS labels of ``label`` on ``data`` as (image, anchor) -> max over classes, and the Dice per positive."""
    head, protonet = model.bbox_head, model.mask_head
    head.label = label
    try:
        with recorded_calls(head.loss_rank, "forward") as ranked, recorded_calls(protonet, "_positive_dice") as scored:
            model.loss(data["inputs"], data["data_samples"])
        infos = head.get_positive_infos()
    finally:
        head.label = "dice"
    (_, targets), _ = ranked[0]
    targets = targets.reshape(len(infos), -1, head.cls_out_channels)
    per_positive = torch.cat([targets[idx][info.pos_inds].max(dim=1).values for idx, info in enumerate(infos)])
    (_, (dice, _)) = scored[0]
    return per_positive, dice.detach(), targets


def test_table_a16_labels_follow_their_definitions(dice_model):
    """Dice labels are each positive's own mask Dice (matched by image and anchor); mean and binary follow."""
    model = dice_model
    data = random_batch(model, [4, 3], seed=3, with_mask=True)
    iou, _, iou_targets = _labels_of(model, "iou", data)
    dice_labels, dice, dice_targets = _labels_of(model, "dice", data)
    mean_labels, _, _ = _labels_of(model, "iou_dice", data)
    binary, _, binary_targets = _labels_of(model, "binary", data)
    assert dice.numel() == dice_labels.numel() > 10
    assert torch.allclose(dice_labels, dice.clamp_min(0).to(dice_labels.dtype), atol=1e-6)
    assert not torch.allclose(dice_labels, iou)  # a different quality
    assert torch.allclose(mean_labels, (iou + dice_labels) / 2, atol=1e-6)
    assert (binary == 1).all()
    # the label changes the positives' targets only: negatives (0) and ignored anchors (-1) stay
    infos = model.bbox_head.get_positive_infos()
    positive = torch.zeros(iou_targets.shape[:2], dtype=torch.bool)
    for idx, info in enumerate(infos):
        positive[idx, info.pos_inds] = True
    for targets in (dice_targets, binary_targets):
        assert torch.equal(targets[~positive], iou_targets[~positive])
        assert (iou_targets[~positive] == -1).any() and (iou_targets[~positive] == 0).any()


def test_dice_labels_need_their_detector_and_every_mask(tmp_path):
    from rankrepro.smoke import smoke_config

    cfg = smoke_config(Config.fromfile(LABEL_CONFIG.format("dice")), tmp_path)
    cfg.model.type = "YOLACT"  # mmdet's detector computes the box losses before the masks
    model = MODELS.build(cfg.model)
    data = random_batch(model, [2, 1], with_mask=True)
    with pytest.raises(ValueError, match="RankSortYOLACT"):
        model.loss(data["inputs"], data["data_samples"])
    cfg.model.type = "RankSortYOLACT"
    cfg.model.mask_head.max_masks_to_train = 1
    model = MODELS.build(cfg.model)
    with pytest.raises(ValueError, match="max_masks_to_train"):
        model.loss(data["inputs"], data["data_samples"])
    with pytest.raises(ValueError, match="label must be one of"):
        RankSortYOLACTHead(num_classes=3, in_channels=8, label="giou")
    head = model.bbox_head  # its losses of the last batch are still prepared
    with pytest.raises(ValueError, match="needs the Dice coefficient of each of the"):
        head.ranking_losses()
    with pytest.raises(RuntimeError, match="loss_by_feat"):
        head.ranking_losses()  # used up



@pytest.mark.parametrize("name", ["no_ohem", "no_size_norm", "no_semantic_head", "no_heuristics"])
def test_table6_ablations_train(name, tmp_path):
    model = build_smoke_model(ABLATION_CONFIG.format(name), tmp_path)
    model.zero_grad()
    data = random_batch(model, [3, 2], with_mask=True)
    losses = model.loss(data["inputs"], data["data_samples"])
    with_segm = name in ("no_ohem", "no_size_norm")
    assert set(losses) == {"loss_cls", "loss_bbox", "loss_mask"} | ({"loss_segm"} if with_segm else set())
    assert model.bbox_head.use_ohem == (name not in ("no_ohem", "no_heuristics"))
    assert (model.mask_head.segm_branch is not None) == with_segm
    total = total_loss(losses)
    assert torch.isfinite(total) and total.item() > 0
    total.backward()
    assert_gradients_reach(model.bbox_head.conv_cls, model.bbox_head.conv_coeff, model.mask_head.protonet[0])


def _mask_losses(model, data):
    x = model.extract_feat(data["inputs"])
    model.bbox_head.loss(x, data["data_samples"])
    infos = model.bbox_head.get_positive_infos()
    losses = model.mask_head.loss(x, data["data_samples"], positive_infos=infos)
    return {k: torch.stack(v).sum() for k, v in losses.items()}


def test_ablation_protonet_is_mmdet_protonet_with_a_size_switch(tmp_path):
    baseline = build_smoke_model(BASELINE_CONFIG, tmp_path)
    ablated = build_smoke_model(ABLATION_CONFIG.format("no_size_norm"), tmp_path)
    ablated.load_state_dict(baseline.state_dict())
    for model in (baseline, ablated):
        model.mask_head.max_masks_to_train = 10**6  # no random subset
    data = random_batch(baseline, [3, 2], seed=5, with_mask=True)
    reference = _mask_losses(baseline, data)
    ablated.mask_head.size_normalisation = True  # then it is mmdet's YOLACTProtonet
    same = _mask_losses(ablated, data)
    for key in ("loss_mask", "loss_segm"):
        torch.testing.assert_close(same[key], reference[key], rtol=1e-6, atol=1e-7)
    ablated.mask_head.size_normalisation = False
    plain = _mask_losses(ablated, data)
    # boxes smaller than the image: the normalisation divides by areas < 1, so it only enlarges
    assert 0 < plain["loss_mask"].item() < reference["loss_mask"].item()
    torch.testing.assert_close(plain["loss_segm"], reference["loss_segm"])
    # every gt box the whole image: nothing to normalise, both agree
    for sample in data["data_samples"]:
        sample.gt_instances.bboxes[:] = torch.tensor([0.0, 0.0, 128.0, 128.0])
    ablated.mask_head.size_normalisation = True
    whole = _mask_losses(ablated, data)
    ablated.mask_head.size_normalisation = False
    torch.testing.assert_close(_mask_losses(ablated, data)["loss_mask"], whole["loss_mask"], rtol=1e-6, atol=1e-7)
