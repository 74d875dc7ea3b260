"""Mask R-CNN configs (configs/mask_rcnn/): COCO, LVIS v1 and Cityscapes, RS / BRS / baselines.

Each config loads, its model builds at paper scale (CARAFE and DCNv2 modules included), its
resolved settings are the official ones (RankSortLoss / BucketedRankingBasedLosses configs,
mmdet's baselines), it differs from mmdet's Mask R-CNN of its dataset only where the RS recipe
says so, and its smoke variant trains and evaluates (RS-Mask R-CNN COCO here, the others
``slow``).
"""
from __future__ import annotations

import json
import math
from copy import deepcopy
from pathlib import Path

import pytest

pytest.importorskip("mmdet")
import yaml  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402

from test_published import load_config  # noqa: E402,F401  (fixture: Config.fromfile, memoised)

import rankrepro.evaluation.metrics  # noqa: E402,F401
import rankrepro.models  # noqa: E402,F401

register_all_modules()
ROOT = Path(__file__).resolve().parents[1]
DIR = "configs/mask_rcnn"

RS = f"{DIR}/rs_mask-rcnn_r50_fpn_1x_coco.py"
RS_CARAFE = f"{DIR}/rs_mask-rcnn_r50_fpn-carafe_1x_coco.py"
RS_R101 = f"{DIR}/rs_mask-rcnn_r101_fpn_ms-640-800-3x_coco.py"
RS_R101_CARAFE = f"{DIR}/rs_mask-rcnn_r101_fpn-carafe_ms-480-960-3x_coco.py"
RS_R101_DCN = f"{DIR}/rs_mask-rcnn_r101-dconv-c3-c5_fpn-carafe_ms-480-960-3x_coco.py"
RS_X101_DCN = f"{DIR}/rs_mask-rcnn_x101-64x4d-dconv-c3-c5_fpn-carafe_ms-480-960-3x_coco.py"
BASE = f"{DIR}/mask-rcnn_r50_fpn_1x_coco.py"
BRS = f"{DIR}/brs_mask-rcnn_r50_fpn_1x_coco.py"
BRS_R101 = f"{DIR}/brs_mask-rcnn_r101_fpn_ms-640-800-3x_coco.py"
RS_LVIS = f"{DIR}/rs_mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py"
BASE_LVIS = f"{DIR}/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py"
BRS_LVIS = f"{DIR}/brs_mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py"
RS_CITY = f"{DIR}/rs_mask-rcnn_r50_fpn_1x_cityscapes.py"
BRS_CITY = f"{DIR}/brs_mask-rcnn_r50_fpn_1x_cityscapes.py"
ALL = [RS, RS_CARAFE, RS_R101, RS_R101_CARAFE, RS_R101_DCN, RS_X101_DCN, BASE, BRS, BRS_R101,
       RS_LVIS, BASE_LVIS, BRS_LVIS, RS_CITY, BRS_CITY]
RANKED = [p for p in ALL if p not in (BASE, BASE_LVIS)]
BUCKETED = [BRS, BRS_R101, BRS_LVIS, BRS_CITY]

SCALES_640_800 = [(1333, 800), (1333, 768), (1333, 736), (1333, 704), (1333, 672), (1333, 640)]
SCALES_480_960 = [(1333, 480), (1333, 560), (1333, 640), (1333, 720), (1333, 800), (1333, 880), (1333, 960)]
CARAFE_UPSAMPLE = dict(type='carafe', up_kernel=5, up_group=1, encoder_kernel=3, encoder_dilation=1, compressed_channels=64)
COCO_MASK_RCNN = ("https://download.openmmlab.com/mmdetection/v2.0/mask_rcnn/mask_rcnn_r50_fpn_1x_coco/"
                  "mask_rcnn_r50_fpn_1x_coco_20200205-d4b0c5d6.pth")


