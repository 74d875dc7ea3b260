"""The smoke variant of any paper-scale config: same detector and losses, CPU-sized.

``smoke_config(cfg, data_root)`` keeps everything that defines an experiment (detector,
head, losses, assigner, coders, test-time settings, optimiser type) and changes only
what makes it runnable in minutes on a CPU, by fixed rules:

* backbone: ResNet-18 without pretrained weights (BN in train mode, nothing frozen), for
  ResNet and ResNeXt configs alike;
  FPN inputs follow ResNet-18's widths; every 256-channel width of the neck and heads
  becomes ``width`` (64);
* every ``num_classes`` becomes the synthetic dataset's class count;
* data: the project's synthetic COCO-format dataset (:mod:`rankrepro.data.synthetic`),
  images resized to ``image_size``, masks loaded when the config loads masks;
* schedule: ``max_iters`` iterations (linear warm-up, then one step decay at 3/4),
  validation at the end; the config's learning rate is kept;
* checkpoints every ``checkpoint_interval`` (50) iterations and at the end, the last two
  kept, written atomically (:class:`rankrepro.engine.AtomicCheckpointHook`), so that a run
  killed at any moment resumes (``rankrepro train --resume``) having lost at most
  ``checkpoint_interval`` iterations.

A config may add model-specific smoke settings as ``smoke_overrides = dict(...)`` (a
nested dict merged into the smoke config last, e.g. a mask head's channel count that the
rules above do not know about).  A smoke config is a real training run, only small; it
is not a mock.
"""
from __future__ import annotations

from copy import deepcopy
from pathlib import Path

from mmengine.config import Config, ConfigDict

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
    _shrink_model(cfg.model, width)
    needs_masks = _loads_masks(cfg)
    cfg.train_dataloader = _dataloader(data_root, "train", image_size, batch_size, num_workers, needs_masks, train=True)
    cfg.val_dataloader = _dataloader(data_root, "val", image_size, batch_size, num_workers, needs_masks, train=False)
    cfg.test_dataloader = cfg.val_dataloader
    for key in ("val_evaluator", "test_evaluator"):
        evaluator = cfg.get(key)
        if isinstance(evaluator, (dict, ConfigDict)):
            evaluator.ann_file = str(Path(data_root) / "annotations" / "instances_val.json")
            evaluator.pop("outfile_prefix", None)
            evaluator.format_only = False
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
    overrides = cfg.pop("smoke_overrides", None)
    if overrides:
        cfg.merge_from_dict(overrides.to_dict() if hasattr(overrides, "to_dict") else dict(overrides))
    return cfg


def _shrink_model(model: ConfigDict, width: int) -> None:
    backbone = model.get("backbone")
    if backbone is None or backbone.get("type") not in ("ResNet", "ResNeXt"):
        raise RankReproError(f"the smoke variant needs a ResNet or ResNeXt backbone, got {backbone and backbone.get('type')}")
    source = RESNET18_WIDTHS if backbone.get("depth") in (18, 34) else RESNET50_WIDTHS  # ResNeXt: ResNet-50's
    backbone.update(type="ResNet", depth=18, init_cfg=None, frozen_stages=-1, norm_eval=False)
    for key in ("pretrained", "groups", "base_width"):
        backbone.pop(key, None)
    neck = model.get("neck")
    if neck is not None and "in_channels" in neck:
        neck.in_channels = [RESNET18_WIDTHS[source.index(c)] for c in neck.in_channels]
        if neck.get("out_channels") == 256:
            neck.out_channels = width
    for key in list(model.keys()):
        if key not in ("backbone", "neck", "data_preprocessor"):
            _replace_widths_and_classes(model[key], width)


def _replace_widths_and_classes(node, width: int) -> None:
    if isinstance(node, (dict, ConfigDict)):
        for key, value in node.items():
            if key in ("in_channels", "feat_channels", "out_channels") and value == 256:
                node[key] = width
            elif key == "num_classes":
                node[key] = len(CLASSES)
            else:
                _replace_widths_and_classes(value, width)
    elif isinstance(node, list):
        for item in node:
            _replace_widths_and_classes(item, width)


def _loads_masks(cfg: Config) -> bool:
    pipeline = cfg.get("train_dataloader", {}).get("dataset", {}).get("pipeline", [])
    return any(step.get("type") == "LoadAnnotations" and step.get("with_mask") for step in pipeline)


def _dataloader(data_root, split, image_size, batch_size, num_workers, with_mask, train) -> ConfigDict:
    load = ConfigDict(type="LoadAnnotations", with_bbox=True, with_mask=with_mask)
    resize = ConfigDict(type="Resize", scale=(image_size, image_size), keep_ratio=True)
    if train:
        pipeline = [ConfigDict(type="LoadImageFromFile"), load, resize, ConfigDict(type="RandomFlip", prob=0.5), ConfigDict(type="PackDetInputs")]
    else:
        meta = ("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")
        pipeline = [ConfigDict(type="LoadImageFromFile"), resize, load, ConfigDict(type="PackDetInputs", meta_keys=meta)]
    dataset = ConfigDict(
        type="CocoDataset",
        data_root=str(data_root),
        ann_file=f"annotations/instances_{split}.json",
        data_prefix=ConfigDict(img=f"{split}/"),
        metainfo=metainfo(),
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
