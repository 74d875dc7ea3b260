"""The smoke variant of any paper-scale config: same detector and losses, CPU-sized.

``smoke_config(cfg, data_root)`` keeps everything that defines an experiment (detector,
head, losses, assigner, coders, test-time settings, optimiser type) and changes only
what makes it runnable in minutes on a CPU, by fixed rules:

* backbone: ResNet-18 without pretrained weights (BN in train mode, nothing frozen), for
  ResNet and ResNeXt configs alike; a Swin Transformer stays one, shrunk (16 channels, 2
  blocks and 1-8 heads per stage, its window size and ``out_indices`` kept, no pretrained
  weights: :func:`_shrink_swin`);
  FPN inputs follow ResNet-18's widths; every 256-channel width of the neck(s) and heads
  (``in_channels``, ``feat_channels``, ``out_channels``, ``conv_out_channels``, a deformable
  RoI pool's ``output_channels``) becomes ``width`` (64), and the R-CNN heads' 1024-wide
  fully connected layers (``fc_out_channels``) shrink by the same factor (``4 * width``);
* every ``num_classes`` becomes the synthetic dataset's class count;
* data: the project's synthetic dataset (:mod:`rankrepro.data.synthetic`), images resized
  to ``image_size`` (one scale: multi-scale and SSD-style pipelines are replaced), masks
  loaded when the config loads masks.  The config's dataset class decides the layout:
  ``LVISV1Dataset`` reads the LVIS v1 annotation files, ``CityscapesDataset`` the
  Cityscapes layout (:mod:`rankrepro.data.formats`), anything else the COCO files as a
  ``CocoDataset``.  LVIS and Cityscapes keep their dataset class and their train-set
  wrappers (``ClassBalancedDataset``: LVIS's repeat-factor sampling, the method of the
  LVIS baselines, with its ``oversample_thr``, which on the default synthetic set repeats
  no image: its rarest class is in 27 of 200 train images, far above 1e-3; ``RepeatDataset``
  with ``times`` 1) and their
  evaluators, pointed at the synthetic files (LVIS / COCO metrics' ``ann_file``; mmdet's
  ``CityScapesMetric``: ``seg_prefix`` = the synthetic ``gtFine/val``, results in a
  temporary folder).  The synthetic classes are the metainfo; for Cityscapes under the
  Cityscapes names they stand for (``rankrepro.data.formats.CITYSCAPES_CLASSES``), which
  the Cityscapes evaluator needs;
* schedule: ``max_iters`` iterations (linear warm-up, then one step decay at 3/4),
  validation at the end; the config's learning rate is kept;
* checkpoints every ``checkpoint_interval`` (50) iterations and at the end, the last two
  kept, written atomically (:class:`rankrepro.engine.AtomicCheckpointHook`), so that a run
  killed at any moment resumes (``rankrepro train --resume``) having lost at most
  ``checkpoint_interval`` iterations.

Substitutions: the rules above shrink the experiment but leave its method alone.  Where a
config's method cannot run on CPU, or a rule must change more than size, the smoke
variant substitutes, and lists every substitution (a sentence each) in the config's
``smoke_substitutions`` (an empty list when there is none), for tables and logs:

* CARAFE (``FPN_CARAFE``'s and a mask head's ``upsample_cfg`` of type ``carafe``): mmcv 2.1
  has no CPU kernel for it (``carafe_forward_impl: implementation for device cpu not
  found``), so ``FPN_CARAFE`` upsamples by ``nearest`` (as a plain FPN does) and the mask
  head by ``deconv`` (mmdet's default mask head upsampler, scale factor kept).  This is
  the one substitution that changes the method.
* DCN (a backbone ``dcn`` / ``stage_with_dcn``): ResNet-18's BasicBlock takes no ``dcn``,
  while mmcv's deformable convolutions do run on CPU, so such a backbone becomes a
  ResNet-50 (Bottleneck) with ``base_channels=16`` -- stage widths 64 to 512, as ResNet-18's,
  so the neck rule is unchanged -- and keeps ``dcn`` and ``stage_with_dcn`` as configured.
* ``RepeatDataset`` ``times`` > 1 becomes 1: it only sets how many passes make an
  "epoch" (iteration-based smoke training runs ``max_iters`` regardless), but that epoch
  is also the period of epoch-wise hooks such as aLRP's self-balancing update.

A config may add model-specific smoke settings as ``smoke_overrides = dict(...)`` (a
nested dict merged into the smoke config last, e.g. a mask head's channel count that the
rules above do not know about).  A smoke config is a real training run, only small; it
is not a mock.
"""
from __future__ import annotations