def flat(node, prefix: str = "") -> dict:
    """``{'model.rpn_head.type': 'RPNHead', ...}``: a config's leaves by dotted path (list items of
    dicts by index), without mmengine's ``_scope_`` bookkeeping."""
    out = {}
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "_scope_":
                out.update(flat(value, f"{prefix}{key}."))
    elif isinstance(node, (list, tuple)) and any(isinstance(x, dict) for x in node):
        for i, value in enumerate(node):
            out.update(flat(value, f"{prefix}{i}."))
    else:
        out[prefix[:-1]] = node
    return out


def differing(a: Config, b: Config) -> set:
    fa, fb = flat(a.to_dict()), flat(b.to_dict())
    return {k for k in set(fa) | set(fb) if fa.get(k, "<absent>") != fb.get(k, "<absent>")}


def resize_step(cfg: Config) -> dict:
    dataset = cfg.train_dataloader.dataset
    while "pipeline" not in dataset:  # ClassBalancedDataset / RepeatDataset wrappers
        dataset = dataset.dataset
    (step,) = [s for s in dataset.pipeline if "Resize" in s.type]
    return step


def test_registry_names_every_config_once():
    experiments = yaml.safe_load((ROOT / "configs" / "experiments.yaml").read_text())
    registered = sorted(e["config"] for e in experiments.values() if e.get("config", "").startswith(DIR + "/"))
    assert registered == sorted(ALL)
    assert sorted(str(p.relative_to(ROOT)) for p in (ROOT / DIR).glob("*.py")) == sorted(ALL)


@pytest.mark.parametrize("path", ALL)
def test_model_builds_at_paper_scale(path, load_config):
    model = MODELS.build(deepcopy(load_config(path).model))  # no weights loaded (init_weights is not called)
    ranked = path in RANKED
    assert type(model).__name__ == "MaskRCNN"
    assert type(model.rpn_head).__name__ == ("RankBasedRPNHead" if ranked else "RPNHead")
    assert type(model.roi_head).__name__ == ("RankBasedStandardRoIHead" if ranked else "StandardRoIHead")
    assert type(model.roi_head.bbox_head).__name__ == ("RankBasedShared2FCBBoxHead" if ranked else "Shared2FCBBoxHead")
    assert type(model.roi_head.mask_head).__name__ == ("RankBasedFCNMaskHead" if ranked else "FCNMaskHead")
    classes = 1203 if "lvis" in path else 8 if "cityscapes" in path else 80
    assert model.roi_head.bbox_head.num_classes == model.roi_head.mask_head.num_classes == classes
    if ranked:
        # sigmoid classifiers: one output per class, no background column
        assert model.roi_head.bbox_head.fc_cls.out_features == classes
        assert model.roi_head.max_masks == 200
        expected_loss = "BucketedRankSortLoss" if path in BUCKETED else "RankSortLoss"
        assert type(model.rpn_head.loss_rank).__name__ == type(model.roi_head.bbox_head.loss_rank).__name__ == expected_loss
        assert model.rpn_head.loss_rank.delta == model.roi_head.bbox_head.loss_rank.delta == 0.5
        assert model.rpn_head.head_weight == 0.2
    else:
        assert model.roi_head.bbox_head.fc_cls.out_features == classes + 1
    carafe = "carafe" in path
    assert type(model.neck).__name__ == ("FPN_CARAFE" if carafe else "FPN")
    if carafe:
        # 3 top-down upsamplings (P5->P4->P3->P2) and one of the extra level P6, all CARAFE
        assert [type(m).__name__ for m in model.neck.upsample_modules] == ["CARAFEPack"] * 4
        # the official "+" changes FPN only: the mask head keeps its deconvolution
        assert type(model.roi_head.mask_head.upsample).__name__ == "ConvTranspose2d"
    depth = 50 if "r50" in path else 101
    assert model.backbone.depth == depth
    assert type(model.backbone).__name__ == ("ResNeXt" if "x101" in path else "ResNet")
    dcn = "dconv" in path
    for layer, stage_has_dcn in zip((model.backbone.layer1, model.backbone.layer2, model.backbone.layer3,
                                     model.backbone.layer4), (False, dcn, dcn, dcn)):
        conv2 = layer[0].conv2
        assert type(conv2).__name__ == ("ModulatedDeformConv2dPack" if stage_has_dcn else "Conv2d"), path
        if stage_has_dcn:
            assert conv2.deform_groups == 4
    if "x101" in path:
        assert model.backbone.groups == 64 and model.backbone.base_width == 4
        assert model.backbone.layer1[0].conv2.groups == 64


