"""RS-SOLOv2 (RankSortSOLOV2Head): forward/backward, Dice labels, balancing, configs, smoke run."""
import pytest
import torch

pytest.importorskip("mmdet")
from mmengine.config import Config  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from model_cases import assert_gradients_reach, build_smoke_model, random_batch, recorded_calls, total_loss  # noqa: E402

import rankrepro.models  # noqa: E402,F401
import rankrepro.models.dense_heads.rank_sort_solov2_head  # noqa: E402,F401  (registers the head)
from rankrepro.data.synthetic import CLASSES, make_synthetic_coco  # noqa: E402
from rankrepro.models.dense_heads.rank_sort_solov2_head import dice_coefficient  # noqa: E402

register_all_modules()
RS = "configs/solov2/rs_solov2_r101_fpn_ms-3x_coco.py"
RS_LIGHT = "configs/solov2/rs_solov2-light_r34_fpn_ms-3x_coco.py"
BASE = "configs/solov2/solov2_r101_fpn_ms-3x_coco.py"
BASE_LIGHT = "configs/solov2/solov2-light_r34_fpn_ms-3x_coco.py"


@pytest.mark.parametrize("path", [RS, RS_LIGHT])
def test_forward_backward_reaches_category_and_mask_branches(path, tmp_path):
    model = build_smoke_model(path, tmp_path)
    data = random_batch(model, [4, 3], with_mask=True)
    losses = model.loss(data["inputs"], data["data_samples"])
    assert set(losses) == {"loss_rank", "loss_sort", "loss_mask"}
    assert all(torch.isfinite(v) for v in losses.values())
    assert total_loss(losses).item() > 0
    total_loss(losses).backward()
    head = model.mask_head
    assert_gradients_reach(head.conv_cls, head.conv_kernel, head.mask_feature_head.conv_pred.conv)
    assert not hasattr(head, "loss_cls")


def test_value_based_task_balancing(tmp_path):
    model = build_smoke_model(RS, tmp_path)
    data = random_batch(model, [4, 4], with_mask=True)
    losses = model.loss(data["inputs"], data["data_samples"])
    assert losses["loss_mask"].item() == pytest.approx((losses["loss_rank"] + losses["loss_sort"]).item(), rel=1e-5)


def test_batch_without_ground_truth_trains(tmp_path):
    model = build_smoke_model(RS, tmp_path)
    data = random_batch(model, [0, 0], with_mask=True)
    losses = model.loss(data["inputs"], data["data_samples"])
    total = total_loss(losses)
    assert torch.isfinite(total) and total.item() == 0.0
    total.backward()  # still connected to the graph


def test_unweighted_mask_loss_matches_solov2(tmp_path):
    """mask_weighting='none', fixed weight 1: SOLOv2's own Dice Loss (x loss_weight 3), up to the normaliser.

    SOLOv2 divides the summed Dice Loss by the number of positive cells, this head by the
    number of positive mask predictions (a cell shared by two instances has two).
    """
    model = build_smoke_model(RS, tmp_path, mask_weighting="none", task_balance=1.0)
    data = random_batch(model, [2, 1], seed=3, with_mask=True)
    head = model.mask_head
    outs = head(model.extract_feat(data["inputs"]))
    gts = [s.gt_instances for s in data["data_samples"]]
    metas = [s.metainfo for s in data["data_samples"]]
    ours = head.loss_by_feat(*outs, gts, metas)["loss_mask"]
    head.loss_cls = MODELS.build(dict(type="FocalLoss", use_sigmoid=True))
    mmdet_loss = type(head).__mro__[1].loss_by_feat(head, *outs, gts, metas)["loss_mask"]
    _, _, pos_masks, pos_indexes = zip(*(head._get_targets_single(g, featmap_sizes=outs[2].shape[-2:]) for g in gts))
    num_masks = sum(len(i) for img in pos_indexes for i in img)
    num_cells = sum(int(m.sum()) for img in pos_masks for m in img)
    assert num_masks > 0
    assert ours.item() * num_masks == pytest.approx(mmdet_loss.item() * num_cells, rel=1e-5)


