"""The Co-DETR / BRS-DETR configs (configs/co_detr): the official 1x recipe in the paper-scale
configs, the BRS-DETR reconstruction's heads, the smoke variants building, training (gradients
to every part) and evaluating on CPU."""
import json

import pytest
import torch

pytest.importorskip("mmdet")
from mmengine.config import Config  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from model_cases import assert_gradients_reach, random_batch, total_loss  # noqa: E402

import rankrepro.models  # noqa: E402,F401
from rankrepro.registry import load_experiments  # noqa: E402
from rankrepro.smoke import smoke_config  # noqa: E402

register_all_modules()
STEMS = [f"{kind}co-deformable-detr_{arch}_1x_coco" for arch in ("r50", "swin-t", "swin-l") for kind in ("", "brs_")]
R50, BRS_R50 = "configs/co_detr/co-deformable-detr_r50_1x_coco.py", "configs/co_detr/brs_co-deformable-detr_r50_1x_coco.py"


def _path(stem):
    return f"configs/co_detr/{stem}.py"


def _plain(cfg):
    return cfg.to_dict() if hasattr(cfg, "to_dict") else cfg


@pytest.mark.parametrize("stem", STEMS)
def test_paper_configs_follow_co_detrs_1x_recipe(stem):
    cfg = Config.fromfile(_path(stem))
    model = cfg.model
    assert model.type == "CoDeformableDETR" and model.num_queries == 300 and model.as_two_stage and model.with_box_refine
    assert model.mixed_selection and model.look_forward_twice and model.decoder.num_layers == 6 and model.encoder.num_layers == 6
    assert model.encoder.layer_cfg.ffn_cfg.feedforward_channels == 2048 and model.decoder.layer_cfg.ffn_cfg.ffn_drop == 0.0
    assert cfg.optim_wrapper.optimizer.type == "AdamW" and cfg.optim_wrapper.optimizer.lr == 2e-4
    assert cfg.optim_wrapper.clip_grad.max_norm == 0.1
    assert _plain(cfg.optim_wrapper.paramwise_cfg.custom_keys)["backbone"] == {"lr_mult": 0.1}
    assert cfg.optim_wrapper.optimizer.weight_decay == (1e-4 if "r50" in stem else 0.05)
    assert cfg.train_cfg.max_epochs == 12 and cfg.param_scheduler[0].milestones == [11]
    assert cfg.train_dataloader.batch_size == 2 and cfg.auto_scale_lr.base_batch_size == 16
    assert len(model.aux_roi_heads) == 1 and len(model.aux_dense_heads) == 1
    costs = [c["type"] for c in model.train_cfg.assigner.match_costs]
    assert costs == ["FocalLossCost", "BBoxL1Cost", "IoUCost"]  # BRS-DETR keeps Co-DETR's matching
    if "swin" in stem:
        dims = 96 if "swin-t" in stem else 192
        assert model.backbone.type == "SwinTransformer" and model.backbone.embed_dims == dims
        assert list(model.neck.in_channels) == [2 * dims, 4 * dims, 8 * dims]
    entry = load_experiments()[stem]
    assert entry.config == _path(stem) and entry.gpus * entry.images_per_gpu == 16


def test_brs_detr_uses_the_ranking_heads_and_the_baseline_co_detrs_losses():
    base, brs = Config.fromfile(R50).model, Config.fromfile(BRS_R50).model
    assert base.bbox_head.type == "CoDeformableDETRHead" and base.bbox_head.loss_cls.type == "FocalLoss"
    assert base.aux_dense_heads[0].loss_cls.loss_weight == 12.0 and base.aux_roi_heads[0].bbox_head.loss_bbox.loss_weight == 120.0
    assert brs.bbox_head.type == "RankBasedCoDeformableDETRHead" and brs.bbox_head.loss_cls is None
    for head_loss in (brs.bbox_head.loss_rank, brs.aux_rpn_head.loss_rank, brs.aux_roi_heads[0].bbox_head.loss_rank, brs.aux_dense_heads[0].loss_rank):
        assert _plain(head_loss) == {"type": "BucketedRankSortLoss", "delta": 0.5}
    assert brs.aux_dense_heads[0].type == "RankBasedCoATSSHead" and brs.aux_dense_heads[0].loss_weight == 12.0
    assert brs.aux_roi_heads[0].type == "RankBasedCoStandardRoIHead" and brs.aux_roi_heads[0].loss_weight == 12.0
    assert brs.aux_rpn_head.type == "RankBasedRPNHead" and brs.aux_rpn_head.head_weight == pytest.approx(2.4)
    # Co-DETR's auxiliary architectures kept: ATSS anchors and depth, the RoI extractor
    assert _plain(brs.aux_dense_heads[0].anchor_generator) == _plain(base.aux_dense_heads[0].anchor_generator)
    assert brs.aux_dense_heads[0].stacked_convs == 1


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from rankrepro.data.synthetic import make_synthetic_coco

    root = tmp_path_factory.mktemp("synthetic_co_detr")
    make_synthetic_coco(root, num_train=8, num_val=8)
    return root