# ------------------------------------------------------------------ resolved settings
# What the official configs resolve to: (epochs, LR milestones, train resize, lr, images per GPU,
# total batch, test score threshold, detections per image)
SCHEDULES = {
    RS: (12, [8, 11], (1333, 800), 0.012, 4, 16, 0.40, 100),
    RS_CARAFE: (12, [8, 11], (1333, 800), 0.012, 4, 16, 0.40, 100),
    BRS: (12, [8, 11], (1333, 800), 0.012, 4, 16, 0.40, 100),
    RS_R101: (36, [27, 33], SCALES_640_800, 0.012, 4, 16, 0.40, 100),
    BRS_R101: (36, [27, 33], SCALES_640_800, 0.012, 4, 16, 0.40, 100),
    RS_R101_CARAFE: (36, [27, 33], SCALES_480_960, 0.012, 4, 16, 0.40, 100),
    RS_R101_DCN: (36, [27, 33], SCALES_480_960, 0.012, 4, 16, 0.40, 100),
    RS_X101_DCN: (36, [27, 33], SCALES_480_960, 0.012, 4, 16, 0.40, 100),
    BASE: (12, [8, 11], (1333, 800), 0.02, 2, 16, 0.05, 100),
    RS_LVIS: (12, [8, 11], SCALES_640_800[::-1], 0.012, 4, 16, 0.60, 300),
    BRS_LVIS: (12, [8, 11], SCALES_640_800[::-1], 0.012, 4, 16, 0.60, 300),
    BASE_LVIS: (12, [8, 11], SCALES_640_800[::-1], 0.02, 2, 16, 0.0001, 300),
    RS_CITY: (12, [8], [(2048, 800), (2048, 1024)], 0.012, 4, 16, 0.40, 100),
    BRS_CITY: (12, [8], [(2048, 800), (2048, 1024)], 0.012, 4, 16, 0.40, 100),
}


@pytest.mark.parametrize("path", ALL)
def test_schedule_data_and_test_settings_are_the_official_ones(path, load_config):
    cfg = load_config(path)
    epochs, milestones, resize, lr, per_gpu, batch, score_thr, max_per_img = SCHEDULES[path]
    assert cfg.train_cfg.max_epochs == epochs
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.end, warmup.by_epoch) == ("LinearLR", 0.001, 500, False)
    assert (steps.type, steps.milestones, steps.end, steps.gamma) == ("MultiStepLR", milestones, epochs, 0.1)
    assert cfg.optim_wrapper.optimizer == dict(type="SGD", lr=lr, momentum=0.9, weight_decay=0.0001)
    assert cfg.train_dataloader.batch_size == per_gpu and cfg.auto_scale_lr.base_batch_size == batch
    step = resize_step(cfg)
    if isinstance(resize, list) and path not in (RS_CITY, BRS_CITY):
        # the official discrete scale lists (mmdet 2.x multiscale_mode='value')
        assert step.type == "RandomChoiceResize" and [tuple(s) for s in step.scales] == resize
    elif isinstance(resize, list):  # Cityscapes: mmdet's range [800, 1024] (RandomResize)
        assert step.type == "RandomResize" and [tuple(s) for s in step.scale] == resize
    else:
        assert step.type == "Resize" and tuple(step.scale) == resize
    assert step.keep_ratio
    test_resize = [s for s in cfg.test_dataloader.dataset.pipeline if s.type == "Resize"][0]
    assert tuple(test_resize.scale) == ((2048, 1024) if "cityscapes" in path else (1333, 800))
    rcnn = cfg.model.test_cfg.rcnn
    assert (rcnn.score_thr, rcnn.max_per_img, rcnn.nms.iou_threshold, rcnn.mask_thr_binary) == (score_thr, max_per_img, 0.5, 0.5)
    # mmdet 2.x's RPN settings of the official configs: 2000 / 1000 boxes before / after NMS 0.7
    # in training, 1000 / 1000 at test
    rpn_train, rpn_test = cfg.model.train_cfg.rpn_proposal, cfg.model.test_cfg.rpn
    assert (rpn_train.nms_pre, rpn_train.max_per_img, rpn_train.nms.iou_threshold) == (2000, 1000, 0.7)
    assert (rpn_test.nms_pre, rpn_test.max_per_img, rpn_test.nms.iou_threshold) == (1000, 1000, 0.7)


