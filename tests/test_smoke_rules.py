"""Smoke rules for the R-CNN family's configs: LVIS (dataset class, RFS wrapper, LVIS evaluator),
Cityscapes (dataset class, RepeatDataset, COCO and cityscapesscripts evaluators), CARAFE and
DCN substitutions, R-CNN head widths.  Configs are small files inheriting mmdet's own."""
import json
import textwrap

import pytest

pytest.importorskip("mmdet")
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402

from rankrepro import runner  # noqa: E402
from rankrepro.data import CLASSES, formats, make_synthetic_coco  # noqa: E402
from rankrepro.errors import RankReproError  # noqa: E402
from rankrepro.smoke import smoke_config  # noqa: E402
from model_cases import assert_gradients_reach, random_batch, total_loss  # noqa: E402

LVIS = "mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py"
CITYSCAPES = "mmdet::cityscapes/mask-rcnn_r50_fpn_1x_cityscapes.py"
CARAFE = "mmdet::carafe/mask-rcnn_r50_fpn-carafe_1x_coco.py"
DCN = "mmdet::dcn/mask-rcnn_r50-dconv-c3-c5_fpn_1x_coco.py"  # DCN (v1)
DCNV2 = "mmdet::dcnv2/mask-rcnn_r50-mdconv-c3-c5_fpn_1x_coco.py"
# the RS paper's RS-Mask R-CNN+ backbone setting (RankSortLoss configs/mask_rcnn/*_dcn_*: DCNv2, 4 groups)
DCNV2_OFFICIAL = "model = dict(backbone=dict(dcn=dict(deform_groups=4)))\n"
LIBRA = "mmdet::libra_rcnn/libra-faster-rcnn_r50_fpn_1x_coco.py"
MASK_RCNN = "mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py"
IMPORTS = "custom_imports = dict(imports=['rankrepro.models', 'rankrepro.evaluation.metrics'], allow_failed_imports=False)"


def _config(tmp_path, base, extra="", name="config.py"):
    path = tmp_path / name
    path.write_text(f"_base_ = '{base}'\n{IMPORTS}\n" + textwrap.dedent(extra))
    return path


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic_rules")
    make_synthetic_coco(root, num_train=12, num_val=6)
    return root


def _build_dataset(cfg):
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules

    register_all_modules()
    return DATASETS.build(cfg)


def _types(pipeline):
    return [step["type"] for step in pipeline]


# --------------------------------------------------------------------------- LVIS


def test_lvis_smoke_keeps_dataset_rfs_wrapper_and_lvis_evaluator(tmp_path, data_root):
    extra = "val_evaluator = dict(type='LVISOLRPMetric', metric=['bbox', 'segm'])\ntest_evaluator = val_evaluator\n"
    cfg = smoke_config(Config.fromfile(_config(tmp_path, LVIS, extra)), data_root)
    train = cfg.train_dataloader.dataset
    assert train.type == "ClassBalancedDataset" and train.oversample_thr == 1e-3
    inner = train.dataset
    assert inner.type == "LVISV1Dataset" and inner.ann_file == "annotations/lvis_v1_train.json"
    assert inner.data_root == str(data_root) and inner.data_prefix.img == ""
    assert inner.metainfo["classes"] == CLASSES
    assert "RandomChoiceResize" not in _types(inner.pipeline)  # multi-scale -> the smoke resize
    assert ("LoadAnnotations", True) in [(s["type"], s.get("with_mask")) for s in inner.pipeline]
    assert cfg.val_dataloader.dataset.type == "LVISV1Dataset"
    assert cfg.val_dataloader.dataset.ann_file == "annotations/lvis_v1_val.json"
    for key in ("val_evaluator", "test_evaluator"):
        assert cfg[key].type == "LVISOLRPMetric"
        assert cfg[key].ann_file == str(data_root / "annotations" / "lvis_v1_val.json")
    assert cfg.model.roi_head.bbox_head.num_classes == cfg.model.roi_head.mask_head.num_classes == len(CLASSES)
    assert cfg.model.test_cfg.rcnn.max_per_img == 300  # LVIS's test settings are the method's: kept
    assert cfg.smoke_substitutions == []

    dataset = _build_dataset(train.to_dict())
    base = dataset.dataset
    assert type(base).__name__ == "LVISV1Dataset"
    assert all(p.startswith(str(data_root / "train")) for p in (base.get_data_info(i)["img_path"] for i in range(len(base))))
    # with LVIS's threshold (1e-3) no synthetic class is rare enough to repeat an image ...
    assert len(dataset) == len(base)
    # ... while the same wrapper with a higher threshold does oversample (the wrapper is real)
    oversampling = _build_dataset(dict(train.to_dict(), oversample_thr=0.9))
    assert len(oversampling) > len(base)