def _smoke_model(stem, data_root):
    cfg = smoke_config(Config.fromfile(_path(stem)), data_root)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return cfg, model


@pytest.mark.parametrize("stem", STEMS)
def test_smoke_variants_build_small_and_keep_the_method(stem, data_root):
    cfg, model = _smoke_model(stem, data_root)
    assert cfg.smoke_substitutions == []
    assert model.num_queries == 30 and model.decoder.num_layers == 2 and model.embed_dims == 64
    assert type(model.bbox_head).__name__ == ("RankBasedCoDeformableDETRHead" if stem.startswith("brs_") else "CoDeformableDETRHead")
    assert type(model.backbone).__name__ == ("SwinTransformer" if "swin" in stem else "ResNet")
    if "swin" in stem:  # the smoke rule's tiny Swin: 16 channels, 2 blocks per stage, the config's window kept
        assert cfg.model.backbone.embed_dims == 16 and list(cfg.model.backbone.depths) == [2, 2, 2, 2]
        assert cfg.model.backbone.window_size == (7 if "swin-t" in stem else 12) and list(cfg.model.neck.in_channels) == [32, 64, 128]
    # the transformer and the heads at the smoke width (the paper-scale R-50 Co-DETR has ~40M outside its backbone)
    assert sum(p.numel() for name, p in model.named_parameters() if not name.startswith("backbone.")) < 3_000_000


@pytest.mark.parametrize("stem", ["co-deformable-detr_r50_1x_coco", "brs_co-deformable-detr_r50_1x_coco", "brs_co-deformable-detr_swin-t_1x_coco"])
def test_forward_backward_reaches_every_part(stem, data_root):
    _, model = _smoke_model(stem, data_root)
    data = random_batch(model, [3, 2])
    losses = model.loss(data["inputs"], data["data_samples"])
    brs = stem.startswith("brs_")
    expected = {"loss_cls", "loss_bbox", "loss_iou", "enc_loss_cls", "loss_cls_aux0", "loss_cls_aux1", "d0.loss_cls_aux1"}
    expected |= {"loss_rpn_rank", "loss_roi_rank0", "loss_rank1"} if brs else {"loss_rpn_cls", "loss_cls0", "loss_centerness1"}
    assert expected <= set(losses)
    total = total_loss(losses)
    assert torch.isfinite(total) and total.item() > 0
    total.backward()
    head = model.bbox_head
    assert_gradients_reach(head.cls_branches[0], head.cls_branches[-1], head.reg_branches[0][-1], context=f"{stem} one-to-one: ")
    assert_gradients_reach(model.aux_dense_heads[0].atss_cls, model.aux_dense_heads[0].atss_reg, context=f"{stem} ATSS: ")
    assert_gradients_reach(model.aux_roi_heads[0].bbox_head.fc_cls, model.aux_rpn_head.rpn_conv, context=f"{stem} R-CNN: ")
    first = next(p for p in model.backbone.parameters() if p.requires_grad)
    assert first.grad is not None and first.grad.abs().sum() > 0
    if brs:  # the one-to-one head's box losses are value-balanced to its BRS Loss, layer by layer
        assert losses["loss_bbox"].item() == pytest.approx(losses["loss_cls"].item(), rel=1e-5)
        assert losses["d0.loss_iou"].item() == pytest.approx(losses["d0.loss_cls"].item(), rel=1e-5)


@pytest.mark.parametrize("stem", ["co-deformable-detr_r50_1x_coco", "brs_co-deformable-detr_r50_1x_coco"])
def test_batch_without_ground_truth(stem, data_root):
    _, model = _smoke_model(stem, data_root)
    data = random_batch(model, [0, 0])
    losses = model.loss(data["inputs"], data["data_samples"])
    total = total_loss(losses)
    assert torch.isfinite(total)
    total.backward()
    if stem.startswith("brs_"):  # no positives anywhere: every ranking loss and balanced box loss is 0
        assert losses["loss_cls"].item() == 0.0 and losses["loss_rank1"].item() == 0.0


@pytest.mark.parametrize(
    "stem",
    ["brs_co-deformable-detr_r50_1x_coco", pytest.param("co-deformable-detr_r50_1x_coco", marks=pytest.mark.slow)]
    + [pytest.param(s, marks=pytest.mark.slow) for s in STEMS if "swin" in s],
)
def test_smoke_config_trains_and_evaluates(stem, data_root, tmp_path):
    from rankrepro import runner

    runner.train(_path(stem), tmp_path, smoke=True, data_root=data_root, max_iters=2)
    out = tmp_path / "metrics.json"
    metrics = runner.test(_path(stem), tmp_path / "iter_2.pth", tmp_path / "test", out=out, smoke=True, data_root=data_root)
    assert "coco/bbox_mAP" in metrics and 0.0 <= metrics["coco/bbox_oLRP"] <= 1.0
    assert json.loads(out.read_text())["metrics"]["coco/bbox_mAP"] == pytest.approx(metrics["coco/bbox_mAP"])