@pytest.mark.parametrize("path", RANKED)
def test_rank_based_heads_are_configured_as_the_official_ones(path, load_config):
    model = load_config(path).model
    stds = [0.1, 0.1, 0.2, 0.2]
    assert model.rpn_head.bbox_coder.target_stds == model.roi_head.bbox_head.bbox_coder.target_stds == stds
    assert model.rpn_head.loss_bbox == model.roi_head.bbox_head.loss_bbox == dict(type="GIoULoss", reduction="none")
    assert model.roi_head.bbox_head.reg_decoded_bbox is True
    assert model.roi_head.bbox_head.loss_cls == dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0)
    # no sampler in either stage (the R-CNN one keeps every RoI, as the official configs write it)
    assert model.train_cfg.rpn.sampler == dict(type="PseudoSampler")
    assert model.train_cfg.rcnn.sampler == dict(type="RandomSampler", num=1e10, pos_fraction=0.25, neg_pos_ub=-1,
                                                add_gt_as_proposals=True)
    # the assigners are Mask R-CNN's
    assert (model.train_cfg.rpn.assigner.pos_iou_thr, model.train_cfg.rpn.assigner.neg_iou_thr) == (0.7, 0.3)
    assert model.train_cfg.rcnn.assigner.pos_iou_thr == model.train_cfg.rcnn.assigner.neg_iou_thr == 0.5


@pytest.mark.parametrize("path,dataset,wrapper", [
    (RS, "CocoDataset", None), (RS_R101, "CocoDataset", None), (BRS_R101, "CocoDataset", None),
    (RS_X101_DCN, "CocoDataset", None), (BASE, "CocoDataset", None),
    # repeat factor sampling at oversample threshold 1e-3 (the official RS LVIS config's dataset base)
    (RS_LVIS, "LVISV1Dataset", ("ClassBalancedDataset", "oversample_thr", 1e-3)),
    (BRS_LVIS, "LVISV1Dataset", ("ClassBalancedDataset", "oversample_thr", 1e-3)),
    (BASE_LVIS, "LVISV1Dataset", ("ClassBalancedDataset", "oversample_thr", 1e-3)),
    # the intended base of the official Cityscapes configs: RepeatDataset x 8
    (RS_CITY, "CityscapesDataset", ("RepeatDataset", "times", 8)),
    (BRS_CITY, "CityscapesDataset", ("RepeatDataset", "times", 8)),
])
def test_datasets_wrappers_and_evaluators(path, dataset, wrapper, load_config):
    cfg = load_config(path)
    train = cfg.train_dataloader.dataset
    if wrapper is None:  # the 3x configs: 36 epochs, no RepeatDataset (as the published logs)
        assert train.type == dataset
    else:
        kind, key, value = wrapper
        assert (train.type, train[key], train.dataset.type) == (kind, value, dataset)
    assert cfg.val_dataloader.dataset.type == dataset
    evaluator = cfg.val_evaluator
    assert cfg.test_evaluator == evaluator
    assert evaluator.type == ("LVISOLRPMetric" if "lvis" in path else "CocoOLRPMetric")
    assert list(evaluator.metric) == ["bbox", "segm"]
    expected_ann = {"CocoDataset": "data/coco/annotations/instances_val2017.json",
                    "LVISV1Dataset": "data/lvis_v1/annotations/lvis_v1_val.json",
                    "CityscapesDataset": "data/cityscapes/annotations/instancesonly_filtered_gtFine_val.json"}[dataset]
    assert evaluator.ann_file == expected_ann
    assert cfg.get("load_from") == (COCO_MASK_RCNN if "cityscapes" in path else None)
    if "cityscapes" in path:
        assert cfg.model.backbone.init_cfg is None  # the COCO checkpoint initialises it
    else:
        checkpoint = ("open-mmlab://resnext101_64x4d" if "x101" in path
                      else "torchvision://resnet101" if "r101" in path else "torchvision://resnet50")
        assert cfg.model.backbone.init_cfg == dict(type="Pretrained", checkpoint=checkpoint)