def test_lvis_v05_and_an_old_dataset_are_clear_errors(tmp_path, data_root):
    v05 = _config(tmp_path, "mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-2x_lvis-v0.5.py", name="v05.py")
    with pytest.raises(RankReproError, match="LVIS v1 annotation files only.*LVISV05Dataset"):
        smoke_config(Config.fromfile(v05), data_root)
    # a dataset generated before the LVIS / Cityscapes layouts existed (its manifest has no 'formats')
    old = tmp_path / "old"
    old.mkdir()
    manifest = json.loads((data_root / "manifest.json").read_text())
    manifest.pop("formats")
    (old / "manifest.json").write_text(json.dumps(manifest))
    for base, layout in ((LVIS, "LVIS v1"), (CITYSCAPES, "Cityscapes")):
        with pytest.raises(RankReproError, match=f"no {layout} files.*make-data"):
            smoke_config(Config.fromfile(_config(tmp_path, base)), old)
    smoke_config(Config.fromfile(_config(tmp_path, MASK_RCNN, name="coco.py")), old)  # COCO needs nothing new


def test_unknown_wrapper_is_an_error(tmp_path, data_root):
    extra = """
    train_dataloader = dict(dataset=dict(_delete_=True, type='ConcatDataset', datasets=[]))
    """
    with pytest.raises(RankReproError, match="ConcatDataset"):
        smoke_config(Config.fromfile(_config(tmp_path, MASK_RCNN, extra)), data_root)


# --------------------------------------------------------------------------- Cityscapes


def test_cityscapes_smoke_keeps_dataset_and_both_evaluators(tmp_path, data_root):
    cfg = smoke_config(Config.fromfile(_config(tmp_path, CITYSCAPES)), data_root)
    root = data_root / "cityscapes"
    train = cfg.train_dataloader.dataset
    assert train.type == "RepeatDataset" and train.times == 1
    assert cfg.smoke_substitutions == [
        "train_dataloader.dataset: RepeatDataset times 8 -> 1 (one pass of the synthetic set is an epoch, the period of "
        "epoch-wise hooks)"
    ]
    inner = train.dataset
    assert inner.type == "CityscapesDataset" and inner.data_root == str(root)
    assert inner.ann_file == "annotations/instancesonly_filtered_gtFine_train.json"
    assert inner.data_prefix.img == "leftImg8bit/train/"
    assert "RandomResize" not in _types(inner.pipeline)
    assert inner.metainfo["classes"] == tuple(formats.CITYSCAPES_CLASSES[c] for c in CLASSES)
    assert cfg.val_dataloader.dataset.type == "CityscapesDataset"
    coco_metric, cs_metric = cfg.val_evaluator
    assert coco_metric.type == "CocoMetric"
    assert coco_metric.ann_file == str(root / "annotations" / "instancesonly_filtered_gtFine_val.json")
    assert cs_metric.type == "CityScapesMetric" and cs_metric.seg_prefix == str(root / "gtFine" / "val")
    assert cs_metric.outfile_prefix is None  # a temporary folder, not ./work_dirs of the working directory

    dataset = _build_dataset(train.to_dict())
    assert len(dataset) == len(dataset.dataset)
    item = dataset.dataset.get_data_info(0)
    assert item["img_path"].startswith(str(root / "leftImg8bit" / "train" / "shapes"))
    # mmdet's CityScapesMetric finds the ground truth by renaming the image path
    gt = item["img_path"].replace("leftImg8bit.png", "gtFine_instanceIds.png").replace("leftImg8bit", "gtFine")
    assert (root / "gtFine").exists() and __import__("pathlib").Path(gt).is_file()


# --------------------------------------------------------------------------- CARAFE, DCN, widths


def test_carafe_has_no_cpu_kernel():
    """The premise of the CARAFE substitution: mmcv's CARAFE does not run on CPU."""
    from mmcv.ops import CARAFEPack

    with pytest.raises(RuntimeError, match="carafe"):
        CARAFEPack(8, 2)(torch.randn(1, 8, 4, 4))


