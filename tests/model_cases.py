"""Shared helpers of the model tests: config paths, smoke models, random batches, summed
losses, gradient checks and recorded calls."""
from __future__ import annotations

from contextlib import contextmanager

import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config

from rankrepro.data.synthetic import CLASSES
from rankrepro.smoke import smoke_config


def config_path(family: str, name: str) -> str:
    """``configs/<family>/<name>_<family>_r50_fpn_1x_coco.py``; names starting with ``fl_``
    are whole stems (``fl_atss_no_centerness``)."""
    stem = name if name.startswith("fl_") else f"{name}_{family}"
    return f"configs/{family}/{stem}_r50_fpn_1x_coco.py"


def _head_key(model_cfg):
    """The detector's dense head: ``bbox_head`` where there is one (YOLACT too), else ``mask_head`` (SOLOv2)."""
    return "bbox_head" if model_cfg.get("bbox_head") is not None else "mask_head"


def build_smoke_model(config_path, tmp_path, sb_period=10, **head_overrides):
    """The initialised smoke model of a config, ``head_overrides`` merged into its dense head.

    An aLRP head (one with ``sb_initial``) gets the self-balancing period ``sb_period``, as
    ``ALRPSelfBalancingHook`` would set it; ``sb_period=None`` leaves it unset.
    """
    cfg = smoke_config(Config.fromfile(config_path), tmp_path)
    key = _head_key(cfg.model)
    cfg.model[key].update(head_overrides)
    model = MODELS.build(cfg.model)
    model.init_weights()
    head = getattr(model, key)
    if sb_period is not None and getattr(head, "sb_initial", None) is not None:
        head.set_self_balancing_period(sb_period)
    return model


def random_batch(model, num_items, seed=0, with_mask=False, image_shapes=None, training=True):
    """A preprocessed ``mmdet.testing.demo_mm_inputs`` batch: one image per entry of ``num_items``.

    Boxes (and masks with ``with_mask``) of the synthetic classes; images 128x128 unless
    ``image_shapes`` (one ``(C, H, W)`` or a list of them, one an image) says otherwise.
    """
    torch.manual_seed(seed)
    packed = demo_mm_inputs(
        batch_size=len(num_items),
        image_shapes=image_shapes or (3, 128, 128),
        num_items=num_items,
        num_classes=len(CLASSES),
        with_mask=with_mask,
    )
    return model.data_preprocessor(packed, training=training)


def total_loss(losses):
    """The loss mmengine trains on (``BaseModel.parse_losses``): the sum over the ``loss*``
    terms of their means (a list-valued term counts the sum of its items' means)."""
    return sum(v.mean() if torch.is_tensor(v) else sum(x.mean() for x in v) for k, v in losses.items() if "loss" in k)


def assert_gradients_reach(*layers, context: str = "") -> None:
    """Each layer's weight has a finite, not all-zero gradient after ``backward``."""
    for layer in layers:
        grad = layer.weight.grad
        assert grad is not None and torch.isfinite(grad).all(), f"{context}no finite gradient at {layer}"
        assert grad.abs().sum() > 0, f"{context}no gradient reaches {layer}"


@contextmanager
def _recording(obj, name: str, record):
    """Inside the block, every call of ``obj.<name>`` appends ``record(args, kwargs, result)``
    to the yielded list (the method works as before); the original is restored afterwards."""
    method = getattr(obj, name)
    calls = []

    def recorder(*args, **kwargs):
        result = method(*args, **kwargs)
        calls.append(record(args, kwargs, result))
        return result

    setattr(obj, name, recorder)
    try:
        yield calls
    finally:
        delattr(obj, name)


def recorded_calls(obj, name: str):
    """Inside the block, every call of ``obj.<name>`` is recorded as ``(args, result)`` in the
    yielded list (the method works as before); the original is restored afterwards."""
    return _recording(obj, name, lambda args, kwargs, result: (args, result))


def recorded(obj, name: str):
    """As :func:`recorded_calls`, each call recorded as ``(args, kwargs, result)``."""
    return _recording(obj, name, lambda args, kwargs, result: (args, kwargs, result))


def small_roi_box_head(head_type: str, num_classes: int, target_stds, **overrides):
    """A built (not initialised) R-CNN box head of type ``head_type`` small enough for
    hand-made RoI batches: 2 input channels, 2x2 RoI features, 8 fc channels,
    class-specific regression; ``overrides`` replace any of these settings."""
    cfg = dict(
        type=head_type,
        in_channels=2,
        fc_out_channels=8,
        roi_feat_size=2,
        num_classes=num_classes,
        bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=target_stds),
        reg_class_agnostic=False,
    )
    cfg.update(overrides)
    return MODELS.build(cfg)


def hand_made_rois(num_classes: int, seed: int = 0, score_scale: float = 1.0):
    """6 RoIs of one image: RoIs 0-2 positive (classes 2, 0, 1), 3-4 background (label
    ``num_classes``), 5 ignored (label weight 0); gt boxes near the positive RoIs; random
    class-specific deltas (scale 0.5) and logits (scale ``score_scale``), both requiring grad.
    Returns ``(cls_score, bbox_pred, rois, labels, label_weights, gt)``."""
    g = torch.Generator().manual_seed(seed)
    boxes = torch.tensor(
        [[10, 10, 50, 60], [30, 20, 90, 70], [5, 40, 45, 100], [60, 60, 100, 90], [0, 0, 20, 20], [70, 5, 110, 40]],
        dtype=torch.float,
    )
    rois = torch.cat([torch.zeros(6, 1), boxes], dim=1)
    labels = torch.tensor([2, 0, 1, num_classes, num_classes, num_classes])
    label_weights = torch.tensor([1.0, 1, 1, 1, 1, 0])
    gt = boxes + torch.tensor([[3, -2, 6, 4], [-5, 2, 0, -6], [2, 3, -4, 5], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    cls_score = (score_scale * torch.randn(6, num_classes, generator=g)).requires_grad_()
    bbox_pred = (0.5 * torch.randn(6, 4 * num_classes, generator=g)).requires_grad_()
    return cls_score, bbox_pred, rois, labels, label_weights, gt


def metrics_before_and_after_training(config: str, work, data_root, iters: int) -> tuple[dict, dict]:
    """The smoke variant's validation metrics untrained (initialised weights) and after
    ``iters`` training iterations, for the "learns on the synthetic set" tests."""
    from mmengine.runner import Runner

    import rankrepro.engine  # noqa: F401  (registers the smoke variant's AtomicCheckpointHook)
    from rankrepro import runner

    cfg = runner.load_config(config, work / "untrained", smoke=True, data_root=data_root, max_iters=iters)
    untrained = Runner.from_cfg(cfg)
    untrained.model.init_weights()
    before = untrained.test()
    runner.train(config, work / "trained", smoke=True, data_root=data_root, max_iters=iters)
    after = runner.test(config, work / "trained" / f"iter_{iters}.pth", work / "eval", smoke=True, data_root=data_root)
    return before, after