def mmdet_config(tmp_path, base: str) -> Config:
    """mmdet's own config, loaded through ``mmdet::`` as ours load their bases."""
    path = tmp_path / "mmdet_config.py"
    path.write_text(f"_base_ = 'mmdet::{base}'\n")
    return Config.fromfile(str(path))


RS_CHANGES = {
    "custom_imports.imports", "custom_imports.allow_failed_imports",
    # the smoke variant's gradient clipping (paper scale: none, as mmdet's)
    "smoke_overrides.optim_wrapper.clip_grad.max_norm", "smoke_overrides.optim_wrapper.clip_grad.norm_type",
    "model.rpn_head.type", "model.rpn_head.loss_rank.type", "model.rpn_head.loss_rank.delta", "model.rpn_head.head_weight",
    "model.rpn_head.bbox_coder.target_stds", "model.rpn_head.loss_bbox.type", "model.rpn_head.loss_bbox.reduction",
    "model.rpn_head.loss_bbox.loss_weight",
    "model.roi_head.type", "model.roi_head.max_masks", "model.roi_head.bbox_head.type",
    "model.roi_head.bbox_head.loss_rank.type", "model.roi_head.bbox_head.loss_rank.delta",
    "model.roi_head.bbox_head.loss_cls.use_sigmoid", "model.roi_head.bbox_head.reg_decoded_bbox",
    "model.roi_head.bbox_head.loss_bbox.type", "model.roi_head.bbox_head.loss_bbox.reduction",
    "model.roi_head.bbox_head.loss_bbox.loss_weight", "model.roi_head.bbox_head.loss_bbox.beta",
    "model.roi_head.mask_head.type",
    "model.train_cfg.rpn.sampler.type", "model.train_cfg.rpn.sampler.num", "model.train_cfg.rpn.sampler.pos_fraction",
    "model.train_cfg.rpn.sampler.neg_pos_ub", "model.train_cfg.rpn.sampler.add_gt_as_proposals",
    "model.train_cfg.rcnn.sampler.num", "model.test_cfg.rcnn.score_thr",
    "train_dataloader.batch_size", "optim_wrapper.optimizer.lr",
}