@pytest.mark.parametrize("shared_cells", [False, True])
def test_positives_are_labelled_with_their_own_dice(shared_cells, tmp_path):
    """Each positive (cell, class) gets the Dice of the mask predicted by its own cell's kernel.

    The instances of a level are not in raster order here (the official code's label order
    would be wrong); with ``shared_cells`` a copy of an instance with another class shares
    all its cells, which then belong to the copy (mmdet's assignment: the later instance).
    """
    model = build_smoke_model(RS, tmp_path)
    data = random_batch(model, [6, 5], seed=1, with_mask=True)
    if shared_cells:
        gt = data["data_samples"][0].gt_instances
        copy = gt[[0]]
        copy.labels = (copy.labels + 1) % len(CLASSES)
        x1, y1, x2, y2 = copy.bboxes[0].int().tolist()
        filled = copy.masks.masks.copy()  # another mask (so another Dice), about the same centre
        filled[0, y1:y2, x1:x2] = 1
        copy.masks = type(copy.masks)(filled, *filled.shape[1:])
        data["data_samples"][0].gt_instances = gt.cat([gt, copy])
    head = model.mask_head
    with torch.no_grad(), recorded_calls(head.loss_rank, "forward") as calls:
        kernels, cls_preds, feats = head(model.extract_feat(data["inputs"]))
        gts = [s.gt_instances for s in data["data_samples"]]
        head.loss_by_feat(kernels, cls_preds, feats, gts, [s.metainfo for s in data["data_samples"]])
    (_, targets), _ = calls[0]
    targets = targets.reshape(-1, head.num_classes)
    expected = torch.zeros_like(targets)
    offset = 0
    for lvl, grid in enumerate(head.num_grids):
        for img, gt in enumerate(gts):
            masks, labels, _, index = (x[lvl] for x in head._get_targets_single(gt, featmap_sizes=feats.shape[-2:]))
            for target, cell in zip(masks, index):  # later instances overwrite a shared cell
                kernel = kernels[lvl][img, :, cell // grid, cell % grid]
                pred = torch.einsum("c,chw->hw", kernel, feats[img]).sigmoid()
                dice = dice_coefficient(pred[None], target[None]).item()
                expected[offset + img * grid**2 + cell] = 0
                expected[offset + img * grid**2 + cell, labels.flatten()[cell]] = dice
        offset += len(gts) * grid**2
    assert (expected > 0).sum() >= 10
    num_masks = sum(len(x) for gt in gts for x in head._get_targets_single(gt, featmap_sizes=feats.shape[-2:])[3])
    assert (num_masks > (expected > 0).sum()) == shared_cells
    torch.testing.assert_close(targets, expected, rtol=1e-4, atol=1e-6)


def test_paper_scale_configs_build():
    expected = {RS: (101, 0.006, 16, 4), RS_LIGHT: (34, 0.012, 32, 8), BASE: (101, 0.01, 16, 2), BASE_LIGHT: (34, 0.01, 16, 2)}
    for path, (depth, lr, batch, per_gpu) in expected.items():
        cfg = Config.fromfile(path)
        for module in cfg.custom_imports.imports:
            __import__(module)
        model = MODELS.build(cfg.model)
        assert model.backbone.depth == depth and model.mask_head.num_classes == 80
        assert cfg.optim_wrapper.optimizer.lr == lr and cfg.auto_scale_lr.base_batch_size == batch
        assert cfg.train_dataloader.batch_size == per_gpu and cfg.train_cfg.max_epochs == 36
        assert cfg.val_evaluator.type == "CocoOLRPMetric" and cfg.val_evaluator.metric == "segm"
        rs = path in (RS, RS_LIGHT)
        assert type(model.mask_head).__name__ == ("RankSortSOLOV2Head" if rs else "SOLOV2Head")
        if rs:
            assert model.mask_head.mask_weighting == "score" and model.mask_head.task_balance == "value"
    assert Config.fromfile(RS_LIGHT).test_dataloader.dataset.pipeline[1].scale == (448, 768)
    light = MODELS.build(Config.fromfile(RS_LIGHT).model).mask_head
    assert light.stacked_convs == 2 and light.feat_channels == 256 and light.kernel_out_channels == 128


def test_rs_solov2_smoke_trains_and_evaluates(tmp_path):
    from rankrepro.runner import test, train

    data_root = tmp_path / "data"
    make_synthetic_coco(data_root, num_train=16, num_val=8)
    train(RS, tmp_path / "work", smoke=True, data_root=data_root, max_iters=3)
    checkpoint = tmp_path / "work" / "iter_3.pth"
    assert checkpoint.exists()
    # (the validation at the end of training ran with the config's thresholds: an untrained
    # model has no detection above them; here all are kept, so the metric sees masks)
    keep_all = {"model.test_cfg.score_thr": 0.0, "model.test_cfg.filter_thr": 0.0}
    metrics = test(RS, checkpoint, tmp_path / "test", smoke=True, data_root=data_root, cfg_options=keep_all)
    assert "coco/segm_mAP" in metrics and "coco/segm_oLRP" in metrics
    assert 0.0 <= metrics["coco/segm_mAP"] <= 1.0 and 0.0 <= metrics["coco/segm_oLRP"] <= 1.0