def _losses(cfg):
    """Build the smoke model and run one training step (forward and backward) on a random batch."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    data = random_batch(model, [3, 2], with_mask="mask_head" in cfg.model.get("roi_head", {}))
    losses = model.loss(data["inputs"], data["data_samples"])
    total_loss(losses).backward()
    return model, losses


def test_carafe_becomes_cpu_upsamplers(tmp_path, data_root):
    cfg = smoke_config(Config.fromfile(_config(tmp_path, CARAFE)), data_root)
    assert cfg.model.neck.type == "FPN_CARAFE" and cfg.model.neck.upsample_cfg == dict(type="nearest")
    assert cfg.model.roi_head.mask_head.upsample_cfg == dict(type="deconv", scale_factor=2)
    assert cfg.smoke_substitutions == [
        "model.neck.upsample_cfg: carafe -> nearest (mmcv 2.1 has no CPU CARAFE kernel)",
        "model.roi_head.mask_head.upsample_cfg: carafe -> deconv (scale_factor 2) (mmcv 2.1 has no CPU CARAFE kernel)",
    ]
    model, losses = _losses(cfg)
    assert torch.isfinite(losses["loss_mask"]).all()
    assert isinstance(model.roi_head.mask_head.upsample, torch.nn.ConvTranspose2d)
    assert all(isinstance(m, torch.nn.Upsample) for m in model.neck.upsample_modules)


def test_carafe_elsewhere_is_an_error(tmp_path, data_root):
    extra = "model = dict(rpn_head=dict(upsample_cfg=dict(type='carafe', up_kernel=5)))\n"
    with pytest.raises(RankReproError, match=r"model\.rpn_head\.upsample_cfg is CARAFE"):
        smoke_config(Config.fromfile(_config(tmp_path, MASK_RCNN, extra)), data_root)


@pytest.mark.parametrize("version", ["DCN", "DCNv2"])
def test_dcn_is_kept_on_a_bottleneck_backbone_of_resnet18_widths(version, tmp_path, data_root):
    from mmcv.ops import DeformConv2dPack, ModulatedDeformConv2dPack

    base, extra, layer, groups = {
        "DCN": (DCN, "", DeformConv2dPack, 1),
        "DCNv2": (DCNV2, DCNV2_OFFICIAL, ModulatedDeformConv2dPack, 4),
    }[version]
    cfg = smoke_config(Config.fromfile(_config(tmp_path, base, extra)), data_root)
    backbone = cfg.model.backbone
    assert (backbone.type, backbone.depth, backbone.base_channels) == ("ResNet", 50, 16)
    assert backbone.dcn.type == version and backbone.dcn.deform_groups == groups
    assert tuple(backbone.stage_with_dcn) == (False, True, True, True)
    assert len(cfg.smoke_substitutions) == 1 and "ResNet-50 with base_channels=16" in cfg.smoke_substitutions[0]
    assert cfg.model.neck.in_channels == [64, 128, 256, 512]
    # mmdet's ResNet starts each block's last BN at zero (zero_init_residual), which holds the
    # deformable convolutions' gradients at zero in the first step; off for this check only
    cfg.model.backbone.zero_init_residual = False
    model, losses = _losses(cfg)
    deform = [m for m in model.backbone.modules() if type(m) is layer]
    assert len(deform) == 4 + 6 + 3  # every block of stages 2-4 (ResNet-50: 3, 4, 6, 3 blocks)
    assert all(m.deform_groups == groups for m in deform)
    assert_gradients_reach(*deform, context=f"{version}: ")
    feats = model.backbone(torch.zeros(1, 3, 128, 128))
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512]


def test_rcnn_head_widths_shrink_with_the_width_rule(tmp_path, data_root):
    cfg = smoke_config(Config.fromfile(_config(tmp_path, MASK_RCNN)), data_root)
    roi = cfg.model.roi_head
    assert roi.bbox_roi_extractor.out_channels == roi.mask_roi_extractor.out_channels == 64
    assert roi.bbox_head.in_channels == 64 and roi.bbox_head.fc_out_channels == 256  # 1024 * 64 / 256
    assert roi.mask_head.in_channels == roi.mask_head.conv_out_channels == 64
    assert cfg.model.rpn_head.in_channels == cfg.model.rpn_head.feat_channels == 64
    assert cfg.smoke_substitutions == []
    model, _ = _losses(cfg)
    assert model.roi_head.bbox_head.shared_fcs[-1].out_features == 256
    # a second neck (Libra R-CNN's balanced feature pyramid) works at the FPN's width
    libra = smoke_config(Config.fromfile(_config(tmp_path, LIBRA, name="libra.py")), data_root)
    fpn, bfp = libra.model.neck
    assert fpn.in_channels == [64, 128, 256, 512] and fpn.out_channels == 64 and bfp.in_channels == 64
    _losses(libra)


# --------------------------------------------------------------------------- end to end


END_TO_END = {
    "lvis": (LVIS, "val_evaluator = dict(type='LVISOLRPMetric', metric=['bbox', 'segm'])\ntest_evaluator = val_evaluator\n",
             ["lvis/bbox_mAP", "lvis/bbox_APr", "lvis/segm_APf", "lvis/segm_oLRP"]),
    "cityscapes": (CITYSCAPES, "", ["coco/bbox_mAP", "coco/segm_mAP", "cityscapes/mAP", "cityscapes/AP@50"]),
    "carafe": (CARAFE, "", ["coco/bbox_mAP", "coco/segm_mAP"]),
    "dcn": (DCNV2, DCNV2_OFFICIAL, ["coco/bbox_mAP", "coco/segm_mAP"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(END_TO_END))
def test_smoke_variant_trains_and_evaluates(name, tmp_path, data_root):
    base, extra, keys = END_TO_END[name]
    config = _config(tmp_path, base, extra)
    runner.train(config, tmp_path / "work", smoke=True, data_root=data_root, max_iters=2)
    metrics = runner.test(config, tmp_path / "work" / "iter_2.pth", tmp_path / "test", smoke=True, data_root=data_root,
                          max_iters=2)
    for key in keys:
        assert key in metrics, key
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics[key])