@pytest.mark.parametrize("path,mmdet_base,extra", [
    (RS, "mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py", {"val_evaluator.type", "test_evaluator.type", "auto_scale_lr.enable"}),
    (RS_LVIS, "lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py",
     {"val_evaluator.type", "test_evaluator.type", "auto_scale_lr.enable"}),
    # Cityscapes: the official RS config's schedule (12 epochs, step at 8) and COCO-style evaluation only
    (RS_CITY, "cityscapes/mask-rcnn_r50_fpn_1x_cityscapes.py",
     {"train_cfg.max_epochs", "param_scheduler.1.end", "param_scheduler.1.milestones", "auto_scale_lr.enable",
      *(f"{e}_evaluator.{k}" for e in ("val", "test") for k in ("type", "ann_file", "metric")),
      *(f"{e}_evaluator.{i}.{k}" for e in ("val", "test") for i, keys in
        ((0, ("type", "ann_file", "metric", "backend_args")), (1, ("type", "seg_prefix", "outfile_prefix", "backend_args")))
        for k in keys)}),
])
def test_rs_differs_from_mmdet_mask_rcnn_only_in_the_rs_recipe(path, mmdet_base, extra, tmp_path, load_config):
    """Everything but the RS recipe (heads, samplers, score threshold, batch, lr) and the evaluator
    is mmdet's Mask R-CNN of the dataset (model, data pipelines, schedule, runtime)."""
    changed = differing(load_config(path), mmdet_config(tmp_path, mmdet_base))
    allowed = RS_CHANGES | extra
    assert changed <= allowed, sorted(changed - allowed)
    # and the recipe's keys really differ (the comparison sees them)
    assert {"model.rpn_head.type", "model.roi_head.max_masks", "model.train_cfg.rcnn.sampler.num",
            "model.test_cfg.rcnn.score_thr", "optim_wrapper.optimizer.lr"} <= changed


@pytest.mark.parametrize("variant,of,expected", [
    (BRS, RS, set()), (BRS_R101, RS_R101, set()), (BRS_LVIS, RS_LVIS, set()), (BRS_CITY, RS_CITY, set()),
    (RS_CARAFE, RS, {"model.neck"}),
    (RS_R101, RS, {"model.backbone", "train_pipeline", "train_dataloader.dataset.pipeline", "train_cfg.max_epochs",
                   "param_scheduler"}),
    (RS_R101_CARAFE, RS_R101, {"model.neck", "train_pipeline", "train_dataloader.dataset.pipeline"}),
    (RS_R101_DCN, RS_R101_CARAFE, {"model.backbone.dcn", "model.backbone.stage_with_dcn"}),
    (RS_X101_DCN, RS_R101_DCN, {"model.backbone"}),
])
def test_variants_change_only_what_their_name_says(variant, of, expected, load_config):
    """BRS configs swap the ranking loss of both heads and nothing else; a "+" config swaps FPN
    for Carafe FPN; the R-101 configs swap backbone, scales and schedule."""
    changed = differing(load_config(variant), load_config(of))
    loss_keys = {f"model.{head}.loss_rank.type" for head in ("rpn_head", "roi_head.bbox_head")}
    if variant in BUCKETED:
        assert changed == loss_keys
        return
    assert changed, variant
    assert all(any(k == p or k.startswith(p + ".") for p in expected) for k in changed), sorted(changed)


def test_carafe_neck_and_dcn_are_the_official_ones(load_config):
    neck = load_config(RS_CARAFE).model.neck
    assert neck == dict(type="FPN_CARAFE", in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5,
                        start_level=0, end_level=-1, norm_cfg=None, act_cfg=None, order=("conv", "norm", "act"),
                        upsample_cfg=CARAFE_UPSAMPLE)
    for path in (RS_R101_CARAFE, RS_R101_DCN, RS_X101_DCN):
        assert load_config(path).model.neck == neck
    # the official "+" leaves the mask head's upsampling (FCNMaskHead's default deconv) alone
    assert "upsample_cfg" not in load_config(RS_CARAFE).model.roi_head.mask_head
    for path in (RS_R101_DCN, RS_X101_DCN):
        dcn = load_config(path).model.backbone
        assert dcn.dcn == dict(type="DCNv2", deform_groups=4, fallback_on_stride=False)
        assert dcn.stage_with_dcn == (False, True, True, True) and dcn.frozen_stages == 1