from copy import deepcopy
from pathlib import Path

from mmengine.config import Config, ConfigDict

from .data import formats
from .data.synthetic import CLASSES, metainfo
from .errors import RankReproError

RESNET18_WIDTHS = (64, 128, 256, 512)
RESNET50_WIDTHS = (256, 512, 1024, 2048)


def smoke_config(
    cfg: Config,
    data_root: str | Path,
    max_iters: int = 300,
    image_size: int = 128,
    batch_size: int = 4,
    width: int = 64,
    num_workers: int = 0,
    checkpoint_interval: int = 50,
) -> Config:
    if max_iters < 1 or checkpoint_interval < 1:
        raise RankReproError(f"the smoke variant needs max_iters >= 1 and checkpoint_interval >= 1, got {max_iters}, {checkpoint_interval}")
    cfg = deepcopy(cfg)
    substitutions: list[str] = []
    _shrink_model(cfg.model, width, substitutions)
    _replace_carafe(cfg.model, substitutions)
    train_dataset = cfg.get("train_dataloader", {}).get("dataset", {})
    wrappers, inner = _unwrap(train_dataset, substitutions)
    kind = _dataset_kind(inner, cfg.get("val_dataloader", {}).get("dataset", {}))
    _check_layout(data_root, kind)
    needs_masks = _loads_masks(inner)
    cfg.train_dataloader = _dataloader(data_root, "train", image_size, batch_size, num_workers, needs_masks, True, kind)
    cfg.train_dataloader.dataset = _wrap(wrappers, cfg.train_dataloader.dataset)
    cfg.val_dataloader = _dataloader(data_root, "val", image_size, batch_size, num_workers, needs_masks, False, kind)
    cfg.test_dataloader = cfg.val_dataloader
    for key in ("val_evaluator", "test_evaluator"):
        evaluator = cfg.get(key)
        for metric in evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]:
            if isinstance(metric, (dict, ConfigDict)):
                _point_evaluator(metric, data_root, kind)
    cfg.train_cfg = ConfigDict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=max_iters)
    cfg.val_cfg = ConfigDict(type="ValLoop")
    cfg.test_cfg = ConfigDict(type="TestLoop")
    warmup = max(1, min(50, max_iters // 5))
    cfg.param_scheduler = [
        ConfigDict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=warmup),
        ConfigDict(type="MultiStepLR", by_epoch=False, begin=0, end=max_iters, milestones=[max_iters * 3 // 4], gamma=0.1),
    ]
    cfg.default_hooks.logger = ConfigDict(type="LoggerHook", interval=max(1, min(20, max_iters // 10)))
    cfg.default_hooks.checkpoint = ConfigDict(
        type="AtomicCheckpointHook", interval=min(checkpoint_interval, max_iters), by_epoch=False, max_keep_ckpts=2
    )
    cfg.log_processor = ConfigDict(type="LogProcessor", window_size=10, by_epoch=False)
    cfg.auto_scale_lr = ConfigDict(enable=False, base_batch_size=batch_size)
    cfg.randomness = ConfigDict(seed=0)
    cfg.load_from = None
    cfg.smoke_substitutions = substitutions
    overrides = cfg.pop("smoke_overrides", None)
    if overrides:
        cfg.merge_from_dict(overrides.to_dict() if hasattr(overrides, "to_dict") else dict(overrides))
    return cfg


# --------------------------------------------------------------------------- model


def _shrink_model(model: ConfigDict, width: int, substitutions: list[str]) -> None:
    backbone = model.get("backbone")
    if backbone is not None and backbone.get("type") == "SwinTransformer":
        stage_widths = _shrink_swin(backbone)
        _shrink_necks_and_heads(model, width, lambda channels: stage_widths)
        return
    if backbone is None or backbone.get("type") not in ("ResNet", "ResNeXt"):
        raise RankReproError(
            f"the smoke variant needs a ResNet, ResNeXt or SwinTransformer backbone, got {backbone and backbone.get('type')}"
        )
    source = RESNET18_WIDTHS if backbone.get("depth") in (18, 34) else RESNET50_WIDTHS  # ResNeXt: ResNet-50's
    with_dcn = backbone.get("dcn") is not None
    backbone.update(type="ResNet", depth=18, init_cfg=None, frozen_stages=-1, norm_eval=False)
    for key in ("pretrained", "groups", "base_width"):
        backbone.pop(key, None)
    if with_dcn:
        # BasicBlock takes no dcn; Bottleneck at base width 16 has ResNet-18's stage widths.
        backbone.update(depth=50, base_channels=16)
        stages = backbone.get("stage_with_dcn")
        substitutions.append(
            "backbone: ResNet-50 with base_channels=16 (stage widths 64-512, as ResNet-18's) instead of ResNet-18, "
            f"keeping dcn={_describe(backbone.dcn)} on stages {_describe(stages)} (ResNet-18's BasicBlock takes no dcn)"
        )
    _shrink_necks_and_heads(model, width, lambda channels: [RESNET18_WIDTHS[source.index(c)] for c in channels])


def _shrink_necks_and_heads(model: ConfigDict, width: int, neck_inputs) -> None:
    """The first neck's ``in_channels`` become ``neck_inputs(in_channels)`` (the shrunk
    backbone's stage widths) and its 256-wide output ``width``; every other 256 width of the
    model becomes ``width``, every ``num_classes`` the synthetic class count."""
    necks = model.get("neck")
    for index, neck in enumerate(necks if isinstance(necks, (list, tuple)) else [necks] if necks is not None else []):
        if index == 0 and "in_channels" in neck and isinstance(neck.in_channels, (list, tuple)):
            neck.in_channels = neck_inputs(neck.in_channels)
            if neck.get("out_channels") == 256:
                neck.out_channels = width
        else:  # a neck after the FPN (e.g. Libra R-CNN's BFP) works at the FPN's width
            _replace_widths_and_classes(neck, width)
    for key in list(model.keys()):
        if key not in ("backbone", "neck", "data_preprocessor"):
            _replace_widths_and_classes(model[key], width)


SWIN_EMBED_DIMS = 16  # the smoke Swin's stage widths: 16, 32, 64, 128
SWIN_HEADS = (1, 2, 4, 8)  # 16 channels per head in every stage


def _shrink_swin(backbone: ConfigDict) -> list[int]:
    """A Swin Transformer backbone shrunk to :data:`SWIN_EMBED_DIMS` channels, 2 blocks per
    stage (a window and a shifted-window block), no pretrained weights; window size, drop
    path, patch size and ``out_indices`` kept.  Returns the widths of its output stages."""
    stages = len(backbone.get("depths", (2, 2, 6, 2)))
    backbone.update(
        embed_dims=SWIN_EMBED_DIMS, depths=[2] * stages, num_heads=list(SWIN_HEADS[:stages]), init_cfg=None, convert_weights=False, with_cp=False
    )
    backbone.pop("pretrained", None)
    return [SWIN_EMBED_DIMS * 2**i for i in backbone.get("out_indices", (0, 1, 2, 3))]


_WIDTH_KEYS = ("in_channels", "feat_channels", "out_channels", "conv_out_channels", "output_channels")
_FC_WIDTH = 1024  # the R-CNN heads' shared / mask-IoU fully connected width at 256 channels


def _replace_widths_and_classes(node, width: int) -> None:
    if isinstance(node, (dict, ConfigDict)):
        for key, value in node.items():
            if key in _WIDTH_KEYS and value == 256:
                node[key] = width
            elif key == "fc_out_channels" and value == _FC_WIDTH:
                node[key] = _FC_WIDTH * width // 256
            elif key == "num_classes":
                node[key] = len(CLASSES)
            else:
                _replace_widths_and_classes(value, width)
    elif isinstance(node, list):
        for item in node:
            _replace_widths_and_classes(item, width)


def _replace_carafe(model: ConfigDict, substitutions: list[str]) -> None:
    """CARAFE upsamplers -> CPU ones (FPN_CARAFE: ``nearest``; mask heads: ``deconv``)."""
    for path, node in _dicts(model, "model"):
        upsample = node.get("upsample_cfg")
        if not isinstance(upsample, (dict, ConfigDict)) or str(upsample.get("type", "")).lower() != "carafe":
            continue
        owner = str(node.get("type", ""))
        if owner == "FPN_CARAFE":
            node.upsample_cfg = ConfigDict(type="nearest")
            new = "nearest"
        elif "MaskHead" in owner or "conv_out_channels" in node:
            node.upsample_cfg = ConfigDict(type="deconv", scale_factor=upsample.get("scale_factor", 2))
            new = f"deconv (scale_factor {node.upsample_cfg.scale_factor})"
        else:
            raise RankReproError(
                f"{path}.upsample_cfg is CARAFE, which mmcv has no CPU kernel for, in a {owner or 'module'} that the "
                "smoke rules do not know a CPU upsampler for (FPN_CARAFE and mask heads only)"
            )
        substitutions.append(f"{path}.upsample_cfg: carafe -> {new} (mmcv 2.1 has no CPU CARAFE kernel)")


def _dicts(node, path):
    """Every dict under ``node`` with its dotted path (``node`` first)."""
    if isinstance(node, (dict, ConfigDict)):
        yield path, node
        for key, value in node.items():
            yield from _dicts(value, f"{path}.{key}")
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _dicts(value, f"{path}.{i}")


def _describe(value) -> str:
    if isinstance(value, (dict, ConfigDict)):
        return "dict(" + ", ".join(f"{k}={_describe(v)}" for k, v in value.items()) + ")"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_describe(v) for v in value) + ")"
    return repr(value)


# --------------------------------------------------------------------------- data

_WRAPPERS = ("ClassBalancedDataset", "RepeatDataset")
_LVIS_TYPES = ("LVISV1Dataset",)
_LVIS_V05_TYPES = ("LVISV05Dataset", "LVISDataset")
_LVIS_METRICS = ("LVISMetric", "LVISOLRPMetric")


def _unwrap(dataset, substitutions: list[str]):
    """(the train set's wrappers outermost first, without their ``dataset``; the wrapped dataset)."""
    wrappers = []
    while isinstance(dataset, (dict, ConfigDict)) and ("dataset" in dataset or "datasets" in dataset):
        kind = dataset.get("type")
        if kind not in _WRAPPERS or "datasets" in dataset:
            raise RankReproError(
                f"the smoke variant keeps the dataset wrappers {', '.join(_WRAPPERS)}; the config wraps its train set "
                f"in {kind}"
            )
        wrapper = ConfigDict({k: deepcopy(v) for k, v in dataset.items() if k != "dataset"})
        if kind == "RepeatDataset" and wrapper.get("times", 1) != 1:
            substitutions.append(
                f"train_dataloader.dataset: RepeatDataset times {wrapper.times} -> 1 (one pass of the synthetic set is "
                "an epoch, the period of epoch-wise hooks)"
            )
            wrapper.times = 1
        wrappers.append(wrapper)
        dataset = dataset.dataset
    return wrappers, dataset


def _wrap(wrappers, dataset):
    for wrapper in reversed(wrappers):
        dataset = ConfigDict(dict(wrapper, dataset=dataset))
    return dataset


def _dataset_kind(train_dataset, val_dataset) -> str:
    kinds = set()
    for dataset in (train_dataset, val_dataset):
        kind = dataset.get("type") if isinstance(dataset, (dict, ConfigDict)) else None
        if kind in _LVIS_V05_TYPES:
            raise RankReproError(f"the synthetic dataset has LVIS v1 annotation files only; the config reads {kind}")
        kinds.add("lvis" if kind in _LVIS_TYPES else "cityscapes" if kind == "CityscapesDataset" else "coco")
    if len(kinds) > 1:
        raise RankReproError(f"the config trains and validates on different kinds of dataset ({sorted(kinds)})")
    return kinds.pop()


def _check_layout(data_root, kind: str) -> None:
    """An LVIS or Cityscapes config needs a dataset generated with those layouts (an older
    one has COCO files only)."""
    manifest = Path(data_root) / "manifest.json"
    if kind == "coco" or not manifest.is_file():
        return
    import json

    try:
        formats_present = "formats" in json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # the dataset's verification reports an unreadable manifest
    if not formats_present:
        raise RankReproError(
            f"synthetic dataset {data_root} has no {'LVIS v1' if kind == 'lvis' else 'Cityscapes'} files (it was made "
            f"before they were added); regenerate it with `rankrepro make-data {data_root}`"
        )


def _loads_masks(dataset) -> bool:
    pipeline = dataset.get("pipeline", []) if isinstance(dataset, (dict, ConfigDict)) else []
    return any(step.get("type") == "LoadAnnotations" and step.get("with_mask") for step in pipeline)


def _dataset_files(data_root, split: str, kind: str):
    """(dataset type, data_root, ann_file, image prefix, metainfo) of ``split`` in the ``kind`` layout."""
    if kind == "lvis":
        return "LVISV1Dataset", str(data_root), formats.lvis_annotation(split), "", metainfo()
    if kind == "cityscapes":
        root = str(Path(data_root) / formats.CITYSCAPES_DIR)
        info = formats.cityscapes_metainfo(CLASSES)
        return "CityscapesDataset", root, formats.cityscapes_annotation(split), f"leftImg8bit/{split}/", info
    return "CocoDataset", str(data_root), f"annotations/instances_{split}.json", f"{split}/", metainfo()


def _point_evaluator(metric: ConfigDict, data_root, kind: str) -> None:
    """Point an evaluator of the config at the synthetic validation files of the ``kind`` layout."""
    _, root, ann_file, _, _ = _dataset_files(data_root, "val", kind)
    if metric.get("type") == "CityScapesMetric":
        if kind != "cityscapes":
            raise RankReproError(f"CityScapesMetric needs a CityscapesDataset; the config's dataset is {kind}")
        metric.seg_prefix = str(Path(root) / "gtFine" / "val")
        metric.outfile_prefix = None  # a temporary folder (a shared one would keep another run's gtInstances.json)
    else:
        metric.ann_file = str(Path(root) / ann_file)
        metric.pop("outfile_prefix", None)
    metric.format_only = False


def _dataloader(data_root, split, image_size, batch_size, num_workers, with_mask, train, kind="coco") -> ConfigDict:
    load = ConfigDict(type="LoadAnnotations", with_bbox=True, with_mask=with_mask)
    resize = ConfigDict(type="Resize", scale=(image_size, image_size), keep_ratio=True)
    if train:
        pipeline = [ConfigDict(type="LoadImageFromFile"), load, resize, ConfigDict(type="RandomFlip", prob=0.5), ConfigDict(type="PackDetInputs")]
    else:
        meta = ("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")
        pipeline = [ConfigDict(type="LoadImageFromFile"), resize, load, ConfigDict(type="PackDetInputs", meta_keys=meta)]
    dataset_type, root, ann_file, prefix, info = _dataset_files(data_root, split, kind)
    dataset = ConfigDict(
        type=dataset_type,
        data_root=root,
        ann_file=ann_file,
        data_prefix=ConfigDict(img=prefix),
        metainfo=info,
        filter_cfg=ConfigDict(filter_empty_gt=train, min_size=0),
        test_mode=not train,
        pipeline=pipeline,
    )
    return ConfigDict(
        batch_size=batch_size,
        num_workers=num_workers,
        persistent_workers=False,
        sampler=ConfigDict(type="DefaultSampler", shuffle=train),
        dataset=dataset,
    )