# ------------------------------------------------------------------ smoke runs
def _train_and_test(path, tmp_path, data_root, max_iters=3):
    from rankrepro.runner import test, train

    # mmdet's runtime names its visualizer 'visualizer', and mmengine reuses an existing instance
    # of that name (with the first run's log folder): a name of this run's own keeps its scalars here
    visualizer = {"visualizer.name": f"visualizer_{tmp_path.name}"}
    train(path, tmp_path / "work", smoke=True, data_root=data_root, max_iters=max_iters, cfg_options=visualizer)
    checkpoint = tmp_path / "work" / f"iter_{max_iters}.pth"
    assert checkpoint.exists()
    # (the end-of-training validation ran at the config's score threshold; an untrained model
    # has few detections above it, so the test keeps them all)
    metrics = test(path, checkpoint, tmp_path / "test", smoke=True, data_root=data_root,
                   cfg_options={"model.test_cfg.rcnn.score_thr": 0.0, "visualizer.name": f"visualizer_{tmp_path.name}_test"})
    (scalars,) = (tmp_path / "work").glob("*/vis_data/scalars.json")
    logged = [json.loads(line) for line in scalars.read_text().splitlines()]
    return metrics, [entry for entry in logged if "loss" in entry]


def _assert_metrics(metrics, prefix):
    for iou in ("bbox", "segm"):
        for name in ("mAP", "oLRP"):
            value = metrics[f"{prefix}/{iou}_{name}"]
            assert 0.0 <= value <= 1.0, (iou, name, value)
    # some boxes of the 3-iteration model overlap the objects (all detections are kept)
    assert metrics[f"{prefix}/bbox_oLRP"] < 1.0


RS_LOSSES = {"loss_rpn_rank", "loss_rpn_sort", "loss_rpn_bbox", "loss_roi_rank", "loss_roi_sort", "loss_roi_bbox", "loss_mask"}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from rankrepro.data.synthetic import make_synthetic_coco

    root = tmp_path_factory.mktemp("mask_rcnn_data")
    make_synthetic_coco(root, num_train=16, num_val=8)
    return root


KEPT_BY_SMOKE = ("rpn_head.type", "rpn_head.loss_rank", "rpn_head.head_weight", "rpn_head.loss_bbox", "roi_head.type",
                 "roi_head.max_masks", "roi_head.bbox_head.type", "roi_head.bbox_head.loss_rank",
                 "roi_head.bbox_head.loss_cls", "roi_head.bbox_head.loss_bbox", "roi_head.bbox_head.reg_decoded_bbox",
                 "roi_head.mask_head.type", "train_cfg", "test_cfg", "backbone.dcn", "backbone.stage_with_dcn")


def _get(node, dotted):
    for key in dotted.split("."):
        node = node.get(key) if node is not None else None
    return node


@pytest.mark.parametrize("path", ALL)
def test_smoke_variant_keeps_the_method_and_lists_its_substitutions(path, synthetic, load_config):
    """The CPU smoke variant shrinks widths, data and schedule; heads, losses, samplers and test
    settings stay; what it must substitute (CARAFE has no CPU kernel, DCN needs Bottleneck
    blocks, Cityscapes' RepeatDataset x 8) is listed, and nothing else is."""
    from rankrepro.smoke import smoke_config

    cfg = load_config(path)
    smoke = smoke_config(deepcopy(cfg), synthetic)
    for key in KEPT_BY_SMOKE:
        assert _get(smoke.model, key) == _get(cfg.model, key), (path, key)
    assert smoke.optim_wrapper.optimizer.lr == cfg.optim_wrapper.optimizer.lr
    assert smoke.val_evaluator.type == cfg.val_evaluator.type
    listed = " ".join(smoke.smoke_substitutions)
    assert ("carafe" in listed) == ("carafe" in path)
    assert ("dcn" in listed) == ("dconv" in path)
    assert ("RepeatDataset" in listed) == ("cityscapes" in path)
    assert len(smoke.smoke_substitutions) == ("carafe" in path) + ("dconv" in path) + ("cityscapes" in path)


def test_rs_mask_rcnn_smoke_trains_and_evaluates_bbox_and_segm(tmp_path, synthetic):
    metrics, logged = _train_and_test(RS, tmp_path, synthetic)
    _assert_metrics(metrics, "coco")
    assert len(logged) == 3
    for entry in logged:
        assert RS_LOSSES <= set(entry)
        assert all(math.isfinite(entry[k]) for k in RS_LOSSES)
        # value-based balancing: the mask loss equals the box head's classification loss
        # value (RS paper Sec. 5.3), as does the box loss
        cls_loss = entry["loss_roi_rank"] + entry["loss_roi_sort"]
        assert entry["loss_mask"] == pytest.approx(cls_loss, rel=1e-3)
        assert entry["loss_roi_bbox"] == pytest.approx(cls_loss, rel=1e-3)
        assert entry["loss"] == pytest.approx(sum(entry[k] for k in RS_LOSSES), rel=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("path,losses", [
    (BASE, {"loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "loss_mask"}),
    (BRS, RS_LOSSES),
    (BRS_R101, RS_LOSSES),
    (RS_CARAFE, RS_LOSSES),
    (RS_R101, RS_LOSSES),
    (RS_R101_CARAFE, RS_LOSSES),
    (RS_R101_DCN, RS_LOSSES),
    (RS_X101_DCN, RS_LOSSES),
])
def test_coco_smoke_variants_train_and_evaluate(path, losses, tmp_path, synthetic):
    metrics, logged = _train_and_test(path, tmp_path, synthetic)
    _assert_metrics(metrics, "coco")
    assert all(losses <= set(entry) and all(math.isfinite(entry[k]) for k in losses) for entry in logged)


@pytest.mark.slow
@pytest.mark.parametrize("path", [RS_LVIS, BRS_LVIS, BASE_LVIS])
def test_lvis_smoke_runs_through_the_lvis_evaluator(path, tmp_path, synthetic):
    metrics, logged = _train_and_test(path, tmp_path, synthetic)
    _assert_metrics(metrics, "lvis")
    for name in ("APr", "APc", "APf"):
        assert f"lvis/segm_{name}" in metrics and f"lvis/bbox_{name}" in metrics
    assert logged and all("loss_mask" in entry for entry in logged)


@pytest.mark.slow
@pytest.mark.parametrize("path", [RS_CITY, BRS_CITY])
def test_cityscapes_smoke_runs_through_its_evaluator(path, tmp_path, synthetic):
    metrics, logged = _train_and_test(path, tmp_path, synthetic)
    _assert_metrics(metrics, "coco")
    assert logged and all(RS_LOSSES <= set(entry) for entry in logged)


@pytest.mark.slow
def test_rs_mask_rcnn_learns_boxes_and_masks(tmp_path):
    """150 smoke iterations of RS-Mask R-CNN (default synthetic set, config's test settings:
    score threshold 0.40) reach box and mask AP of about 0.09 each (measured: 0.089 / 0.090;
    3 iterations: 0.001 / 0.000), ~10 minutes on two shared CPU cores."""
    from rankrepro.data.synthetic import make_synthetic_coco
    from rankrepro.runner import test, train

    make_synthetic_coco(tmp_path / "data")
    name = {"visualizer.name": f"visualizer_{tmp_path.name}"}
    train(RS, tmp_path / "work", smoke=True, data_root=tmp_path / "data", max_iters=150, cfg_options=name)
    metrics = test(RS, tmp_path / "work" / "iter_150.pth", tmp_path / "test", smoke=True, data_root=tmp_path / "data",
                   cfg_options={"visualizer.name": f"visualizer_{tmp_path.name}_test"})
    assert metrics["coco/bbox_mAP"] > 0.04 and metrics["coco/segm_mAP"] > 0.04, metrics
    assert metrics["coco/segm_oLRP"] < 0.97, metrics
